"""QtTrainingSettings: the left column of the Train place, the settings a run is given.

The recipe (with its plain-language help and why it was chosen), hyperparameters with
per-recipe defaults ("Auto": chosen from the data by :mod:`ponyclassifier.core.policy`),
the project's split and test folder as shown (changed in Dataset ▸ Splits…), what Auto
will choose and why, augmentation (the same controls as the Dataset place's preview),
the device, and Start / Stop / Resume. :meth:`config` is the settings on screen as a
``TrainConfig``; :meth:`show_plan` shows the policy's own sentences for them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from html import escape

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import models as M
from ...core.augment import AugmentConfig
from ...core.engine import MAX_SCRATCH_SIZE, RECIPE_DEFAULTS, TrainConfig, TrainingError, training_image_size
from ...core.policy import AUTO, DataFacts, describe_value, plan_training, plan_with_share
from ...core.runs import ProjectSplit
from ..widgets.format import RECIPE_LABELS
from ..widgets.strengths import STRENGTHS

__all__ = ["DEFAULT_DROPOUT", "FIELDS", "QtTrainingSettings", "device_choices"]

DEFAULT_DROPOUT = {"scratch": 0.5, "transfer": 0.2, "finetune": 0.2}
# the widgets the panel shows under its own name too (panel.epochs is settings.epochs)
FIELDS = ("recipe_combo", "recipe_help", "recipe_note", "epochs", "batch_size", "lr", "split_label",
          "splits_button", "refit", "optimizer", "image_size", "dropout", "weight_decay", "patience", "seed",
          "mixed_precision", "defaults_button", "plan_box", "plan_label", "aug_box", "aug_mode", "aug_fields",
          "aug_flip", "device_combo", "test_label", "start_button", "stop_button", "resume_button")


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


class QtTrainingSettings(QWidget):
    summary_inputs_changed = Signal()  # what the model summary depends on changed (size, dropout)
    plan_inputs_changed = Signal()  # what Auto's plan depends on changed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # ---- recipe
        self.recipe_combo = QComboBox()
        for key, label in RECIPE_LABELS.items():
            self.recipe_combo.addItem(label, key)
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
        hyper_box = self._build_hyperparameters()

        # ---- what auto chose, and why (the same sentences the engine logs and stores)
        self.plan_box = QGroupBox("Auto settings for this project")
        self.plan_label = QLabel("Open a project to see what Auto will choose.")
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.plan_label.setStyleSheet("color: #333;")
        QVBoxLayout(self.plan_box).addWidget(self.plan_label)
        self._build_augmentation()

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
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch; the best model so far is kept")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the stopped run from its saved model")
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
        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(scroll, 1)
        ll.addLayout(buttons)
        self.setMinimumWidth(360)
        self.setMaximumWidth(460)

    def _build_hyperparameters(self) -> QGroupBox:
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
            w.valueChanged.connect(self.summary_inputs_changed)
        for w in (self.image_size, self.epochs, self.batch_size, self.lr):
            w.valueChanged.connect(self.plan_inputs_changed)
        self.refit.currentIndexChanged.connect(self.plan_inputs_changed)
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
        self.defaults_button.clicked.connect(lambda: self.apply_recipe_defaults(self.recipe()))
        form.addRow("", self.defaults_button)
        return hyper_box

    def _build_augmentation(self) -> None:
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
            (w.valueChanged if isinstance(w, QDoubleSpinBox) else w.toggled).connect(self.plan_inputs_changed)
        n = len(STRENGTHS)
        grid.addWidget(self.aug_flip, 1 + n // 2, (n % 2) * 2, 1, 2)
        self._on_aug_mode_changed()

    # ================================================================ reading
    def recipe(self) -> str:
        return self.recipe_combo.currentData()

    def set_recipe(self, recipe: str) -> None:
        index = self.recipe_combo.findData(recipe)
        if index >= 0 and index != self.recipe_combo.currentIndex():
            self.recipe_combo.setCurrentIndex(index)

    def set_recipe_note(self, text: str | None) -> None:
        self.recipe_note.setText(text or "")
        self.recipe_note.setVisible(bool(text))

    def image_size_for(self, facts: DataFacts, recipe: str | None = None) -> int:
        """The size a run trains at, by the engine's rule (core.engine.training_image_size)."""
        return training_image_size(recipe or self.recipe(), facts.source_side, self.image_size.value() or None)

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

    # ================================================================ changing
    def apply_recipe_defaults(self, recipe: str) -> None:
        for w in (self.epochs, self.batch_size, self.lr):
            w.setValue(w.minimum())  # Auto
        self.refit.setCurrentIndex(0)
        self.aug_mode.setCurrentIndex(0)
        self.weight_decay.setValue(1e-4)
        self.optimizer.setCurrentIndex(0)
        self.apply_recipe_fields(recipe)

    def apply_recipe_fields(self, recipe: str) -> None:
        """What belongs to the recipe itself: its image size, dropout and help."""
        self.image_size.setValue(RECIPE_DEFAULTS[recipe]["image_size"] or 0)
        self.dropout.setValue(DEFAULT_DROPOUT[recipe])
        self.recipe_help.setText(M.RECIPE_HELP[recipe])
        self.summary_inputs_changed.emit()
        self.plan_inputs_changed.emit()

    def set_augment_config(self, d: dict | None) -> None:
        """Show the augmentation strengths set in the Dataset place: ``AugmentConfig.to_dict()``
        (what the Dataset place's augmentation preview emits and the main window remembers).
        Missing or unreadable entries leave their box as it is; values beyond a box's range
        are clamped to it."""
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

    def _on_aug_mode_changed(self, *args) -> None:
        mode = self.aug_mode.currentData()
        for w in self.aug_fields.values():
            w.setEnabled(mode == "custom")
        self.aug_flip.setEnabled(mode != "off")  # Auto: whether flips are allowed at all
        self.plan_inputs_changed.emit()

    def show_split(self, split: ProjectSplit | None, project_open: bool) -> None:
        """The project's split and test folder as the project has them now."""
        s = split
        no_test = "None (optional: class folders from elsewhere, chosen in Splits…)" if project_open else ""
        if s is None or not s.images:
            self.split_label.setText("Auto: set aside when training starts" if project_open else "")
            self.test_label.setText((s.test_folder if s is not None else None) or no_test)
        else:
            share = f"{len(s.val):,} of {s.images:,} pictures ({s.share:.0%})"
            how = (f", {s.val_fraction:.0%} of each class, seed {s.seed}" if s.val_fraction is not None else "")
            left = f"; {len(s.left_out)} marked bad or duplicate are left out" if s.left_out else ""
            self.split_label.setText(share + how + left)
            self.test_label.setText(s.test_folder or no_test)

    def show_plan(self, project_open: bool, facts: DataFacts | None, split: ProjectSplit | None) -> None:
        """Show what Auto will choose for this project, with the reasons (the policy's own
        sentences, from a glance at the data; training decides again from the full scan)."""
        if not project_open:
            self.plan_label.setText("Open a project to see what Auto will choose.")
            return
        if facts is None:
            self.plan_label.setText("Looking at the pictures…")
            return
        if facts.classes < 2 or facts.images == 0:
            self.show_plan_needs_classes()
            return
        facts = replace(facts, image_size=self.image_size_for(facts))
        try:
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

    def show_plan_needs_classes(self) -> None:
        self.plan_label.setText("Auto chooses once the project has two or more classes with pictures.")

    def set_busy(self, busy: bool, can_start: bool, can_resume: bool) -> None:
        self.start_button.setEnabled(not busy and can_start)
        self.stop_button.setEnabled(busy)
        self.resume_button.setEnabled(can_resume)
        for w in (self.recipe_combo, self.epochs, self.batch_size, self.lr, self.splits_button, self.refit,
                  self.optimizer, self.image_size, self.dropout, self.weight_decay, self.patience, self.seed,
                  self.mixed_precision, self.aug_box, self.device_combo):
            w.setEnabled(not busy)
