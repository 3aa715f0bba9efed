"""The dataset map: every picture as a dot, placed by what the model sees in it.

Shows :mod:`ponyclassifier.core.embedding`: the model's penultimate-layer features of
each picture (:func:`~ponyclassifier.core.embedding.embed_features`), squeezed to two
dimensions (:func:`~ponyclassifier.core.embedding.project_2d`: PCA, or t-SNE), one colour
per class, and the "misfits" (:func:`~ponyclassifier.core.embedding.misfits`): pictures
whose nearest neighbours, as the model sees them, mostly carry another label. Those are
ringed in red and listed, since they are often mislabelled or unusual pictures.

Neighbours are judged on the full feature vectors (cosine, i.e. on unit-length features),
not on the 2-D map, so the misfits do not change when the projection does.

Work runs on the worker pool (:mod:`.embedding_jobs`, Qt-free), through one
:class:`~ponyclassifier.gui.workers.Lane`: features (with progress and Stop) on a private
copy of the network, so another view explaining the same model at the same time cannot
interfere through hooks or train/eval switches; then the projection. Features are cached per file
(path, size, modification time) for the current model, so switching PCA/t-SNE, a new
label or a Stop followed by a restart only computes what is missing. A job replaced or
cancelled (a new model or sample list, Stop) never calls back.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .. import workers
from .embedding_card import MISFIT_PEN, THUMB_SIZE, HoverCard
from .embedding_jobs import MapPoint, features_job, map_job

__all__ = ["EmbeddingMapWidget", "MapPoint", "PROJECTIONS", "class_colours"]

PROJECTIONS = {
    "pca": ("PCA (quick)", "Principal component analysis: a straight 'shadow' of the features on the two "
                           "directions where the pictures differ most. Quick, and distances mean something."),
    "tsne": ("t-SNE (slower, clearer groups)", "t-SNE moves look-alike pictures next to each other. Groups show "
                                               "more clearly, but distances between groups mean little. "
                                               "Takes longer on big datasets."),
}
SPACES = {
    "features": ("What the network sees (features)",
                 "The numbers the network computes for a picture just before its last layer. Pictures with "
                 "similar numbers look alike to the network. For a transfer model these come from the "
                 "pretrained network and do not change with training."),
    "scores": ("What the model decides (class scores)",
               "The model's score for each of its classes. Pictures the model finds hard to tell apart end up "
               "together, whatever the pictures look like."),
}
LOW_SEPARATION = 0.6  # below this average share of own-class neighbours, say the classes overlap
POINT_SIZE = 10
HIT_RADIUS_PX = 8
LEGEND_MAX = 14
MAX_LIST_THUMBNAILS = 300
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]


def class_colours(classes: Sequence[str]) -> dict[str, QColor]:
    """One clearly different colour per class (tab10 up to ten, then evenly spread hues)."""
    n = len(classes)
    if n <= len(_TAB10):
        return {c: QColor(_TAB10[i]) for i, c in enumerate(classes)}
    return {c: pg.intColor(i, hues=n, values=1, maxValue=220) for i, c in enumerate(classes)}


class EmbeddingMapWidget(QWidget):
    """The dataset as the model sees it. Give it a loaded TrainedModel with
    :meth:`set_model` and the pictures with :meth:`set_samples`; "Make the map" computes
    it. ``image_activated(path)`` fires when a dot (or a listed misfit) is clicked.
    """

    image_activated = Signal(str)
    map_ready = Signal(int)  # number of dots shown
    map_failed = Signal(str)
    stopped = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._model: Any = None
        self._model_private = False  # set_model(..., private=True): no copy per run
        self._model_lock = threading.Lock()  # one features pass at a time on a private model
        self._paths: list[str] = []
        self._labels: list[str] = []
        self._feature_cache: dict[tuple, np.ndarray] = {}
        self._bad: list[tuple[str, str]] = []
        self._points: list[MapPoint] = []
        self._xy = np.zeros((0, 2))
        self._lane = workers.Lane()  # the features job, then the map job: newest wins
        self._busy = False
        self._closed = False
        self._hover_index: int | None = None
        self._selected: int | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._stopped = False
        self._stage = ""  # "features" or "map" while busy
        self._keep: list[int] = []  # sample index of each dot
        self._drawn: tuple[str, str] = ("features", "pca")  # (space, projection) of the map shown
        self._note = ""
        self._head: tuple[np.ndarray, np.ndarray] | None = None  # the model's last layer (weight, bias)

        self.loader = workers.ThumbnailLoader(size=THUMB_SIZE, max_in_flight=2, parent=self)
        self.loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)

        # ---- top bar
        self.projection_combo = QComboBox()
        for key, (label, tip) in PROJECTIONS.items():
            self.projection_combo.addItem(label, key)
            self.projection_combo.setItemData(self.projection_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.projection_combo.setToolTip("How the many numbers the model computes for each picture are squeezed "
                                         "onto a flat map.\n" + "\n".join(t for _l, t in PROJECTIONS.values()))
        self.projection_combo.currentIndexChanged.connect(self._on_projection_combo_changed)
        self.space_combo = QComboBox()
        for key, (label, tip) in SPACES.items():
            self.space_combo.addItem(label, key)
            self.space_combo.setItemData(self.space_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.space_combo.setToolTip("Which of the model's numbers place the pictures on the map.\n\n"
                                    + "\n\n".join(f"{label}: {tip}" for label, tip in SPACES.values()))
        self.space_combo.currentIndexChanged.connect(self._on_projection_combo_changed)
        self.make_button = QPushButton("Make the map")
        self.make_button.setToolTip("Let the model look at every picture and place it on the map.")
        self.make_button.clicked.connect(self.compute)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(220)
        self.progress.setVisible(False)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop looking at the pictures. What is done so far is kept: "
                                    "Make the map carries on from there.")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Arrange by:"))
        top.addWidget(self.space_combo)
        top.addWidget(QLabel("Flatten with:"))
        top.addWidget(self.projection_combo)
        top.addWidget(self.make_button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.stop_button)
        top.addStretch(0)

        # ---- the map
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.plot.getPlotItem().hideButtons()
        self.plot.setToolTip("")
        self.legend = self.plot.addLegend(offset=(8, 8), brush=pg.mkBrush(255, 255, 255, 220),
                                          pen=pg.mkPen("#bbb"), labelTextColor="#222", labelTextSize="10pt")
        self._class_items: dict[str, pg.ScatterPlotItem] = {}
        self.misfit_item = pg.ScatterPlotItem(size=POINT_SIZE + 12, symbol="o", pen=pg.mkPen(MISFIT_PEN, width=2.5),
                                              brush=pg.mkBrush(0, 0, 0, 0), pxMode=True)
        self.misfit_item.setZValue(5)
        self.selected_item = pg.ScatterPlotItem(size=POINT_SIZE + 18, symbol="o", pen=pg.mkPen("#000", width=2),
                                                brush=pg.mkBrush(0, 0, 0, 0), pxMode=True)
        self.selected_item.setZValue(6)
        self.plot.addItem(self.misfit_item)
        self.plot.addItem(self.selected_item)
        scene = self.plot.scene()
        scene.sigMouseMoved.connect(self._on_scene_mouse_moved)
        scene.sigMouseClicked.connect(self._on_scene_mouse_clicked)

        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #555; font-size: 11pt; padding: 30px;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.plot)
        self.card = HoverCard(self.plot)
        self.plot.viewport().installEventFilter(self)

        # ---- side panel: misfits and skipped files
        self.misfit_title = QLabel("<b>Possible misfits</b>")
        self.misfit_help = QLabel("Pictures whose nearest look-alikes, as the model sees them, mostly belong to "
                                  "another class. Check their labels: they may be in the wrong folder, or just "
                                  "unusual pictures. Double-click to open one.")
        self.misfit_help.setWordWrap(True)
        self.misfit_help.setStyleSheet("color: #555;")
        self.misfit_list = QListWidget()
        self.misfit_list.setIconSize(QSize(40, 40))
        blank = QPixmap(40, 40)
        blank.fill(QColor("#e6e6e6"))
        self._placeholder_icon = QIcon(blank)
        self.misfit_list.setWordWrap(True)
        self.misfit_list.currentRowChanged.connect(self._on_misfit_list_current_row_changed)
        self.misfit_list.itemActivated.connect(self._on_misfit_list_item_activated)
        self.overlap_label = QLabel("")
        self.overlap_label.setWordWrap(True)
        self.overlap_label.setStyleSheet("color: #8a5a00;")
        self.overlap_label.setVisible(False)
        self.own_share: float | None = None
        self.skipped_label = QLabel("")
        self.skipped_label.setWordWrap(True)
        self.skipped_label.setStyleSheet("color: #b71c1c;")
        self.skipped_label.setVisible(False)
        side = QWidget()
        sv = QVBoxLayout(side)
        sv.setContentsMargins(6, 0, 0, 0)
        sv.addWidget(self.misfit_title)
        sv.addWidget(self.misfit_help)
        sv.addWidget(self.overlap_label)
        sv.addWidget(self.misfit_list, 1)
        sv.addWidget(self.skipped_label)
        side.setMinimumWidth(230)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.stack)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([700, 280])
        split.setChildrenCollapsible(False)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #444;")

        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addWidget(split, 1)
        outer.addWidget(self.status)
        self._clear_map()
        self._update_state()

    # ------------------------------------------------------------------ public API
    def set_model(self, trained_model: Any | None, private: bool = False) -> None:
        """The model whose view of the pictures is mapped (a loaded core TrainedModel), or None.

        ``private``: the model is an unshared copy that nothing else runs or hooks (as the
        Explain page gives), so it is used as is; otherwise each run works on its own copy."""
        if trained_model is self._model:
            self._model_private = private
            return
        self._cancel_job()
        self._stopped = False
        self._model = trained_model
        self._model_private = private
        self._head = None
        self._feature_cache.clear()
        self._bad = []
        self._clear_map()
        # A transfer model's features are the frozen ImageNet network's, which training never
        # changed: they say little about these classes (on the demo ponies they flag half the
        # pictures as misfits). What the model decides is the useful default there.
        recipe = getattr(trained_model, "recipe", None)
        self.set_space("scores" if recipe in ("transfer", "finetune") else "features")
        self._update_state()

    def set_samples(self, paths: Sequence[str], labels: Sequence[str]) -> None:
        """The pictures to map and their class names (same order)."""
        paths = [os.fspath(p) for p in paths]
        labels = [str(x) for x in labels]
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} pictures but {len(labels)} labels")
        if paths == self._paths and labels == self._labels:
            return
        had_map = bool(self._points) and not self._busy
        same_files = paths == self._paths
        self._cancel_job()
        self._stopped = False
        self._paths, self._labels = paths, labels
        self._clear_map()
        self._update_state()
        if had_map and same_files:
            self.compute()  # only labels changed: the features are cached, just redraw

    def compute(self) -> None:
        """Make the map: features for pictures not seen yet, then the projection."""
        if self._closed or self._model is None or not self._paths:
            return
        self._cancel_job()
        self._stopped = False
        self._bad = []
        self._set_busy(True, "Looking at the pictures…")
        self._stage = "features"
        model, paths = self._model, list(self._paths)
        self._lane.submit(
            features_job(model, paths, dict.fromkeys(self._feature_cache), self._model_private, self._model_lock),
            on_partial=self._on_features_partial, on_progress=self._on_features_progress,
            on_finished=self._on_features_finished, on_failed=self._on_job_failed)

    def stop(self) -> None:
        """Stop the running job; features computed so far stay cached."""
        if not self._busy:
            return
        self._cancel_job()
        if self._points:  # a new view of a map already drawn was asked for: keep the old one
            for combo, value in ((self.space_combo, self._drawn[0]), (self.projection_combo, self._drawn[1])):
                combo.blockSignals(True)
                combo.setCurrentIndex(combo.findData(value))
                combo.blockSignals(False)
            self.status.setText("Stopped: the map shown is the one drawn before.")
        else:
            self._stopped = True
            self._set_busy(False)
            self.hint.setText("Stopped. Press Make the map to carry on: the pictures already looked at "
                              "are remembered.")
            self.stack.setCurrentWidget(self.hint)
            self.status.setText("Stopped.")
        self.stopped.emit()

    def shutdown(self) -> None:
        """Cancel running jobs and take no more results (call before the app closes)."""
        self._cancel_job()
        self._closed = True
        self.loader.close()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    @property
    def busy(self) -> bool:
        return self._busy

    def projection(self) -> str:
        return self.projection_combo.currentData()

    def space(self) -> str:
        """What places the dots: "features" or "scores" (class scores)."""
        return self.space_combo.currentData()

    def set_space(self, space: str) -> None:
        i = self.space_combo.findData(space)
        if i < 0:
            raise ValueError(f"unknown view {space!r}")
        self.space_combo.setCurrentIndex(i)

    def set_projection(self, method: str) -> None:
        i = self.projection_combo.findData(method)
        if i < 0:
            raise ValueError(f"unknown projection {method!r}")
        self.projection_combo.setCurrentIndex(i)

    def points(self) -> list[MapPoint]:
        """The dots on the map, in sample order (files that could not be read left out)."""
        return list(self._points)

    def misfit_paths(self) -> list[str]:
        """The listed misfits, most out of place first."""
        return [self.misfit_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.misfit_list.count())]

    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of each picture that could not be read."""
        return list(self._bad)

    def class_items(self) -> dict[str, pg.ScatterPlotItem]:
        return dict(self._class_items)

    def point_at(self, scene_pos: QPointF) -> int | None:
        """The index of the dot under a scene position (within a few pixels), or None."""
        if not len(self._xy) or self.stack.currentWidget() is not self.plot:
            return None
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        view = vb.mapSceneToView(scene_pos)
        pw, ph = vb.viewPixelSize()
        if not pw or not ph:
            return None
        dx = (self._xy[:, 0] - view.x()) / pw
        dy = (self._xy[:, 1] - view.y()) / ph
        d2 = dx * dx + dy * dy
        i = int(np.argmin(d2))
        return i if d2[i] <= HIT_RADIUS_PX ** 2 else None

    def scene_pos_of(self, index: int) -> QPointF:
        """Where dot ``index`` is drawn, in scene coordinates."""
        vb = self.plot.getPlotItem().getViewBox()
        return vb.mapViewToScene(QPointF(float(self._xy[index, 0]), float(self._xy[index, 1])))

    def activate(self, index: int) -> None:
        """What a click on dot ``index`` does: select it and emit ``image_activated``."""
        self._select(index)
        self.image_activated.emit(self._points[index].path)

    # ------------------------------------------------------------------ jobs
    def _cancel_job(self) -> None:
        self._lane.cancel()  # it never calls back
        if self._busy:
            self._set_busy(False)

    def _on_features_partial(self, chunk) -> None:
        keys, feats = chunk
        for key, row in zip(keys, feats):
            self._feature_cache[key] = row

    def _on_features_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"Looking at the pictures: {done} of {total}" if total else "Looking…")

    def _on_features_finished(self, result: dict) -> None:
        self._bad = list(result["bad"])
        bad_paths = {p for p, _ in self._bad}
        keys = result["keys"]
        rows, keep = [], []
        for i, p in enumerate(self._paths):
            key = keys.get(p) if p not in bad_paths else None
            f = self._feature_cache.get(key) if key is not None else None
            if f is None:
                if p not in bad_paths:
                    self._bad.append((p, "changed while the map was made: press Make the map again"))
                continue
            rows.append(f)
            keep.append(i)
        self._show_skipped()
        if not rows:
            self._set_busy(False)
            msg = "None of the pictures could be read, so there is nothing to map."
            self.hint.setText(msg)
            self.stack.setCurrentWidget(self.hint)
            self.status.setText(msg)
            self.map_failed.emit(msg)
            return
        method = self.projection()
        self._note = ""
        if method == "tsne" and len(rows) < 4:
            method = "pca"
            self._note = "t-SNE needs at least 4 pictures, so this map uses PCA. "
        self._keep = keep
        feats = np.stack(rows).astype(np.float32)
        labels = [self._labels[i] for i in keep]
        self.progress.setRange(0, 0)  # t-SNE has no progress to tell: a busy bar
        self.progress.setFormat("Drawing the map…")
        self._stage = "map"
        space = self.space()
        head = self._model_head() if space == "scores" else None
        self._lane.submit(map_job(feats, labels, method, space, head), on_finished=self._on_map_finished,
                          on_failed=self._on_job_failed)

    def _model_head(self) -> tuple[np.ndarray, np.ndarray]:
        """The weight and bias of the model's last layer, copied once per model (small)."""
        if self._head is None:
            from ...core.embedding import feature_layer

            layer = feature_layer(getattr(self._model, "network", self._model))
            w = layer.weight.detach().float().cpu().numpy().copy()
            b = (layer.bias.detach().float().cpu().numpy().copy() if layer.bias is not None
                 else np.zeros(w.shape[0], np.float32))
            self._head = (w, b)
        return self._head

    def _on_map_finished(self, result: dict) -> None:
        self._set_busy(False)
        pts = result["points"]
        misfit_set = set(result["misfits"])
        info = result["info"]
        self._points = []
        for row, i in enumerate(self._keep):
            frac, mostly = info.get(row, (0.0, None))
            self._points.append(MapPoint(self._paths[i], self._labels[i], float(pts[row, 0]), float(pts[row, 1]),
                                         row in misfit_set, frac, mostly))
        self._xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        self._drawn = (result["space"], result["method"])
        self._draw(result["misfits"], result["k"])
        method_name = PROJECTIONS[result["method"]][0].split(" (")[0]
        space_name = "features" if result["space"] == "features" else "class scores"
        classes = len({p.label for p in self._points})
        self.own_share = result["own_share"]
        extra = f" {len(self._bad)} left out (see the list on the right)." if self._bad else ""
        share = (f" On average {self.own_share:.0%} of a picture's {result['k']} nearest neighbours share its "
                 f"class." if classes > 1 else "")
        self.status.setText(f"{self._note}{len(self._points)} pictures in {classes} classes, placed by their "
                            f"{space_name} and flattened with {method_name}.{share} Hover over a dot to see its "
                            f"picture; click it to open it.{extra}")
        overlap = classes > 1 and self.own_share < LOW_SEPARATION
        self.overlap_label.setVisible(overlap)
        if overlap:
            if result["space"] == "features":
                why = ("the network's features do not tell these classes apart well"
                       + (" (a transfer model's features come from the pretrained network and do not change "
                          "with training)" if getattr(self._model, "recipe", "") == "transfer" else "")
                       + ", so many pictures are flagged. Try arranging by what the model decides.")
            else:
                why = ("the model often confuses these classes, so many pictures are flagged. More or clearer "
                       "pictures, or longer training, usually help.")
            self.overlap_label.setText(f"The classes overlap a lot here: {why}")
        self.map_ready.emit(len(self._points))

    def _on_job_failed(self, message: str, _tb: str) -> None:
        self._set_busy(False)
        msg = f"The map could not be made: {message}"
        self.hint.setText(msg)
        self.stack.setCurrentWidget(self.hint)
        self.status.setText(msg)
        self.map_failed.emit(msg)

    # ------------------------------------------------------------------ drawing
    def _clear_map(self) -> None:
        self._clear_map_items()
        self._points = []
        self._xy = np.zeros((0, 2))
        self._selected = None
        self._hover_index = None
        self.card.hide()
        self.overlap_label.setVisible(False)
        self.own_share = None
        self.misfit_title.setText("<b>Possible misfits</b>")
        self._show_skipped()

    def _draw(self, misfits: list[int], k: int) -> None:
        self._clear_map_items()
        classes = sorted({p.label for p in self._points})
        colours = class_colours(classes)
        labels = np.array([p.label for p in self._points])
        for n, c in enumerate(classes):
            idx = np.nonzero(labels == c)[0]
            item = pg.ScatterPlotItem(x=self._xy[idx, 0], y=self._xy[idx, 1], data=idx, size=POINT_SIZE,
                                      symbol="o", pen=pg.mkPen(255, 255, 255, 200, width=1),
                                      brush=pg.mkBrush(colours[c]), pxMode=True)
            item.setZValue(1)
            self.plot.addItem(item)
            self._class_items[c] = item
            if n < LEGEND_MAX:
                self.legend.addItem(item, f"{c} ({len(idx)})")
        if len(classes) > LEGEND_MAX:
            self.legend.addItem(pg.ScatterPlotItem(), f"… and {len(classes) - LEGEND_MAX} more classes")
        self.misfit_item.setData(x=self._xy[misfits, 0], y=self._xy[misfits, 1])
        if misfits:
            self.legend.addItem(self.misfit_item, "possible misfit")
        self.stack.setCurrentWidget(self.plot)
        self._fit_view()

        n = len(misfits)
        self.misfit_title.setText(f"<b>{n} possible misfit{'s' if n != 1 else ''}</b>" if n else
                                  "<b>No misfits</b>")
        self.misfit_help.setText(
            ("Pictures whose nearest look-alikes (the %d closest, as the model sees them) mostly belong to another "
             "class. Check their labels: they may be in the wrong folder, or just unusual pictures. "
             "Double-click to open one." % k) if n else
            "Every picture sits mostly among pictures of its own class, as the model sees them.")
        wanted: list[str] = []
        for i in misfits:
            p = self._points[i]
            item = QListWidgetItem(f"{os.path.basename(p.path)}\nlabelled {p.label}, looks like {p.neighbours_mostly}")
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            item.setData(Qt.ItemDataRole.UserRole + 1, i)
            item.setToolTip(f"{p.path}\n{p.disagreement:.0%} of its {k} nearest pictures are labelled otherwise, "
                            f"mostly {p.neighbours_mostly}.")
            pm = self._pixmaps.get(p.path)
            if pm is not None:
                item.setIcon(QIcon(pm))
            else:
                item.setIcon(self._placeholder_icon)  # same row height before the thumbnail arrives
                wanted.append(p.path)
            self.misfit_list.addItem(item)
        for path in reversed(wanted[:MAX_LIST_THUMBNAILS]):  # the loader decodes the newest request first
            self.loader.request_thumbnail(path)

    def _fit_view(self) -> None:
        """Show every dot, to the right of the legend so that it covers none."""
        vb = self.plot.getPlotItem().getViewBox()
        if not len(self._xy):
            return
        lo, hi = self._xy.min(0), self._xy.max(0)
        span = np.maximum(hi - lo, 1e-9)
        lo, hi = lo - 0.06 * span, hi + 0.06 * span
        width = vb.width()
        reserve = self.legend.width() + 16 if self.legend.isVisible() else 0
        if width > 2 * reserve > 0:
            lo[0] -= (hi[0] - lo[0]) * reserve / (width - reserve)
        vb.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0)

    def _clear_map_items(self) -> None:
        for item in self._class_items.values():
            self.plot.removeItem(item)
        self._class_items.clear()
        self.legend.clear()
        self.misfit_item.setData([], [])
        self.selected_item.setData([], [])
        self.misfit_list.clear()

    def _show_skipped(self) -> None:
        if not self._bad:
            self.skipped_label.setVisible(False)
            self.skipped_label.setText("")
            return
        n = len(self._bad)
        shown = [f"{os.path.basename(p)}: {reason}" for p, reason in self._bad[:5]]
        more = f"; and {n - 5} more" if n > 5 else ""
        self.skipped_label.setText(f"{n} picture{'s' if n != 1 else ''} could not be read and "
                                   f"{'are' if n != 1 else 'is'} left out. " + "; ".join(shown) + more + ".")
        self.skipped_label.setToolTip("\n".join(f"{p}: {reason}" for p, reason in self._bad))
        self.skipped_label.setVisible(True)

    def _select(self, index: int | None) -> None:
        self._selected = index
        if index is None:
            self.selected_item.setData([], [])
        else:
            self.selected_item.setData(x=[self._xy[index, 0]], y=[self._xy[index, 1]])

    # ------------------------------------------------------------------ state
    def _set_busy(self, on: bool, text: str = "") -> None:
        self._busy = on
        self.progress.setVisible(on)
        self.stop_button.setVisible(on)
        if on:
            self.progress.setRange(0, 0)
            self.progress.setFormat(text)
            self.status.setText(text)
        self._update_state()

    def _update_state(self) -> None:
        ready = self._model is not None and bool(self._paths) and not self._closed
        self.make_button.setEnabled(ready and not self._busy)
        if self._points or self._busy or self._stopped:
            return
        if self._model is None:
            text = ("Load or train a model first. The map then places every picture by what the model sees "
                    "in it: pictures it finds alike end up close together.")
        elif not self._paths:
            text = "There are no pictures to map yet."
        else:
            n = len(self._paths)
            text = (f"Press Make the map to let the model look at the {n} picture{'s' if n != 1 else ''} and "
                    f"place {'them' if n != 1 else 'it'} on a map: pictures it finds alike end up close together, "
                    "and pictures that sit among another class are ringed in red.")
        self.hint.setText(text)
        self.stack.setCurrentWidget(self.hint)
        self.status.setText("")

    # ------------------------------------------------------------------ mouse
    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Leave and not self._closed:
            self._hover_index = None
            self.card.hide()  # the mouse left the map
        return False

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        i = self.point_at(scene_pos)
        if i is None:
            self._hover_index = None
            self.card.hide()
            return
        at = self.plot.mapFromScene(scene_pos)
        self._show_card(i, at)

    def _show_card(self, i: int, at: QPoint) -> None:
        self._hover_index = i
        p = self._points[i]
        pm = self._pixmaps.get(p.path)
        if pm is None:
            self.loader.request_thumbnail(p.path)
        self.card.show_point(p, pm, at)

    def _on_scene_mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        i = self.point_at(ev.scenePos())
        if i is not None:
            ev.accept()
            self.activate(i)

    def _on_misfit_list_current_row_changed(self, row: int) -> None:
        item = self.misfit_list.item(row) if row >= 0 else None
        if item is None:
            return
        i = item.data(Qt.ItemDataRole.UserRole + 1)
        self._select(i)
        at = self.plot.mapFromScene(self.scene_pos_of(i))
        self._show_card(i, at)

    def _on_misfit_list_item_activated(self, item: QListWidgetItem) -> None:
        i = item.data(Qt.ItemDataRole.UserRole + 1)
        self.activate(i)

    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        pm = QPixmap.fromImage(image)
        self._pixmaps[path] = pm
        while len(self._pixmaps) > 500:
            self._pixmaps.popitem(last=False)
        if self.card.isVisible() and self.card.path == path:
            self.card.set_pixmap(pm)
        for r in range(self.misfit_list.count()):
            item = self.misfit_list.item(r)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                item.setIcon(QIcon(pm))

    def _on_projection_combo_changed(self, _index: int) -> None:
        # Features are cached, so this only runs the projection again. While features are
        # still being computed, the projection chosen when they are done is used.
        if (self._points and not self._busy) or (self._busy and self._stage == "map"):
            self.compute()
