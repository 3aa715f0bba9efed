"""Training on its own QThread, watched through a callback bridge.

* :class:`TrainingBridge` is a core :class:`~ponyclassifier.core.callbacks.Callback`: it
  runs on the training thread and turns the engine's hooks into Qt signals carrying plain
  values (str, int, dicts of floats). Batch updates are coalesced (at most one signal per
  ``batch_interval`` seconds, carrying every batch loss since the last one), so a fast
  head-only epoch cannot flood the GUI thread's event queue.
* :class:`TrainingRun` owns one run: the ``Trainer`` (created on the GUI thread, so
  :meth:`TrainingRun.stop` can set ``trainer.should_stop`` at any time; the engine checks
  it before every batch), the ``QThread`` and a worker moved onto it (``moveToThread``;
  the thread ends by returning, ``QThread.terminate`` is never used), the project store
  record (``start_run``/``add_epoch``/``finish_run``, all on the GUI thread), the model
  file (``ModelCheckpoint`` keeps the best model so far on disk during the run; the final
  best model overwrites it atomically at the end), and the per-image validation
  predictions the evaluation view needs.

Resume: ``Trainer.fit(initial_model=..., initial_epoch=...)`` starts from the stopped
run's saved model (read on the training thread) and numbers the epochs on from it; the
learning-rate schedule continues where that run stopped.

Responsiveness: with small images the training thread is mostly Python (the GIL), and
every Qt call the GUI thread makes while painting releases and re-takes the GIL. With
CPython's default 5 ms switch interval each re-take can wait 5 ms, so one plot repaint
became a 100-300 ms stall. While a run is active the switch interval is lowered to
:data:`.workers.GIL_SWITCH_INTERVAL` (and put back after the last run ends); measured on 2 cores,
0.5 ms gave a worst gap of 33-35 ms against 44-54 ms at 5 ms. The run also leaves a core
to the GUI thread (torch's intra-op threads and the image-reading threads), and with
``start(hold=True)`` waits until the view that shows it has been painted.

Every signal that leaves this module fires on the GUI thread: the worker emits private
``_raw`` signals, relayed to the public ones by queued connections (as ``workers.py``).
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from ...core.callbacks import Callback, ModelCheckpoint
from ...core.engine import TrainConfig, Trainer, TrainingError, TrainingStopped
from ...core.runs import ProjectSplit, RunRecord, models_dir, run_metrics, run_outcome
from ...core.store import ProjectStore, StoreError
from ...core.trained import TrainedModel
from .. import workers

__all__ = ["TrainingBridge", "TrainingRun", "TrainingOutcome", "models_dir"]


def _plain(logs: dict[str, Any]) -> dict[str, Any]:
    """Only numbers and strings cross the thread boundary."""
    out: dict[str, Any] = {}
    for k, v in logs.items():
        if isinstance(v, bool):
            out[k] = v
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = float(v)
        elif isinstance(v, torch.Tensor) and v.numel() == 1:
            out[k] = float(v)
        elif isinstance(v, str) or v is None:
            out[k] = v
    return out


class _BridgeSignals(QObject):
    """Emitted from the training thread; see :class:`TrainingRun` for the public twins."""

    prepare_progressed = Signal(str, int, int)
    train_started = Signal(dict)
    epoch_started = Signal(int, dict)
    batches_finished = Signal(dict)
    epoch_finished = Signal(int, dict)
    message_logged = Signal(str)


class TrainingBridge(Callback):
    """Engine hooks -> Qt signals with plain values. ``epoch_offset`` renumbers the epochs
    of a resumed run so they continue the stopped run's curves."""

    def __init__(self, signals: _BridgeSignals, epoch_offset: int = 0, batch_interval: float = 0.05):
        self.signals = signals
        self.epoch_offset = epoch_offset
        self.batch_interval = batch_interval
        self.batches = 0  # every on_train_batch_end, for tests and the "within one batch" check
        self._losses: list[float] = []
        self._last_emit = 0.0
        self._epoch = 0
        self._train_images = 0
        self._latest: dict[str, Any] = {}
        self._prepare_last = 0.0
        self._last_yield = 0.0
        self.yield_every, self.yield_for = 0.025, 0.002
        self.stop_requested = False  # set by TrainingRun.stop; survives fit() clearing should_stop

    def on_prepare_progress(self, stage: str, done: int, total: int) -> None:
        if self.stop_requested:
            self.trainer.should_stop = True
        now = time.perf_counter()
        if done >= total or now - self._prepare_last >= self.batch_interval:
            self._prepare_last = now
            self.signals.prepare_progressed.emit(stage, int(done), int(total))
        self._yield_gil(now)

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.stop_requested:
            self.trainer.should_stop = True
        self._train_images = int(logs.get("train_images", 0))
        logs = _plain(logs) | {"epochs": int(logs.get("epochs", 0)) + self.epoch_offset,
                                "first_epoch": int(logs.get("initial_epoch", 0)) + self.epoch_offset + 1}
        self.signals.train_started.emit(logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self._epoch = epoch + self.epoch_offset
        self._losses.clear()
        self.signals.epoch_started.emit(self._epoch, _plain(logs))

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

    def _yield_gil(self, now: float) -> None:
        # A training thread that releases and re-takes the GIL around every small torch op
        # wins nearly every hand-over (CPython's GIL is not fair), starving the GUI thread
        # for 100-300 ms at a time. Sleeping briefly every ``yield_every`` seconds hands it
        # over for certain; it costs at most yield_for / yield_every of the training speed.
        if self.yield_for and now - self._last_yield >= self.yield_every:
            time.sleep(self.yield_for)
            self._last_yield = time.perf_counter()

    def _flush(self, now: float | None = None) -> None:
        if not self._losses:
            return
        self._last_emit = now if now is not None else time.perf_counter()
        self.signals.batches_finished.emit(self._latest | {"batch_losses": list(self._losses)})
        self._losses.clear()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._flush()
        logs = _plain(logs)
        logs["epoch"] = epoch + self.epoch_offset
        self.signals.epoch_finished.emit(epoch + self.epoch_offset, logs)

    def on_message(self, text: str) -> None:
        self.signals.message_logged.emit(str(text))


@dataclass
class TrainingOutcome:
    """What the GUI gets after a run: plain values only (the network stays on its thread's
    device until :attr:`TrainingRun.model` is read)."""

    status: str  # finished | stopped | failed
    run_id: int | None = None
    model_path: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    validation: dict[str, Any] | None = None  # metrics.Report.to_dict()
    test: dict[str, Any] | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)  # val images: path, true, predicted, confidence
    classes: list[str] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    first_epoch: int = 1
    stop_reason: str | None = None
    seconds: float = 0.0
    device: str = ""
    skipped: int = 0
    error: str | None = None
    details: str | None = None  # traceback of an unexpected failure
    plan: dict[str, Any] | None = None  # the settings the run used, auto or set, with the reasons
    test_before_refit: dict[str, Any] | None = None  # the external test report of the model before its refit
    batch_size_used: int | None = None
    refit_epochs: int = 0  # the final model was trained again on every image for this many epochs
    metrics: dict[str, Any] | None = None  # what the project store keeps of the run (core.runs.run_metrics)


