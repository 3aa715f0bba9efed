"""Play mode: a full-screen, kid-friendly "what is this?" view.

One big picture (a live camera frame or a still image), the answer in big friendly letters,
a large confidence meter and an honest "I'm not sure!" when the model's best guess is under
its threshold. Large buttons (at least :data:`BUTTON_HEIGHT` px tall) for small fingers;
Esc or "Leave" closes it.

:class:`PlayWindow` never predicts anything itself: whoever opens it feeds it pictures and
answers. The live view (:mod:`.qt_live`) feeds camera frames and live predictions; the
Predict page feeds a still picture and its prediction through :meth:`PlayWindow.show_prediction`.
The buttons only ask (signals): "next picture", "open this file", "camera on/off".

This module needs no QtMultimedia, so the Predict page can use it on any machine. It also
holds :class:`FrameView`, the picture widget the live view shares.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QKeySequence,
    QPainter,
    QPainterPath,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..widgets.format import IMAGE_FILTER, percent, percent_1dp, plain_text  # noqa: F401 (used here and by the live view)

__all__ = ["FrameView", "ConfidenceMeter", "PlayWindow", "confidence_phrase", "BUTTON_HEIGHT", "IMAGE_FILTER",
           "percent", "percent_1dp", "plain_text"]

BUTTON_HEIGHT = 76  # px; well over the 44-48 px usually asked of touch targets

# A calm, high-contrast palette that reads well from across a room.
_BACKGROUND = "#fff6e9"
_INK = "#22223b"
_SOFT_INK = "#4a4e69"
_SURE = QColor("#2a9d8f")
_UNSURE = QColor("#f4a261")
_UNSURE_INK = "#d1495b"
_TRACK = QColor("#e9e3d5")







def confidence_phrase(confidence: float, unsure: bool) -> str:
    """What the model would say about its own answer, in words a child understands."""
    if unsure:
        return "I'm not sure!"
    if confidence >= 0.9:
        return "I'm very sure!"
    if confidence >= 0.7:
        return "I'm pretty sure."
    return "I think so."


class FrameView(QWidget):
    """Paints one picture scaled to fit (aspect kept, smooth), optionally with a heat-map
    layer on top (an RGBA QImage of any size, stretched over the picture), or a message
    when there is no picture. Painting a QImage directly avoids a QPixmap per video frame."""

    def __init__(self, parent: QWidget | None = None, *, background: str = "#202124", radius: int = 8,
                 text_color: str = "#e8eaed", message_px: int | None = None):
        super().__init__(parent)
        self._message_px = message_px
        self._image: QImage | None = None
        self._layer: QImage | None = None
        self._message = ""
        self._background = QColor(background)
        self._text_color = QColor(text_color)
        self._radius = radius
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    # ------------------------------------------------------------------ API
    @property
    def image(self) -> QImage | None:
        return self._image

    @property
    def message(self) -> str:
        return self._message

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        if self._image is not None:
            self._message = ""
        self.update()

    def set_layer(self, layer: QImage | None) -> None:
        """A translucent layer (e.g. a Grad-CAM heat map) painted over the picture."""
        self._layer = layer if layer is not None and not layer.isNull() else None
        self.update()

    def set_message(self, text: str) -> None:
        """Show ``text`` (rich text allowed) instead of a picture."""
        self._image = None
        self._layer = None
        self._message = text
        self.update()

    def image_rect(self) -> QRectF:
        """Where the picture is drawn, in widget coordinates."""
        if self._image is None:
            return QRectF()
        size = QSize(self._image.size())
        size.scale(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # ---------------------------------------------------------------- paint
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        path = QPainterPath()
        path.addRoundedRect(QRectF(self.rect()), self._radius, self._radius)
        p.fillPath(path, self._background)
        if self._image is not None:
            p.setClipPath(path)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            target = self.image_rect()
            p.drawImage(target, self._image)
            if self._layer is not None:
                p.drawImage(target, self._layer)
        elif self._message:
            p.setPen(self._text_color)
            if self._message_px:
                f = QFont(self.font())
                f.setPixelSize(self._message_px)
                f.setBold(True)
                p.setFont(f)
            p.drawText(self.rect().adjusted(16, 16, -16, -16),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, plain_text(self._message))
        p.end()




class ConfidenceMeter(QWidget):
    """A big rounded bar: how sure the model is, with the percentage written on it (the
    threshold is in its tooltip: a notch across the text only confused young readers)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._value: float | None = None
        self._unsure = False
        self._threshold: float | None = None
        self.setMinimumHeight(44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    @property
    def value(self) -> float | None:
        return self._value

    @property
    def text(self) -> str:
        return "" if self._value is None else f"{percent(self._value, sep='')} sure"

    def set_value(self, value: float | None, unsure: bool = False) -> None:
        self._value = None if value is None else max(0.0, min(1.0, float(value)))
        self._unsure = unsure
        self._update_tooltip()
        self.update()

    def set_threshold(self, threshold: float | None) -> None:
        self._threshold = threshold
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        tip = "" if self._value is None else f"How sure the model is of this answer: {percent(self._value, sep='')}."
        if self._threshold is not None:
            tip += f" Below {percent(self._threshold, sep='')} it says “I'm not sure!”."
        self.setToolTip(tip.strip())

    def sizeHint(self) -> QSize:
        return QSize(600, 64)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        radius = r.height() / 2
        track = QPainterPath()
        track.addRoundedRect(r, radius, radius)
        p.fillPath(track, _TRACK)
        font = QFont(self.font())
        font.setBold(True)
        font.setPixelSize(max(14, int(r.height() * 0.5)))
        p.setFont(font)
        if self._value is not None:
            fill = QRectF(r.left(), r.top(), max(r.height(), r.width() * self._value), r.height())
            fpath = QPainterPath()
            fpath.addRoundedRect(fill, radius, radius)
            p.fillPath(fpath.intersected(track), _UNSURE if self._unsure else _SURE)
            # the text dark on the track, white where it lies on the filled part
            p.setPen(QColor(_INK))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, self.text)
            if not self._unsure:  # white on the dark green; the light orange keeps the dark ink
                p.setClipPath(fpath.intersected(track))
                p.setPen(QColor("white"))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, self.text)
        p.end()


