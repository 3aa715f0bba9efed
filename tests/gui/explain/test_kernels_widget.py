"""The kernels playground on real photos: every named kernel and a kernel typed by the user
give exactly scipy.ndimage's convolution on screen; bad cells are refused visibly."""

from __future__ import annotations

import html

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from ponyclassifier.core.kernels import KERNELS
from ponyclassifier.gui.explain import kernels as QK
from ponyclassifier.gui.explain.kernels import KernelPlayground, qimage_to_array

ndimage = pytest.importorskip("scipy.ndimage")
skdata = pytest.importorskip("skimage.data")


def reference(image: np.ndarray, kernel: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """scipy.ndimage's convolution per channel, rounded and clipped like a picture."""
    f = image.astype(np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if f.ndim == 2:
        out = ndimage.convolve(f, k, mode=mode)
    else:
        out = np.stack([ndimage.convolve(f[..., c], k, mode=mode) for c in range(f.shape[2])], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def small_photo() -> np.ndarray:
    """A crop of the astronaut photo: real edges and texture, small enough to filter inline."""
    return np.ascontiguousarray(skdata.astronaut()[60:150, 180:300])  # 90 x 120 x 3


@pytest.fixture(scope="module")
def big_photo() -> np.ndarray:
    """Large enough to be filtered on a worker (over INLINE_MAX_PIXELS)."""
    a = skdata.astronaut()
    assert a.shape[0] * a.shape[1] > QK.INLINE_MAX_PIXELS
    return a


def shown(view) -> np.ndarray:
    img = view.image()
    assert img is not None and not img.isNull()
    return qimage_to_array(img)


def make(qtbot) -> KernelPlayground:
    w = KernelPlayground()
    qtbot.addWidget(w)
    w.resize(1100, 650)
    w.show()
    return w


def pick(qtbot, w: KernelPlayground, name: str) -> None:
    """Choose a kernel the way a user does: by clicking its row in the list."""
    row = next(i for i in range(w.kernel_list.count())
               if w.kernel_list.item(i).data(Qt.ItemDataRole.UserRole) == name)
    rect = w.kernel_list.visualItemRect(w.kernel_list.item(row))
    qtbot.mouseClick(w.kernel_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.kernel_name() == name


def type_in_cell(qtbot, w: KernelPlayground, r: int, c: int, text: str) -> None:
    """Open the cell's editor and type, as a user does; the delegate commits every keystroke."""
    item = w.grid.item(r, c)
    w.grid.setCurrentItem(item)
    w.grid.editItem(item)
    editors = [e for e in w.grid.findChildren(QLineEdit) if e.isVisible()]  # closed ones are hidden
    assert len(editors) == 1
    editor = editors[0]
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    # the delegate closes its editor on the next turn of the event loop
    qtbot.waitUntil(lambda: not any(e.isVisible() for e in w.grid.findChildren(QLineEdit)))


def test_every_named_kernel_shows_the_scipy_convolution(qtbot, small_photo):
    w = make(qtbot)
    w.set_image(small_photo)
    np.testing.assert_array_equal(shown(w.original_view), small_photo)
    for name, kernel in KERNELS.items():
        pick(qtbot, w, name)
        # the grid and the scale show the kernel's numbers
        n = kernel.shape[0]
        assert w.grid.rowCount() == w.grid.columnCount() == n
        assert w.size_combo.currentData() == n
        grid = np.array([[QK._parse_number(w.grid.item(r, c).text()) for c in range(n)] for r in range(n)])
        np.testing.assert_allclose(grid * QK._parse_number(w.scale_edit.text()), kernel, rtol=0, atol=1e-12)
        np.testing.assert_allclose(w.kernel(), kernel, rtol=0, atol=1e-12)
        # what is on screen is scipy's convolution, at the same size as the original
        np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, kernel), err_msg=name)
        assert w.result_view.image_rect() == w.original_view.image_rect()
        # a plain-language note naming the kernel
        assert html.escape(QK.KERNEL_NOTES[name], quote=False) in w.note_label.text()
    assert set(QK.KERNEL_NOTES) == set(KERNELS)
    assert "1/256" in w.scale_edit.text()  # the unsharp mask keeps the classic table's form


def test_grayscale_and_border_modes(qtbot, small_photo):
    w = make(qtbot)
    w.set_image(small_photo)
    pick(qtbot, w, "sobel x")
    w.gray_radio.click()
    gray = np.asarray(Image.fromarray(small_photo).convert("L"))
    np.testing.assert_array_equal(shown(w.original_view), gray)
    np.testing.assert_array_equal(shown(w.result_view), reference(gray, KERNELS["sobel x"]))
    assert "grayscale" in w.original_title.text()
    for mode in ("nearest", "constant", "wrap", "reflect"):
        w.border_combo.setCurrentIndex(w.border_combo.findData(mode))
        np.testing.assert_array_equal(shown(w.result_view), reference(gray, KERNELS["sobel x"], mode), err_msg=mode)
    w.colour_radio.click()
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, KERNELS["sobel x"]))

    # a grayscale picture (H, W): the colour choice does not apply
    w.set_image(gray)
    assert not w.colour_radio.isEnabled()
    np.testing.assert_array_equal(shown(w.result_view), reference(gray, KERNELS["sobel x"]))


