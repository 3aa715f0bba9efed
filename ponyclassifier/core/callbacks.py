"""Keras-style training callbacks: the only way anything (CLI progress bar, GUI bridge,
tests) watches training. Hooks get plain ``logs`` dicts of floats; talking back is
``self.trainer.should_stop = True``.

Epoch logs: epoch (1-based), train_loss, train_accuracy, val_loss, val_accuracy,
images_per_second, seconds, lr, phase. Batch logs: batch, size, loss, accuracy (running
means over the epoch so far), images_per_second.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from typing import TYPE_CHECKING, Any, Callable

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
    is always on disk, so a crash or a stop loses nothing). ``monitor=None``: the one
    best-epoch rule, :func:`epoch_score` (the epoch the engine keeps at the end)."""

    def __init__(self, path: str | os.PathLike, monitor: str | None = "val_accuracy", mode: str = "auto"):
        self.path = os.fspath(path)
        self.monitor = monitor
        if monitor is None:
            self.mode = "max"
        else:
            self.mode = ("max" if "acc" in monitor or "f1" in monitor else "min") if mode == "auto" else mode
        self.best: Any = None if monitor is None else (math.inf if self.mode == "min" else -math.inf)
        self.saved_epochs: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        v = epoch_score(logs) if self.monitor is None else logs.get(self.monitor)
        if v is None or self.trainer is None:
            return
        better = (self.best is None or v > self.best) if self.monitor is None else \
            ((v < self.best) if self.mode == "min" else (v > self.best))
        if better:
            self.best = v
            self.trainer.current_model(logs).save(self.path)
            self.saved_epochs.append(epoch)


def plain_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """Only numbers, strings and None: what may cross to another thread (no tensors)."""
    out: dict[str, Any] = {}
    for k, v in logs.items():
        if isinstance(v, (bool, str)) or v is None:
            out[k] = v
        elif isinstance(v, numbers.Integral):
            out[k] = int(v)
        elif isinstance(v, numbers.Real):
            out[k] = float(v)
        elif callable(getattr(v, "numel", None)) and v.numel() == 1:  # a one-value tensor
            out[k] = float(v)
    return out


class EventForwarder(Callback):
    """The engine's hooks as ``(event, payload)`` pairs of plain values, handed to ``emit``
    on the training thread (a GUI hands them on to its own thread; a test collects them).

    Events: ``("prepare", (stage, done, total))``, ``("train_started", logs)`` (with
    ``epochs`` and ``first_epoch`` numbered as the whole run), ``("epoch_started", (epoch,
    logs))``, ``("batches", info)``, ``("epoch_finished", (epoch, logs))``, ``("message",
    text)``. Batch ends are coalesced: at most one ``batches`` event per ``batch_interval``
    seconds, carrying every batch loss since the last one (``batch_losses``), so a fast
    epoch cannot flood the receiver. Preparation progress is throttled the same way.

    ``yield_for`` seconds of sleep every ``yield_every`` seconds hand the interpreter lock
    over for certain: a training thread that releases and re-takes it around every small
    torch op wins nearly every hand-over (CPython's GIL is not fair), which starved the
    GUI thread for 100-300 ms at a time; it costs at most ``yield_for / yield_every`` of
    the training speed. ``stop_requested`` survives ``fit()`` clearing ``should_stop``."""

    def __init__(self, emit: Callable[[str, Any], None], epoch_offset: int = 0, batch_interval: float = 0.05,
                 yield_every: float = 0.025, yield_for: float = 0.002):
        self.emit = emit
        self.epoch_offset = epoch_offset
        self.batch_interval = batch_interval
        self.yield_every, self.yield_for = yield_every, yield_for
        self.batches = 0  # every on_train_batch_end
        self.stop_requested = False
        self._losses: list[float] = []
        self._last_emit = self._prepare_last = self._last_yield = 0.0
        self._epoch = 0
        self._train_images = 0
        self._latest: dict[str, Any] = {}

    def request_stop(self) -> None:
        """Stop before the next batch (any thread: only flags are set)."""
        self.stop_requested = True
        if self.trainer is not None:
            self.trainer.should_stop = True

    def on_prepare_progress(self, stage: str, done: int, total: int) -> None:
        if self.stop_requested:
            self.trainer.should_stop = True
        now = time.perf_counter()
        if done >= total or now - self._prepare_last >= self.batch_interval:
            self._prepare_last = now
            self.emit("prepare", (str(stage), int(done), int(total)))
        self._yield_gil(now)

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.stop_requested:
            self.trainer.should_stop = True
        self._train_images = int(logs.get("train_images", 0))
        self.emit("train_started", plain_logs(logs) | {
            "epochs": int(logs.get("epochs", 0)) + self.epoch_offset,
            "first_epoch": int(logs.get("initial_epoch", 0)) + self.epoch_offset + 1})

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self._epoch = epoch + self.epoch_offset
        self._losses.clear()
        self.emit("epoch_started", (self._epoch, plain_logs(logs)))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        self.batches += 1
        self._losses.append(float(logs.get("batch_loss", logs.get("loss", math.nan))))
        self._latest = {"epoch": self._epoch, "batch": int(batch), "seen": int(logs.get("seen", 0)),
                        "train_images": self._train_images, "loss": float(logs.get("loss", math.nan)),
                        "accuracy": float(logs.get("accuracy", math.nan)),
                        "images_per_second": float(logs.get("images_per_second", 0.0))}
        now = time.perf_counter()
        if now - self._last_emit >= self.batch_interval:
            self._flush(now)
        self._yield_gil(now)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._flush()
        logs = plain_logs(logs)
        logs["epoch"] = epoch + self.epoch_offset
        self.emit("epoch_finished", (epoch + self.epoch_offset, logs))

    def on_message(self, text: str) -> None:
        self.emit("message", str(text))

    def _flush(self, now: float | None = None) -> None:
        if not self._losses:
            return
        self._last_emit = now if now is not None else time.perf_counter()
        self.emit("batches", self._latest | {"batch_losses": list(self._losses)})
        self._losses.clear()

    def _yield_gil(self, now: float) -> None:
        if self.yield_for and now - self._last_yield >= self.yield_every:
            time.sleep(self.yield_for)
            self._last_yield = time.perf_counter()
