"""The widgets of the Predict place, built and laid out (the page's behaviour is in
:mod:`.page`): the model banner, the buttons that bring pictures in, the threshold and
top-k controls, progress, and the Pictures / Table / Live camera tabs."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .cards import FlowLayout
from .jobs import MAX_TOP_K, recipe_label
from .results import RED, ResultsTableModel

DEFAULT_TOP_K = 3


def build(page) -> None:
    """Make ``page``'s widgets (as its attributes), connect them to its slots, lay them out."""
    title = QLabel("Predict")
    title.setObjectName("predictTitle")
    subtitle = QLabel("Show the model some pictures and see what it thinks they are.")
    subtitle.setObjectName("hint")

    # ---- the model
    page.model_label = QLabel()
    page.model_label.setObjectName("modelText")
    page.model_label.setWordWrap(True)
    page.model_label.setTextFormat(Qt.TextFormat.RichText)
    page.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    page.open_model_button = QPushButton("Open model…")
    page.open_model_button.setToolTip("Use a model file (.pony) made in the Train place or with "
                                      "“ponyclassifier train”.")
    page.open_model_button.clicked.connect(page.open_model_dialog)
    page.imagenet_button = QPushButton("Use ImageNet network")
    page.imagenet_button.setToolTip("Use the pretrained network that knows 1000 everyday things "
                                    "(cats, cups, cars…) instead of a model you trained.")
    page.imagenet_button.clicked.connect(lambda: page.set_model_path(None))
    page.banner = QFrame()
    page.banner.setObjectName("modelBanner")
    bl = QHBoxLayout(page.banner)
    bl.setContentsMargins(12, 8, 8, 8)
    bl.addWidget(page.model_label, 1)
    bb = QVBoxLayout()
    bb.setSpacing(4)
    bb.addWidget(page.open_model_button)
    bb.addWidget(page.imagenet_button)
    bb.addStretch(1)
    bl.addLayout(bb)

    # ---- pictures in
    page.add_files_button = QPushButton("Add pictures…")
    page.add_files_button.setToolTip("Choose one or more picture files to classify.")
    page.add_files_button.clicked.connect(page.open_files_dialog)
    page.add_folder_button = QPushButton("Add folder…")
    page.add_folder_button.setToolTip("Classify every picture in a folder (and its subfolders).")
    page.add_folder_button.clicked.connect(page.open_folder_dialog)
    page.paste_button = QPushButton("Paste")
    page.paste_button.setToolTip("Classify a picture copied to the clipboard (Ctrl+V).")
    page.paste_button.clicked.connect(page.paste)
    page.clear_button = QPushButton("Clear")
    page.clear_button.setToolTip("Remove all results from the page.")
    page.clear_button.clicked.connect(page.clear)
    page.export_button = QPushButton("Export CSV…")
    page.export_button.setToolTip("Save the results table as a CSV file (opens in any spreadsheet).")
    page.export_button.clicked.connect(page.export_csv_dialog)
    page.paste_shortcut = QShortcut(QKeySequence.StandardKey.Paste, page)
    page.paste_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    page.paste_shortcut.activated.connect(page.paste)

    # ---- how results are shown
    page.topk_spin = QSpinBox(minimum=1, maximum=MAX_TOP_K, value=DEFAULT_TOP_K)
    page.topk_spin.setToolTip("How many of the model's best guesses to show for each picture.")
    page.topk_spin.valueChanged.connect(page._on_topk_spin_value_changed)
    page.threshold_slider = QSlider(Qt.Orientation.Horizontal)
    page.threshold_slider.setRange(0, 100)
    page.threshold_slider.setFixedWidth(170)
    page.threshold_slider.setToolTip(
        "When the best guess is less sure than this, the answer says “Not sure”.\n"
        "Slide it to see which answers change; the model is not run again.\n"
        "It starts at the value stored in the model.")
    page.threshold_slider.valueChanged.connect(page._on_threshold_slider_value_changed)
    page.threshold_value = QLabel()
    page.threshold_value.setMinimumWidth(page.threshold_value.fontMetrics().horizontalAdvance("100 %") + 4)
    page.cam_all_check = QCheckBox("Show where it looked (Grad-CAM) on every picture")
    page.cam_all_check.setToolTip("Colour the places in each picture that mattered most for the model's "
                                  "best guess. You can also switch it on for one card.")
    page.cam_all_check.toggled.connect(page._on_cam_all_check_toggled)

    # ---- progress
    page.progress = QProgressBar()
    page.progress.setTextVisible(True)
    page.progress.setMaximumWidth(360)
    page.rate_label = QLabel()
    page.stop_button = QPushButton("Stop")
    page.stop_button.setToolTip("Stop after the pictures in progress; the results so far stay.")
    page.stop_button.clicked.connect(page.stop)
    page.summary_label = QLabel()
    page.summary_label.setObjectName("summary")
    page.summary_label.setTextFormat(Qt.TextFormat.RichText)

    # ---- results: cards, table, live camera
    page.drop_hint = QLabel(
        "<div style='font-size:17px; font-weight:600'>Drop pictures or a folder here</div>"
        "<div style='margin-top:8px'>or use <b>Add pictures…</b> / <b>Add folder…</b>, "
        "or copy a picture and press <b>Ctrl+V</b>.</div>")
    page.drop_hint.setObjectName("dropHint")
    page.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
    page.drop_hint.setWordWrap(True)
    page.cards_note = QLabel()
    page.cards_note.setObjectName("hint")
    page.cards_note.setWordWrap(True)
    page.cards_note.hide()
    page.cards_host = QWidget()
    page.cards_host.setObjectName("cardsHost")
    page.flow = FlowLayout(page.cards_host, spacing=12)
    page.flow.setContentsMargins(12, 12, 12, 12)
    page.cards_scroll = QScrollArea()
    page.cards_scroll.setWidgetResizable(True)
    page.cards_scroll.setWidget(page.cards_host)
    page.cards_scroll.setFrameShape(QFrame.Shape.NoFrame)
    cards_page = QWidget()
    cpl = QVBoxLayout(cards_page)
    cpl.setContentsMargins(0, 6, 0, 0)
    cpl.addWidget(page.cards_note)
    cpl.addWidget(page.cards_scroll, 1)
    page.pictures_stack = QStackedWidget()
    page.pictures_stack.addWidget(page.drop_hint)
    page.pictures_stack.addWidget(cards_page)

    page.table_model = ResultsTableModel(page)
    page.proxy = QSortFilterProxyModel(page)
    page.proxy.setSourceModel(page.table_model)
    page.proxy.setSortRole(Qt.ItemDataRole.UserRole)
    page.table_view = QTableView()
    page.table_view.setModel(page.proxy)
    page.table_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    page.table_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    page.table_view.setAlternatingRowColors(True)
    page.table_view.verticalHeader().hide()
    page.table_view.verticalHeader().setDefaultSectionSize(page.table_view.fontMetrics().height() + 10)
    page.table_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    page.table_view.setSortingEnabled(True)
    page.table_view.setToolTip("Click a column title to sort; double-click a row to see its picture.")
    header = page.table_view.horizontalHeader()
    for col, width in enumerate((220, 140, 90, 70, 300, 280)):
        page.table_view.setColumnWidth(col, width)
    header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
    page.table_view.doubleClicked.connect(page._on_table_view_double_clicked)

    page.live_area = QWidget()
    page.live_area.setObjectName("liveArea")
    live_layout = QVBoxLayout(page.live_area)
    live_layout.setContentsMargins(0, 0, 0, 0)

    page.tabs = QTabWidget()
    page.tabs.addTab(page.pictures_stack, "Pictures")
    page.tabs.addTab(page.table_view, "Table")
    page.live_tab_index = page.tabs.addTab(page.live_area, "Live camera")
    page.tabs.setTabVisible(page.live_tab_index, False)  # until the main window puts the camera in

    # ---- layout
    top = QVBoxLayout(page)
    top.setContentsMargins(16, 12, 16, 10)
    top.setSpacing(8)
    head = QHBoxLayout()
    head.addWidget(title)
    head.addSpacing(10)
    head.addWidget(subtitle, 1, Qt.AlignmentFlag.AlignBottom)
    top.addLayout(head)
    top.addWidget(page.banner)
    row1 = QHBoxLayout()
    for w in (page.add_files_button, page.add_folder_button, page.paste_button, page.clear_button):
        row1.addWidget(w)
    row1.addSpacing(18)
    row1.addWidget(QLabel("Show top"))
    row1.addWidget(page.topk_spin)
    row1.addSpacing(18)
    row1.addWidget(QLabel("Not sure below"))
    row1.addWidget(page.threshold_slider)
    row1.addWidget(page.threshold_value)
    row1.addStretch(1)
    row1.addWidget(page.export_button)
    top.addLayout(row1)
    row2 = QHBoxLayout()
    row2.addWidget(page.cam_all_check)
    row2.addStretch(1)
    row2.addWidget(page.summary_label)
    row2.addWidget(page.progress)
    row2.addWidget(page.rate_label)
    row2.addWidget(page.stop_button)
    top.addLayout(row2)
    top.addWidget(page.tabs, 1)
    page._set_busy(False)
    page.threshold_slider.setValue(50)
    page._set_threshold(0.5)

    page.setStyleSheet(
        "QLabel#predictTitle { font-size: 22px; font-weight: 600; }"
        "QLabel#hint { color: palette(placeholder-text); }"
        "QFrame#modelBanner { border-radius: 6px; }"
        "QLabel#dropHint { border: 2px dashed palette(mid); border-radius: 12px; margin: 12px;"
        " color: palette(placeholder-text); padding: 30px; }"
        "QLabel#dropHint[active=\"true\"] { border-color: palette(highlight); color: palette(text); }"
        "QWidget#cardsHost[active=\"true\"] { border: 2px dashed palette(highlight); }"
        "QFrame#resultCard { background: palette(base); border: 1px solid palette(mid); border-radius: 8px; }"
        "QFrame#resultCard[current=\"true\"] { border: 2px solid palette(highlight); }"
        "QLabel#cardPicture { background: rgba(128,128,128,0.12); border-radius: 4px; }"
        "QLabel#cardPicture[broken=\"true\"] { color: #b02a2a; font-size: 15px; }"
        "QLabel#cardName { font-weight: 600; }"
        "QLabel#cardNote { color: palette(placeholder-text); font-size: 11px; }")


