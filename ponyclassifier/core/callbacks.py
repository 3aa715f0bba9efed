"""Keras-style training callbacks: the only way anything (CLI progress bar, GUI bridge,
tests) watches training. Hooks get plain ``logs`` dicts of floats; talking back is
``self.trainer.should_stop = True``.

Epoch logs: epoch (1-based), train_loss, train_accuracy, val_loss, val_accuracy,
images_per_second, seconds, lr, phase. Batch logs: batch, size, loss, accuracy (running
means over the epoch so far), images_per_second.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Trainer


class Callback:
    trainer: "Trainer | None" = None

    def set_trainer(self, trainer: "Trainer") -> None:
        self.trainer = trainer

    def on_prepare_progress(self, stage: str, done: int, total: int) -> None:
        """Before training: stage is "scan", "features" or "features (augmented copies)"."""

    def on_train_begin(self, logs: dict[str, Any]) -> None: ...
    def on_train_end(self, logs: dict[str, Any]) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict[str, Any]) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None: ...
    def on_message(self, text: str) -> None:
        """Something the user should read (a fallback taken, a cost explained)."""


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback], trainer: "Trainer"):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            c.set_trainer(trainer)

    def __getattribute__(self, name: str):
        if name.startswith("on_"):
            cbs = object.__getattribute__(self, "callbacks")

            def call(*args: Any) -> None:
                for c in cbs:
                    getattr(c, name)(*args)

            return call
        return object.__getattribute__(self, name)


class History(Callback):
    """``history.history['val_accuracy']`` etc., one value per epoch."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.history, self.epochs = {}, []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto"):
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode = ("max" if "acc" in monitor or "f1" in monitor else "min") if mode == "auto" else mode
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.stopped_epoch = 0, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        v = logs.get(self.monitor)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return
        better = v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta
        if better:
            self.best, self.wait = v, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.trainer is not None:
            self.stopped_epoch = epoch
            self.trainer.stop_reason = f"early stopping: {self.monitor} did not improve for {self.patience} epochs"
            self.trainer.should_stop = True


def epoch_score(logs: dict[str, Any]) -> tuple[float, float] | None:
    """How good an epoch is, for choosing the best one (the one rule: the engine keeps that
    epoch's model, the Train panel marks it): the highest validation accuracy, then the
    lowest validation loss among equals; with no validation images, the lowest training
    loss. None when the epoch has no finite score to compare."""
    va, vl = logs.get("val_accuracy"), logs.get("val_loss")
    if va is not None and math.isfinite(va):
        return float(va), -float(vl) if vl is not None and math.isfinite(vl) else -math.inf
    tl = logs.get("train_loss")
    if (va is None or not math.isfinite(va)) and tl is not None and math.isfinite(tl):
        return 0.0, -float(tl)
    return None


class ModelCheckpoint(Callback):
    """Write the model file whenever the monitored value improves (the best model so far
    is always on disk, so a crash or a stop loses nothing)."""

    def __init__(self, path: str | os.PathLike, monitor: str = "val_accuracy", mode: str = "auto"):
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor or "f1" in monitor else "min") if mode == "auto" else mode
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved_epochs: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        v = logs.get(self.monitor)
        if v is None or self.trainer is None:
            return
        if (v < self.best) if self.mode == "min" else (v > self.best):
            self.best = v
            self.trainer.current_model(logs).save(self.path)
            self.saved_epochs.append(epoch)
