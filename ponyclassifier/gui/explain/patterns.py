"""The Explain place's "What filters look for" tab: the pattern each chosen filter of the
chosen layer responds to most (:func:`core.explain.maximize_filter`), made on the
maximize lane's own copy of the network, pictures arriving one by one."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import explain as E
from ..workers import array_to_qimage as to_qimage
from .grids import MAX_PATTERNS, enlarge, parse_channels
from .panels import TIPS, muted

__all__ = ["PatternsSection"]


class PatternsSection:
    """The "What filters look for" tab of :class:`~ponyclassifier.gui.explain.page.ExplainPage`
    (a part of the page: it shares the page's state and its maximize lane)."""

    def _build_maximize_tab(self) -> QWidget:
        self.max_layer_label = QLabel("")
        f = self.max_layer_label.font()
        f.setBold(True)
        self.max_layer_label.setFont(f)
        self.max_channels = QLineEdit("0-7")
        self.max_channels.setPlaceholderText("e.g. 0-7 or 3, 12, 40")
        self.max_channels.setToolTip(f"Which filters of the chosen layer: numbers and ranges, at most "
                                     f"{MAX_PATTERNS} at a time")
        self.max_channels.setMaximumWidth(200)
        self.max_channels.returnPressed.connect(self.start_maximize)
        first8 = QToolButton()
        first8.setText("First 8")
        first8.setToolTip("Filters 0 to 7")
        first8.clicked.connect(lambda: self.max_channels.setText("0-7"))
        next8 = QToolButton()
        next8.setText("Next 8")
        next8.setToolTip("The eight filters after the last one listed")
        next8.clicked.connect(self._on_next8_clicked)
        self.max_steps = QSpinBox()
        self.max_steps.setRange(8, 1000)
        self.max_steps.setValue(64)
        self.max_steps.setSingleStep(16)
        self.max_steps.setToolTip("Steps of gradient ascent per filter: more steps, clearer patterns, more time")
        self.max_size = QSpinBox()
        self.max_size.setRange(16, 512)
        self.max_size.setSingleStep(16)
        self.max_size.setSuffix(" px")
        self.max_size.setToolTip("Size of the pictures made. Smaller is faster.")
        self.max_stretch = QCheckBox("Boost contrast")
        self.max_stretch.setChecked(True)
        self.max_stretch.setToolTip("The patterns are often faint; stretch their contrast for display")
        self.max_start = QPushButton("Show what they look for")
        self.max_start.setToolTip("Make one picture per filter by gradient ascent (runs in the background)")
        self.max_start.clicked.connect(self.start_maximize)
        self.max_stop = QPushButton("Stop")
        self.max_stop.setToolTip("Stop making patterns; the ones already made stay")
        self.max_stop.setEnabled(False)
        for b in (self.max_start, self.max_stop):
            b.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.max_stop.clicked.connect(self.stop_maximize)
        self.max_progress = QProgressBar()
        self.max_progress.setTextVisible(True)
        self.max_progress.hide()
        self.max_status = muted("")
        self.max_list = QListWidget()
        self.max_list.setViewMode(QListView.ViewMode.IconMode)
        self.max_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.max_list.setMovement(QListView.Movement.Static)
        self.max_list.setIconSize(QSize(144, 144))
        self.max_list.setGridSize(QSize(160, 172))
        self.max_list.setSpacing(4)
        self.max_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        row1 = QHBoxLayout()
        row1.addWidget(self.max_layer_label, 1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Filters:"))
        row2.addWidget(self.max_channels)
        row2.addWidget(first8)
        row2.addWidget(next8)
        row2.addSpacing(10)
        row2.addWidget(QLabel("Steps:"))
        row2.addWidget(self.max_steps)
        row2.addWidget(QLabel("Size:"))
        row2.addWidget(self.max_size)
        row2.addWidget(self.max_stretch)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        row3.addWidget(self.max_start)
        row3.addWidget(self.max_stop)
        row3.addWidget(self.max_progress, 10)
        row3.addStretch(1)
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(muted(TIPS["maximize"]))
        lay.addLayout(row1)
        lay.addLayout(row2)
        lay.addLayout(row3)
        lay.addWidget(self.max_status)
        lay.addWidget(self.max_list, 1)
        return tab

    def _on_next8_clicked(self) -> None:
        n = self.current_layer.out_channels if self.current_layer else 8
        try:
            last = max(parse_channels(self.max_channels.text(), n, limit=10**6))
        except ValueError:
            last = -1
        a = last + 1 if last + 1 < n else 0
        self.max_channels.setText(f"{a}-{min(a + 7, n - 1)}")

    def start_maximize(self) -> None:
        """Make the pattern each chosen filter of the chosen layer looks for (on a worker;
        pictures appear as they are ready)."""
        if self.model is None or self.current_layer is None:
            self.max_status.setText("Open a model first.")
            return
        info = self.current_layer
        try:
            channels = parse_channels(self.max_channels.text(), info.out_channels)
        except ValueError as e:
            self.max_status.setText(str(e))
            return
        steps, size, stretch = self.max_steps.value(), self.max_size.value(), self.max_stretch.isChecked()
        ctx = (self._model_key, info.module_path, tuple(channels), steps, size, stretch)
        self._asked["maximize"] = ctx
        self.patterns.clear()
        self._patterns_layer = info
        self.max_list.clear()
        self._max_items = {}
        for ch in channels:
            item = QListWidgetItem(self._blank_icon, f"filter {ch}")
            item.setToolTip(f"{info.name}, filter {ch}: computing…")
            self.max_list.addItem(item)
            self._max_items[ch] = item
        total = len(channels) * steps
        self.max_progress.setRange(0, total)
        self.max_progress.setValue(0)
        self.max_progress.setFormat(f"filter 1 of {len(channels)}")
        self.max_progress.show()
        self.max_start.setEnabled(False)
        self.max_stop.setEnabled(True)
        self.max_status.setText(f"Making the patterns of {len(channels)} filters of {info.name}…")

        def work(model, state):
            for i, ch in enumerate(channels):
                img = E.maximize_filter(model, info, ch, steps=steps, size=size, stretch=stretch, seed=ch,
                                        progress=lambda s, t, i=i: state.progress(i * steps + s, total),
                                        should_stop=lambda: state.cancelled)
                state.partial((ch, img, to_qimage(enlarge(img, 144))))
            return len(channels)

        self._lanes["maximize"].submit("maximize", work,
                                       on_partial=lambda r: self._on_pattern(ctx, r),
                                       on_progress=lambda d, t: self._on_maximize_progress(ctx, len(channels),
                                                                                           steps, d, t),
                                       on_finished=lambda n: self._on_maximize_finished(ctx, n),
                                       on_failed=lambda m, tb: self._on_maximize_failed(ctx, m))
        self._update_status()

    def _on_maximize_progress(self, ctx, n: int, steps: int, done: int, total: int) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self.max_progress.setValue(done)
        self.max_progress.setFormat(f"filter {min(done // steps + 1, n)} of {n}")

    def _on_pattern(self, ctx, result) -> None:
        if self._asked.get("maximize") != ctx:
            return
        ch, arr, img = result
        self.patterns[ch] = arr
        item = self._max_items.get(ch)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(img)))
            item.setToolTip(f"{self._patterns_layer.name}, filter {ch}: the pattern it responds to most")
        self.result_shown.emit("pattern")

    def _on_maximize_finished(self, ctx, n: int) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self._asked.pop("maximize", None)
        self._maximize_idle()
        self.max_status.setText(f"Done: {n} filters of {self._patterns_layer.name}.")

    def _on_maximize_failed(self, ctx, message: str) -> None:
        if self._asked.get("maximize") != ctx:
            return
        self._asked.pop("maximize", None)
        self._maximize_idle()
        self.max_status.setText(f"Could not make the patterns: {message}")

    def stop_maximize(self) -> None:
        """Stop making patterns; the ones finished stay."""
        if self._asked.pop("maximize", None) is None:
            return
        self._lanes["maximize"].cancel("maximize")
        self._maximize_idle()
        for ch, item in list(self._max_items.items()):
            if ch not in self.patterns:
                self.max_list.takeItem(self.max_list.row(item))
                del self._max_items[ch]
        self.max_status.setText(f"Stopped: {len(self.patterns)} pattern{'s' if len(self.patterns) != 1 else ''} "
                                f"made.")

    def _maximize_idle(self) -> None:
        self.max_progress.hide()
        self.max_start.setEnabled(True)
        self.max_stop.setEnabled(False)
        self._update_status()

    @property
    def maximizing(self) -> bool:
        return "maximize" in self._asked
