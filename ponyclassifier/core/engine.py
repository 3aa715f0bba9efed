"""Training: ``Trainer.fit(data_dir, callbacks=[...])``.

The loop is small and flat (as torchvision's reference ``train_one_epoch``/``evaluate``).
Metrics leave the device once per step. Callbacks are the only observers; the only way in
is ``trainer.should_stop``, checked before every batch.

Settings left on "auto" are chosen from the data by :mod:`.policy` after the scan, and
each choice is said in a message ("auto: ... (why)") and kept in the model file.

For frozen pretrained bases (``transfer``, ``finetune``) the frozen prefix of the network
runs once over the data and its outputs are cached on the device, so an epoch costs only
the trainable part. With augmentation on, the prefix runs once per augmented copy (``K``
passes, said in a message), and epoch ``e`` trains on copy ``e % K``. The transfer head is
chosen by cross-validation on those cached features (:mod:`.headselect`).

After the epochs, a run may be *refitted* (the policy says when): the validation images
chose the number of epochs, and the final model trains again on every image for that many.
The validation report is always the one of the model trained without the validation images.

Training fails loudly: a loss or weight that is no longer finite stops the run with the
epoch and the likely cause; a model with non-finite weights is never returned or written.
Out of GPU memory, the batch is halved and the learning-rate schedule rebuilt for it
(training, feature caching and validation alike).

Under ``torchrun`` (:mod:`.distributed`) each process trains on its share of every batch.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import headselect
from . import models as M
from .augment import AugmentConfig, build_augmenter
from .callbacks import Callback, CallbackList, History, epoch_score
from .dataset import (DEFAULT_CACHE_BUDGET, BatchSource, DatasetError, ScanReport, SkippedFile, TooManyBadFiles,
                      scan_dataset, stratified_split)
from .devices import (DeviceError, Precision, device_description, seed_everything, select_device as _select_device,
                      set_deterministic)
from .distributed import SINGLE, World
from .evaluate import evaluate_model, evaluate_source, evaluate_split, per_image, predict_source, report_from
from .folders import class_files, list_class_folders
from .images import ImageError, decode_image
from .metrics import Report
from .modelfile import first_non_finite
from .optim import OPTIMIZERS, make_optimizer, one_cycle, pct_start
from .policy import AUTO, DataFacts, TrainingPlan, plan_training, plan_with_share
from .preprocess import to_float
from .runs import ProjectSplit
from .trained import TrainedModel, default_unsure_threshold

__all__ = ["TrainConfig", "Trainer", "TrainResult", "TrainingError", "TrainingDiverged", "TrainingStopped",
           "select_device", "device_description", "evaluate_model", "evaluate_split", "evaluate_source",
           "stratified_split", "median_image_side", "glance_dataset", "training_image_size", "default_batch_size", "RECIPE_DEFAULTS",
           "MAX_SCRATCH_SIZE"]

# What each recipe trains at, and the fine-tune phase's rate; epochs, learning rate, batch
# size, augmentation, validation share and refitting are the policy's (core/policy.py).
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "scratch": {"image_size": None},
    "transfer": {"image_size": 224},
    "finetune": {"image_size": 224, "finetune_lr_factor": 0.1},
}
MAX_SCRATCH_SIZE = 150
MIN_BATCH_SIZE = 2


class TrainingError(Exception):
    """Training could not run; the message says why and what to do."""


class TrainingStopped(TrainingError):
    """Stopped (``should_stop``) before anything was trained: no model, nothing to keep."""


class TrainingDiverged(TrainingError):
    """The loss or the weights stopped being finite numbers."""


def select_device(name: str = "auto") -> torch.device:
    try:
        return _select_device(name)
    except DeviceError as e:
        raise TrainingError(str(e)) from None


@dataclass
class TrainConfig:
    """What a run is asked to do. ``None`` (``augment``: "auto") leaves a setting to the
    policy, which picks it from the data (:func:`ponyclassifier.core.policy.plan_training`)."""

    recipe: str = "scratch"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "adamw"  # adamw | adam | rmsprop | sgd
    image_size: int | None = None  # None: per recipe (scratch adapts to the images, up to 150)
    val_split: float | None = None
    seed: int = 0
    augment: AugmentConfig | None | str = AUTO  # "auto", None (off) or the strengths
    allow_flip: bool = True  # False: auto augmentation never flips (digits, letters)
    dropout: float | None = None
    weight_decay: float = 1e-4
    early_stopping: int | None = None  # patience in epochs on val_loss
    device: str = "auto"
    mixed_precision: bool | None = None  # None: on for CUDA (bfloat16 where supported)
    deterministic: bool = False
    unsure_threshold: float | None = None
    finetune_from: int | None = None
    aug_copies: int | None = None  # transfer/finetune with augmentation: cached augmented copies
    head: str = AUTO  # transfer head: auto (cross-validated) or one of headselect.HEAD_KEYS
    refit: bool | None = None
    cache_budget: int = DEFAULT_CACHE_BUDGET
    max_bad_fraction: float = 0.1
    label_smoothing: float | None = None  # None: the head's (transfer) or 0
    weights_path: str | None = None
    workers: int | None = None

    def resolved(self) -> "TrainConfig":
        """A checked copy (the auto settings stay auto until the data is known)."""
        if self.recipe not in RECIPE_DEFAULTS:
            raise TrainingError(f"unknown recipe {self.recipe!r}; choose scratch, transfer or finetune")
        c = copy.deepcopy(self)
        if c.image_size is None:
            c.image_size = RECIPE_DEFAULTS[c.recipe]["image_size"]
        if c.epochs is not None and c.epochs < 1:
            raise TrainingError("epochs must be at least 1")
        if c.batch_size is not None and c.batch_size < 1:
            raise TrainingError("batch size must be at least 1")
        if c.lr is not None and not (c.lr > 0 and math.isfinite(c.lr)):
            raise TrainingError("the learning rate must be a positive number")
        if c.image_size is not None and not 16 <= c.image_size <= 1024:
            raise TrainingError("image size must be between 16 and 1024 pixels")
        if c.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {c.optimizer!r}")
        if c.val_split is not None and not 0 <= c.val_split < 1:
            raise TrainingError("the validation share must be at least 0 and below 1")
        if isinstance(c.augment, str) and c.augment != AUTO:
            raise TrainingError(f"augmentation must be 'auto', off or a set of strengths, not {c.augment!r}")
        if c.head not in headselect.HEAD_KEYS:
            raise TrainingError(f"unknown head {c.head!r}; choose {', '.join(headselect.HEAD_KEYS)}")
        return c

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = self.augment.to_dict() if isinstance(self.augment, AugmentConfig) else self.augment
        d.pop("weights_path", None)
        return d


@dataclass
class TrainResult:
    model: TrainedModel
    history: dict[str, list[float]]
    val_report: Report | None
    test_report: Report | None
    skipped: list[SkippedFile]
    best_epoch: int | None
    epochs_run: int
    stopped: bool
    stop_reason: str | None
    seconds: float
    device: str
    scan: ScanReport
    plan: TrainingPlan | None = None
    # the validation images' predictions by the model trained without them
    val_predictions: list[dict[str, Any]] = field(default_factory=list)
    refit_epochs: int = 0
    test_before_refit: Report | None = None  # the external test score of the model the validation figures are of


def _sample(root: str | os.PathLike, limit: int) -> tuple[dict[str, int], list[int], list[bool]]:
    """Files per class, and the smaller side and grayness of a spread-out sample of them."""
    counts, files = {}, []
    for name in list_class_folders(root):
        found = class_files(Path(root) / name)
        counts[name] = len(found)
        files += found
    sides, gray = [], []
    if files:
        step = max(1, len(files) // limit)
        for p in files[::step][:limit]:
            try:
                d = decode_image(p)
            except ImageError:
                continue
            sides.append(min(d.original_size))
            gray.append(d.grayscale)
    return counts, sides, gray


def median_image_side(root: str | os.PathLike, limit: int = 48) -> int:
    """The typical smaller side of the images (decoding a spread-out sample)."""
    _, sides, _ = _sample(root, limit)
    return int(np.median(sides)) if sides else MAX_SCRATCH_SIZE


def training_image_size(recipe: str, source_side: int, image_size: int | None = None) -> int:
    """The square a run trains at (the one rule, also shown by the Train panel): as set, else
    the recipe's (224 px for the pretrained network), else (scratch) the pictures' own
    typical smaller side, from 16 to ``MAX_SCRATCH_SIZE`` px."""
    return (image_size or RECIPE_DEFAULTS.get(recipe, {}).get("image_size")
            or max(16, min(MAX_SCRATCH_SIZE, int(source_side))))


def glance_dataset(root: str | os.PathLike, recipe: str, image_size: int | None = None,
                   limit: int = 48) -> DataFacts:
    """What the policy needs, from the folder listing and a decoded sample (no full scan):
    the Train panel shows the auto settings before training from this. Training itself
    decides from the full scan, which also drops unreadable files."""
    counts, sides, gray = _sample(root, limit)
    side = int(np.median(sides)) if sides else MAX_SCRATCH_SIZE
    size = training_image_size(recipe, side, image_size)
    return DataFacts(images=sum(counts.values()), classes=len(counts),
                     min_per_class=min(counts.values()) if counts else 0, image_size=size, source_side=side,
                     channels=1 if gray and all(gray) else 3)


def default_batch_size(image_size: int) -> int:
    """The batch size of a large dataset (the policy uses smaller ones for small sets)."""
    return 64 if image_size <= 64 else 32


def _project_indices(report: ScanReport, split: ProjectSplit) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices into ``report.samples`` by the project's split."""
    train, val = [], []
    root = os.fspath(report.root)
    for i, s in enumerate(report.samples):
        rel = os.path.relpath(s.path, root).replace(os.sep, "/")
        if rel in split.left_out:
            continue
        (val if rel in split.val else train).append(i)
    return np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)


