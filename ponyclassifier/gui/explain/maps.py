"""The Explain place's Response maps tab: what each filter of the chosen layer finds in
the picture, and one map large, laid over the photo."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from ...core import explain as E
from ..widgets.image_view import ImageView
from ..workers import array_to_qimage as to_qimage
from .grids import maps_grid, unit_map
from .panels import TIPS, muted

__all__ = ["MapsSection"]


class MapsSection:
    """The Response maps tab of :class:`~ponyclassifier.gui.explain.page.ExplainPage` (a part
    of the page: it shares the page's state and its quick lane)."""

    def _build_maps_tab(self) -> QWidget:
        self.maps_title = QLabel("")
        f = self.maps_title.font()
        f.setBold(True)
        self.maps_title.setFont(f)
        self.maps_contrast = QComboBox()
        self.maps_contrast.addItem("each map on its own", "each")
        self.maps_contrast.addItem("one scale for all", "all")
        self.maps_contrast.setToolTip("Each map on its own: every map stretched to full brightness, so weak "
                                      "responses are visible too. One scale for all: strong and weak filters "
                                      "can be compared.")
        self.maps_contrast.currentIndexChanged.connect(lambda _i: self._refresh())
        self.maps_colours = QComboBox()
        self.maps_colours.addItem("inferno", "inferno")
        self.maps_colours.addItem("gray", "gray")
        self.maps_colours.addItem("jet", "jet")
        self.maps_colours.setToolTip("Colours for the response strength (dark: none, bright: strong)")
        self.maps_colours.currentIndexChanged.connect(lambda _i: self._refresh())
        self.maps_view = ImageView("", pixelated=True)
        self.maps_view.clickable = True
        self.maps_view.setToolTip("Click a map to see it large")
        self.maps_view.clicked.connect(self._on_maps_view_clicked)
        self.map_large = ImageView("Click a map on the left", pixelated=True, min_side=140)
        self.map_overlay = ImageView("", min_side=140)
        self.map_caption = muted("")
        detail = QGroupBox("One map")
        dl = QVBoxLayout(detail)
        dl.addWidget(self.map_caption)
        dl.addWidget(self.map_large, 1)
        dl.addWidget(muted("Laid over the photo:"))
        dl.addWidget(self.map_overlay, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.maps_title, 1)
        controls.addWidget(QLabel("Contrast:"))
        controls.addWidget(self.maps_contrast)
        controls.addWidget(QLabel("Colours:"))
        controls.addWidget(self.maps_colours)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.maps_view)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(muted(TIPS["maps"]))
        lay.addLayout(controls)
        lay.addWidget(split, 1)
        return tab

    def _request_maps(self) -> None:
        ctx = self._needs("maps")
        if ctx is None:
            if self._input is None and self.image is None:
                self.maps_view.set_message("Choose an image above to see what this layer finds in it.")
            return
        self._asked["maps"] = ctx
        info, x = self.current_layer, self._input
        normalise, colours = self.maps_contrast.currentData(), self.maps_colours.currentData()

        def work(model, state):
            maps = E.activations(model, x, info)
            state.check()
            grid, cols, pad = maps_grid(maps, normalise, colours)
            return maps, to_qimage(grid), cols, pad

        self.maps_view.set_message(f"Computing the response maps of {info.name}…", keep_image=True)
        self._lanes["quick"].submit("maps", work, on_finished=lambda r: self._on_maps(ctx, info, r),
                                    on_failed=lambda m, tb: self._on_view_failed("response maps", m))

    def _on_maps(self, ctx: tuple, info: E.LayerInfo, result) -> None:
        if not self._settle("maps", ctx):
            return
        maps, img, cols, pad = result
        same_maps = self.maps is not None and self._done.get("maps", ())[:3] == ctx[:3]
        self.maps = maps
        self._done["maps"] = ctx
        n, h, w = maps.shape
        self._maps_geometry = (cols, pad, h, w)
        self.maps_view.set_image(img)
        self.maps_title.setText(f"{info.name}: {n} channel{'s' if n != 1 else ''} (response maps) of "
                                f"{h} × {w}")
        if not same_maps or self.selected_map is None or self.selected_map >= n:
            # Start with the map with the most contrast: it shows where, not just how much.
            self.selected_map = int(np.argmax(maps.reshape(n, -1).std(1)))
        self.show_map(self.selected_map)
        self.result_shown.emit("maps")

    def _on_maps_view_clicked(self, x: int, y: int) -> None:
        if self.maps is None or self._maps_geometry is None:
            return
        cols, pad, h, w = self._maps_geometry
        c, r = x // (w + pad), y // (h + pad)
        if x % (w + pad) >= w or y % (h + pad) >= h or c >= cols:
            return
        i = r * cols + c
        if i < len(self.maps):
            self.show_map(i)

    def show_map(self, index: int) -> None:
        """Show response map ``index`` of the current layer large, and laid over the photo."""
        if self.maps is None or not 0 <= index < len(self.maps):
            return
        self.selected_map = index
        if self._maps_geometry is not None:
            cols, pad, h, w = self._maps_geometry
            r, c = divmod(index, cols)
            self.maps_view.set_highlight(QRect(c * (w + pad), r * (h + pad), w, h))
        m = self.maps[index]
        n = len(self.maps)
        self.map_caption.setText(f"Channel {index} of {n} (0–{n - 1}) · strongest {float(m.max()):.3g}, "
                                 f"average {float(m.mean()):.3g}")
        colours, photo = self.maps_colours.currentData(), self.image

        def work(state):
            u = unit_map(m)
            large = E.apply_colormap(u, colours)
            over = (E.overlay(photo, u, E.CAM_OPACITY, colormap="jet", weight_by_heat=True)
                    if photo is not None else None)
            return to_qimage(large), (to_qimage(over) if over is not None else None)

        self._map_detail_lane.submit(work, on_finished=self._on_map_detail)

    def _on_map_detail(self, result) -> None:
        large, over = result
        self.map_large.set_image(large)
        if over is not None:
            self.map_overlay.set_image(over)
        self.result_shown.emit("map")
