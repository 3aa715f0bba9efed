"""The augmentation preview: one image as a grid of randomly augmented variants.

Shows a core :class:`~ponyclassifier.core.augment.AugmentConfig` the way training will
apply it: the image goes through :func:`preprocess.load_input` at the training size and
:func:`augment.build_augmenter` (the very transform the trainer uses) on a worker, which
hands back ``QImage`` s. One control per strength; changes are debounced, and a result
that arrives after a newer request is dropped. torch is only imported on the worker and
when a config object is asked for, so creating the widget does not stall the app.
"""

from __future__ import annotations

import os
import random

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import workers
from ..widgets.strengths import STRENGTHS

__all__ = ["QtAugmentPreview", "STRENGTHS"]






def _augment_job(path: str, size: int, cfg_dict: dict, count: int, seed: int, cached):
    """Worker: (decoded uint8 tensor for reuse, [QImage, ...])."""

    def run(state: workers.JobState):
        import torch

        from ...core import preprocess
        from ...core.augment import AugmentConfig, build_augmenter

        x = cached if cached is not None else preprocess.load_input(path, size)
        state.check()
        batch = preprocess.to_float(x[None].repeat(count, 1, 1, 1))
        aug = build_augmenter(AugmentConfig.from_dict(cfg_dict), seed=seed)
        with torch.inference_mode():
            out = aug(batch) if aug is not None else batch
        arr = (out.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy())
        images = []
        for a in arr:
            state.check()
            images.append(workers.array_to_qimage(a))
        return x, images

    return run


