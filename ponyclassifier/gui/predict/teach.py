"""'Teach it', without Qt: a picture from the live view added to the project (the worker
body of the live view's Save picture)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

import numpy as np
from PIL import Image


def frame_name(target: str, number: int) -> str:
    """The saved file's name: the class, the time and a number, so nothing is overwritten."""
    slug = re.sub(r"[^\w-]+", "-", target.lower()).strip("-") or "frame"
    return f"{slug}-live-{time.strftime('%Y%m%d-%H%M%S')}-{number:03d}.png"


def save_into_project(project, rgb: np.ndarray, target: str, name: str, tmp_dir: str) -> str:
    """Write ``rgb`` (uint8 (H, W, 3)) as a PNG in a private folder under ``tmp_dir`` and import
    it into class ``target`` of ``project`` (journaled, undoable, never overwriting). Returns
    the path it got in the project; raises OSError when it could not be added."""
    folder = tempfile.mkdtemp(dir=tmp_dir)
    tmp = os.path.join(folder, name)
    try:
        Image.fromarray(rgb, "RGB").save(tmp, "PNG")
        op = project.import_files([tmp], target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    r = op.results[0] if op.results else None
    if r is None or not r.target:
        raise OSError(r.error if r is not None else "nothing was imported")
    return r.target
