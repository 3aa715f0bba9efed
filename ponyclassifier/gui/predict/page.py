"""The Predict place: what does the model say about these pictures?

Pictures arrive by drag and drop (files, folders, or image data), the Add pictures… /
Add folder… buttons, or Ctrl+V (a pasted picture has no file: it is called "pasted
image"). Each request replaces the results shown. Every picture gets a row in the results
table (sortable, exported as CSV) and the first :data:`MAX_CARDS` get a card: the picture,
the top-k guesses with probability bars, "Not sure" when the best guess is under the
threshold, and a Grad-CAM toggle ("where did it look?"). A file that is not a usable image
gets a card and a row that say which file and why; the rest goes on.

Everything heavy runs on the worker pool through :func:`workers.run_job`: loading the
model, the batch prediction (the core :class:`~ponyclassifier.core.predict.Predictor`, so
the preprocessing is the training's), decoding the card pictures and Grad-CAM. Results are
applied on the GUI thread; a result from an older request, or computed with a model that
is no longer loaded, is dropped. The network is used by one job at a time (the loaded
model's lock): Grad-CAM puts hooks on its layers, which a concurrent forward pass would
trip over.

The threshold slider and the top-k spin box only re-label what is shown: each prediction
keeps the probabilities of its best :data:`MAX_TOP_K` classes, so the model is not run
again.

With no trained model the page uses the pretrained ImageNet network (1000 everyday things)
and says so. The "Live camera" tab (``live_area``) stays hidden until the main window puts
a live widget in it with :meth:`PredictPage.set_live_widget`.
"""

from __future__ import annotations

import csv
import html
import io
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from PIL import Image
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPoint,
    QRect,
    QSettings,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.images import BACKGROUND, MAX_PIXELS, ImageError, decode_image
from ...core.predict import Prediction, Predictor, expand_paths
from ...core.trained import is_unsure
from .. import workers
from ..widgets.banner import Banner
from ..widgets.format import IMAGE_FILTER, RECIPE_LABELS, percent, percent_1dp
from ..widgets.mime import local_files_from_mime

__all__ = ["PredictPage", "PredictionResult", "LoadedModel", "ResultCard", "ResultsTableModel", "IMAGENET_TEXT",
           "PASTED_NAME", "MAX_CARDS", "MAX_TOP_K", "CSV_COLUMNS", "CAM_OPACITY", "percent_1dp", "qimage_to_pil"]

MAX_TOP_K = 10  # probabilities kept per picture: the top-k spin box goes this high
DEFAULT_TOP_K = 3
MAX_CARDS = 48  # cards are real widgets; the table holds every result
# Pictures go through the network in chunks; results and progress reach the GUI per chunk and
# a stop takes effect between chunks. The first chunk is small so the first answers come at
# once; chunks double while one takes under CHUNK_SECONDS, up to the page's chunk_size.
CHUNK = 32
FIRST_CHUNK = 4
CHUNK_SECONDS = 0.3
PICTURE_SIDE = 512  # card pictures and Grad-CAM overlays are at most this many pixels wide/high
from ...core.explain import CAM_OPACITY  # noqa: E402  (the one rule, in core)
CARD_WIDTH = 258
PICTURE_BOX = QSize(236, 177)
PASTED_NAME = "pasted image"
DROPPED_NAME = "dropped image"
IMAGENET_TEXT = "No trained model: using the ImageNet network, which knows 1000 everyday things"
COLUMNS = ("File", "Label", "Confidence", "Not sure", "Top guesses", "Problem")
CSV_COLUMNS = COLUMNS  # the CSV has the table's columns, with the full path and a 0-1 confidence
RED, AMBER = "#b02a2a", "#a0662a"
_LAST_DIR_KEY = "predict/last_dir"


def _recipe_label(recipe: str) -> str:

    return RECIPE_LABELS.get(recipe, recipe)