class _Worker(QObject):
    """Lives on the training thread; ``run`` is the whole of its life."""

    _raw_done = Signal(object)  # TrainingOutcome

    def __init__(self, run: "TrainingRun"):
        super().__init__()
        self._run = run

    @Slot()
    def run(self) -> None:
        r = self._run
        try:
            outcome = self._fit()
        except TrainingStopped:  # stopped before anything was trained: a stop, not a failure
            outcome = TrainingOutcome("stopped", r.run_id, first_epoch=r.epoch_offset + 1)
        except Exception as e:  # reported to the GUI, never lost on the thread
            expected = isinstance(e, (TrainingError, StoreError)) or type(e).__module__.startswith("ponyclassifier")
            outcome = TrainingOutcome("failed", r.run_id, error=str(e) or type(e).__name__,
                                      details=None if expected else traceback.format_exc())
        try:
            self._raw_done.emit(outcome)
        finally:
            QThread.currentThread().quit()

    def _fit(self) -> TrainingOutcome:
        r = self._run
        # Let the GUI thread paint the training view before the training thread (and its
        # image-reading threads) compete with it for the CPU and the GIL.
        r.gui_ready.wait(2.0)
        callbacks: list[Callback] = [r.bridge]
        if r.model_path is not None:
            callbacks.append(ModelCheckpoint(r.model_path, monitor="val_accuracy"))
        callbacks += list(r.extra_callbacks)
        # Leave one core to the GUI thread: with every core busy in torch's intra-op pool
        # the event loop waits for the OS scheduler as well as for the GIL.
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 2) - 1)))
        try:
            result = r.trainer.fit(r.data_dir, callbacks=callbacks, test_dir=r.test_dir,
                                   initial_model=r.resume_model, initial_epoch=r.epoch_offset, split=r.split)
        finally:
            torch.set_num_threads(threads)
        status, error = run_outcome(result, r.trainer.diverged)  # diverged: failed, the best model before is kept
        model_path = None
        if result.epochs_run > 0 and r.model_path is not None:
            result.model.metrics["run_id"] = r.run_id
            result.model.save(r.model_path)  # atomic; replaces the checkpoint with the final best model
            model_path = str(r.model_path)
        # the validation images' predictions by the model trained without them (a refitted
        # model has seen them): the engine's, not worked out again here
        predictions = list(result.val_predictions) if result.epochs_run > 0 else []
        result.model.network.to("cpu")  # what crosses to the GUI thread lives on the CPU
        r.model = result.model
        metrics = dict(result.model.metrics)
        return TrainingOutcome(
            status, r.run_id, model_path, {k: [float(v) if isinstance(v, (int, float)) else v for v in vs]
                                           for k, vs in result.history.items()},
            result.val_report.to_dict() if result.val_report else None,
            result.test_report.to_dict() if result.test_report else None,
            predictions, list(result.model.classes), result.best_epoch, result.epochs_run, r.epoch_offset + 1,
            result.stop_reason, float(result.seconds), result.device, int(metrics.get("skipped_files", 0)),
            error=error, plan=result.plan.to_dict() if result.plan else None,
            refit_epochs=result.refit_epochs,
            test_before_refit=result.test_before_refit.to_dict() if result.test_before_refit else None,
            batch_size_used=result.model.training.get("batch_size_used"),
            metrics=run_metrics(result, first_epoch=r.epoch_offset + 1, error=error))


