"""The Explain place's image chooser: the project's pictures in a strip of thumbnails,
filtered by class, and "Open image…".

The list is the open project's rows that have a class (:class:`ProjectSession` ``rows``),
read again only when the page is shown after they changed: at 20,000 pictures that takes
tens of milliseconds, not worth spending for a place nobody looks at.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
)

from ..widgets.format import IMAGE_FILTER
from ..workers import ThumbnailLoader
from .panels import muted

__all__ = ["ChooserSection", "StripModel", "THUMB_SIZE"]

THUMB_SIZE = 72


class StripModel(QAbstractListModel):
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


class ChooserSection:
    """The image chooser of :class:`~ponyclassifier.gui.explain.page.ExplainPage` (a part
    of the page: it shares the page's state)."""

    def _build_chooser(self) -> QHBoxLayout:
        self.thumbs = ThumbnailLoader(size=THUMB_SIZE, parent=self)
        self.thumbs.thumbnail_ready.connect(self._on_thumbs_thumbnail_ready)
        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(60)
        self._thumb_timer.timeout.connect(self._request_visible_thumbnails)
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Show the project's images of one class")
        self.class_combo.setMinimumContentsLength(12)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.currentIndexChanged.connect(self._on_class_combo_changed)
        self._blank_icon = self._make_blank_icon()
        self.strip_model = StripModel(self._blank_icon, self)
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
        self.no_project_hint = muted("No project is open. Use “Open image…” to explain any picture, or open a "
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
        return chooser

    def _make_blank_icon(self) -> QIcon:
        pm = QPixmap(THUMB_SIZE, THUMB_SIZE)
        pm.fill(QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.fillRect(QRect(4, 4, THUMB_SIZE - 8, THUMB_SIZE - 8), QColor(128, 128, 128, 40))
        p.end()
        return QIcon(pm)

    def _fill_samples(self, samples: list[tuple[str, str]]) -> None:
        """The pictures (path, class) to choose from; the first is shown if none is yet."""
        self.samples = samples
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
        if self.image_path is None and self._requested_path is None and self.samples:
            self.set_image_path(self.samples[0][0])
        self._refresh()

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