def _big_button(text: str, colour: str, tooltip: str) -> QPushButton:
    b = QPushButton(text)
    b.setMinimumHeight(BUTTON_HEIGHT)
    b.setMinimumWidth(200)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    b.setToolTip(tooltip)
    b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    dark = QColor(colour).darker(125).name()
    b.setStyleSheet(
        f"QPushButton {{ background: {colour}; color: white; border: 4px solid {colour}; border-radius: 22px; "
        f"font-size: 24px; font-weight: bold; padding: 8px 28px; }}"
        f"QPushButton:hover {{ background: {QColor(colour).lighter(112).name()}; }}"
        f"QPushButton:pressed {{ background: {dark}; }}"
        f"QPushButton:focus {{ border-color: {_INK}; }}"
        f"QPushButton:disabled {{ background: #c9c5bb; border-color: #c9c5bb; color: #f4f1ea; }}")
    return b


class PlayWindow(QWidget):
    """The play view. Feed it with :meth:`show_image` (a live frame), :meth:`show_prediction`
    (an answer, with or without a new picture) or :meth:`show_waiting` (no answer yet).

    Signals (the buttons ask, the owner decides): ``next_requested()``,
    ``open_requested(path)`` after the user picked a picture file, ``camera_toggled(on)``
    with the state wanted, and ``closed()`` when the window goes away (Esc, Leave, or
    closed by its owner).
    """

    next_requested = Signal()
    open_requested = Signal(str)
    camera_toggled = Signal(bool)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window, True)  # its own (full-screen) window
        self.setWindowTitle("Play – PonyClassifier")
        self.setObjectName("playWindow")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(f"QWidget#playWindow {{ background: {_BACKGROUND}; }}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._label: str | None = None
        self._confidence: float | None = None
        self._unsure = False
        self._camera_on = False
        self._closed_emitted = False

        self.picture = FrameView(self, background="#2b2d42", radius=24, text_color="#f2e9e4", message_px=34)
        self.picture.set_message("Show me something!")
        self.answer = QLabel("")
        self.answer.setObjectName("playAnswer")
        self.answer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.answer.setWordWrap(True)
        self.answer.setTextFormat(Qt.TextFormat.PlainText)
        self.phrase = QLabel("")
        self.phrase.setObjectName("playPhrase")
        self.phrase.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.phrase.setWordWrap(True)
        self.phrase.setTextFormat(Qt.TextFormat.PlainText)
        self.meter = ConfidenceMeter()

        self.next_button = _big_button("Next picture", "#4361ee", "Show the next picture (N)")
        self.next_button.clicked.connect(self.next_requested)
        self.open_button = _big_button("Open picture…", "#7b2cbf", "Pick a picture from this computer (O)")
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.camera_button = _big_button("Camera on", "#2a9d8f", "Turn the camera on or off (C)")
        self.camera_button.clicked.connect(self._on_camera_button_clicked)
        self.leave_button = _big_button("Leave", "#e63946", "Leave play mode (Esc)")
        self.leave_button.clicked.connect(self.close)
        self.hint = QLabel("Press Esc to leave")
        self.hint.setStyleSheet(f"color: {_SOFT_INK}; font-size: 15px;")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        buttons = QHBoxLayout()
        buttons.setSpacing(18)
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.camera_button)
        buttons.addStretch(1)
        buttons.addWidget(self.leave_button)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(32, 24, 32, 16)
        lay.setSpacing(12)
        lay.addWidget(self.picture, 1)
        lay.addWidget(self.answer)
        lay.addWidget(self.phrase)
        lay.addWidget(self.meter)
        lay.addSpacing(6)
        lay.addLayout(buttons)
        lay.addWidget(self.hint)

        for key, slot in ((Qt.Key.Key_Escape, self.close), (Qt.Key.Key_N, self._on_next_key),
                          (Qt.Key.Key_O, self._on_open_key), (Qt.Key.Key_C, self._on_camera_key)):
            QShortcut(QKeySequence(key), self, activated=slot,
                      context=Qt.ShortcutContext.WindowShortcut)
        self.set_actions(next=False, open=False, camera=None)
        self.show_waiting("Show me something!")
        self.resize(1100, 800)

    # ------------------------------------------------------------------ API
    @property
    def answer_text(self) -> str:
        """The big text shown: the class name, "I'm not sure!", or the waiting message."""
        return self.answer.text()

    @property
    def unsure(self) -> bool:
        return self._unsure and self._label is not None

    @property
    def label(self) -> str | None:
        """The class shown (the best guess, also when not sure); None while waiting."""
        return self._label

    @property
    def confidence(self) -> float | None:
        return self._confidence

    def open_fullscreen(self) -> None:
        self.showFullScreen()
        self.raise_()
        self.activateWindow()

    def show_image(self, image: QImage) -> None:
        """A new picture (e.g. the newest camera frame); the answer stays as it is."""
        self.picture.set_image(image)

    def show_heat(self, layer: QImage | None) -> None:
        """An optional translucent layer over the picture (the live Grad-CAM view)."""
        self.picture.set_layer(layer)

    def show_prediction(self, image: QImage | None, label: str, confidence: float, unsure: bool) -> None:
        """Show an answer: ``label`` with ``confidence`` (0..1); ``unsure`` shows "I'm not
        sure!" with the best guess as a "maybe". ``image`` None keeps the current picture."""
        if image is not None:
            self.picture.set_image(image)
            self.picture.set_layer(None)
        self._label, self._confidence, self._unsure = str(label), float(confidence), bool(unsure)
        if unsure:
            self._set_answer("I'm not sure!", _UNSURE_INK)
            self.phrase.setText(f"Maybe it's {label}? Try getting closer, or show me another side.")
        else:
            self._set_answer(str(label), _INK)
            self.phrase.setText(confidence_phrase(confidence, False))
        self.meter.set_value(confidence, unsure)
        self.meter.setVisible(True)

    def show_waiting(self, text: str) -> None:
        """No answer to show (no model yet, no picture yet, camera off)."""
        self._label, self._confidence, self._unsure = None, None, False
        self._set_answer(text, _SOFT_INK)
        self.phrase.setText("")
        self.meter.set_value(None)

    def show_message(self, text: str) -> None:
        """A message instead of the picture (e.g. "The camera is off")."""
        self.picture.set_message(text)

    def set_threshold(self, threshold: float | None) -> None:
        """Where "not sure" begins (said in the meter's tooltip)."""
        self.meter.set_threshold(threshold)

    def set_actions(self, *, next: bool = False, open: bool = True, camera: bool | None = None) -> None:
        """Which buttons to offer: ``next`` and ``open`` on or off; ``camera`` None hides the
        camera button, True/False shows it with the camera on/off."""
        self.next_button.setVisible(bool(next))
        self.open_button.setVisible(bool(open))
        self.camera_button.setVisible(camera is not None)
        if camera is not None:
            self.set_camera_on(bool(camera))

    def set_camera_on(self, on: bool) -> None:
        self._camera_on = bool(on)
        self.camera_button.setText("Camera off" if on else "Camera on")

    # ---------------------------------------------------------------- events
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_fonts()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:  # also when a child has focus and the shortcut is not seen
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        super().closeEvent(event)
        if event.isAccepted() and not self._closed_emitted:
            self._closed_emitted = True
            self.closed.emit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._closed_emitted = False
        self.setFocus()  # no focus ring on a button until someone presses Tab
        self._fit_fonts()

    # -------------------------------------------------------------- helpers
    def _set_answer(self, text: str, colour: str) -> None:
        self.answer.setText(text)
        self.answer.setStyleSheet(f"color: {colour};")
        self._fit_fonts()

    def _fit_fonts(self) -> None:
        """The answer as big as the window allows: about a tenth of its height, shrunk until
        it fits on one line (down to a floor; below that it wraps)."""
        h = max(self.height(), 400)
        width = max(self.answer.width(), self.width() - 80, 200)
        size = max(36, min(140, h // 9))
        font = QFont(self.font())
        font.setBold(True)
        text = self.answer.text() or " "
        while size > 36:
            font.setPixelSize(size)
            if QFontMetrics(font).horizontalAdvance(text) <= width * 0.96:
                break
            size -= 4
        font.setPixelSize(size)
        self.answer.setFont(font)
        pf = QFont(self.font())
        pf.setPixelSize(max(18, min(40, h // 28)))
        self.phrase.setFont(pf)
        self.meter.setFixedHeight(max(44, min(84, h // 13)))

    def _on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pick a picture", "", IMAGE_FILTER)
        if path:
            self.open_requested.emit(path)

    def _on_camera_button_clicked(self) -> None:
        self.camera_toggled.emit(not self._camera_on)

    def _on_next_key(self) -> None:
        if self.next_button.isVisible():
            self.next_button.click()

    def _on_open_key(self) -> None:
        if self.open_button.isVisible():
            self.open_button.click()

    def _on_camera_key(self) -> None:
        if self.camera_button.isVisible():
            self.camera_button.click()
