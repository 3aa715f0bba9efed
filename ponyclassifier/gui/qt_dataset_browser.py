"""The Dataset place: a project's classes, a lazy thumbnail grid and a preview pane.

Owns :class:`ThumbnailModel` (rows are file paths; a thumbnail is requested only when
the view asks for a row's decoration, i.e. when the row is on screen) and
:class:`QtDatasetBrowser`, the widget composing class list, grid and preview. Listing
and decoding happen in :mod:`ponyclassifier.gui.workers`; this module only touches
widgets, on the GUI thread.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import workers

THUMB_SIZE = 128
MIN_IMAGES_WARNING = 10  # fewer images than this in a class earns a warning
IMBALANCE_WARNING = 3.0  # largest class / a class above this earns a warning
PIXMAP_CACHE_ITEMS = 3000  # ~3000 * 128*128*4 bytes, about 200 MB at most

PathRole = Qt.ItemDataRole.UserRole + 1
ClassRole = Qt.ItemDataRole.UserRole + 2
BrokenRole = Qt.ItemDataRole.UserRole + 3


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def _placeholder_pixmap(size: int, palette: QPalette) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    base = palette.color(QPalette.ColorRole.Mid)
    base.setAlpha(60)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(base)
    p.drawRoundedRect(QRect(4, 4, size - 8, size - 8), 8, 8)
    p.end()
    return pm


def _broken_pixmap(size: int, palette: QPalette) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    red = QColor(200, 60, 60)
    bg = QColor(red)
    bg.setAlpha(35)
    p.setBrush(bg)
    p.setPen(QPen(red, 2, Qt.PenStyle.DashLine))
    p.drawRoundedRect(QRect(6, 6, size - 12, size - 12), 8, 8)
    p.setPen(QPen(red, 5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    c, r = size // 2, size // 7
    p.drawLine(c - r, c - r - 8, c + r, c + r - 8)
    p.drawLine(c + r, c - r - 8, c - r, c + r - 8)
    f = QFont()
    f.setPointSize(9)
    f.setBold(True)
    p.setFont(f)
    p.setPen(red)
    p.drawText(QRect(0, c + r, size, 24), Qt.AlignmentFlag.AlignCenter, "can't read")
    p.end()
    return pm


class ThumbnailModel(QAbstractListModel):
    """All files of a project, filtered by class; thumbnails load only for shown rows."""

    thumbnail_arrived = Signal(str)  # path

    def __init__(self, loader: workers.ThumbnailLoader, parent=None):
        super().__init__(parent)
        self._loader = loader
        self._files: list[tuple[str, str]] = []  # (path, class name), every file listed
        self._rows: list[int] = []  # indices into _files that pass the filter
        self._row_of: dict[str, int] = {}
        self._filter: str | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self.broken: dict[str, str] = {}
        self.requests = 0  # how many thumbnails were asked for (tests check laziness)
        pal = QPalette()
        self.placeholder = _placeholder_pixmap(THUMB_SIZE, pal)
        self.broken_icon = _broken_pixmap(THUMB_SIZE, pal)
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        loader.thumbnail_failed.connect(self._on_loader_thumbnail_failed)

    # -- Qt model API
    def rowCount(self, parent=None) -> int:
        # Called for every laid-out item: keep it free of calls back into Qt.
        return len(self._rows) if parent is None or parent.row() < 0 else 0

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        row = index.row()
        if row < 0 or row >= len(self._rows):
            return None
        path, cls = self._files[self._rows[row]]
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self._pixmaps.get(path)
            if pm is not None:
                self._pixmaps.move_to_end(path)
                return pm
            if path in self.broken:
                return self.broken_icon
            self.requests += 1
            self._loader.request_thumbnail(path)
            return self.placeholder
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{os.path.basename(path)}\nclass: {cls}"
            if path in self.broken:
                tip += f"\ncan't read: {self.broken[path]}"
            return tip
        if role == PathRole:
            return path
        if role == ClassRole:
            return cls
        if role == BrokenRole:
            return self.broken.get(path)
        return None

    # -- filling and filtering
    def clear(self) -> None:
        self.beginResetModel()
        self._files, self._rows, self._row_of = [], [], {}
        self._pixmaps.clear()
        self.broken.clear()
        self.endResetModel()
        self._loader.cancel_pending()

    def add_files(self, batch: list[tuple[str, str]]) -> None:
        start = len(self._files)
        self._files.extend(batch)
        new = [start + i for i, (_, c) in enumerate(batch) if self._filter is None or c == self._filter]
        if not new:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self._rows.extend(new)
        for r, i in enumerate(new, first):
            self._row_of[self._files[i][0]] = r
        self.endInsertRows()

    @property
    def class_filter(self) -> str | None:
        return self._filter

    def set_class_filter(self, name: str | None) -> None:
        if name == self._filter:
            return
        self.beginResetModel()
        self._filter = name
        self._rows = [i for i, (_, c) in enumerate(self._files) if name is None or c == name]
        self._row_of = {self._files[i][0]: r for r, i in enumerate(self._rows)}
        self.endResetModel()
        # Rows scrolled away are not worth decoding any more; shown rows ask again.
        self._loader.cancel_pending()

    def file_count(self) -> int:
        return len(self._files)

    def has_thumbnail(self, row: int) -> bool:
        return self._files[self._rows[row]][0] in self._pixmaps

    # -- loader results (GUI thread)
    @Slot(str, QImage)
    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > PIXMAP_CACHE_ITEMS:
            self._pixmaps.popitem(last=False)
        self._changed(path)
        self.thumbnail_arrived.emit(path)

    @Slot(str, str)
    def _on_loader_thumbnail_failed(self, path: str, reason: str) -> None:
        self.broken[path] = reason
        self._changed(path)

    def _changed(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole])


class QtPreviewPane(QFrame):
    """The selected image, large and scaled to fit, with what we know about the file."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(260)
        self._pixmap: QPixmap | None = None
        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(200, 200)
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image_label.setObjectName("previewImage")
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setObjectName("previewReason")
        self.reason_label.setStyleSheet(
            "QLabel#previewReason { color: #b02a2a; background: rgba(200,60,60,0.10);"
            " border: 1px solid rgba(200,60,60,0.45); border-radius: 6px; padding: 8px; }")
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label.hide()
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        for key, label in (("name", "File"), ("class", "Class"), ("pixels", "Pixels"),
                           ("bytes", "File size"), ("format", "Format")):
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setMinimumWidth(10)
            self.fields[key] = value
            title = QLabel(label)
            title.setEnabled(False)
            form.addRow(title, value)
        heading = QLabel("Preview")
        heading.setObjectName("paneHeading")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 10)
        lay.addWidget(heading)
        lay.addWidget(self.image_label, 1)
        lay.addWidget(self.reason_label)
        lay.addLayout(form)
        self.show_nothing()

    def show_nothing(self) -> None:
        self._pixmap = None
        self.image_label.setPixmap(QPixmap())
        self.image_label.setText("Select an image to see it here.")
        self.reason_label.hide()
        for v in self.fields.values():
            v.setText("–")

    def show_loading(self, path: str, cls: str) -> None:
        self._pixmap = None
        self.image_label.setPixmap(QPixmap())
        self.image_label.setText("Loading…")
        self.reason_label.hide()
        self.fields["name"].setText(os.path.basename(path))
        self.fields["name"].setToolTip(path)
        self.fields["class"].setText(cls)
        try:
            self.fields["bytes"].setText(human_size(os.stat(path).st_size))
        except OSError:
            self.fields["bytes"].setText("–")
        self.fields["pixels"].setText("–")
        self.fields["format"].setText("–")

    def show_image(self, image: QImage, info: dict) -> None:
        self._pixmap = QPixmap.fromImage(image)
        self.image_label.setText("")
        self.fields["pixels"].setText(f"{info['width']} × {info['height']}")
        self.fields["format"].setText(f"{info['format']} ({info['mode']})")
        self._rescale()

    def show_broken(self, reason: str) -> None:
        self._pixmap = None
        self.image_label.setText("")
        self.image_label.setPixmap(_broken_pixmap(THUMB_SIZE, self.palette()))
        self.reason_label.setText(f"<b>Can't read this file:</b> {reason}.<br>It will be skipped in training.")
        self.reason_label.show()

    @property
    def reason(self) -> str:
        return "" if self.reason_label.isHidden() else self.reason_label.text()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        size = self.image_label.size()
        pm = self._pixmap
        # Small images are scaled up too (at most 4x) so the pane is used; big ones down.
        cap = QSize(min(size.width(), pm.width() * 4), min(size.height(), pm.height() * 4))
        if cap != pm.size():
            pm = pm.scaled(cap, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.image_label.setPixmap(pm)


class QtDatasetBrowser(QWidget):
    """Classes with counts, the thumbnail grid and the preview of a project folder."""

    project_opened = Signal(str)
    listing_finished = Signal(int)  # number of files
    listing_failed = Signal(str)
    file_count_changed = Signal(int)

    def __init__(self, cache_dir: str | os.PathLike | None = None, parent=None):
        super().__init__(parent)
        self.root: str | None = None
        self.classes: list[str] = []
        self.counts: dict[str, int] = {}
        self.listing = False
        self._job: workers.Job | None = None
        self._preview_path: str | None = None
        self._generation = 0  # results of a superseded listing are dropped
        self._pending_filter: str | None = None

        self.loader = workers.ThumbnailLoader(THUMB_SIZE, cache_dir, parent=self)
        self.loader.preview_ready.connect(self._on_loader_preview_ready)
        self.loader.preview_failed.connect(self._on_loader_preview_failed)
        self.model = ThumbnailModel(self.loader, self)

        # left: classes
        self.class_tree = QTreeWidget()
        self.class_tree.setColumnCount(2)
        self.class_tree.setHeaderLabels(["Class", "Images"])
        self.class_tree.setRootIsDecorated(False)
        self.class_tree.setUniformRowHeights(True)
        self.class_tree.setIconSize(QSize(16, 16))
        hdr = self.class_tree.header()
        hdr.setStretchLastSection(False)
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hdr.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.class_tree.currentItemChanged.connect(self._on_class_tree_current_changed)
        self.class_hint = QLabel()
        self.class_hint.setWordWrap(True)
        self.class_hint.setObjectName("hint")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(8, 8, 0, 8)
        heading = QLabel("Classes")
        heading.setObjectName("paneHeading")
        ll.addWidget(heading)
        ll.addWidget(self.class_tree, 1)
        ll.addWidget(self.class_hint)

        # centre: grid
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.view.setGridSize(QSize(THUMB_SIZE + 22, THUMB_SIZE + 30))
        self.view.setSpacing(0)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalScrollBar().setSingleStep(24)
        self.view.setModel(self.model)
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.grid_title = QLabel()
        self.grid_title.setObjectName("paneHeading")
        self.grid_status = QLabel()
        self.grid_status.setObjectName("hint")
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("emptyState")
        self.grid_stack = QStackedWidget()
        self.grid_stack.addWidget(self.view)
        self.grid_stack.addWidget(self.empty_label)
        centre = QWidget()
        cl = QVBoxLayout(centre)
        cl.setContentsMargins(0, 8, 0, 0)
        title_row = QWidget()
        tl = QHBoxLayout(title_row)
        tl.setContentsMargins(4, 0, 4, 0)
        tl.addWidget(self.grid_title)
        tl.addStretch(1)
        tl.addWidget(self.grid_status)
        cl.addWidget(title_row)
        cl.addWidget(self.grid_stack, 1)

        # right: preview
        self.preview = QtPreviewPane()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([220, 700, 320])
        self.splitter.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)
        self.setStyleSheet(
            "QLabel#paneHeading { font-weight: 600; padding: 2px 0 4px 0; }"
            "QLabel#hint { color: palette(placeholder-text); }"
            "QTreeWidget::item { padding: 3px 2px; }"
            "QLabel#emptyState { color: palette(placeholder-text); font-size: 14px; padding: 40px; }")
        self._show_empty("No project open. Use File ▸ Open Folder… to choose a folder with one subfolder per class.")
        self._update_titles()

    # ------------------------------------------------------------------ projects
    def open_project(self, root: str | os.PathLike) -> None:
        """Start listing ``root`` in the background; rows appear as they are found."""
        self.cancel_listing()
        self.root = os.path.abspath(os.fspath(root))
        self.classes, self.counts = [], {}
        self.model.set_class_filter(None)
        self.model.clear()
        self.preview.show_nothing()
        self._preview_path = None
        self.class_tree.clear()
        self.listing = True
        self.grid_stack.setCurrentWidget(self.view)
        self._update_titles()
        self._generation += 1
        gen, root_s = self._generation, self.root
        self._job = workers.run_job(
            lambda state: workers.list_project(root_s, state),
            on_partial=lambda value: self._on_listing_partial(gen, value),
            on_finished=lambda result: self._on_listing_finished(gen, result),
            on_failed=lambda message, tb: self._on_listing_failed(gen, message, tb),
        )
        self.project_opened.emit(self.root)

    def reload(self) -> None:
        if self.root:
            keep = self.model.class_filter
            self.open_project(self.root)
            self._pending_filter = keep

    def cancel_listing(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self.listing = False

    def shutdown(self) -> None:
        """Stop background work started by this widget (at window close)."""
        self.cancel_listing()
        self.loader.close()

    def _on_listing_partial(self, gen: int, item) -> None:
        if gen != self._generation or not self.listing:
            return
        kind, value = item
        if kind == "classes":
            self.classes = list(value)
            self.counts = {c: 0 for c in self.classes}
            self._rebuild_class_tree()
            return
        for _, cls in value:
            self.counts[cls] = self.counts.get(cls, 0) + 1
        self.model.add_files(value)
        self._update_class_counts()
        self._update_titles()
        self.file_count_changed.emit(self.model.file_count())

    def _on_listing_finished(self, gen: int, result: dict) -> None:
        if gen != self._generation:
            return  # an older listing, superseded
        self._job = None
        self.listing = False
        self._update_class_counts(final=True)
        self._update_titles()
        keep, self._pending_filter = self._pending_filter, None
        if keep and keep in self.classes:
            self.select_class(keep)
        if not self.classes:
            self._show_empty(f"<b>No class folders in</b><br>{self.root}<br><br>A project is a folder with one "
                             "subfolder per class, e.g. <i>pets/cat/</i> and <i>pets/dog/</i>.")
        elif self.model.file_count() == 0:
            self._show_empty("<b>No images yet.</b><br><br>Copy pictures into the class folders:<br>"
                             + "<br>".join(os.path.join(self.root, c) for c in self.classes[:6])
                             + "<br><br>then choose View ▸ Reload (F5).")
        elif self.view.currentIndex().row() < 0 and self.model.rowCount() > 0:
            self.view.setCurrentIndex(self.model.index(0))
        self.listing_finished.emit(self.model.file_count())

    def _on_listing_failed(self, gen: int, message: str, tb: str) -> None:
        if gen != self._generation:
            return
        self._job = None
        self.listing = False
        self._show_empty(f"<b>Could not list this folder</b><br>{message}")
        self._update_titles()
        self.listing_failed.emit(message)

    def _show_empty(self, html: str) -> None:
        self.empty_label.setText(html)
        self.grid_stack.setCurrentWidget(self.empty_label)

    # ------------------------------------------------------------------ classes
    def _rebuild_class_tree(self) -> None:
        self.class_tree.blockSignals(True)
        self.class_tree.clear()
        all_item = QTreeWidgetItem(["All images", "0"])
        all_item.setData(0, Qt.ItemDataRole.UserRole, None)
        f = all_item.font(0)
        f.setBold(True)
        all_item.setFont(0, f)
        all_item.setFont(1, f)
        all_item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.class_tree.addTopLevelItem(all_item)
        for c in self.classes:
            it = QTreeWidgetItem([c, "0"])
            it.setData(0, Qt.ItemDataRole.UserRole, c)
            it.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_tree.addTopLevelItem(it)
        self.class_tree.setCurrentItem(all_item)
        self.class_tree.blockSignals(False)

    def class_problems(self) -> dict[str, str]:
        """Per class, why it may train badly (too few images, strong imbalance)."""
        out: dict[str, str] = {}
        if not self.counts:
            return out
        largest = max(self.counts.values())
        big = max(self.counts, key=self.counts.get)
        for c, n in self.counts.items():
            why = []
            if n < MIN_IMAGES_WARNING:
                why.append(f"only {n} image{'s' if n != 1 else ''}; aim for at least {MIN_IMAGES_WARNING} per class")
            if n == 0 or largest / max(n, 1) > IMBALANCE_WARNING:
                if n and c != big:
                    why.append(f"{largest / n:.1f}× fewer images than {big!r} ({largest}); unbalanced "
                               "classes bias the model towards the big ones")
            if why:
                out[c] = "; ".join(why)
        return out

    def _update_class_counts(self, final: bool = False) -> None:
        problems = self.class_problems() if not self.listing else {}
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            c = it.data(0, Qt.ItemDataRole.UserRole)
            n = self.model.file_count() if c is None else self.counts.get(c, 0)
            it.setText(1, f"{n:,}")
            if c is not None:
                tip = problems.get(c)
                it.setIcon(0, warn if tip else QIcon())
                it.setToolTip(0, f"{c}: {tip}" if tip else f"{c}: {n:,} images")
                it.setToolTip(1, it.toolTip(0))
        if problems:
            self.class_hint.setText(f"⚠ {len(problems)} class{'es' if len(problems) != 1 else ''} may train "
                                    "badly; hover for why.")
        else:
            self.class_hint.setText("")

    def class_item(self, name: str | None) -> QTreeWidgetItem | None:
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            if it.data(0, Qt.ItemDataRole.UserRole) == name:
                return it
        return None

    def select_class(self, name: str | None) -> None:
        it = self.class_item(name)
        if it is not None:
            self.class_tree.setCurrentItem(it)

    def _on_class_tree_current_changed(self, current, previous) -> None:
        name = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        self.model.set_class_filter(name)
        self._update_titles()
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(0))
            self.view.scrollToTop()
        else:
            self.preview.show_nothing()

    def _update_titles(self) -> None:
        name = self.model.class_filter
        n = self.model.rowCount()
        self.grid_title.setText(f"{name or 'All images'}  ·  {n:,} image{'s' if n != 1 else ''}"
                                if self.root else "")
        self.grid_status.setText(f"Listing files… {self.model.file_count():,} found" if self.listing else "")

    # ------------------------------------------------------------------ preview
    def _on_view_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if not current.isValid():
            self.preview.show_nothing()
            self._preview_path = None
            return
        path = current.data(PathRole)
        self._preview_path = path
        self.preview.show_loading(path, current.data(ClassRole))
        self.loader.request_preview(path, 1024)

    @Slot(str, QImage, object)
    def _on_loader_preview_ready(self, path: str, image: QImage, info: dict) -> None:
        if path == self._preview_path:
            self.preview.show_image(image, info)

    @Slot(str, str)
    def _on_loader_preview_failed(self, path: str, reason: str) -> None:
        if path == self._preview_path:
            self.preview.show_broken(reason)

    # ------------------------------------------------------------------ state
    def save_state(self) -> bytes:
        return bytes(self.splitter.saveState().data())

    def restore_state(self, state) -> None:
        if state:
            self.splitter.restoreState(state)
