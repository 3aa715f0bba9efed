"""Live prediction from a webcam (or a video file standing in for one), with an optional live
Grad-CAM heat map, a "save this frame into the dataset" feedback loop, and play mode.

Frames come from a ``QCamera`` (in a ``QMediaCaptureSession``) or a looped ``QMediaPlayer``,
both feeding one ``QVideoSink``, as in :mod:`.qt_capture`. Two things happen to them:

* **Preview**: the sink's slot only remembers the newest frame; a ~30 Hz timer converts that
  one to a QImage and paints it, so a slow machine drops preview frames instead of lagging.
* **Prediction**, on a dedicated ``QThread`` (a :class:`_InferenceWorker` moved onto it, like
  the training thread; a stream of small jobs that must not wait behind thumbnail decoding
  on the global pool). At most ONE frame is in flight and at most ONE waits: a frame that
  arrives while the model is busy replaces the waiting one (which counts as dropped), so the
  answer is never more than about one inference behind the camera and nothing queues up.
  The worker converts the frame, applies the mirror, runs the core's own preprocessing
  (:func:`~ponyclassifier.core.preprocess.to_uint8_tensor`, as
  :meth:`Predictor.predict_image <ponyclassifier.core.predict.Predictor.predict_image>`) and
  the model, and (when asked, a few times a second at most) Grad-CAM
  (:func:`ponyclassifier.core.explain.grad_cam`). Results carry a token: a result for a model
  or source no longer in use is dropped.

Answers can be steadied (an exponential average of the last probabilities, so the label does
not flicker between two classes on every frame) and are "not sure" below the model's
threshold (adjustable here). Saving a frame writes a PNG into a private temp folder on a
worker and imports it with :meth:`Project.import_files <ponyclassifier.core.project.Project.import_files>`
(journaled, undoable, never overwriting), under the answer or a class the user picked.
"""

from __future__ import annotations

import functools
import html
import os
import re
import shutil
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import QVideoFrame
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.trained import is_unsure
from .. import workers
from ..widgets.video_source import (
    NO_CAMERA,
    VideoSource,
    choose_video_file,
    fill_source_combo,
    remember_video_file,
)
from .play import FrameView, PlayWindow, percent, plain_text

__all__ = ["LivePredictWidget", "LivePrediction", "LiveStats"]

PREVIEW_FPS = 30
TOP_K = 3
CAM_MIN_INTERVAL = 0.3  # s: at most ~3 heat maps a second
CAM_TIME_SHARE = 0.35  # and never more than about this share of the worker's time
from ...core.explain import CAM_FLOOR, CAM_OPACITY  # noqa: E402  (the one rule, in core)
STEADY_WEIGHT = 0.45  # weight of the newest probabilities in the steadied answer
RATE_WINDOW = 2.0  # s: the frame rates shown are over the last this many seconds


class LivePrediction(NamedTuple):
    """One live answer: the best class, its probability, whether that is under the "not sure"
    threshold, and the top classes as ``[(class, probability), ...]``, best first."""

    label: str
    confidence: float
    unsure: bool
    top: list


@dataclass(frozen=True)
class LiveStats:
    """Counters since the last start (or model change).

    ``frames_seen``: frames that arrived from the source; ``frames_predicted``: frames the
    model answered; ``frames_dropped``: frames that arrived while the model was busy and were
    replaced by a newer one before their turn (never queued). Latency is from a frame's
    arrival on the GUI thread to its answer being shown; rates are over the whole time.
    """

    frames_seen: int = 0
    frames_predicted: int = 0
    frames_dropped: int = 0
    mean_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    max_latency_ms: float = 0.0
    predictions_per_second: float = 0.0
    camera_fps: float = 0.0
    mean_inference_ms: float = 0.0
    heatmaps: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def heat_layer(heat: np.ndarray, opacity: float = CAM_OPACITY, floor: float = CAM_FLOOR) -> QImage:
    """The core's heat layer (:func:`ponyclassifier.core.explain.heat_rgba`) as a QImage."""
    from ...core.explain import heat_rgba

    return workers.array_to_qimage(heat_rgba(heat, opacity, floor))


