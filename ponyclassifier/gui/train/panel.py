"""QtTrainingPanel: choose a recipe, set it up, watch it train, see how it did.

Left: the recipe (with its plain-language help), hyperparameters with per-recipe
defaults, augmentation, device, an optional external test folder, Start / Stop / Resume.
Right, in tabs: the model summary (computed off the GUI thread whenever the recipe or
size changes, before any training), live curves with progress and a log, the
evaluation of the last run or of any run picked in the runs table (:class:`QtEvaluation`;
a run from an earlier session is evaluated again from its model file on a worker, to know
the images behind each confusion-matrix cell) and the project's runs (:class:`QtRuns`).

Training runs on its own thread (:class:`~ponyclassifier.gui.training_thread.TrainingRun`).
Signals only store numbers here; a 25 Hz timer pushes them into curves created once
(``setData``), so the plots never redraw per batch. What keeps the event loop under
100 ms while training (RELIABILITY case 24), measured with ``tests/gui/latency.py``:
the axes (their tick labels and grid were most of a repaint) get fixed ranges for the
run, move only when the data leaves them (:func:`_range_top`), draw major grid lines
only and are cached as pixmaps; at most one plot is pushed per timer tick (widgets made
dirty together are painted in one go); the training view is painted once while idle
and again before the run starts competing for the CPU.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import torch
from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import models as M
from ...core.augment import AugmentConfig
from ...core.callbacks import epoch_score
from ...core.dataset import list_class_folders
from ...core.engine import (
    MAX_SCRATCH_SIZE,
    RECIPE_DEFAULTS,
    TrainConfig,
    TrainingError,
    evaluate_split,
    glance_dataset,
    training_image_size,
)
from ...core.policy import (
    AUTO,
    DataFacts,
    default_recipe,
    describe_value,
    plan_training,
    plan_with_share,
)
from ...core.runs import ProjectSplit, project_split
from ...core.store import ProjectStore, StoreError
from ...core.summary import ModelSummary, format_count, recipe_summary
from ...core.trained import TrainedModel
from ..widgets.format import RECIPE_LABELS, fmt_duration
from ..widgets.strengths import STRENGTHS
from ..workers import run_job
from .evaluation import QtEvaluation
from .runs import QtRuns
from .thread import TrainingOutcome, TrainingRun

__all__ = ["QtTrainingPanel", "RECIPE_LABELS", "device_choices"]

RECIPE_META_KEY = "train_recipe"  # the project store remembers the recipe last chosen for the project

DEFAULT_DROPOUT = {"scratch": 0.5, "transfer": 0.2, "finetune": 0.2}
REDRAW_MS = 40  # 25 Hz: progress, labels and the per-epoch curves
BATCH_PLOT_S = 0.2
SMOOTHING = 0.9  # exponential moving average of the per-batch loss
COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "raw": (150, 150, 150, 110)}


def device_choices() -> list[tuple[str, str]]:
    """(label, TrainConfig.device) for the device selector, GPUs named."""
    out: list[tuple[str, str]] = []
    gpus = []
    if torch.cuda.is_available():
        gpus = [(f"GPU {i}: {torch.cuda.get_device_name(i)}", f"cuda:{i}") for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    best = gpus[0][0].split(": ", 1)[1] if gpus else ("Apple GPU (MPS)" if mps else "CPU")
    out.append((f"Automatic ({best})", "auto"))
    out += gpus
    if mps:
        out.append(("Apple GPU (MPS)", "mps"))
    out.append(("CPU", "cpu"))
    return out


def _training_size(facts: DataFacts, recipe: str, size: int | None) -> int:
    """The size a run trains at, by the engine's rule."""
    return training_image_size(recipe, facts.source_side, size)


