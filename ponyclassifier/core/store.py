"""The SQLite project store: what a class-folder dataset cannot hold by itself.

A project is a dataset folder (one subfolder per class: the truth any other tool can
read) plus this store in ``<dataset>/.ponyclassifier/project.sqlite``: per-image split,
status and reason, the thumbnail-cache index, and training runs with their per-epoch
curves and metrics.

Safety (RELIABILITY.md cases 16 and 18):
- WAL journal, ``synchronous=NORMAL``, every change in one transaction (all-or-nothing).
- The schema is versioned (``PRAGMA user_version``) and migrated forward step by step; a
  store written by a newer PonyClassifier is opened read-only, never rewritten.
- A store that fails ``PRAGMA quick_check`` (or is not SQLite at all) is refused and left
  as it is, with a message; it is never overwritten.
- A second instance on the same project gets the store read-only: the first holds an
  exclusive ``flock`` on ``.ponyclassifier/lock`` for as long as it is open.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock; a second instance is not detected
    fcntl = None

STORE_DIR = ".ponyclassifier"
STORE_NAME = "project.sqlite"
SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
STATUSES = ("ok", "bad", "duplicate", "unlabelled")

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE images (
        relpath TEXT PRIMARY KEY,
        class TEXT NOT NULL,
        split TEXT CHECK (split IN ('train', 'val', 'test')),
        status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'bad', 'duplicate', 'unlabelled')),
        reason TEXT,
        size INTEGER, mtime REAL, width INTEGER, height INTEGER, sha256 TEXT,
        updated REAL NOT NULL
    );
    CREATE INDEX images_class ON images(class);
    CREATE INDEX images_status ON images(status);
    CREATE TABLE thumbnails (relpath TEXT PRIMARY KEY, mtime REAL, size INTEGER, cache_key TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created TEXT NOT NULL,
        recipe TEXT NOT NULL,
        settings TEXT NOT NULL,
        device TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        seconds REAL,
        model_path TEXT,
        val_accuracy REAL, val_f1 REAL, test_accuracy REAL, test_f1 REAL,
        metrics TEXT
    );
    CREATE TABLE run_epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        logs TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch)
    );
    """,
}


class StoreError(Exception):
    """The store cannot be used as asked; the message says why and what happened to it."""


# What this version reads: a store (even a newer one) without these tables and columns, or
# with rows of other types, is refused with a StoreError instead of failing later on a raw
# sqlite error in the middle of the work.
_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "images": ("relpath", "class", "split", "status", "reason", "size", "mtime", "width", "height", "sha256",
               "updated"),
    "thumbnails": ("relpath", "mtime", "size", "cache_key"),
    "runs": ("id", "created", "recipe", "settings", "device", "status", "seconds", "model_path", "val_accuracy",
             "val_f1", "test_accuracy", "test_f1", "metrics"),
    "run_epochs": ("run_id", "epoch", "logs"),
}
_NUM = "('integer', 'real', 'null')"
# the values this version knows (a newer version may add some: see _check_contents)
_VALUES = """((split IS NOT NULL AND split NOT IN ('train', 'val', 'test'))
        OR status IS NULL OR status NOT IN ('ok', 'bad', 'duplicate', 'unlabelled'))"""
_BAD_ROWS: dict[str, str] = {
    # a relpath must be a plain relative path: no absolute path, no '..' part, no NUL
    "images": f"""typeof(relpath) != 'text' OR relpath = '' OR substr(relpath, 1, 1) = '/'
        OR relpath = '..' OR relpath LIKE '../%' OR relpath LIKE '%/../%' OR relpath LIKE '%/..'
        OR instr(relpath, char(0)) > 0 OR typeof(class) != 'text'
        OR {_VALUES}
        OR typeof(reason) NOT IN ('text', 'null') OR typeof(sha256) NOT IN ('text', 'null')
        OR typeof(size) NOT IN {_NUM} OR typeof(mtime) NOT IN {_NUM} OR typeof(width) NOT IN {_NUM}
        OR typeof(height) NOT IN {_NUM}""",
    "meta": "typeof(key) != 'text' OR typeof(value) != 'text'",
    "thumbnails": "typeof(relpath) != 'text' OR typeof(cache_key) != 'text'",
    "runs": """typeof(id) != 'integer' OR typeof(created) != 'text' OR typeof(recipe) != 'text'
        OR typeof(settings) != 'text' OR typeof(status) != 'text' OR typeof(metrics) NOT IN ('text', 'null')
        OR typeof(device) NOT IN ('text', 'null') OR typeof(model_path) NOT IN ('text', 'null')""",
    "run_epochs": "typeof(run_id) != 'integer' OR typeof(epoch) != 'integer' OR typeof(logs) != 'text'",
}
_MOVE_ASIDE = "Move it aside to start a fresh store (labels in the class folders are safe)."