class _Diverged(Exception):
    def __init__(self, what: str, epoch: int, batch: int | None):
        super().__init__(what)
        self.what, self.epoch, self.batch = what, epoch, batch


class _Progress(Callback):
    """Turns a refit's batch ends into progress of one stage (the plots show the main run only)."""

    def __init__(self, outer: Callback, stage: str, total: int):
        self.outer, self.stage, self.total, self.done = outer, stage, total, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        self.done += int(logs.get("size", 0))
        self.outer.on_prepare_progress(self.stage, min(self.done, self.total), self.total)


class Trainer:
    def __init__(self, config: TrainConfig | None = None, world: World = SINGLE):
        self.config = (config or TrainConfig()).resolved()
        self.world = world
        self.should_stop = False
        self.stop_reason: str | None = None
        self._state: dict[str, Any] = {}

    # -------------------------------------------------------------------- helpers
    def _message(self, cb: Callback, text: str) -> None:
        cb.on_message(text)

    def current_model(self, logs: dict[str, Any] | None = None) -> TrainedModel:
        """The model as it is now (ModelCheckpoint saves this when the monitor improves)."""
        s = self._state
        return TrainedModel(network=s["net"], classes=s["classes"], recipe=self.config.recipe,
                            architecture=s["arch"], image_size=s["image_size"], channels=s["channels"],
                            unsure_threshold=s["threshold"], training=s["training"],
                            metrics={"epoch": (logs or {}).get("epoch"),
                                     "val_accuracy": (logs or {}).get("val_accuracy")},
                            history=copy.deepcopy(s["history"].history))

    def _stopping(self, device: torch.device) -> bool:
        """``should_stop``, agreed by every process (one stops, all stop at the same batch)."""
        if self.world.distributed:
            self.should_stop = self.world.any(self.should_stop, device)
        return self.should_stop

    # ------------------------------------------------------------------------ fit
    def fit(self, data: str | os.PathLike | ScanReport, callbacks: Sequence[Callback] = (),
            test_dir: str | os.PathLike | None = None, *,
            initial_model: TrainedModel | dict[str, torch.Tensor] | str | os.PathLike | None = None,
            initial_epoch: int = 0, split: ProjectSplit | None = None) -> TrainResult:
        """Train the planned epochs in all (Keras' ``fit(epochs, initial_epoch)``).

        Resume a stopped run with ``initial_model`` (its saved model, a path to one or a
        state dict) and ``initial_epoch`` (the epochs it completed): training runs epochs
        ``initial_epoch + 1`` to the planned number, numbered so, from those weights; the
        learning-rate schedule (and the fine-tune recipe's phase) continues where it was.
        The optimizer's running averages are not in a model file, so they start afresh.

        ``split``: the project's split (:func:`.runs.project_split`): its validation images
        validate, the images it leaves out (marked bad or duplicate) are not used, every
        other image trains; the validation share is then the project's, not the policy's.
        """
        cfg = self.config
        world = self.world
        if isinstance(initial_model, (str, os.PathLike)):
            initial_model = TrainedModel.load(initial_model)
        t_start = time.perf_counter()
        self.should_stop, self.stop_reason = False, None
        self._diverged_flag = False
        self._val_cache = None  # (suffix, (features, labels, indices)) of the frozen prefix, for the final report
        history = History()
        cb = CallbackList([history, *callbacks], self)
        set_deterministic(cfg.deterministic)
        seed_everything(cfg.seed)
        # Tiny gradients turn into denormal floats that make CPU kernels 3-4x slower.
        torch.set_flush_denormal(True)
        device = self._device()
        precision = Precision(device, cfg.mixed_precision)
        if precision.asked_but_unavailable:
            self._message(cb, f"Mixed precision is for CUDA GPUs; on {device.type} this run uses float32.")

        start_size = initial_model.image_size if isinstance(initial_model, TrainedModel) else None
        if isinstance(data, ScanReport):
            report = data
            size = cfg.image_size or start_size or report.image_size or MAX_SCRATCH_SIZE
        else:
            size = start_size if not cfg.image_size and start_size else \
                training_image_size(cfg.recipe, median_image_side(data), cfg.image_size)
            report = scan_dataset(data, image_size=size, cache_budget=cfg.cache_budget,
                                  progress=lambda d, t: cb.on_prepare_progress("scan", d, t),
                                  should_stop=lambda: self.should_stop, workers=cfg.workers)
        if report.stopped or self.should_stop:
            raise TrainingStopped("stopped while reading the images, before training began; nothing was trained")
        report.check_trainable()
        channels = report.channels
        classes = report.classes
        counts = np.bincount(report.labels, minlength=len(classes)) if len(report.samples) else np.zeros(1, int)
        facts = DataFacts(images=len(report.samples), classes=len(classes), min_per_class=int(counts.min()),
                          image_size=size, source_side=int(report.median_side or size), channels=channels)
        if split is not None:
            train_idx, val_idx = _project_indices(report, split)
            left_out = len(report.samples) - len(train_idx) - len(val_idx)
            if left_out:
                self._message(cb, f"{left_out} picture(s) marked bad or duplicate in the project are left out.")
            used = len(train_idx) + len(val_idx)
            share = len(val_idx) / used if used else 0.0
            if not len(train_idx):
                raise DatasetError("the project's split leaves no images to train on; make a new split "
                                   "(Dataset ▸ Splits…)")
            facts = DataFacts(images=used, classes=facts.classes, min_per_class=facts.min_per_class,
                              image_size=size, source_side=facts.source_side, channels=channels)
            plan = plan_with_share(cfg, facts, share, split.describe())
        else:
            plan = plan_training(cfg, facts)
        self.plan = plan
        for line in plan.lines():
            self._message(cb, line)
        epochs_total = int(plan.epochs.value)
        if not 0 <= initial_epoch < epochs_total:
            raise TrainingError(f"cannot start at epoch {initial_epoch + 1}: the run has {epochs_total} epochs "
                                "(all done already?)")
        if split is None:
            train_idx, val_idx = stratified_split(report, plan.val_split.value, cfg.seed)
        test_report_scan = None
        if test_dir is not None:
            test_report_scan = scan_dataset(test_dir, classes=classes, image_size=size, channels=channels,
                                            cache_budget=cfg.cache_budget, workers=cfg.workers,
                                            progress=lambda d, t: cb.on_prepare_progress("scan test set", d, t))
            if not test_report_scan.samples:
                raise DatasetError(f"{test_dir}: the test folder has no usable images of the classes "
                                   f"{', '.join(classes[:5])}{'...' if len(classes) > 5 else ''}")

        head_spec = None
        if cfg.recipe == "transfer" and initial_model is not None:
            head_spec = _resumed_head(initial_model)  # a resumed run keeps the head its model has
            if cfg.head != AUTO and cfg.head != head_spec.key:
                raise TrainingError(f"cannot resume with head {cfg.head!r}: the saved model has {head_spec.key!r}")
        elif cfg.recipe == "transfer" and cfg.head != AUTO:
            head_spec = headselect.spec_for(cfg.head)
        if isinstance(initial_model, TrainedModel):
            arch = dict(initial_model.architecture)
        else:
            arch = M.arch_config(cfg.recipe, len(classes), size, channels, cfg.dropout, cfg.finetune_from,
                                 **self._head_arch(head_spec))
        net = M.build_model(arch)
        if initial_model is not None:
            _load_initial_weights(net, initial_model, classes, channels)
        elif cfg.recipe in ("transfer", "finetune"):
            M.load_pretrained_base(net, cfg.weights_path)
        if world.distributed and device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        # channels_last: 1.7x faster convolutions on CPU (oneDNN) and with tensor cores.
        mf = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
        net.to(device, memory_format=mf)
        self._memory_format = mf
        batch_size = int(plan.batch_size.value)
        training = cfg.to_dict() | {"image_size": size, "device": device_description(device),
                                    "train_images": int(len(train_idx)), "val_images": int(len(val_idx)),
                                    "dataset": str(report.root), "plan": plan.to_dict(),
                                    "precision": precision.describe(), "processes": world.size}
        self._state = {"net": net, "classes": classes, "arch": arch, "image_size": size, "channels": channels,
                       "threshold": cfg.unsure_threshold or default_unsure_threshold(len(classes)),
                       "training": training, "history": history, "head": head_spec}
        if head_spec is not None:
            training["head_choice"] = {"choice": head_spec.key, "name": head_spec.name, "cross_validation": {},
                                       "folds": 0}

        lr = float(plan.lr.value)
        if cfg.recipe == "finetune":
            head_epochs = max(1, epochs_total // 2)
            phases = [("head", head_epochs, None, lr),
                      ("finetune", epochs_total - head_epochs, M.split_point(arch, "finetune"),
                       lr * RECIPE_DEFAULTS["finetune"]["finetune_lr_factor"])]
        else:
            phases = [("head" if cfg.recipe == "transfer" else "train", epochs_total, None, lr)]

        train_src = self._source(report, train_idx, batch_size, size, channels, device, shuffle=True)
        val_src = self._source(report, val_idx, batch_size, size, channels, device, shuffle=False)
        best = {"score": None, "state": None, "epoch": None}
        cb.on_train_begin({"epochs": epochs_total, "initial_epoch": initial_epoch, "train_images": len(train_idx),
                           "val_images": len(val_idx), "device": device_description(device), "recipe": cfg.recipe,
                           "batch_size": batch_size, "refit": bool(plan.refit.value)})
        phase_start = 0
        self._refit_feats = None  # the transfer head's cached features, kept for its refit
        self._test_feats = None
        try:
            return self._fit_rest(cfg, world, cb, history, report, plan, phases, train_idx, val_idx, net, size,
                                  channels, classes, device, precision, train_src, val_src, test_report_scan, best,
                                  initial_epoch, batch_size, training, lr, t_start)
        finally:
            # cached features can be gigabytes on the GPU: never kept past the run
            self._val_cache = self._refit_feats = self._test_feats = None

    def _fit_rest(self, cfg, world, cb, history, report, plan, phases, train_idx, val_idx, net, size, channels,
                  classes, device, precision, train_src, val_src, test_report_scan, best, initial_epoch, batch_size,
                  training, lr, t_start) -> "TrainResult":
        epoch = initial_epoch  # the last epoch completed, numbered over the whole (resumed) run
        phase_start = 0
        for phase, n_epochs, point, phase_lr in phases:
            skip = min(n_epochs, max(0, initial_epoch - phase_start))  # this phase's epochs done before
            phase_start += n_epochs
            if n_epochs - skip <= 0 or self._stopping(device):
                continue
            done, batch_size = self._run_phase(phase, n_epochs, point, phase_lr, net, train_src, val_src, device,
                                               precision, cb, best, epoch, batch_size, skip)
            epoch += done
        epochs_run = epoch - initial_epoch
        if epochs_run == 0 and self.stop_reason and not self.stop_reason.startswith("early"):
            raise (TrainingDiverged if self.diverged else TrainingError)(self.stop_reason)
        if best["state"] is not None:
            net.load_state_dict(best["state"])
        net.eval()

        val_report, val_predictions = None, []
        if len(val_idx) and epochs_run > 0:
            p, y, idx = self._oom_retry("the validation report", cb, device, [val_src],
                                        lambda: self._val_predictions(net, val_src, precision))
            val_report = report_from(p, y, idx, report)
            val_predictions = per_image(p, y, idx, report)

        test_src = None
        if test_report_scan is not None and epochs_run > 0:
            test_src = self._source(test_report_scan, np.arange(len(test_report_scan.samples)), batch_size, size,
                                    channels, device, shuffle=False)
        # early stopping ends the epochs, not the run: the refit still comes
        early = self.should_stop and (self.stop_reason or "").startswith("early stopping")
        refit_epochs, test_before = 0, None
        if plan.refit.value and best["epoch"] is not None and (not self._stopping(device) or early):
            if test_src is not None:  # the held-out model's test score too: the validation-test gap is of one model
                p, y, idx = self._oom_retry("the test report", cb, device, [test_src],
                                            lambda: self._test_predictions(net, test_src, precision, cb))
                test_before = report_from(p, y, idx, test_report_scan)
            refit_epochs = self._refit(net, phases, best, report, train_idx, val_idx, size, channels, device,
                                       precision, cb, batch_size)
        test_report = None
        if test_src is not None:
            p, y, idx = self._oom_retry("the test report", cb, device, [test_src],
                                        lambda: self._test_predictions(net, test_src, precision, cb))
            test_report = report_from(p, y, idx, test_report_scan)
        failures = {**train_src.failures, **val_src.failures, **(test_src.failures if test_src is not None else {})}
        failures = world.merge_dicts(failures)  # every process's unreadable files, not one's share
        skipped = list(report.skipped) + (list(test_report_scan.skipped) if test_report_scan is not None else []) \
            + [SkippedFile(q, r) for q, r in failures.items()]
        bad = first_non_finite(net.state_dict())
        if bad is not None:  # never hand out (or let anyone save) a model that is not numbers
            raise TrainingDiverged(self._diverged_message(
                _Diverged(f"the weights ({bad}) are no longer finite numbers", epoch, None), lr, precision))

        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {"best_epoch": best["epoch"], "epochs_run": epochs_run,
                                   "initial_epoch": initial_epoch, "seconds": round(seconds, 2),
                                   "stopped": self.should_stop and self.stop_reason is None,
                                   "stop_reason": self.stop_reason, "skipped_files": len(skipped)}
        if val_report:
            metrics["validation"] = _compact(val_report)
        if test_report:
            metrics["test"] = _compact(test_report)
        if test_before is not None:
            metrics["test_before_refit"] = _compact(test_before)
        training["batch_size_used"] = batch_size
        training["refit"] = {"epochs": refit_epochs, "images": int(len(train_idx) + len(val_idx))} if refit_epochs \
            else None
        model = TrainedModel(network=net, classes=classes, recipe=cfg.recipe, architecture=self._state["arch"],
                             image_size=size, channels=channels, unsure_threshold=self._state["threshold"],
                             training=training, metrics=metrics, history=copy.deepcopy(history.history))
        cb.on_train_end({"epochs_run": epochs_run, "best_epoch": best["epoch"], "seconds": seconds,
                         "refit_epochs": refit_epochs})
        return TrainResult(model, history.history, val_report, test_report, skipped, best["epoch"], epochs_run,
                           self.should_stop, self.stop_reason, seconds, device_description(device), report, plan,
                           val_predictions, refit_epochs, test_before)

    # ------------------------------------------------------------------ pieces
    def _device(self) -> torch.device:
        cfg, world = self.config, self.world
        if not world.distributed:
            return select_device(cfg.device)
        if cfg.device == "mps":
            raise TrainingError("several processes train on CUDA GPUs or on the CPU, not on Apple MPS")
        if cfg.device != "cpu" and torch.cuda.is_available():
            return torch.device("cuda", world.local_rank)  # one GPU per process, whatever cuda:N said
        if cfg.device.startswith("cuda"):
            raise TrainingError(f"--device {cfg.device} was asked for, but no CUDA GPU is available")
        return torch.device("cpu")

    def _source(self, report, idx, batch_size, size, channels, device, *, shuffle) -> BatchSource:
        cfg = self.config
        return BatchSource(report, idx, batch_size, image_size=size, channels=channels, device=device,
                           shuffle=shuffle, seed=cfg.seed, max_bad_fraction=cfg.max_bad_fraction, workers=cfg.workers,
                           shard=(self.world.rank, self.world.size) if self.world.distributed else None)

    def _head_arch(self, spec: headselect.HeadSpec | None) -> dict[str, Any]:
        if spec is None or not spec.hidden:
            return {}
        return {"head_hidden": spec.hidden, "head_dropout": spec.dropout if spec.dropout is not None else 0.5}

    @property
    def diverged(self) -> bool:
        """The last fit stopped because the loss or the weights stopped being finite."""
        return getattr(self, "_diverged_flag", False)


    def _head_lr(self, phase: str, lr: float) -> float:
        """The transfer head's rate: the recipe's, scaled as its head needs."""
        spec = self._state.get("head")
        if phase == "head" and self.config.recipe == "transfer" and spec is not None:
            return lr * spec.lr_scale
        return lr

    def _label_smoothing(self) -> float:
        if self.config.label_smoothing is not None:
            return float(self.config.label_smoothing)
        spec = self._state.get("head")
        return spec.label_smoothing if spec is not None and self.config.recipe == "transfer" else 0.0

    def _val_predictions(self, net, src, precision):
        """Probabilities, labels and sample indices of ``src``: from the cached prefix
        outputs when the prefix stayed frozen to the end, else through the whole network."""
        cached = self._val_cache
        if cached is not None and src is cached[2]:
            suffix, (table, labels, idx) = cached[0], cached[1]
            return self._suffix_predictions(suffix, table, labels, idx, precision, src.batch_size)
        return predict_source(net, src, precision, world=self.world)

    def _oom_retry(self, what: str, cb: Callback, device: torch.device, sources: list[BatchSource],
                   run: Callable[[], Any]) -> Any:
        """``run()``, halving the sources' batch size after each out-of-memory error."""
        while True:
            try:
                return run()
            except torch.cuda.OutOfMemoryError:
                pass
            # outside the except block, so the failed attempt's tensors are freed first
            if device.type == "cuda":
                torch.cuda.empty_cache()
            size = sources[0].batch_size
            if self.world.distributed or size // 2 < MIN_BATCH_SIZE:
                raise TrainingError(f"out of GPU memory while computing {what}, even with batches of {size}; "
                                    "try a smaller image size or --device cpu")
            for s in sources:
                s.batch_size = size // 2
            self._message(cb, f"Out of GPU memory while computing {what}: batch size halved to {size // 2}; "
                              "starting that again.")

    def _check_finite(self, net: nn.Module, epoch: int) -> None:
        bad = first_non_finite(net.state_dict())
        if bad is not None:
            raise _Diverged(f"the weights ({bad}) are no longer finite numbers", epoch, None)

    def _diverged_message(self, d: _Diverged, lr: float, precision: Precision) -> str:
        where = f"epoch {d.epoch}" + (f", batch {d.batch + 1}" if d.batch is not None else "")
        hint = (f"The learning rate ({lr:g}) is probably too high: try {lr / 10:g}, or leave it on auto"
                + ("; or turn mixed precision off (--no-amp)" if precision.scaler is not None else "") + ".")
        return f"Training diverged in {where}: {d.what}. {hint}"

    # ---------------------------------------------------------------------- phase
    def _run_phase(self, phase, n_epochs, point, lr, net, train_src, val_src, device, precision, cb, best,
                   epoch0, batch_size, skip=0, *, select_best=True, features=None, limit=None):
        """Epochs ``skip + 1`` to ``n_epochs`` of a phase; ``epoch0``: epochs before them in the run.
        ``features``: (train copies, val features) of a frozen prefix to reuse (a refit);
        ``limit``: stop after this many epochs, on the schedule of ``n_epochs`` (a refit)."""
        cfg = self.config
        prefix, suffix, trainable = M.set_trainable(net, point)
        frozen_prefix = not isinstance(prefix, nn.Identity)
        if not frozen_prefix:
            self._val_cache = None  # a phase that trains the whole network makes old features stale
        aug_cfg = self.plan.augment.value
        rank = self.world.rank  # each process draws its own augmentations and dropout masks
        augmenter = build_augmenter(aug_cfg, seed=cfg.seed + epoch0 + 7919 * rank, device=device)

        train_feats = val_feats = None
        if frozen_prefix and features is not None:
            train_feats, val_feats = features
        elif frozen_prefix:
            self._val_cache = None  # features of this phase's prefix replace any earlier ones
            copies = 1
            if augmenter is not None:
                copies = cfg.aug_copies or min(n_epochs, 3)
                self._message(cb, f"Augmentation with a frozen base: computing base features for {copies} "
                                  f"augmented copies of {len(train_src.report_indices)} images ({copies} passes through "
                                  "the base instead of one per epoch).")
            train_feats = []
            for k in range(copies):
                stage = f"features (copy {k + 1}/{copies})" if copies > 1 else "features"
                train_feats.append(self._oom_retry("the base's features", cb, device, [train_src, val_src],
                                                   lambda: self._prefix_outputs(prefix, train_src, augmenter, device,
                                                                                precision, cb, stage))[:2])
            if len(val_src.report_indices):
                *vf, val_idx = self._oom_retry("the base's features", cb, device, [train_src, val_src],
                                               lambda: self._prefix_outputs(prefix, val_src, None, device, precision,
                                                                            cb, "features (validation)"))
                val_feats = tuple(vf)
                if not self.should_stop and len(val_idx) == len(val_src.report_indices):
                    # The prefix stays frozen from here to the end of training (in both fine-tune
                    # phases), so these features also serve the final evaluation.
                    self._val_cache = (suffix, (*val_feats, val_idx), val_src)
            if self._stopping(device):
                return 0, batch_size
            if phase == "head" and cfg.recipe == "transfer" and self.plan.refit.value:
                self._refit_feats = (train_feats, val_feats)
            if phase == "head" and cfg.recipe == "transfer" and self._state["head"] is None:
                self._choose_head(net, train_feats[0], lr, batch_size, cb)
                prefix, suffix, trainable = M.set_trainable(net, point)
                if self._val_cache is not None:
                    self._val_cache = (suffix, *self._val_cache[1:])
        lr = self._head_lr(phase, lr)
        params = [p for m in trainable for p in m.parameters()]
        model = suffix if frozen_prefix else net
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                        find_unused_parameters=False)

        n_train = len(train_feats[0][1]) if train_feats is not None else len(train_src.report_indices)
        steps = lambda b: max(1, math.ceil(n_train / b))  # noqa: E731
        opt = make_optimizer(cfg.optimizer, params, lr, cfg.weight_decay)
        sched = one_cycle(opt, lr, n_epochs * steps(batch_size) + 1, pct_start(n_epochs), skip * steps(batch_size))
        if self.world.distributed:
            torch.manual_seed(cfg.seed + 7919 * (rank + 1) + epoch0)  # dropout masks differ between processes
        done = 0
        last = n_epochs - skip if limit is None else min(limit, n_epochs - skip)
        while done < last and not self._stopping(device):
            epoch = epoch0 + done + 1
            cb.on_epoch_begin(epoch, {"phase": phase})
            t0 = time.perf_counter()
            try:
                tr = self._train_epoch(model, net, frozen_prefix, train_src, train_feats, augmenter, opt, sched,
                                       device, precision, cb, epoch, batch_size, trainable)
                if tr is not None:
                    self._check_finite(net, epoch)
            except torch.cuda.OutOfMemoryError:
                oom = True
            except TooManyBadFiles as e:  # stop with the report; the best model so far is kept
                if self.world.distributed:  # the other processes cannot go on without this one's share
                    raise TrainingError(str(e)) from None
                self.stop_reason = str(e)
                self.should_stop = True
                self._message(cb, str(e))
                break
            except _Diverged as d:
                self._stop_diverged(d, lr, precision, cb)
                break
            else:
                oom = False
            if oom:  # handled outside the except block so the failed step's tensors are freed
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.world.distributed:  # a halved batch on one process would leave the others waiting
                    raise TrainingError(f"out of GPU memory with batches of {batch_size} shared by "
                                        f"{self.world.size} processes; start with a smaller --batch-size")
                if batch_size // 2 < MIN_BATCH_SIZE:
                    self.stop_reason = f"out of GPU memory even with batches of {batch_size}; stopped, best model kept"
                    self.should_stop = True
                    self._message(cb, self.stop_reason)
                    break
                batch_size //= 2
                train_src.batch_size = val_src.batch_size = batch_size
                # the schedule is in steps: rebuild it for the smaller batch, at the same point of the run
                sched = one_cycle(opt, lr, n_epochs * steps(batch_size) + 1, pct_start(n_epochs),
                                  (skip + done) * steps(batch_size))
                self._message(cb, f"Out of GPU memory: batch size halved to {batch_size}; repeating epoch {epoch}.")
                continue
            if tr is None:  # stopped mid-epoch: no partial epoch is recorded
                break
            train_seconds = time.perf_counter() - t0
            logs = {"epoch": epoch, "phase": phase, "train_loss": tr[0], "train_accuracy": tr[1]}
            has_val = val_feats is not None or (not frozen_prefix and len(val_src.report_indices))
            if has_val:
                vl, va = self._oom_retry("the validation loss", cb, device, [val_src],
                                         lambda: self._val_loss(net, suffix, val_src, val_feats, device, precision))
                if not math.isfinite(vl):
                    self._stop_diverged(_Diverged("the validation loss is no longer a finite number", epoch, None),
                                        lr, precision, cb)
                    break
                logs |= {"val_loss": vl, "val_accuracy": va}
            else:
                logs |= {"val_loss": float("nan"), "val_accuracy": float("nan")}
            logs |= {"images_per_second": tr[2] / max(train_seconds, 1e-9), "seconds": time.perf_counter() - t0,
                     "lr": float(opt.param_groups[0]["lr"])}
            done += 1
            if select_best:
                score = epoch_score(logs)
                if score is not None and (best["score"] is None or score > best["score"]):
                    best.update(score=score, epoch=epoch,
                                state={k: v.detach().clone() for k, v in net.state_dict().items()})
            cb.on_epoch_end(epoch, logs)
        return done, batch_size

    def _stop_diverged(self, d: _Diverged, lr: float, precision: Precision, cb: Callback) -> None:
        self._diverged_flag = True
        self.stop_reason = self._diverged_message(d, lr, precision)
        self.should_stop = True
        self._message(cb, self.stop_reason)

    def _choose_head(self, net, features, lr, batch_size, cb) -> None:
        """The transfer head by cross-validation on the cached training features."""
        cfg = self.config
        table, labels = features
        choice = headselect.choose_head(
            table, labels, len(self._state["classes"]), dropout=float(self._state["arch"]["dropout"]),
            epochs=int(self.plan.epochs.value), lr=lr, batch_size=batch_size, weight_decay=cfg.weight_decay,
            optimizer=cfg.optimizer, seed=cfg.seed, should_stop=lambda: self.should_stop,
            progress=lambda d, t: cb.on_prepare_progress("choosing the head", d, t))
        choice = self.world.broadcast_object(choice)
        self._state["head"] = choice.spec
        self._message(cb, choice.text())
        self._state["training"]["head_choice"] = {"choice": choice.spec.key, "name": choice.spec.name,
                                           "cross_validation": choice.scores, "folds": choice.folds}
        extra = self._head_arch(choice.spec)
        if extra:
            arch = {**self._state["arch"], **extra}
            torch.manual_seed(cfg.seed)
            device = next(net.parameters()).device
            net._fc = headselect.make_head(net._fc.in_features, arch["num_classes"], extra["head_hidden"],
                                           extra["head_dropout"]).to(device)
            self._state["arch"] = arch

    def _refit(self, net, phases, best, report, train_idx, val_idx, size, channels, device, precision, cb,
               batch_size) -> int:
        """Train again on the training and validation images, on the same schedule, up to the
        epoch the validation images chose: the run that was chosen, with a fifth more images.
        The final model. If it is stopped or diverges, the held-out model stays the model and
        the run still counts as done (the refit is said to have failed)."""
        cfg = self.config
        kept = {k: v.detach().clone() for k, v in net.state_dict().items()}
        n_epochs = int(best["epoch"])  # epochs of the whole run that the validation images chose
        all_idx = np.sort(np.concatenate([train_idx, val_idx]))
        stage = "refit on all images"
        self._message(cb, f"Refit: training again on all {len(all_idx):,} images (training and validation), "
                          f"stopping after epoch {n_epochs}, the best on the validation images.")
        all_src = self._source(report, all_idx, batch_size, size, channels, device, shuffle=True)
        empty = self._source(report, np.zeros(0, dtype=np.int64), batch_size, size, channels, device, shuffle=False)
        phase, planned, point, lr = phases[0]
        features = None
        if cfg.recipe == "transfer":
            train_feats, val_feats = self._refit_feats
            # every cached copy of the training features, plus the validation features
            features = ([(torch.cat([t, val_feats[0]]), torch.cat([y, val_feats[1]])) for t, y in train_feats], None)
            _reset_parameters(net._fc, cfg.seed)
        else:
            torch.manual_seed(cfg.seed)
            net.load_state_dict(M.build_model(self._state["arch"]).state_dict())
        progress = _Progress(cb, stage, n_epochs * len(all_idx))
        before = (self.should_stop, self.stop_reason, self._diverged_flag)
        self.should_stop = False  # an early stop ended the epochs; the refit has its own count
        self._val_cache = None
        done, _ = self._run_phase(phase, planned, point, lr, net, all_src, empty, device, precision,
                                  CallbackList([progress], self), {"score": None}, 0, batch_size, select_best=False,
                                  features=features, limit=n_epochs)
        user_stop = self.should_stop and self.stop_reason == before[1] and not self._diverged_flag
        if done < n_epochs or self.should_stop:
            net.load_state_dict(kept)  # the held-out model stays the model
            why = ("it was stopped" if user_stop else self.stop_reason or "it could not finish")
            self._message(cb, f"The refit did not finish ({why}); the model trained without the validation images "
                              "is kept.")
            self.should_stop = before[0] or user_stop
            self.stop_reason, self._diverged_flag = before[1], before[2]
            return 0
        self.should_stop, self.stop_reason, self._diverged_flag = before
        cb.on_prepare_progress(stage, progress.total, progress.total)
        return n_epochs

    def _test_predictions(self, net, src, precision, cb):
        """The external test set through ``net``; with a frozen base (transfer), the base's
        outputs are computed once and kept, so scoring the model before and after a refit
        costs one pass through the base."""
        if self.config.recipe != "transfer":
            return predict_source(net, src, precision, world=self.world)
        prefix, suffix = net.split(None)
        if self._test_feats is None:
            self._test_feats = self._prefix_outputs(prefix, src, None, src.device, precision, cb, "test features")
        table, labels, idx = self._test_feats
        return self._suffix_predictions(suffix, table, labels, idx, precision, src.batch_size)

    @torch.no_grad()
    def _suffix_predictions(self, suffix, table, labels, idx, precision, batch_size):
        suffix.eval()
        chunk = max(1, 8 * batch_size)
        probs = []
        for i in range(0, len(labels), chunk):
            with precision.autocast():
                probs.append(suffix(table[i:i + chunk]).float().softmax(1))
        p = torch.cat(probs) if probs else torch.zeros((0, self._state["arch"]["num_classes"]), device=table.device)
        return p.cpu().numpy(), labels.cpu().numpy(), np.asarray(idx)

    def _train_epoch(self, model, net, frozen_prefix, src, feats, augmenter, opt, sched, device, precision, cb,
                     epoch, batch_size, trainable):
        world = self.world
        if frozen_prefix:
            net.eval()  # frozen BatchNorm statistics stay as pretrained
            for m in trainable:
                for sub in m.modules():
                    if isinstance(sub, nn.Dropout):
                        sub.train()
        else:
            net.train()
        smoothing = self._label_smoothing()
        # loss sum, correct and seen of the whole (global) batch, reduced over processes
        acc_dtype = torch.float32 if device.type == "mps" else torch.float64  # sums over processes
        ls = cs = seen = 0.0
        t0 = time.perf_counter()
        for b, (x, y, global_n) in enumerate(self._train_batches(src, feats, augmenter, epoch, batch_size, device)):
            if self._stopping(device):
                return None
            cb.on_train_batch_begin(b, {"size": global_n})
            with precision.autocast():
                logits = model(x)
            loss_vec = F.cross_entropy(logits.float(), y, label_smoothing=smoothing, reduction="none")
            if not world.distributed:
                global_n = len(y)  # the images that could be read
            # this process's share of the global batch's mean: DDP averages over processes
            loss = loss_vec.sum() * (world.size / global_n)
            opt.zero_grad(set_to_none=True)
            if precision.scaler is not None:
                precision.scaler.scale(loss).backward()
                precision.scaler.step(opt)
                precision.scaler.update()
            else:
                loss.backward()
                opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
            if world.distributed:
                step = torch.stack([loss_vec.detach().sum().to(acc_dtype), (logits.argmax(1) == y).sum().to(acc_dtype),
                                    torch.tensor(float(len(y)), device=device, dtype=acc_dtype)])
                # one device->host sync per step, for the live plots and the divergence check
                step_loss, step_correct, step_n = world.sum_(step).tolist()
            else:
                step = torch.stack([loss_vec.detach().sum(), (logits.argmax(1) == y).sum().to(loss_vec.dtype)])
                (step_loss, step_correct), step_n = step.tolist(), len(y)
            ls, cs, seen = ls + step_loss, cs + step_correct, seen + step_n
            if not math.isfinite(ls):
                raise _Diverged(f"the loss became {'NaN' if math.isnan(ls) else 'infinite'}", epoch, b)
            cb.on_train_batch_end(b, {"batch": b, "size": global_n, "loss": ls / seen, "accuracy": cs / seen,
                                      "batch_loss": step_loss / max(step_n, 1), "seen": int(seen),
                                      "images_per_second": seen / max(time.perf_counter() - t0, 1e-9)})
        if seen == 0:
            raise TrainingError("no training images could be read")
        return ls / seen, cs / seen, int(seen)

    def _train_batches(self, src, feats, augmenter, epoch, batch_size, device
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(x, y, size of the global batch): this process's share of each batch."""
        if feats is None:
            for xb, yb, _idx, n in src.batches_with_size(epoch):
                x = to_float(xb)
                if augmenter is not None:
                    x = augmenter(x)
                yield x.contiguous(memory_format=self._memory_format), yb, n
            return
        table, labels = feats[(epoch - 1) % len(feats)]
        g = torch.Generator().manual_seed(self.config.seed * 100003 + epoch)
        perm = torch.randperm(len(labels), generator=g).to(table.device)
        world = self.world
        for i in range(0, len(perm), batch_size):
            j = perm[i:i + batch_size]
            n = len(j)
            if world.distributed:
                j = j[world.rank::world.size]
            yield table[j], labels[j], n

    @torch.no_grad()
    def _prefix_outputs(self, prefix, src, augmenter, device, precision, cb, stage):
        """The frozen prefix's outputs, labels and sample indices of every image ``src``
        could read (under several processes: each computes its share, then all are gathered)."""
        # eval: BatchNorm of the frozen base must use, not update, its pretrained statistics
        prefix.eval()
        outs, labels, idxs = [], [], []
        total = len(src.indices)
        done = 0
        for xb, yb, idx in src.batches(0, in_order=True):
            if self.should_stop and not self.world.distributed:  # several processes finish the pass together
                break
            x = to_float(xb)
            if augmenter is not None:
                x = augmenter(x)
            with precision.autocast():
                outs.append(prefix(x).float())
            labels.append(yb)
            idxs.append(torch.as_tensor(idx, dtype=torch.long, device=yb.device))
            done += len(yb)
            cb.on_prepare_progress(stage, done, total)
        out = torch.cat(outs) if outs else torch.empty(0, device=device)
        lab = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long, device=device)
        idx = torch.cat(idxs) if idxs else torch.empty(0, dtype=torch.long, device=device)
        if self.world.distributed:
            if not len(out):
                out = torch.empty((0, *self._prefix_shape(prefix, src, device)), device=device)
            out, lab, idx = self.world.gather_cat(out), self.world.gather_cat(lab), self.world.gather_cat(idx)
        order = torch.argsort(idx)  # sample order, however the batches came (and from however many processes)
        out, lab, idx = out[order], lab[order], idx[order]
        return out, lab, idx.cpu().numpy()

    def _prefix_shape(self, prefix, src, device) -> tuple[int, ...]:
        x = torch.zeros((1, src.channels, src.image_size, src.image_size), device=device)
        return tuple(prefix(x).shape[1:])

    @torch.no_grad()
    def _val_loss(self, net, suffix, src, feats, device, precision) -> tuple[float, float]:
        """Validation loss and accuracy (each process scores its share; the sums are reduced)."""
        net.eval()
        acc_dtype = torch.float32 if device.type == "mps" else torch.float64
        totals = torch.zeros(3, device=device, dtype=acc_dtype)
        if feats is not None:
            table, labels = feats
            order = torch.arange(len(labels), device=table.device)
            if self.world.distributed:
                order = order[self.world.rank::self.world.size]
            chunk = max(1, 8 * src.batch_size)  # halved with the batch after running out of memory
            batches = ((table[order[i:i + chunk]], labels[order[i:i + chunk]]) for i in range(0, len(order), chunk))
        else:
            batches = ((to_float(xb), yb) for xb, yb, _ in src.batches(0))
        for x, y in batches:
            with precision.autocast():
                logits = (suffix(x) if feats is not None else net(x)).float()
            totals += torch.stack([F.cross_entropy(logits, y, reduction="sum").to(acc_dtype),
                                   (logits.argmax(1) == y).sum().to(acc_dtype),
                                   torch.tensor(float(len(y)), device=device, dtype=acc_dtype)])
        self.world.sum_(totals)
        loss_sum, correct, seen = totals.tolist()
        return loss_sum / max(seen, 1), correct / max(seen, 1)


