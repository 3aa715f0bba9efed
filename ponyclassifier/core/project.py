"""A project: a class-folder dataset plus its store, and every labelling action on it.

Labelling actions (import, move to another class, delete to trash, create / rename / merge
/ delete class) change files on disk and rows in the store together, all-or-nothing:

1. the planned file moves are written to the store's journal and committed;
2. the files are moved, never overwriting (a name collision gets a new name, chosen before
   step 1 and claimed atomically with a hard link, so nothing can slip in between);
3. the store rows change and the journal entry is marked done, in one transaction.

A process killed between 1 and 3 leaves a pending journal entry; opening the project rolls
the moved files back, so the folder and the store agree again (RELIABILITY.md case 16).
Deleted files go to ``.ponyclassifier/trash/<operation>/`` and come back with undo.
Every action can be undone and redone.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .folders import class_files, iter_class_file_paths, list_class_folders
from .images import ImageError, decode_image, is_candidate_file
from .store import STORE_DIR, ProjectStore

TRASH = "trash"
UNLABELLED = ""  # the "class" of images lying in the project root, not in a class folder
TEST_FOLDER_KEY = "test_folder"
SPLIT_SETTINGS_KEY = "split_settings"


def iter_project_files(root: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """Every image candidate of a class-folder project as ``(absolute path, class)``, class
    by class in sorted order; images in the root itself come last with class
    :data:`UNLABELLED`. Plain strings (see :func:`.folders.iter_class_file_paths`): the GUI
    lists on a worker thread that shares the interpreter lock."""
    root = os.path.abspath(os.fspath(root))
    for name in list_class_folders(root):
        for path in iter_class_file_paths(os.path.join(root, name)):
            yield path, name
    for f in root_files(root):  # already sorted
        yield os.path.join(root, f), UNLABELLED


def root_files(root: str | os.PathLike) -> list[str]:
    """Names of image candidates lying directly in the project root (unlabelled images)."""
    try:
        with os.scandir(root) as it:
            return sorted(e.name for e in it if is_candidate_file(e.name) and e.is_file(follow_symlinks=False))
    except OSError:
        return []
_JOURNAL_SQL = """CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, kind TEXT NOT NULL,
    moves TEXT NOT NULL, state TEXT NOT NULL)"""


class ProjectError(Exception):
    pass


@dataclass
class FileResult:
    source: str
    target: str | None = None
    error: str | None = None


@dataclass
class Operation:
    """One undoable action: the file moves it made (absolute source -> target paths)."""

    kind: str
    moves: list[tuple[str, str]]
    created_dirs: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    undone_moves: list[tuple[str, str]] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    label: str = ""


def unique_target(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """``folder/name``, or ``name (2).ext``, ``name (3).ext``... if taken on disk or in ``taken``."""
    taken = taken or set()
    stem, suffix = os.path.splitext(name)
    candidate = folder / name
    n = 2
    while candidate.exists() or str(candidate) in taken:
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate


def _move_no_overwrite(src: Path, dst: Path) -> None:
    """Move src to dst, failing (FileExistsError) if dst exists: never overwrites."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # atomic claim of the name; fails if it exists
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "target exists", str(dst)) from None
        shutil.move(str(src), str(dst))
        return
    os.unlink(src)