def _nice_ceiling(v: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 times a power of ten that is at least ``v``."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(v))
    return next(m * base for m in (1, 1.5, 2, 3, 5, 7.5, 10) if m * base >= v * (1 - 1e-9))


def _range_top(values, top: float) -> float:
    """The top of a [0, top] axis for ``values``: kept while they fit and fill more than a
    third of it, so the axis (and its tick labels) are re-laid only now and then."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return top or 1.0
    high = max(finite) * 1.05
    if top and top / 3 <= high <= top:
        return top
    return _nice_ceiling(high)




class QtTrainingPanel(QWidget):
    training_started = Signal(int)  # run id in the store (-1: not recorded)
    splits_requested = Signal()  # the user wants to see or change the project's split and test folder
    training_finished = Signal(object)  # TrainingOutcome
    model_saved = Signal(str)  # the run's model file, once training ended with a model
    relabel_requested = Signal(str, str)  # from the evaluation gallery: path, new class
    open_model_requested = Signal(str, str)  # from the runs table: model file, "Explain" or "Predict"
    evaluation_ready = Signal(int)  # a recorded run's model was evaluated and is shown (run id)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.root: Path | None = None
        self.store: ProjectStore | None = None
        self.run: TrainingRun | None = None
        self.last_outcome: TrainingOutcome | None = None
        self.summary: ModelSummary | None = None
        self._last_config: TrainConfig | None = None
        self._summary_job = None
        self._summary_generation = 0
        self._facts: dict[str, DataFacts] = {}  # project root -> a glance at its data (for the Auto box)
        self._recipe_touched = False  # a recipe was chosen since the project opened
        self._suggesting = False
        self._facts_stale = False
        self._classes: list[str] = []
        self._run_results: dict[int, tuple[dict, list]] = {}  # run id -> (validation report, per-image predictions)
        self._eval_job = None
        self._eval_generation = 0
        self.extra_callbacks: list = []  # core Callbacks added to every run (tests, plugins)
        self._reset_series()
        self._build()
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(250)
        self._summary_timer.timeout.connect(self._compute_summary)
        self._apply_recipe_defaults("scratch")
        self._update_buttons()
        self._release_after_paint: TrainingRun | None = None
        self._warmed_up = False
        self.batch_plot.viewport().installEventFilter(self)

    # =============================================================== building
    def _build(self) -> None:
        # ---- recipe
        self.recipe_combo = QComboBox()
        for key, label in RECIPE_LABELS.items():
            self.recipe_combo.addItem(label, key)
        self.recipe_combo.currentIndexChanged.connect(self._on_recipe_combo_changed)
        self.recipe_combo.activated.connect(self._on_recipe_combo_activated)
        self.recipe_help = QLabel()
        self.recipe_help.setWordWrap(True)
        self.recipe_help.setStyleSheet("padding: 2px 0 4px 0;")
        self.recipe_help.setMinimumHeight(48)
        self.recipe_note = QLabel()  # why this recipe for this project (suggested, or remembered)
        self.recipe_note.setWordWrap(True)
        self.recipe_note.setStyleSheet("color: #2e5e8c; font-style: italic;")
        self.recipe_note.setVisible(False)
        recipe_box = QGroupBox("Recipe")
        rl = QVBoxLayout(recipe_box)
        rl.addWidget(self.recipe_combo)
        rl.addWidget(self.recipe_note)
        rl.addWidget(self.recipe_help)

        # ---- hyperparameters ("Auto": chosen from the data by core.policy, shown below)
        self.epochs = QSpinBox(minimum=0, maximum=1000)
        self.batch_size = QSpinBox(minimum=0, maximum=4096)
        self.lr = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=1.0, singleStep=0.0001)
        for w in (self.epochs, self.batch_size, self.lr):
            w.setSpecialValueText("Auto")
        # the validation images and the test folder are the project's (Dataset > Splits...):
        # shown here, changed there, so the split on screen is the split trained on
        self.split_label = QLabel(wordWrap=True)
        self.split_label.setTextFormat(Qt.TextFormat.PlainText)
        self.splits_button = QToolButton()
        self.splits_button.setText("Splits…")
        self.splits_button.setToolTip("See and change the project's validation split and external test folder")
        self.splits_button.clicked.connect(self.splits_requested)
        self._split: ProjectSplit | None = None
        self.refit = QComboBox()
        for label, key in (("Auto", None), ("Yes", True), ("No", False)):
            self.refit.addItem(label, key)
        self.optimizer = QComboBox()
        for label, key in (("AdamW", "adamw"), ("Adam", "adam"), ("RMSprop", "rmsprop"), ("SGD with momentum", "sgd")):
            self.optimizer.addItem(label, key)
        self.image_size = QSpinBox(minimum=0, maximum=512, singleStep=8, suffix=" px")
        self.image_size.setSpecialValueText("Automatic")
        self.dropout = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.9, singleStep=0.05)
        self.weight_decay = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=0.1, singleStep=0.0001)
        self.patience = QSpinBox(minimum=0, maximum=100, suffix=" epochs")
        self.patience.setSpecialValueText("Off")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.mixed_precision = QCheckBox("Mixed precision on a GPU")
        self.mixed_precision.setChecked(True)
        tips = {self.epochs: "Passes over the training images. Auto: from the size of the set.",
                self.batch_size: "Images per step. Auto: from the size of the set. Halved automatically if the "
                                 "GPU runs out of memory.",
                self.lr: "Step size of the optimiser (the most important setting). Auto: per recipe.",
                self.split_label: "The project's validation images: a share of each class set aside to judge "
                                  "each epoch by (Dataset ▸ Splits…).",
                self.refit: "After the validation images chose the best epoch, train the final model again on "
                            "every image (the validation figures stay those of the first pass).",
                self.image_size: "Images are resized to this square. Automatic: the typical size of your "
                                 f"images, at most {MAX_SCRATCH_SIZE} px (scratch); 224 px for the pretrained network.",
                self.dropout: "Fraction of features dropped at random while training, against overfitting.",
                self.weight_decay: "Pulls weights towards zero, against overfitting.",
                self.patience: "Stop when the validation loss has not improved for this many epochs.",
                self.seed: "Same seed, same run (the split has its own seed, in Dataset ▸ Splits…).",
                self.mixed_precision: "On a CUDA GPU: bfloat16 (or float16 with loss scaling) where it is safe, "
                                      "about twice as fast. The CPU always trains in float32."}
        for w, tip in tips.items():
            w.setToolTip(tip)
        for w in (self.image_size, self.dropout):
            w.valueChanged.connect(self._schedule_summary)
        self.image_size.valueChanged.connect(self._update_plan)
        for w in (self.epochs, self.batch_size, self.lr):
            w.valueChanged.connect(self._update_plan)
        self.refit.currentIndexChanged.connect(self._update_plan)
        hyper_box = QGroupBox("Hyperparameters")
        form = QFormLayout(hyper_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        split_row = QHBoxLayout()
        split_row.addWidget(self.split_label, 1)
        split_row.addWidget(self.splits_button, 0, Qt.AlignmentFlag.AlignTop)
        for label, w in (("Epochs", self.epochs), ("Batch size", self.batch_size), ("Learning rate", self.lr),
                         ("Validation", split_row), ("Refit on all", self.refit),
                         ("Optimizer", self.optimizer), ("Image size", self.image_size), ("Dropout", self.dropout),
                         ("Weight decay", self.weight_decay), ("Early stopping", self.patience),
                         ("Seed", self.seed)):
            form.addRow(label, w)
        form.addRow("", self.mixed_precision)
        self.defaults_button = QToolButton()
        self.defaults_button.setText("Recipe defaults")
        self.defaults_button.setToolTip("Put every setting back on Auto (the recommended settings for this recipe)")
        self.defaults_button.clicked.connect(lambda: self._apply_recipe_defaults(self.recipe()))
        form.addRow("", self.defaults_button)

        # ---- what auto chose, and why (the same sentences the engine logs and stores)
        self.plan_box = QGroupBox("Auto settings for this project")
        self.plan_label = QLabel("Open a project to see what Auto will choose.")
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.plan_label.setStyleSheet("color: #333;")
        QVBoxLayout(self.plan_box).addWidget(self.plan_label)

        # ---- augmentation
        self.aug_box = QGroupBox("Augmentation (random changes to training images)")
        grid = QGridLayout(self.aug_box)
        self.aug_mode = QComboBox()
        for label, key in (("Auto (chosen from the data)", AUTO), ("Off", "off"), ("Custom strengths", "custom")):
            self.aug_mode.addItem(label, key)
        self.aug_mode.setToolTip("Auto picks none, mild or strong variation from the image size, the number of "
                                 "epochs and the recipe, and flips only colour photos. Custom uses the strengths "
                                 "below (the same as the Dataset place's augmentation preview).")
        self.aug_mode.currentIndexChanged.connect(self._on_aug_mode_changed)
        grid.addWidget(self.aug_mode, 0, 0, 1, 4)
        defaults = AugmentConfig()
        # the same controls, ranges and units as the Dataset place's augmentation preview
        self.aug_fields: dict[str, QDoubleSpinBox] = {}
        for i, s in enumerate(STRENGTHS):
            spin = QDoubleSpinBox(decimals=0, minimum=0, maximum=s.maximum, singleStep=s.step)
            spin.setSuffix(s.suffix)
            spin.setToolTip(s.tip)
            value = getattr(defaults, s.name)
            spin.setValue(value * 100 if s.percent else value)
            self.aug_fields[s.name] = spin
            grid.addWidget(QLabel(s.label), 1 + i // 2, (i % 2) * 2)
            grid.addWidget(spin, 1 + i // 2, (i % 2) * 2 + 1)
        self.aug_flip = QCheckBox("Mirror left–right")
        self.aug_flip.setChecked(defaults.horizontal_flip)
        self.aug_flip.setToolTip("Custom: flip half the pictures. Auto: allow flips (Auto flips colour photos "
                                 "only); untick for letters, digits and anything whose mirror image is another thing.")
        for w in (*self.aug_fields.values(), self.aug_flip):
            (w.valueChanged if isinstance(w, QDoubleSpinBox) else w.toggled).connect(self._update_plan)
        n = len(STRENGTHS)
        grid.addWidget(self.aug_flip, 1 + n // 2, (n % 2) * 2, 1, 2)
        self._on_aug_mode_changed()

        # ---- device and test folder
        self.device_combo = QComboBox()
        for label, key in device_choices():
            self.device_combo.addItem(label, key)
        self.test_label = QLabel(wordWrap=True)
        self.test_label.setTextFormat(Qt.TextFormat.PlainText)
        self.test_label.setToolTip("Photos the model never sees while training, in folders named like your classes. "
                                   "Its score there is the honest one. Chosen in Dataset ▸ Splits….")
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_label, 1)
        run_box = QGroupBox("Where")
        rf = QFormLayout(run_box)
        rf.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        rf.addRow("Device", self.device_combo)
        rf.addRow("Test folder", test_row)

        # ---- buttons
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start_training)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch; the best model so far is kept")
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the stopped run from its saved model")
        self.resume_button.clicked.connect(self.resume_training)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.stop_button, 1)
        buttons.addWidget(self.resume_button, 1)

        settings = QWidget()
        sl = QVBoxLayout(settings)
        sl.setContentsMargins(0, 0, 6, 0)
        for box in (recipe_box, hyper_box, self.plan_box, self.aug_box, run_box):
            sl.addWidget(box)
        sl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(scroll, 1)
        ll.addLayout(buttons)
        left.setMinimumWidth(360)
        left.setMaximumWidth(460)

        # ---- tabs
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_summary_tab(), "Model")
        self.tabs.addTab(self._build_live_tab(), "Training")
        self.evaluation = QtEvaluation()
        self.evaluation.relabel_requested.connect(self.relabel_requested)
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.runs_view = QtRuns()
        self.runs_view.run_activated.connect(self._on_runs_view_run_activated)
        self.runs_view.run_deleted.connect(self._on_runs_view_run_deleted)
        self.runs_view.open_model_requested.connect(self.open_model_requested)
        self.tabs.addTab(self.runs_view, "Runs")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)

    def _build_summary_tab(self) -> QWidget:
        self.summary_title = QLabel("Open a project to see the network this recipe will train.")
        self.summary_title.setWordWrap(True)
        self.summary_table = QTableWidget(0, 5)
        self.summary_table.setHorizontalHeaderLabels(["Layer", "Type", "Output shape", "Parameters", "Training"])
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.verticalHeader().setDefaultSectionSize(22)
        h = self.summary_table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setStretchLastSection(True)
        self.summary_totals = QLabel("")
        self.summary_totals.setTextFormat(Qt.TextFormat.RichText)
        w = QWidget()
        v = QVBoxLayout(w)
        v.addWidget(self.summary_title)
        v.addWidget(self.summary_table, 1)
        v.addWidget(self.summary_totals)
        return w

    def _build_live_tab(self) -> QWidget:
        pg.setConfigOptions(antialias=False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.progress.setTextVisible(True)
        self.status_label = QLabel("Press Start training.")
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setWordWrap(True)  # a finished run's summary is long at 1280 px

        def plot(title: str, left: str, bottom: str, legend_at_bottom: bool = False) -> pg.PlotWidget:
            p = pg.PlotWidget()
            p.setBackground("w")
            p.setTitle(title, color="#222", size="11pt")
            p.setLabel("left", left)
            p.setLabel("bottom", bottom)
            p.showGrid(x=True, y=True, alpha=0.25)
            # accuracy climbs to the top right: its legend goes bottom right, out of the way
            p.addLegend(offset=(-8, -8) if legend_at_bottom else (-8, 8))
            p.setClipToView(True)
            p.getAxis("left").enableAutoSIPrefix(False)
            p.setMinimumHeight(180)
            # Axes (tick labels and grid) and titles are re-drawn from a pixmap unless their
            # range changed: replaying their text on every repaint was most of its cost.
            for name in ("left", "bottom"):
                # grid lines at the labelled ticks only: the minor ones tripled the cost of
                # every axis repaint, and the plot reads as well without them
                p.getAxis(name).setStyle(maxTickLevel=0)
            for item in (p.getAxis("left"), p.getAxis("bottom"), p.getPlotItem().titleLabel,
                         p.getPlotItem().legend):
                if item is not None:
                    item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            p.setMouseEnabled(x=False, y=False)  # ranges are managed below; a drag would fight them
            p.hideButtons()
            return p

        self.loss_plot = plot("Loss per epoch", "loss", "epoch")
        self.acc_plot = plot("Accuracy per epoch", "accuracy", "epoch", legend_at_bottom=True)
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.batch_plot = plot("Training loss per batch", "loss", "batch")
        pen = lambda c, w=2: pg.mkPen(c, width=w)  # noqa: E731
        self.curves = {
            "train_loss": self.loss_plot.plot([], [], pen=pen(COLOURS["train"]), symbol="o", symbolSize=6,
                                              symbolBrush=COLOURS["train"], name="training"),
            "val_loss": self.loss_plot.plot([], [], pen=pen(COLOURS["val"]), symbol="s", symbolSize=6,
                                            symbolBrush=COLOURS["val"], name="validation"),
            "train_accuracy": self.acc_plot.plot([], [], pen=pen(COLOURS["train"]), symbol="o", symbolSize=6,
                                                 symbolBrush=COLOURS["train"], name="training"),
            "val_accuracy": self.acc_plot.plot([], [], pen=pen(COLOURS["val"]), symbol="s", symbolSize=6,
                                               symbolBrush=COLOURS["val"], name="validation"),
            "batch_raw": self.batch_plot.plot([], [], pen=pen(COLOURS["raw"], 1), name="each batch"),
            "batch_smooth": self.batch_plot.plot([], [], pen=pen(COLOURS["train"]), name="smoothed"),
        }
        self.curves["batch_raw"].setDownsampling(auto=True, method="mean")
        self.curves["batch_smooth"].setDownsampling(auto=True, method="mean")
        self.best_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#2e7d32", style=Qt.PenStyle.DashLine),
                                         label="best", labelOpts={"position": 0.45, "color": "#2e7d32"})
        self.best_line.setVisible(False)
        self.acc_plot.addItem(self.best_line)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace", 9))
        self.log.setPlaceholderText("What happens during training is written here.")

        plots = QWidget()
        g = QGridLayout(plots)
        g.setContentsMargins(0, 0, 0, 0)
        g.addWidget(self.loss_plot, 0, 0)
        g.addWidget(self.acc_plot, 0, 1)
        g.addWidget(self.batch_plot, 1, 0, 1, 2)
        g.setRowStretch(0, 3)
        g.setRowStretch(1, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(plots)
        split.addWidget(self.log)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        w = QWidget()
        v = QVBoxLayout(w)
        v.addWidget(self.progress)
        v.addWidget(self.status_label)
        v.addWidget(split, 1)
        return w

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and obj is self.batch_plot.viewport() and self._release_after_paint:
            # the training view is being painted now: the run starts once this paint is done
            QTimer.singleShot(0, self._release_after_paint.release)
            self._release_after_paint = None
        return False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._facts_stale:
            self._facts_stale = False
            self._schedule_summary()
        if not self._warmed_up:
            self._warmed_up = True
            QTimer.singleShot(0, self, self._warm_up)  # dropped if the panel is gone by then

    def _warm_up(self) -> None:
        # The first paint of the plots lays out their axes, loads fonts and fills caches;
        # done once while idle, not when a training starts and competes with it.
        if self.tabs.currentIndex() != 1 and self.isVisible():
            self.tabs.widget(1).grab()

    # ================================================================ public
    def set_project(self, root: Path | str | None, store: ProjectStore | None = None) -> None:
        """Show ``root`` (a class-folder dataset) and record runs in ``store`` (None: runs are
        trained and saved but not recorded). A run still going is stopped first."""
        if self.is_training:
            self.shutdown()
        self.root = Path(root) if root is not None else None
        self.store = store
        self._summary_generation += 1  # a summary still being worked out is for the old project
        self._classes = list_class_folders(self.root) if self.root is not None and self.root.is_dir() else []
        if self.root is not None:
            self._facts.pop(os.fspath(self.root), None)  # the folder may have changed since it was last open
        remembered = self._remembered_recipe()
        self._set_recipe_note(None)
        if remembered is not None:
            self._set_recipe(remembered)
            self._set_recipe_note("Your last choice for this project.")
        # the project's remembered choice stands; else the first summary suggests a recipe
        self._recipe_touched = remembered is not None
        self._cancel_evaluation()
        self._run_results.clear()
        self.runs_view.set_store(store)
        self.evaluation.clear()
        self.last_outcome = None
        self._clear_live()  # nothing of the previous project's run stays on screen
        self.splits_changed()
        self._schedule_summary()
        self._update_plan()
        self._update_buttons()

    def splits_changed(self) -> None:
        """The project's split, its settings or its test folder changed (or a project opened):
        show them as the project has them now."""
        self._split = None
        if self.store is not None and self.store.conn is not None:
            try:
                self._split = project_split(self.store)
            except (StoreError, sqlite3.Error) as e:
                self._log(f"Cannot read the project's split: {e}")
        s = self._split
        no_test = "None (optional: class folders from elsewhere, chosen in Splits…)" if self.root is not None else ""
        if s is None or not s.images:
            self.split_label.setText("Auto: set aside when training starts" if self.root is not None else "")
            self.test_label.setText((s.test_folder if s is not None else None) or no_test)
        else:
            share = f"{len(s.val):,} of {s.images:,} pictures ({s.share:.0%})"
            how = (f", {s.val_fraction:.0%} of each class, seed {s.seed}" if s.val_fraction is not None else "")
            left = f"; {len(s.left_out)} marked bad or duplicate are left out" if s.left_out else ""
            self.split_label.setText(share + how + left)
            self.test_label.setText(s.test_folder or no_test)
        self._update_plan()

    def dataset_changed(self) -> None:
        """The project's images or classes changed (imported, relabelled, deleted): the Auto
        box and the recipe suggestion follow the data as it is now."""
        if self.root is None:
            return
        self.splits_changed()  # new images got a split, removed ones left it
        self._facts.pop(os.fspath(self.root), None)
        self._classes = list_class_folders(self.root) if self.root.is_dir() else []
        if self.isVisible():
            self._schedule_summary()
        else:  # looked at again when the panel is shown, not on every import batch
            self._facts_stale = True

    def recipe(self) -> str:
        return self.recipe_combo.currentData()

    def choose_recipe(self, recipe: str) -> None:
        """Pick ``recipe`` as the user does: it stands for this project (no suggestion replaces it)."""
        self._set_recipe(recipe)
        self._recipe_touched = True
        self._set_recipe_note(None)  # the suggestion no longer describes what is chosen

    def config(self) -> TrainConfig:
        """The settings on screen as a TrainConfig ("Auto" is None: the policy decides)."""
        mode = self.aug_mode.currentData()
        aug: AugmentConfig | None | str = AUTO if mode == AUTO else None
        if mode == "custom":
            aug = AugmentConfig(**{s.name: self.aug_fields[s.name].value() / (100 if s.percent else 1)
                                   for s in STRENGTHS}, horizontal_flip=self.aug_flip.isChecked())
            aug = None if aug.is_identity else aug
        return TrainConfig(recipe=self.recipe(), epochs=self.epochs.value() or None,
                           allow_flip=self.aug_flip.isChecked(),
                           batch_size=self.batch_size.value() or None, lr=float(self.lr.value()) or None,
                           refit=self.refit.currentData(),
                           optimizer=self.optimizer.currentData(),
                           image_size=self.image_size.value() or None, seed=self.seed.value(), augment=aug,
                           dropout=float(self.dropout.value()), weight_decay=float(self.weight_decay.value()),
                           early_stopping=self.patience.value() or None, device=self.device_combo.currentData(),
                           mixed_precision=None if self.mixed_precision.isChecked() else False)

    def set_augment_config(self, d: dict | None) -> None:
        """Show the augmentation strengths set in the Dataset place: ``AugmentConfig.to_dict()``
        (what :class:`~ponyclassifier.gui.qt_augment_preview.QtAugmentPreview` emits and the
        main window remembers). Missing or unreadable entries leave their box as it is; values
        beyond a box's range are clamped to it."""
        if not isinstance(d, dict):
            return
        for s in STRENGTHS:
            try:
                value = float(d[s.name])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                self.aug_fields[s.name].setValue(value * (100 if s.percent else 1))
        if isinstance(d.get("horizontal_flip"), bool):
            self.aug_flip.setChecked(d["horizontal_flip"])

    @property
    def is_training(self) -> bool:
        return self.run is not None and self.run.running

    def start_training(self) -> TrainingRun | None:
        if self.is_training:
            return None
        if self.root is None:
            self._log("Open a project first.")
            return None
        self._reset_series()
        self.log.clear()
        self._recipe_touched = True  # the recipe trained with stands: no suggestion replaces it now
        run = self._launch(self.config())
        if run is not None:
            self._remember_recipe()
        return run

    def stop_training(self) -> None:
        if self.is_training:
            self.run.stop()
            self._log("Stopping after this batch; the best model so far is kept…")
            self.stop_button.setEnabled(False)

    def can_resume(self) -> bool:
        o = self.last_outcome
        if self.is_training or o is None or o.status != "stopped" or not o.model_path or self._last_config is None:
            return False
        done = o.first_epoch - 1 + o.epochs_run
        planned = self._last_config.epochs or self._planned_total
        return done < planned and os.path.exists(o.model_path)  # stopped in its refit: nothing left to resume

    def resume_training(self) -> TrainingRun | None:
        if not self.can_resume():
            return None
        o, cfg = self.last_outcome, self._last_config
        done = o.first_epoch - 1 + o.epochs_run
        planned = max(cfg.epochs or self._planned_total or 1, done + 1)
        resumed = TrainConfig(**{**cfg.__dict__, "epochs": planned})
        self._log(f"Resuming run {o.run_id} from its saved model: epochs {done + 1}–{planned}.")
        return self._launch(resumed, resume_model=o.model_path, epoch_offset=done, resumed_from=o.run_id,
                            planned_total=planned)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop a running training and wait for its thread (for the window's closeEvent)."""
        self._summary_timer.stop()
        self._cancel_evaluation()
        self.evaluation.close_loader()
        if self.run is not None:
            self.run.stop()
            ok = self.run.wait(timeout_ms)
            self._redraw_timer.stop()
            return ok
        return True

    # ============================================================== training
    def _launch(self, cfg: TrainConfig, *, resume_model: str | None = None, epoch_offset: int = 0,
                resumed_from: int | None = None, planned_total: int | None = None) -> TrainingRun | None:
        self.splits_changed()  # what the project says now is what this run uses
        # (a store that lists no images yet, never synced with its folder, has no split to give)
        split = self._split if self._split is not None and self._split.images else None
        test_dir = split.test_folder if split is not None else None
        if test_dir and not os.path.isdir(test_dir):
            self._log(f"The project's test folder {test_dir} does not exist; choose another in Splits….")
            return None
        if cfg.early_stopping:
            from ...core.callbacks import EarlyStopping

            extra = [EarlyStopping("val_loss", patience=cfg.early_stopping)]
        else:
            extra = []
        extra += list(self.extra_callbacks)
        try:
            run = TrainingRun(cfg, self.root, store=self.store, project_root=self.root, test_dir=test_dir, split=split,
                              resume_model=resume_model, epoch_offset=epoch_offset, resumed_from=resumed_from,
                              extra_callbacks=extra, parent=self)
        except TrainingError as e:
            self._log(f"Cannot start: {e}")
            return None
        self.run = run
        self._planned_total = planned_total or (run.config.epochs or 1)
        self._set_epoch_range()
        self._last_config = cfg if resume_model is None else self._last_config
        run.prepare_progressed.connect(self._on_run_prepare_progressed)
        run.train_started.connect(self._on_run_train_started)
        run.epoch_started.connect(self._on_run_epoch_started)
        run.batches_finished.connect(self._on_run_batches_finished)
        run.epoch_finished.connect(self._on_run_epoch_finished)
        run.message_logged.connect(self._log)
        run.finished.connect(self._on_run_finished)
        # the training tab is painted (its first paint is the costliest) before the run
        # starts competing with the GUI thread
        self.tabs.setCurrentIndex(1)
        run.start(hold=self.isVisible())
        if self.isVisible():
            self._release_after_paint = run
            self.batch_plot.viewport().update()
        if run.store_error:
            self._log(f"Note: {run.store_error}")
        self._t_train = None
        self._epoch_done = epoch_offset
        self._epoch_offset = epoch_offset
        self.progress.setValue(0)
        self.progress.setFormat("Reading images…")
        self.status_label.setText(f"Preparing {RECIPE_LABELS[cfg.recipe].lower()}…")
        self._redraw_timer.start()
        self._update_buttons()
        self.training_started.emit(run.run_id if run.run_id is not None else -1)
        return run

    def _clear_live(self) -> None:
        """The Live tab as before any run: empty curves, no best epoch, no log, no progress."""
        if self.is_training:
            return
        self._reset_series()
        self.log.clear()
        self.best_line.setVisible(False)
        self._push_plots()
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.status_label.setText("Press Start training." if self.root is not None else "Open a project first.")
        self._update_buttons()

    def _reset_series(self) -> None:
        self.series: dict[str, list[float]] = {k: [] for k in
                                               ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")}
        self.batch_x: list[float] = []
        self.batch_raw: list[float] = []
        self.batch_smooth: list[float] = []
        self._ema: float | None = None
        self._dirty = self._loss_dirty = self._acc_dirty = self._batches_dirty = True
        self._loss_top = self._batch_top = 0.0
        self._batch_xmax = 0
        self._progress: dict[str, Any] = {}
        self._best_epoch: int | None = None
        self._best_score: tuple[float, float] | None = None
        self._t_train: float | None = None
        self._batch_pushed = 0.0
        self._train_images = 0
        self._epoch_done = self._epoch_offset = 0
        self._planned_total = 1

    @Slot(str, int, int)
    def _on_run_prepare_progressed(self, stage: str, done: int, total: int) -> None:
        what = {"scan": "Reading images", "scan test set": "Reading the test images",
                "refit on all images": "Refitting on all images",
                "choosing the head": "Choosing the head (cross-validation)"}.get(stage, f"Computing {stage}")
        self.progress.setFormat(f"{what}: {done} / {total}")
        self.progress.setValue(int(1000 * done / max(total, 1)))

    @Slot(dict)
    def _on_run_train_started(self, logs: dict) -> None:
        self._t_train = time.perf_counter()
        self._train_images = logs.get("train_images", 0)
        planned = int(logs.get("epochs", self._planned_total))  # the run's own count (auto: the policy's)
        if planned != self._planned_total:
            self._planned_total = planned
            self._set_epoch_range()
        if self.run is not None:  # the batch plot's x axis: every batch this run plans, fixed
            per_epoch = math.ceil(self._train_images / max(1, int(logs.get("batch_size") or 32)))
            epochs = int(logs.get("epochs", 1)) - int(logs.get("first_epoch", 1)) + 1
            self._batch_xmax = max(10, len(self.batch_x) + max(1, epochs) * per_epoch)
            self.batch_plot.setXRange(0, self._batch_xmax, padding=0)
        self._log(f"Training {logs.get('recipe')} on {logs.get('device')}: {logs.get('train_images')} training and "
                  f"{logs.get('val_images')} validation images, epochs {logs.get('first_epoch')}–"
                  f"{logs.get('epochs')}.")
        self.progress.setValue(0)

    @Slot(int, dict)
    def _on_run_epoch_started(self, epoch: int, logs: dict) -> None:
        self._progress = {"epoch": epoch, "seen": 0,
                          "images_per_second": self._progress.get("images_per_second", 0.0)}
        self._dirty = True

    @Slot(dict)
    def _on_run_batches_finished(self, info: dict) -> None:
        for loss in info["batch_losses"]:
            if not math.isfinite(loss):
                continue
            self._ema = loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            self.batch_x.append(len(self.batch_x) + 1)
            self.batch_raw.append(loss)
            self.batch_smooth.append(self._ema)
        self._progress = info
        self._dirty = self._batches_dirty = True

    @Slot(int, dict)
    def _on_run_epoch_finished(self, epoch: int, logs: dict) -> None:
        s = self.series
        s["epoch"].append(epoch)
        for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            v = logs.get(k)
            s[k].append(float(v) if v is not None else math.nan)
        self._epoch_done = epoch
        score = epoch_score(logs)  # the engine's rule, so the line marks the model it keeps
        if score is not None and (self._best_score is None or score > self._best_score):
            self._best_score, self._best_epoch = score, epoch
        self._progress = {"epoch": epoch, "seen": self._train_images, "train_images": self._train_images,
                          "images_per_second": logs.get("images_per_second", 0.0)}
        self._dirty = self._loss_dirty = self._acc_dirty = True
        val = ""
        if logs.get("val_loss") is not None and math.isfinite(logs["val_loss"]):
            val = f" · val loss {logs['val_loss']:.4f}, val acc {100 * logs['val_accuracy']:.1f}%"
        self._log(f"Epoch {epoch}/{self._planned_total}: loss {logs.get('train_loss', math.nan):.4f}, "
                  f"acc {100 * logs.get('train_accuracy', math.nan):.1f}%{val} · {logs.get('seconds', 0):.1f} s, "
                  f"{logs.get('images_per_second', 0):,.0f} img/s")

    @Slot(object)
    def _on_run_finished(self, outcome: TrainingOutcome) -> None:
        self._redraw_timer.stop()
        if outcome.best_epoch is not None:
            self._best_epoch = outcome.best_epoch  # the model kept; the line shows it
        self._push_plots()
        self.last_outcome = outcome
        if outcome.status == "failed":
            self._log(f"Training failed: {outcome.error}")
            if outcome.details:
                self._log(outcome.details)
            self.progress.setFormat("Failed")
            self.status_label.setText(f"<span style='color:#b00020'>{outcome.error}</span>")
        else:
            v = outcome.validation or {}
            verdict = "Stopped" if outcome.status == "stopped" else "Finished"
            if outcome.stop_reason:
                self._log(f"Stopped: {outcome.stop_reason}")
            text = (f"{verdict} after {outcome.epochs_run} epoch{'s' if outcome.epochs_run != 1 else ''} in "
                    f"{fmt_duration(outcome.seconds)}")
            if outcome.best_epoch is not None:
                text += f"; best epoch {outcome.best_epoch}"
            if outcome.refit_epochs:
                text += " (then refitted on all images)"
            if v:
                text += f": validation accuracy {100 * v['accuracy']:.1f}%, macro F1 {v['macro_f1']:.3f}"
            if outcome.test:
                text += f"; external test F1 {outcome.test['macro_f1']:.3f}"
            self._log(text + ".")
            if outcome.model_path:
                self._log(f"Model saved to {outcome.model_path}")
            if outcome.skipped:
                self._log(f"{outcome.skipped} unreadable file(s) were skipped.")
            self.progress.setValue(1000 if outcome.status == "finished" else self.progress.value())
            self.progress.setFormat(verdict)
            self.status_label.setText(text + ("" if not outcome.model_path else
                                              " &nbsp;— see <b>Evaluation</b> for the mistakes"))
            if outcome.validation:
                self._cancel_evaluation()
                if outcome.run_id is not None and outcome.predictions:
                    self._run_results[outcome.run_id] = (outcome.validation, list(outcome.predictions))
                self.evaluation.set_results(outcome.classes, outcome.validation, outcome.test, outcome.predictions,
                                            heading=None if outcome.run_id is None else
                                            f"Run {outcome.run_id} ({self.run.config.recipe if self.run else ''})")
        if self.run is not None and self.run.store_error:
            self._log(f"Note: {self.run.store_error}")
        self.runs_view.refresh()
        self._update_buttons()
        if outcome.model_path:
            self.model_saved.emit(outcome.model_path)
        self.training_finished.emit(outcome)

    # ================================================================ redraw
    @Slot()
    def _on_redraw_timer_timeout(self) -> None:
        # Only what changed is pushed, and at most one plot per tick: every repaint costs
        # GUI-thread time that the training thread competes for (the GIL), and widgets
        # made dirty in the same tick are all painted in one go (one long stall).
        if self._release_after_paint is not None:  # the batch plot was not painted (hidden): go on
            self._release_after_paint.release()
            self._release_after_paint = None
        now = time.perf_counter()
        if self._loss_dirty:
            self._push_loss()
        elif self._acc_dirty:
            self._push_accuracy()
        elif self._batches_dirty and now - self._batch_pushed >= BATCH_PLOT_S:
            # a loss curve is live enough at 5 Hz
            self._push_batches(now)
        self._update_progress()

    def _push_plots(self) -> None:
        self._dirty = True
        self._push_loss()
        self._push_accuracy()
        self._push_batches(time.perf_counter())
        self._update_progress()

    def _push_loss(self) -> None:
        self._loss_dirty = False
        s = self.series
        for k in ("train_loss", "val_loss"):
            self.curves[k].setData(s["epoch"], s[k])
        top = _range_top(s["train_loss"] + s["val_loss"], self._loss_top)
        if top != self._loss_top:
            self._loss_top = top
            self.loss_plot.setYRange(0, top, padding=0)

    def _push_accuracy(self) -> None:
        self._acc_dirty = False
        s = self.series
        for k in ("train_accuracy", "val_accuracy"):
            self.curves[k].setData(s["epoch"], s[k])
        if self._best_epoch is not None:
            self.best_line.setValue(self._best_epoch)
            self.best_line.setVisible(True)

    def _push_batches(self, now: float) -> None:
        self._batches_dirty = False
        self._batch_pushed = now
        n = len(self.batch_x)
        if n > self._batch_xmax:  # more batches than planned (a halved batch size)
            self._batch_xmax = max(10, math.ceil(1.25 * n))
            self.batch_plot.setXRange(0, self._batch_xmax, padding=0)
        self.curves["batch_raw"].setData(self.batch_x, self.batch_raw)
        self.curves["batch_smooth"].setData(self.batch_x, self.batch_smooth)
        top = _range_top(self.batch_raw[-400:], self._batch_top)
        if top != self._batch_top:
            self._batch_top = top
            self.batch_plot.setYRange(0, top, padding=0)

    def _set_epoch_range(self) -> None:
        """Whole epochs on the x axis, fixed for the run (a moving range re-lays the axes)."""
        n = max(1, self._planned_total)
        step = max(1, math.ceil(n / 10))  # whole epochs, never 1.5
        for plot in (self.loss_plot, self.acc_plot):
            plot.setXRange(0.5, n + 0.5, padding=0)
            plot.getAxis("bottom").setTickSpacing(step, step)

    def _update_progress(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        p = self._progress
        if not p or self._t_train is None:
            return
        total = max(1, self._planned_total - self._epoch_offset)
        within = p.get("seen", 0) / max(1, p.get("train_images") or self._train_images or 1)
        epochs_before = max(0, p.get("epoch", 1) - 1 - self._epoch_offset)
        if p.get("epoch", 0) == self._epoch_done:
            epochs_before, within = self._epoch_done - self._epoch_offset, 0.0
        frac = min(1.0, (epochs_before + min(within, 1.0)) / total)
        self.progress.setValue(int(1000 * frac))
        elapsed = time.perf_counter() - self._t_train
        eta = elapsed * (1 - frac) / frac if frac > 0.02 else math.nan
        self.progress.setFormat(f"Epoch {max(p.get('epoch', 1), 1)} of {self._planned_total} · {100 * frac:.0f}%")
        self.status_label.setText(
            f"<b>Epoch {p.get('epoch', '')}</b> &nbsp; batch loss {p.get('loss', math.nan):.4f} &nbsp; "
            f"accuracy {100 * p.get('accuracy', math.nan):.1f}% &nbsp; "
            f"{p.get('images_per_second', 0):,.0f} images/s &nbsp; elapsed {fmt_duration(elapsed)} &nbsp; "
            f"<b>ETA {fmt_duration(eta)}</b>" if "loss" in p else
            f"<b>Epoch {p.get('epoch', '')}</b> &nbsp; {p.get('images_per_second', 0):,.0f} images/s &nbsp; "
            f"elapsed {fmt_duration(elapsed)} &nbsp; <b>ETA {fmt_duration(eta)}</b>")

    # =============================================================== summary
    def _schedule_summary(self, *args) -> None:
        self._summary_timer.start()

    @Slot()
    def _compute_summary(self) -> None:
        if self.root is None or len(self._classes) < 1:
            self.summary_title.setText("Open a project with class folders to see the network this recipe "
                                       "will train.")
            self.summary_table.setRowCount(0)
            self.summary_totals.setText("")
            return
        recipe, classes = self.recipe(), len(self._classes)
        size = self.image_size.value() or None
        dropout = float(self.dropout.value())
        root = os.fspath(self.root)
        cached = self._facts.get(root)
        self._summary_generation += 1
        gen = self._summary_generation
        self.summary_title.setText("Working out the network…")

        def work(state) -> tuple:
            facts = cached or glance_dataset(root, "scratch")
            state.check()
            s = _training_size(facts, recipe, size)
            channels = facts.channels if recipe == "scratch" else 3  # the pretrained stem takes colour
            return gen, root, facts, recipe_summary(recipe, classes, s, channels, dropout)

        self._summary_job = run_job(work, on_finished=self._on_summary_finished,
                                    on_failed=lambda m, d: self.summary_title.setText(f"No summary: {m}"))

    def _on_summary_finished(self, result) -> None:
        # the project may have changed (or closed) while the summary was worked out
        gen, root, facts, summary = result
        self._facts[root] = facts
        if gen != self._summary_generation or self.root is None:
            return
        size = _training_size(facts, self.recipe(), self.image_size.value() or None)
        if not self._recipe_touched and not self.is_training and facts.images > 0 and facts.classes >= 2:
            suggested, why = default_recipe(facts)
            self._recipe_touched = True
            self._set_recipe_note(f"Suggested for this project: {why}.")
            if suggested != self.recipe():
                self._suggesting = True
                try:
                    self._set_recipe(suggested)  # computes the summary again, for that recipe
                finally:
                    self._suggesting = False
                self._log(f"Recipe: {RECIPE_LABELS[suggested]} suggested for this project ({why}).")
                return
        self.summary = summary
        self._update_plan()
        recipe = self.recipe()
        t = self.summary_table
        t.setRowCount(len(summary.rows))
        for i, r in enumerate(summary.rows):
            state = "trainable" if r["trainable"] else ("frozen" if r["params"] else "")
            vals = [r["name"], r["type"], " × ".join(str(d) for d in r["output_shape"]), f"{r['params']:,}", state]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if j == 3:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if state == "frozen":
                    it.setForeground(Qt.GlobalColor.gray)
                t.setItem(i, j, it)
        note = {"transfer": " The pretrained base is frozen: only the new head learns.",
                "finetune": " First the head learns with the base frozen; then the top blocks (shown trainable) "
                            "are retrained with a lower learning rate."}.get(recipe, "")
        self.summary_title.setText(f"<b>{RECIPE_LABELS[recipe]}</b> for {len(self._classes)} classes at "
                                   f"{size} × {size} px ({len(summary.rows)} layers).{note}")
        self.summary_totals.setText(
            f"<b>Total parameters:</b> {summary.total_params:,} ({format_count(summary.total_params)}) &nbsp; "
            f"<b>Trainable:</b> {summary.trainable_params:,} &nbsp; <b>Frozen:</b> {summary.frozen_params:,}")

    # ================================================================ helpers
    def _apply_recipe_defaults(self, recipe: str) -> None:
        for w in (self.epochs, self.batch_size, self.lr):
            w.setValue(w.minimum())  # Auto
        self.refit.setCurrentIndex(0)
        self.aug_mode.setCurrentIndex(0)
        self.weight_decay.setValue(1e-4)
        self.optimizer.setCurrentIndex(0)
        self._apply_recipe_fields(recipe)

    def _apply_recipe_fields(self, recipe: str) -> None:
        """What belongs to the recipe itself: its image size, dropout and help."""
        self.image_size.setValue(RECIPE_DEFAULTS[recipe]["image_size"] or 0)
        self.dropout.setValue(DEFAULT_DROPOUT[recipe])
        self.recipe_help.setText(M.RECIPE_HELP[recipe])
        self._schedule_summary()
        self._update_plan()

    def _set_recipe(self, recipe: str) -> None:
        index = self.recipe_combo.findData(recipe)
        if index >= 0 and index != self.recipe_combo.currentIndex():
            self.recipe_combo.setCurrentIndex(index)

    @Slot(int)
    def _on_recipe_combo_changed(self, index: int) -> None:
        if self._suggesting:  # a suggestion changes what depends on the recipe, not the user's settings
            self._apply_recipe_fields(self.recipe())
            return
        self._recipe_touched = True  # chosen since the project opened: no suggestion overrides it
        self._apply_recipe_defaults(self.recipe())

    @Slot(int)
    def _on_recipe_combo_activated(self, index: int) -> None:
        self._recipe_touched = True  # the user's choice: kept, and remembered for this project
        self._set_recipe_note(None)
        self._remember_recipe()

    def _set_recipe_note(self, text: str | None) -> None:
        self.recipe_note.setText(text or "")
        self.recipe_note.setVisible(bool(text))

    def _remembered_recipe(self) -> str | None:
        if self.store is None or self.store.conn is None:
            return None
        try:
            value = self.store.meta(RECIPE_META_KEY)
        except (StoreError, sqlite3.Error):
            return None
        return value if value in RECIPE_LABELS else None

    def _remember_recipe(self) -> None:
        if self.store is None or self.store.read_only or self.store.conn is None:
            return
        try:
            self.store.set_meta(RECIPE_META_KEY, self.recipe())
        except (StoreError, sqlite3.Error):
            pass  # a note is not worth an error: the next project open suggests a recipe again

    @Slot()
    def _on_aug_mode_changed(self, *args) -> None:
        mode = self.aug_mode.currentData()
        for w in self.aug_fields.values():
            w.setEnabled(mode == "custom")
        self.aug_flip.setEnabled(mode != "off")  # Auto: whether flips are allowed at all
        self._update_plan()

    def _update_plan(self, *args) -> None:
        """Show what Auto will choose for this project, with the reasons (the policy's own
        sentences, from a glance at the data; training decides again from the full scan)."""
        if not hasattr(self, "plan_label"):
            return
        facts = self._facts.get(os.fspath(self.root)) if self.root is not None else None
        if self.root is None:
            self.plan_label.setText("Open a project to see what Auto will choose.")
            return
        if facts is None:
            self.plan_label.setText("Looking at the pictures…")
            return
        if facts.classes < 2 or facts.images == 0:
            self.plan_label.setText("Auto chooses once the project has two or more classes with pictures.")
            return
        facts = replace(facts, image_size=_training_size(facts, self.recipe(), self.image_size.value() or None))
        try:
            split = self._split
            if split is not None and split.images:
                plan = plan_with_share(self.config().resolved(), facts, split.share, split.describe())
            else:
                plan = plan_training(self.config().resolved(), facts)
        except TrainingError as e:
            self.plan_label.setText(f"<span style='color:#b00020'>{escape(str(e))}</span>")
            return
        rows = []
        for d in plan.decisions():
            value = escape(describe_value(d.name, d.value))
            state = "auto" if d.auto else "set"
            rows.append(f"<b>{escape(d.name.capitalize())}</b>: {value} <i>({state}: {escape(d.reason)})</i>")
        self.plan_label.setText("<br>".join(rows))

    def _on_runs_view_run_activated(self, run_id: int) -> None:
        if self.runs_view.run(run_id) is not None:
            self.show_run_evaluation(run_id)
            self.tabs.setCurrentWidget(self.evaluation)

    def _on_runs_view_run_deleted(self, run_id: int) -> None:
        self._run_results.pop(run_id, None)

    # ============================================================ evaluation
    def show_run_evaluation(self, run_id: int):
        """Show a recorded run in the Evaluation tab. Its stored scores show at once; when
        the per-image predictions behind the confusion matrix are not at hand (a run from
        an earlier session), its model file is evaluated on the project's validation split
        on a worker, and the view is filled again with that result (the job, or None)."""
        run = self.runs_view.run(run_id)
        if run is None:
            return None
        self._cancel_evaluation()
        m = run.metrics or {}
        heading = f"Run {run_id} ({run.recipe})"
        cached = self._run_results.get(run_id)
        if cached is not None:
            report, predictions = cached
            self.evaluation.set_results(report.get("classes", []), report, m.get("test"), predictions,
                                        heading=heading)
            return None
        val = m.get("validation")
        self.evaluation.set_results(list((val or {}).get("per_class", {}).keys()), val, m.get("test"), None,
                                    heading=heading)
        path = run.model_path
        if not path or not os.path.exists(path):
            self.evaluation.set_cell_note("This run has no model file (it was not saved, or was deleted), so the "
                                          "images behind each cell cannot be shown.")
            return None
        if m.get("refit_epochs"):
            self.evaluation.set_cell_note("This run's final model was trained again on every image, the validation "
                                          "images too, so scoring it on them now would flatter it. The scores shown "
                                          "are from before the refit; the images behind each cell are known only "
                                          "for runs of this session.")
            return None
        data_dir = run.settings.get("dataset")
        if not data_dir or not os.path.isdir(data_dir):
            data_dir = os.fspath(self.root) if self.root is not None else None
        if data_dir is None:
            return None
        # the share the run really used: auto's choice, recorded with the run (older runs: as set)
        share = ((m.get("plan") or {}).get("validation share") or {}).get("value", run.settings.get("val_split"))
        val_split, seed = float(0.2 if share is None else share), int(run.settings.get("seed", 0))
        test = m.get("test")
        gen, store = self._eval_generation, self.store
        # a run on the project's split is scored on the project's validation images (as they are now)
        val_paths = None
        if run.settings.get("split") and store is not None:
            try:
                val_paths = project_split(store).val
            except (StoreError, sqlite3.Error):
                val_paths = None

        def work(state):
            model = TrainedModel.load(path)
            state.check()
            if model.training.get("refit"):  # it has seen the validation images: no honest re-score
                raise RuntimeError("this run's model was refitted on every image, the validation images too; "
                                   "the scores shown are from before the refit")
            planned = ((model.training.get("plan") or {}).get("validation share") or {}).get("value")
            share = val_split if planned is None else float(planned)
            report, predictions, skipped = evaluate_split(model, data_dir, val_split=share, seed=seed,
                                                          val_paths=val_paths, progress=state.progress,
                                                          should_stop=lambda: state.cancelled)
            state.check()
            return gen, run_id, report.to_dict(), predictions, len(skipped)

        def finished(result) -> None:
            g, rid, report, predictions, skipped = result
            if self.store is store:  # kept for the next time, unless the project changed meanwhile
                self._run_results[rid] = (report, predictions)
            if g != self._eval_generation:  # another run (or a training) is shown now
                return
            self.evaluation.set_results(report["classes"], report, test, predictions,
                                        heading=f"{heading}, evaluated now on {report['count']} validation images"
                                        + (f" ({skipped} unreadable skipped)" if skipped else ""))
            self.evaluation_ready.emit(rid)

        def failed(message: str, details: str) -> None:
            if gen == self._eval_generation:
                self.evaluation.set_cell_note(f"Could not evaluate run {run_id}'s model: {message}")

        def progressed(done: int, total: int) -> None:
            if gen == self._eval_generation:
                self.evaluation.set_cell_note(f"Evaluating run {run_id}'s model on the validation images to find "
                                              f"the images behind each cell… {done} / {total}")

        self.evaluation.set_cell_note(f"Evaluating run {run_id}'s model on the validation images to find the "
                                      "images behind each cell…")
        self._eval_job = run_job(work, on_finished=finished, on_failed=failed, on_progress=progressed)
        return self._eval_job

    def _cancel_evaluation(self) -> None:
        self._eval_generation += 1
        if self._eval_job is not None:
            self._eval_job.cancel()
            self._eval_job = None

    def _update_buttons(self) -> None:
        busy = self.is_training
        self.start_button.setEnabled(not busy and self.root is not None)
        self.stop_button.setEnabled(busy)
        self.resume_button.setEnabled(self.can_resume())
        for w in (self.recipe_combo, self.epochs, self.batch_size, self.lr, self.splits_button, self.refit,
                  self.optimizer, self.image_size, self.dropout, self.weight_decay, self.patience, self.seed,
                  self.mixed_precision, self.aug_box, self.device_combo):
            w.setEnabled(not busy)

    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
