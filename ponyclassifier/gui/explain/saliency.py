"""The Explain place's Saliency tab: where did the model look? Pixel gradients, Grad-CAM
and occlusion side by side for the predicted or a chosen class, each laid over the photo
by the core's one heat overlay rule (:func:`core.explain.overlay`)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ...core import explain as E
from ..widgets.format import percent
from ..workers import array_to_qimage as to_qimage
from .panels import TIPS, SaliencyGrid, SaliencyPanel, muted

__all__ = ["SaliencySection"]


class SaliencySection:
    """The Saliency tab of :class:`~ponyclassifier.gui.explain.page.ExplainPage` (a part of
    the page: it shares the page's state, its quick lane and its occlusion lane)."""

    def _build_saliency_tab(self) -> QWidget:
        self.target_combo = QComboBox()
        self.target_combo.setMaxVisibleItems(20)
        self.target_combo.setMinimumContentsLength(22)
        self.target_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_combo.setToolTip("Which class to explain: the model's answer, or any other class "
                                     "(“why might this be a …?”). Classes are listed from most to least likely.")
        self.target_combo.activated.connect(self._on_target_combo_activated)
        self.cam_combo = QComboBox()
        self.cam_combo.setMinimumContentsLength(16)
        self.cam_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cam_combo.setToolTip("The layer Grad-CAM looks at. The last ones (the default) show where the "
                                  "evidence for the class is; earlier ones give finer but noisier maps.")
        self.cam_combo.currentIndexChanged.connect(lambda _i: self._refresh())
        self.smooth_box = QCheckBox("SmoothGrad")
        self.smooth_box.setToolTip("Average the gradients of 16 slightly noisy copies of the image: less "
                                   "speckle, 16 times the work")
        self.smooth_box.toggled.connect(lambda _b: self._refresh())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMaximumWidth(160)
        self.opacity.setToolTip("How strongly the maps cover the photo")
        self.opacity_label = QLabel("50%")
        self.opacity_label.setMinimumWidth(34)
        self.opacity.valueChanged.connect(self._on_opacity_value_changed)
        self.hot_only = QCheckBox("Colour only the hot spots")
        self.hot_only.setToolTip("Leave the photo bare where the map is cold")
        self.hot_only.toggled.connect(lambda _b: self._overlay_timer.start())
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Explain the class:"))
        controls.addWidget(self.target_combo, 2)
        controls.addSpacing(8)
        controls.addWidget(QLabel("Grad-CAM layer:"))
        controls.addWidget(self.cam_combo, 1)
        controls2 = QHBoxLayout()
        controls2.addWidget(self.smooth_box)
        controls2.addSpacing(12)
        controls2.addWidget(QLabel("Opacity:"))
        controls2.addWidget(self.opacity)
        controls2.addWidget(self.opacity_label)
        controls2.addWidget(self.hot_only)
        controls2.addStretch(1)

        self.original_panel = SaliencyPanel("Original", "What the model is shown.", "The picture, as chosen.")
        self.gradients_panel = SaliencyPanel(
            "Pixel gradients", "Pixels that change the score most.",
            "How much the class's score changes when each pixel changes a little (Simonyan et al.). "
            "Speckled by nature; SmoothGrad calms it.")
        self.cam_panel = SaliencyPanel(
            "Grad-CAM", "Where the layer found evidence for the class.",
            "The chosen layer's response maps, weighted by how much each one raises the class's score "
            "(Selvaraju et al.). Coarse, but clearly about this class.")
        self.occlusion_panel = SaliencyPanel(
            "Occlusion", "How much the probability drops when a gray patch hides each spot.",
            "A gray square is slid over the picture; where hiding it lowers the class's probability most, "
            "the map is hot (Zeiler & Fergus). Slow: one prediction per position.", stoppable=True)
        self.occlusion_panel.stop_button.clicked.connect(self._on_occlusion_stop_clicked)
        self.occlusion_panel.run_button.clicked.connect(self._on_occlusion_run_clicked)
        self.panels = {"gradients": self.gradients_panel, "cam": self.cam_panel, "occlusion": self.occlusion_panel}
        grid = SaliencyGrid([self.original_panel, self.gradients_panel, self.cam_panel, self.occlusion_panel])
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(muted(TIPS["saliency"]))
        lay.addLayout(controls)
        lay.addLayout(controls2)
        lay.addWidget(grid, 1)
        return tab

    def set_target(self, class_index: int | None) -> None:
        """Explain this class (None: the predicted one), as if chosen in the combo."""
        self._chosen_target = -1 if class_index is None else int(class_index)
        i = self.target_combo.findData(self._chosen_target)
        if i >= 0:
            self.target_combo.setCurrentIndex(i)
        self._refresh()

    def set_cam_layer(self, layer: str | E.LayerInfo) -> None:
        path = layer.module_path if isinstance(layer, E.LayerInfo) else E.find_layer(None, layer, self.layers).module_path
        self.cam_combo.setCurrentIndex(self.cam_combo.findData(path))

    def _fill_cam_combo(self) -> None:
        self.cam_combo.blockSignals(True)
        self.cam_combo.clear()
        for info in self.layers:
            if info.output_shape[1] > 1 and info.output_shape[2] > 1:
                self.cam_combo.addItem(f"{info.name}  ({info.output_shape[1]}×{info.output_shape[2]})",
                                       info.module_path)
        if self._cam_default is not None:
            self.cam_combo.setCurrentIndex(max(0, self.cam_combo.findData(self._cam_default.module_path)))
        self.cam_combo.blockSignals(False)

    def _fill_target_combo(self) -> None:
        combo = self.target_combo
        combo.blockSignals(True)
        combo.clear()
        classes, probs = self.model.classes, self.probabilities
        combo.addItem(f"Predicted: {classes[self.predicted]} ({percent(float(probs[self.predicted]))})", -1)
        combo.insertSeparator(1)
        for i in np.argsort(-probs):
            combo.addItem(f"{classes[i]} — {percent(float(probs[i]))}", int(i))
        combo.setCurrentIndex(max(0, combo.findData(self._chosen_target)))
        combo.blockSignals(False)

    def _target(self) -> int | None:
        if self.predicted is None:
            return None
        return self.predicted if self._chosen_target < 0 else self._chosen_target

    def _request_saliency(self) -> None:
        if self.image is None:
            for panel in self.panels.values():
                panel.view.set_message("Choose an image above.")
            return
        if self._pred_ctx != (self._model_key, self._image_key):
            for panel in self.panels.values():
                panel.view.set_message("Waiting for the prediction…", keep_image=True)
            return
        for view in ("gradients", "cam", "occlusion"):
            ctx = self._needs(view)
            if ctx is None:
                continue
            if view == "occlusion" and self._stopped.get(view) == ctx:
                continue  # stopped by the user for this very image and class: only the button restarts it
            self._request_heat(view, ctx)

    def _request_heat(self, view: str, ctx: tuple) -> None:
        self._asked[view] = ctx
        self._stopped.pop(view, None)
        x, target = self._input, ctx[2]
        panel = self.panels[view]
        lane = self._lanes["occlusion" if view == "occlusion" else "quick"]
        if view == "gradients":
            smooth = 16 if ctx[3] else 0

            def work(model, state):
                return E.vanilla_gradients(model, x, target=target, smooth=smooth, progress=state.progress,
                                           should_stop=lambda: state.cancelled)
        elif view == "cam":
            layer = self._layer_by_path(ctx[3])

            def work(model, state):
                return E.grad_cam(model, x, target=target, layer_name=layer)
        else:
            def work(model, state):
                # The raw drop in probability, so the caption can say how much hiding a spot
                # matters; the map itself is scaled to its largest drop for display.
                raw = E.occlusion(model, x, target=target, normalise=False, progress=state.progress,
                                  should_stop=lambda: state.cancelled)
                top = float(raw.max())
                return (raw / top if top > 0 else raw), top

        panel.busy(text="Computing…" if view != "occlusion" else "Computing occlusion…")
        lane.submit(view, work, on_finished=lambda r: self._on_heat(view, ctx, r),
                    on_failed=lambda m, tb: self._on_heat_failed(view, ctx, m),
                    on_progress=lambda d, t: self._on_heat_progress(view, ctx, d, t))
        self._update_status()

    def _on_heat_progress(self, view: str, ctx: tuple, done: int, total: int) -> None:
        if self._asked.get(view) == ctx:
            self.panels[view].busy(done, total, f"{done} of {total}…" if view == "occlusion" else "Computing…")

    def _on_heat(self, view: str, ctx: tuple, heat) -> None:
        if not self._settle(view, ctx):
            self._update_status()
            return
        panel = self.panels[view]
        panel.idle()
        if view == "occlusion":
            heat, top = heat
            p = float(self.probabilities[ctx[2]])
            panel.caption.setText(
                f"Hiding one spot lowers the probability ({percent(p)}) by at most {top * 100:.1f} points."
                if top > 0 else "Hiding any one spot does not lower the probability.")
        else:
            panel.caption.setText(panel.base_caption)
        self._done[view] = ctx
        self.heat[view] = np.asarray(heat, dtype=np.float32)
        self._heat_ctx[view] = ctx
        self._overlay_timer.start()
        self._update_status()
        self.result_shown.emit(view)

    def _on_heat_failed(self, view: str, ctx: tuple, message: str) -> None:
        if not self._settle(view, ctx):
            self._update_status()
            return
        panel = self.panels[view]
        panel.idle()
        panel.view.set_message(f"Could not compute this map: {message}")
        self._say(f"{panel.title.text()}: {message}")
        self._update_status()

    def _on_occlusion_stop_clicked(self) -> None:
        self.stop_occlusion()

    def stop_occlusion(self) -> None:
        """Stop the occlusion map being computed (it stays stopped for this image and class)."""
        ctx = self._asked.pop("occlusion", None)
        if "occlusion" in self._lanes:
            self._lanes["occlusion"].cancel("occlusion")
        if ctx is None:
            return
        self._stopped["occlusion"] = ctx
        panel = self.occlusion_panel
        panel.idle()
        panel.run_button.setText("Compute again")
        panel.run_button.show()
        panel.view.set_message("Stopped.", keep_image=bool(panel.view.image()))
        self._say("Occlusion stopped")
        self._update_status()

    def _on_occlusion_run_clicked(self) -> None:
        self._stopped.pop("occlusion", None)
        self.occlusion_panel.run_button.hide()
        self._refresh()

    def _on_target_combo_activated(self, index: int) -> None:
        data = self.target_combo.itemData(index)
        self._chosen_target = -1 if data is None else int(data)
        self._refresh()

    def _on_opacity_value_changed(self, v: int) -> None:
        self.opacity_label.setText(f"{v}%")
        self._overlay_timer.start()

    def _compute_overlays(self) -> None:
        """Paint every current heat map over the photo (core.explain.overlay), on a worker."""
        if self._closed or self.image is None:
            return
        current = {k: v for k, v in self.heat.items()
                   if self._heat_ctx.get(k) is not None and self._heat_ctx[k][:2] == (self._model_key, self._image_key)}
        if not current:
            return
        photo, alpha, hot = self.image, self.opacity.value() / 100.0, self.hot_only.isChecked()
        ctxs = {k: self._heat_ctx[k] for k in current}

        def work(state):
            out = {}
            for k, h in current.items():
                state.check()
                o = E.overlay(photo, h, alpha, weight_by_heat=hot)
                out[k] = (o, to_qimage(o))
            return out

        self._overlay_lane.submit(work, on_finished=lambda r: self._on_overlays(ctxs, r))

    def _on_overlays(self, ctxs: dict, result: dict) -> None:
        if self._closed:
            return
        for k, (arr, img) in result.items():
            if self._heat_ctx.get(k) != ctxs[k]:
                continue
            self.overlays[k] = arr
            panel = self.panels[k]
            panel.view.set_image(img)
            if self._asked.get(k) is not None:  # a newer map is on its way
                panel.view.set_message(panel.view.message() or "Computing…", keep_image=True)
        self._caption_panels()
        self.result_shown.emit("overlays")

    def _caption_panels(self) -> None:
        if self.model is None or self.predicted is None:
            return
        cls = self.model.classes
        for k, panel in self.panels.items():
            ctx = self._heat_ctx.get(k)
            if ctx is None:
                continue
            what = cls[ctx[2]] if 0 <= ctx[2] < len(cls) else "?"
            extra = ""
            if k == "cam":
                layer = self._layer_by_path(ctx[3])
                extra = f" · layer {layer.name}" if layer else ""
            elif k == "gradients" and ctx[3]:
                extra = " · SmoothGrad"
            panel.title.setText(f"{panel.base_title} — {what}{extra}")