def test_typed_kernel_applies_live_and_becomes_custom(qtbot, small_photo):
    w = make(qtbot)
    w.set_image(small_photo)
    pick(qtbot, w, "identity")
    changed = []
    w.kernel_changed.connect(changed.append)
    type_in_cell(qtbot, w, 0, 0, "-1")
    type_in_cell(qtbot, w, 2, 2, "1/2")
    type_in_cell(qtbot, w, 1, 2, "0.75")
    expected = np.array([[-1, 0, 0], [0, 1, 0.75], [0, 0, 0.5]])
    assert w.kernel_name() == "custom" and changed[0] == "custom"
    assert w.kernel_list.currentItem().data(Qt.ItemDataRole.UserRole) == "custom"
    assert "Your own kernel" in w.note_label.text()
    np.testing.assert_allclose(w.kernel(), expected)
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, expected))
    assert "add up to 1.25" in w.sum_label.text() and "brighter" in w.sum_label.text()

    # the scale multiplies every number
    w.scale_edit.clear()
    qtbot.keyClicks(w.scale_edit, "2")
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, 2 * expected))

    # 5 x 5: the kernel gets a ring of zeros (same picture), then a typed outer number counts
    w.size_combo.setCurrentIndex(w.size_combo.findData(5))
    assert w.grid.rowCount() == 5 and w.grid.item(1, 1).text() == "-1"
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, 2 * expected))
    type_in_cell(qtbot, w, 0, 4, "0.25")
    k5 = np.zeros((5, 5))
    k5[1:4, 1:4] = expected
    k5[0, 4] = 0.25
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, 2 * k5))

    # typing a named kernel's numbers back names it again
    pick(qtbot, w, "box blur")
    pick(qtbot, w, "identity")
    w.scale_edit.setText("1")
    type_in_cell(qtbot, w, 1, 1, "2")
    assert w.kernel_name() == "custom"
    type_in_cell(qtbot, w, 1, 1, "1")
    assert w.kernel_name() == "identity"


