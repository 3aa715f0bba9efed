"""ExplainPage: what did the network learn, and why did it say that? (the Explain place)

Top: the model (a file or the ImageNet network) and the image chooser (a strip of the
project's pictures, filtered by class, plus "Open image…"). Left: the chosen image with
the model's prediction, and the model's convolution layers (pick one in the table).
Right, in tabs: the filters, the response maps of the chosen layer, saliency (pixel
gradients, Grad-CAM and occlusion side by side), the patterns filters look for, the
kernel playground and the embedding map.

Everything heavy runs through :func:`~ponyclassifier.gui.workers.run_job` on the thread
pool, via :class:`_Lane`: core.explain hooks layers for the length of a call, and a hook on a
module fires in every thread's forward pass through it, so two explanations must never
share one network at the same moment. Each lane owns its own copy of the network and runs
its jobs one after another (quick work; occlusion; filter maximisation; the embedding map
has its own copy too). Each request carries the context it was made for (model, image,
layer, class...); a result whose context is no longer current is dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImage,
    QPainter,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import explain as E
from ...core.images import ImageError, decode_image
from ...core.modelfile import ModelFileError
from ..widgets.banner import Banner
from ..widgets.format import IMAGE_FILTER, percent
from ..widgets.image_view import ImageView
from ..workers import Job, JobState, ThumbnailLoader, run_job
from ..workers import array_to_qimage as to_qimage

__all__ = ["ExplainPage", "ImageView", "kernel_grid", "maps_grid", "parse_channels"]

DISPLAY_SIDE = 512  # the photo is shown (and saliency overlaid) at most this many pixels a side
THUMB_SIZE = 72
MAX_PATTERNS = 64  # filters maximised in one go
TIPS = {
    "filters": "A convolution layer is a set of small filters (kernels) slid over the picture. The first layer "
               "works on the raw pixels, so its filters can be shown as tiny coloured pictures: edges, stripes "
               "and colour blobs. Each square is one filter, enlarged so its pixels are visible.",
    "maps": "Each filter of a layer makes one response map: bright where the filter found what it looks for "
            "in this image. Early layers respond to edges and colours, later ones to parts of objects. "
            "Click a map to see it large and laid over the photo.",
    "saliency": "Three ways of asking where the model looked. Pixel gradients: which pixels would change the "
                "score most. Grad-CAM: where a layer found evidence for the class. Occlusion: how much the "
                "class's probability drops when a gray patch hides each spot (slow but easy to trust).",
    "maximize": "Start from faint noise and change the picture, step by step, so that one filter responds as "
                "strongly as it can. The result shows the pattern that filter looks for. Filters of early "
                "layers look for simple textures, later ones for more complex shapes.",
}


# ============================================================================ pure helpers


GRID_BACKGROUND = (222, 222, 226)


def kernel_grid(filters: np.ndarray, cell: int = 30, gap: int = 3, cols: int | None = None,
                background: tuple[int, int, int] = GRID_BACKGROUND) -> tuple[np.ndarray, int, int]:
    """Filters (N, kh, kw, c) in [0, 1] -> one RGB uint8 grid, every kernel enlarged by a whole
    number (nearest neighbour) to about ``cell`` pixels, so the pixels of a 3x3 kernel show.

    Returns (grid, columns, enlargement)."""
    f = np.asarray(filters, dtype=np.float32)
    n, kh, kw, c = f.shape
    scale = max(1, cell // max(kh, kw))
    k = np.repeat(np.repeat(f, scale, 1), scale, 2)
    if c == 1:
        k = np.repeat(k, 3, -1)
    k = (np.clip(k[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n * 2))))
    rows = max(1, math.ceil(n / cols))
    ch, cw = kh * scale, kw * scale
    grid = np.empty((rows * ch + (rows + 1) * gap, cols * cw + (cols + 1) * gap, 3), np.uint8)
    grid[:] = background
    for i in range(n):
        r, cc = divmod(i, cols)
        y, x = gap + r * (ch + gap), gap + cc * (cw + gap)
        grid[y:y + ch, x:x + cw] = k[i]
    return grid, cols, scale


def maps_grid(maps: np.ndarray, normalise: str = "each", colormap: str = "inferno", cols: int | None = None,
              background: tuple[int, int, int] = GRID_BACKGROUND) -> tuple[np.ndarray, int, int]:
    """Response maps (C, h, w) -> an RGB grid (:func:`explain.tile_maps`, coloured), the gaps
    and the empty cells painted ``background``. Returns (grid, columns, gap)."""
    m = np.asarray(maps, dtype=np.float32)
    n, h, w = m.shape
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n * 1.5))))
    pad = max(1, round(max(h, w) / 16))
    g = E.tile_maps(m, cols=cols, pad=pad, normalise=normalise)
    rgb = E.apply_colormap(g.astype(np.float32) / 255.0, colormap)
    yy = (np.arange(g.shape[0]) % (h + pad)) >= h
    xx = (np.arange(g.shape[1]) % (w + pad)) >= w
    gaps = yy[:, None] | xx[None, :]
    rows = math.ceil(n / cols)
    for i in range(n, rows * cols):  # the empty cells after the last map
        r, c = divmod(i, cols)
        gaps[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = True
    rgb[gaps] = background
    return rgb, cols, pad


def unit_map(m: np.ndarray) -> np.ndarray:
    """A map stretched to [0, 1] (a flat map -> zeros)."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32))
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def parse_channels(text: str, count: int, limit: int = MAX_PATTERNS) -> list[int]:
    """"0-7, 12, 40" -> [0, ..., 7, 12, 40] for a layer of ``count`` filters; ValueError with a
    message for the user otherwise."""
    cleaned = re.sub(r"\s*[-–]\s*", "-", text.strip())
    out: list[int] = []
    for part in re.split(r"[,;\s]+", cleaned):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"“{part}” is not a filter number or a range like 0-7")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            a, b = b, a
        for ch in (a, b):
            if ch >= count:
                raise ValueError(f"filter {ch} does not exist: this layer has {count} filters (0–{count - 1})")
        for ch in range(a, b + 1):
            if ch not in out:
                out.append(ch)
                if len(out) > limit:
                    raise ValueError(f"at most {limit} filters at a time")
    if not out:
        raise ValueError("type the filters to show, e.g. 0-7 or 3, 12, 40")
    return out


