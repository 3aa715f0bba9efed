"""The Predict place: what does the model say about these pictures?

Pictures arrive by drag and drop (files, folders, or image data), the Add pictures… /
Add folder… buttons, or Ctrl+V (a pasted picture has no file: it is called "pasted
image"). Each request replaces the results shown. Every picture gets a row in the results
table (sortable, exported as CSV) and the first :data:`MAX_CARDS` get a card: the picture,
the top-k guesses with probability bars, "Not sure" when the best guess is under the
threshold, and a Grad-CAM toggle ("where did it look?"). A file that is not a usable image
gets a card and a row that say which file and why; the rest goes on.

Everything heavy runs on the worker pool, one :class:`workers.Lane` per purpose (newest
wins: a replaced or cancelled job never calls back): loading the model, the batch
prediction (the core :class:`~ponyclassifier.core.predict.Predictor`, so the preprocessing
is the training's), the pictures of cards made later, and Grad-CAM. The worker bodies are
the Qt-free functions of :mod:`.jobs`; each picture is decoded once for its prediction,
its card and its Grad-CAM. A result from an older request, or computed with a model that
is no longer loaded, is dropped. The network is used by one job at a time (the loaded
model's lock): Grad-CAM puts hooks on its layers, which a concurrent forward pass would
trip over.

The page is a view of the app's sessions (:mod:`ponyclassifier.core.session`): a project
opened forgets every result shown; ``models.wanted("Predict", path)`` says which model to
show (loaded when the page is shown) and the page hands it back with
``models.set_loaded("Predict", ...)``.

The threshold slider and the top-k spin box only re-label what is shown: each prediction
keeps the probabilities of its best :data:`MAX_TOP_K` classes, so the model is not run
again.

With no trained model the page uses the pretrained ImageNet network (1000 everyday things)
and says so. The "Live camera" tab (``live_area``) stays hidden until the main window puts
a live widget (:class:`.live_host.LiveHost`) in it with :meth:`PredictPage.set_live_widget`.
"""

from __future__ import annotations

import html
import os
import threading
import time
from typing import Sequence

from PIL import Image
from PySide6.QtCore import QModelIndex, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from ...core.explain import CAM_OPACITY
from ...core.images import MAX_PIXELS
from ...core.session import ModelSession, ProjectSession
from ...core.trained import is_unsure
from .. import workers
from ..widgets.banner import Banner
from ..widgets.format import IMAGE_FILTER, percent_1dp
from ..widgets.mime import local_files_from_mime
from . import jobs
from .cards import ResultCard
from .jobs import CHUNK, MAX_TOP_K, PASTED_NAME, LoadedModel
from .jobs import Pasted as _Pasted
from .page_ui import banner_html, build
from .results import AMBER, CSV_COLUMNS, RED, PredictionResult, ResultsTableModel, csv_bytes, qimage_to_pil

__all__ = ["PredictPage", "PredictionResult", "LoadedModel", "ResultCard", "ResultsTableModel", "IMAGENET_TEXT",
           "PASTED_NAME", "MAX_CARDS", "MAX_TOP_K", "CSV_COLUMNS", "CAM_OPACITY", "percent_1dp", "qimage_to_pil"]

MAX_CARDS = 48  # cards are real widgets; the table holds every result
DROPPED_NAME = "dropped image"
IMAGENET_TEXT = "No trained model: using the ImageNet network, which knows 1000 everyday things"
PLACE = "Predict"  # this page's name in the ModelSession
_LAST_DIR_KEY = "predict/last_dir"


def _predict_fn(loaded: LoadedModel, items: list, max_cards: int, max_chunk: int, stop: threading.Event):
    """The batch on a worker: :func:`jobs.predict_batches`, with the card pictures made into
    QImages here. A stop (``stop`` set) ends it like a finish, with what was done so far."""

    def run(state: workers.JobState) -> tuple[str, int]:
        total = 0
        for kind, value in jobs.predict_batches(loaded, items, max_cards, max_chunk,
                                                lambda: state.cancelled or stop.is_set()):
            if kind == "rows":
                for row in value:
                    row.picture = workers.pil_to_qimage(row.picture) if row.picture is not None else None
                state.partial(("rows", value))
            elif kind == "total":
                total = value
                state.partial(("total", value))
            else:
                state.progress(*value)
        state.check()
        return ("stopped" if stop.is_set() else "finished"), total

    return run