def _network_device(model) -> str:
    for p in model.network.parameters():
        return str(p.device)
    return "cpu"


# ====================================================================== the worker


class _InferenceWorker(QObject):
    """Lives on the live-prediction thread. One job at a time (the widget never sends a
    second before the first is answered); every result goes out through ``result_ready``."""

    result_ready = Signal(object)  # dict, see run()

    def __init__(self) -> None:
        super().__init__()
        self._model = None
        self._predictor = None
        self._cam_layer = None
        self._model_token = -1

    @Slot(object)
    def set_model(self, payload: tuple[int, Any]) -> None:
        model_token, model = payload
        self._model_token, self._model, self._predictor, self._cam_layer = model_token, model, None, None
        if model is not None:
            from ...core.predict import Predictor

            # Use the network where it already is: moving a model the Predict page shares
            # to another device from this thread would pull it out from under that page.
            self._predictor = Predictor(model, device=_network_device(model))

    @Slot(object)
    def run(self, job: dict) -> None:
        out = {"token": job["token"], "kind": job["kind"], "t_arrival": job["t_arrival"], "seq": job.get("seq"),
               "epoch": job.get("epoch"),
               "path": job.get("path"), "error": None, "probs": None, "heat": None, "image": None,
               "infer_ms": 0.0, "cam_ms": 0.0}
        try:
            self._run(job, out)
        except Exception as e:  # reported to the GUI, never lost on this thread
            from ...core.images import ImageError

            out["error"] = e.reason if isinstance(e, ImageError) else (str(e) or type(e).__name__)
        self.result_ready.emit(out)

    def _run(self, job: dict, out: dict) -> None:
        from PIL import Image

        from ...core.preprocess import load_input, to_uint8_tensor

        pil = None
        if job["kind"] == "file":
            from ...core.images import decode_image

            shown = decode_image(job["path"]).image
            shown.thumbnail((1600, 1600))  # the picture shown; the model gets its own input below
            out["image"] = workers.pil_to_qimage(shown)
        else:
            frame: QVideoFrame = job["frame"]
            img = frame.toImage()
            if img.isNull():
                raise RuntimeError("the camera sent a frame that could not be read")
            if job["mirror"]:
                img = img.flipped(Qt.Orientation.Horizontal)
            pil = Image.fromarray(workers.qimage_to_array(img, keep_gray=False), "RGB")
        if job["model_token"] != self._model_token or self._predictor is None:
            return  # no model (a still is shown anyway), or a model change is on its way
        model = self._model
        # A file is decoded for the model exactly as the Predict page does (draft decode), so
        # both give the same probabilities for the same picture.
        x = load_input(job["path"], model.image_size, model.channels) if pil is None else None
        t0 = time.perf_counter()
        if x is None:
            x = to_uint8_tensor(pil, model.image_size, model.channels)
        probs = self._predictor.probabilities(x[None])[0]
        out["probs"] = probs.numpy().astype(np.float32)
        out["infer_ms"] = (time.perf_counter() - t0) * 1000
        if job.get("cam"):
            from ...core import explain

            t1 = time.perf_counter()
            if self._cam_layer is None:
                self._cam_layer = explain.default_cam_layer(model)
            heat = explain.grad_cam(model, x, target=int(probs.argmax()), layer_name=self._cam_layer)
            out["heat"] = heat_layer(heat)
            out["cam_ms"] = (time.perf_counter() - t1) * 1000


def _stop_thread(thread: QThread, *args) -> None:
    """Quit and join the worker thread (also when the widget was deleted without shutdown())."""
    try:
        if thread.isRunning():
            thread.quit()
            thread.wait()
    except RuntimeError:  # already deleted by Qt
        pass


