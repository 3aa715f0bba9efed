"""One training run on the training worker (a :class:`~ponyclassifier.gui.workers.DedicatedWorker`:
a thread of its own), watched through a core callback.

* The worker body is Qt-free: :func:`ponyclassifier.core.runs.fit_run` (``Trainer.fit``,
  the final model saved, every ending as a plain :class:`TrainingOutcome`). The engine's
  hooks reach the GUI through a core :class:`~ponyclassifier.core.callbacks.EventForwarder`
  whose events are handed over with ``JobState.partial``; batch updates are coalesced
  there (at most one per ``batch_interval``), so a fast head-only epoch cannot flood the
  GUI thread's event queue.
* :class:`TrainingRun` owns one run: the ``Trainer`` (created on the GUI thread, so
  :meth:`TrainingRun.stop` can set ``trainer.should_stop`` at any time; the engine checks
  it before every batch), the project store record (:class:`~ponyclassifier.core.runs.RunRecord`:
  start, one row per epoch, finish, all on the GUI thread), the model file (a
  ``ModelCheckpoint`` keeps the best model so far on disk, by the one best-epoch rule;
  the final best model overwrites it atomically at the end) and the per-image validation
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

Every signal of :class:`TrainingRun` fires on the GUI thread.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from ...core.callbacks import Callback, EventForwarder, ModelCheckpoint
from ...core.engine import TrainConfig, Trainer
from ...core.runs import ProjectSplit, RunRecord, TrainingOutcome, fit_run, models_dir, outcome_metrics
from ...core.store import ProjectStore
from ...core.trained import TrainedModel
from .. import workers

__all__ = ["TrainingRun", "TrainingOutcome", "models_dir"]

READY_WAIT_S = 2.0  # at most this long the run waits for the view that shows it to be painted


class TrainingRun(QObject):
    """One training run on the training worker. Create, connect, :meth:`start`; :meth:`stop`
    asks the engine to stop before its next batch (the best model so far is kept).

    ``finished`` fires once, after the worker's job has ended, with a :class:`TrainingOutcome`
    (status "failed" with ``error`` when the run could not train).

    Resume: ``resume_model`` (the stopped run's model file or model) and ``epoch_offset``
    (the epochs that run completed); ``config.epochs`` is the whole run's, so the new run
    trains epochs ``epoch_offset + 1`` to ``config.epochs``, numbered so in every signal.

    ``worker``: the :class:`~ponyclassifier.gui.workers.DedicatedWorker` to train on (the
    panel's one training thread); without one the run makes its own.
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
                 extra_callbacks: Sequence[Callback] = (), worker: workers.DedicatedWorker | None = None,
                 parent: QObject | None = None):
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
        self._started_at = 0.0
        self._worker = worker if worker is not None else workers.DedicatedWorker("training", self)
        self._job: workers.Job | None = None
        self._state: workers.JobState | None = None
        # the engine numbers a resumed run's epochs itself: no offset here
        self.bridge = EventForwarder(self._hand_over)
        self.gui_ready = threading.Event()

    # ------------------------------------------------------------------ control
    def start(self, hold: bool = False) -> None:
        """Start the run on the worker. ``hold``: it waits (at most 2 s) for :meth:`release`,
        so the GUI can first paint the view that will show the run."""
        if not hold:
            self.gui_ready.set()
        if self._job is not None:
            raise RuntimeError("a TrainingRun runs once; make a new one")
        self._record_start()
        callbacks: list[Callback] = [self.bridge]
        if self.model_path is not None:
            callbacks.append(ModelCheckpoint(self.model_path, monitor=None))  # the one best-epoch rule
        callbacks += self.extra_callbacks
        # Leave one core to the GUI thread: with every core busy in torch's intra-op pool
        # the event loop waits for the OS scheduler as well as for the GIL.
        threads = max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1))
        trainer, data_dir, test_dir, split = self.trainer, self.data_dir, self.test_dir, self.split
        resume, offset, model_path, run_id = self.resume_model, self.epoch_offset, self.model_path, self.run_id
        ready = self.gui_ready

        def work(state: workers.JobState):  # the training thread; Qt-free below
            self._state = state
            return fit_run(trainer, data_dir, callbacks=callbacks, test_dir=test_dir, split=split,
                           initial_model=resume, epoch_offset=offset, model_path=model_path, run_id=run_id,
                           threads=threads, before=lambda: ready.wait(READY_WAIT_S))

        self._started_at = time.perf_counter()
        workers.begin_short_gil_switch(self)
        self._job = self._worker.submit(work, on_partial=self._on_event, on_finished=self._on_done,
                                        on_failed=self._on_failed, on_cancelled=self._on_cancelled)
        if self._job is None:  # the worker was shut down (the window is closing): finished, after start returns
            failed = TrainingOutcome("failed", self.run_id, error="the training worker has been shut down")
            QTimer.singleShot(0, self, lambda: self._finish(failed))

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
        return self._started_at > 0 and self.outcome is None

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the run has ended (for shutdown: call :meth:`stop` first). The run is
        then recorded and ``finished`` emitted before this returns, so the store can be
        closed right after."""
        if self._job is None or self.outcome is not None:
            return True
        if not self._worker.wait(msecs):  # the worker runs one job at a time: this one
            return False
        QCoreApplication.sendPostedEvents(self._job.signals)  # its events, the result last, in order
        return self.outcome is not None

    # ------------------------------------------------------------ worker side
    def _hand_over(self, event: str, payload: Any) -> None:
        """The training thread: an engine event on its way to the GUI thread."""
        if self._state is not None:
            self._state.partial((event, payload))

    # -------------------------------------------------------------- GUI side
    def _on_event(self, item: tuple[str, Any]) -> None:
        event, p = item
        if event == "batches":
            self.batches_finished.emit(p)
        elif event == "epoch_finished":
            self.record.add_epoch(*p)
            self.store_error = self.record.error
            self.epoch_finished.emit(*p)
        elif event == "epoch_started":
            self.epoch_started.emit(*p)
        elif event == "prepare":
            self.prepare_progressed.emit(*p)
        elif event == "train_started":
            self.train_started.emit(p)
        elif event == "message":
            self.message_logged.emit(p)

    def _record_start(self) -> None:
        resumed = ({"resumed_from": self.resumed_from, "first_epoch": self.epoch_offset + 1}
                   if self.resumed_from is not None else {})
        self.model_path = self.record.start(self.config, dataset=self.data_dir, test_dir=self.test_dir,
                                            split=self.split, **resumed)
        self.run_id = self.record.run_id
        self.store_error = self.record.error

    def _on_done(self, result: tuple[TrainingOutcome, TrainedModel | None]) -> None:
        outcome, self.model = result
        self._finish(outcome)

    def _on_failed(self, message: str, details: str) -> None:
        self._finish(TrainingOutcome("failed", self.run_id, error=message, details=details))

    def _on_cancelled(self) -> None:
        self._finish(TrainingOutcome("failed", self.run_id, error="the training ended without a result"))

    def _finish(self, outcome: TrainingOutcome) -> None:
        if self.outcome is not None:
            return
        workers.end_short_gil_switch(self)
        if outcome.seconds == 0.0:
            outcome.seconds = time.perf_counter() - self._started_at
        self.record.finish(outcome.status, seconds=outcome.seconds, model_path=outcome.model_path,
                           metrics=outcome_metrics(outcome))
        self.store_error = self.record.error
        self.run_id = outcome.run_id = self.record.run_id  # None when a run that taught nothing was removed
        self.outcome = outcome
        self.finished.emit(outcome)
