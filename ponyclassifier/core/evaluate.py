"""Scoring a network on images: the final reports of training, ``evaluate_model`` (a model
on a class-folder dataset) and ``evaluate_split`` (a model on the validation split that
training set aside)."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .dataset import BatchSource, DatasetError, ScanReport, SkippedFile, scan_dataset, stratified_split
from .devices import Precision, select_device
from .distributed import SINGLE, World
from .metrics import Report, classification_report
from .preprocess import to_float
from .trained import TrainedModel


@torch.no_grad()
def predict_source(net: nn.Module, src: BatchSource, precision: Precision | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   world: World = SINGLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities (N, C), true labels and sample indices of every image ``src`` could
    read. Under several processes ``src`` is this process's share and the results of all
    shares are gathered, in sample order, on every process."""
    net.eval()
    probs, labels, idxs = [], [], []
    total, done = len(src.indices), 0
    n_classes = len(src.report.classes)
    for xb, yb, idx in src.batches(0):
        if should_stop is not None and should_stop():
            break
        with precision.autocast() if precision is not None else torch.no_grad():
            logits = net(to_float(xb)).float()
        probs.append(logits.softmax(1))
        labels.append(yb)
        idxs.append(torch.as_tensor(idx, dtype=torch.long, device=yb.device))
        done += len(yb)
        if progress is not None:
            progress(done, total)
    dev = src.device
    p = torch.cat(probs) if probs else torch.zeros((0, n_classes), device=dev)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long, device=dev)
    i = torch.cat(idxs) if idxs else torch.zeros(0, dtype=torch.long, device=dev)
    if world.distributed:
        p, y, i = world.gather_cat(p), world.gather_cat(y), world.gather_cat(i)
        order = torch.argsort(i)
        p, y, i = p[order], y[order], i[order]
    return p.cpu().numpy(), y.cpu().numpy(), i.cpu().numpy()


def report_from(probs: np.ndarray, labels: np.ndarray, idx: np.ndarray, report: ScanReport) -> Report:
    return classification_report(labels, probs, report.classes, [report.samples[k].path for k in idx])


def per_image(probs: np.ndarray, labels: np.ndarray, idx: np.ndarray, report: ScanReport) -> list[dict[str, Any]]:
    """One ``{"path", "true", "predicted", "confidence"}`` per image (a confusion-matrix cell's pictures)."""
    classes = report.classes
    pred = probs.argmax(1) if len(labels) else np.zeros(0, dtype=np.int64)
    return [{"path": str(report.samples[int(k)].path), "true": classes[int(t)], "predicted": classes[int(c)],
             "confidence": float(probs[n, c])} for n, (k, t, c) in enumerate(zip(idx, labels, pred))]


@torch.no_grad()
def evaluate_source(net: nn.Module, src: BatchSource, classes: Sequence[str], precision: Precision | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Report:
    p, y, idx = predict_source(net, src, precision, should_stop, progress)
    return classification_report(y, p, classes, [src.report.samples[k].path for k in idx])


def _score_folder(model: TrainedModel, data_dir: str | os.PathLike, pick: Callable[[ScanReport], np.ndarray],
                  empty: str, device: str, batch_size: int, progress: Callable[[int, int], None] | None,
                  should_stop: Callable[[], bool] | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, ScanReport, list[SkippedFile]]:
    """Scan ``data_dir`` with the model's classes and predict the images ``pick(scan)``
    selects: probabilities, true labels, sample indices, the scan and the files skipped.
    ``empty`` names what is missing in the error raised when ``pick`` selects nothing."""
    dev = select_device(device)
    report = scan_dataset(data_dir, classes=model.classes, image_size=model.image_size, channels=model.channels,
                          should_stop=should_stop)
    indices = pick(report)
    if not len(indices):
        raise DatasetError(f"{data_dir}: {empty} "
                           f"({', '.join(model.classes[:6])}{'...' if len(model.classes) > 6 else ''})")
    model.network.to(dev)
    src = BatchSource(report, indices, batch_size, image_size=model.image_size, channels=model.channels,
                      device=dev, shuffle=False)
    p, y, idx = predict_source(model.network, src, Precision(dev, None), should_stop, progress)
    skipped = list(report.skipped) + [SkippedFile(q, r) for q, r in src.failures.items()]
    return p, y, idx, report, skipped


def evaluate_model(model: TrainedModel, data_dir: str | os.PathLike, *, device: str = "auto",
                   batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[Report, list[SkippedFile]]:
    """Score a model on a class-folder dataset read with the model's classes."""
    p, y, idx, report, skipped = _score_folder(
        model, data_dir, lambda report: np.arange(len(report.samples)),
        "no usable images in folders named after the model's classes", device, batch_size, progress, should_stop)
    return report_from(p, y, idx, report), skipped


def evaluate_split(model: TrainedModel, data_dir: str | os.PathLike, *, val_split: float = 0.2, seed: int = 0,
                   device: str = "auto", batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, val_paths: frozenset[str] | None = None
                   ) -> tuple[Report, list[dict[str, Any]], list[SkippedFile]]:
    """Score a model on the validation split that training with ``val_split`` and ``seed``
    sets aside (the same split function), with one prediction per image (for showing the
    images of a confusion-matrix cell). The split is of the dataset as it is now.

    A model refitted on all images (``model.training["refit"]``) has seen these images: its
    score here is not a validation score, and the caller should say so.

    ``val_paths``: the validation images by path relative to ``data_dir`` ("/" separators),
    as a project's split names them (:class:`.runs.ProjectSplit`), instead of a split made here."""

    def pick(report):
        if val_paths is None:
            return stratified_split(report, val_split, seed)[1]
        root = os.fspath(report.root)
        return np.array([i for i, s in enumerate(report.samples)
                         if os.path.relpath(s.path, root).replace(os.sep, "/") in val_paths], dtype=np.int64)

    p, y, idx, report, skipped = _score_folder(
        model, data_dir, pick,
        "no validation images of the model's classes", device, batch_size, progress, should_stop)
    return report_from(p, y, idx, report), per_image(p, y, idx, report), skipped