def banner_html(loaded, loading: bool, loading_path: str | None, error: str | None,
                imagenet_text: str) -> tuple[str, str]:
    """The model banner's text (rich text) and kind ("info" or "error"): the model in use
    (``loaded``, a LoadedModel or None), the one loading, and why the last one failed."""
    parts: list[str] = []
    kind = "info"
    if loaded is None or loaded.imagenet:
        if loaded is not None or loading_path is None:
            parts.append(f"<b>{imagenet_text}</b> (cats, cups, cars, fruit…). Train a model in the "
                         "Train place, or open a model file, to recognise your own classes.")
    else:
        m = loaded.model
        shown = ", ".join(html.escape(c) for c in m.classes[:12])
        if len(m.classes) > 12:
            shown += f" and {len(m.classes) - 12} more"
        details = [f"{recipe_label(m.recipe)}",
                   f"input {m.image_size}×{m.image_size} {'grey' if m.channels == 1 else 'colour'}"]
        val = (m.metrics or {}).get("validation") or {}
        if isinstance(val.get("accuracy"), (int, float)):
            details.append(f"validation accuracy {val['accuracy']:.0%}")
        if m.created:
            details.append(f"trained {html.escape(str(m.created)[:10])}")
        parts.append(f"<b>Model: {html.escape(loaded.name)}</b> — {len(m.classes)} classes: {shown}"
                     f"<br><span>{' · '.join(details)}</span>")
    if loading:
        what = "the ImageNet network" if loading_path is None else html.escape(os.path.basename(loading_path))
        parts.append(f"<i>Loading model… ({what})</i>")
    if error:
        kind = "error"
        still = "" if loaded is None else f" Still using {html.escape(loaded.name)}."
        parts.append(f"<span style='color:{RED}'><b>Could not open the model</b> "
                     f"{html.escape(error)}.{still}</span>")
    return "<br>".join(parts), kind
