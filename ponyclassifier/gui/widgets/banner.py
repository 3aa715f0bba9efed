"""A message strip shown at the top of a page instead of a blocking dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton


class Banner(QFrame):
    """A non-blocking message strip at the top of a page (a read-only project, recovered
    operations, a failed action, a model file that could not be read), with a close button."""

    STYLES = {
        "info": "background: rgba(60,120,200,0.12); border: 1px solid rgba(60,120,200,0.45);",
        "warning": "background: rgba(220,160,30,0.16); border: 1px solid rgba(200,140,20,0.6);",
        "error": "background: rgba(200,60,60,0.12); border: 1px solid rgba(200,60,60,0.5);",
    }

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.kind = "info"
        self.hide()

    def show_message(self, html: str, kind: str = "info") -> None:
        self.kind = kind
        self.setStyleSheet(f"QFrame#banner {{ {self.STYLES[kind]} border-radius: 6px; }}")
        self.label.setText(html)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if not self.isHidden() else ""
