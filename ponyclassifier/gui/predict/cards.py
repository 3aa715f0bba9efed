"""The Predict place's cards: one per picture (the image or its Grad-CAM overlay, the
verdict, the top-k probability bars), laid out left to right in a wrapping flow layout."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QLayout, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from ...core.trained import is_unsure
from ..widgets.format import percent
from .results import AMBER, RED, PredictionResult

CARD_WIDTH = 258
PICTURE_BOX = QSize(236, 177)


class FlowLayout(QLayout):
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


class ProbabilityBar(QWidget):
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
        self.bars: list[ProbabilityBar] = []
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
            self.image.setText("⚠\nno pictures" if self._is_folder() else "⚠\ncannot read")
            self.image.setProperty("broken", True)
        self._showing_cam = False
        self.set_picture(result.picture)

    def _is_folder(self) -> bool:
        """A folder given to predict that held no pictures (its row says why)."""
        return isinstance(self.result.source, str) and os.path.isdir(self.result.source)

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
            what = "Nothing to look at in this folder" if self._is_folder() else "Could not read this file"
            self.verdict.setText(f"<b style='color:{RED}'>{what}</b><br>{html.escape(r.error)}")
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
            bar = ProbabilityBar()
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