def _card_fn(source: str, model):
    def run(state: workers.JobState):
        picture, x = jobs.read_card(source, model)
        return workers.pil_to_qimage(picture), x

    return run


def _cam_fn(loaded: LoadedModel, r: PredictionResult):
    """Grad-CAM over the card picture, on the model input kept from the one decode (decoded
    here only when the card has neither yet)."""
    source, pasted, x, picture, label = r.source, r.pasted, r.input, r.picture, r.label
    m = loaded.model

    def run(state: workers.JobState) -> QImage:
        nonlocal x, picture
        if x is None or tuple(x.shape) != (m.channels, m.image_size, m.image_size):
            x = None
        if pasted is not None and (x is None or picture is None):
            from ...core.preprocess import to_uint8_tensor

            x = to_uint8_tensor(pasted, m.image_size, m.channels) if x is None else x
            picture = workers.pil_to_qimage(jobs.card_picture(pasted)) if picture is None else picture
        elif x is None or picture is None:
            pil, x2 = jobs.read_card(source, m)
            x = x2 if x is None else x
            picture = workers.pil_to_qimage(pil) if picture is None else picture
        rgb = jobs.cam_overlay(loaded, x, workers.qimage_to_array(picture, keep_gray=False), label, state.check)
        return workers.array_to_qimage(rgb)

    return run


