"""The Model tab: the network a recipe will train, layer by layer, before any training.

:func:`work_out_summary` is the worker body (Qt-free): a glance at the project's data
(cached by the caller) and the recipe's summary at the size the engine will train at
(:func:`ponyclassifier.core.engine.training_image_size`, the one rule).
:class:`QtModelSummary` shows it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.engine import glance_dataset, training_image_size
from ...core.policy import DataFacts
from ...core.summary import ModelSummary, format_count, recipe_summary
from ..widgets.format import RECIPE_LABELS

__all__ = ["QtModelSummary", "work_out_summary"]

NOTES = {"transfer": " The pretrained base is frozen: only the new head learns.",
         "finetune": " First the head learns with the base frozen; then the top blocks (shown trainable) "
                     "are retrained with a lower learning rate."}


def work_out_summary(state: Any, root: str, facts: DataFacts | None, recipe: str, classes: int, size: int | None,
                     dropout: float) -> tuple[DataFacts, ModelSummary]:
    """(facts, summary): ``facts`` is a glance at ``root`` unless given (worker thread)."""
    facts = facts or glance_dataset(root, "scratch")
    state.check()
    side = training_image_size(recipe, facts.source_side, size)
    channels = facts.channels if recipe == "scratch" else 3  # the pretrained stem takes colour
    return facts, recipe_summary(recipe, classes, side, channels, dropout)


class QtModelSummary(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        v = QVBoxLayout(self)
        v.addWidget(self.summary_title)
        v.addWidget(self.summary_table, 1)
        v.addWidget(self.summary_totals)

    def show_nothing(self) -> None:
        self.summary_title.setText("Open a project with class folders to see the network this recipe will train.")
        self.summary_table.setRowCount(0)
        self.summary_totals.setText("")

    def show_working(self) -> None:
        self.summary_title.setText("Working out the network…")

    def show_failed(self, message: str) -> None:
        self.summary_title.setText(f"No summary: {message}")

    def show_summary(self, summary: ModelSummary, recipe: str, classes: int, size: int) -> None:
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
        self.summary_title.setText(f"<b>{RECIPE_LABELS[recipe]}</b> for {classes} classes at "
                                   f"{size} × {size} px ({len(summary.rows)} layers).{NOTES.get(recipe, '')}")
        self.summary_totals.setText(
            f"<b>Total parameters:</b> {summary.total_params:,} ({format_count(summary.total_params)}) &nbsp; "
            f"<b>Trainable:</b> {summary.trainable_params:,} &nbsp; <b>Frozen:</b> {summary.frozen_params:,}")
