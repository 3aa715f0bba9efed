"""Small widgets of the Explain place: a muted caption, one saliency panel (title, what
it means, the overlay, progress, Stop), and the grid that lays the four panels out."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..widgets.image_view import ImageView

__all__ = ["SaliencyGrid", "SaliencyPanel", "TIPS", "muted"]

TIPS = {
    "filters": "A convolution layer is a set of small filters (kernels) slid over the picture. The first layer "
               "works on the raw pixels, so its filters can be shown as tiny coloured pictures: edges, stripes "
               "and colour blobs. Each square is one filter, enlarged so its pixels are visible.",
    "maps": "Each filter of a layer makes one response map: bright where the filter found what it looks for "
            "in this image. Early layers respond to edges and colours, later ones to parts of objects. "
            "Click a map to see it large and laid over the photo.",
    "saliency": "Three ways of asking where the model looked. Pixel gradients: which pixels would change the "
                "score most. Grad-CAM: where a layer found evidence for the class. Occlusion: how much the "
                "class's probability drops when a gray patch hides each spot (slow but easy to trust).",
    "maximize": "Start from faint noise and change the picture, step by step, so that one filter responds as "
                "strongly as it can. The result shows the pattern that filter looks for. Filters of early "
                "layers look for simple textures, later ones for more complex shapes.",
}


def muted(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setObjectName("muted")
    return label


class SaliencyPanel(QFrame):
    """One saliency method: title, what it means, the overlay, progress and Stop."""

    def __init__(self, title: str, caption: str, tip: str, stoppable: bool = False, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.base_title = title
        self.title = QLabel(title)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.title.setToolTip(tip)
        self.base_caption = caption
        self.caption = muted(caption)
        self.caption.setToolTip(tip)
        self.view = ImageView("", min_side=140)
        self.view.setToolTip(tip)
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop this computation")
        self.stop_button.hide()
        self.run_button = QPushButton("Compute")
        self.run_button.setToolTip("Compute this map for the image and class shown")
        self.run_button.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(3)
        lay.addWidget(self.title)
        lay.addWidget(self.caption)
        lay.addWidget(self.view, 1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.stop_button)
        row.addWidget(self.run_button)
        lay.addLayout(row)
        self._stoppable = stoppable

    def busy(self, done: int = 0, total: int = 0, text: str = "Computing…") -> None:
        self.view.set_message(text, keep_image=True)
        self.stop_button.setVisible(self._stoppable)
        self.run_button.hide()
        self.progress.show()
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total) if total else 0)  # last: a slot may react to it

    def idle(self) -> None:
        self.progress.hide()
        self.stop_button.hide()


class SaliencyGrid(QWidget):
    """Four panels side by side when there is room, else two by two."""

    def __init__(self, panels: list[QWidget], parent=None):
        super().__init__(parent)
        self.panels = panels
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self._mode = ""
        self._place("row")

    def _place(self, mode: str) -> None:
        if mode == self._mode:
            return
        if self._mode:
            for p in self.panels:
                self.grid.removeWidget(p)
        self._mode = mode
        for i, p in enumerate(self.panels):
            self.grid.addWidget(p, *((0, i) if mode == "row" else divmod(i, 2)))
        for i in range(4):
            self.grid.setColumnStretch(i, 1 if mode == "row" or i < 2 else 0)
            self.grid.setRowStretch(i, 1 if (mode == "row" and i == 0) or (mode != "row" and i < 2) else 0)

    def resizeEvent(self, event) -> None:
        w, h = event.size().width(), event.size().height()
        self._place("row" if min(w / 4, h) >= min(w / 2, h / 2) else "square")
        super().resizeEvent(event)