def qimage_to_pil(image: QImage) -> Image.Image:
    """A QImage (any format, alpha included) as an RGB PIL image; transparency is flattened onto
    the decoder's background, as for files."""
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = img.width(), img.height()
    rgba = Image.frombuffer("RGBA", (w, h), bytes(img.constBits()), "raw", "RGBA", img.bytesPerLine(), 1)
    background = Image.new("RGBA", (w, h), (*BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _picture(image: Image.Image) -> QImage:
    im = image.copy()
    im.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    return workers.pil_to_qimage(im)


def _card_image(source: str) -> QImage:
    """A file's card picture (at most PICTURE_SIDE a side, from a draft decode). Raises ImageError."""
    return _picture(decode_image(source, draft_size=(PICTURE_SIDE, PICTURE_SIDE)).image)


# =============================================================== what the workers make


@dataclass(eq=False)
class LoadedModel:
    """A model ready to predict, with the lock that keeps its network to one job at a time."""

    model: Any  # core TrainedModel
    predictor: Predictor
    path: str | None  # None: the ImageNet network
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def imagenet(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        return "ImageNet network" if self.path is None else os.path.basename(self.path)

    def describe(self) -> str:
        """One line for the main window: name, classes, recipe."""
        m = self.model
        if self.imagenet:
            return "ImageNet network (EfficientNet-Lite0), 1000 everyday things"
        shown = ", ".join(m.classes[:6]) + (f" and {len(m.classes) - 6} more" if len(m.classes) > 6 else "")
        return f"{self.name}: {len(m.classes)} classes ({shown}), {_recipe_label(m.recipe)}"


@dataclass(frozen=True)
class _Pasted:
    """A picture with no file (clipboard, image data dropped from a web browser)."""

    image: Image.Image
    name: str = PASTED_NAME


@dataclass(eq=False)
class PredictionResult:
    """One picture's result as the page shows it. ``unsure`` is not stored: it depends on
    the threshold slider (:meth:`PredictPage.is_unsure`)."""

    index: int  # position in the request
    source: str  # the file's path, or "pasted image"
    prediction: Prediction  # top holds up to MAX_TOP_K classes
    picture: QImage | None = None  # the card's picture (<= PICTURE_SIDE), when decoded
    pasted: Image.Image | None = field(default=None, repr=False)  # the picture itself when it has no file
    cam: QImage | None = None  # the Grad-CAM overlay, computed once

    @property
    def name(self) -> str:
        return self.source if self.pasted is not None else os.path.basename(self.source) or self.source

    @property
    def error(self) -> str | None:
        return self.prediction.error

    @property
    def label(self) -> str | None:
        return self.prediction.label

    @property
    def confidence(self) -> float:
        return self.prediction.confidence

    @property
    def top(self) -> list[tuple[str, float]]:
        return self.prediction.top


class _LoadFailed(Exception):
    pass


def _load_job(path: str | None) -> Callable[[workers.JobState], LoadedModel]:
    def run(state: workers.JobState) -> LoadedModel:
        from ...core.modelfile import ModelFileError
        from ...core.trained import TrainedModel
        from ...core.weights import WeightsError

        try:
            model = TrainedModel.imagenet() if path is None else TrainedModel.load(path)
        except ModelFileError as e:
            raise _LoadFailed(f"{os.path.basename(os.fspath(e.path))}: {e.reason}") from None
        except WeightsError as e:
            raise _LoadFailed(f"the ImageNet network is not available ({e})") from None
        state.check()
        return LoadedModel(model, Predictor(model, device="auto"), path)

    return run


def _predict_job(loaded: LoadedModel, items: Sequence[str | _Pasted], max_cards: int, max_chunk: int):
    """Worker: folders expanded, then the pictures through the network a chunk at a time.

    Partial results: ``("total", n)`` once, then ``("rows", [(source, Prediction, picture
    QImage or None, pasted PIL image or None), ...])`` per chunk, in request order."""

    def run(state: workers.JobState) -> int:
        entries: list[str | _Pasted] = []
        for item in items:
            entries += [item] if isinstance(item, _Pasted) else expand_paths([item])
            state.check()
        total = len(entries)
        state.partial(("total", total))
        predictor = loaded.predictor
        k = min(MAX_TOP_K, len(loaded.model.classes))
        start, chunk = 0, max(1, min(FIRST_CHUNK, max_chunk))
        while start < total:
            t0 = time.perf_counter()
            part = entries[start: start + chunk]
            paths = [e for e in part if isinstance(e, str)]
            with loaded.lock:
                state.check()
                by_path = iter(predictor.predict_paths(
                    paths, top_k=k, batch_size=max(1, len(paths)), should_stop=lambda: state.cancelled)
                    ) if paths else iter(())
                state.check()  # a stop inside predict_paths leaves its list short
                preds = [predictor.predict_image(e.image, top_k=k) if isinstance(e, _Pasted) else next(by_path)
                         for e in part]
            rows = []
            for i, (entry, pred) in enumerate(zip(part, preds)):
                picture = None
                if start + i < max_cards and pred.error is None:
                    try:
                        picture = _picture(entry.image) if isinstance(entry, _Pasted) else _card_image(entry)
                    except ImageError:
                        picture = None  # changed since it was read: the card just has no picture
                if isinstance(entry, _Pasted):
                    pred.path = entry.name
                    rows.append((entry.name, pred, picture, entry.image))
                else:
                    rows.append((entry, pred, picture, None))
            state.partial(("rows", rows))
            start += len(part)
            state.progress(start, total)
            if time.perf_counter() - t0 < CHUNK_SECONDS:
                chunk = min(chunk * 2, max_chunk)
        return total

    return run


def _picture_job(source: str) -> Callable[[workers.JobState], QImage]:
    def run(state: workers.JobState) -> QImage:
        return _card_image(source)

    return run


def _cam_job(loaded: LoadedModel, source: str, pasted: Image.Image | None, label: str,
             picture: QImage | None = None):
    """Worker: the Grad-CAM overlay for the predicted class, over the card picture
    (``picture`` when the card already has it, else decoded the same way)."""

    def run(state: workers.JobState) -> QImage:
        from ...core import explain
        from ...core.preprocess import load_input, to_uint8_tensor

        m = loaded.model
        if pasted is not None:
            x = to_uint8_tensor(pasted, m.image_size, m.channels)
        else:
            x = load_input(source, m.image_size, m.channels)  # exactly what the prediction saw
        shown = picture if picture is not None else _picture(pasted) if pasted is not None else _card_image(source)
        with loaded.lock:
            state.check()
            heat = explain.grad_cam(m, x, target=m.classes.index(label))
        rgb = explain.overlay(workers.qimage_to_array(shown, keep_gray=False), heat, opacity=CAM_OPACITY,
                              weight_by_heat=True)
        return workers.array_to_qimage(rgb)

    return run


# =============================================================== the results table


class ResultsTableModel(QAbstractTableModel):
    """Every result of the request; "Not sure" and "Top guesses" follow the page's threshold
    and k. The user role holds the raw value each column sorts by."""

    def __init__(self, page: "PredictPage"):
        super().__init__(page)
        self._page = page
        self.rows: list[PredictionResult] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {2: "How sure the model is of its best guess",
                    3: "“yes” when the best guess is less sure than the threshold slider",
                    4: "The model's best guesses with their probabilities"}.get(section)
        return None

    def cell(self, r: PredictionResult, col: int) -> str:
        """The text shown in a cell (also what the CSV writes, except file and confidence)."""
        page = self._page
        if col == 0:
            return r.name
        if r.error is not None:
            return {1: "", 2: "", 3: "", 4: "", 5: r.error}[col]
        if col == 1:
            return r.label or ""
        if col == 2:
            return percent_1dp(r.confidence)
        if col == 3:
            return "yes" if page.is_unsure(r) else "no"
        if col == 4:
            return "; ".join(f"{c} {percent_1dp(p)}" for c, p in r.top[: page.top_k])
        return ""

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(r, col)
        if role == Qt.ItemDataRole.UserRole:  # sort key
            if col == 0:
                return r.name.lower()
            if col == 2:
                return -1.0 if r.error else float(r.confidence)
            if col == 3:
                return -1 if r.error else int(self._page.is_unsure(r))
            return self.cell(r, col).lower()
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return r.source
            if col in (4, 5):
                return self.cell(r, col) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.error is not None and col == 5:
                return QColor(RED)
            if r.error is None and col == 3 and self._page.is_unsure(r):
                return QColor(AMBER)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def append(self, results: list[PredictionResult]) -> None:
        if not results:
            return
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n + len(results) - 1)
        self.rows += results
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

    def relabel(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 3), self.index(len(self.rows) - 1, 4))


# =============================================================== cards


class _FlowLayout(QLayout):
    """Lays its widgets out left to right, wrapping to new rows (the Qt flow layout example)."""

    def __init__(self, parent=None, spacing: int = 12):
        super().__init__(parent)
        self._items = []
        self._gap = spacing

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, i: int):
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i: int):
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_h = area.x(), area.y(), 0
        for item in self._items:
            w = item.widget()
            if w is not None and w.isHidden():
                continue
            hint = item.sizeHint()
            if x > area.x() and x + hint.width() > area.right() + 1:
                x, y, row_h = area.x(), y + row_h + self._gap, 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._gap
            row_h = max(row_h, hint.height())
        return y + row_h - rect.y() + m.bottom()


