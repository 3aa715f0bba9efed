"""Live prediction from a webcam (or a video file standing in for one), with an optional live
Grad-CAM heat map, a "save this frame into the dataset" feedback loop, and play mode.

Frames come from a ``QCamera`` (in a ``QMediaCaptureSession``) or a looped ``QMediaPlayer``,
both feeding one ``QVideoSink``, as in :mod:`.qt_capture`. Two things happen to them:

* **Preview**: the sink's slot only remembers the newest frame; a ~30 Hz timer converts that
  one to a QImage and paints it, so a slow machine drops preview frames instead of lagging.
* **Prediction**, on a thread of its own (a :class:`workers.DedicatedWorker`, like the
  training thread; a stream of small jobs that must not wait behind thumbnail decoding on
  the global pool). At most ONE frame is in flight and at most ONE waits
  (``submit(..., replace_pending=True)``): a frame that arrives while the model is busy
  replaces the waiting one (which counts as dropped), so the answer is never more than about
  one inference behind the camera and nothing queues up. The job converts the frame, applies
  the mirror, and runs :func:`.live_infer.infer` (Qt-free): the core's own preprocessing
  (:func:`~ponyclassifier.core.preprocess.to_uint8_tensor`, as
  :meth:`Predictor.predict_image <ponyclassifier.core.predict.Predictor.predict_image>`), the
  model, and (when asked, a few times a second at most) Grad-CAM
  (:func:`ponyclassifier.core.explain.grad_cam`). A change of model or source cancels the jobs
  sent before it: they never call back.

Answers can be steadied (an exponential average of the last probabilities, so the label does
not flicker between two classes on every frame) and are "not sure" below the model's
threshold (adjustable here). Saving a frame writes a PNG into a private temp folder on a
worker and imports it with :meth:`Project.import_files <ponyclassifier.core.project.Project.import_files>`
(journaled, undoable, never overwriting; :func:`.teach.save_into_project`), under the answer
or a class the user picked.
"""

from __future__ import annotations

import functools
import html
import os
import shutil
import tempfile
import time
from typing import Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import QVideoFrame
from PySide6.QtWidgets import QWidget

from ...core.explain import CAM_FLOOR, CAM_OPACITY, heat_rgba
from ...core.images import ImageError
from ...core.trained import is_unsure
from .. import workers
from ..widgets.video_source import (
    NO_CAMERA,
    VideoSource,
    choose_video_file,
    fill_source_combo,
    remember_video_file,
)
from .live_infer import Answer, CamPacer, LiveEngine, LivePrediction, answer, infer, steadied
from .live_stats import LiveCounter, LiveStats
from .live_ui import build, show_answer, show_placeholder
from .play import PlayWindow, plain_text
from .teach import frame_name, save_into_project

__all__ = ["LivePredictWidget", "LivePrediction", "LiveStats", "heat_layer"]

PREVIEW_FPS = 30


def heat_layer(heat: np.ndarray, opacity: float = CAM_OPACITY, floor: float = CAM_FLOOR) -> QImage:
    """The core's heat layer (:func:`ponyclassifier.core.explain.heat_rgba`) as a QImage."""
    return workers.array_to_qimage(heat_rgba(heat, opacity, floor))


def _inference_job(job: dict, want_cam: bool, pacer: CamPacer | None):
    """The job the inference thread runs for one frame or picture: the frame made into pixels
    (mirrored as shown), :func:`.live_infer.infer`, and the results made into QImages."""
    engine = job["engine"]

    def run(state: workers.JobState) -> dict:
        out = {"kind": job["kind"], "t_arrival": job["t_arrival"], "path": job.get("path"), "error": None,
               "counter": job["counter"], "engine": engine, "answer": Answer(), "heat": None, "image": None}
        try:
            rgb = None
            if job["kind"] == "frame":
                img = job["frame"].toImage()
                if img.isNull():
                    raise RuntimeError("the camera sent a frame that could not be read")
                if job["mirror"]:
                    img = img.flipped(Qt.Orientation.Horizontal)
                rgb = workers.qimage_to_array(img, keep_gray=False)
            a = out["answer"] = infer(engine, rgb, job.get("path"), want_cam, pacer)
            out["heat"] = heat_layer(a.heat) if a.heat is not None else None
            out["image"] = workers.pil_to_qimage(a.image) if a.image is not None else None
        except Exception as e:  # reported to the GUI, never lost on this thread
            out["error"] = e.reason if isinstance(e, ImageError) else (str(e) or type(e).__name__)
        return out

    return run