@dataclass
class Run:
    id: int
    created: str
    recipe: str
    settings: dict[str, Any]
    device: str | None
    status: str
    seconds: float | None
    model_path: str | None
    val_accuracy: float | None
    val_f1: float | None
    test_accuracy: float | None
    test_f1: float | None
    metrics: dict[str, Any]

    @property
    def f1_gap(self) -> float | None:
        """Validation F1 minus external test F1: the drop the talks warn about. For a model
        refitted on every image, of the model before the refit, which the validation
        figures are of (one model on both sides)."""
        before = ((self.metrics or {}).get("test_before_refit") or {}).get("macro_f1")
        test_f1 = before if before is not None else self.test_f1
        if self.val_f1 is None or test_f1 is None:
            return None
        return self.val_f1 - test_f1


def store_path(dataset_root: str | os.PathLike) -> Path:
    return Path(dataset_root) / STORE_DIR / STORE_NAME


class ProjectStore:
    def __init__(self, dataset_root: str | os.PathLike, *, read_only: bool = False):
        self.root = Path(dataset_root)
        self.path = store_path(self.root)
        self.read_only = read_only
        self.message: str | None = None  # why we opened read-only, for the status bar
        self._lock_fd: int | None = None
        self._depth = 0
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self._acquire_lock():
                self.read_only = True
                self.message = ("This project is open in another PonyClassifier window; "
                                "it is opened read-only here.")
        if self.read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no project store to open read-only")
        self.conn = self._connect()
        try:
            self._check_and_migrate()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- opening
    def _acquire_lock(self) -> bool:
        if fcntl is None:
            return True
        fd = os.open(self.path.parent / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"file:{self.path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5)
        conn.row_factory = sqlite3.Row
        return conn

    def _check_and_migrate(self) -> None:
        try:
            if self.path.stat().st_size > 0:
                ok = self.conn.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise StoreError(f"{self.path}: the project store is damaged ({ok}); it was left untouched. "
                                     "Move it aside to start a fresh store (labels in the class folders are safe).")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a readable project store ({e}); it was left untouched. "
                             "Move it aside to start a fresh store (labels in the class folders are safe).") from None
        if version > SCHEMA_VERSION:
            if not self.read_only:
                self.close()
                self.read_only = True
                self.conn = self._connect()
            self.message = (f"This project was saved by a newer PonyClassifier (store version {version}, this "
                            f"version knows {SCHEMA_VERSION}); it is opened read-only so nothing is lost.")
            self._check_contents(newer=version)
            return
        if version < 0:
            raise StoreError(f"{self.path}: the project store has an impossible version ({version}); it was left "
                             f"untouched. {_MOVE_ASIDE}")
        if self.read_only:
            if version < SCHEMA_VERSION:
                raise StoreError(f"{self.path}: an older store that needs upgrading, but it is read-only here")
            self._check_contents()
            return
        if version == 0:
            try:
                tables = self.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: not a readable project store ({e}); it was left untouched. "
                                 f"{_MOVE_ASIDE}") from None
            if tables:  # a store of ours has a version from its first commit on: another program's file
                raise StoreError(f"{self.path}: not a PonyClassifier project store (an unversioned database with "
                                 f"tables); it was left as it was. {_MOVE_ASIDE}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            try:
                with self.transaction():
                    for statement in _split_sql(_MIGRATIONS[v]):
                        self.conn.execute(statement)
                    if v == 1:
                        self.conn.execute("INSERT INTO meta VALUES ('created', ?)", (_now(),))
                    self.conn.execute(f"PRAGMA user_version={v}")
            except sqlite3.DatabaseError as e:  # e.g. another program's database under our name
                raise StoreError(f"{self.path}: the project store could not be brought to version {v} ({e}); it "
                                 f"was left as it was. {_MOVE_ASIDE}") from None
        self._check_contents()

    def _check_contents(self, newer: int | None = None) -> None:
        """Every table and column this version reads is there and every row holds the types
        it expects (one scan per table), or StoreError: the store is left untouched. A store
        of a ``newer`` version may hold split and status values this version does not know
        (opened read-only, they are shown as they are); its paths and types are still checked."""
        move_aside = _MOVE_ASIDE if newer is None else (
            f"It was saved by a newer PonyClassifier (store version {newer}): open it with that version.")
        try:
            for table, columns in _REQUIRED_COLUMNS.items():
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                if not have:
                    raise StoreError(f"{self.path}: the project store has no {table} table; it was left untouched. "
                                     f"{_MOVE_ASIDE}")
                missing = [c for c in columns if c not in have]
                if missing:
                    raise StoreError(f"{self.path}: the project store's {table} table lacks {', '.join(missing)}; "
                                     f"it was left untouched. {_MOVE_ASIDE}")
            for table, bad in _BAD_ROWS.items():
                if newer is not None:
                    bad = bad.replace(_VALUES, "0")
                n = self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {bad}").fetchone()[0]
                if n:
                    raise StoreError(f"{self.path}: the project store holds {n} damaged row{'s' if n != 1 else ''} "
                                     f"in its {table} table (wrong types or paths); it was left untouched. "
                                     f"{move_aside}")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a readable project store ({e}); it was left untouched. "
                             f"{_MOVE_ASIDE}") from None

    def sibling(self) -> "ProjectStore":
        """Another connection to the same store for another part of this process (a
        connection must not be shared between threads' transactions). It shares this
        instance's lock and read-only state and must be closed before this one."""
        other = object.__new__(ProjectStore)
        other.root, other.path, other.read_only, other.message = self.root, self.path, self.read_only, self.message
        other._lock_fd, other._depth = None, 0
        other.conn = other._connect()
        if not other.read_only:
            other.conn.execute("PRAGMA foreign_keys=ON")
        return other

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "ProjectStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ------------------------------------------------------------- transactions
    def transaction(self):
        store = self

        class _Tx:
            # Re-entrant: an inner transaction joins the outer one, so a caller can group
            # several store calls (and its own statements) into one all-or-nothing commit.
            def __enter__(self_):
                store._writable()
                if store._depth == 0:
                    store.conn.execute("BEGIN IMMEDIATE")
                store._depth += 1
                return store.conn

            def __exit__(self_, exc_type, exc, tb):
                store._depth -= 1
                if store._depth == 0:
                    store.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(self.message or f"{self.path}: the project store is open read-only")

    # ------------------------------------------------------------------ images
    def upsert_images(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert or update images by relative path (keys: relpath, class, and optionally split,
        status, reason, size, mtime, width, height, sha256). One transaction."""
        now = time.time()
        rows = list(rows)
        for r in rows:
            status = r.get("status", "ok")
            if status not in STATUSES:
                raise StoreError(f"unknown image status {status!r}")
            split = r.get("split")
            if split is not None and split not in SPLITS:
                raise StoreError(f"unknown split {split!r}")
        with self.transaction() as c:
            c.executemany(
                """INSERT INTO images (relpath, class, split, status, reason, size, mtime, width, height, sha256,
                                       updated)
                   VALUES (:relpath, :class, :split, :status, :reason, :size, :mtime, :width, :height, :sha256, :u)
                   ON CONFLICT(relpath) DO UPDATE SET class=excluded.class,
                       split=COALESCE(excluded.split, images.split), status=excluded.status,
                       reason=excluded.reason, size=excluded.size, mtime=excluded.mtime,
                       width=excluded.width, height=excluded.height,
                       sha256=COALESCE(excluded.sha256, images.sha256), updated=excluded.updated""",
                ({"relpath": r["relpath"], "class": r["class"], "split": r.get("split"),
                  "status": r.get("status", "ok"), "reason": r.get("reason"), "size": r.get("size"),
                  "mtime": r.get("mtime"), "width": r.get("width"), "height": r.get("height"),
                  "sha256": r.get("sha256"), "u": now} for r in rows))
        return len(rows)

    def move_images(self, moves: Iterable[tuple[str, str, str]]) -> None:
        """(old relpath, new relpath, new class) for each moved file, all-or-nothing. A file
        moved into a class is labelled; one moved to the project root (class "") is not."""
        with self.transaction() as c:
            for old, new, cls in moves:
                cur = c.execute("""UPDATE images SET relpath=?, class=?, updated=?,
                                       status=CASE WHEN ?='' THEN 'unlabelled'
                                                   WHEN status='unlabelled' THEN 'ok' ELSE status END
                                   WHERE relpath=?""",
                                (new, cls, time.time(), cls, old))
                if cur.rowcount != 1:
                    raise StoreError(f"{old}: not in the project store")
                c.execute("DELETE FROM thumbnails WHERE relpath=?", (old,))

    def set_statuses(self, statuses: dict[str, tuple[str, str | None]]) -> int:
        """Per image (relpath): (status, reason), all-or-nothing; returns how many rows changed.
        Unknown paths are skipped (the file left while its status was being found)."""
        for status, _ in statuses.values():
            if status not in STATUSES:
                raise StoreError(f"unknown image status {status!r}")
        now = time.time()
        with self.transaction() as c:
            cur = c.executemany("UPDATE images SET status=?, reason=?, updated=? WHERE relpath=? "
                                "AND (status IS NOT ? OR reason IS NOT ?)",
                                ((status, reason, now, relpath, status, reason)
                                 for relpath, (status, reason) in statuses.items()))
            return max(cur.rowcount, 0)  # summed over the rows by sqlite3

    def meta(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r["value"] if r else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as c:
            if value is None:
                c.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def remove_images(self, relpaths: Iterable[str]) -> None:
        keys = [(p,) for p in relpaths]
        with self.transaction() as c:
            c.executemany("DELETE FROM images WHERE relpath=?", keys)
            c.executemany("DELETE FROM thumbnails WHERE relpath=?", keys)

    def set_splits(self, splits: dict[str, str | None]) -> None:
        for split in set(splits.values()):
            if split is not None and split not in SPLITS:
                raise StoreError(f"unknown split {split!r}")
        now = time.time()
        with self.transaction() as c:
            c.executemany("UPDATE images SET split=?, updated=? WHERE relpath=?",
                          ((split, now, relpath) for relpath, split in splits.items()))

    def images(self, *, cls: str | None = None, split: str | None = None, status: str | None = None) -> list[dict]:
        q, args = "SELECT * FROM images WHERE 1=1", []
        for col, val in (("class", cls), ("split", split), ("status", status)):
            if val is not None:
                q += f" AND {col}=?"
                args.append(val)
        return [dict(r) for r in self.conn.execute(q + " ORDER BY relpath", args)]

    def image_classes(self) -> dict[str, str]:
        """{relpath: class} of every image: what a sync compares with the folder, without a
        dict per row."""
        return dict(self.conn.execute("SELECT relpath, class FROM images").fetchall())

    def has_labelled_without_split(self) -> bool:
        return self.conn.execute("SELECT 1 FROM images WHERE class != '' AND split IS NULL LIMIT 1").fetchone() \
            is not None

    def counts(self) -> dict[str, dict[str, int]]:
        """{class: {"train": n, "val": n, "test": n, "unassigned": n, "bad": n, "total": n}};
        images in the project root, not in a class folder, count under class ""."""
        out: dict[str, dict[str, int]] = {}
        for r in self.conn.execute("SELECT class, split, status, COUNT(*) n FROM images GROUP BY class, split, status"):
            d = out.setdefault(r["class"], {"train": 0, "val": 0, "test": 0, "unassigned": 0, "bad": 0, "total": 0})
            d["total"] += r["n"]
            if r["status"] == "bad":
                d["bad"] += r["n"]
            else:
                d[r["split"] or "unassigned"] += r["n"]
        return out

    # -------------------------------------------------------------- thumbnails
    def thumbnail_key(self, relpath: str, mtime: float, size: int) -> str | None:
        r = self.conn.execute("SELECT cache_key FROM thumbnails WHERE relpath=? AND mtime=? AND size=?",
                              (relpath, mtime, size)).fetchone()
        return r["cache_key"] if r else None

    def set_thumbnail_key(self, relpath: str, mtime: float, size: int, key: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO thumbnails VALUES (?, ?, ?, ?)", (relpath, mtime, size, key))

    # -------------------------------------------------------------------- runs
    def start_run(self, recipe: str, settings: dict[str, Any], device: str | None = None) -> int:
        with self.transaction() as c:
            cur = c.execute("INSERT INTO runs (created, recipe, settings, device) VALUES (?, ?, ?, ?)",
                            (_now(), recipe, json.dumps(settings), device))
            return int(cur.lastrowid)

    def add_epoch(self, run_id: int, epoch: int, logs: dict[str, Any]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO run_epochs VALUES (?, ?, ?)", (run_id, epoch, json.dumps(_finite(logs))))

    def finish_run(self, run_id: int, *, status: str, seconds: float, model_path: str | None,
                   metrics: dict[str, Any]) -> None:
        val, test = metrics.get("validation") or {}, metrics.get("test") or {}
        with self.transaction() as c:
            c.execute("""UPDATE runs SET status=?, seconds=?, model_path=?, val_accuracy=?, val_f1=?,
                                         test_accuracy=?, test_f1=?, metrics=? WHERE id=?""",
                      (status, seconds, model_path, val.get("accuracy"), val.get("macro_f1"), test.get("accuracy"),
                       test.get("macro_f1"), json.dumps(_finite(metrics)), run_id))

    def runs(self) -> list[Run]:
        out = []
        for r in self.conn.execute("SELECT * FROM runs ORDER BY id"):
            figures = [r[k] for k in ("seconds", "val_accuracy", "val_f1", "test_accuracy", "test_f1")]
            if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in figures):
                raise StoreError(f"{self.path}: run {r['id']} in the project store is damaged (a figure that is "
                                 "not a number)")
            out.append(Run(r["id"], r["created"], r["recipe"], self._json(r["settings"], dict, f"run {r['id']}"),
                           r["device"], r["status"], *figures[:1], r["model_path"], *figures[1:],
                           self._json(r["metrics"], dict, f"run {r['id']}") if r["metrics"] else {}))
        return out

    def run_curves(self, run_id: int) -> list[dict[str, Any]]:
        return [self._json(r["logs"], dict, f"epoch {r['epoch']} of run {run_id}") for r in
                self.conn.execute("SELECT epoch, logs FROM run_epochs WHERE run_id=? ORDER BY epoch", (run_id,))]

    def _json(self, raw: Any, kind: type, what: str) -> Any:
        """A JSON field of ours, or StoreError naming it: a store someone else wrote may hold
        anything there."""
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, kind):
            raise StoreError(f"{self.path}: {what} in the project store is damaged (its record is not readable)")
        return value

    def delete_run(self, run_id: int) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM run_epochs WHERE run_id=?", (run_id,))
            c.execute("DELETE FROM runs WHERE id=?", (run_id,))


def _split_sql(script: str) -> Iterator[str]:
    for part in script.split(";"):
        if part.strip():
            yield part


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _finite(d: Any) -> Any:
    """JSON has no NaN: store None instead."""
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_finite(v) for v in d]
    if isinstance(d, float) and (d != d or d in (float("inf"), float("-inf"))):
        return None
    return d