class _ProbabilityBar(QWidget):
    """A class name and its probability, drawn as a bar behind the text."""

    FILL = {"best": QColor(60, 120, 200, 150), "unsure": QColor(220, 150, 40, 160), "other": QColor(128, 128, 128, 70)}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.name, self.p, self.kind = "", 0.0, "other"
        self.setMinimumHeight(self.fontMetrics().height() + 6)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_value(self, name: str, p: float, kind: str) -> None:
        self.name, self.p, self.kind = name, float(p), kind
        self.setToolTip(f"{name}: {p * 100:.2f} %")
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(200, self.fontMetrics().height() + 6)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.rect().adjusted(0, 1, 0, -1)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(128, 128, 128, 28))
        p.drawRoundedRect(r, 3, 3)
        fill = QRect(r)
        fill.setWidth(max(0, round(r.width() * min(max(self.p, 0.0), 1.0))))
        if fill.width() > 0:
            p.setBrush(self.FILL[self.kind])
            p.drawRoundedRect(fill, 3, 3)
        p.setPen(self.palette().color(QPalette.ColorRole.Text))
        text_r = r.adjusted(6, 0, -6, 0)
        value = percent(self.p)
        fm = self.fontMetrics()
        value_w = fm.horizontalAdvance(value) + 8
        name = fm.elidedText(self.name, Qt.TextElideMode.ElideRight, max(10, text_r.width() - value_w))
        p.drawText(text_r, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), name)
        p.drawText(text_r, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight), value)
        p.end()


