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
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from .workers import JobState

VAL_FRACTION = 0.2  # the share of each class that goes to validation when splits are made
SPLIT_SEED = 0

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
    """Why ``name`` cannot be a class folder name, or None when it can."""
    if not name.strip():
        return "a class name cannot be empty"
    if name != name.strip():
        return f"{name!r}: no spaces at the start or end"
    if name.startswith((".", "_")):
        return f"{name!r}: names starting with '.' or '_' are ignored as class folders"
    if any(ch in name for ch in '/\\:*?"<>|') or name in (".", ".."):
        return f"{name!r}: a class name cannot contain / \\ : * ? \" < > |"
    return None


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


def count_entries(entries: dict[str, list]) -> dict[str, dict[str, int]]:
    """Per class: total, per split, bad and unlabelled (pure Python: workers call it too)."""
    out: dict[str, dict[str, int]] = {}
    for cls, split, status, _ in entries.values():
        d = out.get(cls)
        if d is None:
            d = out[cls] = dict.fromkeys(("total", "train", "val", "test", "unassigned", "bad", "unlabelled"), 0)
        d["total"] += 1
        d[split or "unassigned"] += 1
        if status == "bad":
            d["bad"] += 1
        elif status == "unlabelled":
            d["unlabelled"] += 1
    return out


def assign_missing_splits(project, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED) -> int:
    """Give images without a split one, by the core's seeded stratified split (train/val).

    Images that already have a split keep it, so a user's or an earlier run's choice stays;
    the core orders each class by a hash of the path, so new images rarely shift old ones.
    """
    # Unlabelled images (class "": lying in the project root) get a split once they have a class.
    rows = [r for r in project.store.images() if r["class"]]
    if all(r["split"] for r in rows) or project.read_only:
        return 0
    from ..core.splits import split_indices  # noqa: PLC0415

    classes = sorted({r["class"] for r in rows})
    index = {c: i for i, c in enumerate(classes)}
    train, val = split_indices([str(project.root / r["relpath"]) for r in rows],
                               [index[r["class"]] for r in rows], project.root, val_fraction, seed)
    splits: dict[str, str] = {}
    for name, idx in (("train", train), ("val", val)):
        for i in idx:
            if not rows[i]["split"]:
                splits[rows[i]["relpath"]] = name
    if splits:
        project.store.set_splits(splits)
    return len(splits)


def open_project_job(root: str) -> dict:
    """Worker: open (or create) the project store of ``root``, sync it with the folder and
    record splits for new images. Raises StoreError for a damaged store (left untouched)."""
    from ..core.project import Project  # noqa: PLC0415

    project = Project(root)
    try:
        if not project.read_only:
            project.sync()
            assign_missing_splits(project)
        entries = entries_from_rows(snapshot(project, root))  # built here, not on the GUI thread
        return {"project": project, "rows": entries, "counts": count_entries(entries),
                "classes": project.classes()}
    except BaseException:
        project.close()
        raise
