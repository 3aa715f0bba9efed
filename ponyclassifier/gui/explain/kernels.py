"""The kernels playground: what one hand-made convolution filter does to a picture.

Shows the core's kernel table (:data:`ponyclassifier.core.kernels.KERNELS`): pick a named
kernel, see its numbers in an editable 3×3 or 5×5 grid with a scale factor (``1/9 ×`` the
ones of a box blur, as in the talks' table), and the picture before and after
:func:`~ponyclassifier.core.kernels.apply_kernel`, side by side at the same size. Editing a
number applies at once and turns the kernel into "your own" (unless the numbers happen to
be a named kernel again). A cell that is not a number turns red with a tooltip, and the
result keeps showing the last good kernel.

Small pictures are filtered inline (a few milliseconds); larger ones on a worker
(a :class:`~ponyclassifier.gui.workers.Lane`), one job at a time: a kernel typed while one
runs waits, and only the newest waiting kernel is applied next, so typing in the grid
never stalls the GUI.
"""

from __future__ import annotations

import html
import os
from fractions import Fraction

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QSizePolicy,
    QSplitter,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.kernels import KERNEL_HELP, KERNELS, apply_kernel, parse_kernel
from .. import workers
from ..widgets.image_view import ImageView
from ..workers import array_to_qimage, qimage_to_array

__all__ = ["KernelPlayground", "KERNEL_NOTES", "BORDER_MODES", "display_form", "to_grayscale",
           "array_to_qimage", "qimage_to_array"]

# Pictures up to this many pixels are filtered on the GUI thread (a 5×5 kernel on a
# 390×390 colour picture takes a few tens of milliseconds here); larger ones on a worker.
INLINE_MAX_PIXELS = 150_000
# A picture opened from a file is shown at most this many pixels wide or high: kernels act
# on single pixels, so their effect is invisible on a 12-megapixel photo shrunk to fit.
MAX_SIDE_FROM_FILE = 1024
MAX_ABS_VALUE = 1e6
CUSTOM = "custom"

# One plain-language sentence per named kernel (the core's KERNEL_HELP is the technical
# version and the fallback for kernels added later).
KERNEL_NOTES: dict[str, str] = {
    "identity": "Keeps every pixel exactly as it is, because only the centre pixel counts: "
                "a good starting point for making your own kernel.",
    "edge detection 1": "Subtracts diagonal neighbours from each other, so slanted edges light up "
                        "and flat areas turn black.",
    "edge detection 2": "Compares each pixel with the four pixels next to it: outlines light up where the "
                        "brightness suddenly changes, and flat areas turn black.",
    "edge detection 3": "Compares each pixel with all eight pixels around it: every edge and fine texture "
                        "lights up, whatever its direction, and flat areas turn black.",
    "sobel x": "Lights up where the picture gets brighter from left to right, so upright edges show "
               "(edges going the other way would be negative and stay black).",
    "sobel y": "Lights up where the picture gets brighter from top to bottom, so lying edges show "
               "(edges going the other way would be negative and stay black).",
    "sharpen": "Adds the difference between a pixel and its four neighbours back onto it, so edges look "
               "crisper (and noise gets stronger too).",
    "box blur": "Replaces each pixel by the plain average of the 3×3 square around it: a simple blur.",
    "gaussian blur 3x3": "A weighted average where the centre counts most and the corners least: "
                         "a soft, natural-looking blur.",
    "gaussian blur 5x5": "The same weighted average over a 5×5 square: a stronger, smoother blur.",
    "unsharp masking 5x5": "The photographer's sharpening: the picture plus the difference between it and "
                           "a blurred copy, so details stand out without harsh outlines.",
}

# The scale shown in front of the grid for kernels that are written as "fraction × whole
# numbers" in the classic table; the grid then holds kernel / scale.
_SCALES: dict[str, Fraction] = {"box blur": Fraction(1, 9), "gaussian blur 3x3": Fraction(1, 16),
                                "gaussian blur 5x5": Fraction(1, 256), "unsharp masking 5x5": Fraction(-1, 256)}

