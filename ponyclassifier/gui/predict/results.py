"""The Predict place's results: one :class:`PredictionResult` per picture of a request, and
the table model that lists them all (sortable; what the CSV export writes).

"Not sure" and the top guesses shown follow the page's threshold and k (the table asks the
page), so moving the slider only re-labels; nothing is computed again.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QImage

from ...core.images import BACKGROUND
from ...core.predict import Prediction
from ..widgets.format import percent_1dp

COLUMNS = ("File", "Label", "Confidence", "Not sure", "Top guesses", "Problem")
CSV_COLUMNS = COLUMNS  # the CSV has the table's columns, with the full path and a 0-1 confidence
RED, AMBER = "#b02a2a", "#a0662a"


def qimage_to_pil(image: QImage) -> Image.Image:
    """A QImage (any format, alpha included) as an RGB PIL image; transparency is flattened onto
    the decoder's background, as for files."""
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = img.width(), img.height()
    rgba = Image.frombuffer("RGBA", (w, h), bytes(img.constBits()), "raw", "RGBA", img.bytesPerLine(), 1)
    background = Image.new("RGBA", (w, h), (*BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


@dataclass(eq=False)
class PredictionResult:
    """One picture's result as the page shows it. ``unsure`` is not stored: it depends on
    the threshold slider (:meth:`PredictPage.is_unsure`)."""

    index: int  # position in the request
    source: str  # the file's path, or "pasted image"
    prediction: Prediction  # top holds up to MAX_TOP_K classes
    picture: QImage | None = None  # the card's picture (<= PICTURE_SIDE), when decoded
    pasted: Image.Image | None = field(default=None, repr=False)  # the picture itself when it has no file
    cam: QImage | None = None  # the Grad-CAM overlay, computed once
    input: Any = field(default=None, repr=False)  # the model's input (uint8 tensor) from the one decode

    @property
    def name(self) -> str:
        return self.source if self.pasted is not None else os.path.basename(self.source) or self.source

    @property
    def error(self) -> str | None:
        return self.prediction.error

    @property
    def label(self) -> str | None:
        return self.prediction.label

    @property
    def confidence(self) -> float:
        return self.prediction.confidence

    @property
    def top(self) -> list[tuple[str, float]]:
        return self.prediction.top


class ResultsTableModel(QAbstractTableModel):
    """Every result of the request; "Not sure" and "Top guesses" follow the page's threshold
    and k (``page.is_unsure(result)``, ``page.top_k``). The user role holds the raw value each
    column sorts by."""

    def __init__(self, page):
        super().__init__(page)
        self._page = page
        self.rows: list[PredictionResult] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {2: "How sure the model is of its best guess",
                    3: "“yes” when the best guess is less sure than the threshold slider",
                    4: "The model's best guesses with their probabilities"}.get(section)
        return None

    def cell(self, r: PredictionResult, col: int) -> str:
        """The text shown in a cell (also what the CSV writes, except file and confidence)."""
        page = self._page
        if col == 0:
            return r.name
        if r.error is not None:
            return {1: "", 2: "", 3: "", 4: "", 5: r.error}[col]
        if col == 1:
            return r.label or ""
        if col == 2:
            return percent_1dp(r.confidence)
        if col == 3:
            return "yes" if page.is_unsure(r) else "no"
        if col == 4:
            return "; ".join(f"{c} {percent_1dp(p)}" for c, p in r.top[: page.top_k])
        return ""

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(r, col)
        if role == Qt.ItemDataRole.UserRole:  # sort key
            if col == 0:
                return r.name.lower()
            if col == 2:
                return -1.0 if r.error else float(r.confidence)
            if col == 3:
                return -1 if r.error else int(self._page.is_unsure(r))
            return self.cell(r, col).lower()
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return r.source
            if col in (4, 5):
                return self.cell(r, col) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.error is not None and col == 5:
                return QColor(RED)
            if r.error is None and col == 3 and self._page.is_unsure(r):
                return QColor(AMBER)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def append(self, results: list[PredictionResult]) -> None:
        if not results:
            return
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n + len(results) - 1)
        self.rows += results
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

    def relabel(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 3), self.index(len(self.rows) - 1, 4))


def csv_bytes(model: ResultsTableModel, rows: list[PredictionResult]) -> bytes:
    """The CSV of ``rows`` (in that order): the table's cells, with the full path and a 0-1
    confidence; UTF-8 with a BOM, so spreadsheets read accented names."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        cells = [model.cell(r, c) for c in range(len(COLUMNS))]
        cells[0] = r.source
        if r.error is None:
            cells[2] = f"{r.confidence:.6f}"
        w.writerow(cells)
    return buf.getvalue().encode("utf-8-sig")
