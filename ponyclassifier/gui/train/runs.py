"""QtRuns: the project's experiment table, one row per training run from the store.

Columns as in the talks' experiment tables: run, recipe, epochs, validation accuracy and
F1, external test F1 and the difference (validation minus test: how much the validation
score flatters the model), seconds, device, model file. Selecting runs overlays their
curves; the table exports to CSV; a run can be deleted, and its model exported (our
model file, ONNX or TorchScript through :mod:`ponyclassifier.core.export`, off the GUI
thread).

The runs are the session's (:meth:`ProjectSession.runs`): the table follows
``session.runs_changed`` and the project opened; a deleted run is written through
``writer()`` (the Train place's own connection to the store) and announced with
``session.notify_runs_changed()``.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pyqtgraph as pg
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import export as X
from ...core.session import ProjectSession
from ...core.store import ProjectStore, Run, StoreError
from ..workers import run_job

__all__ = ["QtRuns", "COLUMNS"]

COLUMNS = ["Run", "Recipe", "Status", "Epochs", "Val accuracy", "Val F1", "Test F1", "Difference", "Seconds",
           "Device", "Model file"]
CURVES = {"val_accuracy": "validation accuracy", "val_loss": "validation loss", "train_accuracy": "training accuracy",
          "train_loss": "training loss"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _num(v: float | None, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def _used(run: Run, plan_name: str, setting: str) -> Any:
    """What a run really used: a halved batch, auto's choice (recorded with the run), else the setting."""
    metrics = run.metrics or {}
    value = metrics.get("batch_size_used") if setting == "batch_size" else None
    if value is None:
        value = ((metrics.get("plan") or {}).get(plan_name) or {}).get("value")
    if value is None:
        value = run.settings.get(setting)
    return "" if value is None else value


def run_row(run: Run) -> list[str]:
    m = run.metrics or {}
    epochs = m.get("epochs_run")
    first = m.get("first_epoch") or run.settings.get("first_epoch") or 1
    if epochs is not None and first > 1:
        epochs_text = f"{first}–{first + epochs - 1}"
    else:
        epochs_text = "" if epochs is None else str(epochs)
    gap = run.f1_gap
    return [str(run.id), run.recipe, run.status, epochs_text, _num(run.val_accuracy, ".1%"),
            _num(run.val_f1, ".3f"), _num(run.test_f1, ".3f"), "" if gap is None else f"{gap:+.3f}",
            _num(run.seconds, ".1f"), run.device or "", os.path.basename(run.model_path or "")]