# scipy.ndimage mode name -> what the user reads.
BORDER_MODES: dict[str, str] = {
    "reflect": "Mirror the picture at its edge",
    "nearest": "Repeat the edge pixels",
    "wrap": "Wrap around to the other side",
    "constant": "Black outside the picture",
}

_POSITIVE = QColor("#1e88e5")
_NEGATIVE = QColor("#fb8c00")
_INVALID_BG = QColor("#e53935")


def _pretty(name: str) -> str:
    return (name[:1].upper() + name[1:]).replace("3x3", "3×3").replace("5x5", "5×5")


def _format_number(v: float) -> str:
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.6g}"


def _format_scale(s: Fraction) -> str:
    return str(s.numerator) if s.denominator == 1 else f"{s.numerator}/{s.denominator}"


def display_form(name: str) -> tuple[np.ndarray, Fraction]:
    """A named kernel as (grid of numbers, scale) with grid × scale == the kernel."""
    k = np.asarray(KERNELS[name], dtype=np.float64)
    scale = _SCALES.get(name)
    if scale is None:
        scale = Fraction(1)
        for d in (1, 2, 4, 8, 9, 16, 256):  # a kernel added later: find a whole-number form
            if np.allclose(k * d, np.rint(k * d), atol=1e-9):
                scale = Fraction(1, d)
                break
    return k / float(scale), scale


def _parse_number(text: str) -> float:
    """One grid cell or the scale: a number or a fraction ("-1/9"). Raises ValueError."""
    t = text.strip()
    if not t:
        raise ValueError("the cell is empty: type a number such as 0")
    if any(ch.isspace() for ch in t) or "," in t or ";" in t:
        raise ValueError(f"{t!r} is more than one number: type one number per cell")
    try:
        v = float(parse_kernel(t)[0, 0])
    except ValueError as e:
        msg = str(e)
        if "finite" in msg:
            msg = f"{t!r} is not a finite number"
        raise ValueError(msg) from None
    if abs(v) > MAX_ABS_VALUE:
        raise ValueError(f"{t!r} is too large (at most {MAX_ABS_VALUE:,.0f} either way)")
    return v


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 with Pillow's "L" conversion (ITU-R 601 luma), the
    same as the one-channel models' preprocessing."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))