# ====================================================================== the widget


class _ClassBar(QWidget):
    """One row of the top classes: name and a probability bar."""

    def __init__(self) -> None:
        super().__init__()
        self.name = QLabel("")
        self.name.setMinimumWidth(60)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFixedWidth(110)
        self.bar.setFixedHeight(18)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.name, 1)
        lay.addWidget(self.bar)
        self._full = ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(40, self.width() - self.bar.width() - 8)
        self.name.setText(self.name.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width))

    def set(self, name: str | None, p: float = 0.0, best: bool = False, unsure: bool = False) -> None:
        self.setVisible(name is not None)
        self._full = name or ""
        if name is None:
            return
        self._elide()
        self.name.setToolTip(name)
        self.bar.setValue(int(round(p * 1000)))
        self.bar.setFormat(percent(p))
        colour = "#e0a030" if (best and unsure) else ("#2a9d8f" if best else "#8d99ae")
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }} "
                               "QProgressBar { text-align: center; }")


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
    _send_job = Signal(object)
    _send_model = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = None
        self._model_description = ""
        self._project = None
        self._project_busy: Callable[[], str | None] | None = None
        self._token = 0  # bumped when the model, the source or the picture changes: older results are stale
        self._model_token = 0  # bumped when the model changes; the worker answers only jobs for its model
        self._thread: QThread | None = None
        self._worker: _InferenceWorker | None = None
        self._in_flight = False
        self._pending: dict | None = None
        self._latest: QVideoFrame | None = None
        self._dirty = False
        self._shown: QImage | None = None  # the picture on screen (mirrored as shown)
        self._heat: QImage | None = None
        self._next_cam_at = 0.0
        self._steady: np.ndarray | None = None
        self._last: LivePrediction | None = None
        self._running = False
        self._closed = False
        self._saving = False
        self._save_no = 0
        self._seq = 0
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

        # ---- source row and picture
        self.source_combo = QComboBox()
        self.source_combo.setMinimumWidth(220)
        self.source_combo.setToolTip("The camera to use, or a video file that stands in for one.")
        self.source_combo.activated.connect(self._on_source_combo_activated)
        self.mirror = QCheckBox("Mirror")
        self.mirror.setChecked(True)  # a selfie view feels natural; a file turns it off
        self.mirror.setToolTip("Flip the picture left–right, like a mirror. The model sees (and a saved "
                               "frame keeps) the picture as shown.")
        self.mirror.toggled.connect(self._on_mirror_toggled)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start or stop the camera and the live answers.")
        self.start_button.setMinimumWidth(90)
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.view = FrameView()
        self.view.setMinimumSize(400, 300)
        self.view.set_message("Press <b>Start</b> to see what the model thinks of the camera picture.")
        self.rates = QLabel("")
        self.rates.setObjectName("liveRates")
        self.rates.setStyleSheet("QLabel#liveRates { color: palette(placeholder-text); }")
        self.rates.setToolTip("Camera: frames per second from the source. Answers: predictions per second. "
                              "Delay: from a frame's arrival to its answer on screen. Frames that arrive "
                              "while the model is still busy are skipped, so the answer never falls behind.")
        top = QHBoxLayout()
        top.addWidget(QLabel("Camera"))
        top.addWidget(self.source_combo, 1)
        top.addWidget(self.mirror)
        top.addWidget(self.start_button)
        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.view, 1)
        left.addWidget(self.rates)

        # ---- the answer
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.answer = QLabel("")
        self.answer.setObjectName("liveAnswer")
        self.answer.setWordWrap(True)
        self.answer.setMinimumHeight(40)
        f = self.answer.font()
        f.setPixelSize(24)
        f.setBold(True)
        self.answer.setFont(f)
        self.answer_detail = QLabel("")
        self.answer_detail.setWordWrap(True)
        self.bars = [_ClassBar() for _ in range(TOP_K)]
        answer_box = QGroupBox("What the model sees")
        ab = QVBoxLayout(answer_box)
        ab.addWidget(self.answer)
        ab.addWidget(self.answer_detail)
        for b in self.bars:
            ab.addWidget(b)
            b.set(None)

        # ---- options
        self.cam_check = QCheckBox("Show where it looks (heat map)")
        self.cam_check.setToolTip("Colour the parts of the picture that pushed the model towards its answer "
                                  "(Grad-CAM). Updated a few times a second so the answers stay quick.")
        self.cam_check.toggled.connect(self._on_cam_check_toggled)
        self.steady_check = QCheckBox("Steady answers")
        self.steady_check.setChecked(True)
        self.steady_check.setToolTip("Average the last few answers so the label does not flicker between "
                                     "classes from one frame to the next.")
        self.steady_check.toggled.connect(lambda: setattr(self, "_steady", None))
        self.threshold_spin = QSpinBox()
        self.threshold_spin.setRange(0, 100)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setToolTip("When the best answer is less sure than this, show “not sure” instead. "
                                       "Starts at the model's own setting.")
        self.threshold_spin.valueChanged.connect(self._on_threshold_spin_value_changed)
        opts = QGroupBox("Options")
        of = QFormLayout(opts)
        of.addRow(self.cam_check)
        of.addRow(self.steady_check)
        of.addRow("Not sure below", self.threshold_spin)

        # ---- the feedback loop
        self.save_class = QComboBox()
        self.save_class.setToolTip("Which class folder the picture goes into: the model's answer, or the "
                                   "right class if the model got it wrong.")
        self.save_class.currentIndexChanged.connect(lambda: self._update_save_button())
        self.save_button = QPushButton("Save picture")
        self.save_button.clicked.connect(self.save_frame)
        self.save_note = QLabel("")
        self.save_note.setWordWrap(True)
        save_box = QGroupBox("Teach it")
        sb = QVBoxLayout(save_box)
        intro = QLabel("Add the picture on screen to the project, so the next training learns from it.")
        intro.setWordWrap(True)
        sb.addWidget(intro)
        row = QGridLayout()
        row.addWidget(QLabel("As"), 0, 0)
        row.addWidget(self.save_class, 0, 1)
        row.setColumnStretch(1, 1)
        sb.addLayout(row)
        sb.addWidget(self.save_button)
        sb.addWidget(self.save_note)

        self.play_button = QPushButton("Play mode")
        self.play_button.setToolTip("A big, simple full-screen view for children: the picture, the answer "
                                    "in large letters and large buttons. Esc leaves.")
        self.play_button.setMinimumHeight(36)
        self.play_button.clicked.connect(lambda: self.open_play_mode())

        right = QVBoxLayout()
        right.addWidget(self.model_label)
        right.addWidget(answer_box)
        right.addWidget(opts)
        right.addWidget(save_box)
        right.addWidget(self.play_button)
        right.addStretch(1)
        right_w = QWidget()
        right_w.setLayout(right)
        right.setContentsMargins(0, 0, 0, 0)
        # In a short window the side panel scrolls: squeezed, its wrapped labels and bars
        # were painted over each other.
        side = QScrollArea()
        side.setWidget(right_w)
        side.setWidgetResizable(True)
        side.setFrameShape(QFrame.Shape.NoFrame)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setFixedWidth(310 + side.verticalScrollBar().sizeHint().width())

        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(side)

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
        return self._thread is not None and self._thread.isRunning()

    @property
    def play_window(self) -> PlayWindow | None:
        return self._play

    @property
    def stats(self) -> LiveStats:
        s = self._st
        lat = sorted(s["lat_recent"])
        span_frames = s["last_frame"] - s["first_frame"] if s["frames_seen"] > 1 else 0.0
        span_pred = s["last_result"] - s["first_submit"] if s["predicted"] else 0.0
        return LiveStats(
            frames_seen=s["frames_seen"], frames_predicted=s["predicted"], frames_dropped=s["dropped"],
            mean_latency_ms=s["lat_sum"] / s["predicted"] if s["predicted"] else 0.0,
            p95_latency_ms=float(np.percentile(lat, 95)) if lat else 0.0,
            max_latency_ms=lat[-1] if lat else 0.0,
            predictions_per_second=s["predicted"] / span_pred if span_pred > 0 else 0.0,
            camera_fps=(s["frames_seen"] - 1) / span_frames if span_frames > 0 else 0.0,
            mean_inference_ms=s["inf_sum"] / s["predicted"] if s["predicted"] else 0.0,
            heatmaps=s["heatmaps"], seconds=time.perf_counter() - s["t0"])

    def reset_stats(self) -> None:
        # Jobs sent before a reset may still answer: they carry the old epoch and do not count.
        self._stats_epoch = getattr(self, "_stats_epoch", 0) + 1
        self._st = {"t0": time.perf_counter(), "frames_seen": 0, "predicted": 0, "dropped": 0, "lat_sum": 0.0,
                    "lat_recent": deque(maxlen=2000), "inf_sum": 0.0, "heatmaps": 0, "first_frame": 0.0,
                    "last_frame": 0.0, "first_submit": 0.0, "last_result": 0.0}
        self._frame_times: deque[float] = deque()
        self._result_times: deque[float] = deque()
        self._recent_latency: deque[tuple[float, float]] = deque()

    def set_model(self, trained_model, description: str = "") -> None:
        """Use ``trained_model`` (a loaded core TrainedModel) from now on; None: no model."""
        self._model = trained_model
        self._model_description = description
        self._token += 1
        self._model_token += 1
        self._drop_pending()
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
        if self._worker is not None:
            self._send_model.emit((self._model_token, trained_model))
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
        return self._in_flight or self._pending is not None

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
        self._token += 1
        self._drop_pending()
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
        self._token += 1  # a frame still in flight must not overwrite this picture's answer
        self._steady = None
        self._clear_heat()
        self._submit({"kind": "file", "path": path, "token": self._token, "t_arrival": time.perf_counter(),
                      "cam": self.cam_check.isChecked() and self._model is not None, "mirror": False})

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
        slug = re.sub(r"[^\w-]+", "-", target.lower()).strip("-") or "frame"
        name = f"{slug}-live-{time.strftime('%Y%m%d-%H%M%S')}-{self._save_no:03d}.png"
        project, tmp_dir = self._project, self._tmp
        rgb = image.convertToFormat(QImage.Format.Format_RGB888)

        def fn(state):
            folder = tempfile.mkdtemp(dir=tmp_dir)
            tmp = os.path.join(folder, name)
            try:
                if not rgb.save(tmp, "PNG"):
                    raise OSError(f"could not write {tmp} (is the disk full?)")
                op = project.import_files([tmp], target)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            r = op.results[0] if op.results else None
            if r is None or not r.target:
                raise OSError(r.error if r is not None else "nothing was imported")
            return r.target

        self._saving = True
        self._update_save_button()
        self.save_note.setText(f"Saving into {html.escape(target)}…")
        workers.run_job(fn, on_finished=lambda path: self._on_save_finished(target, path),
                        on_failed=lambda msg, tb: self._on_save_failed(target, msg))
        return True

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
        self._pending = None
        workers.end_short_gil_switch(self)
        if self._play is not None:
            self._play.close()
            self._play = None
        if self._thread is not None:
            _stop_thread(self._thread)
            self._thread = None
            self._worker = None
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
        self._token += 1  # results for the old source are stale
        self._drop_pending()
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
        s = self._st
        if s["frames_seen"] == 0:
            s["first_frame"] = now
        s["frames_seen"] += 1
        s["last_frame"] = now
        self._frame_times.append(now)
        if self._model is None:
            return
        self._seq += 1
        self._submit({"kind": "frame", "frame": self._latest, "mirror": self.mirror.isChecked(),
                      "token": self._token, "t_arrival": now, "seq": self._seq, "epoch": self._stats_epoch})

    def _submit(self, job: dict) -> None:
        """Send ``job`` to the worker now if it is idle; else keep it as THE waiting job (a
        waiting frame it replaces is dropped)."""
        if self._closed:
            return
        if self._in_flight:
            if self._pending is not None and self._pending["kind"] == "file" and job["kind"] == "frame":
                return  # a picture the user opened goes first
            self._count_dropped(self._pending)
            self._pending = job
            return
        if job["kind"] == "frame" and self._model is None:
            return
        self._ensure_worker()
        now = time.perf_counter()
        cam = self.cam_check.isChecked() and now >= self._next_cam_at
        job["cam"] = job.get("cam", False) or cam
        if self._st["first_submit"] == 0.0:
            self._st["first_submit"] = now
        job["model_token"] = self._model_token
        self._in_flight = True
        self._send_job.emit(job)

    def _drop_pending(self) -> None:
        self._count_dropped(self._pending)
        self._pending = None

    def _count_dropped(self, job: dict | None) -> None:
        if job is not None and job["kind"] == "frame" and job.get("epoch") == self._stats_epoch:
            self._st["dropped"] += 1

    def _ensure_worker(self) -> None:
        if self._thread is not None:
            return
        thread = QThread()  # no parent: shutdown() (or the widget's destruction) joins it
        thread.setObjectName("ponyclassifier-live-predict")
        worker = _InferenceWorker()
        worker.moveToThread(thread)
        self._send_job.connect(worker.run, Qt.ConnectionType.QueuedConnection)
        self._send_model.connect(worker.set_model, Qt.ConnectionType.QueuedConnection)
        worker.result_ready.connect(self._on_worker_result_ready, Qt.ConnectionType.QueuedConnection)
        self.destroyed.connect(functools.partial(_stop_thread, thread))
        self._thread, self._worker = thread, worker
        thread.start()
        self._send_model.emit((self._model_token, self._model))

    @Slot(object)
    def _on_worker_result_ready(self, out: dict) -> None:
        if self._closed:
            return
        self._in_flight = False
        now = time.perf_counter()
        if out["token"] == self._token:
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
                self._apply_result(out, now)
        nxt, self._pending = self._pending, None
        if nxt is not None:
            self._submit(nxt)

    def _apply_result(self, out: dict, now: float) -> None:
        if out["kind"] == "file" and out["image"] is not None:
            self._shown = out["image"]
            self._dirty = False
            self.view.set_image(self._shown)
            self.view.set_layer(None)
            if self._play is not None:
                self._play.show_image(self._shown)
        if out["probs"] is None:
            return  # no model: the picture alone
        s = self._st
        latency = (now - out["t_arrival"]) * 1000
        if out["kind"] == "frame" and out["epoch"] == self._stats_epoch:
            s["predicted"] += 1
            s["lat_sum"] += latency
            s["lat_recent"].append(latency)
            s["inf_sum"] += out["infer_ms"]
            s["last_result"] = now
            self._result_times.append(now)
            self._recent_latency.append((now, latency))
        if out["heat"] is not None:
            s["heatmaps"] += out["epoch"] == self._stats_epoch
            # the next heat map no sooner than CAM_MIN_INTERVAL, and Grad-CAM never takes
            # much more than CAM_TIME_SHARE of the worker's time
            wait = max(CAM_MIN_INTERVAL, out["cam_ms"] / 1000 * (1 / CAM_TIME_SHARE - 1))
            self._next_cam_at = now + wait
            if self.cam_check.isChecked():
                self._heat = out["heat"]
                self.view.set_layer(self._heat)
                if self._play is not None:
                    self._play.show_heat(self._heat)
        probs = out["probs"]
        if self.steady_check.isChecked() and out["kind"] == "frame":
            if self._steady is None or self._steady.shape != probs.shape:
                self._steady = probs
            else:
                self._steady = STEADY_WEIGHT * probs + (1 - STEADY_WEIGHT) * self._steady
            probs = self._steady
        else:
            self._steady = probs if out["kind"] == "frame" else None
        self._publish(probs)

    def _publish(self, probs: np.ndarray) -> None:
        classes = self._model.classes
        k = min(TOP_K, len(classes))
        idx = np.argsort(-probs)[:k]
        top = [(classes[i], float(probs[i])) for i in idx]
        label, conf = top[0]
        pred = LivePrediction(label, conf, is_unsure(conf, self.threshold), top)
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
        now = time.perf_counter()
        for dq in (self._frame_times, self._result_times, self._recent_latency):
            while dq and now - (dq[0][0] if isinstance(dq[0], tuple) else dq[0]) > RATE_WINDOW:
                dq.popleft()
        if not self._running:
            st = self.stats
            if st.frames_seen:
                self.rates.setText(f"Stopped · {st.frames_predicted} answers for {st.frames_seen} frames, "
                                   f"on average {st.mean_latency_ms:.0f} ms from picture to answer")
            else:
                self.rates.setText("")
            return
        span = RATE_WINDOW if now - self._st["t0"] > RATE_WINDOW else max(now - self._st["t0"], 1e-3)
        fps = len(self._frame_times) / span
        parts = [f"Camera {fps:.0f} frames/s"]
        if self._model is not None:
            aps = len(self._result_times) / span
            parts.append(f"{aps:.1f} answers/s")
            if self._recent_latency:
                lat = sum(v for _, v in self._recent_latency) / len(self._recent_latency)
                parts.append(f"{lat:.0f} ms from picture to answer")
            if self._st["dropped"]:
                parts.append(f"{self._st['dropped']} frames skipped while the model was busy")
        self.rates.setText(" · ".join(parts))

    # ----------------------------------------------------------------- answer
    def _set_answer_none(self) -> None:
        self.answer.setText("No model")
        self.answer.setStyleSheet("color: palette(placeholder-text);")
        self.answer_detail.setText("Choose a model to see live answers. The camera picture still shows.")
        for b in self.bars:
            b.set(None)

    def _set_answer_waiting(self) -> None:
        self.answer.setText("Waiting for a picture…")
        self.answer.setStyleSheet("color: palette(placeholder-text);")
        self.answer_detail.setText("")
        for b in self.bars:
            b.set(None)

    def _show_answer(self, pred: LivePrediction) -> None:
        if pred.unsure:
            self.answer.setText("Not sure")
            self.answer.setStyleSheet("color: #c77800;")
            self.answer_detail.setText(f"Best guess: <b>{html.escape(pred.label)}</b> at {percent(pred.confidence)}, "
                                       f"under the {percent(self.threshold)} needed to be sure.")
        else:
            self.answer.setText(pred.label)
            self.answer.setStyleSheet("")
            self.answer_detail.setText(f"{percent(pred.confidence)} sure")
        for i, b in enumerate(self.bars):
            if i < len(pred.top):
                b.set(pred.top[i][0], pred.top[i][1], best=i == 0, unsure=pred.unsure)
            else:
                b.set(None)
        self._update_save_button()

    def _on_threshold_spin_value_changed(self) -> None:
        if self._play is not None:
            self._play.set_threshold(self.threshold)
        if self._last is not None:
            top = self._last.top
            self._last = LivePrediction(top[0][0], top[0][1], top[0][1] < self.threshold, top)
            self._show_answer(self._last)
            self._feed_play_answer()

    def _on_cam_check_toggled(self, on: bool) -> None:
        self._next_cam_at = 0.0
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

    def _on_save_finished(self, cls: str, path: str) -> None:
        self._saving = False
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
        self._saving = False
        if self._closed:
            return
        self._update_save_button()
        self._refuse(f"Could not add the picture to {cls}: {message}")
