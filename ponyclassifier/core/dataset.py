"""Class-folder datasets: scanning with a report, readiness checks, stratified splits, the
decoded-image cache and the batch source that feeds training.

A dataset is a folder with one subfolder per class; image files anywhere below a class
folder count. Scanning decodes every file fully, once, through the one safe decoder, and
keeps the resized result in memory when it fits the budget, so small datasets are never
decoded again. Bad files are reported with a reason and never stop the work.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .folders import NotAFolderError, class_files, list_class_folders
from .images import DecodedImage, ImageError, decode_image
from .preprocess import to_uint8_tensor
from .splits import split_indices

MAX_CLASSES = 1000
MIN_IMAGES_PER_CLASS = 2
DEFAULT_CACHE_BUDGET = min(4 << 30, int(0.25 * (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")))
                           if hasattr(os, "sysconf") else 2 << 30)

Progress = Callable[[int, int], None]


class DatasetError(Exception):
    """A dataset that cannot be used for the requested work, with the reason."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class ScanReport:
    """What a scan found: the good images per class and every skipped file with its reason."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    skipped: list[SkippedFile] = field(default_factory=list)
    grayscale: bool = False
    median_side: int = 0
    # uint8 (N, C, size, size) aligned with samples, when it fitted the memory budget.
    images: torch.Tensor | None = None
    image_size: int | None = None
    channels: int = 3
    stopped: bool = False

    @property
    def counts(self) -> dict[str, int]:
        c = {name: 0 for name in self.classes}
        for s in self.samples:
            c[self.classes[s.label]] += 1
        return c

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter((s.label for s in self.samples), dtype=np.int64, count=len(self.samples))

    def training_problems(self) -> list[str]:
        """Why this dataset cannot train, each a sentence a user can act on (empty: fine)."""
        problems = []
        if not self.classes:
            return [f"{self.root}: no class folders found. A dataset is a folder with one "
                    "subfolder per class, e.g. pets/cat/*.jpg and pets/dog/*.jpg."]
        if len(self.classes) < 2:
            problems.append(f"{self.root}: only one class ({self.classes[0]!r}); a classifier needs "
                            "at least two class folders.")
        if len(self.classes) > MAX_CLASSES:
            problems.append(f"{self.root}: {len(self.classes)} classes; PonyClassifier trains up to "
                            f"{MAX_CLASSES} classes.")
            return problems
        from .trained import class_names_problem  # noqa: PLC0415 (the one rule for class names)

        bad = class_names_problem(list(self.classes))
        if bad:
            problems.append(f"{self.root}: {bad}; rename the class folder.")
            return problems
        if not self.samples:
            n = len(self.skipped)
            why = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in self.skipped[:3])
            problems.append(f"{self.root}: no usable images" + (f": all {n} files were skipped ({why}"
                            f"{', ...' if n > 3 else ''})" if n else " in the class folders."))
            return problems
        for name, n in self.counts.items():
            if n == 0:
                problems.append(f"class {name!r} has no usable images; add some or remove the folder.")
            elif n < MIN_IMAGES_PER_CLASS:
                problems.append(f"class {name!r} has only {n} image; each class needs at least "
                                f"{MIN_IMAGES_PER_CLASS} (one to train on, one to validate with).")
        return problems

    def check_trainable(self) -> None:
        problems = self.training_problems()
        if problems:
            raise DatasetError("This dataset cannot be trained yet:\n- " + "\n- ".join(problems))


def scan_dataset(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    cache_budget: int = DEFAULT_CACHE_BUDGET,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> ScanReport:
    """Scan and fully decode a class-folder dataset.

    ``classes``: the class list to use (a test folder or evaluation set is read with the
    model's classes; folders not in it are reported as skipped). ``image_size``: also keep
    every image resized to this size in memory when ``N * 3 * size**2`` fits
    ``cache_budget``. ``channels``: 1 or 3; None picks 1 when every image is grayscale.
    """
    root = Path(root)
    named: list[tuple[str, str]] = []  # files and folders left out for their names (not valid UTF-8)
    try:
        found = list_class_folders(root, named)
    except NotAFolderError as e:
        raise DatasetError(str(e)) from None
    skipped: list[SkippedFile] = []
    if classes is None:
        classes = found
    else:
        classes = list(classes)
        for name in found:
            if name not in classes:
                skipped.append(SkippedFile(str(root / name), f"class {name!r} is not one of the model's classes"))
    index = {c: i for i, c in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    if len(classes) <= MAX_CLASSES:  # a 10,000-class folder is refused before any decoding
        for name in classes:
            if name in found:
                files.extend((p, index[name]) for p in class_files(root / name, named))

    n = len(files)
    keep = image_size is not None and n * 3 * image_size * image_size <= cache_budget
    buf = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8) if keep and n else None
    ok = np.zeros(n, dtype=bool)
    gray = np.zeros(n, dtype=bool)
    sides = np.zeros(n, dtype=np.int32)
    reasons: dict[int, str] = {}
    done = 0
    lock = threading.Lock()
    draft = (image_size, image_size) if image_size else None

    def work(i: int) -> None:
        nonlocal done
        if should_stop is not None and should_stop():
            return
        path = files[i][0]
        try:
            d: DecodedImage = decode_image(path, draft_size=draft)
            if buf is not None:
                buf[i] = to_uint8_tensor(d.image, image_size, 3)
            ok[i], gray[i], sides[i] = True, d.grayscale, min(d.original_size)
        except ImageError as e:
            reasons[i] = e.reason
        except Exception as e:  # never let one file stop the scan
            reasons[i] = f"cannot read: {e}"
        with lock:
            done += 1
            d_ = done
        if progress is not None:
            progress(d_, n)

    workers = workers or min(8, (os.cpu_count() or 2) + 2)
    if n:
        with ThreadPoolExecutor(workers, thread_name_prefix="pony-scan") as pool:
            list(pool.map(work, range(n), chunksize=16))
    stopped = bool(should_stop is not None and should_stop())

    good = np.flatnonzero(ok)
    samples = [Sample(str(files[i][0]), files[i][1]) for i in good]
    skipped += [SkippedFile(p, why) for p, why in named]
    skipped += [SkippedFile(str(files[i][0]), reasons[i]) for i in sorted(reasons)]
    all_gray = bool(len(good)) and bool(gray[good].all())
    ch = channels or (1 if all_gray else 3)
    images = None
    if buf is not None and not stopped:
        images = buf[torch.from_numpy(good)] if len(good) < n else buf
        if ch == 1:
            images = images[:, :1].contiguous()
    return ScanReport(root, list(classes), samples, skipped, all_gray,
                      int(np.median(sides[good])) if len(good) else 0, images, image_size, ch, stopped)


# ------------------------------------------------------------------------- splits


def stratified_split(report: ScanReport, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified train/validation indices into ``report.samples`` (see
    :func:`ponyclassifier.core.splits.split_indices`)."""
    try:
        return split_indices([s.path for s in report.samples], [s.label for s in report.samples], report.root,
                             val_fraction, seed)
    except ValueError as e:
        raise DatasetError(str(e)) from None


# --------------------------------------------------------------------- batch source


class TooManyBadFiles(DatasetError):
    pass


class BatchSource:
    """Batches of (uint8 images on the device, labels on the device, sample indices).

    From the in-memory cache when the scan kept one, else decoded from disk on a thread
    pool one batch ahead. A file that breaks after the scan (deleted, corrupted) is skipped
    and recorded in ``failures``; past ``max_bad_fraction`` of the images the epoch stops
    with TooManyBadFiles.
    """

    def __init__(self, report: ScanReport, indices: np.ndarray, batch_size: int, *, image_size: int,
                 channels: int, device: torch.device, shuffle: bool, seed: int = 0,
                 max_bad_fraction: float = 0.1, workers: int | None = None,
                 shard: tuple[int, int] | None = None):
        self.report = report
        # every image of this source; ``indices`` is this process's share of them (all of them
        # in one process): see ``shard``
        self.report_indices = np.asarray(indices, dtype=np.int64)
        self.shard = shard if shard is not None and shard[1] > 1 else None
        self.indices = self.report_indices[shard[0]::shard[1]] if self.shard else self.report_indices
        self.batch_size, self.image_size, self.channels = batch_size, image_size, channels
        self.device, self.shuffle, self.seed = device, shuffle, seed
        self.max_bad = max(1, int(max_bad_fraction * len(self.indices)))
        self.failures: dict[str, str] = {}
        self.labels = torch.from_numpy(report.labels)
        self.workers = workers or min(8, (os.cpu_count() or 2) + 2)
        cached = report.images is not None and report.image_size == image_size and report.channels == channels
        self.images = report.images if cached else None

    def __len__(self) -> int:
        return (len(self.indices) + self.batch_size - 1) // self.batch_size

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, epoch])
        return self.report_indices[rng.permutation(len(self.report_indices))]

    def _chunks(self, epoch: int, in_order: bool = False) -> list[tuple[np.ndarray, int]]:
        """(this process's images, size of the whole batch) per batch. Shuffled sources are
        dealt from global batches, the same on every process (image i of a batch to process
        i mod N), so N processes take the steps one process would; a last batch with fewer
        images than processes is left out (every process must take every step)."""
        order = self.indices if in_order else self.order(epoch)
        b = self.batch_size
        chunks = [order[i:i + b] for i in range(0, len(order), b)]
        if self.shard is None or not self.shuffle or in_order:
            return [(c, len(c)) for c in chunks]
        rank, size = self.shard
        return [(c[rank::size], len(c)) for c in chunks if len(c) >= size]

    def batches(self, epoch: int = 0, in_order: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """``in_order``: this process's share in sample order, whatever ``shuffle`` says."""
        for x, y, idx, _ in self.batches_with_size(epoch, in_order):
            yield x, y, idx

    def batches_with_size(self, epoch: int = 0, in_order: bool = False
                          ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray, int]]:
        """(images, labels, sample indices, images in the whole batch over all processes)."""
        chunks = self._chunks(epoch, in_order)
        non_blocking = self.device.type == "cuda"
        if self.images is not None:
            for idx, n in chunks:
                t = torch.from_numpy(idx)
                yield (self.images[t].to(self.device, non_blocking=non_blocking),
                       self.labels[t].to(self.device, non_blocking=non_blocking), idx, n)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pony-load") as pool:
            pending = pool.submit(self._load, chunks[0][0]) if chunks else None
            for k in range(len(chunks)):
                x, idx = pending.result()
                pending = pool.submit(self._load, chunks[k + 1][0]) if k + 1 < len(chunks) else None
                if len(idx):
                    t = torch.from_numpy(idx)
                    yield x.to(self.device), self.labels[t].to(self.device), idx, chunks[k][1]
                elif self.shard is not None and self.shuffle:
                    # every process takes every step: one with nothing to train on cannot go on
                    raise TooManyBadFiles(f"none of the {len(chunks[k][0])} images of this process's share of a "
                                          "batch could be read: " + "; ".join(
                                              f"{p}: {r}" for p, r in list(self.failures.items())[-3:]))

    def _load(self, idx: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        from .preprocess import load_input

        xs, kept = [], []
        for i in idx:
            path = self.report.samples[i].path
            try:
                xs.append(load_input(path, self.image_size, self.channels))
                kept.append(i)
            except ImageError as e:
                self.failures[path] = e.reason
            except Exception as e:
                self.failures[path] = f"cannot read: {e}"
        if len(self.failures) > self.max_bad:
            raise TooManyBadFiles(
                f"{len(self.failures)} images became unreadable during training (more than "
                f"{self.max_bad}); stopped. First: " + "; ".join(
                    f"{p}: {r}" for p, r in list(self.failures.items())[:3]))
        s = self.image_size
        x = torch.stack(xs) if xs else torch.empty((0, self.channels, s, s), dtype=torch.uint8)
        return x, np.array(kept, dtype=np.int64)