def _normalise_image(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 picture, not {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]  # a caller's RGBA: the kernel works on the colours
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or min(a.shape[:2]) < 1:
        raise ValueError(f"expected a picture of shape (H, W) or (H, W, 3), not {a.shape}")
    return np.ascontiguousarray(a)


def _image_view(placeholder: str) -> ImageView:
    """A picture scaled to fit, keeping its proportions; pixels stay sharp when enlarged."""
    return ImageView(min_side=160, pixelated=True, placeholder=placeholder, background=QColor("#f2f2f2"),
                     size_hint=QSize(420, 420))


class _LiveDelegate(QStyledItemDelegate):
    """Commits a cell on every keystroke, so the picture follows the typing."""

    def createEditor(self, parent, option, index):
        editor = QLineEdit(parent)
        editor.setAlignment(Qt.AlignmentFlag.AlignCenter)
        editor.textEdited.connect(lambda _t, e=editor: self.commitData.emit(e) if e.isVisible() else None)
        return editor


class KernelPlayground(QWidget):
    """Pick or type a convolution kernel and see what it does to a picture.

    :meth:`set_image` takes a uint8 array (H, W, 3) or (H, W); :meth:`set_image_path`
    decodes a file with the core's safe decoder on a worker. ``result_ready`` fires each
    time a new result is shown; ``kernel_changed`` carries the kernel's name (or
    ``"custom"``).
    """

    result_ready = Signal()
    kernel_changed = Signal(str)
    image_failed = Signal(str)  # message naming the file

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: np.ndarray | None = None  # as given (gray or RGB)
        self._gray_cache: np.ndarray | None = None
        self._size = 3
        self._values = np.zeros((3, 3))
        self._values[1, 1] = 1.0
        self._scale = 1.0
        self._name: str | None = "identity"
        self._last_custom: tuple[np.ndarray, str] | None = None
        self._bad_cells: dict[tuple[int, int], str] = {}
        self._scale_error: str | None = None
        self._filling = False
        self._apply_lane = workers.Lane()  # the kernel applied on a worker (big pictures)
        self._pending = False  # a newer kernel waits for the running job to end
        self._load_lane = workers.Lane()  # a picture decoded from a file
        self._result: np.ndarray | None = None
        self._closed = False
        self._source: str | None = None  # file name of the picture, when it came from a file

        # ---- kernel list
        self.kernel_list = QListWidget()
        self.kernel_list.setToolTip("Pick a kernel from the classic table, then change its numbers if you like.")
        for name in KERNELS:
            item = QListWidgetItem(_pretty(name))
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.kernel_list.addItem(item)
        self._custom_item = QListWidgetItem("Your own (custom)")
        self._custom_item.setData(Qt.ItemDataRole.UserRole, CUSTOM)
        self._custom_item.setToolTip("Type numbers into the grid to make your own kernel.")
        self.kernel_list.addItem(self._custom_item)
        self.kernel_list.setMinimumWidth(170)
        rows = self.kernel_list.count()
        self.kernel_list.setFixedHeight(self.kernel_list.sizeHintForRow(0) * rows
                                        + 2 * self.kernel_list.frameWidth() + 4)
        self.kernel_list.currentItemChanged.connect(self._on_list_current_changed)

        # ---- grid and its settings
        self.size_combo = QComboBox()
        self.size_combo.addItem("3 × 3", 3)
        self.size_combo.addItem("5 × 5", 5)
        self.size_combo.setToolTip("How many neighbouring pixels the kernel looks at. Going to 5 × 5 adds a ring "
                                   "of zeros; going back to 3 × 3 keeps the middle.")
        self.size_combo.currentIndexChanged.connect(self._on_size_combo_changed)
        self.scale_edit = QLineEdit("1")
        self.scale_edit.setMaximumWidth(90)
        self.scale_edit.setToolTip("Every number in the grid is multiplied by this (fractions like 1/9 work), "
                                   "so a blur can be written with whole numbers.")
        self.scale_edit.textEdited.connect(self._on_scale_edited)
        self.border_combo = QComboBox()
        for mode, label in BORDER_MODES.items():
            self.border_combo.addItem(label, mode)
        self.border_combo.setToolTip("At the edge of the picture the kernel reaches past the last pixel: "
                                     "this says what it finds there.")
        self.border_combo.currentIndexChanged.connect(lambda _i: self._request())

        self.grid = QTableWidget(3, 3)
        self.grid.setItemDelegate(_LiveDelegate(self.grid))
        self.grid.horizontalHeader().setVisible(False)
        self.grid.verticalHeader().setVisible(False)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.grid.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.grid.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.grid.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.grid.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.grid.setToolTip(
            "The kernel's numbers: each new pixel is the pixels around it times these numbers, added up "
            "(times the scale). Click a number to change it.\nAs in the classic table this is a true "
            "convolution: the grid is turned by 180° before it slides over the picture, which makes no "
            "difference for symmetric kernels.")
        self.grid.itemChanged.connect(self._on_grid_item_changed)
        self.grid.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

        self.sum_label = QLabel()
        self.sum_label.setWordWrap(True)
        self.sum_label.setStyleSheet("color: #444;")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c62828; font-weight: bold;")
        self.error_label.setVisible(False)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setTextFormat(Qt.TextFormat.RichText)
        self.note_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note_label.setMinimumHeight(60)

        self.colour_radio = QRadioButton("Colour")
        self.gray_radio = QRadioButton("Grayscale")
        self.colour_radio.setToolTip("Filter the red, green and blue parts of the picture separately.")
        self.gray_radio.setToolTip("Turn the picture into shades of grey first, then filter it: edges are "
                                   "easier to see.")
        self.colour_radio.setChecked(True)
        self._mode_group = QButtonGroup(self)
        self._mode_group.addButton(self.colour_radio)
        self._mode_group.addButton(self.gray_radio)
        self.gray_radio.toggled.connect(lambda _on: self._on_colour_mode_changed())

        # ---- pictures
        self.original_title = QLabel("<b>Original</b>")
        self.result_title = QLabel("<b>After the kernel</b>")
        for t in (self.original_title, self.result_title):
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.original_view = _image_view("Open a picture to try the kernels on it.")
        self.result_view = _image_view("The filtered picture appears here.")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #555;")

        # ---- layout
        settings = QFormLayout()
        settings.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        settings.addRow("Size:", self.size_combo)
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale_edit)
        scale_row.addWidget(QLabel("× every number"))
        scale_row.addStretch(1)
        settings.addRow("Scale:", scale_row)
        mode_row = QHBoxLayout()
        mode_row.addWidget(self.colour_radio)
        mode_row.addWidget(self.gray_radio)
        mode_row.addStretch(1)
        settings.addRow("Filter in:", mode_row)
        settings.addRow("Edges:", self.border_combo)

        grid_row = QHBoxLayout()
        grid_row.addWidget(self.grid)
        grid_row.addStretch(1)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 6, 0)
        heading = QLabel("<b>Kernel</b>")
        lv.addWidget(heading)
        lv.addWidget(self.kernel_list)
        lv.addWidget(self.note_label)
        lv.addLayout(settings)
        lv.addWidget(QLabel("<b>Numbers</b> (click one to change it)"))
        lv.addLayout(grid_row)
        lv.addWidget(self.sum_label)
        lv.addWidget(self.error_label)
        lv.addStretch(1)

        pics = QWidget()
        pg = QHBoxLayout(pics)
        pg.setContentsMargins(6, 0, 0, 0)
        for title, view in ((self.original_title, self.original_view), (self.result_title, self.result_view)):
            col = QVBoxLayout()
            col.addWidget(title)
            col.addWidget(view, 1)
            pg.addLayout(col, 1)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(pics, 1)
        rv.addWidget(self.status_label)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        outer = QVBoxLayout(self)
        outer.addWidget(split)
        self._split = split

        self.select_kernel("identity")

    # ------------------------------------------------------------------ public API
    def set_image(self, rgb: np.ndarray) -> None:
        """Show a picture: uint8 (H, W, 3) colour or (H, W) grayscale."""
        self._load_lane.cancel()  # a file still loading is no longer wanted
        self._set_array(_normalise_image(rgb), None)

    def _set_array(self, a: np.ndarray, source: str | None) -> None:
        self._source = source
        self._image = a
        self._gray_cache = None
        gray_input = a.ndim == 2
        self.colour_radio.setEnabled(not gray_input)
        self.gray_radio.setEnabled(not gray_input)
        self._result = None
        self.result_view.set_image(None)
        self._show_input()
        self._request()

    def clear_image(self) -> None:
        """Show no picture (the one shown was let go)."""
        self._load_lane.cancel()
        self._apply_lane.cancel()
        self._pending = False
        self._image = self._gray_cache = self._result = None
        self._source = None
        self.original_view.set_image(None)
        self.result_view.set_image(None)
        self._set_working(False)
        self.status_label.setText("")

    def set_image_path(self, path: str | os.PathLike) -> None:
        """Decode ``path`` (at most MAX_SIDE_FROM_FILE pixels a side) on a worker and show it."""
        path = os.fspath(path)

        def load(state: workers.JobState) -> np.ndarray:
            from ...core.images import decode_image

            side = MAX_SIDE_FROM_FILE
            im = decode_image(path, draft_size=(side, side)).image
            state.check()
            im.thumbnail((side, side))
            return np.asarray(im)

        def done(arr) -> None:
            if not self._closed:
                self._set_array(_normalise_image(arr), os.path.basename(path))

        def failed(msg: str, _tb: str) -> None:
            if not self._closed:
                text = msg if os.path.basename(path) in msg else f"{path}: {msg}"
                self.status_label.setText(f"Could not open the picture: {text}")
                self.image_failed.emit(text)

        self.status_label.setText(f"Opening {os.path.basename(path)}…")
        self._load_lane.submit(load, on_finished=done, on_failed=failed)

    def select_kernel(self, name: str) -> None:
        """Show a named kernel (a key of ``KERNELS``) in the grid and apply it."""
        if name not in KERNELS:
            raise KeyError(f"unknown kernel {name!r}")
        grid, scale = display_form(name)
        self._fill(grid, _format_scale(scale))
        self._set_name(name)
        self._request()

    def set_kernel(self, kernel, scale: float | str = 1) -> None:
        """Put a kernel of your own (an odd square matrix, 3×3 or 5×5) into the grid."""
        k = np.asarray(kernel, dtype=np.float64)
        if k.shape not in ((3, 3), (5, 5)):
            raise ValueError(f"the playground edits 3×3 or 5×5 kernels, not shape {k.shape}")
        self._fill(k, str(scale))
        self._match_name()
        self._request()

    def kernel(self) -> np.ndarray | None:
        """The kernel that is applied (grid × scale), or None while a cell is not a number."""
        if self._bad_cells or self._scale_error is not None:
            return None
        return self._values * self._scale

    def kernel_name(self) -> str:
        """The named kernel shown, or ``"custom"``."""
        return self._name or CUSTOM

    def set_grayscale(self, on: bool) -> None:
        (self.gray_radio if on else self.colour_radio).setChecked(True)

    def grayscale(self) -> bool:
        return self.gray_radio.isChecked()

    def set_border_mode(self, mode: str) -> None:
        i = self.border_combo.findData(mode)
        if i < 0:
            raise ValueError(f"unknown border mode {mode!r}")
        self.border_combo.setCurrentIndex(i)

    def border_mode(self) -> str:
        return self.border_combo.currentData()

    def input_image(self) -> np.ndarray | None:
        """The picture the kernel works on (grayscale when that is chosen)."""
        if self._image is None:
            return None
        if self._image.ndim == 3 and self.grayscale():
            if self._gray_cache is None:
                self._gray_cache = to_grayscale(self._image)
            return self._gray_cache
        return self._image

    def result_image(self) -> np.ndarray | None:
        """The filtered picture currently shown (None before the first result)."""
        return self._result

    @property
    def busy(self) -> bool:
        return self._apply_lane.busy or self._pending

    def shutdown(self) -> None:
        """Stop taking results; running jobs finish on their own and are dropped."""
        self._closed = True
        self._apply_lane.cancel()
        self._load_lane.cancel()
        self._pending = False

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------ grid
    def _fill(self, values: np.ndarray, scale_text: str) -> None:
        n = values.shape[0]
        self._filling = True
        try:
            self._size = n
            self.size_combo.blockSignals(True)
            self.size_combo.setCurrentIndex(self.size_combo.findData(n))
            self.size_combo.blockSignals(False)
            self.grid.setRowCount(n)
            self.grid.setColumnCount(n)
            cell = 54 if n == 3 else 50
            for i in range(n):
                self.grid.setRowHeight(i, 30)
                self.grid.setColumnWidth(i, cell)
            self.grid.setFixedSize(cell * n + 2 * self.grid.frameWidth() + 1, 30 * n + 2 * self.grid.frameWidth() + 1)
            for r in range(n):
                for c in range(n):
                    item = QTableWidgetItem(_format_number(values[r, c]))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.grid.setItem(r, c, item)
            self._values = np.array(values, dtype=np.float64)
            self._bad_cells.clear()
            self.scale_edit.setText(scale_text)
            self._parse_scale(scale_text)
        finally:
            self._filling = False
        self._style_scale()
        self._restyle_cells()
        self._update_texts()

    def _restyle_cells(self) -> None:
        self._filling = True
        try:
            big = float(np.max(np.abs(self._values))) or 1.0
            for r in range(self._size):
                for c in range(self._size):
                    item = self.grid.item(r, c)
                    if item is None:
                        continue
                    if (r, c) in self._bad_cells:
                        item.setBackground(QBrush(_INVALID_BG))
                        item.setForeground(QBrush(QColor("white")))
                        item.setToolTip(self._bad_cells[(r, c)])
                        continue
                    v = self._values[r, c] * (1 if self._scale >= 0 else -1)
                    base = _POSITIVE if v > 0 else _NEGATIVE
                    alpha = 0 if v == 0 else int(40 + 110 * min(1.0, abs(v) / big))
                    tint = QColor(base)
                    tint.setAlpha(alpha)
                    item.setBackground(QBrush(tint))
                    item.setForeground(QBrush(QColor("#111")))
                    effective = self._values[r, c] * self._scale
                    item.setToolTip(f"Row {r + 1}, column {c + 1}: {_format_number(self._values[r, c])}"
                                    + ("" if self._scale == 1 else f" × {self.scale_edit.text().strip()} = "
                                                                   f"{effective:.6g}"))
        finally:
            self._filling = False

    def _on_grid_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        r, c = item.row(), item.column()
        try:
            v = _parse_number(item.text())
        except ValueError as e:
            self._bad_cells[(r, c)] = f"Not a number: {e}. Type a number such as 2, -1, 0.5 or 1/9."
        else:
            self._bad_cells.pop((r, c), None)
            self._values[r, c] = v
        self._after_edit()

    def _parse_scale(self, text: str) -> None:
        try:
            self._scale = _parse_number(text)
            self._scale_error = None
        except ValueError as e:
            self._scale_error = f"Scale: {e}. Type a number such as 1 or a fraction such as 1/9."

    def _on_scale_edited(self, text: str) -> None:
        self._parse_scale(text)
        self._after_edit()

    def _style_scale(self) -> None:
        self.scale_edit.setStyleSheet("" if self._scale_error is None else
                                      "QLineEdit { background: #e53935; color: white; }")
        self.scale_edit.setToolTip(self._scale_error or "Every number in the grid is multiplied by this "
                                                        "(fractions like 1/9 work), so a blur can be written "
                                                        "with whole numbers.")

    def _after_edit(self) -> None:
        self._style_scale()
        self._restyle_cells()
        if self.kernel() is not None:
            self._match_name()
        self._update_texts()
        self._request()

    def _on_size_combo_changed(self, _index: int) -> None:
        n = self.size_combo.currentData()
        if n == self._size or self._bad_cells:
            if self._bad_cells:  # keep the grid as typed; the user fixes the red cell first
                self.size_combo.blockSignals(True)
                self.size_combo.setCurrentIndex(self.size_combo.findData(self._size))
                self.size_combo.blockSignals(False)
                self.error_label.setText("Fix the red number first, then change the size.")
                self.error_label.setVisible(True)
            return
        old = self._values
        if n > old.shape[0]:
            new = np.zeros((n, n))
            o = (n - old.shape[0]) // 2
            new[o:o + old.shape[0], o:o + old.shape[0]] = old
        else:
            o = (old.shape[0] - n) // 2
            new = old[o:o + n, o:o + n].copy()
        self._fill(new, self.scale_edit.text())
        self._match_name()
        self._update_texts()
        self._request()

    def _match_name(self) -> None:
        """Name the kernel if its numbers are a named kernel's (a ring of zeros aside)."""
        k = self.kernel()
        found = None
        if k is not None:
            for name, ref in KERNELS.items():
                if _same_kernel(k, ref):
                    found = name
                    break
        if found is None and k is not None:
            self._last_custom = (self._values.copy(), self.scale_edit.text())
        self._set_name(found)

    def _set_name(self, name: str | None) -> None:
        changed = name != self._name
        self._name = name
        target = self._custom_item
        for i in range(self.kernel_list.count()):
            it = self.kernel_list.item(i)
            if it.data(Qt.ItemDataRole.UserRole) == (name or CUSTOM):
                target = it
        self.kernel_list.blockSignals(True)
        self.kernel_list.setCurrentItem(target)
        self.kernel_list.blockSignals(False)
        self._update_texts()
        if changed:
            self.kernel_changed.emit(name or CUSTOM)

    def _on_list_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is None:
            return
        name = current.data(Qt.ItemDataRole.UserRole)
        if name == CUSTOM:
            if self._name is not None and self._last_custom is not None:
                values, scale = self._last_custom
                self._fill(values, scale)
                self._match_name()
                self._request()
            elif self._name is not None:
                self._set_name(None)  # start your own from the numbers shown
            return
        self.select_kernel(name)

    def _on_colour_mode_changed(self) -> None:
        self._show_input()
        self._request()

    # ------------------------------------------------------------------ texts
    def _update_texts(self) -> None:
        name = self._name
        if name is not None:
            note = KERNEL_NOTES.get(name) or KERNEL_HELP.get(name, "")
            self.note_label.setText(f"<b>{html.escape(_pretty(name))}</b>: {html.escape(note, quote=False)}")
        else:
            self.note_label.setText("<b>Your own kernel</b>: each new pixel is the pixels around it times "
                                    "your numbers, added up.")
        problems = [f"Row {r + 1}, column {c + 1}: {msg}" for (r, c), msg in sorted(self._bad_cells.items())]
        if self._scale_error:
            problems.append(self._scale_error)
        if problems:
            self.error_label.setText("\n".join(problems) + "\nThe picture still shows the last kernel that worked.")
            self.error_label.setVisible(True)
            self.sum_label.setText("")
            return
        self.error_label.setVisible(False)
        total = float((self._values * self._scale).sum())
        t = _format_number(round(total, 6))
        if abs(total - 1) < 1e-6:
            what = "so flat areas keep their brightness."
        elif abs(total) < 1e-6:
            what = "so flat areas turn black and only changes (edges) show."
        elif total > 1:
            what = "so the picture gets brighter."
        elif total > 0:
            what = "so the picture gets darker."
        else:
            what = "so flat areas come out negative, which shows as black."
        self.sum_label.setText(f"The numbers add up to {t}, {what} Blue numbers add their pixel, orange "
                               f"ones take it away.")

    # ------------------------------------------------------------------ applying
    def _show_input(self) -> None:
        a = self.input_image()
        self.original_view.set_image(None if a is None else array_to_qimage(a))
        gray = a is not None and a.ndim == 2
        self.original_title.setText("<b>Original</b>" + (" (grayscale)" if gray and self._image.ndim == 3 else ""))

    def _request(self) -> None:
        """Apply the current kernel to the current picture (now, or on a worker)."""
        if self._closed or self._image is None:
            return
        k = self.kernel()
        if k is None:
            return  # a red cell: the last good result stays
        img = self.input_image()
        if img.shape[0] * img.shape[1] <= INLINE_MAX_PIXELS:
            self._apply_lane.cancel()  # a result on its way is for an older kernel or picture
            self._pending = False
            self._show_result(apply_kernel(img, k, self.border_mode()))
            return
        if self._apply_lane.busy:
            self._pending = True  # started when the running one ends: the newest wins
            self._set_working(True)
            return
        self._pending = False
        mode = self.border_mode()
        self._set_working(True)
        self._apply_lane.submit(lambda state: apply_kernel(img, k, mode), on_finished=self._on_applied,
                                on_failed=self._on_apply_failed)

    def _on_applied(self, result: np.ndarray) -> None:
        self._apply_lane.cancel()  # this job has ended (the Lane itself forgets it only after this call)
        if self._closed:
            return
        if self._pending:  # made for a kernel or picture that changed meanwhile: apply the newest
            self._pending = False
            self._request()
            return
        self._show_result(result)

    def _on_apply_failed(self, msg: str, _tb: str) -> None:
        self._apply_lane.cancel()  # this job has ended (see _on_applied)
        self._set_working(False)
        if self._closed:
            return
        if self._pending:  # a newer kernel waits: try it, as after a success
            self._pending = False
            self._request()
        else:
            self.status_label.setText(f"The kernel could not be applied: {msg}")

    def _set_working(self, on: bool) -> None:
        self.result_title.setText("<b>After the kernel</b>" + (" <i>(working…)</i>" if on else ""))

    def _show_result(self, result: np.ndarray) -> None:
        self._result = result
        self.result_view.set_image(array_to_qimage(result))
        self._set_working(False)
        h, w = result.shape[:2]
        kind = "grayscale" if result.ndim == 2 else "colour"
        source = f"{self._source} · " if self._source else ""
        self.status_label.setText(f"{source}{w} × {h} pixels, {kind}. Results below 0 show as black, "
                                  f"above 255 as white.")
        self.result_ready.emit()


def _same_kernel(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal kernels, a border of zeros around the smaller one aside."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    o = (a.shape[0] - b.shape[0]) // 2
    inner = a[o:o + b.shape[0], o:o + b.shape[0]]
    outer = a.copy()
    outer[o:o + b.shape[0], o:o + b.shape[0]] = 0
    return bool(np.allclose(inner, b, rtol=0, atol=1e-9) and not np.any(outer))