class PredictPage(QWidget):
    """The Predict place. See the module docstring. The main window gives it the app's
    sessions (``PredictPage(session, models)``; None: its own) and uses ``predict_paths(paths)``,
    ``set_live_widget(widget)``, ``shutdown()`` and the signals below. ``set_project``,
    ``set_model_path`` and ``clear`` also work without the sessions.
    """

    model_loaded = Signal(str)  # a description of the model now in use
    model_failed = Signal(str)  # why a model file could not be used (the previous one stays)
    status_message = Signal(str)
    predictions_finished = Signal(int)  # results shown after a request ended (finished or stopped)
    grad_cam_ready = Signal(int)  # result index

    def __init__(self, session: ProjectSession | None = None, models: ModelSession | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession()
        self.models = models if models is not None else ModelSession()
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so the page itself can hold focus for Ctrl+V
        self.loaded: LoadedModel | None = None
        self.results: list[PredictionResult] = []
        self.cards: dict[int, ResultCard] = {}
        self.chunk_size = CHUNK
        self.max_cards = MAX_CARDS
        self.live_widget: QWidget | None = None
        self._threshold = 0.5
        self._inputs: list[str | _Pasted] = []
        self._closed = False
        # models
        self._load_lane = workers.Lane()
        self._load_job: workers.Job | None = None
        self._loading_path: str | None = None
        self._model_asked = False  # a model was asked for (else ImageNet is loaded on first need)
        self._wanted: tuple[str | None] | None = None  # (path,) the session wants, loaded when shown
        self._model_error: str | None = None
        # predictions
        self._request_lane = workers.Lane()
        self._predict_job: workers.Job | None = None
        self._stop: threading.Event | None = None
        self._waiting_for_model = False
        self._total = 0
        self._done = 0
        self._t0 = 0.0
        self._outcome = ""  # how the last request ended
        self.last_message = ""
        self._picture_lanes: dict[int, workers.Lane] = {}  # pictures of cards made later
        # Grad-CAM, one at a time
        self._cam_queue: list[int] = []
        self._cam_lane = workers.Lane()
        self._cam_job: workers.Job | None = None
        self._cam_running: int | None = None
        self._current_card: ResultCard | None = None
        build(self)
        self._render_banner()
        self._update_summary()
        self.session.opened.connect(self._on_session_opened)
        self.models.wanted.connect(self._on_models_wanted)

    # ================================================================ public API
    @property
    def project(self):
        """The open core ``Project`` (the session's), if any."""
        return self.session.project

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def top_k(self) -> int:
        return self.topk_spin.value()

    @property
    def busy(self) -> bool:
        return self._predict_job is not None or self._waiting_for_model

    @property
    def model_loading(self) -> bool:
        return self._load_job is not None

    def is_unsure(self, result: PredictionResult) -> bool:
        return result.error is None and is_unsure(result.confidence, self._threshold)

    def set_threshold(self, value: float) -> None:
        """The "not sure" threshold (0-1); re-labels what is shown."""
        self.threshold_slider.setValue(round(min(max(value, 0.0), 1.0) * 100))

    def set_model_path(self, path: str | os.PathLike | None) -> None:
        """Load a model file on a worker now (None: the ImageNet network). The current model
        stays in use until the new one is ready; a file that cannot be used leaves it in use."""
        self._model_asked = True
        self._wanted = None
        self._start_load(None if path is None else os.fspath(path), keep_error=False)

    def predict_paths(self, paths: Sequence[str | os.PathLike]) -> None:
        """Classify files and folders (what dropping and Add pictures… / Add folder… do)."""
        items = [os.fspath(p) for p in paths if os.fspath(p)]
        if items:
            self._start_request(items)

    def predict_image(self, image: QImage | Image.Image, name: str = PASTED_NAME) -> bool:
        """Classify a picture that has no file (clipboard, image data dropped from a browser)."""
        if isinstance(image, QImage):
            if image.isNull():
                return False
            if image.width() * image.height() > MAX_PIXELS:
                self._say(f"The {name} is too large ({image.width()} x {image.height()} pixels).")
                return False
            image = qimage_to_pil(image)
        elif image.width * image.height > MAX_PIXELS:
            self._say(f"The {name} is too large ({image.width} x {image.height} pixels).")
            return False
        self._start_request([_Pasted(image.convert("RGB"), name)])
        return True

    def paste(self) -> bool:
        """Classify what is on the clipboard: a picture, or copied picture files."""
        return self._take_mime(QGuiApplication.clipboard().mimeData(), PASTED_NAME, from_clipboard=True)

    def stop(self) -> None:
        """Stop the batch after the pictures in progress; the results so far stay."""
        if self._predict_job is not None:
            self._stop.set()
            self.stop_button.setEnabled(False)
            self.rate_label.setText("Stopping…")
        elif self._waiting_for_model:
            self._waiting_for_model = False
            self._inputs = []
            self._set_busy(False)

    def clear(self) -> None:
        """Forget every result (a project was opened: nothing of the last one stays)."""
        self._cancel_request()
        self._inputs = []
        self._clear_results()
        self._outcome = ""
        self._set_busy(False)
        self._update_summary()

    def set_live_widget(self, widget: QWidget) -> None:
        """Put the live camera view in the "Live camera" tab and show the tab (the live host
        follows the sessions itself)."""
        self.live_widget = widget
        self.live_area.layout().addWidget(widget)
        self.tabs.setTabVisible(self.live_tab_index, True)

    def show_card(self, index: int) -> ResultCard | None:
        """Show a result's card (made on demand for results past the first cards) and select it."""
        if not 0 <= index < len(self.results):
            return None
        card = self.cards.get(index) or self._make_card(self.results[index])
        if self._current_card is not None and self._current_card is not card:
            self._current_card.set_current(False)
        card.set_current(True)
        self._current_card = card
        self.tabs.setCurrentIndex(0)
        QTimer.singleShot(0, card, lambda: self.cards_scroll.ensureWidgetVisible(card, 20, 20))  # once laid out
        return card

    def export_csv(self, path: str | os.PathLike) -> bool:
        """Write the table, in its current sort order, to ``path`` atomically (a temp file
        renamed over it). Returns False and says why when it cannot."""
        from ...core.export import ExportError, write_atomic

        data = csv_bytes(self.table_model, self.table_rows_in_view())
        try:
            write_atomic(os.fspath(path), lambda fh: fh.write(data))
        except ExportError as e:
            self._say(f"Could not export the table: {e}")
            return False
        self._say(f"Wrote {len(self.results)} rows to {path}")
        return True

    def table_rows_in_view(self) -> list[PredictionResult]:
        """The results in the table's current (sorted) order."""
        return [self.table_model.rows[self.proxy.mapToSource(self.proxy.index(i, 0)).row()]
                for i in range(self.proxy.rowCount())]

    def shutdown(self) -> None:
        """Cancel everything running (the main window calls this when it closes)."""
        self._closed = True
        self._cancel_request()
        self._load_lane.cancel()
        self._load_job = None
        self.session.opened.disconnect(self._on_session_opened)
        self.models.wanted.disconnect(self._on_models_wanted)

    # ================================================================ the sessions
    def _on_session_opened(self, root) -> None:
        self.clear()

    def _on_models_wanted(self, place: str, path: str | None) -> None:
        if place != PLACE or self._closed:
            return
        self._model_asked = True
        self._wanted = (path,)
        if self.isVisible():
            self._load_wanted()

    def _load_wanted(self) -> None:
        if self._wanted is not None:
            (path,), self._wanted = self._wanted, None
            self._start_load(path, keep_error=False)

    # ================================================================ dialogs
    def _last_dir(self) -> str:
        remembered = str(QSettings().value(_LAST_DIR_KEY, "") or "")
        if remembered and os.path.isdir(remembered):
            return remembered
        project = self.project
        return str(project.root) if project is not None else ""

    def _remember_dir(self, path: str) -> None:
        QSettings().setValue(_LAST_DIR_KEY, path)

    def open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose pictures", self._last_dir(), IMAGE_FILTER)
        if paths:
            self._remember_dir(os.path.dirname(paths[0]))
            self.predict_paths(paths)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder of pictures", self._last_dir())
        if path:
            self._remember_dir(path)
            self.predict_paths([path])

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", self._last_dir(),
                                              "PonyClassifier models (*.pony);;All files (*)")
        if path:
            self.set_model_path(path)

    def export_csv_dialog(self) -> None:
        if not self.results:
            self._say("Nothing to export yet: classify some pictures first.")
            return
        start = os.path.join(self._last_dir(), "predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", start, "CSV (*.csv)")
        if path and not self.export_csv(path):
            QMessageBox.warning(self, "Export CSV", self.last_message)

    # ================================================================ drag and drop, clipboard
    @staticmethod
    def _usable(mime) -> bool:
        return mime is not None and (bool(local_files_from_mime(mime)) or mime.hasImage())

    def _take_mime(self, mime, name: str, from_clipboard: bool = False) -> bool:
        if mime is not None:
            files = local_files_from_mime(mime)
            if files:
                self.predict_paths(files)
                return True
            if mime.hasImage():
                image = mime.imageData()
                if isinstance(image, QImage) and not image.isNull():
                    return self.predict_image(image, name)
            if from_clipboard and mime.hasText():
                text = mime.text().strip()
                if text and "\n" not in text and os.path.exists(text):
                    self.predict_paths([text])
                    return True
        if from_clipboard:
            self._say("The clipboard has no picture. Copy a picture (or a picture file) first, then paste.")
        return False

    def _set_drop_highlight(self, on: bool) -> None:
        for w in (self.drop_hint, self.cards_host):
            w.setProperty("active", on)
            w.style().unpolish(w)
            w.style().polish(w)

    def _accept_drag(self, event) -> bool:
        """Accept a drag (as a copy) when it brings pictures, files or folders."""
        if self._usable(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            return True
        event.ignore()
        return False

    def dragEnterEvent(self, event) -> None:
        if self._accept_drag(event):
            self._set_drop_highlight(True)

    def dragMoveEvent(self, event) -> None:
        self._accept_drag(event)

    def dragLeaveEvent(self, event) -> None:
        self._set_drop_highlight(False)
        event.accept()

    def dropEvent(self, event) -> None:
        self._set_drop_highlight(False)
        if not self._usable(event.mimeData()):
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self._take_mime(event.mimeData(), DROPPED_NAME)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._wanted is not None:
            self._load_wanted()  # the model the session wants, loaded now that it is shown
        elif not self._model_asked and self.loaded is None and self._load_job is None:
            self._start_load(None, keep_error=False)  # ready before the first picture arrives
        QTimer.singleShot(0, self, self._take_focus)

    def _take_focus(self) -> None:
        """Ctrl+V works as soon as the page is shown, not only after a click into it."""
        focused = QApplication.focusWidget()
        if self.isVisible() and (focused is None or not self.isAncestorOf(focused)):
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    # ================================================================ models
    def _start_load(self, path: str | None, keep_error: bool) -> None:
        if self._closed:
            return
        if not keep_error:
            self._model_error = None
        self._loading_path = path
        if self._predict_job is not None:  # its results would come from the model being replaced
            self._cancel_request()
            self._waiting_for_model = bool(self._inputs)
        self._load_job = self._load_lane.submit(  # a load still running is cancelled: it never calls back
            lambda state: jobs.load_model(path, state.check),
            on_finished=self._on_load_finished,
            on_failed=lambda message, tb: self._on_load_failed(path, message))
        self._render_banner()
        if self._waiting_for_model:
            self._show_waiting()
        self._say(f"Loading model… ({'ImageNet network' if path is None else os.path.basename(path)})")

    def _on_load_finished(self, loaded: LoadedModel) -> None:
        if self._closed:
            return
        self._load_job = None
        self.loaded = loaded
        n = len(loaded.model.classes)
        self.topk_spin.setMaximum(max(1, min(MAX_TOP_K, n)))
        self.set_threshold(float(loaded.model.unsure_threshold))
        self._render_banner()
        # Before the signal: a slot that asks for new pictures then supersedes this re-run,
        # rather than being re-run itself.
        if self._inputs:  # what is shown was (or was about to be) answered by the previous model
            self._start_request(list(self._inputs))
        else:
            self._set_busy(False)
        desc = loaded.describe()
        self._say(f"Model ready: {desc}")
        self.models.set_loaded(PLACE, loaded.model, desc, loaded.path)  # the live view takes its copy
        self.model_loaded.emit(desc)

    def _on_load_failed(self, path: str | None, message: str) -> None:
        if self._closed:
            return
        self._load_job = None
        self._model_error = message
        self._render_banner()
        self.model_failed.emit(message)
        self._say(f"Could not open the model: {message}")
        if self.loaded is None and path is not None:
            self._start_load(None, keep_error=True)  # the page stays usable with the ImageNet network
        elif self._waiting_for_model and self.loaded is not None:
            self._start_request(list(self._inputs))  # answered by the model still in use
        else:
            self._waiting_for_model = False
            self._set_busy(False)

    def _render_banner(self) -> None:
        loaded, loading = self.loaded, self._load_job is not None
        text, kind = banner_html(loaded, loading, self._loading_path, self._model_error, IMAGENET_TEXT)
        self.model_label.setText(text)
        self.banner.setStyleSheet(f"QFrame#modelBanner {{ {Banner.STYLES[kind]} border-radius: 6px; }}")
        self.imagenet_button.setEnabled(not (loaded is not None and loaded.imagenet and not loading))

    # ================================================================ requests
    def _start_request(self, items: list[str | _Pasted]) -> None:
        if self._closed:
            return
        self._cancel_request()
        self._clear_results()
        self._inputs = list(items)
        self._outcome = ""
        if self.loaded is None or self._load_job is not None:
            self._waiting_for_model = True
            if self._load_job is None:
                self._start_load(None, keep_error=True)
            self._show_waiting()
            return
        self._waiting_for_model = False
        self._total = self._done = 0
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._predict_job = self._request_lane.submit(
            _predict_fn(self.loaded, self._inputs, self.max_cards, self.chunk_size, self._stop),
            on_partial=self._on_predict_partial, on_progress=self._on_predict_progress,
            on_finished=self._on_predict_finished, on_failed=self._on_predict_failed)
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.rate_label.setText("Looking for pictures…")

    def _show_waiting(self) -> None:
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.rate_label.setText("Waiting for the model…")

    def _cancel_request(self) -> None:
        self._request_lane.cancel()  # late signals of the old job are dropped
        self._predict_job = None
        self._waiting_for_model = False
        self._cancel_cams()

    def _clear_results(self) -> None:
        for lane in self._picture_lanes.values():
            lane.cancel()
        self._picture_lanes = {}
        for card in self.cards.values():
            self.flow.removeWidget(card)
            card.deleteLater()
        self.cards = {}
        self._current_card = None
        self.results = []
        self.table_model.clear()
        self.cards_note.hide()
        self.pictures_stack.setCurrentIndex(0)
        self._update_tab_titles()

    def _on_predict_partial(self, payload) -> None:
        kind, value = payload
        if kind == "total":
            self._total = value
            self.progress.setRange(0, max(1, value))
            self.progress.setValue(0)
            self.progress.setFormat(f"%v of {value}")
            self._update_rate()
            return
        new: list[PredictionResult] = []
        for row in value:
            r = PredictionResult(len(self.results), row.source, row.prediction, row.picture, row.pasted,
                                 input=row.input)
            self.results.append(r)
            new.append(r)
        self.table_model.append(new)
        for r in new:
            if len(self.cards) < self.max_cards:
                self._make_card(r)
        if self.results:
            self.pictures_stack.setCurrentIndex(1)
        self._update_cards_note()
        self._update_tab_titles()
        self._update_summary()

    def _on_predict_progress(self, done: int, total: int) -> None:
        self._done = done
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self._update_rate()

    def _update_rate(self) -> None:
        elapsed = time.perf_counter() - self._t0
        if self._done and elapsed > 0:
            self.rate_label.setText(f"{self._done / elapsed:.1f} pictures/s")
        else:
            self.rate_label.setText("Starting…")

    def _end_request(self, outcome: str) -> None:
        self._predict_job = None
        self._outcome = outcome
        self._set_busy(False)
        self._update_summary()
        self._say(outcome)
        self.predictions_finished.emit(len(self.results))

    def _on_predict_finished(self, outcome: tuple[str, int]) -> None:
        if outcome[0] == "stopped":
            self._end_request(f"Stopped after {len(self.results)} of {self._total} pictures.")
            return
        elapsed = time.perf_counter() - self._t0
        bad = sum(1 for r in self.results if r.error)
        n = len(self.results)
        text = f"Classified {n - bad} picture{'s' if n - bad != 1 else ''}"
        if bad:
            text += f"; {bad} file{'s' if bad != 1 else ''} could not be read"
        if n > 1 and elapsed > 0:
            text += f" ({n / elapsed:.1f} pictures/s)"
        if n == 0:
            text = "No pictures found there."
        self._end_request(text)

    def _on_predict_failed(self, message: str, tb: str) -> None:
        self._end_request(f"Prediction stopped by an error: {message}")

    # ================================================================ display
    def _set_busy(self, on: bool) -> None:
        for w in (self.progress, self.rate_label, self.stop_button):
            w.setVisible(on)
        self.stop_button.setEnabled(on)
        self.summary_label.setVisible(not on)

    def _say(self, text: str) -> None:
        self.last_message = text
        self.status_message.emit(text)

    def _set_threshold(self, value: float) -> None:
        self._threshold = value
        self.threshold_value.setText(f"{value * 100:.0f} %")

    def _on_threshold_slider_value_changed(self, value: int) -> None:
        self._set_threshold(value / 100)
        self._relabel()

    def _on_topk_spin_value_changed(self, value: int) -> None:
        self._relabel()

    def _relabel(self) -> None:
        for card in self.cards.values():
            card.refresh(self._threshold, self.top_k)
        self.table_model.relabel()
        self._update_summary()

    def _update_summary(self) -> None:
        n = len(self.results)
        if not n:
            self.summary_label.setText(html.escape(self._outcome))
            return
        bad = sum(1 for r in self.results if r.error)
        unsure = sum(1 for r in self.results if self.is_unsure(r))
        parts = [f"<b>{n}</b> picture{'s' if n != 1 else ''}", f"{n - bad - unsure} sure"]
        if unsure:
            parts.append(f"<span style='color:{AMBER}'>{unsure} not sure</span>")
        if bad:
            parts.append(f"<span style='color:{RED}'>{bad} could not be read</span>")
        if self._outcome.startswith("Stopped"):
            parts.append("stopped early")
        self.summary_label.setText(" · ".join(parts))

    def _update_tab_titles(self) -> None:
        n = len(self.results)
        self.tabs.setTabText(0, f"Pictures ({len(self.cards)})" if self.cards else "Pictures")
        self.tabs.setTabText(1, f"Table ({n})" if n else "Table")

    def _update_cards_note(self) -> None:
        n = len(self.results)
        if n > len(self.cards):
            self.cards_note.setText(f"Cards for the first {len(self.cards)} of {n} pictures. Every picture is "
                                    f"in the Table tab; double-click a row there to see its card.")
            self.cards_note.show()
        else:
            self.cards_note.hide()

    def _make_card(self, r: PredictionResult) -> ResultCard:
        card = ResultCard(r)
        card.refresh(self._threshold, self.top_k)
        card.cam_toggled.connect(self._on_card_cam_toggled)
        self.cards[r.index] = card
        self.flow.addWidget(card)
        if r.picture is None and r.error is None and r.pasted is None and self.loaded is not None:
            lane = self._picture_lanes[r.index] = workers.Lane()  # cancelled with the results
            lane.submit(_card_fn(r.source, self.loaded.model),
                        on_finished=lambda out, c=card: self._on_card_picture(c, *out),
                        on_failed=lambda msg, tb, c=card: c.image.setText("cannot show\nthis picture"))
        if self.cam_all_check.isChecked():
            card.set_cam(True)
        self.pictures_stack.setCurrentIndex(1)
        self._update_tab_titles()
        return card

    def _on_card_picture(self, card: ResultCard, picture: QImage, x) -> None:
        if card.result.input is None:
            card.result.input = x  # Grad-CAM starts from this decode too
        card.set_picture(picture)

    def _on_table_view_double_clicked(self, index: QModelIndex) -> None:
        row = self.proxy.mapToSource(index).row()
        if 0 <= row < len(self.table_model.rows):
            self.show_card(self.table_model.rows[row].index)

    # ================================================================ Grad-CAM
    def _on_cam_all_check_toggled(self, on: bool) -> None:
        for card in self.cards.values():
            card.set_cam(on)

    def _on_card_cam_toggled(self, index: int, on: bool) -> None:
        if not 0 <= index < len(self.results):
            return
        card, r = self.cards.get(index), self.results[index]
        if card is None:
            return
        if not on:
            if index in self._cam_queue:
                self._cam_queue.remove(index)
            card.show_cam_state("off")
            return
        if r.cam is not None:
            card.show_cam_state("on")
            return
        card.show_cam_state("working")
        if index not in self._cam_queue and index != self._cam_running:
            self._cam_queue.append(index)
        self._next_cam()

    def _next_cam(self) -> None:
        if self._closed or self._cam_job is not None or not self._cam_queue or self.loaded is None:
            return
        index = self._cam_queue.pop(0)
        self._cam_running = index
        self._cam_job = self._cam_lane.submit(  # cancelled with the results: never calls back then
            _cam_fn(self.loaded, self.results[index]),
            on_finished=lambda img: self._on_cam_finished(index, img),
            on_failed=lambda message, tb: self._on_cam_failed(index, message))

    def _on_cam_ended(self) -> bool:
        """A Grad-CAM job of what is shown ended; the next one may start."""
        if self._closed:
            return False
        self._cam_job = None
        self._cam_running = None
        QTimer.singleShot(0, self, self._next_cam)
        return True

    def _on_cam_finished(self, index: int, image: QImage) -> None:
        if not self._on_cam_ended():
            return
        self.results[index].cam = image
        card = self.cards.get(index)
        if card is not None and card.cam_on:
            card.show_cam_state("on")
        self.grad_cam_ready.emit(index)

    def _on_cam_failed(self, index: int, message: str) -> None:
        if not self._on_cam_ended():
            return
        card = self.cards.get(index)
        if card is not None:
            card.show_cam_state("failed", message)

    def _cancel_cams(self) -> None:
        """Only called when the results are replaced, so no card is left saying "working"."""
        self._cam_lane.cancel()
        self._cam_queue = []
        self._cam_job = None
        self._cam_running = None
