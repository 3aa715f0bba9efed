"""The Explain place's convolution layers (the table to pick one) and the Filters tab:
the first layer's kernels and the chosen layer's, per input channel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core import explain as E
from ..widgets.image_view import ImageView
from ..workers import array_to_qimage as to_qimage
from .grids import kernel_grid
from .panels import TIPS, muted

__all__ = ["FiltersSection"]


class FiltersSection:
    """The layer table and the Filters tab of :class:`~ponyclassifier.gui.explain.page.ExplainPage`
    (a part of the page: it shares the page's state and its quick lane)."""

    def _build_layers_box(self) -> QGroupBox:
        self.layer_table = QTableWidget(0, 3)
        self.layer_table.setHorizontalHeaderLabels(["Layer", "Kernel", "Output"])
        self.layer_table.horizontalHeaderItem(2).setToolTip("Response maps: channels × height × width")
        self.layer_table.verticalHeader().hide()
        self.layer_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.layer_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.layer_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.layer_table.setAlternatingRowColors(True)
        self.layer_table.setWordWrap(False)
        self.layer_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        hh = self.layer_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.layer_table.setToolTip("The network's convolution layers, from the pixels (top) to the last one. "
                                    "Pick a layer to see its filters, its response maps and what its filters "
                                    "look for.")
        self.layer_table.itemSelectionChanged.connect(self._on_layer_table_selection_changed)
        layers_box = QGroupBox("Convolution layers")
        ll = QVBoxLayout(layers_box)
        ll.addWidget(self.layer_table)
        return layers_box

    def _build_filters_tab(self) -> QWidget:
        self.first_view = ImageView("", pixelated=True)
        self.first_caption = muted("")
        first_box = QGroupBox("First layer: what the network looks for in the pixels")
        fl = QVBoxLayout(first_box)
        fl.addWidget(self.first_caption)
        fl.addWidget(self.first_view, 1)

        self.in_channel = QSpinBox()
        self.in_channel.setMinimum(-1)
        self.in_channel.setSpecialValueText("all (average)")
        self.in_channel.setToolTip("A filter of a deeper layer reads every response map of the layer before "
                                   "(its input channels). Show the part of each filter that reads one input "
                                   "channel, or the average over all of them.")
        self.in_channel.valueChanged.connect(lambda _v: self._refresh())
        self.layer_filters_view = ImageView("", pixelated=True)
        self.layer_filters_caption = muted("")
        self.layer_filters_box = QGroupBox("Chosen layer")
        cl = QVBoxLayout(self.layer_filters_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Input channel:"))
        row.addWidget(self.in_channel)
        row.addStretch(1)
        cl.addLayout(row)
        cl.addWidget(self.layer_filters_caption)
        cl.addWidget(self.layer_filters_view, 1)

        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(muted(TIPS["filters"]))
        boxes = QSplitter(Qt.Orientation.Vertical)
        boxes.addWidget(first_box)
        boxes.addWidget(self.layer_filters_box)
        boxes.setChildrenCollapsible(False)
        lay.addWidget(boxes, 1)
        return tab

    def select_layer(self, layer: int | str | E.LayerInfo) -> None:
        """Pick a layer as if clicked in the table: by index, name or module path."""
        info = E.find_layer(None, layer, self.layers) if not isinstance(layer, int) else self.layers[layer]
        self.layer_table.selectRow(self.layers.index(info))

    def _fill_layer_table(self) -> None:
        t = self.layer_table
        t.blockSignals(True)
        t.setRowCount(len(self.layers))
        for r, info in enumerate(self.layers):
            kh, kw = info.kernel_size
            cells = (info.name, f"{kh}×{kw}", "×".join(str(v) for v in info.output_shape))
            tips = (f"{info.name}: {info.out_channels} filters reading {info.in_channels} channels",
                    "Each filter is a small window of this size" +
                    (" that looks at one channel only (depthwise)" if info.kind == "depthwise" else ""),
                    f"{info.output_shape[0]} response maps of {info.output_shape[1]} × {info.output_shape[2]} "
                    f"for a {self.model.image_size} px input")
            for c, (text, tip) in enumerate(zip(cells, tips)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(r, c, item)
        t.blockSignals(False)
        self.current_layer = self.layers[0] if self.layers else None
        if self.layers:
            t.selectRow(0)
        self._on_layer_changed()

    def _on_layer_table_selection_changed(self) -> None:
        rows = {i.row() for i in self.layer_table.selectedIndexes()}
        if not rows or not self.layers:
            return
        info = self.layers[min(rows)]
        if info != self.current_layer:
            self.current_layer = info
            self._on_layer_changed()

    def _on_layer_changed(self) -> None:
        info = self.current_layer
        if info is None:
            return
        per_filter = info.in_channels // max(info.groups, 1)
        self.in_channel.blockSignals(True)
        self.in_channel.setMaximum(per_filter - 1 if per_filter > 1 else -1)
        self.in_channel.setValue(-1)
        self.in_channel.setEnabled(per_filter > 1)
        self.in_channel.setSpecialValueText("all (colour)" if per_filter == 3 else
                                            "its own channel" if per_filter == 1 else "all (average)")
        self.in_channel.blockSignals(False)
        self.layer_filters_box.setTitle(f"Chosen layer: {info.name}")
        self.max_layer_label.setText(f"Layer: {info.name} · {info.out_channels} filters "
                                     f"(pick another layer in the table on the left)")
        self.selected_map = None
        self._refresh()

    def _request_filters(self, which: str) -> None:
        """Compute the filter grid of the first layer (``which="first_filters"``) or of the
        chosen layer and input channel (``"layer_filters"``) on the quick lane."""
        ctx = self._needs(which)
        if ctx is None:
            return
        self._asked[which] = ctx
        if which == "first_filters":
            info, ch, view = self.layers[0], -1, self.first_view
        else:
            info, ch, view = self.current_layer, self.in_channel.value(), self.layer_filters_view

        def work(model, state):
            f = E.layer_filters(model, info, in_channel=None if ch < 0 else ch)
            grid, cols, scale = kernel_grid(f)
            return f, to_qimage(grid), scale

        view.set_message("Computing…", keep_image=True)
        self._lanes["quick"].submit(which, work,
                                    on_finished=lambda r: self._on_filters(which, ctx, info, ch, r),
                                    on_failed=lambda m, tb: self._on_view_failed("filters", m))

    def _on_filters(self, which: str, ctx: tuple, info: E.LayerInfo, ch: int, result) -> None:
        if not self._settle(which, ctx):
            return
        f, img, scale = result
        self._done[which] = ctx
        n, kh, kw, c = f.shape
        if which == "first_filters":
            self.first_filters = f
            self.first_view.set_image(img)
            colour = "colour" if c == 3 else "gray"
            self.first_caption.setText(f"{info.name}: {n} {colour} filters of {kh} × {kw} pixels, shown "
                                       f"{scale} times larger. Bright: the filter likes light there, dark: it "
                                       f"likes dark there.")
            self.result_shown.emit(which)
            return
        self.chosen_filters = f
        self.layer_filters_view.set_image(img)
        per_filter = info.in_channels // max(info.groups, 1)
        if info.groups > 1 and per_filter == 1:
            what = (f"{n} depthwise filters of {kh} × {kw}: each looks at one channel only, so there is "
                    f"one kernel per channel")
        elif ch >= 0:
            what = f"{n} filters of {kh} × {kw}, the part that reads input channel {ch} of {per_filter}"
        elif c == 3:
            what = f"{n} colour filters of {kh} × {kw}"
        elif per_filter == 1:
            what = f"{n} filters of {kh} × {kw}"
        else:
            what = f"{n} filters of {kh} × {kw}, averaged over their {per_filter} input channels"
        if (kh, kw) == (1, 1):
            what += (". A 1 × 1 filter has no spatial pattern: it mixes the channels at each spot, so each "
                     "square is a single weight")
        self.layer_filters_caption.setText(what + ".")
        self.result_shown.emit(which)
