"""The live camera view's widgets, built and laid out (its behaviour is in :mod:`.live`):
the source row and the picture, the answer with its top-class bars, the options, "Teach
it" and the play mode button."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .live_infer import TOP_K, LivePrediction
from .play import FrameView, percent


class ClassBar(QWidget):
    """One row of the top classes: name and a probability bar."""

    def __init__(self) -> None:
        super().__init__()
        self.name = QLabel("")
        self.name.setMinimumWidth(60)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFixedWidth(110)
        self.bar.setFixedHeight(18)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.name, 1)
        lay.addWidget(self.bar)
        self._full = ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(40, self.width() - self.bar.width() - 8)
        self.name.setText(self.name.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width))

    def set(self, name: str | None, p: float = 0.0, best: bool = False, unsure: bool = False) -> None:
        self.setVisible(name is not None)
        self._full = name or ""
        if name is None:
            return
        self._elide()
        self.name.setToolTip(name)
        self.bar.setValue(int(round(p * 1000)))
        self.bar.setFormat(percent(p))
        colour = "#e0a030" if (best and unsure) else ("#2a9d8f" if best else "#8d99ae")
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }} "
                               "QProgressBar { text-align: center; }")


def build(w) -> None:
    """Make the live view ``w``'s widgets (as its attributes), connect them to its slots and
    lay them out."""
    # ---- source row and picture
    w.source_combo = QComboBox()
    w.source_combo.setMinimumWidth(220)
    w.source_combo.setToolTip("The camera to use, or a video file that stands in for one.")
    w.source_combo.activated.connect(w._on_source_combo_activated)
    w.mirror = QCheckBox("Mirror")
    w.mirror.setChecked(True)  # a selfie view feels natural; a file turns it off
    w.mirror.setToolTip("Flip the picture left–right, like a mirror. The model sees (and a saved "
                           "frame keeps) the picture as shown.")
    w.mirror.toggled.connect(w._on_mirror_toggled)
    w.start_button = QPushButton("Start")
    w.start_button.setToolTip("Start or stop the camera and the live answers.")
    w.start_button.setMinimumWidth(90)
    w.start_button.clicked.connect(w._on_start_button_clicked)
    w.view = FrameView()
    w.view.setMinimumSize(400, 300)
    w.view.set_message("Press <b>Start</b> to see what the model thinks of the camera picture.")
    w.rates = QLabel("")
    w.rates.setObjectName("liveRates")
    w.rates.setStyleSheet("QLabel#liveRates { color: palette(placeholder-text); }")
    w.rates.setToolTip("Camera: frames per second from the source. Answers: predictions per second. "
                          "Delay: from a frame's arrival to its answer on screen. Frames that arrive "
                          "while the model is still busy are skipped, so the answer never falls behind.")
    top = QHBoxLayout()
    top.addWidget(QLabel("Camera"))
    top.addWidget(w.source_combo, 1)
    top.addWidget(w.mirror)
    top.addWidget(w.start_button)
    left = QVBoxLayout()
    left.addLayout(top)
    left.addWidget(w.view, 1)
    left.addWidget(w.rates)

    # ---- the answer
    w.model_label = QLabel("")
    w.model_label.setWordWrap(True)
    w.answer = QLabel("")
    w.answer.setObjectName("liveAnswer")
    w.answer.setWordWrap(True)
    w.answer.setMinimumHeight(40)
    f = w.answer.font()
    f.setPixelSize(24)
    f.setBold(True)
    w.answer.setFont(f)
    w.answer_detail = QLabel("")
    w.answer_detail.setWordWrap(True)
    w.bars = [ClassBar() for _ in range(TOP_K)]
    answer_box = QGroupBox("What the model sees")
    ab = QVBoxLayout(answer_box)
    ab.addWidget(w.answer)
    ab.addWidget(w.answer_detail)
    for b in w.bars:
        ab.addWidget(b)
        b.set(None)

    # ---- options
    w.cam_check = QCheckBox("Show where it looks (heat map)")
    w.cam_check.setToolTip("Colour the parts of the picture that pushed the model towards its answer "
                              "(Grad-CAM). Updated a few times a second so the answers stay quick.")
    w.cam_check.toggled.connect(w._on_cam_check_toggled)
    w.steady_check = QCheckBox("Steady answers")
    w.steady_check.setChecked(True)
    w.steady_check.setToolTip("Average the last few answers so the label does not flicker between "
                                 "classes from one frame to the next.")
    w.steady_check.toggled.connect(lambda: setattr(w, "_steady", None))
    w.threshold_spin = QSpinBox()
    w.threshold_spin.setRange(0, 100)
    w.threshold_spin.setSuffix(" %")
    w.threshold_spin.setToolTip("When the best answer is less sure than this, show “not sure” instead. "
                                   "Starts at the model's own setting.")
    w.threshold_spin.valueChanged.connect(w._on_threshold_spin_value_changed)
    opts = QGroupBox("Options")
    of = QFormLayout(opts)
    of.addRow(w.cam_check)
    of.addRow(w.steady_check)
    of.addRow("Not sure below", w.threshold_spin)

    # ---- the feedback loop
    w.save_class = QComboBox()
    w.save_class.setToolTip("Which class folder the picture goes into: the model's answer, or the "
                               "right class if the model got it wrong.")
    w.save_class.currentIndexChanged.connect(lambda: w._update_save_button())
    w.save_button = QPushButton("Save picture")
    w.save_button.clicked.connect(w.save_frame)
    w.save_note = QLabel("")
    w.save_note.setWordWrap(True)
    save_box = QGroupBox("Teach it")
    sb = QVBoxLayout(save_box)
    intro = QLabel("Add the picture on screen to the project, so the next training learns from it.")
    intro.setWordWrap(True)
    sb.addWidget(intro)
    row = QGridLayout()
    row.addWidget(QLabel("As"), 0, 0)
    row.addWidget(w.save_class, 0, 1)
    row.setColumnStretch(1, 1)
    sb.addLayout(row)
    sb.addWidget(w.save_button)
    sb.addWidget(w.save_note)

    w.play_button = QPushButton("Play mode")
    w.play_button.setToolTip("A big, simple full-screen view for children: the picture, the answer "
                                "in large letters and large buttons. Esc leaves.")
    w.play_button.setMinimumHeight(36)
    w.play_button.clicked.connect(lambda: w.open_play_mode())

    right = QVBoxLayout()
    right.addWidget(w.model_label)
    right.addWidget(answer_box)
    right.addWidget(opts)
    right.addWidget(save_box)
    right.addWidget(w.play_button)
    right.addStretch(1)
    right_w = QWidget()
    right_w.setLayout(right)
    right.setContentsMargins(0, 0, 0, 0)
    # In a short window the side panel scrolls: squeezed, its wrapped labels and bars
    # were painted over each other.
    side = QScrollArea()
    side.setWidget(right_w)
    side.setWidgetResizable(True)
    side.setFrameShape(QFrame.Shape.NoFrame)
    side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    side.setFixedWidth(310 + side.verticalScrollBar().sizeHint().width())

    lay = QHBoxLayout(w)
    lay.addLayout(left, 1)
    lay.addWidget(side)


def show_placeholder(w, text: str, detail: str) -> None:
    """No answer to show (no model yet, or no picture yet)."""
    w.answer.setText(text)
    w.answer.setStyleSheet("color: palette(placeholder-text);")
    w.answer_detail.setText(detail)
    for b in w.bars:
        b.set(None)


def show_answer(w, pred: LivePrediction, threshold: float) -> None:
    """The answer in large letters ("Not sure" under ``threshold``) and its top-class bars."""
    if pred.unsure:
        w.answer.setText("Not sure")
        w.answer.setStyleSheet("color: #c77800;")
        w.answer_detail.setText(f"Best guess: <b>{html.escape(pred.label)}</b> at {percent(pred.confidence)}, "
                                f"under the {percent(threshold)} needed to be sure.")
    else:
        w.answer.setText(pred.label)
        w.answer.setStyleSheet("")
        w.answer_detail.setText(f"{percent(pred.confidence)} sure")
    for i, b in enumerate(w.bars):
        if i < len(pred.top):
            b.set(pred.top[i][0], pred.top[i][1], best=i == 0, unsure=pred.unsure)
        else:
            b.set(None)
