"""Where the app keeps its own files, the recent-projects list and the demo project.

A project is a dataset folder with one subfolder per class. The app's own data (the
demo project, the thumbnail cache, the error log) lives in the user's data folder,
which ``PONYCLASSIFIER_DATA_DIR`` overrides (tests point it at ``tmp_path``).
"""

from __future__ import annotations

import os
import shutil
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
