"""QtEvaluation: how good a trained model is, and on which images it goes wrong.

Shows a run's validation (and external test) scores side by side, the confusion matrix
as coloured cells (rows: true class, columns: predicted; clicking a cell shows those
images), per-class precision/recall/F1, and a gallery of the most confidently wrong
images, each with a button that asks for the image to be relabelled to what the model
said (``relabel_requested(path, new_class)``; the main window does the move).

Thumbnails come from :class:`~ponyclassifier.gui.workers.ThumbnailLoader` (decoded on
the pool, turned into pixmaps here).
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..workers import ThumbnailLoader

__all__ = ["QtEvaluation"]

THUMB = 96


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


class QtEvaluation(QWidget):
    relabel_requested = Signal(str, str)  # image path, the class to move it to
    cell_selected = Signal(str, str, int)  # true class, predicted class, number of images

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.classes: list[str] = []
        self.validation: dict[str, Any] | None = None
        self.test: dict[str, Any] | None = None
        self.predictions: list[dict[str, Any]] = []
        self.heading: str | None = None
        self._thumb_targets: dict[str, list[Any]] = {}
        self._pixmaps: dict[str, QPixmap] = {}
        self.loader = ThumbnailLoader(size=THUMB, parent=self)
        self.loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)

        self.scores = QLabel("Train a model to see how well it does on images it has not trained on.")
        self.scores.setWordWrap(True)
        self.scores.setTextFormat(Qt.TextFormat.RichText)
        self.scores.setObjectName("evaluationScores")

        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.matrix.cellClicked.connect(self._on_matrix_cell_clicked)
        self.matrix.setToolTip("Rows: the true class. Columns: what the model said. Click a cell to see its images.")
        self.matrix.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.verticalHeader().setMinimumSectionSize(24)
        matrix_box = QGroupBox("Confusion matrix (rows: true class · columns: predicted)")
        QVBoxLayout(matrix_box).addWidget(self.matrix)

        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Images"])
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        per_class_box = QGroupBox("Per class (validation)")
        QVBoxLayout(per_class_box).addWidget(self.per_class)

        self.cell_title = QLabel("Click a cell of the confusion matrix to see its images.")
        self.cell_title.setWordWrap(True)
        self.cell_images = QListWidget()
        self.cell_images.setViewMode(QListWidget.ViewMode.IconMode)
        self.cell_images.setIconSize(QSize(THUMB, THUMB))
        self.cell_images.setGridSize(QSize(THUMB + 24, THUMB + 34))
        self.cell_images.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.cell_images.setMovement(QListWidget.Movement.Static)
        self.cell_images.setUniformItemSizes(True)
        cell_box = QGroupBox("Images in the selected cell")
        cell_layout = QVBoxLayout(cell_box)
        cell_layout.addWidget(self.cell_title)
        cell_layout.addWidget(self.cell_images)

        self.wrong_inner = QWidget()
        self.wrong_grid = QGridLayout(self.wrong_inner)
        self.wrong_grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.wrong_area = QScrollArea()
        self.wrong_area.setWidgetResizable(True)
        self.wrong_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.wrong_area.setMinimumWidth(2 * (THUMB + 80) + 40)
        self.wrong_area.setWidget(self.wrong_inner)
        self.wrong_note = QLabel("The validation images the model got wrong with the most confidence. Often the "
                                 "label is the mistake, not the model.")
        self.wrong_note.setWordWrap(True)
        wrong_box = QGroupBox("Most confidently wrong")
        wrong_layout = QVBoxLayout(wrong_box)
        wrong_layout.addWidget(self.wrong_note)
        wrong_layout.addWidget(self.wrong_area)
        self.relabel_buttons: list[QPushButton] = []

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(matrix_box)
        left.addWidget(per_class_box)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(cell_box)
        right.addWidget(wrong_box)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scores)
        layout.addWidget(body, 1)

    # ------------------------------------------------------------------ public
    def clear(self) -> None:
        self.set_results([], None, None, [])
        self.scores.setText("Train a model to see how well it does on images it has not trained on.")

    def set_results(self, classes: list[str], validation: dict[str, Any] | None, test: dict[str, Any] | None,
                    predictions: list[dict[str, Any]] | None = None, heading: str | None = None) -> None:
        """Reports as ``metrics.Report.to_dict()`` (or the compact form the store keeps);
        ``predictions``: one dict per validation image (path, true, predicted, confidence);
        without them the matrix cannot show its images. ``heading`` names what is shown
        (e.g. "Run 3 (scratch)")."""
        self.classes = list(classes or (validation or {}).get("classes", []))
        self.validation, self.test = validation, test
        self.predictions = list(predictions or [])
        self.heading = heading
        self.loader.cancel_pending()
        self._thumb_targets.clear()
        self._show_scores()
        self._fill_matrix()
        self._fill_per_class()
        self._fill_wrong()
        self.cell_images.clear()
        self.cell_title.setText("Click a cell of the confusion matrix to see its images."
                                if self.predictions else "The images behind each cell are not known for this run.")

    def set_cell_note(self, text: str) -> None:
        """Say why the matrix cannot show its images yet (e.g. while they are worked out)."""
        self.cell_images.clear()
        self.cell_title.setText(text)

    def images_for(self, true: str, predicted: str) -> list[dict[str, Any]]:
        return [p for p in self.predictions if p["true"] == true and p["predicted"] == predicted]

    def show_cell(self, row: int, column: int) -> None:
        if not (0 <= row < len(self.classes) and 0 <= column < len(self.classes)):
            return
        true, pred = self.classes[row], self.classes[column]
        items = sorted(self.images_for(true, pred), key=lambda p: -p["confidence"])
        self.cell_images.clear()
        verdict = "correct" if row == column else "wrong"
        self.cell_title.setText(f"<b>True: {true} · predicted: {pred}</b> — {len(items)} image"
                                f"{'' if len(items) == 1 else 's'} ({verdict})")
        for p in items:
            it = QListWidgetItem(f"{100 * p['confidence']:.0f}%")
            it.setToolTip(f"{p['path']}\ntrue: {p['true']}\npredicted: {p['predicted']} "
                          f"({100 * p['confidence']:.1f}%)")
            it.setData(Qt.ItemDataRole.UserRole, p["path"])
            it.setSizeHint(QSize(THUMB + 20, THUMB + 30))
            self.cell_images.addItem(it)
            self._want_thumbnail(p["path"], it)
        self.cell_selected.emit(true, pred, len(items))

    def shown_paths(self) -> list[str]:
        return [self.cell_images.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.cell_images.count())]

    # ---------------------------------------------------------------- filling
    def _show_scores(self) -> None:
        v, t = self.validation, self.test
        if not v:
            self.scores.setText("No validation images: nothing to score.")
            return
        parts = [f"<b>Validation</b>: accuracy {_pct(v.get('accuracy'))}, macro F1 {_f(v.get('macro_f1'))} "
                 f"({v.get('count', 0)} images)"]
        if t:
            gap = (v.get("macro_f1") or 0) - (t.get("macro_f1") or 0)
            parts.append(f"<b>External test</b>: accuracy {_pct(t.get('accuracy'))}, macro F1 "
                         f"{_f(t.get('macro_f1'))} ({t.get('count', 0)} images)")
            colour = "#b00020" if gap > 0.05 else "#2e7d32"
            parts.append(f"<span style='color:{colour}'>difference (val − test F1): {gap:+.3f}</span>")
        else:
            parts.append("<i>no external test set (choose a test folder to see how the model does on photos "
                         "from elsewhere)</i>")
        if self.heading:
            parts.insert(0, f"<b>{self.heading}</b>")
        self.scores.setText(" &nbsp;·&nbsp; ".join(parts))

    def _fill_matrix(self) -> None:
        cm = (self.validation or {}).get("confusion_matrix") or []
        n = len(self.classes) if cm else 0
        self.matrix.clear()
        self.matrix.setRowCount(n)
        self.matrix.setColumnCount(n)
        # two-line column headers ("Rainbow\nDash") so names fit narrow columns; full name in the tooltip
        for c, name in enumerate(self.classes[:n]):
            head = QTableWidgetItem(name.replace(" ", "\n", 1))
            head.setToolTip(f"predicted {name}")
            self.matrix.setHorizontalHeaderItem(c, head)
        self.matrix.setVerticalHeaderLabels(self.classes[:n])
        for r in range(n):
            row_total = max(1, sum(cm[r]))
            for c in range(n):
                count = int(cm[r][c])
                frac = count / row_total
                it = QTableWidgetItem(str(count))
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                # green for right answers, red for confusions; stronger with the row's share
                base = (46, 125, 50) if r == c else (198, 40, 40)
                alpha = int(25 + 200 * frac) if count else 0
                it.setBackground(QBrush(QColor(*base, alpha)))
                if frac > 0.55:
                    it.setForeground(QBrush(QColor("white")))
                it.setToolTip(f"true {self.classes[r]}, predicted {self.classes[c]}: {count} "
                              f"({100 * frac:.0f}% of {self.classes[r]})")
                self.matrix.setItem(r, c, it)

    def _fill_per_class(self) -> None:
        per = (self.validation or {}).get("per_class") or {}
        self.per_class.setRowCount(len(per))
        for i, (name, m) in enumerate(per.items()):
            vals = [name, _f(m.get("precision")), _f(m.get("recall")), _f(m.get("f1")), str(m.get("support", ""))]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if j:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(i, j, it)

    def _fill_wrong(self) -> None:
        while self.wrong_grid.count():
            w = self.wrong_grid.takeAt(0).widget()
            if w is not None:
                w.hide()  # at once: deleteLater leaves it painted over the new cards until the loop runs
                w.deleteLater()
        self.relabel_buttons = []
        losses = (self.validation or {}).get("top_losses") or []
        if not losses:
            empty = QLabel("No wrong answers to show." if self.validation else "")
            self.wrong_grid.addWidget(empty, 0, 0)
            return
        cols = 2
        for i, item in enumerate(losses):
            card = QFrame()
            card.setFrameShape(QFrame.Shape.StyledPanel)
            v = QVBoxLayout(card)
            v.setContentsMargins(4, 4, 4, 4)
            thumb = QLabel()
            thumb.setFixedSize(THUMB, THUMB)
            thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
            thumb.setToolTip(item["path"])
            text = QLabel(f"<b>{os.path.basename(item['path'])}</b><br>labelled <b>{item['true']}</b><br>"
                          f"model: {item['predicted']} ({100 * item['confidence']:.0f}%)")
            text.setTextFormat(Qt.TextFormat.RichText)
            text.setWordWrap(True)
            button = QPushButton(f"Relabel to {item['predicted']}")
            button.setToolTip(f"Move {item['path']} to the class {item['predicted']}")
            button.clicked.connect(lambda _=False, p=item["path"], c=item["predicted"], b=button:
                                   self._on_relabel_clicked(p, c, b))
            self.relabel_buttons.append(button)
            v.addWidget(thumb, 0, Qt.AlignmentFlag.AlignHCenter)
            v.addWidget(text)
            v.addWidget(button)
            card.setFixedWidth(THUMB + 80)
            self.wrong_grid.addWidget(card, i // cols, i % cols)
            self._want_thumbnail(item["path"], thumb)

    # ----------------------------------------------------------------- slots
    def _on_relabel_clicked(self, path: str, cls: str, button: QPushButton) -> None:
        button.setEnabled(False)
        button.setText(f"Asked: move to {cls}")
        self.relabel_requested.emit(path, cls)

    @Slot(int, int)
    def _on_matrix_cell_clicked(self, row: int, column: int) -> None:
        self.show_cell(row, column)

    def _want_thumbnail(self, path: str, target) -> None:
        if path in self._pixmaps:
            self._apply(target, self._pixmaps[path])
            return
        self._thumb_targets.setdefault(path, []).append(target)
        self.loader.request_thumbnail(path)

    @Slot(str, QImage)
    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        pix = QPixmap.fromImage(image)
        if len(self._pixmaps) > 2000:
            self._pixmaps.clear()
        self._pixmaps[path] = pix
        for target in self._thumb_targets.pop(path, []):
            try:
                self._apply(target, pix)
            except RuntimeError:  # the item or label went away meanwhile
                pass

    @staticmethod
    def _apply(target, pix: QPixmap) -> None:
        if isinstance(target, QListWidgetItem):
            target.setIcon(QIcon(pix))
        else:
            target.setPixmap(pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))

    def close_loader(self) -> None:
        self.loader.close()