class QtAugmentPreview(QWidget):
    """``config`` (an AugmentConfig or None for the defaults), ``count`` variants of
    ``image_size`` pixels (the training size), ``columns`` per row. ``stacked``: the
    controls above the variants (for a narrow side pane) instead of beside them.

    Call :meth:`set_image` with the selected file. ``config_changed`` carries the new
    strengths as a dict (``AugmentConfig.to_dict()``), so the host can store them or hand
    them to the training settings.
    """

    config_changed = Signal(dict)
    variants_ready = Signal(int)  # number of variants shown
    variants_failed = Signal(str)  # reason

    DEBOUNCE_MS = 120

    def __init__(self, config=None, *, count: int = 12, image_size: int = 160, columns: int = 4,
                 tile: int = 150, stacked: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        from ...core.augment import AugmentConfig

        cfg = config if config is not None else AugmentConfig()
        self.count, self.image_size, self.columns, self.tile = int(count), int(image_size), int(columns), int(tile)
        self.path: str | None = None
        self.seed = 0
        self._cached = None  # (path, size, uint8 tensor) of the last decode
        self._lane = workers.Lane()  # newest wins: a superseded augmentation never calls back
        self._images: list[QImage] = []
        self._debounce = QTimer(self, singleShot=True, interval=self.DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)

        # controls
        self.spins: dict[str, QDoubleSpinBox] = {}
        forms = [QFormLayout() for _ in range(2 if stacked else 1)]
        for f in forms:
            f.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        half = (len(STRENGTHS) + 3) // 2  # stacked: strengths, flip and count in two columns
        for i, s in enumerate(STRENGTHS):
            form = forms[min(i // half, len(forms) - 1)]
            spin = QDoubleSpinBox()
            spin.setRange(0, s.maximum)
            spin.setSingleStep(s.step)
            spin.setDecimals(0)
            spin.setSuffix(s.suffix)
            spin.setToolTip(s.tip)
            spin.setKeyboardTracking(False)
            value = getattr(cfg, s.name)
            spin.setValue(value * 100 if s.percent else value)
            spin.valueChanged.connect(self._on_control_changed)
            self.spins[s.name] = spin
            form.addRow(s.label, spin)
        self.flip = QCheckBox("Mirror left–right")
        self.flip.setChecked(bool(cfg.horizontal_flip))
        self.flip.setToolTip("Flip half of the images horizontally. Off for text, digits and anything with a handedness.")
        self.flip.toggled.connect(self._on_control_changed)
        form = forms[-1]
        form.addRow("Flip", self.flip)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 48)
        self.count_spin.setValue(self.count)
        self.count_spin.valueChanged.connect(self._on_count_changed)
        form.addRow("Variants", self.count_spin)

        self.reshuffle_button = QPushButton("Reshuffle")
        self.reshuffle_button.setToolTip("Draw new random variants with the same strengths.")
        self.reshuffle_button.clicked.connect(self.reshuffle)
        self.reset_button = QPushButton("Defaults")
        self.reset_button.setToolTip("Back to the default strengths.")
        self.reset_button.clicked.connect(lambda: self.set_config(AugmentConfig()))
        self.off_button = QPushButton("All off")
        self.off_button.setToolTip("No augmentation: every variant is the original.")
        self.off_button.clicked.connect(self.set_all_off)
        buttons = QHBoxLayout()
        for b in (self.reshuffle_button, self.reset_button, self.off_button):
            buttons.addWidget(b)

        heading = QLabel("Augmentation")
        heading.setObjectName("paneHeading")
        hint = QLabel("Each training epoch sees every image changed at random within these limits. "
                      "Variants that no longer look like their class mean the strengths are too high.")
        hint.setWordWrap(True)
        hint.setEnabled(False)
        side = QVBoxLayout()
        if stacked:  # in a tab, whose title says it
            heading.hide()
            top = QHBoxLayout()
            for f in forms:
                top.addLayout(f)
            top.addStretch(1)
            side.addLayout(top)
            buttons.addStretch(1)
        else:
            side.addWidget(heading)
            side.addLayout(forms[0])
        side.addLayout(buttons)
        side.addWidget(hint)
        if not stacked:
            side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        if not stacked:
            side_w.setMaximumWidth(320)

        # the grid
        self.title = QLabel("Select an image to see its augmented variants.")
        self.title.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("augmentStatus")
        self.status.setWordWrap(True)
        self.grid = QGridLayout()
        self.grid.setSpacing(6)
        self.tiles: list[QLabel] = []
        grid_w = QWidget()
        grid_w.setLayout(self.grid)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(grid_w)
        right.addWidget(self.status)
        right.addStretch(1)

        lay = QVBoxLayout(self) if stacked else QHBoxLayout(self)
        lay.addWidget(side_w)
        lay.addLayout(right, 1)
        self._make_tiles()

    # ------------------------------------------------------------------ API
    def config(self):
        """The strengths shown, as an AugmentConfig."""
        from ...core.augment import AugmentConfig

        return AugmentConfig.from_dict(self.config_dict())

    def config_dict(self) -> dict:
        d = {s.name: self.spins[s.name].value() / (100 if s.percent else 1) for s in STRENGTHS}
        d["horizontal_flip"] = self.flip.isChecked()
        return d

    def set_config(self, cfg) -> None:
        """Show ``cfg`` (AugmentConfig or its dict) without one refresh per control."""
        d = cfg if isinstance(cfg, dict) else cfg.to_dict()
        for s in STRENGTHS:
            if s.name in d:
                spin = self.spins[s.name]
                spin.blockSignals(True)
                spin.setValue(float(d[s.name]) * (100 if s.percent else 1))
                spin.blockSignals(False)
        if "horizontal_flip" in d:
            self.flip.blockSignals(True)
            self.flip.setChecked(bool(d["horizontal_flip"]))
            self.flip.blockSignals(False)
        self._on_control_changed()

    def set_all_off(self) -> None:
        self.set_config({**{s.name: 0.0 for s in STRENGTHS}, "horizontal_flip": False})

    def set_image(self, path: str | os.PathLike | None) -> None:
        self.path = os.fspath(path) if path else None
        if self.path is None:
            self.title.setText("Select an image to see its augmented variants.")
            self._images = []
            self._clear_tiles()
            return
        self.title.setText(f"<b>{os.path.basename(self.path)}</b> as training may see it "
                           f"({self.image_size} × {self.image_size})")
        self.title.setToolTip(self.path)
        self.refresh()

    def reshuffle(self) -> None:
        self.seed = random.randrange(1 << 31)
        self.refresh()

    def variant_images(self) -> list[QImage]:
        return list(self._images)

    @property
    def busy(self) -> bool:
        return self._lane.busy

    def shutdown(self) -> None:
        self._debounce.stop()
        self._lane.cancel()

    def refresh(self) -> None:
        """Recompute the variants now (changes to the controls do this after a short pause)."""
        self._debounce.stop()
        if self.path is None:
            return
        cached = None
        if self._cached and self._cached[0] == self.path and self._cached[1] == self.image_size:
            cached = self._cached[2]
        self.status.setText("Augmenting…")
        self._lane.submit(
            _augment_job(self.path, self.image_size, self.config_dict(), self.count, self.seed, cached),
            on_finished=lambda r, p=self.path: self._on_job_finished(p, r),
            on_failed=lambda m, tb: self._on_job_failed(m),
        )

    # -------------------------------------------------------------- internals
    def _on_control_changed(self, *args) -> None:
        self.config_changed.emit(self.config_dict())
        self._debounce.start()

    def _on_count_changed(self, n: int) -> None:
        self.count = int(n)
        self._make_tiles()
        self._debounce.start()

    def _on_job_finished(self, path: str, result) -> None:
        tensor, images = result
        self._cached = (path, self.image_size, tensor)
        self._images = images
        self.status.setText("")
        for label, img in zip(self.tiles, images):
            pm = QPixmap.fromImage(img)
            if pm.width() != self.tile:
                pm = pm.scaled(self.tile, self.tile, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
            label.setPixmap(pm)
        self.variants_ready.emit(len(images))

    def _on_job_failed(self, message: str) -> None:
        self._images = []
        self._clear_tiles()
        self.status.setText(f"<span style='color:#b02a2a'><b>Can't augment this image:</b> {message}</span>")
        self.variants_failed.emit(message)

    def _make_tiles(self) -> None:
        for t in self.tiles:
            self.grid.removeWidget(t)
            t.deleteLater()
        self.tiles = []
        for i in range(self.count):
            t = QLabel()
            t.setFixedSize(QSize(self.tile, self.tile))
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
            t.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            t.setStyleSheet("QLabel { background: rgba(128,128,128,0.12); border-radius: 4px; }")
            self.grid.addWidget(t, i // self.columns, i % self.columns)
            self.tiles.append(t)

    def _clear_tiles(self) -> None:
        for t in self.tiles:
            t.setPixmap(QPixmap())
