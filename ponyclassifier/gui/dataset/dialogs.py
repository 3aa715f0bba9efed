"""The Dataset place's dialogs: what an import skipped and why (:class:`ImportReport`),
and the project's splits, visible and editable (:class:`SplitsDialog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

if TYPE_CHECKING:
    from .browser import QtDatasetBrowser


class ImportReport(QDialog):
    """What happened to each dropped file that was not imported, and why (non-modal)."""

    def __init__(self, summary: str, skipped: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import finished")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(680, 380)
        head = QLabel(summary)
        head.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["File", "Why it was skipped"])
        self.table.setUniformRowHeights(True)
        self.table.setAlternatingRowColors(True)
        for source, reason in skipped:
            it = QTreeWidgetItem([source, reason])
            it.setToolTip(0, source)
            self.table.addTopLevelItem(it)
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(0, 400)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)


class SplitsDialog(QDialog):
    """The project's splits, visible and editable: per-class counts, the seeded stratified
    train/validation split (share and seed), and the optional external test folder."""

    def __init__(self, browser: "QtDatasetBrowser", parent=None):
        super().__init__(parent)
        self.browser = browser
        self.setWindowTitle("Splits")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        intro = QLabel("Training learns from the <b>train</b> images; the <b>validation</b> images are held back "
                       "to check it honestly. Each class is split on its own (stratified), by a seeded shuffle, "
                       "so the same seed always gives the same split.")
        intro.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setHeaderLabels(["Class", "Train", "Validation", "Test", "No split"])
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.fraction = QDoubleSpinBox()
        self.fraction.setRange(5, 50)
        self.fraction.setDecimals(0)
        self.fraction.setSuffix(" %")
        self.fraction.setToolTip("The share of each class held back for validation")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setToolTip("Another number gives another (but repeatable) choice of validation images")
        self.make_button = QPushButton("Make Split")
        self.make_button.setToolTip("Split every class again with this share and seed (replaces the current split)")
        self.make_button.clicked.connect(self._on_make_button_clicked)
        self.test_label = QLabel()
        self.test_label.setWordWrap(True)
        self.test_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_test = QPushButton("Choose…")
        self.choose_test.setToolTip("A folder with the same class subfolders, photographed elsewhere: the fairest "
                                    "test of how the model does on new pictures. It is never trained on.")
        self.choose_test.clicked.connect(self._on_choose_test_clicked)
        self.clear_test = QPushButton("Clear")
        self.clear_test.setToolTip("Stop using an external test folder (the folder itself is not touched)")
        self.clear_test.clicked.connect(lambda: self.browser.set_test_folder(None))
        form = QFormLayout()
        split_row = QHBoxLayout()
        split_row.addWidget(self.fraction)
        split_row.addWidget(QLabel("seed"))
        split_row.addWidget(self.seed)
        split_row.addStretch(1)
        split_row.addWidget(self.make_button)
        form.addRow("Validation share", split_row)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_label, 1)
        test_row.addWidget(self.choose_test)
        test_row.addWidget(self.clear_test)
        form.addRow("External test folder", test_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.table, 1)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self.resize(560, 420)
        settings = browser.split_settings or {}
        self.fraction.setValue(round(100 * float(settings.get("val_fraction", 0.2))))
        self.seed.setValue(int(settings.get("seed", 0)))
        browser.counts_changed.connect(self.refresh)
        browser.splits_changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *args) -> None:
        b = self.browser
        self.table.clear()
        for c in b.classes:
            d = b.split_counts.get(c, {})
            it = QTreeWidgetItem([c] + [f"{d.get(k, 0):,}" for k in ("train", "val", "test", "unassigned")])
            for col in range(1, 5):
                it.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.addTopLevelItem(it)
        folder = b.test_folder
        self.test_label.setText(folder or "<i>none</i> (optional)")
        self.test_label.setToolTip(folder or "")
        self.clear_test.setEnabled(bool(folder) and b.can_edit)
        self.choose_test.setEnabled(b.can_edit)
        self.make_button.setEnabled(b.can_edit)

    def _on_make_button_clicked(self) -> None:
        self.browser.make_splits(self.fraction.value() / 100, self.seed.value())

    def _on_choose_test_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "External test folder", self.browser.test_folder or "")
        if folder:
            self.browser.set_test_folder(folder)
