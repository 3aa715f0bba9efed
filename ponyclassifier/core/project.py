"""A project: a class-folder dataset plus its store, and every labelling action on it.

Labelling actions (import, move to another class, delete to trash, create / rename / merge
/ delete class) change files on disk and rows in the store together, all-or-nothing:

1. the planned file moves are written to the store's journal and committed, as paths
   relative to the project root, every one checked first (inside the root, not through a
   symbolic link leading out, a file or link, not the store itself);
2. the files are moved, never overwriting (a name collision gets a new name, chosen before
   step 1 and claimed atomically with a hard link, so nothing can slip in between; the old
   name is unlinked after); a symbolic link is moved itself, never its target. An import
   writes each copy under a hidden name in the class folder and links it to its name;
3. the store rows change and the journal entry is marked done, in one transaction.

A process killed at any point leaves a pending journal entry whose every step can be told
apart on disk (the same file under two names, a hidden copy, an empty claim); opening the
project rolls the operation back, so the folder and the store agree again (RELIABILITY.md
case 16; tests/core/test_fault_injection.py kills a child at every step). A journal row
that cannot be followed safely (a project folder someone sent) is set aside and reported
in :attr:`Project.recovered`; no file is touched for it, and nothing outside the project
ever is. Deleted files go to ``.ponyclassifier/trash/<operation>/`` and come back with
undo. Every action can be undone and redone; an undo that fails stays undoable.
"""

from __future__ import annotations

import errno
import filecmp
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .folders import class_files, iter_class_file_paths, list_class_folders
from .images import ImageError, decode_image, is_candidate_file, open_regular_file
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
_JOURNAL_FORMAT = 2  # rows written as {"v": 2, "moves": [[relative source, relative target], ...]}
_JOURNAL_ROW_LIMIT = 32 * 1024 * 1024  # a pending row bigger than this is set aside unread
_RECOVER_ROWS = 1000  # at most this many unfinished operations are followed at an open (one is the norm)
_IMPORT_TMP = ".ponyimport-"  # hidden names: never image candidates (see images.is_candidate_file)
_MOVE_TMP = ".ponymove-"
# a hard link cannot be made here (FAT, exFAT, some network shares) or across file systems
_NO_HARD_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}


class ProjectError(Exception):
    pass


class _Unsafe(Exception):
    """A journal row that cannot be followed without risk: it is set aside, no file touched."""


# ------------------------------------------------------------------ test-only fault hook
# The fault-injection tests (tests/core/test_fault_injection.py) run an operation in a child
# process that sets ``_fault_at`` to k: the k-th step boundary (counted from 0) kills the
# process there and then. Unset (None, always in the app) a step boundary costs one test.
_fault_at: int | None = None
_fault_seen = 0


def _fault_point(step: str) -> None:
    global _fault_seen
    if _fault_at is None:
        return
    if _fault_seen == _fault_at:
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # pragma: no cover - Windows
    _fault_seen += 1


@dataclass
class FileResult:
    source: str
    target: str | None = None
    error: str | None = None


@dataclass
class Operation:
    """One undoable action: the file moves it made (absolute source -> target paths; an
    import's sources are "": the copies' originals stay where the user had them)."""

    kind: str
    moves: list[tuple[str, str]]
    created_dirs: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    undone_moves: list[tuple[str, str]] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    label: str = ""