class TrainingRun(QObject):
    """One training run on its own thread. Create, connect, :meth:`start`; :meth:`stop`
    asks the engine to stop before its next batch (the best model so far is kept).

    ``finished`` fires once, after the thread has ended, with a :class:`TrainingOutcome`
    (status "failed" with ``error`` when the run could not train).

    Resume: ``resume_model`` (the stopped run's model file or model) and ``epoch_offset``
    (the epochs that run completed); ``config.epochs`` is the whole run's, so the new run
    trains epochs ``epoch_offset + 1`` to ``config.epochs``, numbered so in every signal.
    """

    prepare_progressed = Signal(str, int, int)  # stage, done, total
    train_started = Signal(dict)  # epochs, first_epoch, train_images, val_images, device, recipe
    epoch_started = Signal(int, dict)
    batches_finished = Signal(dict)  # epoch, batch, seen, train_images, loss, accuracy, images_per_second,
    #                                  batch_losses (every batch since the previous signal)
    epoch_finished = Signal(int, dict)  # the engine's epoch logs
    message_logged = Signal(str)
    finished = Signal(object)  # TrainingOutcome

    def __init__(self, config: TrainConfig, data_dir: str | os.PathLike, *, store: ProjectStore | None = None,
                 project_root: str | os.PathLike | None = None, test_dir: str | os.PathLike | None = None,
                 resume_model: TrainedModel | str | os.PathLike | None = None, epoch_offset: int = 0,
                 resumed_from: int | None = None, split: ProjectSplit | None = None,
                 extra_callbacks: Sequence[Callback] = (), parent: QObject | None = None):
        super().__init__(parent)
        if config.workers is None:
            # image-reading threads: leave a core to the GUI thread (as for torch's threads)
            config = TrainConfig(**{**config.__dict__, "workers": max(1, (os.cpu_count() or 2) - 1)})
        self.trainer = Trainer(config)  # resolves and checks the config now, on the GUI thread
        self.config = self.trainer.config
        self.data_dir = os.fspath(data_dir)
        self.store = store
        self.project_root = Path(project_root) if project_root is not None else Path(data_dir)
        self.test_dir = os.fspath(test_dir) if test_dir else None
        self.split = split  # the project's split; None: the engine splits by the config
        self.record = RunRecord(store, self.project_root)
        self.resume_model = resume_model
        self.epoch_offset = epoch_offset
        self.resumed_from = resumed_from
        self.extra_callbacks = list(extra_callbacks)
        self.run_id: int | None = None
        self.model_path: Path | None = None
        self.model: TrainedModel | None = None  # the final model (on the CPU) once finished
        self.outcome: TrainingOutcome | None = None
        self.store_error: str | None = None
        self._pending_outcome: TrainingOutcome | None = None  # the worker's result, until its thread ends
        self._started_at = 0.0
        self._signals = _BridgeSignals()
        self.bridge = TrainingBridge(self._signals)  # the engine numbers a resumed run's epochs itself
        q = Qt.ConnectionType.QueuedConnection
        self._signals.prepare_progressed.connect(self.prepare_progressed, q)
        self._signals.train_started.connect(self.train_started, q)
        self._signals.epoch_started.connect(self.epoch_started, q)
        self._signals.batches_finished.connect(self.batches_finished, q)
        self._signals.epoch_finished.connect(self._on_bridge_epoch_finished, q)
        self._signals.message_logged.connect(self.message_logged, q)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self.gui_ready = threading.Event()

    # ------------------------------------------------------------------ control
    def start(self, hold: bool = False) -> None:
        """Start the thread. ``hold``: it waits (at most 2 s) for :meth:`release`, so the GUI
        can first paint the view that will show the run."""
        if not hold:
            self.gui_ready.set()
        if self._thread is not None:
            raise RuntimeError("a TrainingRun runs once; make a new one")
        self._record_start()
        self._thread = QThread()
        self._thread.setObjectName(f"training-run-{self.run_id or 'unsaved'}")
        self._worker = _Worker(self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker._raw_done.connect(self._on_worker_done, Qt.ConnectionType.QueuedConnection)
        self._thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)
        self._started_at = time.perf_counter()
        workers.begin_short_gil_switch(self)
        self._thread.start()

    def stop(self) -> None:
        """Stop before the next batch; the best model so far is kept and saved."""
        self.bridge.stop_requested = True
        self.trainer.should_stop = True
        self.gui_ready.set()

    def release(self) -> None:
        """Let a run started with ``hold=True`` begin its work."""
        self.gui_ready.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self.outcome is None

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread has ended (for shutdown: call :meth:`stop` first). The
        run is then recorded and ``finished`` emitted before this returns, so the store
        can be closed right after."""
        if self._thread is None:
            return True
        if not self._thread.wait(msecs):
            return False
        if self.outcome is None:
            QCoreApplication.sendPostedEvents(self)  # the worker's queued result
            self._on_thread_finished()
        return True

    # ------------------------------------------------------------------- store
    def _record_start(self) -> None:
        resumed = ({"resumed_from": self.resumed_from, "first_epoch": self.epoch_offset + 1}
                   if self.resumed_from is not None else {})
        self.model_path = self.record.start(self.config, dataset=self.data_dir, test_dir=self.test_dir,
                                            split=self.split, **resumed)
        self.run_id = self.record.run_id
        self.store_error = self.record.error

    @Slot(int, dict)
    def _on_bridge_epoch_finished(self, epoch: int, logs: dict) -> None:
        self.record.add_epoch(epoch, logs)
        self.store_error = self.record.error
        self.epoch_finished.emit(epoch, logs)

    @Slot(object)
    def _on_worker_done(self, outcome: TrainingOutcome) -> None:
        self._pending_outcome = outcome

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.outcome is not None:  # already handled by wait()
            return
        outcome: TrainingOutcome = self._pending_outcome or TrainingOutcome(
            "failed", self.run_id, error="the training thread ended without a result")
        self._thread.wait()
        workers.end_short_gil_switch(self)
        if outcome.seconds == 0.0:
            outcome.seconds = time.perf_counter() - self._started_at
        metrics = outcome.metrics or {"epochs_run": outcome.epochs_run, "first_epoch": outcome.first_epoch}
        if outcome.error:
            metrics["error"] = outcome.error
        self.record.finish(outcome.status, seconds=outcome.seconds, model_path=outcome.model_path, metrics=metrics)
        self.store_error = self.record.error
        self.run_id = outcome.run_id = self.record.run_id  # None when a run that taught nothing was removed
        self.outcome = outcome
        self.finished.emit(outcome)