def _resumed_head(initial: TrainedModel | dict[str, torch.Tensor]) -> headselect.HeadSpec:
    """A resumed transfer run keeps the head its model has (no new choice)."""
    if isinstance(initial, TrainedModel):
        key = (initial.training.get("head_choice") or {}).get("choice")
        if key in headselect.HEAD_KEYS[1:]:
            return headselect.spec_for(key)
        hidden = int(initial.architecture.get("head_hidden", 0))
    else:
        hidden = 1 if any(k.startswith("_fc.0.") for k in initial) else 0
    return headselect.spec_for("mlp-smooth" if hidden else "linear-smooth")


def _reset_parameters(module: nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()


def _compact(r: Report) -> dict[str, Any]:
    return {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "count": r.count, "per_class": r.per_class,
            "confusion_matrix": r.confusion_matrix}


def _load_initial_weights(net: nn.Module, initial: TrainedModel | dict[str, torch.Tensor], classes: Sequence[str],
                          channels: int) -> None:
    """Put a saved model's weights into the freshly built network, or say why they do not fit."""
    if isinstance(initial, TrainedModel):
        if list(initial.classes) != list(classes):
            raise TrainingError("cannot resume: the classes changed since that model was trained "
                                f"({', '.join(initial.classes)} then, {', '.join(classes)} now); start a new run")
        if initial.channels != channels:
            raise TrainingError(f"cannot resume: that model reads {initial.channels}-channel images, "
                                f"the dataset has {channels}-channel images")
        state = initial.network.state_dict()
    else:
        state = initial
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TrainingError("cannot resume: the saved model does not fit the network of these settings "
                            f"({first[0] if first else e}); start a new run") from None
