"""Deterministic, stratified, stable train/validation splits (torch-free: the GUI uses them
when it opens a project)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def _split_key(seed: int, path: str, root: Path) -> bytes:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        rel = path
    return hashlib.blake2b(f"{seed}\0{rel}".encode(), digest_size=8).digest()


def split_indices(paths: Sequence[str], labels: Sequence[int], root: str | os.PathLike, val_fraction: float,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices into ``paths``.

    Each class is ordered by a seeded hash of the file's path within ``root``, and the first
    ``round(n * val_fraction)`` (at least one when the class has two or more images) go to
    validation. Ordering by hash rather than shuffling keeps the split stable: adding an
    image to a class moves at most one other image between the splits.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {val_fraction}")
    root = Path(root)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    train, val = [], []
    for label in sorted(by_class):
        idx = sorted(by_class[label], key=lambda i: _split_key(seed, paths[i], root))
        k = round(len(idx) * val_fraction)
        if val_fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val += idx[:k]
        train += idx[k:]
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)
