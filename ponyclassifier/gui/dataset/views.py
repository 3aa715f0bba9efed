"""The Dataset place's widgets: the preview pane, the class list (a drop target), the
grid's one-call delegate and the grid itself (number keys, drags out, desktop drops in).
They paint and forward user intent; the browser decides what it means."""

from __future__ import annotations

import os
from typing import Callable

from PySide6.QtCore import QMimeData, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QDrag, QIcon, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFormLayout,
    QFrame,
    QLabel,
    QListView,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from ..widgets.format import human_size
from ..widgets.mime import MIME_PATHS, local_files_from_mime
from .model import COL_NAME, THUMB_SIZE, NameRole, ThumbnailModel, _broken_pixmap


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
        self.heading = QLabel("Preview")
        self.heading.setObjectName("paneHeading")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 10)
        lay.addWidget(self.heading)
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


def _camera_icon(palette: QPalette, size: int = 32) -> QIcon:
    """A small camera drawn in the palette's text colour (no icon theme is needed)."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = palette.color(QPalette.ColorRole.WindowText)
    p.setPen(QPen(colour, size / 14))
    p.setBrush(Qt.BrushStyle.NoBrush)
    u = size / 32
    p.drawRoundedRect(QRect(round(3 * u), round(9 * u), round(26 * u), round(18 * u)), 3 * u, 3 * u)
    p.drawRect(QRect(round(11 * u), round(5 * u), round(10 * u), round(4 * u)))
    p.drawEllipse(QRect(round(10 * u), round(12 * u), round(12 * u), round(12 * u)))
    p.end()
    return QIcon(pm)


class _ClassTree(QTreeWidget):
    """The class list. Takes files and folders from the desktop (import) and images dragged
    out of the grid (move); both are handed to ``on_drop(class name, mime data)``."""

    def __init__(self, on_drop: Callable[[str, QMimeData], bool], parent=None):
        super().__init__(parent)
        self._on_drop = on_drop
        self._hover: QTreeWidgetItem | None = None
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(False)

    def target_class(self, pos) -> str | None:
        it = self.itemAt(pos)
        return it.data(COL_NAME, NameRole) if it is not None else None

    @staticmethod
    def _usable(mime: QMimeData) -> bool:
        return mime.hasFormat(MIME_PATHS) or bool(local_files_from_mime(mime))

    @staticmethod
    def _action(mime: QMimeData):
        return Qt.DropAction.MoveAction if mime.hasFormat(MIME_PATHS) else Qt.DropAction.CopyAction

    def dragEnterEvent(self, event) -> None:
        if self._usable(event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        cls = self.target_class(event.position().toPoint())
        if cls and self._usable(event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
            self._set_hover(self.itemAt(event.position().toPoint()))
        else:
            event.ignore()
            self._set_hover(None)

    def dragLeaveEvent(self, event) -> None:
        self._set_hover(None)

    def dropEvent(self, event) -> None:
        self._set_hover(None)
        cls = self.target_class(event.position().toPoint())
        if cls and self._on_drop(cls, event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
        else:
            event.ignore()

    def _set_hover(self, item: QTreeWidgetItem | None) -> None:
        if item is self._hover:
            return
        for it, brush in ((self._hover, QBrush()), (item, QBrush(self._hover_color()))):
            if it is not None:
                for c in range(self.columnCount()):
                    it.setBackground(c, brush)
        self._hover = item

    def _hover_color(self) -> QColor:
        c = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        c.setAlpha(70)
        return c

    def clear(self) -> None:
        self._hover = None
        super().clear()


class _ThumbDelegate(QStyledItemDelegate):
    """Paints a grid cell (thumbnail over its elided file name) with one call into Python.

    The stock delegate asks the model for eight roles per painted cell, each a separate
    call from C++ into Python that must take the GIL; while a worker runs Python (listing
    a big folder, decoding) each of those waits its turn, and a screenful of them added up
    to 100-200 ms freezes. Here a cell costs one Python call (plus ``flags``)."""

    def __init__(self, model: "ThumbnailModel", parent=None):
        super().__init__(parent)
        self._model = model
        self._elided: dict[tuple[str, int], str] = {}

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        cell = self._model.cell(index.row())
        if cell is None:
            return
        pm, name = cell
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        r = option.rect
        painter.drawPixmap(r.x() + (r.width() - pm.width()) // 2, r.y() + 3, pm)
        width = r.width() - 6
        key = (name, width)
        text = self._elided.get(key)
        if text is None:
            if len(self._elided) > 20000:
                self._elided.clear()
            text = self._elided[key] = option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        painter.drawText(QRect(r.x() + 3, r.y() + 5 + pm.height(), width, r.height() - pm.height() - 6),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def sizeHint(self, option, index: QModelIndex) -> QSize:
        return QSize(THUMB_SIZE + 22, THUMB_SIZE + 30)


class _Grid(QListView):
    """The thumbnail grid: number keys move the selection to a class, files from the
    desktop are imported into the class shown, selected images drag onto the class list."""

    def __init__(self, on_number: Callable[[int], None], on_drop: Callable[[QMimeData], bool], parent=None):
        super().__init__(parent)
        self._on_number = on_number
        self._on_drop = on_drop
        self.setAcceptDrops(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(False)

    def keyPressEvent(self, event) -> None:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        key = event.key()
        if mods == Qt.KeyboardModifier.NoModifier and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self._on_number(int(key) - int(Qt.Key.Key_0))
            event.accept()
            return
        super().keyPressEvent(event)

    def startDrag(self, supported_actions) -> None:
        indexes = self.selectedIndexes()
        if not indexes:
            return
        drag = QDrag(self)
        drag.setMimeData(self.model().mimeData(indexes))
        pm = self.currentIndex().data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            drag.setPixmap(pm.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))
        # The model never removes rows itself: a move is done by the project, then applied.
        drag.exec(Qt.DropAction.MoveAction | Qt.DropAction.CopyAction, Qt.DropAction.MoveAction)

    @staticmethod
    def _external(mime: QMimeData) -> bool:
        return not mime.hasFormat(MIME_PATHS) and bool(local_files_from_mime(mime))

    def dragEnterEvent(self, event) -> None:
        if self._external(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        if self._external(event.mimeData()) and self._on_drop(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()