def _enlarge(img: np.ndarray, side: int) -> np.ndarray:
    """Small pictures enlarged by a whole number (nearest), so tiny patterns stay sharp."""
    k = max(1, side // max(img.shape[:2]))
    return np.repeat(np.repeat(img, k, 0), k, 1) if k > 1 else img


# ============================================================================ worker functions
# Each runs on a pool thread and touches no widget; it returns plain values and QImages.


class _Refused(Exception):
    """A file we cannot use; the message is the reason alone (the page names the file)."""


def _load_model_job(path: str | None, state: JobState) -> dict:
    from ...core.engine import select_device
    from ...core.trained import TrainedModel

    try:
        model = TrainedModel.imagenet() if path is None else TrainedModel.load(path)
    except ModelFileError as e:
        raise _Refused(e.reason) from None
    except OSError as e:
        raise _Refused(e.strerror or str(e)) from None
    try:
        device = select_device("auto")
    except Exception:  # a broken GPU setup: explanations still work on the CPU
        device = None
    if device is not None:
        model.network.to(device)
    model.network.eval()
    state.check()
    layers = E.conv_layers(model)
    cam_layer = E.default_cam_layer(model, layers) if layers else None
    state.check()
    # One copy of the network per lane (see the module docstring), made before any lane runs.
    replicas = {name: dataclasses.replace(model, network=copy.deepcopy(model.network))
                for name in ("occlusion", "maximize", "embedding")}
    summary = model.summary()
    return {"model": model, "layers": layers, "cam_layer": cam_layer, "replicas": replicas,
            "parameters": int(summary.get("parameters", 0))}


def _decode_job(path: str, size: int | None, channels: int, state: JobState) -> dict:
    """The picture to show (at most DISPLAY_SIDE a side) and, with a model, its input: the
    shared preprocessing (:func:`preprocess.load_input`), exactly as the Predict place sees it."""
    from ...core.preprocess import load_input

    try:
        dec = decode_image(path, draft_size=(DISPLAY_SIDE, DISPLAY_SIDE))
    except ImageError as e:
        raise _Refused(e.reason) from None
    im = dec.image
    im.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    rgb = np.asarray(im).copy()
    state.check()
    x = load_input(path, size, channels) if size else None
    return {"rgb": rgb, "qimage": to_qimage(rgb), "input": x, "original_size": dec.original_size}


# ============================================================================ lanes


class _Task:
    def __init__(self, key: str, fn: Callable[[Any, JobState], Any], callbacks: dict[str, Callable]):
        self.key = key
        self.fn = fn
        self.callbacks = callbacks
        self.job: Job | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.job is not None:
            self.job.cancel()


class _Lane:
    """Runs its jobs one at a time, on the thread pool, with its own copy of the model.

    A new request with the same key replaces a waiting one and cancels a running one.
    Callbacks of a cancelled task never run. Lives on the GUI thread.
    """

    def __init__(self, name: str, model: Any, on_idle: Callable[[], None] | None = None):
        self.name = name
        self.model = model
        self._running: _Task | None = None
        self._queue: list[_Task] = []
        self._closed = False
        self._on_idle = on_idle

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    def submit(self, key: str, fn: Callable[[Any, JobState], Any], **callbacks: Callable) -> _Task:
        self.cancel(key)
        task = _Task(key, fn, callbacks)
        if self._closed:
            task.cancelled = True
            return task
        self._queue.append(task)
        self._start_next()
        return task

    def cancel(self, key: str | None = None) -> None:
        for t in list(self._queue):
            if key is None or t.key == key:
                t.cancel()
                self._queue.remove(t)
        if self._running is not None and (key is None or self._running.key == key):
            self._running.cancel()  # its end starts the next task

    def close(self) -> None:
        self._closed = True
        self.cancel()

    def _start_next(self) -> None:
        if self._running is not None or self._closed or not self._queue:
            return
        task = self._queue.pop(0)
        self._running = task
        model = self.model

        def relay(name: str):
            def slot(*args):
                cb = task.callbacks.get(name)
                if cb is not None and not task.cancelled:
                    cb(*args)
            return slot

        task.job = run_job(lambda state: task.fn(model, state),
                           on_finished=lambda r: self._end(task, "on_finished", r),
                           on_failed=lambda m, tb: self._end(task, "on_failed", m, tb),
                           on_cancelled=lambda: self._end(task, "on_cancelled"),
                           on_progress=relay("on_progress"), on_partial=relay("on_partial"))

    def _end(self, task: _Task, which: str, *args) -> None:
        if self._running is task:
            self._running = None
        try:
            cb = task.callbacks.get(which)
            if cb is not None and not task.cancelled:
                cb(*args)
        finally:
            self._start_next()
            if not self.busy and self._on_idle is not None and not self._closed:
                self._on_idle()


# ============================================================================ widgets


class _StripModel(QAbstractListModel):
    """The project's pictures (path, class) for the strip; thumbnails as they arrive.

    A model rather than a QListWidget: tens of thousands of rows cost nothing until shown."""

    MAX_ICONS = 800

    def __init__(self, blank: QIcon, parent=None):
        super().__init__(parent)
        self.blank = blank
        self.rows: list[tuple[str, str]] = []
        self._row_of: dict[str, int] = {}
        self._icons: OrderedDict[str, QIcon] = OrderedDict()

    def set_rows(self, rows: list[tuple[str, str]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self._row_of = {p: i for i, (p, _) in enumerate(rows)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        path, cls = self.rows[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons.get(path, self.blank)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{Path(path).name} ({cls})"
        if role == Qt.ItemDataRole.UserRole:
            return path
        return None

    def path(self, row: int) -> str:
        return self.rows[row][0]

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def has_icon(self, path: str) -> bool:
        return path in self._icons

    def set_icon(self, path: str, icon: QIcon) -> None:
        self._icons[path] = icon
        self._icons.move_to_end(path)
        while len(self._icons) > self.MAX_ICONS:
            self._icons.popitem(last=False)
        row = self._row_of.get(path)
        if row is not None:
            i = self.index(row)
            self.dataChanged.emit(i, i, [Qt.ItemDataRole.DecorationRole])




def _muted(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setObjectName("muted")
    return label


class _Panel(QFrame):
    """One saliency method: title, what it means, the overlay, progress and Stop."""

    def __init__(self, title: str, caption: str, tip: str, stoppable: bool = False, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.base_title = title
        self.title = QLabel(title)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.title.setToolTip(tip)
        self.base_caption = caption
        self.caption = _muted(caption)
        self.caption.setToolTip(tip)
        self.view = ImageView("", min_side=140)
        self.view.setToolTip(tip)
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop this computation")
        self.stop_button.hide()
        self.run_button = QPushButton("Compute")
        self.run_button.setToolTip("Compute this map for the image and class shown")
        self.run_button.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(3)
        lay.addWidget(self.title)
        lay.addWidget(self.caption)
        lay.addWidget(self.view, 1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.stop_button)
        row.addWidget(self.run_button)
        lay.addLayout(row)
        self._stoppable = stoppable

    def busy(self, done: int = 0, total: int = 0, text: str = "Computing…") -> None:
        self.view.set_message(text, keep_image=True)
        self.stop_button.setVisible(self._stoppable)
        self.run_button.hide()
        self.progress.show()
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total) if total else 0)  # last: a slot may react to it

    def idle(self) -> None:
        self.progress.hide()
        self.stop_button.hide()


class _SaliencyGrid(QWidget):
    """Four panels side by side when there is room, else two by two."""

    def __init__(self, panels: list[QWidget], parent=None):
        super().__init__(parent)
        self.panels = panels
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self._mode = ""
        self._place("row")

    def _place(self, mode: str) -> None:
        if mode == self._mode:
            return
        if self._mode:
            for p in self.panels:
                self.grid.removeWidget(p)
        self._mode = mode
        for i, p in enumerate(self.panels):
            self.grid.addWidget(p, *((0, i) if mode == "row" else divmod(i, 2)))
        for i in range(4):
            self.grid.setColumnStretch(i, 1 if mode == "row" or i < 2 else 0)
            self.grid.setRowStretch(i, 1 if (mode == "row" and i == 0) or (mode != "row" and i < 2) else 0)

    def resizeEvent(self, event) -> None:
        w, h = event.size().width(), event.size().height()
        self._place("row" if min(w / 4, h) >= min(w / 2, h / 2) else "square")
        super().resizeEvent(event)


# ============================================================================ the page


class ExplainPage(QWidget):
    """The Explain place. See the module docstring.

    API for the main window: :meth:`set_model_path` (None: the ImageNet model),
    :meth:`set_project`, :meth:`set_image_path`, :meth:`shutdown`; signals
    ``status_message(str)`` and ``open_image_requested(str)`` (an image clicked on the
    embedding map, e.g. to show it in the Dataset place).
    """

    status_message = Signal(str)
    open_image_requested = Signal(str)
    model_loaded = Signal(str)  # a description of the model now in use
    model_failed = Signal(str)  # the message shown
    # A view shows a new result: "prediction", "first_filters", "layer_filters", "maps", "map",
    # "gradients", "cam", "occlusion", "overlays" or "pattern".
    result_shown = Signal(str)

    TAB_FILTERS, TAB_MAPS, TAB_SALIENCY, TAB_MAXIMIZE, TAB_KERNELS, TAB_EMBEDDING = range(6)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from .embedding import EmbeddingMapWidget
        from .kernels import KernelPlayground

        self._closed = False
        # model state
        self.model = None
        self.model_path: str | None = None
        self.layers: list[E.LayerInfo] = []
        self.current_layer: E.LayerInfo | None = None
        self._cam_default: E.LayerInfo | None = None
        self._model_gen = 0
        self._load_gen = 0
        self._load_job: Job | None = None
        self._lanes: dict[str, _Lane] = {}
        self._embedding_model = None
        self._model_detail_text = ""
        # image state
        self.project_root: str | None = None
        self.samples: list[tuple[str, str]] = []
        self.image_path: str | None = None
        self.image: np.ndarray | None = None  # the picture shown, uint8 (H, W, 3)
        self._qimage: QImage | None = None
        self._input = None  # the model's input for it (uint8 tensor (C, S, S))
        self._image_gen = 0
        self._decode_gen = 0
        self._decode_job: Job | None = None
        self._requested_path: str | None = None
        self.probabilities: np.ndarray | None = None
        self.predicted: int | None = None
        self._pred_ctx: tuple | None = None
        self._chosen_target = -1  # -1: the predicted class
        # results (plain arrays, for the views and for tests)
        self.first_filters: np.ndarray | None = None
        self.chosen_filters: np.ndarray | None = None
        self.maps: np.ndarray | None = None
        self._maps_geometry: tuple[int, int, int, int] | None = None  # cols, pad, h, w
        self.selected_map: int | None = None
        self.heat: dict[str, np.ndarray] = {}
        self.overlays: dict[str, np.ndarray] = {}
        self.patterns: dict[int, np.ndarray] = {}
        self._patterns_layer: E.LayerInfo | None = None
        self._done: dict[str, tuple] = {}  # view -> context of what is shown
        self._asked: dict[str, tuple] = {}  # view -> context of the request in flight
        self._heat_ctx: dict[str, tuple] = {}
        self._stopped: dict[str, tuple] = {}  # view -> context the user stopped (not restarted on its own)
        self._overlay_gen = 0
        self._overlay_job: Job | None = None
        self._map_detail_gen = 0
        self._map_detail_job: Job | None = None
        self._kernels_image_gen = -1
        self._embedding_sent: tuple | None = None

        self._overlay_timer = QTimer(self)
        self._overlay_timer.setSingleShot(True)
        self._overlay_timer.setInterval(30)
        self._overlay_timer.timeout.connect(self._compute_overlays)
        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(60)
        self._thumb_timer.timeout.connect(self._request_visible_thumbnails)

        self.thumbs = ThumbnailLoader(size=THUMB_SIZE, parent=self)
        self.thumbs.thumbnail_ready.connect(self._on_thumbs_thumbnail_ready)

        self.kernels = KernelPlayground()
        self.embedding = EmbeddingMapWidget()
        self.embedding.image_activated.connect(self._on_embedding_image_activated)
        self._build()
        self.set_project(None, None)
        self._show_no_model()

    # ================================================================== building
    def _build(self) -> None:
        self.banner = Banner()

        # ---- model row
        self.model_label = QLabel("No model")
        f = self.model_label.font()
        f.setBold(True)
        self.model_label.setFont(f)
        self.model_detail = _muted("")  # wraps in a narrow window rather than being cut off
        self.model_busy = QProgressBar()
        self.model_busy.setRange(0, 0)
        self.model_busy.setMaximumWidth(120)
        self.model_busy.setMaximumHeight(12)
        self.model_busy.setTextVisible(False)
        self.model_busy.hide()
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.setToolTip("Explain a model file (.pony) made in the Train place or with "
                                          "“ponyclassifier train”")
        self.open_model_button.clicked.connect(self._on_open_model_button_clicked)
        self.imagenet_button = QPushButton("ImageNet model")
        self.imagenet_button.setToolTip("The pretrained EfficientNet-Lite0 with its own 1000 everyday classes "
                                        "(cats, cars, coffee mugs...): works on any photo without training")
        self.imagenet_button.clicked.connect(lambda: self.set_model_path(None))
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model:"))
        model_row.addWidget(self.model_label)
        model_row.addWidget(self.model_detail, 1)
        model_row.addWidget(self.model_busy)
        model_row.addWidget(self.open_model_button)
        model_row.addWidget(self.imagenet_button)

        # ---- image chooser
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Show the project's images of one class")
        self.class_combo.setMinimumContentsLength(12)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.currentIndexChanged.connect(self._on_class_combo_changed)
        self._blank_icon = self._make_blank_icon()
        self.strip_model = _StripModel(self._blank_icon, self)
        self.strip = QListView()
        self.strip.setModel(self.strip_model)
        self.strip.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.strip.setViewMode(QListView.ViewMode.ListMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setUniformItemSizes(True)
        self.strip.setLayoutMode(QListView.LayoutMode.Batched)  # big projects lay out a piece at a time
        self.strip.setBatchSize(400)
        self.strip.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.strip.setSpacing(2)
        self.strip.setFixedHeight(THUMB_SIZE + 12 + self.strip.horizontalScrollBar().sizeHint().height() + 4)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setToolTip("Click a picture to explain the model's answer for it")
        self.strip.clicked.connect(self._on_strip_clicked)
        self.strip.horizontalScrollBar().valueChanged.connect(lambda _v: self._thumb_timer.start())
        self.strip.horizontalScrollBar().rangeChanged.connect(lambda _a, _b: self._thumb_timer.start())
        self.open_image_button = QPushButton("Open image…")
        self.open_image_button.setToolTip("Explain any picture file, from the project or elsewhere")
        self.open_image_button.clicked.connect(self._on_open_image_button_clicked)
        self.no_project_hint = _muted("No project is open. Use “Open image…” to explain any picture, or open a "
                                      "project to pick from its images here.")
        self.images_label = QLabel("Images:")
        chooser = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.images_label)
        left.addWidget(self.class_combo)
        left.addStretch(1)
        chooser.addLayout(left)
        chooser.addWidget(self.strip, 1)
        chooser.addWidget(self.no_project_hint, 1)
        right = QVBoxLayout()
        right.addWidget(self.open_image_button)
        right.addStretch(1)
        chooser.addLayout(right)

        # ---- left column: image, prediction, layers
        self.preview = ImageView("Choose an image above", min_side=160)
        self.preview.setMinimumHeight(180)
        self.image_name = QLabel("")
        self.image_name.setWordWrap(True)
        self.image_name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pred_title = QLabel("Prediction")
        pf = self.pred_title.font()
        pf.setBold(True)
        self.pred_title.setFont(pf)
        self.pred_rows: list[tuple[QLabel, QProgressBar]] = []
        pred_grid = QGridLayout()
        pred_grid.setContentsMargins(0, 0, 0, 0)
        pred_grid.setVerticalSpacing(2)
        for i in range(3):
            name, bar = QLabel(""), QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setMaximumHeight(16)
            bar.setFormat("")
            name.setMinimumWidth(60)
            pred_grid.addWidget(name, i, 0)
            pred_grid.addWidget(bar, i, 1)
            self.pred_rows.append((name, bar))
        pred_grid.setColumnStretch(1, 1)
        self.pred_note = _muted("")
        image_box = QGroupBox("Image")
        il = QVBoxLayout(image_box)
        il.addWidget(self.preview, 1)
        il.addWidget(self.image_name)
        il.addWidget(self.pred_title)
        il.addLayout(pred_grid)
        il.addWidget(self.pred_note)

        self.layer_table = QTableWidget(0, 3)
        self.layer_table.setHorizontalHeaderLabels(["Layer", "Kernel", "Output"])
        self.layer_table.horizontalHeaderItem(2).setToolTip("Response maps: channels × height × width")
        self.layer_table.verticalHeader().hide()
        self.layer_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.layer_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.layer_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.layer_table.setAlternatingRowColors(True)
        self.layer_table.setWordWrap(False)
        self.layer_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        hh = self.layer_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.layer_table.setToolTip("The network's convolution layers, from the pixels (top) to the last one. "
                                    "Pick a layer to see its filters, its response maps and what its filters "
                                    "look for.")
        self.layer_table.itemSelectionChanged.connect(self._on_layer_table_selection_changed)
        layers_box = QGroupBox("Convolution layers")
        ll = QVBoxLayout(layers_box)
        ll.addWidget(self.layer_table)

        left_split = QSplitter(Qt.Orientation.Vertical)
        left_split.addWidget(image_box)
        left_split.addWidget(layers_box)
        left_split.setStretchFactor(0, 3)
        left_split.setStretchFactor(1, 2)
        left_split.setChildrenCollapsible(False)

        # ---- tabs
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_filters_tab(), "Filters")
        self.tabs.addTab(self._build_maps_tab(), "Response maps")
        self.tabs.addTab(self._build_saliency_tab(), "Saliency")
        self.tabs.addTab(self._build_maximize_tab(), "What filters look for")
        self.tabs.addTab(self.kernels, "Kernels")
        self.tabs.addTab(self.embedding, "Embedding map")
        self.tabs.setTabToolTip(self.TAB_FILTERS, "The learned filters (kernels) of the convolution layers")
        self.tabs.setTabToolTip(self.TAB_MAPS, "What each filter of the chosen layer finds in this image")
        self.tabs.setTabToolTip(self.TAB_SALIENCY, "Where did the model look? Three methods side by side")
        self.tabs.setTabToolTip(self.TAB_MAXIMIZE, "Pictures made to excite one filter as much as possible")
        self.tabs.setTabToolTip(self.TAB_KERNELS, "Try classic hand-made image filters on this picture")
        self.tabs.setTabToolTip(self.TAB_EMBEDDING, "Every project image placed by how the model sees it")
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left_split)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        left_split.setMinimumWidth(280)
        split.setSizes([380, 1000])

        self.status = _muted("", wrap=False)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 4)
        outer.setSpacing(6)
        outer.addWidget(self.banner)
        outer.addLayout(model_row)
        outer.addLayout(chooser)
        outer.addWidget(split, 1)
        outer.addWidget(self.status)
        self.setStyleSheet("QLabel#muted { color: palette(placeholder-text); }")

    def _build_filters_tab(self) -> QWidget:
        self.first_view = ImageView("", pixelated=True)
        self.first_caption = _muted("")
        first_box = QGroupBox("First layer: what the network looks for in the pixels")
        fl = QVBoxLayout(first_box)
        fl.addWidget(self.first_caption)
        fl.addWidget(self.first_view, 1)

        self.in_channel = QSpinBox()
        self.in_channel.setMinimum(-1)
        self.in_channel.setSpecialValueText("all (average)")
        self.in_channel.setToolTip("A filter of a deeper layer reads every response map of the layer before "
                                   "(its input channels). Show the part of each filter that reads one input "
                                   "channel, or the average over all of them.")
        self.in_channel.valueChanged.connect(lambda _v: self._refresh())
        self.layer_filters_view = ImageView("", pixelated=True)
        self.layer_filters_caption = _muted("")
        self.layer_filters_box = QGroupBox("Chosen layer")
        cl = QVBoxLayout(self.layer_filters_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Input channel:"))
        row.addWidget(self.in_channel)
        row.addStretch(1)
        cl.addLayout(row)
        cl.addWidget(self.layer_filters_caption)
        cl.addWidget(self.layer_filters_view, 1)

        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(_muted(TIPS["filters"]))
        boxes = QSplitter(Qt.Orientation.Vertical)
        boxes.addWidget(first_box)
        boxes.addWidget(self.layer_filters_box)
        boxes.setChildrenCollapsible(False)
        lay.addWidget(boxes, 1)
        return tab

    def _build_maps_tab(self) -> QWidget:
        self.maps_title = QLabel("")
        f = self.maps_title.font()
        f.setBold(True)
        self.maps_title.setFont(f)
        self.maps_contrast = QComboBox()
        self.maps_contrast.addItem("each map on its own", "each")
        self.maps_contrast.addItem("one scale for all", "all")
        self.maps_contrast.setToolTip("Each map on its own: every map stretched to full brightness, so weak "
                                      "responses are visible too. One scale for all: strong and weak filters "
                                      "can be compared.")
        self.maps_contrast.currentIndexChanged.connect(lambda _i: self._refresh())
        self.maps_colours = QComboBox()
        self.maps_colours.addItem("inferno", "inferno")
        self.maps_colours.addItem("gray", "gray")
        self.maps_colours.addItem("jet", "jet")
        self.maps_colours.setToolTip("Colours for the response strength (dark: none, bright: strong)")
        self.maps_colours.currentIndexChanged.connect(lambda _i: self._refresh())
        self.maps_view = ImageView("", pixelated=True)
        self.maps_view.clickable = True
        self.maps_view.setToolTip("Click a map to see it large")
        self.maps_view.clicked.connect(self._on_maps_view_clicked)
        self.map_large = ImageView("Click a map on the left", pixelated=True, min_side=140)
        self.map_overlay = ImageView("", min_side=140)
        self.map_caption = _muted("")
        detail = QGroupBox("One map")
        dl = QVBoxLayout(detail)
        dl.addWidget(self.map_caption)
        dl.addWidget(self.map_large, 1)
        dl.addWidget(_muted("Laid over the photo:"))
        dl.addWidget(self.map_overlay, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.maps_title, 1)
        controls.addWidget(QLabel("Contrast:"))
        controls.addWidget(self.maps_contrast)
        controls.addWidget(QLabel("Colours:"))
        controls.addWidget(self.maps_colours)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.maps_view)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(_muted(TIPS["maps"]))
        lay.addLayout(controls)
        lay.addWidget(split, 1)
        return tab

    def _build_saliency_tab(self) -> QWidget:
        self.target_combo = QComboBox()
        self.target_combo.setMaxVisibleItems(20)
        self.target_combo.setMinimumContentsLength(22)
        self.target_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_combo.setToolTip("Which class to explain: the model's answer, or any other class "
                                     "(“why might this be a …?”). Classes are listed from most to least likely.")
        self.target_combo.activated.connect(self._on_target_combo_activated)
        self.cam_combo = QComboBox()
        self.cam_combo.setMinimumContentsLength(16)
        self.cam_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cam_combo.setToolTip("The layer Grad-CAM looks at. The last ones (the default) show where the "
                                  "evidence for the class is; earlier ones give finer but noisier maps.")
        self.cam_combo.currentIndexChanged.connect(lambda _i: self._refresh())
        self.smooth_box = QCheckBox("SmoothGrad")
        self.smooth_box.setToolTip("Average the gradients of 16 slightly noisy copies of the image: less "
                                   "speckle, 16 times the work")
        self.smooth_box.toggled.connect(lambda _b: self._refresh())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMaximumWidth(160)
        self.opacity.setToolTip("How strongly the maps cover the photo")
        self.opacity_label = QLabel("50%")
        self.opacity_label.setMinimumWidth(34)
        self.opacity.valueChanged.connect(self._on_opacity_value_changed)
        self.hot_only = QCheckBox("Colour only the hot spots")
        self.hot_only.setToolTip("Leave the photo bare where the map is cold")
        self.hot_only.toggled.connect(lambda _b: self._overlay_timer.start())
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Explain the class:"))
        controls.addWidget(self.target_combo, 2)
        controls.addSpacing(8)
        controls.addWidget(QLabel("Grad-CAM layer:"))
        controls.addWidget(self.cam_combo, 1)
        controls2 = QHBoxLayout()
        controls2.addWidget(self.smooth_box)
        controls2.addSpacing(12)
        controls2.addWidget(QLabel("Opacity:"))
        controls2.addWidget(self.opacity)
        controls2.addWidget(self.opacity_label)
        controls2.addWidget(self.hot_only)
        controls2.addStretch(1)

        self.original_panel = _Panel("Original", "What the model is shown.", "The picture, as chosen.")
        self.gradients_panel = _Panel(
            "Pixel gradients", "Pixels that change the score most.",
            "How much the class's score changes when each pixel changes a little (Simonyan et al.). "
            "Speckled by nature; SmoothGrad calms it.")
        self.cam_panel = _Panel(
            "Grad-CAM", "Where the layer found evidence for the class.",
            "The chosen layer's response maps, weighted by how much each one raises the class's score "
            "(Selvaraju et al.). Coarse, but clearly about this class.")
        self.occlusion_panel = _Panel(
            "Occlusion", "How much the probability drops when a gray patch hides each spot.",
            "A gray square is slid over the picture; where hiding it lowers the class's probability most, "
            "the map is hot (Zeiler & Fergus). Slow: one prediction per position.", stoppable=True)
        self.occlusion_panel.stop_button.clicked.connect(self._on_occlusion_stop_clicked)
        self.occlusion_panel.run_button.clicked.connect(self._on_occlusion_run_clicked)
        self.panels = {"gradients": self.gradients_panel, "cam": self.cam_panel, "occlusion": self.occlusion_panel}
        grid = _SaliencyGrid([self.original_panel, self.gradients_panel, self.cam_panel, self.occlusion_panel])
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(_muted(TIPS["saliency"]))
        lay.addLayout(controls)
        lay.addLayout(controls2)
        lay.addWidget(grid, 1)
        return tab

    def _build_maximize_tab(self) -> QWidget:
        self.max_layer_label = QLabel("")
        f = self.max_layer_label.font()
        f.setBold(True)
        self.max_layer_label.setFont(f)
        self.max_channels = QLineEdit("0-7")
        self.max_channels.setPlaceholderText("e.g. 0-7 or 3, 12, 40")
        self.max_channels.setToolTip(f"Which filters of the chosen layer: numbers and ranges, at most "
                                     f"{MAX_PATTERNS} at a time")
        self.max_channels.setMaximumWidth(200)
        self.max_channels.returnPressed.connect(self.start_maximize)
        first8 = QToolButton()
        first8.setText("First 8")
        first8.setToolTip("Filters 0 to 7")
        first8.clicked.connect(lambda: self.max_channels.setText("0-7"))
        next8 = QToolButton()
        next8.setText("Next 8")
        next8.setToolTip("The eight filters after the last one listed")
        next8.clicked.connect(self._on_next8_clicked)
        self.max_steps = QSpinBox()
        self.max_steps.setRange(8, 1000)
        self.max_steps.setValue(64)
        self.max_steps.setSingleStep(16)
        self.max_steps.setToolTip("Steps of gradient ascent per filter: more steps, clearer patterns, more time")
        self.max_size = QSpinBox()
        self.max_size.setRange(16, 512)
        self.max_size.setSingleStep(16)
        self.max_size.setSuffix(" px")
        self.max_size.setToolTip("Size of the pictures made. Smaller is faster.")
        self.max_stretch = QCheckBox("Boost contrast")
        self.max_stretch.setChecked(True)
        self.max_stretch.setToolTip("The patterns are often faint; stretch their contrast for display")
        self.max_start = QPushButton("Show what they look for")
        self.max_start.setToolTip("Make one picture per filter by gradient ascent (runs in the background)")
        self.max_start.clicked.connect(self.start_maximize)
        self.max_stop = QPushButton("Stop")
        self.max_stop.setToolTip("Stop making patterns; the ones already made stay")
        self.max_stop.setEnabled(False)
        for b in (self.max_start, self.max_stop):
            b.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.max_stop.clicked.connect(self.stop_maximize)
        self.max_progress = QProgressBar()
        self.max_progress.setTextVisible(True)
        self.max_progress.hide()
        self.max_status = _muted("")
        self.max_list = QListWidget()
        self.max_list.setViewMode(QListView.ViewMode.IconMode)
        self.max_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.max_list.setMovement(QListView.Movement.Static)
        self.max_list.setIconSize(QSize(144, 144))
        self.max_list.setGridSize(QSize(160, 172))
        self.max_list.setSpacing(4)
        self.max_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        row1 = QHBoxLayout()
        row1.addWidget(self.max_layer_label, 1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Filters:"))
        row2.addWidget(self.max_channels)
        row2.addWidget(first8)
        row2.addWidget(next8)
        row2.addSpacing(10)
        row2.addWidget(QLabel("Steps:"))
        row2.addWidget(self.max_steps)
        row2.addWidget(QLabel("Size:"))
        row2.addWidget(self.max_size)
        row2.addWidget(self.max_stretch)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        row3.addWidget(self.max_start)
        row3.addWidget(self.max_stop)
        row3.addWidget(self.max_progress, 10)
        row3.addStretch(1)
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(_muted(TIPS["maximize"]))
        lay.addLayout(row1)
        lay.addLayout(row2)
        lay.addLayout(row3)
        lay.addWidget(self.max_status)
        lay.addWidget(self.max_list, 1)
        return tab

    def _make_blank_icon(self) -> QIcon:
        pm = QPixmap(THUMB_SIZE, THUMB_SIZE)
        pm.fill(QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.fillRect(QRect(4, 4, THUMB_SIZE - 8, THUMB_SIZE - 8), QColor(128, 128, 128, 40))
        p.end()
        return QIcon(pm)

    # ================================================================== public API
    def set_model_path(self, path: str | os.PathLike | None) -> None:
        """Load a model file (None: the pretrained ImageNet model) on a worker. Until it is
        loaded the current model stays in use; a file that cannot be used leaves it so."""
        if self._closed:
            return
        path = os.fspath(path) if path is not None else None
        self._load_gen += 1
        gen = self._load_gen
        if self._load_job is not None:
            self._load_job.cancel()
        name = "the ImageNet model" if path is None else f"“{Path(path).name}”"
        self.model_busy.show()
        self.model_detail.setText(f"Loading {name}…")
        self._say(f"Loading model {name}…")
        if self.model is None:
            self.model_label.setText("Loading model…")
            for v in self._all_views():
                v.set_message("Loading model…")
        self._load_job = run_job(lambda state: _load_model_job(path, state),
                                 on_finished=lambda r: self._on_model_loaded(gen, path, r),
                                 on_failed=lambda m, tb: self._on_model_failed(gen, path, m))

    def set_project(self, root: str | os.PathLike | None, samples: list[tuple[str, str]] | None) -> None:
        """The project's images (path, class) to choose from; None: no project."""
        if self._closed:
            return
        self.project_root = os.fspath(root) if root is not None else None
        self.samples = [(os.fspath(p), str(c)) for p, c in (samples or [])]
        counts: dict[str, int] = {}
        for _, c in self.samples:  # classes in the order the project lists them
            counts[c] = counts.get(c, 0) + 1
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem(f"All classes ({len(self.samples)})", None)
        for c, n in counts.items():
            self.class_combo.addItem(f"{c} ({n})", c)
        self.class_combo.blockSignals(False)
        self._fill_strip()
        has = bool(self.samples)
        for w in (self.images_label, self.class_combo, self.strip):
            w.setVisible(has)
        self.no_project_hint.setVisible(not has)
        self._embedding_sent = None
        if self.image_path is None and self._requested_path is None and self.samples:
            self.set_image_path(self.samples[0][0])
        self._refresh()

    def set_image_path(self, path: str | os.PathLike) -> None:
        """Explain this picture (decoded on a worker; a bad file gives a message and the
        current picture stays)."""
        if self._closed:
            return
        path = os.fspath(path)
        self._requested_path = path
        self._decode(path)
        self._select_in_strip(path)

    def shutdown(self) -> None:
        """Cancel every job; late results are dropped. Call before the page goes away."""
        if self._closed:
            return
        self._closed = True
        self._load_gen += 1
        self._decode_gen += 1
        self._overlay_gen += 1
        self._map_detail_gen += 1
        for job in (self._load_job, self._decode_job, self._overlay_job, self._map_detail_job):
            if job is not None:
                job.cancel()
        for lane in self._lanes.values():
            lane.close()
        self._overlay_timer.stop()
        self._thumb_timer.stop()
        self.thumbs.close()
        for w in (self.kernels, self.embedding):
            stop = getattr(w, "shutdown", None)
            if stop is not None:
                stop()

    @property
    def busy(self) -> bool:
        """Anything still computing (for tests and the window's close)."""
        return (self._load_job is not None or self._decode_job is not None or self._overlay_job is not None
                or self._map_detail_job is not None or any(lane.busy for lane in self._lanes.values()))

    def select_layer(self, layer: int | str | E.LayerInfo) -> None:
        """Pick a layer as if clicked in the table: by index, name or module path."""
        info = E.find_layer(None, layer, self.layers) if not isinstance(layer, int) else self.layers[layer]
        self.layer_table.selectRow(self.layers.index(info))

    def set_target(self, class_index: int | None) -> None:
        """Explain this class (None: the predicted one), as if chosen in the combo."""
        self._chosen_target = -1 if class_index is None else int(class_index)
        i = self.target_combo.findData(self._chosen_target)
        if i >= 0:
            self.target_combo.setCurrentIndex(i)
        self._refresh()

    def set_cam_layer(self, layer: str | E.LayerInfo) -> None:
        path = layer.module_path if isinstance(layer, E.LayerInfo) else E.find_layer(None, layer, self.layers).module_path
        self.cam_combo.setCurrentIndex(self.cam_combo.findData(path))

    # ================================================================== model
    def _on_model_loaded(self, gen: int, path: str | None, result: dict) -> None:
        if gen != self._load_gen or self._closed:
            return
        self._load_job = None
        self.model_busy.hide()
        for lane in self._lanes.values():
            lane.close()  # running jobs of the old model end on their own; their results are dropped
        self._model_gen += 1
        model = result["model"]
        self.model, self.model_path = model, path
        self.layers = result["layers"]
        self._cam_default = result["cam_layer"]
        replicas = result["replicas"]
        self._lanes = {"quick": _Lane("quick", model, self._update_status),
                       "occlusion": _Lane("occlusion", replicas["occlusion"], self._update_status),
                       "maximize": _Lane("maximize", replicas["maximize"], self._update_status)}
        self._embedding_model = replicas["embedding"]
        self._embedding_sent = None
        self._input = None  # made for the previous model's size and channels; decoded again below
        self._reset_results()
        self._chosen_target = -1
        # model description
        if path is None:
            name, detail = "ImageNet (EfficientNet-Lite0)", "pretrained · 1000 everyday classes"
        else:
            name = Path(path).name
            recipe = {"scratch": "from scratch", "transfer": "transfer learning", "finetune": "fine-tuned",
                      "imagenet": "ImageNet"}.get(model.recipe, model.recipe)
            n = len(model.classes)
            detail = f"{recipe} · {n} class{'es' if n != 1 else ''}"
        params = result["parameters"]
        detail += f" · {model.image_size} × {model.image_size} px · {len(self.layers)} conv layers"
        if params:
            detail += f" · {params / 1e6:.1f} M parameters" if params >= 1e6 else f" · {params:,} parameters"
        self.model_label.setText(name)
        self._model_detail_text = detail
        self.model_detail.setText(detail)
        self.model_label.setToolTip(path or "EfficientNet-Lite0 pretrained on ImageNet")
        self._fill_layer_table()
        self._fill_cam_combo()
        self.max_size.setValue(min(model.image_size, 128))
        self.banner.hide()
        self._say(f"Model {name} loaded")
        self.model_loaded.emit(name)
        path_now = self._requested_path or self.image_path
        if path_now:
            self._decode(path_now)  # its input depends on the model's size and channels
        else:
            self._refresh()

    def _on_model_failed(self, gen: int, path: str | None, message: str) -> None:
        if gen != self._load_gen or self._closed:
            return
        self._load_job = None
        self.model_busy.hide()
        name = "the ImageNet model" if path is None else f"the model file “{Path(path).name}”"
        text = f"Could not open {name}: {message}"
        if self.model is not None:
            text += " The previous model is still in use."
            self.model_detail.setText(self._model_detail_text)
        else:
            self.model_label.setText("No model")
            self.model_detail.setText("")
            self._show_no_model()
        self.banner.show_message(text, "error")
        self._say(text)
        self.model_failed.emit(text)

    def _show_no_model(self) -> None:
        msg = "Open a model file, or use the ImageNet model, to see what it learned."
        for v in self._all_views():
            v.set_message(msg)
        self.layer_filters_box.setTitle("Chosen layer")
        self.maps_title.setText("")
        self.max_layer_label.setText("")

    def _all_views(self) -> list[ImageView]:
        return [self.first_view, self.layer_filters_view, self.maps_view, self.gradients_panel.view,
                self.cam_panel.view, self.occlusion_panel.view]

    def _reset_results(self) -> None:
        self.first_filters = self.chosen_filters = self.maps = None
        self.heat.clear()
        self._heat_ctx.clear()
        self.overlays.clear()
        self._done.clear()
        self._asked.clear()
        self._stopped.clear()
        self.selected_map = None
        self._maps_geometry = None
        self.probabilities = None
        self.predicted = None
        self._pred_ctx = None
        self._clear_prediction()
        self.target_combo.clear()
        self.patterns.clear()
        self._patterns_layer = None
        self.max_list.clear()
        self.max_status.setText("")
        self.max_progress.hide()
        self.max_start.setEnabled(True)
        self.max_stop.setEnabled(False)
        self.map_large.set_message("Click a map on the left")
        self.map_overlay.set_message("")
        self.map_caption.setText("")
        for panel in self.panels.values():
            panel.idle()
            panel.run_button.hide()
        for v in self._all_views():
            v.set_message("")

    def _fill_layer_table(self) -> None:
        t = self.layer_table
        t.blockSignals(True)
        t.setRowCount(len(self.layers))
        for r, info in enumerate(self.layers):
            kh, kw = info.kernel_size
            cells = (info.name, f"{kh}×{kw}", "×".join(str(v) for v in info.output_shape))
            tips = (f"{info.name}: {info.out_channels} filters reading {info.in_channels} channels",
                    "Each filter is a small window of this size" +
                    (" that looks at one channel only (depthwise)" if info.kind == "depthwise" else ""),
                    f"{info.output_shape[0]} response maps of {info.output_shape[1]} × {info.output_shape[2]} "
                    f"for a {self.model.image_size} px input")
            for c, (text, tip) in enumerate(zip(cells, tips)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(r, c, item)
        t.blockSignals(False)
        self.current_layer = self.layers[0] if self.layers else None
        if self.layers:
            t.selectRow(0)
        self._on_layer_changed()

    def _fill_cam_combo(self) -> None:
        self.cam_combo.blockSignals(True)
        self.cam_combo.clear()
        for info in self.layers:
            if info.output_shape[1] > 1 and info.output_shape[2] > 1:
                self.cam_combo.addItem(f"{info.name}  ({info.output_shape[1]}×{info.output_shape[2]})",
                                       info.module_path)
        if self._cam_default is not None:
            self.cam_combo.setCurrentIndex(max(0, self.cam_combo.findData(self._cam_default.module_path)))
        self.cam_combo.blockSignals(False)

    def _layer_by_path(self, path: str | None) -> E.LayerInfo | None:
        return next((i for i in self.layers if i.module_path == path), None)

    # ================================================================== image
    def _decode(self, path: str) -> None:
        self._decode_gen += 1
        gen = self._decode_gen
        if self._decode_job is not None:
            self._decode_job.cancel()
        model_gen = self._model_gen
        size = self.model.image_size if self.model is not None else None
        channels = self.model.channels if self.model is not None else 3
        if self.image is None:
            self.preview.set_message("Opening…")
        self._decode_job = run_job(lambda state: _decode_job(path, size, channels, state),
                                   on_finished=lambda r: self._on_decoded(gen, model_gen, path, r),
                                   on_failed=lambda m, tb: self._on_decode_failed(gen, path, m))

    def _on_decoded(self, gen: int, model_gen: int, path: str, result: dict) -> None:
        if gen != self._decode_gen or self._closed:
            return
        self._decode_job = None
        if model_gen != self._model_gen:  # a new model arrived meanwhile: its input size may differ
            self._decode(path)
            return
        self._requested_path = None
        self.image_path = path
        self.image = result["rgb"]
        self._qimage = result["qimage"]
        self._input = result["input"]
        self._image_gen += 1
        self.probabilities = self.predicted = self._pred_ctx = None
        # Work queued or running for the previous picture is not wanted any more.
        for lane, key in (("quick", "maps"), ("quick", "gradients"), ("quick", "cam"),
                          ("occlusion", "occlusion")):
            if lane in self._lanes:
                self._lanes[lane].cancel(key)
            self._asked.pop(key, None)
        self.preview.set_image(self._qimage)
        label = next((c for p, c in self.samples if p == path), None)
        w, h = result["original_size"]
        self.image_name.setText(f"<b>{Path(path).name}</b>" + (f" · labelled <b>{label}</b>" if label else "") +
                                f"<br><span style='color: gray'>{w} × {h} px</span>")
        self.image_name.setToolTip(path)
        self.original_panel.view.set_image(self._qimage)
        if self.model is not None:
            s = self.model.image_size
            self.original_panel.caption.setText(f"Resized to {s} × {s} for the model.")
        self._select_in_strip(path)
        self._clear_prediction("Predicting…" if self.model is not None else "")
        if self.model is not None:
            self._predict()
        self._refresh()

    def _on_decode_failed(self, gen: int, path: str, message: str) -> None:
        if gen != self._decode_gen or self._closed:
            return
        self._decode_job = None
        self._requested_path = None
        text = f"Could not open the image “{Path(path).name}”: {message}"
        if self.image is not None:
            text += " The previous image is still shown."
        else:
            self.preview.set_message("Choose an image above")
        self.banner.show_message(text, "error")
        self._say(text)
        if self.image_path:
            self._select_in_strip(self.image_path)

    def _clear_prediction(self, note: str = "") -> None:
        for name, bar in self.pred_rows:
            name.setText("")
            bar.setValue(0)
            bar.setFormat("")
            bar.setVisible(False)
        self.pred_note.setText(note)

    def _predict(self) -> None:
        ctx = (self._model_gen, self._image_gen)
        x = self._input
        self._lanes["quick"].submit("predict", lambda model, state: E.predict_target(model, x),
                                    on_finished=lambda r: self._on_predicted(ctx, r),
                                    on_failed=lambda m, tb: self._on_view_failed("prediction", m))

    def _on_predicted(self, ctx: tuple, result) -> None:
        if ctx != (self._model_gen, self._image_gen):
            return
        idx, probs = result
        self.predicted, self.probabilities, self._pred_ctx = int(idx), np.asarray(probs), ctx
        classes = self.model.classes
        order = np.argsort(-self.probabilities)
        for (name, bar), i in zip(self.pred_rows, order[:3]):
            p = float(self.probabilities[i])
            name.setText(classes[i])
            name.setToolTip(classes[i])
            bar.setValue(int(round(p * 1000)))
            bar.setFormat(percent(p))
            bar.setVisible(True)
        top = float(self.probabilities[idx])
        if top < self.model.unsure_threshold:
            self.pred_note.setText(f"Not sure: the best guess is under {percent(self.model.unsure_threshold)}.")
        else:
            self.pred_note.setText("")
        self._fill_target_combo()
        self.result_shown.emit("prediction")
        self._refresh()

    def _fill_target_combo(self) -> None:
        combo = self.target_combo
        combo.blockSignals(True)
        combo.clear()
        classes, probs = self.model.classes, self.probabilities
        combo.addItem(f"Predicted: {classes[self.predicted]} ({percent(float(probs[self.predicted]))})", -1)
        combo.insertSeparator(1)
        for i in np.argsort(-probs):
            combo.addItem(f"{classes[i]} — {percent(float(probs[i]))}", int(i))
        combo.setCurrentIndex(max(0, combo.findData(self._chosen_target)))
        combo.blockSignals(False)

    def _target(self) -> int | None:
        if self.predicted is None:
            return None
        return self.predicted if self._chosen_target < 0 else self._chosen_target

    # ================================================================== strip of project images
    def _fill_strip(self) -> None:
        cls = self.class_combo.currentData()
        self.strip_model.set_rows([(p, c) for p, c in self.samples if cls is None or c == cls])
        self._thumb_timer.start()
        if self.image_path:
            self._select_in_strip(self.image_path)

    def _select_in_strip(self, path: str) -> None:
        row = self.strip_model.row_of(path)
        sel = self.strip.selectionModel()
        sel.blockSignals(True)
        if row is not None:
            index = self.strip_model.index(row)
            self.strip.setCurrentIndex(index)
            self.strip.scrollTo(index)
        else:
            self.strip.clearSelection()
        sel.blockSignals(False)
        self.strip.viewport().update()

    def _request_visible_thumbnails(self) -> None:
        n = self.strip_model.rowCount()
        if self._closed or n == 0:
            return
        vp = self.strip.viewport().rect()
        first = self.strip.indexAt(vp.topLeft() + QPoint(THUMB_SIZE // 2, THUMB_SIZE // 2))
        start = max(0, first.row()) if first.isValid() else 0
        per_view = vp.width() // (THUMB_SIZE + 4) + 2
        for row in range(start, min(n, start + per_view)):
            path = self.strip_model.path(row)
            if not self.strip_model.has_icon(path):
                self.thumbs.request_thumbnail(path)

    def _on_thumbs_thumbnail_ready(self, path: str, image: QImage) -> None:
        if max(image.width(), image.height()) < THUMB_SIZE:  # tiny pictures: enlarged, pixels sharp
            image = image.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.FastTransformation)
        self.strip_model.set_icon(path, QIcon(QPixmap.fromImage(image)))

    def _on_class_combo_changed(self, _i: int) -> None:
        self._fill_strip()

    def _on_strip_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.set_image_path(self.strip_model.path(index.row()))

    def _on_open_image_button_clicked(self) -> None:
        start = os.path.dirname(self.image_path) if self.image_path else (self.project_root or "")
        path, _ = QFileDialog.getOpenFileName(self, "Open an image to explain", start, IMAGE_FILTER)
        if path:
            self.set_image_path(path)

    def _on_open_model_button_clicked(self) -> None:
        start = os.path.dirname(self.model_path) if self.model_path else (self.project_root or "")
        path, _ = QFileDialog.getOpenFileName(self, "Open a model to explain", start,
                                              "PonyClassifier models (*.pony);;All files (*)")
        if path:
            self.set_model_path(path)

    def _on_embedding_image_activated(self, path: str) -> None:
        self.open_image_requested.emit(path)
        self.set_image_path(path)

    # ================================================================== layers
    def _on_layer_table_selection_changed(self) -> None:
        rows = {i.row() for i in self.layer_table.selectedIndexes()}
        if not rows or not self.layers:
            return
        info = self.layers[min(rows)]
        if info != self.current_layer:
            self.current_layer = info
            self._on_layer_changed()

    def _on_layer_changed(self) -> None:
        info = self.current_layer
        if info is None:
            return
        per_filter = info.in_channels // max(info.groups, 1)
        self.in_channel.blockSignals(True)
        self.in_channel.setMaximum(per_filter - 1 if per_filter > 1 else -1)
        self.in_channel.setValue(-1)
        self.in_channel.setEnabled(per_filter > 1)
        self.in_channel.setSpecialValueText("all (colour)" if per_filter == 3 else
                                            "its own channel" if per_filter == 1 else "all (average)")
        self.in_channel.blockSignals(False)
        self.layer_filters_box.setTitle(f"Chosen layer: {info.name}")
        self.max_layer_label.setText(f"Layer: {info.name} · {info.out_channels} filters "
                                     f"(pick another layer in the table on the left)")
        self.selected_map = None
        self._refresh()

    # ================================================================== computing what is shown
    def _ctx(self, view: str) -> tuple | None:
        """What ``view`` shows depends on; None while something it needs is missing."""
        if self.model is None:
            return None
        mg = self._model_gen
        layer = self.current_layer
        if view == "first_filters":
            return (mg,) if self.layers else None
        if view == "layer_filters":
            return (mg, layer.module_path, self.in_channel.value()) if layer else None
        if self._input is None:
            return None
        if view == "maps":
            return (mg, self._image_gen, layer.module_path, self.maps_contrast.currentData(),
                    self.maps_colours.currentData()) if layer else None
        target = self._target()
        if target is None or self._pred_ctx != (mg, self._image_gen):
            return None
        if view == "gradients":
            return (mg, self._image_gen, target, self.smooth_box.isChecked())
        if view == "cam":
            path = self.cam_combo.currentData()
            return (mg, self._image_gen, target, path) if path else None
        if view == "occlusion":
            return (mg, self._image_gen, target)
        raise KeyError(view)

    def _settle(self, view: str, ctx: tuple) -> bool:
        """A result for ``view`` made for ``ctx`` arrived: True if it is still what is wanted."""
        if self._asked.get(view) == ctx:
            del self._asked[view]
        return not self._closed and ctx == self._ctx(view)

    def _needs(self, view: str) -> tuple | None:
        ctx = self._ctx(view)
        if ctx is None or self._done.get(view) == ctx or self._asked.get(view) == ctx:
            return None
        return ctx

    def _refresh(self) -> None:
        """Start the work the current tab needs (and nothing for hidden tabs)."""
        if self._closed:
            return
        tab = self.tabs.currentIndex()
        if tab == self.TAB_KERNELS and self.image is not None and self._kernels_image_gen != self._image_gen:
            self._kernels_image_gen = self._image_gen
            self.kernels.set_image(self.image)
        if tab == self.TAB_EMBEDDING:
            self._send_embedding()
        if self.model is None:
            return
        if tab == self.TAB_FILTERS:
            self._request_filters("first_filters")
            self._request_filters("layer_filters")
        elif tab == self.TAB_MAPS:
            self._request_maps()
        elif tab == self.TAB_SALIENCY:
            self._request_saliency()
        self._update_status()

    def _on_tabs_current_changed(self, _i: int) -> None:
        self._refresh()

    def _on_view_failed(self, what: str, message: str) -> None:
        text = f"Could not compute the {what}: {message}"
        self.banner.show_message(text, "error")
        self._say(text)

    # ---- filters
    def _request_filters(self, which: str) -> None:
        """Compute the filter grid of the first layer (``which="first_filters"``) or of the
        chosen layer and input channel (``"layer_filters"``) on the quick lane."""
        ctx = self._needs(which)
        if ctx is None:
            return
        self._asked[which] = ctx
        if which == "first_filters":
            info, ch, view = self.layers[0], -1, self.first_view
        else:
            info, ch, view = self.current_layer, self.in_channel.value(), self.layer_filters_view

        def work(model, state):
            f = E.layer_filters(model, info, in_channel=None if ch < 0 else ch)
            grid, cols, scale = kernel_grid(f)
            return f, to_qimage(grid), scale

        view.set_message("Computing…", keep_image=True)
        self._lanes["quick"].submit(which, work,
                                    on_finished=lambda r: self._on_filters(which, ctx, info, ch, r),
                                    on_failed=lambda m, tb: self._on_view_failed("filters", m))

    def _on_filters(self, which: str, ctx: tuple, info: E.LayerInfo, ch: int, result) -> None:
        if not self._settle(which, ctx):
            return
        f, img, scale = result
        self._done[which] = ctx
        n, kh, kw, c = f.shape
        if which == "first_filters":
            self.first_filters = f
            self.first_view.set_image(img)
            colour = "colour" if c == 3 else "gray"
            self.first_caption.setText(f"{info.name}: {n} {colour} filters of {kh} × {kw} pixels, shown "
                                       f"{scale} times larger. Bright: the filter likes light there, dark: it "
                                       f"likes dark there.")
            self.result_shown.emit(which)
            return
        self.chosen_filters = f
        self.layer_filters_view.set_image(img)
        per_filter = info.in_channels // max(info.groups, 1)
        if info.groups > 1 and per_filter == 1:
            what = (f"{n} depthwise filters of {kh} × {kw}: each looks at one channel only, so there is "
                    f"one kernel per channel")
        elif ch >= 0:
            what = f"{n} filters of {kh} × {kw}, the part that reads input channel {ch} of {per_filter}"
        elif c == 3:
            what = f"{n} colour filters of {kh} × {kw}"
        elif per_filter == 1:
            what = f"{n} filters of {kh} × {kw}"
        else:
            what = f"{n} filters of {kh} × {kw}, averaged over their {per_filter} input channels"
        if (kh, kw) == (1, 1):
            what += (". A 1 × 1 filter has no spatial pattern: it mixes the channels at each spot, so each "
                     "square is a single weight")
        self.layer_filters_caption.setText(what + ".")
        self.result_shown.emit(which)

    # ---- response maps
    def _request_maps(self) -> None:
        ctx = self._needs("maps")
        if ctx is None:
            if self._input is None and self.image is None:
                self.maps_view.set_message("Choose an image above to see what this layer finds in it.")
            return
        self._asked["maps"] = ctx
        info, x = self.current_layer, self._input
        normalise, colours = self.maps_contrast.currentData(), self.maps_colours.currentData()

        def work(model, state):
            maps = E.activations(model, x, info)
            state.check()
            grid, cols, pad = maps_grid(maps, normalise, colours)
            return maps, to_qimage(grid), cols, pad

        self.maps_view.set_message(f"Computing the response maps of {info.name}…", keep_image=True)
        self._lanes["quick"].submit("maps", work, on_finished=lambda r: self._on_maps(ctx, info, r),
                                    on_failed=lambda m, tb: self._on_view_failed("response maps", m))

    def _on_maps(self, ctx: tuple, info: E.LayerInfo, result) -> None:
        if not self._settle("maps", ctx):
            return
        maps, img, cols, pad = result
        same_maps = self.maps is not None and self._done.get("maps", ())[:3] == ctx[:3]
        self.maps = maps
        self._done["maps"] = ctx
        n, h, w = maps.shape
        self._maps_geometry = (cols, pad, h, w)
        self.maps_view.set_image(img)
        self.maps_title.setText(f"{info.name}: {n} channel{'s' if n != 1 else ''} (response maps) of "
                                f"{h} × {w}")
        if not same_maps or self.selected_map is None or self.selected_map >= n:
            # Start with the map with the most contrast: it shows where, not just how much.
            self.selected_map = int(np.argmax(maps.reshape(n, -1).std(1)))
        self.show_map(self.selected_map)
        self.result_shown.emit("maps")

    def _on_maps_view_clicked(self, x: int, y: int) -> None:
        if self.maps is None or self._maps_geometry is None:
            return
        cols, pad, h, w = self._maps_geometry
        c, r = x // (w + pad), y // (h + pad)
        if x % (w + pad) >= w or y % (h + pad) >= h or c >= cols:
            return
        i = r * cols + c
        if i < len(self.maps):
            self.show_map(i)

    def show_map(self, index: int) -> None:
        """Show response map ``index`` of the current layer large, and laid over the photo."""
        if self.maps is None or not 0 <= index < len(self.maps):
            return
        self.selected_map = index
        if self._maps_geometry is not None:
            cols, pad, h, w = self._maps_geometry
            r, c = divmod(index, cols)
            self.maps_view.set_highlight(QRect(c * (w + pad), r * (h + pad), w, h))
        m = self.maps[index]
        n = len(self.maps)
        self.map_caption.setText(f"Channel {index} of {n} (0–{n - 1}) · strongest {float(m.max()):.3g}, "
                                 f"average {float(m.mean()):.3g}")
        self._map_detail_gen += 1
        gen = self._map_detail_gen
        colours, photo = self.maps_colours.currentData(), self.image

        def work(state):
            u = unit_map(m)
            large = E.apply_colormap(u, colours)
            over = E.overlay(photo, u, 0.6, colormap="jet", weight_by_heat=True) if photo is not None else None
            return to_qimage(large), (to_qimage(over) if over is not None else None)

        if self._map_detail_job is not None:
            self._map_detail_job.cancel()
        self._map_detail_job = run_job(work, on_finished=lambda r: self._on_map_detail(gen, r),
                                       on_failed=lambda m, tb: self._on_map_detail(gen, None))

    def _on_map_detail(self, gen: int, result) -> None:
        if gen != self._map_detail_gen:
            return
        self._map_detail_job = None
        if result is None:
            return
        large, over = result
        self.map_large.set_image(large)
        if over is not None:
            self.map_overlay.set_image(over)
        self.result_shown.emit("map")

    # ---- saliency
    def _request_saliency(self) -> None:
        if self.image is None:
            for panel in self.panels.values():
                panel.view.set_message("Choose an image above.")
            return
        if self._pred_ctx != (self._model_gen, self._image_gen):
            for panel in self.panels.values():
                panel.view.set_message("Waiting for the prediction…", keep_image=True)
            return
        for view in ("gradients", "cam", "occlusion"):
            ctx = self._needs(view)
            if ctx is None:
                continue
            if view == "occlusion" and self._stopped.get(view) == ctx:
                continue  # stopped by the user for this very image and class: only the button restarts it
            self._request_heat(view, ctx)

    def _request_heat(self, view: str, ctx: tuple) -> None:
        self._asked[view] = ctx
        self._stopped.pop(view, None)
        x, target = self._input, ctx[2]
        panel = self.panels[view]
        lane = self._lanes["occlusion" if view == "occlusion" else "quick"]
        if view == "gradients":
            smooth = 16 if ctx[3] else 0

            def work(model, state):
                return E.vanilla_gradients(model, x, target=target, smooth=smooth, progress=state.progress,
                                           should_stop=lambda: state.cancelled)
        elif view == "cam":
            layer = self._layer_by_path(ctx[3])

            def work(model, state):
                return E.grad_cam(model, x, target=target, layer_name=layer)
        else:
            def work(model, state):
                # The raw drop in probability, so the caption can say how much hiding a spot
                # matters; the map itself is scaled to its largest drop for display.
                raw = E.occlusion(model, x, target=target, normalise=False, progress=state.progress,
                                  should_stop=lambda: state.cancelled)
                top = float(raw.max())
                return (raw / top if top > 0 else raw), top

        panel.busy(text="Computing…" if view != "occlusion" else "Computing occlusion…")
        lane.submit(view, work, on_finished=lambda r: self._on_heat(view, ctx, r),
                    on_failed=lambda m, tb: self._on_heat_failed(view, ctx, m),
                    on_progress=lambda d, t: self._on_heat_progress(view, ctx, d, t))
        self._update_status()

    def _on_heat_progress(self, view: str, ctx: tuple, done: int, total: int) -> None:
        if self._asked.get(view) == ctx:
            self.panels[view].busy(done, total, f"{done} of {total}…" if view == "occlusion" else "Computing…")

    def _on_heat(self, view: str, ctx: tuple, heat) -> None:
        if not self._settle(view, ctx):
            self._update_status()
            return
        panel = self.panels[view]
        panel.idle()
        if view == "occlusion":
            heat, top = heat
            p = float(self.probabilities[ctx[2]])
            panel.caption.setText(
                f"Hiding one spot lowers the probability ({percent(p)}) by at most {top * 100:.1f} points."
                if top > 0 else "Hiding any one spot does not lower the probability.")
        else:
            panel.caption.setText(panel.base_caption)
        self._done[view] = ctx
        self.heat[view] = np.asarray(heat, dtype=np.float32)
        self._heat_ctx[view] = ctx
        self._overlay_timer.start()
        self._update_status()
        self.result_shown.emit(view)

    def _on_heat_failed(self, view: str, ctx: tuple, message: str) -> None:
        if not self._settle(view, ctx):
            self._update_status()
            return
        panel = self.panels[view]
        panel.idle()
        panel.view.set_message(f"Could not compute this map: {message}")
        self._say(f"{panel.title.text()}: {message}")
        self._update_status()

    def _on_occlusion_stop_clicked(self) -> None:
        self.stop_occlusion()

    def stop_occlusion(self) -> None:
        """Stop the occlusion map being computed (it stays stopped for this image and class)."""
        ctx = self._asked.pop("occlusion", None)
        if "occlusion" in self._lanes:
            self._lanes["occlusion"].cancel("occlusion")
        if ctx is None:
            return
        self._stopped["occlusion"] = ctx
        panel = self.occlusion_panel
        panel.idle()
        panel.run_button.setText("Compute again")
        panel.run_button.show()
        panel.view.set_message("Stopped.", keep_image=bool(panel.view.image()))
        self._say("Occlusion stopped")
        self._update_status()

    def _on_occlusion_run_clicked(self) -> None:
        self._stopped.pop("occlusion", None)
        self.occlusion_panel.run_button.hide()
        self._refresh()

    def _on_target_combo_activated(self, index: int) -> None:
        data = self.target_combo.itemData(index)
        self._chosen_target = -1 if data is None else int(data)
        self._refresh()

    def _on_opacity_value_changed(self, v: int) -> None:
        self.opacity_label.setText(f"{v}%")
        self._overlay_timer.start()

    def _compute_overlays(self) -> None:
        """Paint every current heat map over the photo (core.explain.overlay), on a worker."""
        if self._closed or self.image is None:
            return
        current = {k: v for k, v in self.heat.items()
                   if self._heat_ctx.get(k) is not None and self._heat_ctx[k][:2] == (self._model_gen, self._image_gen)}
        if not current:
            return
        self._overlay_gen += 1
        gen = self._overlay_gen
        photo, alpha, hot = self.image, self.opacity.value() / 100.0, self.hot_only.isChecked()
        ctxs = {k: self._heat_ctx[k] for k in current}

        def work(state):
            out = {}
            for k, h in current.items():
                state.check()
                o = E.overlay(photo, h, alpha, weight_by_heat=hot)
                out[k] = (o, to_qimage(o))
            return out

        if self._overlay_job is not None:
            self._overlay_job.cancel()
        self._overlay_job = run_job(work, on_finished=lambda r: self._on_overlays(gen, ctxs, r),
                                    on_cancelled=lambda: self._on_overlay_job_ended(gen),
                                    on_failed=lambda m, tb: self._on_overlay_job_ended(gen))

    def _on_overlay_job_ended(self, gen: int) -> None:
        if gen == self._overlay_gen:
            self._overlay_job = None

    def _on_overlays(self, gen: int, ctxs: dict, result: dict) -> None:
        if gen != self._overlay_gen or self._closed:
            return
        self._overlay_job = None
        for k, (arr, img) in result.items():
            if self._heat_ctx.get(k) != ctxs[k]:
                continue
            self.overlays[k] = arr
            panel = self.panels[k]
            panel.view.set_image(img)
            if self._asked.get(k) is not None:  # a newer map is on its way
                panel.view.set_message(panel.view.message() or "Computing…", keep_image=True)
        self._caption_panels()
        self.result_shown.emit("overlays")

    def _caption_panels(self) -> None:
        if self.model is None or self.predicted is None:
            return
        cls = self.model.classes
        for k, panel in self.panels.items():
            ctx = self._heat_ctx.get(k)
            if ctx is None:
                continue
            what = cls[ctx[2]] if 0 <= ctx[2] < len(cls) else "?"
            extra = ""
            if k == "cam":
                layer = self._layer_by_path(ctx[3])
                extra = f" · layer {layer.name}" if layer else ""
            elif k == "gradients" and ctx[3]:
                extra = " · SmoothGrad"
            panel.title.setText(f"{panel.base_title} — {what}{extra}")

    # ---- what filters look for
    def _on_next8_clicked(self) -> None:
        n = self.current_layer.out_channels if self.current_layer else 8
        try:
            last = max(parse_channels(self.max_channels.text(), n, limit=10**6))
        except ValueError:
            last = -1
        a = last + 1 if last + 1 < n else 0
        self.max_channels.setText(f"{a}-{min(a + 7, n - 1)}")

    def start_maximize(self) -> None:
        """Make the pattern each chosen filter of the chosen layer looks for (on a worker;
        pictures appear as they are ready)."""
        if self.model is None or self.current_layer is None:
            self.max_status.setText("Open a model first.")
            return
        info = self.current_layer
        try:
            channels = parse_channels(self.max_channels.text(), info.out_channels)
        except ValueError as e:
            self.max_status.setText(str(e))
            return
        steps, size, stretch = self.max_steps.value(), self.max_size.value(), self.max_stretch.isChecked()
        ctx = (self._model_gen, info.module_path, tuple(channels), steps, size, stretch)
        self._asked["maximize"] = ctx
        self.patterns.clear()
        self._patterns_layer = info
        self.max_list.clear()
        self._max_items = {}
        for ch in channels:
            item = QListWidgetItem(self._blank_icon, f"filter {ch}")
            item.setToolTip(f"{info.name}, filter {ch}: computing…")
            self.max_list.addItem(item)
            self._max_items[ch] = item
        total = len(channels) * steps
        self.max_progress.setRange(0, total)
        self.max_progress.setValue(0)
        self.max_progress.setFormat(f"filter 1 of {len(channels)}")
        self.max_progress.show()
        self.max_start.setEnabled(False)
        self.max_stop.setEnabled(True)
        self.max_status.setText(f"Making the patterns of {len(channels)} filters of {info.name}…")

        def work(model, state):
            for i, ch in enumerate(channels):
                img = E.maximize_filter(model, info, ch, steps=steps, size=size, stretch=stretch, seed=ch,
                                        progress=lambda s, t, i=i: state.progress(i * steps + s, total),
                                        should_stop=lambda: state.cancelled)
                state.partial((ch, img, to_qimage(_enlarge(img, 144))))
            return len(channels)

        self._lanes["maximize"].submit("maximize", work,
                                       on_partial=lambda r: self._on_pattern(ctx, r),
                                       on_progress=lambda d, t: self._on_maximize_progress(ctx, len(channels),
                                                                                           steps, d, t),
                                       on_finished=lambda n: self._on_maximize_finished(ctx, n),
                                       on_failed=lambda m, tb: self._on_maximize_failed(ctx, m))
        self._update_status()

    def _on_maximize_progress(self, ctx, n: int, steps: int, done: int, total: int) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self.max_progress.setValue(done)
        self.max_progress.setFormat(f"filter {min(done // steps + 1, n)} of {n}")

    def _on_pattern(self, ctx, result) -> None:
        if self._asked.get("maximize") != ctx:
            return
        ch, arr, img = result
        self.patterns[ch] = arr
        item = self._max_items.get(ch)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(img)))
            item.setToolTip(f"{self._patterns_layer.name}, filter {ch}: the pattern it responds to most")
        self.result_shown.emit("pattern")

    def _on_maximize_finished(self, ctx, n: int) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self._asked.pop("maximize", None)
        self._maximize_idle()
        self.max_status.setText(f"Done: {n} filters of {self._patterns_layer.name}.")

    def _on_maximize_failed(self, ctx, message: str) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self._asked.pop("maximize", None)
        self._maximize_idle()
        self.max_status.setText(f"Could not make the patterns: {message}")

    def stop_maximize(self) -> None:
        """Stop making patterns; the ones finished stay."""
        if self._asked.pop("maximize", None) is None:
            return
        self._lanes["maximize"].cancel("maximize")
        self._maximize_idle()
        for ch, item in list(self._max_items.items()):
            if ch not in self.patterns:
                self.max_list.takeItem(self.max_list.row(item))
                del self._max_items[ch]
        self.max_status.setText(f"Stopped: {len(self.patterns)} pattern{'s' if len(self.patterns) != 1 else ''} "
                                f"made.")

    def _maximize_idle(self) -> None:
        self.max_progress.hide()
        self.max_start.setEnabled(True)
        self.max_stop.setEnabled(False)
        self._update_status()

    @property
    def maximizing(self) -> bool:
        return "maximize" in self._asked

    # ---- embedding map
    def _send_embedding(self) -> None:
        key = (self._model_gen, id(self._embedding_model), len(self.samples), self.project_root)
        if key == self._embedding_sent:
            return
        self._embedding_sent = key
        self.embedding.set_model(self._embedding_model, private=True)  # its own replica
        self.embedding.set_samples([p for p, _ in self.samples], [c for _, c in self.samples])

    # ================================================================== status
    def _say(self, text: str) -> None:
        self.status_message.emit(text)

    def _update_status(self) -> None:
        if self._closed:
            return
        running = []
        names = {"gradients": "pixel gradients", "cam": "Grad-CAM", "occlusion": "occlusion",
                 "maps": "response maps", "first_filters": "filters", "layer_filters": "filters",
                 "maximize": "filter patterns"}
        for view, label in names.items():
            if view in self._asked and label not in running:
                running.append(label)
        self.status.setText("Computing " + ", ".join(running) + "…" if running else "")