class ResultCard(QFrame):
    """One picture: the image (or its Grad-CAM overlay), the verdict, the top-k bars."""

    cam_toggled = Signal(int, bool)  # result index, on

    def __init__(self, result: PredictionResult, parent=None):
        super().__init__(parent)
        self.result = result
        self.setObjectName("resultCard")
        self.setFixedWidth(CARD_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)
        self.image = QLabel()
        self.image.setObjectName("cardPicture")
        self.image.setFixedSize(PICTURE_BOX)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel()
        self.name.setObjectName("cardName")
        self.name.setToolTip(result.source)
        fm = self.name.fontMetrics()
        self.name.setText(fm.elidedText(result.name, Qt.TextElideMode.ElideMiddle, CARD_WIDTH - 24))
        self.verdict = QLabel()
        self.verdict.setObjectName("cardVerdict")
        self.verdict.setWordWrap(True)
        self.bars_box = QVBoxLayout()
        self.bars_box.setSpacing(3)
        self.bars: list[_ProbabilityBar] = []
        self.cam_button = QToolButton()
        self.cam_button.setObjectName("camButton")
        self.cam_button.setCheckable(True)
        self.cam_button.setText("Where did it look?")
        self.cam_button.setToolTip(
            "Grad-CAM: colour the parts of the picture that made the network choose its best guess.\n"
            "Red and yellow: the places that mattered most; places left uncoloured did not matter.")
        self.cam_button.toggled.connect(self._on_cam_button_toggled)
        self.cam_note = QLabel()
        self.cam_note.setObjectName("cardNote")
        self.cam_note.setWordWrap(True)
        self.cam_note.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(5)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.name)
        lay.addWidget(self.verdict)
        lay.addLayout(self.bars_box)
        if result.error is None:
            lay.addWidget(self.cam_button, 0, Qt.AlignmentFlag.AlignLeft)
            lay.addWidget(self.cam_note)
        else:
            self.cam_button.hide()
            self.image.setText("⚠\ncannot read")
            self.image.setProperty("broken", True)
        self._showing_cam = False
        self.set_picture(result.picture)

    # --------------------------------------------------------------- display
    def set_picture(self, image: QImage | None) -> None:
        self.result.picture = image if image is not None else self.result.picture
        if not self._showing_cam:
            self._show_image(self.result.picture)

    def _show_image(self, image: QImage | None) -> None:
        if image is None or image.isNull():
            if self.result.error is None:
                self.image.setText("…")
            return
        pm = QPixmap.fromImage(image).scaled(PICTURE_BOX, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(pm)

    def refresh(self, threshold: float, k: int) -> None:
        r = self.result
        if r.error is not None:
            self.verdict.setText(f"<b style='color:{RED}'>Could not read this file</b><br>{html.escape(r.error)}")
            return
        unsure = is_unsure(r.confidence, threshold)
        best = html.escape(r.label or "")
        if unsure:
            self.verdict.setText(f"<span style='font-size:15px; font-weight:600; color:{AMBER}'>Not sure</span>"
                                 f"<br><span>best guess: {best}, {percent(r.confidence)}</span>")
            self.verdict.setToolTip(f"The best guess is under the “not sure” threshold ({threshold:.0%}).")
        else:
            self.verdict.setText(f"<span style='font-size:15px; font-weight:600'>{best}</span>"
                                 f"<br><span>{percent(r.confidence)} sure</span>")
            self.verdict.setToolTip("")
        top = r.top[:k]
        while len(self.bars) < len(top):
            bar = _ProbabilityBar()
            self.bars.append(bar)
            self.bars_box.addWidget(bar)
        for i, bar in enumerate(self.bars):
            if i < len(top):
                kind = ("unsure" if unsure else "best") if i == 0 else "other"
                bar.set_value(top[i][0], top[i][1], kind)
                bar.show()
            else:
                bar.hide()
        self.cam_button.setText(f"Where did it look for “{r.label}”?" if len(r.label or "") <= 14
                                else "Where did it look?")

    def set_current(self, on: bool) -> None:
        self.setProperty("current", on)
        self.style().unpolish(self)
        self.style().polish(self)

    # --------------------------------------------------------------- Grad-CAM
    @property
    def cam_on(self) -> bool:
        return self.cam_button.isChecked()

    def set_cam(self, on: bool) -> None:
        if self.result.error is None:
            self.cam_button.setChecked(on)

    def show_cam_state(self, state: str, message: str = "") -> None:
        """state: 'off', 'working', 'on' (the overlay is in result.cam) or 'failed'."""
        self._showing_cam = state == "on"
        if state == "on":
            self._show_image(self.result.cam)
        else:
            self._show_image(self.result.picture)
        if state == "working":
            self.cam_note.setText("Working out where it looked…")
        elif state == "on":
            self.cam_note.setText("Red and yellow: what mattered most for this guess.")
        elif state == "failed":
            self.cam_note.setText(f"<span style='color:{RED}'>Could not compute: {html.escape(message)}</span>")
        self.cam_note.setVisible(state != "off")

    def _on_cam_button_toggled(self, on: bool) -> None:
        self.cam_toggled.emit(self.result.index, on)


# =============================================================== the page


class PredictPage(QWidget):
    """The Predict place. See the module docstring; the main window uses:

    ``set_model_path(path or None)``, ``predict_paths(paths)``, ``shutdown()``,
    ``set_live_widget(widget)``, and the signals below.
    """

    model_loaded = Signal(str)  # a description of the model now in use
    model_failed = Signal(str)  # why a model file could not be used (the previous one stays)
    status_message = Signal(str)
    predictions_finished = Signal(int)  # results shown after a request ended (finished or stopped)
    grad_cam_ready = Signal(int)  # result index

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so the page itself can hold focus for Ctrl+V
        self.loaded: LoadedModel | None = None
        self.results: list[PredictionResult] = []
        self.cards: dict[int, ResultCard] = {}
        self.chunk_size = CHUNK
        self.max_cards = MAX_CARDS
        self.project = None  # the open core Project, if any (set_project)
        self.live_widget: QWidget | None = None
        self._threshold = 0.5
        self._inputs: list[str | _Pasted] = []
        self._closed = False
        # models
        self._model_gen = 0
        self._load_job: workers.Job | None = None
        self._loading_path: str | None = None
        self._model_asked = False  # set_model_path was called (else ImageNet is loaded on first need)
        self._model_error: str | None = None
        # predictions
        self._request_gen = 0
        self._predict_job: workers.Job | None = None
        self._waiting_for_model = False
        self._total = 0
        self._done = 0
        self._t0 = 0.0
        self._outcome = ""  # how the last request ended
        self.last_message = ""
        # Grad-CAM, one at a time
        self._cam_queue: list[int] = []
        self._cam_job: workers.Job | None = None
        self._cam_running: int | None = None
        self._cam_gen = 0  # Grad-CAM results from before a cancel are dropped
        self._current_card: ResultCard | None = None
        self._build()
        self._render_banner()
        self._update_summary()

    # ================================================================ building
    def _build(self) -> None:
        title = QLabel("Predict")
        title.setObjectName("predictTitle")
        subtitle = QLabel("Show the model some pictures and see what it thinks they are.")
        subtitle.setObjectName("hint")

        # ---- the model
        self.model_label = QLabel()
        self.model_label.setObjectName("modelText")
        self.model_label.setWordWrap(True)
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.setToolTip("Use a model file (.pony) made in the Train place or with "
                                          "“ponyclassifier train”.")
        self.open_model_button.clicked.connect(self.open_model_dialog)
        self.imagenet_button = QPushButton("Use ImageNet network")
        self.imagenet_button.setToolTip("Use the pretrained network that knows 1000 everyday things "
                                        "(cats, cups, cars…) instead of a model you trained.")
        self.imagenet_button.clicked.connect(lambda: self.set_model_path(None))
        self.banner = QFrame()
        self.banner.setObjectName("modelBanner")
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(12, 8, 8, 8)
        bl.addWidget(self.model_label, 1)
        bb = QVBoxLayout()
        bb.setSpacing(4)
        bb.addWidget(self.open_model_button)
        bb.addWidget(self.imagenet_button)
        bb.addStretch(1)
        bl.addLayout(bb)

        # ---- pictures in
        self.add_files_button = QPushButton("Add pictures…")
        self.add_files_button.setToolTip("Choose one or more picture files to classify.")
        self.add_files_button.clicked.connect(self.open_files_dialog)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Classify every picture in a folder (and its subfolders).")
        self.add_folder_button.clicked.connect(self.open_folder_dialog)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Classify a picture copied to the clipboard (Ctrl+V).")
        self.paste_button.clicked.connect(self.paste)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove all results from the page.")
        self.clear_button.clicked.connect(self.clear)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the results table as a CSV file (opens in any spreadsheet).")
        self.export_button.clicked.connect(self.export_csv_dialog)
        self.paste_shortcut = QShortcut(QKeySequence.StandardKey.Paste, self)
        self.paste_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.paste_shortcut.activated.connect(self.paste)

        # ---- how results are shown
        self.topk_spin = QSpinBox(minimum=1, maximum=MAX_TOP_K, value=DEFAULT_TOP_K)
        self.topk_spin.setToolTip("How many of the model's best guesses to show for each picture.")
        self.topk_spin.valueChanged.connect(self._on_topk_spin_value_changed)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setFixedWidth(170)
        self.threshold_slider.setToolTip(
            "When the best guess is less sure than this, the answer says “Not sure”.\n"
            "Slide it to see which answers change; the model is not run again.\n"
            "It starts at the value stored in the model.")
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider_value_changed)
        self.threshold_value = QLabel()
        self.threshold_value.setMinimumWidth(self.threshold_value.fontMetrics().horizontalAdvance("100 %") + 4)
        self.cam_all_check = QCheckBox("Show where it looked (Grad-CAM) on every picture")
        self.cam_all_check.setToolTip("Colour the places in each picture that mattered most for the model's "
                                      "best guess. You can also switch it on for one card.")
        self.cam_all_check.toggled.connect(self._on_cam_all_check_toggled)

        # ---- progress
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumWidth(360)
        self.rate_label = QLabel()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the pictures in progress; the results so far stay.")
        self.stop_button.clicked.connect(self.stop)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summary")
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)

        # ---- results: cards, table, live camera
        self.drop_hint = QLabel(
            "<div style='font-size:17px; font-weight:600'>Drop pictures or a folder here</div>"
            "<div style='margin-top:8px'>or use <b>Add pictures…</b> / <b>Add folder…</b>, "
            "or copy a picture and press <b>Ctrl+V</b>.</div>")
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setWordWrap(True)
        self.cards_note = QLabel()
        self.cards_note.setObjectName("hint")
        self.cards_note.setWordWrap(True)
        self.cards_note.hide()
        self.cards_host = QWidget()
        self.cards_host.setObjectName("cardsHost")
        self.flow = _FlowLayout(self.cards_host, spacing=12)
        self.flow.setContentsMargins(12, 12, 12, 12)
        self.cards_scroll = QScrollArea()
        self.cards_scroll.setWidgetResizable(True)
        self.cards_scroll.setWidget(self.cards_host)
        self.cards_scroll.setFrameShape(QFrame.Shape.NoFrame)
        cards_page = QWidget()
        cpl = QVBoxLayout(cards_page)
        cpl.setContentsMargins(0, 6, 0, 0)
        cpl.addWidget(self.cards_note)
        cpl.addWidget(self.cards_scroll, 1)
        self.pictures_stack = QStackedWidget()
        self.pictures_stack.addWidget(self.drop_hint)
        self.pictures_stack.addWidget(cards_page)

        self.table_model = ResultsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table_view = QTableView()
        self.table_view.setModel(self.proxy)
        self.table_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table_view.setAlternatingRowColors(True)
        self.table_view.verticalHeader().hide()
        self.table_view.verticalHeader().setDefaultSectionSize(self.table_view.fontMetrics().height() + 10)
        self.table_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table_view.setSortingEnabled(True)
        self.table_view.setToolTip("Click a column title to sort; double-click a row to see its picture.")
        header = self.table_view.horizontalHeader()
        for col, width in enumerate((220, 140, 90, 70, 300, 280)):
            self.table_view.setColumnWidth(col, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table_view.doubleClicked.connect(self._on_table_view_double_clicked)

        self.live_area = QWidget()
        self.live_area.setObjectName("liveArea")
        live_layout = QVBoxLayout(self.live_area)
        live_layout.setContentsMargins(0, 0, 0, 0)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.pictures_stack, "Pictures")
        self.tabs.addTab(self.table_view, "Table")
        self.live_tab_index = self.tabs.addTab(self.live_area, "Live camera")
        self.tabs.setTabVisible(self.live_tab_index, False)  # until the main window puts the camera in

        # ---- layout
        top = QVBoxLayout(self)
        top.setContentsMargins(16, 12, 16, 10)
        top.setSpacing(8)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addSpacing(10)
        head.addWidget(subtitle, 1, Qt.AlignmentFlag.AlignBottom)
        top.addLayout(head)
        top.addWidget(self.banner)
        row1 = QHBoxLayout()
        for w in (self.add_files_button, self.add_folder_button, self.paste_button, self.clear_button):
            row1.addWidget(w)
        row1.addSpacing(18)
        row1.addWidget(QLabel("Show top"))
        row1.addWidget(self.topk_spin)
        row1.addSpacing(18)
        row1.addWidget(QLabel("Not sure below"))
        row1.addWidget(self.threshold_slider)
        row1.addWidget(self.threshold_value)
        row1.addStretch(1)
        row1.addWidget(self.export_button)
        top.addLayout(row1)
        row2 = QHBoxLayout()
        row2.addWidget(self.cam_all_check)
        row2.addStretch(1)
        row2.addWidget(self.summary_label)
        row2.addWidget(self.progress)
        row2.addWidget(self.rate_label)
        row2.addWidget(self.stop_button)
        top.addLayout(row2)
        top.addWidget(self.tabs, 1)
        self._set_busy(False)
        self.threshold_slider.setValue(50)
        self._set_threshold(0.5)

        self.setStyleSheet(
            "QLabel#predictTitle { font-size: 22px; font-weight: 600; }"
            "QLabel#hint { color: palette(placeholder-text); }"
            "QFrame#modelBanner { border-radius: 6px; }"
            "QLabel#dropHint { border: 2px dashed palette(mid); border-radius: 12px; margin: 12px;"
            " color: palette(placeholder-text); padding: 30px; }"
            "QLabel#dropHint[active=\"true\"] { border-color: palette(highlight); color: palette(text); }"
            "QWidget#cardsHost[active=\"true\"] { border: 2px dashed palette(highlight); }"
            "QFrame#resultCard { background: palette(base); border: 1px solid palette(mid); border-radius: 8px; }"
            "QFrame#resultCard[current=\"true\"] { border: 2px solid palette(highlight); }"
            "QLabel#cardPicture { background: rgba(128,128,128,0.12); border-radius: 4px; }"
            "QLabel#cardPicture[broken=\"true\"] { color: #b02a2a; font-size: 15px; }"
            "QLabel#cardName { font-weight: 600; }"
            "QLabel#cardNote { color: palette(placeholder-text); font-size: 11px; }")

    # ================================================================ public API
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
        """Load a model file on a worker (None: the ImageNet network). The current model stays in
        use until the new one is ready; a file that cannot be used leaves it in use."""
        self._model_asked = True
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
            self._predict_job.cancel()
            self.stop_button.setEnabled(False)
            self.rate_label.setText("Stopping…")
        elif self._waiting_for_model:
            self._waiting_for_model = False
            self._inputs = []
            self._set_busy(False)

    def clear(self) -> None:
        self._cancel_request()
        self._inputs = []
        self._clear_results()
        self._outcome = ""
        self._set_busy(False)
        self._update_summary()

    def set_live_widget(self, widget: QWidget) -> None:
        """Put the live camera view in the "Live camera" tab and show the tab. A widget with a
        ``set_project`` method is given the page's project (see :meth:`set_project`)."""
        self.live_widget = widget
        self.live_area.layout().addWidget(widget)
        self.tabs.setTabVisible(self.live_tab_index, True)
        if self.project is not None and hasattr(widget, "set_project"):
            widget.set_project(self.project)

    def set_project(self, project) -> None:
        """The open core ``Project`` (or None): its folder is where Add pictures… / Add folder…
        start until the user picks another, and the live widget saves frames into it."""
        self.project = project
        if self.live_widget is not None and hasattr(self.live_widget, "set_project"):
            self.live_widget.set_project(project)

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

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for r in self.table_rows_in_view():
            cells = [self.table_model.cell(r, c) for c in range(len(COLUMNS))]
            cells[0] = r.source
            if r.error is None:
                cells[2] = f"{r.confidence:.6f}"
            w.writerow(cells)
        data = buf.getvalue().encode("utf-8-sig")  # the BOM lets spreadsheets read accented names
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
        if self._load_job is not None:
            self._load_job.cancel()
            self._load_job = None

    # ================================================================ dialogs
    def _last_dir(self) -> str:
        remembered = str(QSettings().value(_LAST_DIR_KEY, "") or "")
        if remembered and os.path.isdir(remembered):
            return remembered
        return str(self.project.root) if self.project is not None else ""

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
        if not self._model_asked and self.loaded is None and self._load_job is None:
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
        self._model_gen += 1
        gen = self._model_gen
        if self._load_job is not None:
            self._load_job.cancel()
        if not keep_error:
            self._model_error = None
        self._loading_path = path
        if self._predict_job is not None:  # its results would come from the model being replaced
            self._cancel_request()
            self._waiting_for_model = bool(self._inputs)
        self._load_job = workers.run_job(
            _load_job(path),
            on_finished=lambda loaded: self._on_load_finished(gen, loaded),
            on_failed=lambda message, tb: self._on_load_failed(gen, path, message))
        self._render_banner()
        if self._waiting_for_model:
            self._show_waiting()
        self._say(f"Loading model… ({'ImageNet network' if path is None else os.path.basename(path)})")

    def _on_load_finished(self, gen: int, loaded: LoadedModel) -> None:
        if self._closed or gen != self._model_gen:
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
        self.model_loaded.emit(desc)

    def _on_load_failed(self, gen: int, path: str | None, message: str) -> None:
        if self._closed or gen != self._model_gen:
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
        parts: list[str] = []
        kind = "info"
        loaded = self.loaded
        if loaded is None or loaded.imagenet:
            if loaded is not None or self._loading_path is None:
                parts.append(f"<b>{IMAGENET_TEXT}</b> (cats, cups, cars, fruit…). Train a model in the "
                             "Train place, or open a model file, to recognise your own classes.")
        else:
            m = loaded.model
            shown = ", ".join(html.escape(c) for c in m.classes[:12])
            if len(m.classes) > 12:
                shown += f" and {len(m.classes) - 12} more"
            details = [f"{_recipe_label(m.recipe)}",
                       f"input {m.image_size}×{m.image_size} {'grey' if m.channels == 1 else 'colour'}"]
            val = (m.metrics or {}).get("validation") or {}
            if isinstance(val.get("accuracy"), (int, float)):
                details.append(f"validation accuracy {val['accuracy']:.0%}")
            if m.created:
                details.append(f"trained {html.escape(str(m.created)[:10])}")
            parts.append(f"<b>Model: {html.escape(loaded.name)}</b> — {len(m.classes)} classes: {shown}"
                         f"<br><span>{' · '.join(details)}</span>")
        if self._load_job is not None:
            what = "the ImageNet network" if self._loading_path is None else html.escape(
                os.path.basename(self._loading_path))
            parts.append(f"<i>Loading model… ({what})</i>")
        if self._model_error:
            kind = "error"
            still = ("" if loaded is None else
                     f" Still using {html.escape(loaded.name)}.")
            parts.append(f"<span style='color:{RED}'><b>Could not open the model</b> "
                         f"{html.escape(self._model_error)}.{still}</span>")
        self.model_label.setText("<br>".join(parts))
        self.banner.setStyleSheet(f"QFrame#modelBanner {{ {Banner.STYLES[kind]} border-radius: 6px; }}")
        self.imagenet_button.setEnabled(not (loaded is not None and loaded.imagenet and self._load_job is None))

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
        self._request_gen += 1
        gen = self._request_gen
        self._total = self._done = 0
        self._t0 = time.perf_counter()
        self._predict_job = workers.run_job(
            _predict_job(self.loaded, self._inputs, self.max_cards, self.chunk_size),
            on_partial=self._if_request(gen, self._on_predict_partial),
            on_progress=self._if_request(gen, self._on_predict_progress),
            on_finished=self._if_request(gen, self._on_predict_finished),
            on_failed=self._if_request(gen, self._on_predict_failed),
            on_cancelled=self._if_request(gen, self._on_predict_cancelled))
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.rate_label.setText("Looking for pictures…")

    def _show_waiting(self) -> None:
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.rate_label.setText("Waiting for the model…")

    def _if_request(self, gen: int, slot):
        return lambda *args: slot(*args) if gen == self._request_gen and not self._closed else None

    def _cancel_request(self) -> None:
        self._request_gen += 1  # late signals of the old job are dropped
        if self._predict_job is not None:
            self._predict_job.cancel()
            self._predict_job = None
        self._waiting_for_model = False
        self._cancel_cams()

    def _clear_results(self) -> None:
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
        for source, pred, picture, pasted in value:
            r = PredictionResult(len(self.results), source, pred, picture, pasted)
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

    def _on_predict_finished(self, total: int) -> None:
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

    def _on_predict_cancelled(self) -> None:
        self._end_request(f"Stopped after {len(self.results)} of {self._total} pictures.")

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
        if r.picture is None and r.error is None and r.pasted is None:
            gen = self._request_gen
            workers.run_job(_picture_job(r.source),
                            on_finished=self._if_request(gen, lambda img, c=card: c.set_picture(img)),
                            on_failed=self._if_request(gen, lambda msg, tb, c=card: c.image.setText(
                                "cannot show\nthis picture")))
        if self.cam_all_check.isChecked():
            card.set_cam(True)
        self.pictures_stack.setCurrentIndex(1)
        self._update_tab_titles()
        return card

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
        r = self.results[index]
        gen, loaded = self._cam_gen, self.loaded
        self._cam_running = index
        self._cam_job = workers.run_job(
            _cam_job(loaded, r.source, r.pasted, r.label, r.picture),
            on_finished=lambda img: self._on_cam_finished(gen, index, img),
            on_failed=lambda message, tb: self._on_cam_failed(gen, index, message),
            on_cancelled=lambda: self._on_cam_ended(gen))

    def _on_cam_ended(self, gen: int) -> bool:
        """A Grad-CAM job ended; whether its result still belongs to what is shown."""
        if self._closed or gen != self._cam_gen:
            return False
        self._cam_job = None
        self._cam_running = None
        QTimer.singleShot(0, self, self._next_cam)
        return True

    def _on_cam_finished(self, gen: int, index: int, image: QImage) -> None:
        if not self._on_cam_ended(gen):
            return
        self.results[index].cam = image
        card = self.cards.get(index)
        if card is not None and card.cam_on:
            card.show_cam_state("on")
        self.grad_cam_ready.emit(index)

    def _on_cam_failed(self, gen: int, index: int, message: str) -> None:
        if not self._on_cam_ended(gen):
            return
        card = self.cards.get(index)
        if card is not None:
            card.show_cam_state("failed", message)

    def _cancel_cams(self) -> None:
        """Only called when the results are replaced, so no card is left saying "working"."""
        self._cam_gen += 1
        self._cam_queue = []
        if self._cam_job is not None:
            self._cam_job.cancel()
            self._cam_job = None
        self._cam_running = None