def unique_target(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """``folder/name``, or ``name (2).ext``, ``name (3).ext``... if taken on disk (a dangling
    symbolic link takes its name too) or in ``taken``."""
    taken = taken or set()
    stem, suffix = os.path.splitext(name)
    candidate = folder / name
    n = 2
    while os.path.lexists(candidate) or str(candidate) in taken:
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate


def _lstat(path: str | os.PathLike) -> os.stat_result | None:
    """The entry itself (a symbolic link, not its target), or None when there is none."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_file_or_link(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _move_tmp(dst: Path) -> Path:
    """The hidden name beside ``dst`` a move across file systems copies into first."""
    key = hashlib.sha256(os.fsencode(dst.name)).hexdigest()[:20]
    return dst.parent / f"{_MOVE_TMP}{key}"


def _unlink_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _move_no_overwrite(src: Path, dst: Path) -> None:
    """Move the file ``src`` to ``dst``, failing (FileExistsError) if dst exists: never
    overwrites. A symbolic link is moved itself, never its target. Every step leaves a state
    a recovery can undo (:func:`_roll_back_move`): a hard link claims ``dst``, then ``src``
    is unlinked (between the two, both names are the one file: same inode). Where hard
    links cannot be made, see :func:`_move_without_link`."""
    src, dst = Path(src), Path(dst)
    st = os.lstat(src)
    if not _is_file_or_link(st):
        raise ProjectError(f"{src}: not a file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)  # atomic claim of the name; fails if it exists
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _NO_HARD_LINK:
            raise
        _move_without_link(src, dst, st, across=e.errno == errno.EXDEV)
        return
    _fault_point("linked")
    os.unlink(src)
    _fault_point("unlinked")


def _claim(dst: Path) -> None:
    """Claim the name ``dst`` with an empty file, failing (FileExistsError) if it exists."""
    os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def _move_without_link(src: Path, dst: Path, st: os.stat_result, across: bool) -> None:
    """A move on a file system without hard links (FAT, exFAT, some network shares) or
    across file systems: an empty file claims ``dst``, then ``src`` is renamed over it (or,
    across file systems, a copy beside ``dst`` is renamed over it and ``src`` removed).
    Between the steps ``dst`` is empty or a copy of ``src``: the rollback removes it."""
    _claim(dst)
    _fault_point("claimed")
    if not across:
        try:
            os.replace(src, dst)
        except OSError as e:
            if e.errno != errno.EXDEV:
                _unlink_quietly(dst)  # our empty claim
                raise
        else:
            _fault_point("renamed")
            return
    tmp = _move_tmp(dst)
    try:
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), tmp)
        else:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                shutil.copyfileobj(fin, fout)
                fout.flush()
                os.fsync(fout.fileno())
            shutil.copystat(src, tmp)
    except BaseException:
        _unlink_quietly(tmp)
        _unlink_quietly(dst)
        raise
    _fault_point("copied")
    os.replace(tmp, dst)
    _fault_point("replaced")
    os.unlink(src)
    _fault_point("unlinked")


def _same_or_empty(src: Path, s: os.stat_result, dst: Path, d: os.stat_result) -> bool:
    """Whether ``dst`` (not the same inode as ``src``) can go without losing anything: an
    empty file (a claim), or the same link or bytes as ``src`` (a finished copy)."""
    if stat.S_ISLNK(d.st_mode):
        return stat.S_ISLNK(s.st_mode) and os.readlink(src) == os.readlink(dst)
    if not stat.S_ISREG(d.st_mode):
        return False
    if d.st_size == 0:
        return True
    return stat.S_ISREG(s.st_mode) and s.st_size == d.st_size and filecmp.cmp(src, dst, shallow=False)


def _roll_back_move(src: Path, dst: Path) -> None:
    """Undo whatever part of ``_move_no_overwrite(src, dst)`` happened, so that the file is
    at ``src`` alone. A ``dst`` that might be someone else's file is left alone, unless it is
    empty or the same bytes as ``src`` (nothing is lost then)."""
    _unlink_quietly(_move_tmp(dst))  # a copy across file systems that never got its name
    s, d = _lstat(src), _lstat(dst)
    if d is None:
        return
    if s is None:
        _move_no_overwrite(dst, src)
    elif os.path.samestat(s, d) or _same_or_empty(src, s, dst, d):
        os.unlink(dst)  # the same file under two names, an empty claim or a finished copy


def _roll_back_import(tmp: Path, dst: Path, placed: bool = False) -> None:
    """Undo one planned copy of an import: the copy is written under the hidden name ``tmp``
    and linked to ``dst``; ``tmp`` stays until the import is committed, so a ``dst`` is
    provably ours while it is the same file as ``tmp``. Without hard links the journal
    records each copy (``placed``) after claiming its name and before renaming it there."""
    t, d = _lstat(tmp), _lstat(dst)
    if d is not None and (placed or (t is not None and (os.path.samestat(t, d) or (
            stat.S_ISREG(d.st_mode) and d.st_size == 0)))):
        os.unlink(dst)
    if t is not None:
        os.unlink(tmp)


def _copy_new(src: Path, dst: Path) -> None:
    # only a regular file is read, never blocking (a pipe swapped in after the decode check)
    with open_regular_file(src) as fin, open(dst, "xb") as fout:  # "x": never overwrite
        shutil.copyfileobj(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(os.path.join(root, ""))


class Project:
    def __init__(self, root: str | os.PathLike, *, read_only: bool = False):
        self._given_root = os.path.abspath(os.fspath(root))
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ProjectError(f"{self.root}: not a folder")
        self.store = ProjectStore(self.root, read_only=read_only)
        self.undo_stack: list[Operation] = []
        self.redo_stack: list[Operation] = []
        self.recovered: list[str] = []
        if not self.store.read_only:
            try:
                self.store.conn.execute(_JOURNAL_SQL)
                self.recovered = self._recover()
            except BaseException:
                self.store.close()
                raise

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
        """The path relative to the project root (posix). The last part is not resolved: a
        symbolic link in a class folder is a picture of the project wherever it points."""
        return self._lexical(path).relative_to(self.root).as_posix()

    def _lexical(self, path: str | os.PathLike, cache: dict | None = None) -> Path:
        """The absolute path with its folder resolved and its last part as it is."""
        head, name = os.path.split(os.path.abspath(os.fspath(path)))
        if cache is None:
            return Path(os.path.realpath(head), name)
        real = cache.get(head)
        if real is None:
            real = cache[head] = os.path.realpath(head)
        return Path(real, name)

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
            settings = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(settings, dict):  # not ours (a store someone else wrote): as if never made
            return None
        fraction, seed = settings.get("val_fraction"), settings.get("seed")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1 \
                or isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            return None
        return settings

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
    # A journal row lists an operation's file steps as paths relative to the project root
    # ({"v": 2, "moves": [[source, target], ...]}); an import's sources are the hidden names
    # its copies are written under. States: 'pending' (files may be part-way: opening the
    # project rolls the steps back), 'committed' (an import whose store rows are in and
    # whose hidden copy names remain to be removed), 'done', 'rolled back', and 'set aside'
    # (a row that could not be followed safely: no file was touched for it).

    def _checked(self, rel: object, cache: dict | None = None) -> Path:
        """The absolute path of a journal path, or _Unsafe: it must be relative, normalised,
        inside the root (not through a symbolic link leading out), not in the store folder
        except its trash, and a file or symbolic link if it exists."""
        if not isinstance(rel, str) or not rel:
            raise _Unsafe("a path that is empty or not text")
        if "\0" in rel:
            raise _Unsafe(f"the path {rel!r} holds a NUL character")
        if rel.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", rel) or (os.sep != "/" and "\\" in rel):
            raise _Unsafe(f"the path {rel!r} is not relative to the project")
        parts = rel.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise _Unsafe(f"the path {rel!r} is not a plain path inside the project")
        if parts[0] == STORE_DIR and (len(parts) < 3 or parts[1] != TRASH):
            raise _Unsafe(f"the path {rel!r} is inside the project's store folder")
        path = self.root.joinpath(*parts)
        head = str(path.parent)
        real = cache.get(head) if cache is not None else None
        if real is None:
            real = os.path.realpath(head)
            if cache is not None:
                cache[head] = real
        if not _inside(real, str(self.root)):
            raise _Unsafe(f"the path {rel!r} leads out of the project through a symbolic link")
        st = _lstat(path)
        if st is not None and not _is_file_or_link(st):
            raise _Unsafe(f"the path {rel!r} is not a file")
        return path

    def _journal_rel(self, path: str | os.PathLike, cache: dict | None = None) -> str:
        """An operation's absolute path as the journal writes it; ProjectError if it is not
        a path the project may touch."""
        p = self._lexical(path, cache)
        try:
            rel = p.relative_to(self.root).as_posix()
            self._checked(rel, cache)
        except (ValueError, _Unsafe) as e:
            why = str(e) if isinstance(e, _Unsafe) else f"not inside the project {self.root}"
            raise ProjectError(f"{path}: {why}") from None
        return rel

    def _journal_begin(self, kind: str, moves: list[tuple[str, str]]) -> int:
        """Write an operation's planned steps (absolute paths; "" for an old-style import
        source) and commit them, before any file is touched."""
        cache: dict = {}
        rel = [[self._journal_rel(src, cache), self._journal_rel(dst, cache)] for src, dst in moves]
        data = json.dumps({"v": _JOURNAL_FORMAT, "moves": rel})
        _fault_point("begin")
        with self.store.transaction() as c:
            cur = c.execute("INSERT INTO journal (created, kind, moves, state) VALUES (?, ?, ?, 'pending')",
                            (time.time(), kind, data))
            jid = int(cur.lastrowid)
        _fault_point("journaled")
        return jid

    def _journal_placed(self, jid: int, n: int) -> None:
        """Record that copy ``n`` of an import has claimed its name (where no hard link can
        prove the copy is ours, the journal does)."""
        with self.store.transaction() as c:
            data = json.loads(c.execute("SELECT moves FROM journal WHERE id=?", (jid,)).fetchone()[0])
            data["placed"] = n
            c.execute("UPDATE journal SET moves=? WHERE id=?", (json.dumps(data), jid))

    def _journal_state(self, jid: int, state: str) -> None:
        with self.store.transaction() as c:
            c.execute("UPDATE journal SET state=? WHERE id=?", (state, jid))

    def _legacy_rel(self, path: object) -> str:
        """A path of a journal row written before format 2 (absolute) as a relative one."""
        if not isinstance(path, str) or "\0" in path or not os.path.isabs(path):
            raise _Unsafe(f"the path {path!r} is not an absolute path of this project")
        norm = os.path.normpath(path)
        for base in (str(self.root), self._given_root):
            if norm != base and _inside(norm, base):
                return norm[len(base) + 1:].replace(os.sep, "/")
        raise _Unsafe(f"the path {path!r} is outside the project")

    def _parse_row(self, kind: object, raw: object) -> tuple[list[tuple[Path | None, Path]], bool, int]:
        """A journal row's steps as absolute paths, every one checked before any file is
        touched, whether it is a format-2 import (hidden copy names as sources) and the last
        copy of such an import recorded as having claimed its name (-1: none)."""
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z ]{1,40}", kind):
            raise _Unsafe("its kind is not one this program writes")
        if not isinstance(raw, str):
            raise _Unsafe("its list of files is not text")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Unsafe("its list of files is not readable") from None
        placed = -1
        if isinstance(data, dict):
            if data.get("v") != _JOURNAL_FORMAT or not isinstance(data.get("moves"), list):
                raise _Unsafe("its format is not one this program knows")
            moves, legacy = data["moves"], False
            placed = data.get("placed", -1)
            if isinstance(placed, bool) or not isinstance(placed, int):
                raise _Unsafe("its record of copies made is not a number")
        elif isinstance(data, list):
            moves, legacy = data, True
        else:
            raise _Unsafe("its list of files is not a list")
        cache: dict = {}
        out: list[tuple[Path | None, Path]] = []
        importing = kind == "import" and not legacy
        for m in moves:
            if not isinstance(m, list) or len(m) != 2:
                raise _Unsafe("a step is not a pair of paths")
            src, dst = m
            if legacy:
                src = None if src == "" else self._legacy_rel(src)
                dst = self._legacy_rel(dst)
            s_path = None if src is None else self._checked(src, cache)
            d_path = self._checked(dst, cache)
            if legacy and s_path is None and kind != "import":
                raise _Unsafe("a step has no source")
            if importing and (s_path.parent != d_path.parent or not s_path.name.startswith(_IMPORT_TMP)):
                raise _Unsafe(f"the copy name {src!r} is not one an import writes")
            out.append((s_path, d_path))
        return out, importing, placed

    def _recover(self) -> list[str]:
        """Finish or roll back the operations a killed process left part-way: the files go
        back where they were (an import's copies go), so folders and store agree again. A row
        that cannot be followed safely is set aside and reported; no file is touched for it."""
        notes = []
        try:
            rows = self.store.conn.execute(
                "SELECT id, kind, state, length(moves) AS size FROM journal "
                "WHERE state IN ('pending', 'committed') ORDER BY id").fetchall()
        except sqlite3.Error as e:
            raise ProjectError(f"{self.store.path}: the project's journal is damaged ({e}); it was left "
                               "untouched. Move the store aside to start a fresh one (labels in the class "
                               "folders are safe).") from None
        if len(rows) > _RECOVER_ROWS:  # not something this program leaves: set the rest aside unread
            with self.store.transaction() as c:
                c.execute("UPDATE journal SET state='set aside' WHERE state IN ('pending', 'committed') AND id > ?",
                          (rows[_RECOVER_ROWS - 1]["id"],))
            notes.append(f"{len(rows) - _RECOVER_ROWS} more unfinished entries of the project's journal were set "
                         "aside; no file was touched for them.")
            rows = rows[:_RECOVER_ROWS]
        for row in rows:
            jid, kind, state = row["id"], row["kind"], row["state"]
            try:
                size = row["size"]
                if not isinstance(size, int) or size > _JOURNAL_ROW_LIMIT:
                    raise _Unsafe("its list of files is missing or too large")
                raw = self.store.conn.execute("SELECT moves FROM journal WHERE id=?", (jid,)).fetchone()[0]
                steps, importing, placed = self._parse_row(kind, raw)
                if state == "committed" and not importing:
                    raise _Unsafe("it is marked half-finished, which only an import can be")
            except _Unsafe as e:
                self._journal_state(jid, "set aside")
                notes.append(f"A damaged entry (#{jid}) of the project's journal was set aside; no file was "
                             f"touched for it: {e}.")
                continue
            try:
                if state == "committed":  # the import is in: only its hidden copy names remain
                    for tmp, _ in steps:
                        _unlink_quietly(tmp)
                    self._journal_state(jid, "done")
                    continue
                for n in reversed(range(len(steps))):
                    src, dst = steps[n]
                    if src is None:  # an old-style import row: the copy itself
                        _unlink_quietly(dst)
                    elif importing:
                        _roll_back_import(src, dst, n <= placed)
                    else:
                        _roll_back_move(src, dst)
            except (OSError, ProjectError) as e:
                notes.append(f"An interrupted {kind} could not be rolled back yet ({e}); it is tried again "
                             "when the project is next opened.")
                continue
            self._journal_state(jid, "rolled back")
            done = f"its {len(steps)} unfinished cop{'y' if len(steps) == 1 else 'ies'} removed" if importing \
                else f"{len(steps)} file(s) restored"
            notes.append(f"An interrupted {kind} was rolled back: {done}.")
        return notes

    def _apply(self, kind: str, moves: list[tuple[str, str]], store_update: Callable[[], None],
               label: str = "") -> Operation:
        """Journal, move files, then update the store and close the journal in one transaction.
        A failure part-way moves the files already moved back again: all or nothing."""
        if self.read_only:
            raise ProjectError(self.store.message or "the project is open read-only")
        jid = self._journal_begin(kind, moves)  # every path checked before anything moves
        i = 0
        try:
            for i, (src, dst) in enumerate(moves):
                _move_no_overwrite(Path(src), Path(dst))
            i = len(moves)
            with self.store.transaction() as c:
                store_update()  # runs inside the same transaction (nested calls use the open one)
                # a picture that became labelled gets its split now: the split the Dataset place
                # shows is the one training uses, with no image in neither
                self.make_missing_splits()
                c.execute("UPDATE journal SET state='done' WHERE id=?", (jid,))
            _fault_point("committed")
        except BaseException:
            try:  # the step that failed too: a target that is not provably ours stays
                for src, dst in reversed(moves[:i + 1]):
                    _roll_back_move(Path(src), Path(dst))
                self._journal_state(jid, "rolled back")
            except Exception:  # noqa: S110 - left pending: the next open rolls it back
                pass
            raise
        return Operation(kind, moves, label=label)

    # ---------------------------------------------------------------- actions
    def move_to_class(self, paths: Sequence[str | os.PathLike], cls: str) -> Operation:
        """Relabel: move images into class ``cls`` (created if needed), never overwriting."""
        _check_class_name(cls)
        self._writable()
        folder = self.root / cls
        created = [] if folder.exists() else [str(folder)]
        folder.mkdir(exist_ok=True)
        taken: set[str] = set()
        moves = []
        cache: dict = {}
        for p in paths:
            p = self._lexical(p, cache)  # a symbolic link is moved itself, never its target
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
        self._writable()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.trash_dir / stamp
        moves = []
        taken: set[str] = set()
        cache: dict = {}
        for p in paths:
            p = self._lexical(p, cache)
            try:
                rel = p.relative_to(self.root)
            except ValueError:
                raise ProjectError(f"{p}: not inside the project {self.root}") from None
            dst = unique_target(base / rel.parent, p.name, taken)
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
        result: imported as which file, or why not (unsupported, vanished, unreadable...).

        Every file is decoded first; then the planned copies are journaled, each copy is
        written under a hidden name in the class folder and linked to its final name, and the
        store rows go in with the journal's commit. A kill at any point leaves nothing the
        journal does not know: the next open removes the copies of an unfinished import."""
        _check_class_name(cls)
        self._writable()
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
        results: list[FileResult | None] = []
        plan = []  # (index in results, source, target, original size): never the decoded pixels
        taken: set[str] = set()
        work = 2 * len(files)  # progress: each file is checked (decoded), then copied
        for i, f in enumerate(files):
            if should_stop is not None and should_stop():
                break
            try:
                size = decode_image(f).original_size  # the pixels go at once: 1,000 photos never sit in memory
                dst = unique_target(folder, f.name, taken)
                taken.add(str(dst))
                plan.append((len(results), f, dst, size))
                results.append(None)
            except ImageError as e:
                results.append(FileResult(str(f), error=e.reason))
            except OSError as e:
                results.append(FileResult(str(f), error=f"cannot copy: {e.strerror or e}"))
            if progress is not None:
                progress(i + 1, work)
        token = secrets.token_hex(6)
        steps = [(str(folder / f"{_IMPORT_TMP}{token}-{n}"), str(dst)) for n, (_, _, dst, _) in enumerate(plan)]
        jid = self._journal_begin("import", steps)
        placed = [-1]  # the last copy recorded as having claimed its name (no hard links)
        copied: list[tuple[str, str]] = []
        rows = []
        try:
            # A stop asked for while the files were checked ended the checking: those checked
            # are copied. One asked for from here on stops the copying: what is copied goes in.
            stop_copying = None if should_stop is None or should_stop() else should_stop
            for n, ((k, f, dst, size), (tmp, _)) in enumerate(zip(plan, steps)):
                if stop_copying is not None and stop_copying():
                    for k2, f2, _, _ in plan[n:]:
                        results[k2] = FileResult(str(f2), error="not imported: the import was stopped")
                    break
                if progress is not None:
                    progress(work - 2 * len(plan) + len(plan) + n + 1, work)
                claimed = False
                try:
                    _copy_new(f, Path(tmp))
                    _fault_point("copied")
                    try:
                        os.link(tmp, dst)  # claims the final name; fails if something took it meanwhile
                    except OSError as e:
                        if isinstance(e, FileExistsError) or e.errno not in _NO_HARD_LINK:
                            raise
                        _claim(dst)  # no hard links here: claim the name, record it, rename onto it
                        claimed = True
                        _fault_point("claimed")
                        self._journal_placed(jid, n)
                        placed[0] = n
                        os.replace(tmp, dst)
                    _fault_point("linked")
                except (OSError, ImageError) as e:  # this file only (it vanished or changed since its check)
                    _unlink_quietly(tmp)
                    if claimed:
                        _unlink_quietly(dst)
                    why = e.reason if isinstance(e, ImageError) else \
                        "its name in the class was taken meanwhile" if isinstance(e, FileExistsError) \
                        else f"cannot copy: {e.strerror or e}"
                    results[k] = FileResult(str(f), error=why)
                    continue
                st = dst.stat()
                rows.append({"relpath": self.rel(dst), "class": cls, "size": st.st_size, "mtime": st.st_mtime,
                             "width": size[0], "height": size[1]})
                results[k] = FileResult(str(f), str(dst))
                copied.append(("", str(dst)))
            with self.store.transaction() as c:
                if rows:
                    self.store.upsert_images(rows)
                    self.make_missing_splits()
                c.execute("UPDATE journal SET state='committed' WHERE id=?", (jid,))
            _fault_point("committed")
        except BaseException:
            try:
                for n in reversed(range(len(steps))):
                    _roll_back_import(Path(steps[n][0]), Path(steps[n][1]), n <= placed[0])
                self._journal_state(jid, "rolled back")
            except Exception:  # noqa: S110 - left pending: the next open rolls it back
                pass
            raise
        for tmp, _ in steps:  # the copies are in: their hidden names go
            _unlink_quietly(tmp)
            _fault_point("copy name removed")
        self._journal_state(jid, "done")
        op = Operation("import", copied, label=f"Import into {cls}")
        op.created_dirs, op.results = created, [r for r in results if r is not None]
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
    # An undo or redo that fails (a file gone, a disk full) leaves its operation where it
    # was, still undoable (or redoable), and raises with the reason.
    def undo(self) -> Operation | None:
        if not self.undo_stack:
            return None
        op = self.undo_stack[-1]
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
        self.undo_stack.pop()
        op.undone_moves = inverse
        for d in op.created_dirs:
            self._remove_if_empty(Path(d), None)
        self.redo_stack.append(op)
        return op

    def redo(self) -> Operation | None:
        if not self.redo_stack:
            return None
        op = self.redo_stack[-1]
        for d in op.created_dirs:
            Path(d).mkdir(parents=True, exist_ok=True)
        again = [(dst, src) for src, dst in reversed(op.undone_moves)]
        self._apply(f"redo {op.kind}", again, lambda: self._store_moves(again))
        self.redo_stack.pop()
        for d in op.removed_dirs:
            self._remove_if_empty(Path(d), None)
        self.undo_stack.append(op)
        return op

    # ---------------------------------------------------------------- helpers
    def _writable(self) -> None:
        if self.read_only:
            raise ProjectError(self.store.message or "the project is open read-only")

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
