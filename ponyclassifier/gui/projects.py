"""Where the app keeps its own files, the recent-projects list, the demo project, and the
worker-side steps of opening a project (store, sync, splits) and reading it back.

A project is a dataset folder with one subfolder per class. The app's own data (the
demo project, the thumbnail cache, the error log) lives in the user's data folder,
which ``PONYCLASSIFIER_DATA_DIR`` overrides (tests point it at ``tmp_path``).

The functions taking a ``Project`` run on a worker (see :mod:`.workers`), never on the
GUI thread: ``ponyclassifier.core.project`` pulls in torch, and a sync walks the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from .workers import JobState

MAX_RECENT = 8
RECENT_KEY = "projects/recent"
DEMO_FOLDER = "demo-ponies"


def data_dir() -> Path:
    env = os.environ.get("PONYCLASSIFIER_DATA_DIR")
    if env:
        path = Path(env)
    else:
        loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        path = Path(loc) if loc else Path.home() / ".ponyclassifier"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path() -> Path:
    return data_dir() / "ponyclassifier.log"


def thumbnail_cache_dir() -> Path:
    return data_dir() / "thumbnails"


def demo_dir() -> Path:
    return data_dir() / DEMO_FOLDER


def demo_per_class() -> int:
    """Images per pony in the demo; ``PONYCLASSIFIER_DEMO_PER_CLASS`` makes tests fast."""
    try:
        return max(1, int(os.environ.get("PONYCLASSIFIER_DEMO_PER_CLASS", "60")))
    except ValueError:
        return 60


def demo_is_ready() -> bool:
    d = demo_dir()
    return d.is_dir() and any(p.is_dir() and any(p.iterdir()) for p in d.iterdir())


def generate_demo(state: JobState, per_class: int | None = None) -> str:
    """Worker: draw the demo project into a temp folder, then move it into place.

    Building beside the final folder means a cancelled or crashed run never leaves a
    half-made demo project that would be opened next time.
    """
    from ..core.demo import generate_demo_dataset

    final = demo_dir()
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    generate_demo_dataset(partial, per_class=per_class or demo_per_class(), seed=0, progress=state.progress)
    state.check()
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return str(final)


def recent_projects(settings: QSettings | None = None) -> list[str]:
    s = settings or QSettings()
    value = s.value(RECENT_KEY, [])
    if isinstance(value, str):  # QSettings gives a bare string for a one-item list
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent_project(path: str, settings: QSettings | None = None) -> list[str]:
    s = settings or QSettings()
    path = os.path.abspath(path)
    items = [path] + [p for p in recent_projects(s) if os.path.abspath(p) != path]
    items = items[:MAX_RECENT]
    s.setValue(RECENT_KEY, items)
    return items


def clear_recent_projects(settings: QSettings | None = None) -> None:
    (settings or QSettings()).remove(RECENT_KEY)


def valid_class_name(name: str) -> str | None:
    """Why ``name`` cannot be a class folder name, or None when it can (the core's rules)."""
    from ..core.project import class_name_problem  # noqa: PLC0415 (numpy: only when asked)

    problem = class_name_problem(name)
    if problem is None or not name.strip():
        return problem
    return f"{name!r}: {problem}"


# --------------------------------------------------------------------------
# project store (worker side)
# --------------------------------------------------------------------------

# One row of the browser's model: (absolute path, class, split or None, status, reason or None)
Row = tuple


def snapshot(project, root: str) -> list[Row]:
    """Every image the store knows, as model rows under ``root`` (the path the GUI uses)."""
    return [(os.path.join(root, *r["relpath"].split("/")), r["class"], r["split"], r["status"], r["reason"])
            for r in project.store.images()]


def entries_from_rows(rows) -> dict[str, list]:
    """Store rows ``(path, class, split, status, reason)`` as the model keeps them."""
    return {r[0]: [r[1], r[2], r[3], r[4]] for r in rows}


COUNT_KEYS = ("total", "train", "val", "test", "unassigned", "bad", "unlabelled")


def tally(counts: dict[str, dict[str, int]], cls: str, split: str | None, status: str | None) -> dict[str, int]:
    """Count one image of class ``cls`` into ``counts`` (per class: :data:`COUNT_KEYS`);
    returns the class's counts."""
    d = counts.get(cls)
    if d is None:
        d = counts[cls] = dict.fromkeys(COUNT_KEYS, 0)
    d["total"] += 1
    d[split if split in ("train", "val", "test") else "unassigned"] += 1  # a newer version's split: not ours
    if status == "bad":
        d["bad"] += 1
    elif status == "unlabelled":
        d["unlabelled"] += 1
    return d


def count_entries(entries: dict[str, list]) -> dict[str, dict[str, int]]:
    """Per class: total, per split, bad and unlabelled (pure Python: workers call it too)."""
    out: dict[str, dict[str, int]] = {}
    for cls, split, status, _ in entries.values():
        tally(out, cls, split, status)
    return out


def read_back(project, root: str) -> tuple[dict[str, list], dict[str, dict[str, int]]]:
    """Worker: the store's rows as the browser's model keeps them (see :func:`entries_from_rows`)
    and their per-class counts, built off the GUI thread."""
    entries = entries_from_rows(snapshot(project, root))
    return entries, count_entries(entries)


def import_images(project, cls: str, images) -> tuple:
    """Worker: images in memory, ``[(QImage, file name), ...]``, into class ``cls`` through
    the project's journaled import (one undo step; a name taken in the class folder gets a
    new one, never overwriting). Each is written as PNG to a private temporary folder first,
    removed afterwards. Returns ``(operation or None when none could be written, [names
    that could not be written])``."""
    tmp = tempfile.mkdtemp(prefix="ponyclassifier-import-")
    try:
        files, failed = [], []
        for image, name in images:
            path = os.path.join(tmp, name)
            if image.save(path, "PNG"):
                files.append(path)
            else:
                failed.append(name)
        return (project.import_files(files, cls) if files else None), failed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_project_job(root: str, listing=None) -> dict:
    """Worker: open (or create) the project store of ``root``, sync it with the folder and
    give new images a split (with the share and seed of the last Make Split). Raises
    StoreError for a damaged store (left untouched). ``listing``: the folder as the browser
    just listed it, ``[(absolute path, class), ...]``, so that it is walked once on open."""
    from ..core.project import Project  # noqa: PLC0415

    project = Project(root)
    try:
        relisted = None
        if project.recovered and listing is not None:
            # an interrupted change was rolled back on open: files moved after the listing
            from ..core.project import iter_project_files  # noqa: PLC0415

            listing = relisted = list(iter_project_files(root))
        if not project.read_only:
            project.sync(listing, listed_root=root)  # root as opened (maybe through a link)
            project.make_missing_splits()
        entries, counts = read_back(project, root)
        return {"project": project, "rows": entries, "counts": counts,
                "classes": project.classes(), "relisted": relisted}
    except BaseException:
        project.close()
        raise
