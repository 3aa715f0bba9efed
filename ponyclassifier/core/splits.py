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
    return _rel_key(seed, rel)


def _rel_key(seed: int, rel: str) -> bytes:
    """The ordering key of a file by its path relative to the root, in the OS's own
    separators (the form :func:`os.path.relpath` gives, which the first splits used)."""
    return hashlib.blake2b(f"{seed}\0{rel}".encode(), digest_size=8).digest()


def split_indices(paths: Sequence[str], labels: Sequence[int], root: str | os.PathLike, val_fraction: float,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices into ``paths``.

    Each class is ordered by a seeded hash of the file's path within ``root``, and the first
    ``round(n * val_fraction)`` (at least one when the class has two or more images) go to
    validation. Ordering by hash rather than shuffling keeps the split stable: adding an
    image to a class moves at most one other image between the splits.
    """
    root = Path(root)
    return _split_by_keys([_split_key(seed, p, root) for p in paths], labels, val_fraction)


def split_indices_by_relpath(relpaths: Sequence[str], labels: Sequence[int], val_fraction: float,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_indices` for paths already relative to the root, with "/" separators
    (as the project store keeps them): the same split, without building and re-relativising
    an absolute path per image (a third of a project open at 20,000 images)."""
    sep = os.sep
    conv = (lambda r: r) if sep == "/" else (lambda r: r.replace("/", sep))
    return _split_by_keys([_rel_key(seed, conv(r)) for r in relpaths], labels, val_fraction)


def _split_by_keys(keys: Sequence[bytes], labels: Sequence[int], val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 <= val_fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {val_fraction}")
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    train, val = [], []
    for label in sorted(by_class):
        idx = sorted(by_class[label], key=keys.__getitem__)
        k = round(len(idx) * val_fraction)
        if val_fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val += idx[:k]
        train += idx[k:]
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)
