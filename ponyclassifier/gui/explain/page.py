"""ExplainPage: what did the network learn, and why did it say that? (the Explain place)

Top: the model (a file or the ImageNet network) and the image chooser (a strip of the
project's pictures, filtered by class, plus "Open image…"). Left: the chosen image with
the model's prediction, and the model's convolution layers (pick one in the table).
Right, in tabs: the filters, the response maps of the chosen layer, saliency (pixel
gradients, Grad-CAM and occlusion side by side), the patterns filters look for, the
kernel playground and the embedding map.

The page is composed of sections, one module each, that share its state: the image
chooser (:mod:`.chooser`), the layer table and Filters tab (:mod:`.filters`), Response
maps (:mod:`.maps`), Saliency (:mod:`.saliency`) and "What filters look for"
(:mod:`.patterns`); the kernel playground (:mod:`.kernels`) and the embedding map
(:mod:`.embedding`) are widgets of their own.

It reads the open project from a :class:`~ponyclassifier.core.session.ProjectSession` (the
rows that have a class, read again when the page is shown after they changed) and the model
to explain from a :class:`~ponyclassifier.core.session.ModelSession` (``wanted("Explain",
path)``, loaded when the page is shown; handed back with ``set_loaded``).

Everything heavy runs on the thread pool through :mod:`ponyclassifier.gui.workers` Lanes:
a new request replaces the last one of its kind, which never calls back. core.explain
hooks layers for the length of a call, so two explanations must never share one network
at the same moment: each :class:`~.lanes.ModelLane` owns its own copy of the network and
runs its jobs one after another (quick work; occlusion; filter maximisation; the embedding
map has its own copy too). A picture is decoded once per request, for the preview, the
model's input and the kernel playground alike. Each request carries the context it was
made for (the model and picture loaded, layer, class...); a result whose context is no
longer current is not shown.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core import explain as E
from ...core.session import ModelSession, ProjectSession
from ..widgets.banner import Banner
from ..widgets.format import percent
from ..widgets.image_view import ImageView
from ..workers import Lane
from ..workers import array_to_qimage as to_qimage
from .chooser import ChooserSection
from .filters import FiltersSection
from .grids import GRID_BACKGROUND, MAX_PATTERNS, kernel_grid, maps_grid, parse_channels, unit_map
from .jobs import DISPLAY_SIDE, decode_picture, load_model
from .lanes import ModelLane
from .maps import MapsSection
from .panels import muted
from .patterns import PatternsSection
from .saliency import SaliencySection

__all__ = ["DISPLAY_SIDE", "GRID_BACKGROUND", "MAX_PATTERNS", "PLACE", "ExplainPage", "ImageView", "kernel_grid",
           "maps_grid", "parse_channels", "unit_map"]

PLACE = "Explain"  # this place's name in the ModelSession


class ExplainPage(ChooserSection, FiltersSection, MapsSection, SaliencySection, PatternsSection, QWidget):
    """The Explain place. See the module docstring.

    ``ExplainPage(session, models)``: the app's sessions (each None: the page makes its own,
    for a page on its own, as in tests). The page lists ``session.rows`` with a class and
    loads ``models.wanted("Explain", path)`` when it is shown; after loading it calls
    ``models.set_loaded("Explain", model, description, path)``.

    Methods: :meth:`set_image_path`, :meth:`shutdown`; :meth:`set_model_path` (load now:
    the page's own buttons) and :meth:`set_project` (fills the page's session: kept for a
    main window that does not share its sessions yet). Signals ``status_message(str)``,
    ``open_image_requested(str)`` (an image clicked on the embedding map, e.g. to show it
    in the Dataset place), ``model_loaded(str)``, ``model_failed(str)``, ``result_shown(str)``.
    """

    status_message = Signal(str)
    open_image_requested = Signal(str)
    model_loaded = Signal(str)  # a description of the model now in use
    model_failed = Signal(str)  # the message shown
    # A view shows a new result: "prediction", "first_filters", "layer_filters", "maps", "map",
    # "gradients", "cam", "occlusion", "overlays" or "pattern".
    result_shown = Signal(str)

    TAB_FILTERS, TAB_MAPS, TAB_SALIENCY, TAB_MAXIMIZE, TAB_KERNELS, TAB_EMBEDDING = range(6)

    def __init__(self, session: ProjectSession | None = None, models: ModelSession | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        from .embedding import EmbeddingMapWidget
        from .kernels import KernelPlayground

        self.session = session if session is not None else ProjectSession()
        self.models = models if models is not None else ModelSession()
        self._closed = False
        # model state
        self.model = None
        self.model_path: str | None = None
        self.layers: list[E.LayerInfo] = []
        self.current_layer: E.LayerInfo | None = None
        self._cam_default: E.LayerInfo | None = None
        self._model_key = object()  # a new object per model loaded: results carry the one they were made for
        self._load_lane = Lane()
        self._lanes: dict[str, ModelLane] = {}
        self._embedding_model = None
        self._model_detail_text = ""
        self._model_wanted = False  # models.wanted a model for this place that is not loaded yet
        # image state
        self.samples: list[tuple[str, str]] = []  # the chooser's list: the session's rows with a class
        self._rows_stale = True  # the session's rows changed since the list was filled
        self.image_path: str | None = None
        self.image: np.ndarray | None = None  # the picture shown, uint8 (H, W, 3)
        self._qimage: QImage | None = None
        self._input = None  # the model's input for it (uint8 tensor (C, S, S))
        self._image_key = object()  # a new object per picture shown
        self._decode_lane = Lane()
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
        self._overlay_lane = Lane()
        self._map_detail_lane = Lane()
        self._kernels_image: np.ndarray | None = None  # the picture the playground was given
        self._embedding_sent: tuple | None = None

        self._overlay_timer = QTimer(self)
        self._overlay_timer.setSingleShot(True)
        self._overlay_timer.setInterval(30)
        self._overlay_timer.timeout.connect(self._compute_overlays)

        self.kernels = KernelPlayground()
        self.embedding = EmbeddingMapWidget()
        self.embedding.image_activated.connect(self._on_embedding_image_activated)
        self._build()
        self._fill_samples([])
        self._show_no_model()
        self.session.opened.connect(self._on_session_opened)
        self.session.rows_changed.connect(self._on_session_rows_changed)
        self.models.wanted.connect(self._on_models_wanted)

    @property
    def project_root(self) -> str | None:
        return self.session.root

    # ================================================================== building
    def _build(self) -> None:
        self.banner = Banner()

        # ---- model row
        self.model_label = QLabel("No model")
        f = self.model_label.font()
        f.setBold(True)
        self.model_label.setFont(f)
        self.model_detail = muted("")  # wraps in a narrow window rather than being cut off
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

        chooser = self._build_chooser()

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
        self.pred_note = muted("")
        image_box = QGroupBox("Image")
        il = QVBoxLayout(image_box)
        il.addWidget(self.preview, 1)
        il.addWidget(self.image_name)
        il.addWidget(self.pred_title)
        il.addLayout(pred_grid)
        il.addWidget(self.pred_note)

        layers_box = self._build_layers_box()

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

        self.status = muted("", wrap=False)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 4)
        outer.setSpacing(6)
        outer.addWidget(self.banner)
        outer.addLayout(model_row)
        outer.addLayout(chooser)
        outer.addWidget(split, 1)
        outer.addWidget(self.status)
        self.setStyleSheet("QLabel#muted { color: palette(placeholder-text); }")

    # ================================================================== public API
    def set_model_path(self, path: str | os.PathLike | None) -> None:
        """Load a model file (None: the pretrained ImageNet model) on a worker, now. Until it
        is loaded the current model stays in use; a file that cannot be used leaves it so."""
        if self._closed:
            return
        path = os.fspath(path) if path is not None else None
        self._model_wanted = False
        name = "the ImageNet model" if path is None else f"“{Path(path).name}”"
        self.model_busy.show()
        self.model_detail.setText(f"Loading {name}…")
        self._say(f"Loading model {name}…")
        if self.model is None:
            self.model_label.setText("Loading model…")
            for v in self._all_views():
                v.set_message("Loading model…")
        self._load_lane.submit(lambda state: load_model(path, state),
                               on_finished=lambda r: self._on_model_loaded(path, r),
                               on_failed=lambda m, tb: self._on_model_failed(path, m))

    def set_project(self, root: str | os.PathLike | None, samples: list[tuple[str, str]] | None) -> None:
        """The project's images (path, class) to choose from; None: no project. Fills the
        page's session (a page on its own, or a main window that does not share its
        sessions yet); a main window that shares them changes the session instead."""
        if self._closed:
            return
        root = os.fspath(root) if root is not None else None
        if root != self.session.root:
            if root is None:
                self.session.close()
            else:
                self.session.open(root)
        self.session.set_rows([(os.fspath(p), str(c)) for p, c in (samples or [])])
        if self._rows_stale:  # filled now, shown or not, as the main window expects
            self._refill_rows()

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
        """Cancel every job; none calls back. Call before the page goes away."""
        if self._closed:
            return
        self._closed = True
        self.session.opened.disconnect(self._on_session_opened)
        self.session.rows_changed.disconnect(self._on_session_rows_changed)
        self.models.wanted.disconnect(self._on_models_wanted)
        for lane in (self._load_lane, self._decode_lane, self._overlay_lane, self._map_detail_lane):
            lane.cancel()
        for lane in self._lanes.values():
            lane.close()
        self._overlay_timer.stop()
        self._thumb_timer.stop()
        self.thumbs.close()
        for w in (self.kernels, self.embedding):
            w.shutdown()

    @property
    def busy(self) -> bool:
        """Anything still computing (for tests and the window's close)."""
        return (self._load_lane.busy or self._decode_lane.busy or self._overlay_lane.busy
                or self._map_detail_lane.busy or any(lane.busy for lane in self._lanes.values()))

    # ================================================================== the sessions
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._rows_stale:
            self._refill_rows()
        if self._model_wanted:
            self.set_model_path(self.models.state(PLACE).path)

    def _on_session_opened(self, root: str | None) -> None:
        """Another project (or none): forget the picture of the last one."""
        self._forget_image()
        self._embedding_sent = None
        self._on_session_rows_changed()

    def _on_session_rows_changed(self) -> None:
        self._rows_stale = True
        if self.isVisible():
            self._refill_rows()

    def _refill_rows(self) -> None:
        self._rows_stale = False
        self._embedding_sent = None
        self._fill_samples(sorted((r.path, r.cls) for r in self.session.rows if r.cls))

    def _on_models_wanted(self, place: str, path: str | None) -> None:
        if place != PLACE:
            return
        self._model_wanted = True
        if self.isVisible():
            self.set_model_path(path)

    # ================================================================== model
    def _on_model_loaded(self, path: str | None, result: dict) -> None:
        if self._closed:
            return
        self.model_busy.hide()
        for lane in self._lanes.values():
            lane.close()  # running jobs of the old model end on their own and never call back
        self._model_key = object()
        model = result["model"]
        self.model, self.model_path = model, path
        self.layers = result["layers"]
        self._cam_default = result["cam_layer"]
        replicas = result["replicas"]
        self._lanes = {"quick": ModelLane(model, self._update_status),
                       "occlusion": ModelLane(replicas["occlusion"], self._update_status),
                       "maximize": ModelLane(replicas["maximize"], self._update_status)}
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
        self.models.state(PLACE).path = path  # set_loaded keeps the last path when given None (ImageNet)
        self.models.set_loaded(PLACE, model, name, path)
        self.model_loaded.emit(name)
        path_now = self._requested_path or self.image_path
        if path_now:
            self._decode(path_now)  # its input depends on the model's size and channels
        else:
            self._refresh()

    def _on_model_failed(self, path: str | None, message: str) -> None:
        if self._closed:
            return
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

    def _layer_by_path(self, path: str | None) -> E.LayerInfo | None:
        return next((i for i in self.layers if i.module_path == path), None)

    # ================================================================== image
    def _decode(self, path: str) -> None:
        """Decode ``path`` once for everything shown of it (:func:`.jobs.decode_picture`)."""
        model_key = self._model_key
        size = self.model.image_size if self.model is not None else None
        channels = self.model.channels if self.model is not None else 3
        if self.image is None:
            self.preview.set_message("Opening…")

        def work(state):
            picture = decode_picture(path, size, channels, state)
            return picture, to_qimage(picture.rgb)

        self._decode_lane.submit(work, on_finished=lambda r: self._on_decoded(model_key, path, *r),
                                 on_failed=lambda m, tb: self._on_decode_failed(path, m))

    def _on_decoded(self, model_key: object, path: str, picture: E.Picture, qimage: QImage) -> None:
        if self._closed:
            return
        if model_key is not self._model_key:  # a new model arrived meanwhile: its input size may differ
            self._decode(path)
            return
        self._requested_path = None
        self.image_path = path
        self.image = picture.rgb
        self._qimage = qimage
        self._input = picture.input
        self._image_key = object()
        self.probabilities = self.predicted = self._pred_ctx = None
        self._cancel_image_work()
        self.preview.set_image(self._qimage)
        label = next((c for p, c in self.samples if p == path), None)
        w, h = picture.original_size
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

    def _cancel_image_work(self) -> None:
        """Work queued or running for the previous picture is not wanted any more."""
        for lane, key in (("quick", "maps"), ("quick", "gradients"), ("quick", "cam"),
                          ("occlusion", "occlusion")):
            if lane in self._lanes:
                self._lanes[lane].cancel(key)
            self._asked.pop(key, None)

    def _on_decode_failed(self, path: str, message: str) -> None:
        if self._closed:
            return
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

    def _forget_image(self) -> None:
        """No picture (the project it came from was let go)."""
        self._decode_lane.cancel()
        self._overlay_lane.cancel()
        self._map_detail_lane.cancel()
        self._requested_path = self.image_path = None
        self.preview.set_message("Choose an image above")
        if self.image is None:
            return
        self.image = self._qimage = self._input = None
        self._image_key = object()
        self.probabilities = self.predicted = self._pred_ctx = None
        self._cancel_image_work()
        if "quick" in self._lanes:
            self._lanes["quick"].cancel("predict")
        self.maps = None
        self.selected_map = self._maps_geometry = None
        for view in ("maps", "gradients", "cam", "occlusion"):
            self._done.pop(view, None)
            self._stopped.pop(view, None)
        self.heat.clear()
        self._heat_ctx.clear()
        self.overlays.clear()
        self._clear_prediction()
        self.target_combo.clear()
        self.image_name.setText("")
        self.image_name.setToolTip("")
        self.original_panel.view.set_message("")
        self.map_large.set_message("Click a map on the left")
        self.map_overlay.set_message("")
        self.map_caption.setText("")
        for panel in self.panels.values():
            panel.idle()
            panel.run_button.hide()
            panel.title.setText(panel.base_title)
            panel.caption.setText(panel.base_caption)
        for v in (self.maps_view, self.gradients_panel.view, self.cam_panel.view, self.occlusion_panel.view):
            v.set_message("")
        self.kernels.clear_image()
        self._kernels_image = None
        self._update_status()

    # ================================================================== prediction
    def _clear_prediction(self, note: str = "") -> None:
        for name, bar in self.pred_rows:
            name.setText("")
            bar.setValue(0)
            bar.setFormat("")
            bar.setVisible(False)
        self.pred_note.setText(note)

    def _predict(self) -> None:
        ctx = (self._model_key, self._image_key)
        x = self._input
        self._lanes["quick"].submit("predict", lambda model, state: E.predict_target(model, x),
                                    on_finished=lambda r: self._on_predicted(ctx, r),
                                    on_failed=lambda m, tb: self._on_view_failed("prediction", m))

    def _on_predicted(self, ctx: tuple, result) -> None:
        if ctx != (self._model_key, self._image_key):
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

    # ================================================================== what is shown
    def _on_open_model_button_clicked(self) -> None:
        start = os.path.dirname(self.model_path) if self.model_path else (self.project_root or "")
        path, _ = QFileDialog.getOpenFileName(self, "Open a model to explain", start,
                                              "PonyClassifier models (*.pony);;All files (*)")
        if path:
            self.set_model_path(path)

    def _on_embedding_image_activated(self, path: str) -> None:
        self.open_image_requested.emit(path)
        self.set_image_path(path)

    def _ctx(self, view: str) -> tuple | None:
        """What ``view`` shows depends on; None while something it needs is missing."""
        if self.model is None:
            return None
        mg = self._model_key
        layer = self.current_layer
        if view == "first_filters":
            return (mg,) if self.layers else None
        if view == "layer_filters":
            return (mg, layer.module_path, self.in_channel.value()) if layer else None
        if self._input is None:
            return None
        if view == "maps":
            return (mg, self._image_key, layer.module_path, self.maps_contrast.currentData(),
                    self.maps_colours.currentData()) if layer else None
        target = self._target()
        if target is None or self._pred_ctx != (mg, self._image_key):
            return None
        if view == "gradients":
            return (mg, self._image_key, target, self.smooth_box.isChecked())
        if view == "cam":
            path = self.cam_combo.currentData()
            return (mg, self._image_key, target, path) if path else None
        if view == "occlusion":
            return (mg, self._image_key, target)
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
        if tab == self.TAB_KERNELS and self.image is not None and self._kernels_image is not self.image:
            self._kernels_image = self.image
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

    def _send_embedding(self) -> None:
        key = (self._model_key, id(self._embedding_model), len(self.samples), self.project_root)
        if key == self._embedding_sent:
            return
        self._embedding_sent = key
        self.embedding.set_model(self._embedding_model, private=True)  # its own replica
        self.embedding.set_samples([p for p, _ in self.samples], [c for _, c in self.samples])

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
