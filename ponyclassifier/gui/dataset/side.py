"""The side tabs of the Dataset place: the large preview of the current image, the
Augmentation tab (:class:`.augment_preview.QtAugmentPreview`) and the Similar tab
(:class:`.similar.QtSimilarPanel`), both built the first time they are wanted (they bring
torch in). A mixin of :class:`.browser.QtDatasetBrowser`."""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractItemView, QWidget

from .model import THUMB_SIZE, ClassRole, PathRole


class SideTools:
    """Preview, augmentation and similar images of the selection (see the module docstring)."""

    # ------------------------------------------------------------------ preview
    def _on_view_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if not current.isValid():
            self.preview.show_nothing()
            self._preview_path = None
            if self.augment is not None:
                self.augment.set_image(None)
            return
        path = current.data(PathRole)
        if path == self._preview_path:
            return
        self._preview_path = path
        self.preview.show_loading(path, current.data(ClassRole))
        self.loader.request_preview(path, 1024)
        if self.augment is not None and self.side_tabs.currentWidget() is self._augment_page:
            self.augment.set_image(path)

    def _on_loader_preview_ready(self, path: str, image: QImage, info: dict) -> None:
        if path == self._preview_path:
            self.preview.show_image(image, info)

    def _on_loader_preview_failed(self, path: str, reason: str) -> None:
        if path == self._preview_path:
            self.preview.show_broken(reason)
        self._note_status(path, "bad", reason)

    # ------------------------------------------------------------------ side tabs
    def show_side_tab(self, name: str) -> QWidget:
        """Show the "preview", "augment" or "similar" tab; its panel (built if need be)."""
        self.side_tabs.setCurrentIndex(self.SIDE_TABS.index(name))
        return {"preview": self.preview, "augment": self.augment, "similar": self.similar}[name]

    def side_tab(self) -> str:
        return self.SIDE_TABS[self.side_tabs.currentIndex()]

    def augment_panel(self):
        """The Augmentation tab's panel (built on first use: it brings torch in)."""
        if self.augment is None:
            from .augment_preview import QtAugmentPreview  # noqa: PLC0415

            self.augment = QtAugmentPreview(count=12, columns=4, tile=92, stacked=True)
            if self._augment_config:
                try:
                    self.augment.set_config(self._augment_config)
                except (TypeError, ValueError, KeyError):
                    pass  # remembered by an older version: the defaults it is
            self.augment.config_changed.connect(self._on_augment_config_changed)
            self._augment_page.layout().addWidget(self.augment)
        return self.augment

    def similar_panel(self):
        """The Similar tab's panel (built on first use)."""
        if self.similar is None:
            from .similar import QtSimilarPanel  # noqa: PLC0415

            self.similar = QtSimilarPanel(self._cache_dir, thumb_size=112)
            self.similar.heading.hide()  # the tab says it
            self.similar.delete_requested.connect(self._on_similar_delete_requested)
            self.similar.image_clicked.connect(self._on_similar_image_clicked)
            self._similar_page.layout().addWidget(self.similar)
        return self.similar

    def set_augment_config(self, config: dict | None) -> None:
        """The augmentation strengths to show (remembered ones, from the settings)."""
        self._augment_config = dict(config) if config else None
        if self.augment is not None and config:
            self.augment.set_config(config)

    def augment_config(self) -> dict | None:
        return self.augment.config_dict() if self.augment is not None else self._augment_config

    def _on_augment_config_changed(self, config: dict) -> None:
        self._augment_config = dict(config)
        self.augment_config_changed.emit(dict(config))

    def _on_side_tabs_current_changed(self, index: int) -> None:
        page = self.side_tabs.widget(index)
        if page is self._augment_page:
            panel = self.augment_panel()
            if panel.path != self._preview_path:
                panel.set_image(self._preview_path)
        elif page is self._similar_page:
            self.similar_panel()
        self._fit_side_pane(index)
        self.side_tab_changed.emit(self.SIDE_TABS[index])

    def _fit_side_pane(self, index: int) -> None:
        """Give the side pane the width this tab had last time, or at least what its panel
        needs; the grid gives way (down to a column of thumbnails or two)."""
        sizes = self.splitter.sizes()
        if len(sizes) != 3 or sum(sizes) <= 0:
            return
        self._side_widths[self._side_index] = sizes[2]
        self._side_index = index
        want = self._side_widths.get(index)
        if want is None:
            panel = {1: self.augment, 2: self.similar}.get(index) or self.side_tabs.widget(index)
            want = max(sizes[2], panel.sizeHint().width() + 4)
        # the grid keeps its filter bar whole and two columns of thumbnails
        need = max(self._title_row.sizeHint().width(), (THUMB_SIZE + 22) * 2 + 30)
        want = min(want, sizes[2] + max(sizes[1] - need, 0))
        if want != sizes[2]:
            self.splitter.setSizes([sizes[0], sizes[1] - (want - sizes[2]), want])

    def _reset_tools(self) -> None:
        """Another project: the panels forget the old one's images."""
        if self.augment is not None:
            self.augment.shutdown()
            self.augment.set_image(None)
        if self.similar is not None:
            self.similar.clear()

    # ------------------------------------------------------------------ similar
    def find_duplicates(self) -> bool:
        """Scan every image of the project for exact and near duplicates (Similar tab)."""
        paths = self.model.all_paths()
        if not paths:
            return self._refuse("Open a project with images first.")
        panel = self.show_side_tab("similar")
        panel.scan(paths)
        return True

    def find_similar_to(self, path: str | None = None) -> bool:
        """Show the images most like ``path`` (default: the current one) in the Similar tab;
        the first search indexes the project (on a worker)."""
        if path is None:
            cur = self.view.currentIndex()
            path = cur.data(PathRole) if cur.isValid() else None
        if not path:
            return self._refuse("Select an image first.")
        panel = self.show_side_tab("similar")
        if panel.index is None and not panel.busy:
            panel.set_paths(self.model.all_paths())
        panel.find_similar(path)
        return True

    def reveal_path(self, path: str) -> bool:
        """Select ``path`` in the grid, showing its class first if the filters hide it."""
        entry = self.model.entry(path)
        if entry is None:
            return self._refuse(f"{os.path.basename(path)} is not in the project any more.")
        if self.model.row_of(path) is None:
            cls = entry[0] if entry[0] in self.classes else None
            self._show_class_quietly(cls, lambda: self.model.set_filters(cls, None, None))
        self.select_paths([path])
        row = self.model.row_of(path)
        if row is not None:
            self.view.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _on_similar_image_clicked(self, path: str) -> None:
        self.reveal_path(path)

    def _on_similar_delete_requested(self, paths: list) -> None:
        self.delete_paths(list(paths))

    def _forget_gone_in_similar(self) -> None:
        """Deleted or moved files leave the Similar tab's pairs and results."""
        if self.similar is None or not self.similar.paths:
            return
        gone = [p for p in self.similar.paths if self.model.entry(p) is None]
        if gone:
            self.similar.forget_paths(gone)