@pytest.mark.parametrize("text", ["abc", "", "1 2", "1/0", "inf", "1e9"])
def test_invalid_cell_is_red_with_a_tooltip_and_the_result_stays(qtbot, small_photo, text):
    w = make(qtbot)
    w.set_image(small_photo)
    pick(qtbot, w, "sharpen")
    item = w.grid.item(1, 1)
    type_in_cell(qtbot, w, 1, 1, text)
    assert w.kernel() is None
    assert item.background().color().name() == QK._INVALID_BG.name()
    assert item.toolTip().startswith("Not a number") and "Type a number" in item.toolTip()
    assert w.error_label.isVisibleTo(w) and "Row 2, column 2" in w.error_label.text()
    # Typing applies live, so the picture shows the last text that was a number ("1" of
    # "1 2"), or the kernel from before the cell was cleared.
    last_good = 5.0
    for i in range(1, len(text) + 1):
        try:
            last_good = QK._parse_number(text[:i])
        except ValueError:
            pass
    k = np.array([[0, -1, 0], [-1, last_good, -1], [0, -1, 0]], float)
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, k))
    # more edits while a cell is red change nothing on screen
    updates = []
    w.result_ready.connect(lambda: updates.append(1))
    type_in_cell(qtbot, w, 0, 0, "3")
    w.gray_radio.click()
    assert updates == [] and w.kernel() is None
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, k))
    # a size change waits until the cell is fixed
    w.size_combo.setCurrentIndex(w.size_combo.findData(5))
    assert w.grid.rowCount() == 3 and "Fix the red number" in w.error_label.text()
    # fixing the cell applies the kernel again
    type_in_cell(qtbot, w, 1, 1, "6")
    assert item.background().color().name() != QK._INVALID_BG.name()
    assert not w.error_label.isVisibleTo(w)
    k = np.array([[3, -1, 0], [-1, 6, -1], [0, -1, 0]], float)
    gray = np.asarray(Image.fromarray(small_photo).convert("L"))
    np.testing.assert_array_equal(shown(w.result_view), reference(gray, k))
    assert updates


def test_invalid_scale_is_refused(qtbot, small_photo):
    w = make(qtbot)
    w.set_image(small_photo)
    pick(qtbot, w, "box blur")
    before = shown(w.result_view).copy()
    w.scale_edit.clear()
    qtbot.keyClicks(w.scale_edit, "x/9")
    assert w.kernel() is None and "e53935" in w.scale_edit.styleSheet()
    assert "Scale" in w.scale_edit.toolTip() and "Scale" in w.error_label.text()
    np.testing.assert_array_equal(shown(w.result_view), before)
    w.scale_edit.clear()
    qtbot.keyClicks(w.scale_edit, "1/9")
    assert w.scale_edit.styleSheet() == "" and w.kernel_name() == "box blur"


def test_big_picture_is_filtered_on_a_worker_and_the_newest_kernel_wins(qtbot, big_photo):
    w = make(qtbot)
    with qtbot.waitSignal(w.result_ready, timeout=30000):
        w.set_image(big_photo)
    # several picks in a row: only the last kernel's result may end up on screen
    for name in ("box blur", "edge detection 2", "gaussian blur 5x5", "unsharp masking 5x5"):
        pick(qtbot, w, name)
    assert w.busy
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    np.testing.assert_array_equal(shown(w.result_view), reference(big_photo, KERNELS["unsharp masking 5x5"]))
    np.testing.assert_array_equal(w.result_image(), shown(w.result_view))
    assert "512 × 512" in w.status_label.text()


def test_open_from_file_and_a_broken_file(qtbot, tmp_path, small_photo):
    good = tmp_path / "crop.png"
    Image.fromarray(small_photo).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture at all")
    w = make(qtbot)
    pick(qtbot, w, "edge detection 3")
    with qtbot.waitSignal(w.result_ready, timeout=20000):
        w.set_image_path(good)
    np.testing.assert_array_equal(shown(w.original_view), small_photo)
    np.testing.assert_array_equal(shown(w.result_view), reference(small_photo, KERNELS["edge detection 3"]))
    assert "crop.png" in w.status_label.text()
    with qtbot.waitSignal(w.image_failed, timeout=20000) as blocker:
        w.set_image_path(broken)
    assert "broken.jpg" in blocker.args[0] and "broken.jpg" in w.status_label.text()
    np.testing.assert_array_equal(shown(w.original_view), small_photo)  # the last good picture stays


def test_wrong_arrays_are_refused(qtbot):
    w = make(qtbot)
    with pytest.raises(ValueError):
        w.set_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        w.set_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        w.set_kernel(np.ones((4, 4)))
