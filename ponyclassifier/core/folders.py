"""The class-folder layout rules, in one place and torch-free (the GUI lists big folders
with them without paying for importing torch).

A dataset is a folder with one subfolder per class; folders starting with "." or "_" are
not classes (our store lives in ``.ponyclassifier``); image candidates anywhere below a
class folder count, in sorted order, hidden folders skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from .images import is_candidate_file


class NotAFolderError(Exception):
    pass


def list_class_folders(root: str | os.PathLike) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise NotAFolderError(f"{root}: not a folder")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def iter_class_file_paths(folder: str | os.PathLike) -> Iterator[str]:
    """Image candidates below a class folder as plain string paths, sorted, directory by
    directory, hidden folders skipped (strings: on 20,000 files this is 3x quicker than
    ``Path`` objects, which matters when a worker thread lists a big folder)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if is_candidate_file(f):
                yield os.path.join(dirpath, f)


def iter_class_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Image candidates below a class folder, sorted, directory by directory."""
    return map(Path, iter_class_file_paths(folder))


def class_files(folder: str | os.PathLike) -> list[Path]:
    return list(iter_class_files(folder))


MIN_IMAGES_WARNING = 10  # fewer images than this in a class earns a warning
IMBALANCE_WARNING = 3.0  # largest class / a class above this earns a warning


def class_warnings(counts: dict[str, int]) -> dict[str, str]:
    """Per class, why it may train badly (too few images, strong imbalance), in words for
    the class list's tooltip; classes with nothing to say are left out."""
    out: dict[str, str] = {}
    if not counts:
        return out
    largest = max(counts.values())
    big = max(counts, key=counts.get)
    for c, n in counts.items():
        why = []
        if n < MIN_IMAGES_WARNING:
            why.append(f"only {n} image{'s' if n != 1 else ''}; aim for at least {MIN_IMAGES_WARNING} per class")
        if (n == 0 or largest / max(n, 1) > IMBALANCE_WARNING) and n and c != big:
            why.append(f"{largest / n:.1f}× fewer images than {big!r} ({largest}); unbalanced "
                       "classes bias the model towards the big ones")
        if why:
            out[c] = "; ".join(why)
    return out
