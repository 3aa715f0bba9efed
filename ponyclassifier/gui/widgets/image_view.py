"""A picture scaled to fit (Explain, the kernel playground and every place that shows one
image large)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["ImageView"]


class ImageView(QWidget):
    """A picture scaled to fit, keeping its proportions. Enlarged three times or more, it is
    drawn with nearest neighbour so single pixels stay sharp. A message is shown instead of
    (or, with ``keep_image``, over) the picture. Clicks report the pixel under the mouse."""

    clicked = Signal(int, int)  # x, y in the image's pixels

    def __init__(self, message: str = "", parent: QWidget | None = None, min_side: int = 120,
                 pixelated: bool | None = None, placeholder: str = "", background: QColor | None = None,
                 size_hint: QSize | None = None):
        """``placeholder``: shown whenever there is neither a picture nor a message (also after
        ``set_image(None)``); ``background``: the colour behind the picture (default: a shade
        darker than the window); ``pixelated`` True: nearest neighbour whenever enlarged."""
        super().__init__(parent)
        self._image: QImage | None = None
        self._pixmap: QPixmap | None = None
        self._message = message
        self._placeholder = placeholder
        self._background = background
        self._size_hint = size_hint or QSize(320, 260)
        self._over = False
        self._pixelated = pixelated
        self._target = QRectF()
        self._highlight: QRect | None = None
        self.clickable = False
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(self._size_hint)

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        self._pixmap = QPixmap.fromImage(self._image) if self._image is not None else None
        self._message, self._over = "", False
        self._highlight = None
        self.setCursor(Qt.CursorShape.PointingHandCursor if self.clickable and self._image else
                       Qt.CursorShape.ArrowCursor)
        self.update()

    def set_message(self, text: str, keep_image: bool = False) -> None:
        if not keep_image:
            self._image = self._pixmap = None
        self._message, self._over = text, keep_image and self._image is not None
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_highlight(self, rect: QRect | None) -> None:
        """Frame this part of the picture (image pixels), e.g. the map shown large."""
        self._highlight = rect
        self.update()

    def message(self) -> str:
        return self._message

    def image_rect(self) -> QRectF:
        """Where the picture is drawn, in widget coordinates (empty without a picture)."""
        return self._layout_target()[0] if self._pixmap is not None else QRectF()

    def _layout_target(self) -> tuple[QRectF, bool]:
        r = QRectF(self.contentsRect()).adjusted(2, 2, -2, -2)
        iw, ih = self._image.width(), self._image.height()
        s = min(r.width() / iw, r.height() / ih)
        # Enlarged: nearest neighbour keeps pixels sharp; shrunk: smooth, or it aliases.
        pixelated = s >= 3 if self._pixelated is None else self._pixelated and s >= 1
        w, h = iw * s, ih * s
        return QRectF(r.x() + (r.width() - w) / 2, r.y() + (r.height() - h) / 2, w, h), pixelated

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), self._background if self._background is not None else
                   pal.color(QPalette.ColorRole.Window).darker(106))
        if self._pixmap is not None:
            self._target, pixelated = self._layout_target()
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not pixelated)
            p.drawPixmap(self._target, self._pixmap, QRectF(self._pixmap.rect()))
            if self._highlight is not None:
                sx, sy = self._target.width() / self._image.width(), self._target.height() / self._image.height()
                h = self._highlight
                frame = QRectF(self._target.x() + h.x() * sx, self._target.y() + h.y() * sy, h.width() * sx,
                               h.height() * sy).adjusted(-2, -2, 2, 2)
                pen = p.pen()
                pen.setColor(pal.color(QPalette.ColorRole.Highlight))
                pen.setWidth(3)
                p.setPen(pen)
                p.drawRect(frame)
        else:
            self._target = QRectF()
        if self._message:
            if self._over:
                fm = p.fontMetrics()
                w = min(self.width() - 16, fm.horizontalAdvance(self._message) + 24)
                band = QRectF((self.width() - w) / 2, self.height() - fm.height() - 22, w, fm.height() + 12)
                path = QPainterPath()
                path.addRoundedRect(band, 6, 6)
                p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                p.fillPath(path, QColor(0, 0, 0, 150))
                p.setPen(QColor("white"))
                p.drawText(band, Qt.AlignmentFlag.AlignCenter, self._message)
            elif self._pixmap is None:
                p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
                p.drawText(self.rect().adjusted(12, 12, -12, -12),
                           Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        elif self._placeholder and self._pixmap is None:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
        p.end()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            target, _ = self._layout_target()
            pos = event.position()
            if target.contains(pos):
                x = int((pos.x() - target.x()) * self._image.width() / target.width())
                y = int((pos.y() - target.y()) * self._image.height() / target.height())
                self.clicked.emit(min(x, self._image.width() - 1), min(y, self._image.height() - 1))
                return
        super().mousePressEvent(event)

