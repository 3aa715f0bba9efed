"""How the Dataset place is laid out: the class list on the left, the filter bar, grid and
import progress in the centre, the Preview / Augmentation / Similar tabs on the right; its
actions and menus; the empty states. A mixin of :class:`.browser.QtDatasetBrowser`, which
owns the state these widgets show."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..widgets.banner import Banner
from .model import COL_COUNT, COL_KEY, COL_NAME, THUMB_SIZE
from .views import QtPreviewPane, _camera_icon, _ClassTree, _Grid, _ThumbDelegate


class BrowserLayout:
    """The widgets, actions and menus of the Dataset place (see the module docstring)."""

    def _build_ui(self) -> None:
        self._make_actions()

        # left: classes
        self.class_tree = _ClassTree(self._on_class_tree_drop)
        self.class_tree.setColumnCount(3)
        self.class_tree.setHeaderLabels(["", "Class", "Images"])
        self.class_tree.setRootIsDecorated(False)
        self.class_tree.setUniformRowHeights(True)
        self.class_tree.setIconSize(QSize(16, 16))
        self.class_tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.class_tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.class_tree.customContextMenuRequested.connect(self._on_class_tree_context_menu)
        hdr = self.class_tree.header()
        hdr.setStretchLastSection(False)
        hdr.setMinimumSectionSize(18)
        hdr.setSectionResizeMode(COL_KEY, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        hdr.setSectionResizeMode(COL_COUNT, QHeaderView.ResizeMode.ResizeToContents)
        self.class_tree.headerItem().setToolTip(COL_KEY, "Press this number key in the grid to move the "
                                                "selected images to the class")
        self.class_tree.currentItemChanged.connect(self._on_class_tree_current_changed)
        self.class_tree.itemSelectionChanged.connect(self._update_actions)
        self.class_hint = QLabel()
        self.class_hint.setWordWrap(True)
        self.class_hint.setObjectName("hint")
        new_class = QToolButton()
        new_class.setDefaultAction(self.act_new_class)
        new_class.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        new_class.setAutoRaise(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(8, 8, 0, 8)
        head_row = QHBoxLayout()
        heading = QLabel("Classes")
        heading.setObjectName("paneHeading")
        head_row.addWidget(heading)
        head_row.addStretch(1)
        head_row.addWidget(new_class)
        ll.addLayout(head_row)
        ll.addWidget(self.class_tree, 1)
        ll.addWidget(self.class_hint)
        # The class list keeps room for its names when the grid or the side pane grows: the
        # splitter gives and takes space from the grid (stretch 1) first, and long names are
        # elided in the middle with the full name in the tooltip.
        left.setMinimumWidth(190)
        self.class_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        # centre: title + filter bar, grid, import progress
        self.view = _Grid(self.move_selected_to_number, self._on_grid_drop)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.view.setGridSize(QSize(THUMB_SIZE + 22, THUMB_SIZE + 30))
        self.view.setSpacing(0)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalScrollBar().setSingleStep(24)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu)
        self.view.setModel(self.model)
        self.view.setItemDelegate(_ThumbDelegate(self.model, self.view))
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        self.grid_title = QLabel()
        self.grid_title.setObjectName("paneHeading")
        self.grid_status = QLabel()
        self.grid_status.setObjectName("hint")
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("emptyState")
        # a folder of photos with no classes yet is how most people start: their pictures are
        # shown at once, with this invitation to make classes and sort them
        self.sort_hint = QLabel()
        self.sort_hint.setWordWrap(True)
        self.sort_hint.setObjectName("sortHint")
        self.sort_hint.setTextFormat(Qt.TextFormat.RichText)
        self.sort_hint.hide()
        self.grid_stack = QStackedWidget()
        self.grid_stack.addWidget(self.view)
        self.grid_stack.addWidget(self.empty_label)
        self.split_buttons = self._segmented([("All", None), ("Train", "train"), ("Val", "val"), ("Test", "test")],
                                             self.set_split_filter, "Show images of one split")
        self.status_buttons = self._segmented([("Any", None), ("Bad", "bad"), ("Unlabelled", "unlabelled")],
                                              self.set_status_filter, "Show only unreadable or unlabelled images")
        centre = QWidget()
        cl = QVBoxLayout(centre)
        cl.setContentsMargins(0, 8, 0, 0)
        cl.setSpacing(4)
        title_row = QHBoxLayout()
        title_row.setContentsMargins(4, 0, 4, 0)
        title_row.addWidget(self.grid_title)
        title_row.addSpacing(8)
        title_row.addWidget(self.grid_status)
        title_row.addStretch(1)
        title_row.addWidget(self.split_buttons[0])
        title_row.addSpacing(10)
        title_row.addWidget(self.status_buttons[0])
        title_row.addSpacing(10)
        splits_button = QToolButton()
        splits_button.setDefaultAction(self.act_splits)
        splits_button.setAutoRaise(True)
        splits_button.setToolTip("See and remake the train/validation split; choose an external test folder")
        title_row.addWidget(splits_button)
        cl.addLayout(title_row)
        self._title_row = title_row
        cl.addWidget(self.sort_hint)
        cl.addWidget(self.grid_stack, 1)
        cl.addWidget(self._make_import_panel())

        # right: preview, augmentation and similar images of the selection, as tabs
        self.preview = QtPreviewPane()
        self.preview.heading.hide()  # the tab says it
        self.side_tabs = QTabWidget()
        self.side_tabs.setObjectName("sideTabs")
        self.side_tabs.setDocumentMode(True)
        self.side_tabs.addTab(self.preview, "Preview")
        self._augment_page = self._lazy_page()
        self._similar_page = self._lazy_page()
        self.side_tabs.addTab(self._augment_page, "Augmentation")
        self.side_tabs.addTab(self._similar_page, "Similar")
        self.side_tabs.setTabToolTip(0, "The selected image, large, and what we know about the file")
        self.side_tabs.setTabToolTip(1, "The selected image as training may see it: random variants within the "
                                        "augmentation strengths set here")
        self.side_tabs.setTabToolTip(2, "Duplicates and look-alikes in the project, and the images most like "
                                        "the selected one")
        self.side_tabs.currentChanged.connect(self._on_side_tabs_current_changed)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([240, 680, 320])
        self.splitter.setChildrenCollapsible(False)
        self.banner = Banner()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        banner_box = QHBoxLayout()
        banner_box.setContentsMargins(8, 6, 8, 0)
        banner_box.addWidget(self.banner)
        lay.addLayout(banner_box)
        lay.addWidget(self.splitter, 1)
        self.setStyleSheet(
            "QLabel#paneHeading { font-weight: 600; padding: 2px 0 4px 0; }"
            "QLabel#hint { color: palette(placeholder-text); }"
            "QTreeWidget::item { padding: 3px 2px; }"
            "QToolButton#segment { padding: 2px 9px; border: 1px solid palette(mid); border-radius: 0;"
            " background: palette(button); }"
            "QToolButton#segment:checked { background: palette(highlight); color: palette(highlighted-text);"
            " border-color: palette(highlight); }"
            "QFrame#importPanel { border-top: 1px solid palette(mid); }"
            "QLabel#emptyState { color: palette(placeholder-text); font-size: 14px; padding: 40px; }"
            "QLabel#sortHint { background: #e8f0fe; color: #1a3a6b; border: 1px solid #b6cbf2; border-radius: 4px;"
            " padding: 6px 8px; }")
        self._show_empty("No project open. Use File ▸ Open Folder… to choose a folder with one subfolder per class.")
        self._update_titles()
        self._update_actions()

    # ------------------------------------------------------------------ building
    @staticmethod
    def _lazy_page() -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        return page

    def _segmented(self, choices, on_pick, tip: str) -> tuple[QWidget, dict]:
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        group = QButtonGroup(box)
        buttons = {}
        for text, value in choices:
            b = QToolButton()
            b.setObjectName("segment")
            b.setText(text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setChecked(value is None)
            b.clicked.connect(lambda checked=False, v=value: on_pick(v))
            group.addButton(b)
            lay.addWidget(b)
            buttons[value] = b
        group.setExclusive(True)
        return box, buttons

    def _make_import_panel(self) -> QWidget:
        self.import_panel = QFrame()
        self.import_panel.setObjectName("importPanel")
        self.import_label = QLabel()
        self.import_bar = QProgressBar()
        self.import_bar.setTextVisible(False)
        self.import_bar.setMaximumHeight(12)
        self.import_cancel = QPushButton("Cancel")
        self.import_cancel.clicked.connect(self.cancel_import)
        lay = QHBoxLayout(self.import_panel)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addWidget(self.import_label)
        lay.addWidget(self.import_bar, 1)
        lay.addWidget(self.import_cancel)
        self.import_panel.hide()
        return self.import_panel

    def _make_actions(self) -> None:
        def act(text, slot, shortcut=None, tip="", local=False) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
            a.setStatusTip(tip)
            a.triggered.connect(lambda checked=False: slot())
            if local:  # only while the Dataset place has focus (other places have their own keys)
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(a)
            return a

        self.act_undo = act("&Undo", self.undo, QKeySequence("Ctrl+Z"), "Undo the last labelling change")
        self.act_redo = act("&Redo", self.redo, [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")],
                            "Redo the change just undone")
        self.act_paste = act("&Paste Image", self.paste, QKeySequence("Ctrl+V"),
                             "Add the image on the clipboard to the class shown", local=True)
        self.act_delete = act("&Delete to Trash", self.delete_selected, [QKeySequence("Delete"),
                              QKeySequence("Backspace")], "Move the selected images to the project's trash "
                              "(undo brings them back)", local=True)
        self.act_new_class = act("&New Class…", self.new_class_dialog, tip="Create a class (a new folder)")
        self.act_rename_class = act("Re&name Class…", self.rename_class_dialog, QKeySequence("F2"),
                                    "Rename the selected class (its folder)", local=True)
        self.act_merge_classes = act("&Merge Classes…", self.merge_classes_dialog,
                                     tip="Move every image of the selected classes into one of them")
        self.act_delete_class = act("Delete C&lass…", self.delete_class_dialog,
                                    tip="Move the selected class and its images to the project's trash")
        self.act_capture = act("&Capture from Camera…", self.open_capture, QKeySequence("Ctrl+Shift+C"),
                               "Take pictures with a webcam (or a video file) straight into a class")
        self.act_capture.setIcon(_camera_icon(self.palette()))
        self.act_find_duplicates = act("Find &Duplicates…", self.find_duplicates, QKeySequence("Ctrl+Shift+D"),
                                       "Look for identical and nearly identical images in the project")
        self.act_find_similar = act("Find &Similar", self.find_similar_to, QKeySequence("Ctrl+Shift+F"),
                                    "Show the images of the project most like the selected one", local=True)
        self.act_show_augment = act("&Augmentation Preview", lambda: self.show_side_tab("augment"),
                                    QKeySequence("Ctrl+Shift+A"),
                                    "See the selected image as training may see it, and set the augmentation")
        self.act_splits = act("S&plits…", self.open_splits, tip="See and remake the train/validation split, and "
                              "choose an external test folder")
        self.move_menu = QMenu("&Move to")
        self.move_menu.aboutToShow.connect(self._fill_move_menu)
        self.dataset_actions = [self.act_capture, None, self.act_find_duplicates, self.act_find_similar, None,
                                self.act_show_augment, self.act_splits]
        self.edit_actions = [self.act_undo, self.act_redo, None, self.act_paste, self.move_menu, self.act_delete,
                             None, self.act_new_class, self.act_rename_class, self.act_merge_classes,
                             self.act_delete_class]

    def fill_edit_menu(self, menu: QMenu) -> None:
        self._fill_menu(menu, self.edit_actions)

    def fill_dataset_menu(self, menu: QMenu) -> None:
        self._fill_menu(menu, self.dataset_actions)

    @staticmethod
    def _fill_menu(menu: QMenu, actions) -> None:
        for a in actions:
            if a is None:
                menu.addSeparator()
            elif isinstance(a, QMenu):
                menu.addMenu(a)
            else:
                menu.addAction(a)

    def _fill_move_menu(self) -> None:
        self.move_menu.clear()
        for i, c in enumerate(self.classes):
            a = self.move_menu.addAction(f"&{i + 1}  {c}" if i < 9 else c)
            a.setEnabled(self.can_edit and bool(self.selected_paths()))
            a.triggered.connect(lambda checked=False, c=c: self.move_selected_to(c))
        if not self.classes:
            self.move_menu.addAction("No classes").setEnabled(False)

    def _show_grid_or_empty(self) -> None:
        if self.root is None:
            self.sort_hint.hide()
            return
        loose = self.model.unlabelled_count()
        self._update_sort_hint(loose)
        if not self.classes and loose:
            self.grid_stack.setCurrentWidget(self.view)
        elif not self.classes:
            self._show_empty(f"<b>No class folders in</b><br>{self.root}<br><br>A project is a folder with one "
                             "subfolder per class, e.g. <i>pets/cat/</i> and <i>pets/dog/</i>.")
        elif self.model.file_count() == 0 and not self.listing:
            self._show_empty("<b>No images yet.</b><br><br>Drag pictures from your desktop onto a class on the "
                             "left, or copy them into the class folders:<br>"
                             + "<br>".join(os.path.join(self.root, c) for c in self.classes[:6])
                             + "<br><br>then choose View ▸ Reload (F5).")
        else:
            self.grid_stack.setCurrentWidget(self.view)

    def _update_sort_hint(self, loose: int) -> None:
        if not loose:
            self.sort_hint.hide()
            return
        n = f"{loose:,} picture{'s' if loose != 1 else ''}"
        if not self.classes:
            text = (f"<b>{n}, not sorted into classes yet.</b> Make a class for each kind of picture with the "
                    "<b>New Class</b> button above the class list; then select pictures here and press the "
                    "class's number key (1–9), or drag them onto the class.")
        else:
            text = (f"<b>{n} in the project folder itself, in no class yet.</b> Select them and press a class's "
                    "number key (1–9), or drag them onto a class on the left (the <b>Unlabelled</b> filter shows "
                    "only them).")
        self.sort_hint.setText(text)
        self.sort_hint.show()

    def _show_empty(self, html: str) -> None:
        self.empty_label.setText(html)
        self.grid_stack.setCurrentWidget(self.empty_label)

    # ------------------------------------------------------------------ state
    def save_state(self) -> bytes:
        return bytes(self.splitter.saveState().data())

    def restore_state(self, state) -> None:
        if state:
            self.splitter.restoreState(state)