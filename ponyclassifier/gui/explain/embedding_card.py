"""The dataset map's hover card: a picture's thumbnail, file name, class and, for a
misfit, what its look-alikes mostly are."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from .embedding_jobs import MapPoint

__all__ = ["HoverCard", "MISFIT_PEN", "THUMB_SIZE"]

THUMB_SIZE = 128
MISFIT_PEN = "#d50000"


class HoverCard(QFrame):
    """A tooltip-like card: the picture's thumbnail, file name and class."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.Box)
        self.setStyleSheet("HoverCard { background: #fffff4; border: 1px solid #888; border-radius: 4px; }")
        self.image = QLabel()
        self.image.setFixedSize(THUMB_SIZE, THUMB_SIZE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setFixedWidth(220)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 8, 6)
        lay.addWidget(self.image)
        lay.addWidget(self.text)
        self.path: str | None = None
        self.hide()
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def show_point(self, point: MapPoint, pixmap: QPixmap | None, at: QPoint) -> None:
        self.path = point.path
        self.set_pixmap(pixmap)
        lines = [f"<b>{html.escape(os.path.basename(point.path))}</b>",
                 f"Class: {html.escape(point.label)}"]
        if point.misfit and point.neighbours_mostly is not None:
            lines.append(f"<span style='color:{MISFIT_PEN}'>Possible misfit: {point.disagreement:.0%} of its "
                         f"nearest look-alikes are in other classes, mostly "
                         f"<b>{html.escape(point.neighbours_mostly)}</b>.</span>")
        lines.append("<span style='color:#666'>Click to open it.</span>")
        self.text.setText("<br>".join(lines))
        self.adjustSize()
        parent = self.parentWidget()
        x = at.x() + 16
        y = at.y() + 16
        if x + self.width() > parent.width():
            x = at.x() - 16 - self.width()
        if y + self.height() > parent.height():
            y = at.y() - 16 - self.height()
        self.move(max(0, x), max(0, y))
        self.show()
        self.raise_()

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is None or pixmap.isNull():
            self.image.setPixmap(QPixmap())
            self.image.setText("…")
        else:
            self.image.setText("")
            # Small pictures (a 32-pixel training set) are enlarged to fill the card.
            self.image.setPixmap(pixmap.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