class Project:
    def __init__(self, root: str | os.PathLike, *, read_only: bool = False):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ProjectError(f"{self.root}: not a folder")
        self.store = ProjectStore(self.root, read_only=read_only)
        self.undo_stack: list[Operation] = []
        self.redo_stack: list[Operation] = []
        self.recovered: list[str] = []
        if not self.store.read_only:
            self.store.conn.execute(_JOURNAL_SQL)
            self.recovered = self._recover()

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    @property
    def trash_dir(self) -> Path:
        return self.root / STORE_DIR / TRASH

    def classes(self) -> list[str]:
        return list_class_folders(self.root)

    def rel(self, path: str | os.PathLike) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def class_of(self, path: str | os.PathLike) -> str:
        rel = self.rel(path)
        return rel.split("/", 1)[0] if "/" in rel else UNLABELLED

    def sync(self, listing: Iterable[tuple[str, str]] | None = None,
             listed_root: str | os.PathLike | None = None) -> None:
        """Bring the store in line with the folder (files added or removed by other tools).
        Images lying in the project root are recorded as unlabelled (class "").

        ``listing``: the folder as :func:`iter_project_files` just gave it (absolute path,
        class) when the caller walked it already (the app lists a project once on open), made
        under ``listed_root`` (the path the caller opened, which may reach the project through
        a symbolic link; default: the project's own root). Entries outside it are ignored; a
        listing none of whose entries lies under it is not trusted and the folder is walked
        here, as it is without a listing."""
        on_disk: dict[str, str] = {}
        if listing is not None:
            listing = list(listing)
            base = os.path.join(os.path.abspath(os.fspath(listed_root or self.root)), "")
            if listing and not any(path.startswith(base) for path, _ in listing):
                listing = None  # made for another path: never let it empty the store
        if listing is None:
            base = os.path.join(os.path.abspath(self.root), "")
        # iter_project_files joins every path onto abspath(root): slicing that off is the
        # relative path (a Path per file was most of a sync's time at 20,000 images)
        cut, posix = len(base), os.sep == "/"
        for path, c in (iter_project_files(self.root) if listing is None else listing):
            if not path.startswith(base):
                continue
            on_disk[path[cut:] if posix else path[cut:].replace(os.sep, "/")] = c
        known = self.store.image_classes()
        gone = known.keys() - on_disk.keys()
        if gone:
            self.store.remove_images(sorted(gone))
        new = [{"relpath": r, "class": c, "status": "unlabelled" if c == UNLABELLED else "ok"}
               for r, c in on_disk.items() if r not in known]
        if new:
            self.store.upsert_images(new)

    # ---------------------------------------------------------- status, splits
    def set_statuses(self, statuses: dict[str, tuple[str, str | None]]) -> int:
        """Record per-image status and reason, keyed by absolute path or relpath, e.g.
        ``{path: ("bad", "unsupported file")}`` for a file that cannot be decoded, or
        ``("ok", None)`` once it reads again. Unlabelled images stay unlabelled while
        readable. One transaction; returns how many rows changed."""
        known = {r["relpath"]: r for r in self.store.images()}
        rows = {}
        for p, (status, reason) in statuses.items():
            rel = self.rel(p) if os.path.isabs(os.fspath(p)) else os.fspath(p)
            r = known.get(rel)
            if r is None:
                continue
            if status == "ok" and r["class"] == UNLABELLED:
                status = "unlabelled"
            rows[rel] = (status, reason)
        return self.store.set_statuses(rows) if rows else 0

    def make_splits(self, val_fraction: float = 0.2, seed: int = 0) -> dict[str, int]:
        """(Re)make the train/validation split of every labelled image: seeded and
        stratified (each class split on its own, by a seeded hash of the path, see
        :func:`.splits.split_indices`). Unlabelled images get no split. Returns
        ``{"train": n, "val": n}``; the fraction and seed are remembered in the store."""
        images = self.store.images()
        rows, train, val = self._split(images, val_fraction, seed)
        splits: dict[str, str | None] = {r["relpath"]: None for r in images if r["class"] == UNLABELLED}
        splits.update({rows[i]["relpath"]: "train" for i in train})
        splits.update({rows[i]["relpath"]: "val" for i in val})
        with self.store.transaction():
            self.store.set_splits(splits)
            self.store.set_meta(SPLIT_SETTINGS_KEY, json.dumps({"val_fraction": val_fraction, "seed": int(seed)}))
        return {"train": len(train), "val": len(val)}

    def make_missing_splits(self, val_fraction: float | None = None, seed: int | None = None) -> int:
        """Give labelled images without a split one, by the same seeded stratified split as
        :meth:`make_splits`, with the share and seed of the last one (:meth:`split_settings`;
        0.2 and 0 when splits were never made) unless given. Images that already have a
        split keep it; the split orders each class by a hash of the path, so new images
        rarely shift old ones. Returns how many images got a split (0 on a read-only project)."""
        if self.read_only or not self.store.has_labelled_without_split():
            return 0
        # each class is split on its own: only the classes with new images need reading (an
        # import into one class of a 20,000-image project reads that class, not the project)
        classes = [r[0] for r in self.store.conn.execute(
            "SELECT DISTINCT class FROM images WHERE class != '' AND split IS NULL")]
        images = [row for c in classes for row in self.store.images(cls=c)]
        settings = self.split_settings() or {}
        if val_fraction is None:
            val_fraction = settings.get("val_fraction", 0.2)
        if seed is None:
            seed = settings.get("seed", 0)
        rows, train, val = self._split(images, val_fraction, seed)
        splits = {rows[i]["relpath"]: name for name, idx in (("train", train), ("val", val))
                  for i in idx if not rows[i]["split"]}
        if splits:
            self.store.set_splits(splits)
        return len(splits)

    def _split(self, images: list, val_fraction: float, seed: int) -> tuple[list, list[int], list[int]]:
        """The labelled rows of ``images`` and the indices of those going to train and val."""
        from .splits import split_indices_by_relpath  # noqa: PLC0415 (numpy; only when splitting)

        if not 0 < val_fraction < 1:
            raise ProjectError(f"the validation share must be between 0 and 1, not {val_fraction}")
        rows = [r for r in images if r["class"] != UNLABELLED]
        classes = sorted({r["class"] for r in rows})
        index = {c: i for i, c in enumerate(classes)}
        train, val = split_indices_by_relpath([r["relpath"] for r in rows], [index[r["class"]] for r in rows],
                                              val_fraction, int(seed))
        return rows, train, val

    def split_settings(self) -> dict | None:
        """The fraction and seed of the last :meth:`make_splits`, or None."""
        raw = self.store.meta(SPLIT_SETTINGS_KEY)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    @property
    def test_folder(self) -> str | None:
        """The optional external test folder (class subfolders like the project's), whose
        images are never trained on; None when there is none."""
        return self.store.meta(TEST_FOLDER_KEY)

    def set_test_folder(self, folder: str | os.PathLike | None) -> None:
        """Choose (or with None, clear) the external test folder, stored in the project."""
        if folder is None:
            self.store.set_meta(TEST_FOLDER_KEY, None)
            return
        path = Path(folder).resolve()
        if not path.is_dir():
            raise ProjectError(f"{path}: not a folder")
        if path == self.root or self.root in path.parents or path in self.root.parents:
            raise ProjectError(f"{path}: the test folder must be outside the project folder (and not contain "
                               "it), or its images would be trained on")
        self.store.set_meta(TEST_FOLDER_KEY, str(path))

    # ------------------------------------------------------------- the journal
    def _journal_begin(self, kind: str, moves: list[tuple[str, str]]) -> int:
        with self.store.transaction() as c:
            cur = c.execute("INSERT INTO journal (created, kind, moves, state) VALUES (?, ?, ?, 'pending')",
                            (time.time(), kind, json.dumps(moves)))
            return int(cur.lastrowid)

    def _recover(self) -> list[str]:
        """Roll back file moves of operations that never reached their commit."""
        notes = []
        for row in self.store.conn.execute("SELECT id, kind, moves FROM journal WHERE state='pending'").fetchall():
            moves = json.loads(row["moves"])
            for src, dst in reversed(moves):
                s, d = Path(src), Path(dst)
                if d.exists() and not s.exists():
                    if src == "":
                        d.unlink()  # an imported copy: the original is still where the user had it
                    else:
                        _move_no_overwrite(d, s)
            with self.store.transaction() as c:
                c.execute("UPDATE journal SET state='rolled back' WHERE id=?", (row["id"],))
            notes.append(f"An interrupted {row['kind']} was rolled back: {len(moves)} file(s) restored.")
        return notes

    def _apply(self, kind: str, moves: list[tuple[str, str]], store_update: Callable[[], None],
               label: str = "") -> Operation:
        """Journal, move files, then update the store and close the journal in one transaction.
        A failure part-way moves the files already moved back again: all or nothing."""
        if self.read_only:
            raise ProjectError(self.store.message or "the project is open read-only")
        jid = self._journal_begin(kind, moves)
        done: list[tuple[str, str]] = []
        try:
            for src, dst in moves:
                if src == "":
                    continue
                _move_no_overwrite(Path(src), Path(dst))
                done.append((src, dst))
            with self.store.transaction() as c:
                store_update()  # runs inside the same transaction (nested calls use the open one)
                # a picture that became labelled gets its split now: the split the Dataset place
                # shows is the one training uses, with no image in neither
                self.make_missing_splits()
                c.execute("UPDATE journal SET state='done' WHERE id=?", (jid,))
        except BaseException:
            for src, dst in reversed(done):
                if Path(dst).exists() and not Path(src).exists():
                    _move_no_overwrite(Path(dst), Path(src))
            with self.store.transaction() as c:
                c.execute("UPDATE journal SET state='rolled back' WHERE id=?", (jid,))
            raise
        return Operation(kind, moves, label=label)

    # ---------------------------------------------------------------- actions
    def move_to_class(self, paths: Sequence[str | os.PathLike], cls: str) -> Operation:
        """Relabel: move images into class ``cls`` (created if needed), never overwriting."""
        _check_class_name(cls)
        folder = self.root / cls
        created = [] if folder.exists() else [str(folder)]
        folder.mkdir(exist_ok=True)
        taken: set[str] = set()
        moves = []
        for p in paths:
            p = Path(p).resolve()
            if p.parent == folder:
                continue
            dst = unique_target(folder, p.name, taken)
            taken.add(str(dst))
            moves.append((str(p), str(dst)))
        op = self._apply("relabel", moves, lambda: self._store_moves(moves), label=f"Move to {cls}")
        op.created_dirs = created
        self._did(op)
        return op

    def delete(self, paths: Sequence[str | os.PathLike]) -> Operation:
        """Delete to the project's trash (recoverable, and undoable)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.trash_dir / stamp
        moves = []
        taken: set[str] = set()
        for p in paths:
            p = Path(p).resolve()
            dst = unique_target(base / Path(self.rel(p)).parent, p.name, taken)
            taken.add(str(dst))
            moves.append((str(p), str(dst)))
        op = self._apply("delete", moves, lambda: self.store.remove_images([self.rel(s) for s, _ in moves]),
                         label="Delete")
        self._did(op)
        return op

    def import_files(self, sources: Iterable[str | os.PathLike], cls: str,
                     progress: Callable[[int, int], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Operation:
        """Copy image files (folders: the images inside) into class ``cls``. Each source gets a
        result: imported as which file, or why not (unsupported, vanished, unreadable...)."""
        _check_class_name(cls)
        files: list[Path] = []
        for s in sources:
            s = Path(s)
            if s.is_dir():
                files += [Path(dp) / f for dp, dn, fn in os.walk(s) for f in sorted(fn) if is_candidate_file(f)]
            else:
                files.append(s)
        folder = self.root / cls
        created = [] if folder.exists() else [str(folder)]
        folder.mkdir(exist_ok=True)
        results: list[FileResult] = []
        copied: list[tuple[str, str]] = []
        rows = []
        taken: set[str] = set()
        for i, f in enumerate(files):
            if should_stop is not None and should_stop():
                break
            try:
                d = decode_image(f)
                dst = unique_target(folder, f.name, taken)
                taken.add(str(dst))
                with open(f, "rb") as fin, open(dst, "xb") as fout:  # "x": never overwrite
                    shutil.copyfileobj(fin, fout)
                copied.append(("", str(dst)))
                st = dst.stat()
                rows.append({"relpath": self.rel(dst), "class": cls, "size": st.st_size, "mtime": st.st_mtime,
                             "width": d.original_size[0], "height": d.original_size[1]})
                results.append(FileResult(str(f), str(dst)))
            except ImageError as e:
                results.append(FileResult(str(f), error=e.reason))
            except OSError as e:
                results.append(FileResult(str(f), error=f"cannot copy: {e.strerror or e}"))
            if progress is not None:
                progress(i + 1, len(files))
        # the copies are already on disk: journal them so a kill before the commit removes them
        op = self._apply("import", copied, lambda: self.store.upsert_images(rows), label=f"Import into {cls}")
        op.created_dirs, op.results = created, results
        self._did(op)
        return op

    def create_class(self, name: str) -> None:
        _check_class_name(name)
        folder = self.root / name
        if folder.exists():
            raise ProjectError(f"class {name!r} already exists")
        folder.mkdir()

    def rename_class(self, old: str, new: str) -> Operation:
        """Rename = move every image to a new class folder (merging if it exists)."""
        _check_class_name(new)
        files = class_files(self.root / old)
        op = self.move_to_class(files, new)
        self._remove_if_empty(self.root / old, op)
        op.kind, op.label = "rename class", f"Rename {old} to {new}"
        return op

    def merge_classes(self, sources: Sequence[str], into: str) -> Operation:
        files = [f for s in sources if s != into for f in class_files(self.root / s)]
        op = self.move_to_class(files, into)
        for s in sources:
            if s != into:
                self._remove_if_empty(self.root / s, op)
        op.kind, op.label = "merge classes", f"Merge into {into}"
        return op

    def delete_class(self, name: str) -> Operation:
        op = self.delete(class_files(self.root / name))
        self._remove_if_empty(self.root / name, op)
        op.kind, op.label = "delete class", f"Delete class {name}"
        return op

    # ------------------------------------------------------------ undo / redo
    def undo(self) -> Operation | None:
        if not self.undo_stack:
            return None
        op = self.undo_stack.pop()
        inverse = [(dst, src) for src, dst in reversed(op.moves)]
        for d in op.removed_dirs:
            Path(d).mkdir(parents=True, exist_ok=True)
        if op.kind == "import":  # the copies go to the trash (the user's originals were never moved)
            trash = self.trash_dir / f"undone-import-{time.strftime('%Y%m%d-%H%M%S')}"
            taken: set[str] = set()
            inverse = []
            for _, dst in op.moves:
                t = unique_target(trash, Path(dst).name, taken)
                taken.add(str(t))
                inverse.append((dst, str(t)))
        self._apply(f"undo {op.kind}", inverse, lambda: self._store_moves(inverse))
        op.undone_moves = inverse
        for d in op.created_dirs:
            self._remove_if_empty(Path(d), None)
        self.redo_stack.append(op)
        return op

    def redo(self) -> Operation | None:
        if not self.redo_stack:
            return None
        op = self.redo_stack.pop()
        for d in op.created_dirs:
            Path(d).mkdir(parents=True, exist_ok=True)
        again = [(dst, src) for src, dst in reversed(op.undone_moves)]
        self._apply(f"redo {op.kind}", again, lambda: self._store_moves(again))
        for d in op.removed_dirs:
            self._remove_if_empty(Path(d), None)
        self.undo_stack.append(op)
        return op

    # ---------------------------------------------------------------- helpers
    def _did(self, op: Operation) -> None:
        self.undo_stack.append(op)
        self.redo_stack.clear()

    def _store_moves(self, moves: Sequence[tuple[str, str]]) -> None:
        """Store rows follow the files: into the trash = removed, out of it = added back."""
        trash = str(self.trash_dir)
        gone, back, moved = [], [], []
        for src, dst in moves:
            if dst.startswith(trash):
                gone.append(self.rel(src))
            elif src.startswith(trash):
                cls = self.class_of(dst)
                back.append({"relpath": self.rel(dst), "class": cls,
                             "status": "unlabelled" if cls == UNLABELLED else "ok"})
            else:
                moved.append((self.rel(src), self.rel(dst), self.class_of(dst)))
        known = {r["relpath"] for r in self.store.images()} if moved else set()
        missing = [{"relpath": s, "class": s.split("/", 1)[0] if "/" in s else UNLABELLED,
                    "status": "ok" if "/" in s else "unlabelled"} for s, _, _ in moved if s not in known]
        if missing:  # files the store had not seen yet (added by another tool): record, then move
            self.store.upsert_images(missing)
        if moved:
            self.store.move_images(moved)
        if gone:
            self.store.remove_images(gone)
        if back:
            self.store.upsert_images(back)

    def _remove_if_empty(self, folder: Path, op: Operation | None) -> None:
        try:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                if op is not None:
                    op.removed_dirs.append(str(folder))
        except OSError:
            pass


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class folder name (a short phrase without the name), or None
    when it can. The one set of rules for class names; the GUI asks it before a change."""
    if not name.strip():
        return "a class name cannot be empty"
    if name != name.strip():
        return "no spaces at the start or end"
    if name.startswith((".", "_")):
        return "names starting with '.' or '_' are ignored as class folders"
    if any(ch in name for ch in '/\\:*?"<>|') or name in (".", ".."):
        return "a class name cannot contain / \\ : * ? \" < > |"
    if "\0" in name:
        return "a class name cannot contain a null character"
    return None


def _check_class_name(name: str) -> None:
    problem = class_name_problem(name)
    if problem is not None:
        raise ProjectError(f"{name!r} is not a usable class name ({problem})")