class _Item(QTableWidgetItem):
    """Sorts numbers as numbers."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        return super().__lt__(other)


class QtRuns(QWidget):
    run_activated = Signal(int)  # double-click or "Show evaluation": show this run's evaluation
    run_deleted = Signal(int)
    model_exported = Signal(str)  # path written
    export_failed = Signal(str)
    open_model_requested = Signal(str, str)  # model file, place ("Explain" or "Predict")

    def __init__(self, session: ProjectSession | None = None,
                 writer: Callable[[], ProjectStore | None] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession()
        self.writer = writer or (lambda: self.session.store)
        self.runs: list[Run] = []
        self._jobs: list[Any] = []

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.table.cellDoubleClicked.connect(self._on_table_double_clicked)

        self.curve_choice = QComboBox()
        for key, label in CURVES.items():
            self.curve_choice.addItem(label, key)
        self.curve_choice.currentIndexChanged.connect(self._update_overlay)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "validation accuracy")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # never "accuracy (x0.001)"
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self._overlay: dict[int, pg.PlotDataItem] = {}
        self._curves: dict[int, list[dict[str, Any]]] = {}  # run id -> store.run_curves, until refresh

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.session.notify_runs_changed())
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.delete_button = QPushButton("Delete run…")
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.export_button = QToolButton()
        self.export_button.setText("Export model")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for label, fmt in (("Model file (.pony, safetensors)…", "pony"), ("ONNX (.onnx)…", "onnx"),
                           ("TorchScript (.pt)…", "torchscript")):
            menu.addAction(label, lambda f=fmt: self._on_export_chosen(f))
        self.export_button.setMenu(menu)
        self.evaluate_button = QPushButton("Show evaluation")
        self.evaluate_button.setToolTip("See this run's confusion matrix, scores per class and its most confident "
                                        "mistakes (double-clicking a run does the same)")
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        self.explain_button = QPushButton("Open in Explain")
        self.explain_button.setToolTip("See what this run's model learned: filters, response maps, saliency")
        self.explain_button.clicked.connect(lambda: self._open_selected("Explain"))
        self.predict_button = QPushButton("Open in Predict")
        self.predict_button.setToolTip("Try this run's model on your own pictures or a camera")
        self.predict_button.clicked.connect(lambda: self._open_selected("Predict"))
        self.status = QLabel("")
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        for w in (self.refresh_button, self.csv_button, self.evaluate_button, self.explain_button,
                  self.predict_button, self.delete_button, self.export_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(buttons)
        tl.addWidget(self.table)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Overlay the selected runs:"))
        row.addWidget(self.curve_choice)
        row.addStretch(1)
        bl.addLayout(row)
        bl.addWidget(self.plot)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        self._update_buttons()
        self.session.opened.connect(self._on_session_opened)
        self.session.runs_changed.connect(self.refresh)
        if self.session.project is not None:  # joined a session whose project is open
            self.refresh()

    # ------------------------------------------------------------------ public
    @property
    def store(self) -> ProjectStore | None:
        """The project's store, read from (the session's own reading connection)."""
        return self.session.reader

    def detach(self) -> None:
        """Stop following the session (the view is going away)."""
        self.session.opened.disconnect(self._on_session_opened)
        self.session.runs_changed.disconnect(self.refresh)

    def _on_session_opened(self, root) -> None:
        self.refresh()  # no project's runs until its store is attached

    def refresh(self) -> None:
        selected = set(self.selected_run_ids())
        try:
            self.runs = self.session.runs() if self.store is not None and self.store.conn is not None else []
        except (StoreError, sqlite3.Error) as e:
            self.runs = []
            self._error(f"Cannot read the project's runs: {e}")
        self._curves.clear()
        # rebuilt and re-selected quietly: the overlay and buttons are updated once, below
        blocked = self.table.blockSignals(True)
        try:
            self._fill_table(selected)
        finally:
            self.table.blockSignals(blocked)
        self._update_overlay()
        self._update_buttons()

    def _fill_table(self, selected: set[int]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.runs))
        for r, run in enumerate(reversed(self.runs)):  # newest first
            values = run_row(run)
            sort_keys = [run.id, None, None, (run.metrics or {}).get("epochs_run"), run.val_accuracy, run.val_f1,
                         run.test_f1, run.f1_gap, run.seconds, None, None]
            for c, text in enumerate(values):
                it = _Item(text)
                it.setData(Qt.ItemDataRole.UserRole, sort_keys[c] if sort_keys[c] is not None else text)
                if c == 0:
                    it.setData(Qt.ItemDataRole.UserRole + 1, run.id)
                if c in (0, 3, 4, 5, 6, 7, 8):
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 10 and run.model_path:
                    it.setToolTip(run.model_path)
                if c == 7 and run.f1_gap is not None and run.f1_gap > 0.05:
                    it.setToolTip("The model does clearly worse on the external test set than on validation.")
                self.table.setItem(r, c, it)
        self.table.setSortingEnabled(True)
        if selected:
            self.select_runs(selected)

    def selected_run_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) for r in rows if self.table.item(r, 0)]

    def select_runs(self, ids) -> None:
        """Select exactly these runs, in one selection change."""
        ids = set(ids)
        model = self.table.model()
        last = model.columnCount() - 1
        selection = QItemSelection()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) in ids:
                selection.select(model.index(r, 0), model.index(r, last))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(selection, flags)

    def run(self, run_id: int) -> Run | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def export_csv(self, path: str | os.PathLike | None = None) -> str | None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export runs as CSV", "runs.csv", "CSV (*.csv)")
            if not path:
                return None
        try:
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(COLUMNS[:-1] + ["Model path", "Created", "Learning rate", "Batch size"])
                for run in self.runs:
                    row = run_row(run)[:-1]
                    w.writerow(row + [run.model_path or "", run.created, _used(run, "learning rate", "lr"),
                                      _used(run, "batch size", "batch_size")])
        except OSError as e:
            self._error(f"{path}: cannot write ({e.strerror or e})")
            return None
        self.status.setText(f"Runs written to {path}")
        return os.fspath(path)

    def delete_run(self, run_id: int, *, confirm: bool = True) -> bool:
        run = self.run(run_id)
        store = self.writer()
        if run is None or store is None:
            return False
        if confirm:
            answer = QMessageBox.question(
                self, "Delete run", f"Delete run {run_id} and its curves from the project?"
                + (f"\nIts model file {os.path.basename(run.model_path)} is deleted too." if run.model_path else ""))
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            store.delete_run(run_id)
        except (StoreError, sqlite3.Error) as e:
            self._error(str(e))
            return False
        if run.model_path and Path(run.model_path).parent.name == "models":
            try:
                os.unlink(run.model_path)
            except OSError:
                pass
        self.session.notify_runs_changed()  # the table (and every other view of the runs) follows
        self.run_deleted.emit(run_id)
        return True

    def export_run_model(self, run_id: int, fmt: str, path: str | os.PathLike | None = None):
        """Export off the GUI thread; ``model_exported(path)`` or ``export_failed(message)`` follows."""
        run = self.run(run_id)
        if run is None or not run.model_path or not os.path.exists(run.model_path):
            self._error(f"run {run_id} has no model file to export")
            return None
        if path is None:
            suffix = X.FORMATS[fmt]
            path, _ = QFileDialog.getSaveFileName(self, "Export model", f"run-{run_id}{suffix}",
                                                  f"{fmt} (*{suffix})")
            if not path:
                return None
        src, dst = run.model_path, os.fspath(path)

        def work(state):
            if fmt == "pony":
                return os.fspath(X.copy_model_file(src, dst))
            from ...core.trained import TrainedModel

            return os.fspath(X.export_model(TrainedModel.load(src), dst, fmt))

        self.status.setText(f"Exporting run {run_id} to {dst}…")
        job = run_job(work, on_finished=self._on_export_finished, on_failed=self._on_export_failed)
        self._jobs = [j for j in self._jobs if not j.cancelled] + [job]
        return job

    def open_run_model(self, run_id: int, place: str) -> bool:
        """Ask the window to open this run's model in ``place`` ("Explain" or "Predict")."""
        run = self.run(run_id)
        if run is None or not run.model_path or not os.path.exists(run.model_path):
            self._error(f"run {run_id} has no model file (it was not saved, or was deleted)")
            return False
        self.open_model_requested.emit(run.model_path, place)
        return True

    def _open_selected(self, place: str) -> None:
        rid = self._single_selected()
        if rid is not None:
            self.open_run_model(rid, place)

    # ---------------------------------------------------------------- private
    def _error(self, text: str) -> None:
        self.status.setText(f"<span style='color:#b00020'>{text}</span>")

    def _single_selected(self) -> int | None:
        """The selected run's id when exactly one run is selected."""
        ids = self.selected_run_ids()
        return ids[0] if len(ids) == 1 else None

    def _run_curves(self, run_id: int) -> list[dict[str, Any]]:
        if run_id not in self._curves:
            self._curves[run_id] = self.store.run_curves(run_id)
        return self._curves[run_id]

    def _update_buttons(self) -> None:
        rid = self._single_selected()
        one = rid is not None
        writer = self.writer()
        self.delete_button.setEnabled(one and writer is not None and not writer.read_only)
        run = self.run(rid) if one else None
        has_model = bool(run and run.model_path and os.path.exists(run.model_path))
        self.export_button.setEnabled(has_model)
        self.evaluate_button.setEnabled(bool(run and (has_model or (run.metrics or {}).get("validation"))))
        self.explain_button.setEnabled(has_model)
        self.predict_button.setEnabled(has_model)
        self.csv_button.setEnabled(bool(self.runs))

    @Slot()
    def _on_table_selection_changed(self) -> None:
        self._update_buttons()
        self._update_overlay()

    @Slot(int, int)
    def _on_table_double_clicked(self, row: int, column: int) -> None:
        it = self.table.item(row, 0)
        if it is not None:
            self.run_activated.emit(it.data(Qt.ItemDataRole.UserRole + 1))

    def _update_overlay(self) -> None:
        key = self.curve_choice.currentData()
        self.plot.setLabel("left", CURVES[key])
        ids = self.selected_run_ids() or [r.id for r in self.runs[-3:]]
        for rid in list(self._overlay):
            if rid not in ids:
                item = self._overlay.pop(rid)
                self.plot.removeItem(item)
                self.legend.removeItem(item)
        if self.store is None:
            return
        for i, rid in enumerate(ids):
            curves = self._run_curves(rid)
            xs = [c.get("epoch") for c in curves if c.get(key) is not None]
            ys = [c.get(key) for c in curves if c.get(key) is not None]
            if rid not in self._overlay:
                run = self.run(rid)
                name = f"run {rid} ({run.recipe})" if run else f"run {rid}"
                pen = pg.mkPen(PALETTE[rid % len(PALETTE)], width=2)
                self._overlay[rid] = self.plot.plot([], [], pen=pen, symbol="o", symbolSize=5,
                                                    symbolBrush=PALETTE[rid % len(PALETTE)], name=name)
            self._overlay[rid].setData(xs, ys)

    def _on_evaluate_clicked(self) -> None:
        rid = self._single_selected()
        if rid is not None:
            self.run_activated.emit(rid)

    def _on_delete_clicked(self) -> None:
        rid = self._single_selected()
        if rid is not None:
            self.delete_run(rid)

    def _on_export_chosen(self, fmt: str) -> None:
        rid = self._single_selected()
        if rid is not None:
            self.export_run_model(rid, fmt)

    def _on_export_finished(self, path: str) -> None:
        self.status.setText(f"Model exported to {path}")
        self.model_exported.emit(path)

    def _on_export_failed(self, message: str, details: str) -> None:
        self._error(f"Export failed: {message}")
        self.export_failed.emit(message)
