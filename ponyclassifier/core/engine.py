"""Training and evaluation: ``Trainer.fit(data_dir, callbacks=[...])`` and ``evaluate_model``.

The loop is small and flat (as torchvision's reference ``train_one_epoch``/``evaluate``).
Metrics leave the device once per step. Callbacks are the only observers; the only way in
is ``trainer.should_stop``, checked before every batch.

For frozen pretrained bases (``transfer``, ``finetune``) the frozen prefix of the network
runs once over the data and its outputs are cached on the device, so an epoch costs only
the trainable part. With augmentation on, the prefix runs once per augmented copy (``K``
passes, said in a message), and epoch ``e`` trains on copy ``e % K``.
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

from . import models as M
from .augment import AugmentConfig, build_augmenter
from .callbacks import Callback, CallbackList, History
from .dataset import (DEFAULT_CACHE_BUDGET, BatchSource, DatasetError, ScanReport, SkippedFile, TooManyBadFiles,
                      scan_dataset, stratified_split)
from .folders import class_files, list_class_folders
from .images import ImageError, decode_image
from .metrics import Report, classification_report
from .preprocess import to_float
from .trained import TrainedModel, default_unsure_threshold

RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "scratch": {"epochs": 15, "lr": 1e-3, "image_size": None},
    # a head on cached features: epochs cost milliseconds, so more of them and a higher rate
    "transfer": {"epochs": 20, "lr": 3e-3, "image_size": 224},
    "finetune": {"epochs": 12, "lr": 3e-3, "image_size": 224, "finetune_lr_factor": 0.1},
}
MAX_SCRATCH_SIZE = 150
MIN_BATCH_SIZE = 2


class TrainingError(Exception):
    """Training could not run; the message says why and what to do."""


@dataclass
class TrainConfig:
    recipe: str = "scratch"
    epochs: int | None = None
    batch_size: int | None = None  # None: 64 for images up to 64 px, else 32
    lr: float | None = None
    optimizer: str = "adamw"  # adamw | adam | rmsprop | sgd
    image_size: int | None = None  # None: per recipe (scratch adapts to the images, up to 150)
    val_split: float = 0.2
    seed: int = 0
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    dropout: float | None = None
    weight_decay: float = 1e-4
    early_stopping: int | None = None  # patience in epochs on val_loss
    device: str = "auto"
    mixed_precision: bool = True  # CUDA only
    unsure_threshold: float | None = None
    finetune_from: int | None = None
    aug_copies: int | None = None  # transfer/finetune with augmentation: cached augmented copies
    cache_budget: int = DEFAULT_CACHE_BUDGET
    max_bad_fraction: float = 0.1
    label_smoothing: float = 0.0
    weights_path: str | None = None
    workers: int | None = None

    def resolved(self) -> "TrainConfig":
        if self.recipe not in RECIPE_DEFAULTS:
            raise TrainingError(f"unknown recipe {self.recipe!r}; choose scratch, transfer or finetune")
        d = RECIPE_DEFAULTS[self.recipe]
        c = copy.deepcopy(self)
        c.epochs = d["epochs"] if c.epochs is None else c.epochs
        c.lr = d["lr"] if c.lr is None else c.lr
        c.image_size = d["image_size"] if c.image_size is None else c.image_size
        if c.epochs < 1:
            raise TrainingError("epochs must be at least 1")
        if c.batch_size is not None and c.batch_size < 1:
            raise TrainingError("batch size must be at least 1")
        if c.image_size is not None and not 16 <= c.image_size <= 1024:
            raise TrainingError("image size must be between 16 and 1024 pixels")
        if c.optimizer not in ("adamw", "adam", "rmsprop", "sgd"):
            raise TrainingError(f"unknown optimizer {c.optimizer!r}")
        return c

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = self.augment.to_dict() if self.augment else None
        d.pop("weights_path", None)
        return d


def select_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("--device mps was asked for, but Apple MPS is not available")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise TrainingError(f"unknown device {name!r}")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


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


def median_image_side(root: str | os.PathLike, limit: int = 48) -> int:
    """The typical smaller side of the images (decoding a spread-out sample)."""
    files = []
    for name in list_class_folders(root):
        files += class_files(Path(root) / name)
    if not files:
        return MAX_SCRATCH_SIZE
    step = max(1, len(files) // limit)
    sides = []
    for p in files[::step][:limit]:
        try:
            sides.append(min(decode_image(p).original_size))
        except ImageError:
            pass
    return int(np.median(sides)) if sides else MAX_SCRATCH_SIZE


class _Amp:
    def __init__(self, device: torch.device, enabled: bool):
        self.enabled = enabled and device.type == "cuda"
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.enabled else None

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.enabled)


class Trainer:
    def __init__(self, config: TrainConfig | None = None):
        self.config = (config or TrainConfig()).resolved()
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

    # ------------------------------------------------------------------------ fit
    def fit(self, data: str | os.PathLike | ScanReport, callbacks: Sequence[Callback] = (),
            test_dir: str | os.PathLike | None = None, *,
            initial_model: TrainedModel | dict[str, torch.Tensor] | str | os.PathLike | None = None,
            initial_epoch: int = 0) -> TrainResult:
        """Train ``config.epochs`` epochs in all (Keras' ``fit(epochs, initial_epoch)``).

        Resume a stopped run with ``initial_model`` (its saved model, a path to one or a
        state dict) and ``initial_epoch`` (the epochs it completed): training runs epochs
        ``initial_epoch + 1`` to ``config.epochs``, numbered so, from those weights; the
        learning-rate schedule (and the fine-tune recipe's phase) continues where it was.
        The optimizer's running averages are not in a model file, so they start afresh.
        """
        cfg = self.config
        if not 0 <= initial_epoch < cfg.epochs:
            raise TrainingError(f"cannot start at epoch {initial_epoch + 1}: the run has {cfg.epochs} epochs "
                                "(all done already?)")
        if isinstance(initial_model, (str, os.PathLike)):
            initial_model = TrainedModel.load(initial_model)
        t_start = time.perf_counter()
        self.should_stop, self.stop_reason = False, None
        self._val_cache = None  # (suffix, (features, labels, indices)) of the frozen prefix, for the final report
        history = History()
        cb = CallbackList([history, *callbacks], self)
        torch.manual_seed(cfg.seed)
        # Tiny gradients turn into denormal floats that make CPU kernels 3-4x slower.
        torch.set_flush_denormal(True)
        device = select_device(cfg.device)

        start_size = initial_model.image_size if isinstance(initial_model, TrainedModel) else None
        if isinstance(data, ScanReport):
            report = data
            size = cfg.image_size or start_size or report.image_size or MAX_SCRATCH_SIZE
        else:
            size = cfg.image_size or start_size or max(16, min(MAX_SCRATCH_SIZE, median_image_side(data)))
            report = scan_dataset(data, image_size=size, cache_budget=cfg.cache_budget,
                                  progress=lambda d, t: cb.on_prepare_progress("scan", d, t),
                                  should_stop=lambda: self.should_stop, workers=cfg.workers)
        report.check_trainable()
        channels = report.channels
        classes = report.classes
        train_idx, val_idx = stratified_split(report, cfg.val_split, cfg.seed)
        test_report_scan = None
        if test_dir is not None:
            test_report_scan = scan_dataset(test_dir, classes=classes, image_size=size, channels=channels,
                                            cache_budget=cfg.cache_budget, workers=cfg.workers,
                                            progress=lambda d, t: cb.on_prepare_progress("scan test set", d, t))
            if not test_report_scan.samples:
                raise DatasetError(f"{test_dir}: the test folder has no usable images of the classes "
                                   f"{', '.join(classes[:5])}{'...' if len(classes) > 5 else ''}")

        arch = M.arch_config(cfg.recipe, len(classes), size, channels, cfg.dropout, cfg.finetune_from)
        net = M.build_model(arch)
        if initial_model is not None:
            _load_initial_weights(net, initial_model, classes, channels)
        elif cfg.recipe in ("transfer", "finetune"):
            M.load_pretrained_base(net, cfg.weights_path)
        # channels_last: 1.7x faster convolutions on CPU (oneDNN) and with tensor cores.
        mf = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
        net.to(device, memory_format=mf)
        self._memory_format = mf
        training = cfg.to_dict() | {"image_size": size, "device": device_description(device),
                                    "train_images": int(len(train_idx)), "val_images": int(len(val_idx)),
                                    "dataset": str(report.root)}
        self._state = {"net": net, "classes": classes, "arch": arch, "image_size": size, "channels": channels,
                       "threshold": cfg.unsure_threshold or default_unsure_threshold(len(classes)),
                       "training": training, "history": history}

        total_epochs = cfg.epochs
        if cfg.recipe == "finetune":
            head_epochs = max(1, cfg.epochs // 2)
            phases = [("head", head_epochs, None, cfg.lr),
                      ("finetune", cfg.epochs - head_epochs, M.split_point(arch, "finetune"),
                       cfg.lr * RECIPE_DEFAULTS["finetune"]["finetune_lr_factor"])]
        else:
            phases = [("head" if cfg.recipe == "transfer" else "train", cfg.epochs, None, cfg.lr)]

        # small images: bigger batches keep the CPU busy instead of the Python loop
        batch_size = cfg.batch_size or default_batch_size(size)

        def source(idx, shuffle):
            return BatchSource(report, idx, batch_size, image_size=size, channels=channels, device=device,
                               shuffle=shuffle, seed=cfg.seed, max_bad_fraction=cfg.max_bad_fraction,
                               workers=cfg.workers)

        train_src, val_src = source(train_idx, True), source(val_idx, False)
        amp = _Amp(device, cfg.mixed_precision)
        best = {"score": None, "state": None, "epoch": None}
        epoch = initial_epoch  # the last epoch completed, numbered over the whole (resumed) run
        cb.on_train_begin({"epochs": total_epochs, "initial_epoch": initial_epoch, "train_images": len(train_idx),
                           "val_images": len(val_idx), "device": device_description(device), "recipe": cfg.recipe})
        phase_start = 0
        for phase, n_epochs, point, lr in phases:
            skip = min(n_epochs, max(0, initial_epoch - phase_start))  # this phase's epochs done before
            phase_start += n_epochs
            if n_epochs - skip <= 0 or self.should_stop:
                continue
            done, batch_size = self._run_phase(phase, n_epochs, point, lr, net, train_src, val_src, device, amp,
                                               cb, best, epoch, batch_size, skip)
            epoch += done
        epochs_run = epoch - initial_epoch
        if epochs_run == 0 and self.stop_reason and not self.stop_reason.startswith("early"):
            raise TrainingError(self.stop_reason)
        if best["state"] is not None:
            net.load_state_dict(best["state"])
        net.eval()

        skipped = list(report.skipped) + [SkippedFile(p, r) for p, r in
                                           {**train_src.failures, **val_src.failures}.items()]
        val_report = None
        if len(val_idx):
            cached = self._val_cache
            val_report = (self._evaluate_cached(cached[0], cached[1], val_src, classes, amp) if cached is not None
                          else self._evaluate_source(net, val_src, classes, device, amp))
        test_report = None
        if test_report_scan is not None and not (self.should_stop and best["state"] is None and epochs_run == 0):
            test_src = BatchSource(test_report_scan, np.arange(len(test_report_scan.samples)), batch_size,
                                   image_size=size, channels=channels, device=device, shuffle=False)
            test_report = self._evaluate_source(net, test_src, classes, device, amp)
            skipped += list(test_report_scan.skipped) + [SkippedFile(p, r) for p, r in test_src.failures.items()]

        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {"best_epoch": best["epoch"], "epochs_run": epochs_run,
                                   "initial_epoch": initial_epoch, "seconds": round(seconds, 2),
                                   "stopped": self.should_stop and self.stop_reason is None,
                                   "stop_reason": self.stop_reason, "skipped_files": len(skipped)}
        if val_report:
            metrics["validation"] = _compact(val_report)
        if test_report:
            metrics["test"] = _compact(test_report)
        self._state["training"]["batch_size_used"] = batch_size
        model = TrainedModel(network=net, classes=classes, recipe=cfg.recipe, architecture=arch, image_size=size,
                             channels=channels, unsure_threshold=self._state["threshold"], training=training,
                             metrics=metrics, history=copy.deepcopy(history.history))
        cb.on_train_end({"epochs_run": epochs_run, "best_epoch": best["epoch"], "seconds": seconds})
        return TrainResult(model, history.history, val_report, test_report, skipped, best["epoch"], epochs_run,
                           self.should_stop, self.stop_reason, seconds, device_description(device), report)

    # ---------------------------------------------------------------------- phase
    def _run_phase(self, phase, n_epochs, point, lr, net, train_src, val_src, device, amp, cb, best,
                   epoch0, batch_size, skip=0):
        """Epochs ``skip + 1`` to ``n_epochs`` of a phase; ``epoch0``: epochs before them in the run."""
        cfg = self.config
        prefix, suffix, trainable = M.set_trainable(net, point)
        params = [p for m in trainable for p in m.parameters()]
        frozen_prefix = not isinstance(prefix, nn.Identity)
        if not frozen_prefix:
            self._val_cache = None  # a phase that trains the whole network makes old features stale
        augmenter = build_augmenter(cfg.augment, seed=cfg.seed + epoch0, device=device)

        train_feats = val_feats = None
        if frozen_prefix:
            copies = 1
            if augmenter is not None:
                copies = cfg.aug_copies or min(n_epochs, 3)
                self._message(cb, f"Augmentation with a frozen base: computing base features for {copies} "
                                  f"augmented copies of {len(train_src.indices)} images ({copies} passes through "
                                  "the base instead of one per epoch).")
            train_feats = [self._prefix_outputs(prefix, train_src, augmenter if augmenter else None, device, amp, cb,
                                                f"features (copy {k + 1}/{copies})" if copies > 1 else "features")[:2]
                           for k in range(copies)]
            if len(val_src.indices):
                *val_feats, val_idx = self._prefix_outputs(prefix, val_src, None, device, amp, cb,
                                                           "features (validation)")
                val_feats = tuple(val_feats)
                if not self.should_stop and len(val_idx) == len(val_src.indices):
                    # The prefix stays frozen from here to the end of training (in both fine-tune
                    # phases), so these features also serve the final evaluation.
                    self._val_cache = (suffix, (*val_feats, val_idx))
            if self.should_stop:
                return 0, batch_size

        steps_per_epoch = max(1, math.ceil(len(train_src.indices) / batch_size))
        opt = _optimizer(cfg.optimizer, params, lr, cfg.weight_decay)
        sched = _one_cycle(opt, lr, n_epochs * steps_per_epoch + 1, 0.15 if n_epochs > 2 else 0.3,
                           skip * steps_per_epoch)
        done = 0
        while done < n_epochs - skip and not self.should_stop:
            epoch = epoch0 + done + 1
            cb.on_epoch_begin(epoch, {"phase": phase})
            t0 = time.perf_counter()
            try:
                tr = self._train_epoch(net, suffix, frozen_prefix, train_src, train_feats, augmenter, opt, sched,
                                       device, amp, cb, epoch, batch_size, trainable)
            except torch.OutOfMemoryError:
                oom = True
            except TooManyBadFiles as e:  # stop with the report; the best model so far is kept
                self.stop_reason = str(e)
                self.should_stop = True
                self._message(cb, str(e))
                break
            else:
                oom = False
            if oom:  # handled outside the except block so the failed step's tensors are freed
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch_size // 2 < MIN_BATCH_SIZE:
                    self.stop_reason = "out of memory even at the smallest batch size; stopped, best model kept"
                    self.should_stop = True
                    self._message(cb, self.stop_reason)
                    break
                batch_size //= 2
                train_src.batch_size = val_src.batch_size = batch_size
                self._message(cb, f"Out of GPU memory: batch size halved to {batch_size}; repeating epoch {epoch}.")
                continue
            if tr is None:  # stopped mid-epoch: no partial epoch is recorded
                break
            train_seconds = time.perf_counter() - t0
            logs = {"epoch": epoch, "phase": phase, "train_loss": tr[0], "train_accuracy": tr[1]}
            if len(val_src.indices):
                vl, va = self._val_loss(net, suffix, frozen_prefix, val_src, val_feats, device, amp)
                logs |= {"val_loss": vl, "val_accuracy": va}
            else:
                logs |= {"val_loss": float("nan"), "val_accuracy": float("nan")}
            logs |= {"images_per_second": tr[2] / max(train_seconds, 1e-9), "seconds": time.perf_counter() - t0,
                     "lr": float(opt.param_groups[0]["lr"])}
            done += 1
            score = (logs["val_accuracy"], -logs["val_loss"]) if len(val_src.indices) else (0.0, -logs["train_loss"])
            if best["score"] is None or score > best["score"]:
                best.update(score=score, epoch=epoch,
                            state={k: v.detach().clone() for k, v in net.state_dict().items()})
            cb.on_epoch_end(epoch, logs)
        return done, batch_size

    def _train_epoch(self, net, suffix, frozen_prefix, src, feats, augmenter, opt, sched, device, amp, cb,
                     epoch, batch_size, trainable):
        cfg = self.config
        if frozen_prefix:
            net.eval()  # frozen BatchNorm statistics stay as pretrained
            for m in trainable:
                for sub in m.modules():
                    if isinstance(sub, nn.Dropout):
                        sub.train()
        else:
            net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        t0 = time.perf_counter()
        for b, (x, y) in enumerate(self._train_batches(src, feats, augmenter, epoch, batch_size, device)):
            if self.should_stop:
                return None
            cb.on_train_batch_begin(b, {"size": len(y)})
            with amp.autocast():
                logits = suffix(x) if frozen_prefix else net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            if amp.scaler is not None:
                amp.scaler.scale(loss).backward()
                amp.scaler.step(opt)
                amp.scaler.update()
            else:
                loss.backward()
                opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
            n = len(y)
            loss_sum += loss.detach() * n
            correct += (logits.argmax(1) == y).sum()
            seen += n
            # one device->host sync per step, for the live plots
            ls, cs = loss_sum.item(), correct.item()
            cb.on_train_batch_end(b, {"batch": b, "size": n, "loss": ls / seen, "accuracy": cs / seen,
                                      "batch_loss": float(loss.detach()), "seen": seen,
                                      "images_per_second": seen / max(time.perf_counter() - t0, 1e-9)})
        if seen == 0:
            raise TrainingError("no training images could be read")
        return loss_sum.item() / seen, correct.item() / seen, seen

    def _train_batches(self, src, feats, augmenter, epoch, batch_size, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if feats is None:
            for xb, yb, _ in src.batches(epoch):
                x = to_float(xb)
                if augmenter is not None:
                    x = augmenter(x)
                yield x.contiguous(memory_format=self._memory_format), yb
            return
        table, labels = feats[(epoch - 1) % len(feats)]
        g = torch.Generator().manual_seed(self.config.seed * 100003 + epoch)
        perm = torch.randperm(len(labels), generator=g).to(table.device)
        for i in range(0, len(perm), batch_size):
            j = perm[i:i + batch_size]
            yield table[j], labels[j]

    @torch.no_grad()
    def _prefix_outputs(self, prefix, src, augmenter, device, amp, cb, stage):
        """The frozen prefix's outputs, labels and sample indices of every image ``src`` could read."""
        # eval: BatchNorm of the frozen base must use, not update, its pretrained statistics
        prefix.eval()
        outs, labels, idxs = [], [], []
        total = len(src.indices)
        done = 0
        for xb, yb, idx in src.batches(0):
            if self.should_stop:
                break
            x = to_float(xb)
            if augmenter is not None:
                x = augmenter(x)
            with amp.autocast():
                outs.append(prefix(x).float())
            labels.append(yb)
            idxs.append(np.asarray(idx))
            done += len(yb)
            cb.on_prepare_progress(stage, done, total)
        if not outs:
            return (torch.empty(0, device=device), torch.empty(0, dtype=torch.long, device=device),
                    np.zeros(0, dtype=np.int64))
        return torch.cat(outs), torch.cat(labels), np.concatenate(idxs)

    @torch.no_grad()
    def _evaluate_cached(self, suffix, cached, src, classes, amp) -> Report:
        """The final validation report from the frozen prefix's cached outputs: the same
        numbers as running the whole network again, without a second pass through the base."""
        table, labels, idx = cached
        suffix.eval()
        probs = []
        for i in range(0, len(labels), 256):
            with amp.autocast():
                probs.append(suffix(table[i:i + 256]).float().softmax(1).cpu())
        p = torch.cat(probs).numpy() if probs else np.zeros((0, len(classes)))
        paths = [src.report.samples[i].path for i in idx]
        return classification_report(labels.cpu().numpy(), p, classes, paths)

    @torch.no_grad()
    def _val_loss(self, net, suffix, frozen_prefix, src, feats, device, amp) -> tuple[float, float]:
        net.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        if feats is not None:
            table, labels = feats
            batches = ((table[i:i + 256], labels[i:i + 256]) for i in range(0, len(labels), 256))
        else:
            batches = ((to_float(xb), yb) for xb, yb, _ in src.batches(0))
        for x, y in batches:
            with amp.autocast():
                logits = (suffix(x) if feats is not None else net(x)).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def _evaluate_source(self, net, src, classes, device, amp) -> Report:
        return evaluate_source(net, src, classes, amp)


def _compact(r: Report) -> dict[str, Any]:
    return {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "count": r.count, "per_class": r.per_class,
            "confusion_matrix": r.confusion_matrix}


def _one_cycle(opt: torch.optim.Optimizer, lr: float, total_steps: int, pct_start: float,
               start_step: int = 0) -> torch.optim.lr_scheduler.OneCycleLR:
    """The one-cycle schedule, ``start_step`` steps in (a resumed run continues its schedule)."""
    div_factor, final_div_factor = 25.0, 1e4
    start_step = min(start_step, total_steps - 1)
    if start_step:
        # what OneCycleLR writes into the groups at step 0, which it needs to start later on
        for g in opt.param_groups:
            g["initial_lr"] = lr / div_factor
            g["max_lr"] = lr
            g["min_lr"] = g["initial_lr"] / final_div_factor
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=pct_start,
                                               anneal_strategy="cos", cycle_momentum=False, div_factor=div_factor,
                                               final_div_factor=final_div_factor, last_epoch=start_step - 1)


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


def _optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


@torch.no_grad()
def _predict_source(net: nn.Module, src: BatchSource, amp: _Amp | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Probabilities (N, C), true labels and paths of every image ``src`` could read."""
    net.eval()
    probs, labels, idxs = [], [], []
    total, done = len(src.indices), 0
    for xb, yb, idx in src.batches(0):
        if should_stop is not None and should_stop():
            break
        if amp is not None:
            with amp.autocast():
                logits = net(to_float(xb)).float()
        else:
            logits = net(to_float(xb)).float()
        probs.append(logits.softmax(1).cpu())
        labels.append(yb.cpu())
        idxs.append(idx)
        done += len(yb)
        if progress is not None:
            progress(done, total)
    n_classes = len(src.report.classes)
    p = torch.cat(probs).numpy() if probs else np.zeros((0, n_classes))
    y = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=np.int64)
    paths = [src.report.samples[i].path for i in (np.concatenate(idxs) if idxs else [])]
    return p, y, paths


@torch.no_grad()
def evaluate_source(net: nn.Module, src: BatchSource, classes: Sequence[str], amp: _Amp | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Report:
    p, y, paths = _predict_source(net, src, amp, should_stop, progress)
    return classification_report(y, p, classes, paths)


def default_batch_size(image_size: int) -> int:
    """The batch size training uses when none is set: 64 for images up to 64 px, else 32."""
    return 64 if image_size <= 64 else 32


def _score_folder(model: TrainedModel, data_dir: str | os.PathLike, pick: Callable[[ScanReport], np.ndarray],
                  empty: str, device: str, batch_size: int, progress: Callable[[int, int], None] | None,
                  should_stop: Callable[[], bool] | None
                  ) -> tuple[np.ndarray, np.ndarray, list, list[SkippedFile]]:
    """Scan ``data_dir`` with the model's classes and predict the images ``pick(scan)``
    selects: probabilities, true labels, paths and the files skipped. ``empty`` names
    what is missing in the error raised when ``pick`` selects nothing."""
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
    p, y, paths = _predict_source(model.network, src, _Amp(dev, True), should_stop, progress)
    skipped = list(report.skipped) + [SkippedFile(q, r) for q, r in src.failures.items()]
    return p, y, paths, skipped


def evaluate_model(model: TrainedModel, data_dir: str | os.PathLike, *, device: str = "auto",
                   batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[Report, list[SkippedFile]]:
    """Score a model on a class-folder dataset read with the model's classes."""
    p, y, paths, skipped = _score_folder(
        model, data_dir, lambda report: np.arange(len(report.samples)),
        "no usable images in folders named after the model's classes", device, batch_size, progress, should_stop)
    return classification_report(y, p, model.classes, paths), skipped


def evaluate_split(model: TrainedModel, data_dir: str | os.PathLike, *, val_split: float = 0.2, seed: int = 0,
                   device: str = "auto", batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None
                   ) -> tuple[Report, list[dict[str, Any]], list[SkippedFile]]:
    """Score a model on the validation split that training with ``val_split`` and ``seed``
    sets aside (the same split function), with one prediction per image: ``{"path",
    "true", "predicted", "confidence"}`` (for showing the images of a confusion-matrix
    cell). The split is of the dataset as it is now."""
    p, y, paths, skipped = _score_folder(
        model, data_dir, lambda report: stratified_split(report, val_split, seed)[1],
        "no validation images of the model's classes", device, batch_size, progress, should_stop)
    classes = model.classes
    pred = p.argmax(1) if len(y) else np.zeros(0, dtype=np.int64)
    per_image = [{"path": str(path), "true": classes[int(t)], "predicted": classes[int(k)],
                  "confidence": float(p[i, k])} for i, (path, t, k) in enumerate(zip(paths, y, pred))]
    return classification_report(y, p, classes, paths), per_image, skipped