def _stop_worker(worker: workers.DedicatedWorker, *args) -> None:
    """Join the inference thread (also when the widget was deleted without shutdown())."""
    worker.shutdown()


class LivePredictWidget(QWidget):
    """Predict what the camera sees, live. See the module docstring for how frames flow.

    * ``set_model(trained_model | None, description)``: the core ``TrainedModel`` to use
      (already loaded; None shows "no model").
    * ``set_project(project | None, busy=None)``: the core ``Project`` frames are saved into
      (None: saving is off, and its tooltip says why). ``busy()``, if given, returns a reason
      (str) while the project is busy with another change; saving then waits its turn.
    * ``use_video_file(path)``: a recording instead of a camera (selected and started).
    * ``start()`` / ``stop()``, ``running``; ``open_play_mode(fullscreen=True)``.
    * ``stats`` (:class:`LiveStats`), ``reset_stats()``; ``shutdown()`` before it goes away.

    Signals: ``prediction_made(LivePrediction)`` (label, confidence, unsure, top),
    ``frame_saved(path)`` after a frame was added to the project, ``status_message(text)``
    for the window's status bar, ``frame_shown()`` after each preview frame.
    """

    prediction_made = Signal(object)
    frame_saved = Signal(str)
    status_message = Signal(str)
    frame_shown = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = None
        self._model_description = ""
        self._project = None
        self._project_busy: Callable[[], str | None] | None = None
        self._engine: LiveEngine | None = None  # the model as the inference thread uses it
        self._worker: workers.DedicatedWorker | None = None  # made with the first job
        self._waiting: tuple[workers.Job, dict] | None = None  # the job waiting its turn, and what it is
        self._pacer = CamPacer()
        self._save_waiters: list[Callable[[], None]] = []
        self._latest: QVideoFrame | None = None
        self._dirty = False
        self._shown: QImage | None = None  # the picture on screen (mirrored as shown)
        self._heat: QImage | None = None
        self._steady: np.ndarray | None = None
        self._last: LivePrediction | None = None
        self._running = False
        self._closed = False
        self._saving = False
        self._saving_into = None
        self._save_no = 0
        self._video_files: list[str] = []
        self._play: PlayWindow | None = None
        self._tmp = tempfile.mkdtemp(prefix="ponyclassifier-live-")
        self.reset_stats()

        # media plumbing: one sink, fed by a camera session or a player
        self.video = VideoSource(self)
        self.sink = self.video.sink
        self.sink.videoFrameChanged.connect(self._on_sink_video_frame_changed)
        self.video.starting.connect(lambda text: self.view.set_message(text))
        self.video.failed.connect(self._source_failed)
        self.video.devices.videoInputsChanged.connect(self._on_devices_video_inputs_changed)

        build(self)

        self._render_timer = QTimer(self, interval=1000 // PREVIEW_FPS)
        self._render_timer.timeout.connect(self._render)
        self._rates_timer = QTimer(self, interval=500)
        self._rates_timer.timeout.connect(self._show_rates)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._fill_sources()
        if self.source_combo.currentData() == "choose":
            self.view.set_message(NO_CAMERA)
        self.set_model(None, "")
        self.set_project(None)
        self._set_answer_none()

    # ==================================================================== API
    @property
    def running(self) -> bool:
        return self._running

    @property
    def model(self):
        return self._model

    @property
    def threshold(self) -> float:
        return self.threshold_spin.value() / 100.0

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.threshold_spin.setValue(int(round(value * 100)))

    @property
    def last_prediction(self) -> LivePrediction | None:
        return self._last

    @property
    def current_image(self) -> QImage | None:
        """The picture on screen (mirrored if the view is), as a saved frame would be."""
        if self._dirty:
            self._render()
        return self._shown

    @property
    def saving(self) -> bool:
        return self._saving

    @property
    def worker_running(self) -> bool:
        """The inference thread exists (made with the first job; it idles until shutdown())."""
        return self._worker is not None

    @property
    def play_window(self) -> PlayWindow | None:
        return self._play

    @property
    def stats(self) -> LiveStats:
        return self._counter.stats

    def reset_stats(self) -> None:
        # Jobs sent before a reset may still answer: they hold the old counter and do not count.
        self._counter = LiveCounter()

    def set_model(self, trained_model, description: str = "") -> None:
        """Use ``trained_model`` (a loaded core TrainedModel) from now on; None: no model."""
        self._model = trained_model
        self._model_description = description
        self._engine = LiveEngine(trained_model) if trained_model is not None else None
        self._cancel_jobs()  # answers of the last model are dropped
        self._steady = None
        self._last = None
        self._clear_heat()
        if trained_model is None:
            self.model_label.setText("<b>No model.</b> Train one in the Train place, or open a model file "
                                     "on the Predict page.")
            self.threshold_spin.setEnabled(False)
            self._set_answer_none()
        else:
            name = html.escape(description or os.path.basename(trained_model.path or "") or "this model")
            self.model_label.setText(f"Model: <b>{name}</b> · {len(trained_model.classes)} classes")
            self.model_label.setToolTip(", ".join(trained_model.classes[:60])
                                        + (" …" if len(trained_model.classes) > 60 else ""))
            self.threshold_spin.setEnabled(True)
            self.threshold_spin.blockSignals(True)
            self.threshold_spin.setValue(int(round(trained_model.unsure_threshold * 100)))
            self.threshold_spin.blockSignals(False)
            self._set_answer_waiting()
        self.reset_stats()
        self._update_save_button()
        if self._play is not None:
            self._play.set_threshold(self.threshold if trained_model is not None else None)
            self._feed_play_answer()

    def set_project(self, project, busy: Callable[[], str | None] | None = None) -> None:
        """Frames are saved into ``project`` (a core Project); None turns saving off."""
        self._project = project
        self._project_busy = busy
        self.refresh_classes()

    def refresh_classes(self) -> None:
        """Re-read the project's classes (after classes were added or renamed elsewhere)."""
        current = self.save_class.currentData()
        self.save_class.blockSignals(True)
        self.save_class.clear()
        self.save_class.addItem("Its answer", None)
        if self._project is not None:
            try:
                classes = self._project.classes()
            except OSError:
                classes = []
            for c in classes:
                self.save_class.addItem(c, c)
        i = self.save_class.findData(current) if current is not None else 0
        self.save_class.setCurrentIndex(max(i, 0))
        self.save_class.blockSignals(False)
        self._update_save_button()

    @property
    def busy(self) -> bool:
        """A frame (or picture) is with the model, or waiting for it."""
        return self._worker is not None and self._worker.busy

    def feed_frame(self, frame: QVideoFrame | QImage) -> None:
        """Take one frame as if the camera had sent it (frames from elsewhere, and tests);
        it is predicted like any other, and dropped like any other when the model is busy."""
        if isinstance(frame, QImage):
            frame = QVideoFrame(frame)
        self._accept_frame(frame)
        if not self._render_timer.isActive():  # no camera running: nothing else draws it
            self._render()

    def use_video_file(self, path: str | os.PathLike) -> None:
        """Use a recording instead of a camera (added to the source list, selected, started)."""
        path = remember_video_file(self._video_files, path)
        self._fill_sources(select="file:" + path)
        self.mirror.setChecked(False)  # a recording is not a selfie
        self.start()

    def start(self) -> None:
        """Start the selected camera or video and the live answers."""
        if self._closed:
            return
        self._start_selected()

    def stop(self) -> None:
        """Stop the camera; the last picture and answer stay on screen (and can be saved)."""
        self._stop_sources()
        self._drop_pending()
        self._set_running(False)
        if self._shown is None:
            self.view.set_message("Stopped. Press <b>Start</b> to go on.")

    def forget_frame(self) -> None:
        """Another project was opened: stop the camera and clear the picture and the answer,
        so nothing of the last project stays on screen (a late result is dropped)."""
        self._stop_sources()
        self._cancel_jobs()
        self._set_running(False)
        self._steady = None
        self._shown = None
        self._last = None
        self._clear_heat()
        self.reset_stats()
        self.answer.setText("")
        self.answer_detail.setText("")
        self.view.set_message("Press <b>Start</b> to see what the model thinks of the camera picture.")

    def predict_file(self, path: str | os.PathLike) -> None:
        """Stop the camera and show and predict one picture file (play mode's "Open picture")."""
        self.stop()
        path = os.fspath(path)
        self._cancel_jobs()  # a frame still in flight must not overwrite this picture's answer
        self._steady = None
        self._clear_heat()
        self._submit({"kind": "file", "path": path, "t_arrival": time.perf_counter()})

    def save_frame(self, cls: str | None = None) -> bool:
        """Save the picture on screen into class ``cls`` (default: the class picked in the
        "As" list, or the answer). Runs on a worker; ``frame_saved`` follows. False (and a
        message) if it cannot start."""
        if self._saving:
            return self._refuse("Still saving the last picture…")
        reason = self._save_blocker()
        if reason:
            return self._refuse(reason)
        image = self.current_image
        if image is None:
            return self._refuse("There is no picture to save yet: press Start first.")
        target = cls or self._save_target()
        if not target:
            return self._refuse("There is no answer yet: pick a class under “As”.")
        try:
            classes = self._project.classes()
        except OSError as e:
            return self._refuse(f"Cannot read the project folder: {e.strerror or e}")
        if target not in classes and cls is None:
            return self._refuse(f"“{target}” is not a class of this project: pick the right one under “As”.")
        if self._project_busy is not None:
            busy = self._project_busy()
            if busy:
                return self._refuse(busy if isinstance(busy, str) else
                                    "The project is busy with another change; try again in a moment.")
        self._save_no += 1
        name = frame_name(target, self._save_no)
        project, tmp_dir, shown = self._project, self._tmp, image

        def fn(state):
            return save_into_project(project, workers.qimage_to_array(shown, keep_gray=False), target, name, tmp_dir)

        self._saving = True
        self._saving_into = project
        self._update_save_button()
        self.save_note.setText(f"Saving into {html.escape(target)}…")
        workers.run_job(fn, on_finished=lambda path: self._on_save_finished(target, path),
                        on_failed=lambda msg, tb: self._on_save_failed(target, msg))
        return True

    def when_saved(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the picture being saved is in the project (or could not be added);
        at once if none is being saved. (A project let go while a save writes to it is closed
        after it.)"""
        if self._saving:
            self._save_waiters.append(fn)
        else:
            fn()

    @property
    def saving_into(self):
        """The project a save in progress writes to (None when not saving)."""
        return self._saving_into if self._saving else None

    def open_play_mode(self, fullscreen: bool = True) -> PlayWindow:
        """Open (or raise) play mode, fed with this view's frames and answers."""
        if self._play is None:
            play = PlayWindow(self.window())
            play.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            play.camera_toggled.connect(self._on_play_camera_toggled)
            play.open_requested.connect(self.predict_file)
            play.closed.connect(lambda p=play: self._on_play_closed(p))
            self._play = play
        play = self._play
        play.set_actions(next=False, open=True, camera=self._running)
        play.set_threshold(self.threshold if self._model is not None else None)
        if self._shown is not None:
            play.show_image(self._shown)
        elif not self._running:
            play.show_message("The camera is off.\nPress “Camera on”.")
        play.show_heat(self._heat if self.cam_check.isChecked() else None)
        self._feed_play_answer()
        if fullscreen:
            play.open_fullscreen()
        else:
            play.show()
        return play

    def shutdown(self) -> None:
        """Stop the camera or video, close play mode and end the worker thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._render_timer.stop()
        self._rates_timer.stop()
        self._stop_sources()
        workers.end_short_gil_switch(self)
        if self._play is not None:
            self._play.close()
            self._play = None
        if self._worker is not None:
            self._worker.shutdown()  # nothing calls back any more; the thread is joined
            self._worker = None
        if not self._saving:  # else when the save still writing from it has ended (_save_ended)
            shutil.rmtree(self._tmp, ignore_errors=True)
        app = QCoreApplication.instance()
        if app is not None:
            try:
                app.aboutToQuit.disconnect(self.shutdown)
            except (RuntimeError, TypeError):
                pass

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ================================================================ sources
    def _fill_sources(self, select: str | None = None) -> None:
        fill_source_combo(self.source_combo, self._video_files, select)

    def _on_devices_video_inputs_changed(self) -> None:
        before = self.source_combo.currentData()
        self._fill_sources()
        if self._running and self.source_combo.currentData() != before:
            self._start_selected()

    def _on_source_combo_activated(self, index: int) -> None:
        if self.source_combo.itemData(index) == "choose":
            path = choose_video_file(self)
            if path:
                self.use_video_file(path)
            else:
                self._fill_sources()
            return
        data = self.source_combo.itemData(index) or ""
        self.mirror.setChecked(data.startswith("camera:"))
        if self._running:
            self._start_selected()

    def _on_start_button_clicked(self) -> None:
        if self._running:
            self.stop()
        elif self.source_combo.currentData() == "choose":
            self._on_source_combo_activated(self.source_combo.currentIndex())
        else:
            self.start()

    def _stop_sources(self) -> None:
        self.video.stop()
        self._latest = None

    def _start_selected(self) -> None:
        self._stop_sources()
        self._cancel_jobs()  # results for the old source are stale
        self._steady = None
        self._shown = None
        self._clear_heat()
        self.reset_stats()
        if not self.video.start(self.source_combo.currentData()):
            self._source_failed(NO_CAMERA)
            return
        self._set_running(True)

    def _source_failed(self, message_html: str) -> None:
        self._stop_sources()
        self._set_running(False)
        self.view.set_message(message_html)
        if self._play is not None:
            self._play.show_message(message_html)  # the play window takes rich text
        self.status_message.emit(plain_text(message_html, newline=" "))

    def _set_running(self, on: bool) -> None:
        changed = on != self._running
        self._running = on
        # While frames stream in, the worker's Python between torch ops competes with the
        # GUI thread for the GIL; a short switch interval keeps painting smooth (the
        # training thread's measure; shared, so the two never undo each other).
        if on:
            workers.begin_short_gil_switch(self)
        else:
            workers.end_short_gil_switch(self)
        self.start_button.setText("Stop" if on else "Start")
        if on:
            self._render_timer.start()
            self._rates_timer.start()
        else:
            self._render_timer.stop()
            self._rates_timer.stop()
            self._show_rates()
        if self._play is not None:
            self._play.set_camera_on(on)
        if changed:
            self.running_changed.emit(on)

    # ================================================================= frames
    def _on_sink_video_frame_changed(self, frame: QVideoFrame) -> None:
        # Keep only the newest frame; conversion happens at most 30 times a second for the
        # preview, and on the worker for the model.
        if self._running:
            self._accept_frame(frame)

    def _accept_frame(self, frame: QVideoFrame) -> None:
        if self._closed or not frame.isValid():
            return
        now = time.perf_counter()
        self._latest = QVideoFrame(frame)
        self._dirty = True
        self._counter.frame(now)
        if self._model is None:
            return
        self._submit({"kind": "frame", "frame": self._latest, "mirror": self.mirror.isChecked(), "t_arrival": now})

    def _submit(self, job: dict) -> None:
        """Send ``job`` to the inference thread: it starts now if the thread is idle, else it is
        THE waiting job (a waiting frame it replaces is dropped, never queued)."""
        if self._closed or (job["kind"] == "frame" and self._model is None):
            return
        worker = self._ensure_worker()
        waiting = self._waiting if self._waiting is not None and self._waiting[0] is worker.pending else None
        if waiting is not None:
            if waiting[1]["kind"] == "file" and job["kind"] == "frame":
                return  # a picture the user opened goes first
            self._count_dropped(waiting[1])
        now = time.perf_counter()
        job["counter"], job["engine"] = self._counter, self._engine
        self._counter.submitted(now)
        want_cam = self.cam_check.isChecked() and self._engine is not None
        handle = worker.submit(_inference_job(job, want_cam, self._pacer if job["kind"] == "frame" else None),
                               on_finished=self._on_job_finished, replace_pending=True)
        self._waiting = (handle, job) if handle is worker.pending else None

    def _cancel_jobs(self) -> None:
        """The model, the source or the picture changed: the jobs sent before never call back."""
        self._drop_pending()
        if self._worker is not None and self._worker.running is not None:
            self._worker.running.cancel()

    def _drop_pending(self) -> None:
        if self._worker is not None:
            if self._waiting is not None and self._waiting[0] is self._worker.pending:
                self._count_dropped(self._waiting[1])
            self._worker.cancel_pending()
        self._waiting = None

    def _count_dropped(self, job: dict) -> None:
        if job["kind"] == "frame" and job["counter"] is self._counter:
            self._counter.dropped += 1

    def _ensure_worker(self) -> workers.DedicatedWorker:
        if self._worker is None:
            # No parent: shutdown() (or the widget's destruction) joins its thread.
            self._worker = workers.DedicatedWorker("ponyclassifier-live-predict")
            self.destroyed.connect(functools.partial(_stop_worker, self._worker))
        return self._worker

    def _on_job_finished(self, out: dict) -> None:
        if self._closed:
            return
        if out["error"]:
            if out["kind"] == "file":
                msg = f"Could not read {os.path.basename(out['path'])}: {out['error']}"
                self.status_message.emit(msg)
                if self._play is not None:
                    self._play.show_waiting("I can't open that picture.")
                self.view.set_message(f"<b>{html.escape(msg)}</b>")
            else:
                self.status_message.emit(f"Live prediction failed: {out['error']}")
        else:
            self._apply_result(out, time.perf_counter())

    def _apply_result(self, out: dict, now: float) -> None:
        if out["kind"] == "file" and out["image"] is not None:
            self._shown = out["image"]
            self._dirty = False
            self.view.set_image(self._shown)
            self.view.set_layer(None)
            if self._play is not None:
                self._play.show_image(self._shown)
        a: Answer = out["answer"]
        if a.probs is None:
            return  # no model: the picture alone
        counter = out["counter"]
        current = counter is self._counter
        if out["kind"] == "frame" and current:
            counter.answered(now, (now - out["t_arrival"]) * 1000, a.infer_ms)
        if out["heat"] is not None:
            counter.heatmaps += current
            if self.cam_check.isChecked():
                self._heat = out["heat"]
                self.view.set_layer(self._heat)
                if self._play is not None:
                    self._play.show_heat(self._heat)
        probs = a.probs
        if self.steady_check.isChecked() and out["kind"] == "frame":
            self._steady = probs = steadied(self._steady, probs)
        else:
            self._steady = probs if out["kind"] == "frame" else None
        self._publish(probs, out["engine"].model.classes)

    def _publish(self, probs: np.ndarray, classes: list[str]) -> None:
        pred = answer(probs, classes, self.threshold)
        self._last = pred
        self._show_answer(pred)
        self.prediction_made.emit(pred)
        self._feed_play_answer()

    # ---------------------------------------------------------------- preview
    def _render(self) -> None:
        if not self._dirty or self._latest is None:
            return
        self._dirty = False
        img = self._latest.toImage()
        if img.isNull():
            return
        if self.mirror.isChecked():
            img = img.flipped(Qt.Orientation.Horizontal)
        self._shown = img
        self.view.set_image(img)
        if self.cam_check.isChecked() and self._heat is not None:
            self.view.set_layer(self._heat)
        if self._play is not None:
            self._play.show_image(img)
        self.frame_shown.emit()

    def _on_mirror_toggled(self) -> None:
        self._dirty = self._latest is not None
        self._steady = None
        if not self._running and self._shown is not None and self._latest is None:
            # a frozen picture (stopped camera, opened file) flips on the spot
            self._shown = self._shown.flipped(Qt.Orientation.Horizontal)
            self.view.set_image(self._shown)
        self._render()

    def _show_rates(self) -> None:
        self.rates.setText(self._counter.rates_text(self._running, self._model is not None))

    # ----------------------------------------------------------------- answer
    def _set_answer_none(self) -> None:
        show_placeholder(self, "No model", "Choose a model to see live answers. The camera picture still shows.")

    def _set_answer_waiting(self) -> None:
        show_placeholder(self, "Waiting for a picture…", "")

    def _show_answer(self, pred: LivePrediction) -> None:
        show_answer(self, pred, self.threshold)
        self._update_save_button()

    def _on_threshold_spin_value_changed(self) -> None:
        if self._play is not None:
            self._play.set_threshold(self.threshold)
        if self._last is not None:
            top = self._last.top
            self._last = LivePrediction(top[0][0], top[0][1], is_unsure(top[0][1], self.threshold), top)
            self._show_answer(self._last)
            self._feed_play_answer()

    def _on_cam_check_toggled(self, on: bool) -> None:
        self._pacer.next_at = 0.0
        if not on:
            self._clear_heat()
        elif not self._running and self._shown is not None and self._model is not None:
            self.status_message.emit("The heat map appears with the next answer: press Start.")

    def _clear_heat(self) -> None:
        self._heat = None
        self.view.set_layer(None)
        if self._play is not None:
            self._play.show_heat(None)

    # ------------------------------------------------------------------ play
    def _feed_play_answer(self) -> None:
        play = self._play
        if play is None:
            return
        if self._model is None:
            play.show_waiting("No model yet")
        elif self._last is None:
            play.show_waiting("Show me something!")
        else:
            p = self._last
            play.show_prediction(None, p.label, p.confidence, p.unsure)

    def _on_play_camera_toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def _on_play_closed(self, play: PlayWindow) -> None:
        if self._play is play:
            self._play = None

    # ------------------------------------------------------------------ saving
    def _save_blocker(self) -> str | None:
        """Why saving is not possible right now (None: it is)."""
        if self._project is None:
            return "Open a project first: saved pictures go into its class folders."
        if getattr(self._project, "read_only", False):
            return "This project is open read-only, so no pictures can be added to it."
        return None

    def _save_target(self) -> str | None:
        chosen = self.save_class.currentData()
        if chosen:
            return chosen
        return self._last.label if self._last is not None else None

    def _update_save_button(self) -> None:
        reason = self._save_blocker()
        target = self._save_target()
        answer = self._last.label if self._last is not None else None
        self.save_class.setItemText(0, f"Its answer ({answer})" if answer else "Its answer")
        self.save_class.setEnabled(reason is None)
        if reason:
            self.save_button.setText("Save picture")
            self.save_button.setEnabled(False)
            self.save_button.setToolTip(reason)
            self.save_note.setText(f"<span style='color: palette(placeholder-text)'>{html.escape(reason)}</span>")
            return
        self.save_button.setText(f"Save picture as {target}" if target else "Save picture")
        self.save_button.setEnabled(not self._saving)
        self.save_button.setToolTip("Add the picture on screen to this class folder of the project "
                                    "(never replaces a file; Undo in the Dataset place takes it back).")
        if self.save_note.text().startswith("<span style='color: palette(placeholder-text)'>"):
            self.save_note.setText("")

    def _refuse(self, text: str) -> bool:
        self.save_note.setText(f"<span style='color:#b02a2a'>{html.escape(text)}</span>")
        self.status_message.emit(text)
        return False

    def _save_ended(self) -> None:
        self._saving = False
        self._saving_into = None
        if self._closed:
            shutil.rmtree(self._tmp, ignore_errors=True)
        waiters, self._save_waiters = self._save_waiters, []
        for fn in waiters:
            fn()

    def _on_save_finished(self, cls: str, path: str) -> None:
        self._save_ended()
        if self._closed:
            return
        self.save_note.setText(f"Saved <b>{html.escape(os.path.basename(path))}</b> into "
                               f"<b>{html.escape(cls)}</b>.")
        self.save_note.setToolTip(path)
        if self.save_class.findData(cls) < 0:
            self.refresh_classes()
        self._update_save_button()
        self.status_message.emit(f"Saved the picture into {cls}: {os.path.basename(path)}")
        self.frame_saved.emit(path)

    def _on_save_failed(self, cls: str, message: str) -> None:
        self._save_ended()
        if self._closed:
            return
        self._update_save_button()
        self._refuse(f"Could not add the picture to {cls}: {message}")
