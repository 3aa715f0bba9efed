"""The class list, the filter bar and the selection of the Dataset place: counts and
warnings per class (too few images, unbalanced), which class / split / status the grid
shows, the titles, and which actions are possible now. A mixin of
:class:`.browser.QtDatasetBrowser`."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import QAbstractItemView, QMenu, QStyle, QTreeWidgetItem

from ...core.folders import class_warnings  # torch-free
from .model import COL_COUNT, COL_KEY, COL_NAME, NameRole, PathRole
from .views import _camera_icon


class ClassList:
    """Classes, filters and selection (see the module docstring)."""

    # ------------------------------------------------------------------ classes
    def _set_classes(self, classes: list[str], select: str | None = "keep") -> None:
        """Rebuild the class list if it changed; keep the class shown (or show ``select``)."""
        current = self.model.class_filter if select == "keep" else select
        if current is not None and current not in classes:
            current = None
        if classes != self.classes or self.class_tree.topLevelItemCount() != len(classes) + 1:
            self.classes = list(classes)
            self._rebuild_class_tree(current)
        if current != self.model.class_filter:
            self._show_class_quietly(current, lambda: self.model.set_class_filter(current))

    def _show_class_quietly(self, cls: str | None, set_filter) -> None:
        """Make ``cls``'s row current without the tree's signals, apply ``set_filter()`` to the
        model and update what follows a filter change."""
        self.class_tree.blockSignals(True)
        self.class_tree.setCurrentItem(self.class_item(cls))
        self.class_tree.blockSignals(False)
        set_filter()
        self._after_filter_change()

    def _rebuild_class_tree(self, current: str | None = None) -> None:
        self.class_tree.blockSignals(True)
        self.class_tree.clear()
        all_item = QTreeWidgetItem(["", "All images", "0"])
        all_item.setData(COL_NAME, NameRole, None)
        f = all_item.font(COL_NAME)
        f.setBold(True)
        all_item.setFont(COL_NAME, f)
        all_item.setFont(COL_COUNT, f)
        all_item.setTextAlignment(COL_COUNT, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.class_tree.addTopLevelItem(all_item)
        dim = self.palette().color(QPalette.ColorRole.PlaceholderText)
        chosen = all_item
        for i, c in enumerate(self.classes):
            it = QTreeWidgetItem([str(i + 1) if i < 9 else "", c, "0"])
            it.setData(COL_NAME, NameRole, c)
            it.setForeground(COL_KEY, dim)
            it.setTextAlignment(COL_KEY, Qt.AlignmentFlag.AlignCenter)
            it.setTextAlignment(COL_COUNT, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if i < 9:
                it.setToolTip(COL_KEY, f"Press {i + 1} in the grid to move the selected images to {c}")
            self.class_tree.addTopLevelItem(it)
            if c == current:
                chosen = it
        self.class_tree.setCurrentItem(chosen)
        self.class_tree.blockSignals(False)
        self._update_class_counts()

    def class_problems(self) -> dict[str, str]:
        """Per class, why it may train badly (the core's rule: too few images, strong imbalance)."""
        return class_warnings(self.counts)

    def _refresh_counts(self) -> None:
        self.split_counts = self.model.class_counts()
        self.counts = {c: self.split_counts.get(c, {}).get("total", 0) for c in self.classes}
        for c, d in self.split_counts.items():  # files in folders the class list has not seen yet
            if c:  # "" holds the unlabelled images in the project root: not a class
                self.counts.setdefault(c, d["total"])
        self._update_class_counts()
        self.counts_changed.emit(self.model.file_count(), len(self.classes))

    def _count_key(self) -> str:
        """Which number the count column shows: all images, or those of the split / status shown."""
        return self.model.status_filter or self.model.split_filter or "total"

    def _update_class_counts(self) -> None:
        problems = self.class_problems() if not self.listing else {}
        if self._warn_icon is None:
            self._warn_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        warn = self._warn_icon
        key = self._count_key()
        self.class_tree.headerItem().setText(COL_COUNT, "Images" if key == "total" else key.capitalize())
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            c = it.data(COL_NAME, NameRole)
            if c is None:
                n = sum(d.get(key, 0) for d in self.split_counts.values())
                it.setText(COL_COUNT, f"{n:,}")
                continue
            d = self.split_counts.get(c, {})
            it.setText(COL_COUNT, f"{d.get(key, 0):,}")
            total = self.counts.get(c, 0)
            tip = f"{c}: {total:,} image{'s' if total != 1 else ''}"
            if self.project is not None and d:
                tip += (f"\ntrain {d['train']:,} · val {d['val']:,} · test {d['test']:,}"
                        + (f" · no split {d['unassigned']:,}" if d["unassigned"] else "")
                        + (f"\n{d['bad']:,} unreadable" if d["bad"] else ""))
            problem = problems.get(c)
            if problem:
                tip += f"\n⚠ {problem}"
            it.setIcon(COL_NAME, warn if problem else QIcon())
            for col in (COL_NAME, COL_COUNT):
                it.setToolTip(col, tip)
        if problems:
            self.class_hint.setText(f"⚠ {len(problems)} class{'es' if len(problems) != 1 else ''} may train "
                                    "badly; hover for why.")
        elif self.can_edit and self.classes:
            self.class_hint.setText("Drop pictures on a class to add them. Keys 1–9 move the selected images.")
        else:
            self.class_hint.setText("")

    def class_item(self, name: str | None) -> QTreeWidgetItem | None:
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            if it.data(COL_NAME, NameRole) == name:
                return it
        return None

    def select_class(self, name: str | None) -> None:
        it = self.class_item(name)
        if it is not None:
            self.class_tree.setCurrentItem(it)

    def selected_classes(self) -> list[str]:
        return [c for c in (it.data(COL_NAME, NameRole) for it in self.class_tree.selectedItems()) if c]

    def _current_class(self) -> str | None:
        it = self.class_tree.currentItem()
        return it.data(COL_NAME, NameRole) if it is not None else None

    def _on_class_tree_current_changed(self, current, previous) -> None:
        name = current.data(COL_NAME, NameRole) if current is not None else None
        self.model.set_class_filter(name)
        self._after_filter_change()

    def _on_class_tree_context_menu(self, pos) -> None:
        it = self.class_tree.itemAt(pos)
        if it is not None and not it.isSelected():
            self.class_tree.setCurrentItem(it)
        menu = self.class_tree_menu()
        menu.exec(self.class_tree.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def class_tree_menu(self) -> QMenu:
        """The class list's context menu, for the current class."""
        menu = QMenu(self)
        cls = self._current_class()
        if cls is not None:
            cap = menu.addAction(_camera_icon(self.palette(), 16), f"Capture into {cls}…")
            cap.setEnabled(self.act_capture.isEnabled())
            cap.triggered.connect(lambda checked=False, c=cls: self.open_capture(c))
            menu.addSeparator()
        for a in (self.act_new_class, self.act_rename_class, self.act_merge_classes, self.act_delete_class):
            menu.addAction(a)
        return menu

    # ------------------------------------------------------------------ filters
    def set_split_filter(self, split: str | None) -> None:
        self.model.set_filters(self.model.class_filter, split, self.model.status_filter)
        self._after_filter_change()

    def set_status_filter(self, status: str | None) -> None:
        self.model.set_filters(self.model.class_filter, self.model.split_filter, status)
        self._after_filter_change()

    def _sync_filter_buttons(self) -> None:
        self.split_buttons[1][self.model.split_filter].setChecked(True)
        self.status_buttons[1][self.model.status_filter].setChecked(True)

    def _after_filter_change(self) -> None:
        self._sync_filter_buttons()
        self._update_titles()
        self._update_class_counts()
        if self.model.rowCount():
            self.grid_stack.setCurrentWidget(self.view)
            self.view.setCurrentIndex(self.model.index(0))
            self.view.scrollToTop()
        else:
            self.preview.show_nothing()
        self._update_actions()

    def _update_titles(self) -> None:
        name = self.model.class_filter
        n = self.model.rowCount()
        parts = [name or "All images"]
        if self.model.split_filter:
            parts.append(self.model.split_filter)
        if self.model.status_filter:
            parts.append(self.model.status_filter)
        self.grid_title.setText(f"{' · '.join(parts)}  ·  {n:,} image{'s' if n != 1 else ''}" if self.root else "")
        self.grid_status.setText(f"Listing files… {self.model.file_count():,} found" if self.listing else "")

    # ------------------------------------------------------------------ selection
    def selected_paths(self) -> list[str]:
        return sorted(i.data(PathRole) for i in self.view.selectionModel().selectedIndexes())

    def select_paths(self, paths: list[str]) -> None:
        rows = [r for r in (self.model.row_of(p) for p in paths) if r is not None]
        sel = QItemSelection()
        for r in rows:
            sel.select(self.model.index(r), self.model.index(r))
        sm = self.view.selectionModel()
        if rows:
            sm.setCurrentIndex(self.model.index(rows[0]), QItemSelectionModel.SelectionFlag.NoUpdate)
        sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _remember_view(self) -> dict:
        cur = self.view.currentIndex()
        return {"selected": self.selected_paths(), "current": cur.data(PathRole) if cur.isValid() else None,
                "row": cur.row(), "scroll": self.view.verticalScrollBar().value()}

    def _restore_view(self, before: dict, renames: dict[str, str]) -> None:
        """Selection follows renamed files that are still shown; when the shown ones left the
        view (moved to another class, deleted), the image now in their place is selected, so
        labelling can go on image by image."""
        keep = [renames.get(p, p) for p in before["selected"]]
        keep = [p for p in keep if self.model.row_of(p) is not None]
        current = renames.get(before["current"], before["current"])
        sm = self.view.selectionModel()
        sb = self.view.verticalScrollBar()
        if keep:  # still shown (perhaps elsewhere in the grid): keep them selected, stay put
            self.select_paths(keep)
            row = self.model.row_of(current)
            if row is not None:
                sm.setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
            sb.setValue(before["scroll"])
        elif self.model.rowCount():
            row = min(max(before["row"], 0), self.model.rowCount() - 1)
            self.view.setCurrentIndex(self.model.index(row))
            sb.setValue(before["scroll"])
            self.view.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.EnsureVisible)
        else:
            self.preview.show_nothing()

    def _update_actions(self) -> None:
        edit = self.can_edit and not self.busy
        has_sel = bool(self.view.selectionModel().hasSelection())
        cls = self._current_class()
        p = self.project
        undo = p.undo_stack[-1].label if p is not None and p.undo_stack else None
        redo = p.redo_stack[-1].label if p is not None and p.redo_stack else None
        self.act_undo.setText(f"&Undo {undo}" if undo else "&Undo")
        self.act_redo.setText(f"&Redo {redo}" if redo else "&Redo")
        self.act_undo.setEnabled(edit and undo is not None)
        self.act_redo.setEnabled(edit and redo is not None)
        self.act_paste.setEnabled(edit)
        self.act_delete.setEnabled(edit and has_sel)
        self.move_menu.setEnabled(edit and has_sel)
        self.act_new_class.setEnabled(edit)
        self.act_rename_class.setEnabled(edit and cls is not None)
        self.act_merge_classes.setEnabled(edit and len(self.selected_classes()) >= 2)
        self.act_delete_class.setEnabled(edit and cls is not None)
        self.act_capture.setEnabled(edit and self.capture_dialog is None)
        self.act_splits.setEnabled(self.project is not None)
        has_images = self.root is not None and self.model.file_count() > 0
        self.act_find_duplicates.setEnabled(has_images and not self.listing)
        self.act_find_similar.setEnabled(has_images and not self.listing and self.view.currentIndex().isValid())

    def _on_view_context_menu(self, pos) -> None:
        idx = self.view.indexAt(pos)
        if idx.isValid() and not self.view.selectionModel().isSelected(idx):
            self.view.setCurrentIndex(idx)
        self._update_actions()
        menu = self.grid_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def grid_menu(self) -> QMenu:
        """The grid's context menu, for the selected images."""
        menu = QMenu(self)
        menu.addMenu(self.move_menu)
        menu.addAction(self.act_delete)
        menu.addSeparator()
        menu.addAction(self.act_find_similar)
        menu.addSeparator()
        menu.addAction(self.act_paste)
        return menu
