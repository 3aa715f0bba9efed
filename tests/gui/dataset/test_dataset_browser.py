"""The Dataset place: listing, class counts and warnings, lazy thumbnails, filter, preview."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt

from ponyclassifier.gui.dataset.browser import COL_COUNT, COL_NAME, BrokenRole, ClassRole, QtDatasetBrowser
from tests.conftest import make_shapes_dataset

DECO = Qt.ItemDataRole.DecorationRole


def _browser(qtbot, cache_dir, size=(900, 600)) -> QtDatasetBrowser:
    b = QtDatasetBrowser(cache_dir=cache_dir)
    qtbot.addWidget(b)
    b.resize(*size)
    b.show()
    return b


def _open(qtbot, b: QtDatasetBrowser, root: Path) -> None:
    with qtbot.waitSignal(b.listing_finished, timeout=20000):
        b.open_project(root)


def _counts_on_disk(root: Path) -> dict[str, int]:
    return {d.name: sum(1 for f in d.iterdir() if f.is_file()) for d in sorted(root.iterdir()) if d.is_dir()}


def test_class_list_counts_match_disk_and_warn(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=12, classes=("circle", "square"))
    make_shapes_dataset(root, per_class=3, classes=("triangle",))
    b = _browser(qtbot, gui_env / "thumbs")
    _open(qtbot, b, root)

    disk = _counts_on_disk(root)
    assert b.counts == disk
    assert b.class_item(None).text(COL_COUNT) == str(sum(disk.values()))
    for name, n in disk.items():
        assert b.class_item(name).text(COL_COUNT) == str(n)
    # triangle: too few images and 4x smaller than the others
    tri = b.class_item("triangle")
    assert not tri.icon(COL_NAME).isNull()
    assert "only 3 images" in tri.toolTip(COL_NAME) and "fewer images than" in tri.toolTip(COL_NAME)
    assert b.class_item("circle").icon(COL_NAME).isNull()


def test_thumbnails_arrive_lazily_and_are_cached_on_disk(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=100)
    b = _browser(qtbot, gui_env / "thumbs", size=(700, 450))
    _open(qtbot, b, root)
    m = b.model
    placeholder = m.placeholder.cacheKey()
    qtbot.waitUntil(lambda: m.data(m.index(0), DECO).cacheKey() != placeholder, timeout=10000)
    assert m.rowCount() == 300
    # only rows on screen were asked for, not all 300
    assert 0 < m.requests < 100, m.requests
    qtbot.waitUntil(lambda: not b.loader.busy, timeout=10000)
    cached = list((gui_env / "thumbs").rglob("*.jpg"))
    assert 0 < len(cached) < 100


def test_filter_by_class(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=5)
    b = _browser(qtbot, gui_env / "thumbs")
    _open(qtbot, b, root)
    assert b.model.rowCount() == 15
    b.select_class("square")
    assert b.model.rowCount() == 5
    assert {b.model.index(r).data(ClassRole) for r in range(5)} == {"square"}
    assert "square" in b.grid_title.text() and "5 images" in b.grid_title.text()
    b.select_class(None)
    assert b.model.rowCount() == 15


def test_broken_file_shows_reason_in_preview(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    (root / "circle" / "broken.png").write_text("this is not a picture")
    b = _browser(qtbot, gui_env / "thumbs")
    _open(qtbot, b, root)
    b.select_class("circle")
    row = next(r for r in range(b.model.rowCount()) if b.model.index(r).data().startswith("broken"))
    b.view.setCurrentIndex(b.model.index(row))
    qtbot.waitUntil(lambda: "unsupported file" in b.preview.reason, timeout=10000)
    assert b.preview.fields["name"].text() == "broken.png"
    assert b.preview.fields["class"].text() == "circle"
    # the grid cell turns into the "broken" icon with the reason in its tooltip
    qtbot.waitUntil(lambda: b.model.index(row).data(BrokenRole) is not None, timeout=10000)
    assert b.model.index(row).data(DECO).cacheKey() == b.model.broken_icon.cacheKey()
    assert "unsupported file" in b.model.index(row).data(Qt.ItemDataRole.ToolTipRole)


def test_preview_shows_pixels_and_size(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2, size=40)
    b = _browser(qtbot, gui_env / "thumbs")
    _open(qtbot, b, root)
    b.view.setCurrentIndex(b.model.index(1))
    qtbot.waitUntil(lambda: b.preview.fields["pixels"].text() == "40 × 40", timeout=10000)
    assert b.preview.fields["bytes"].text().endswith(("bytes", "KB"))
    assert b.preview.image_label.pixmap() is not None and not b.preview.image_label.pixmap().isNull()


def test_empty_and_missing_projects_say_what_to_do(qtbot, tmp_path, gui_env):
    (tmp_path / "new" / "cat").mkdir(parents=True)
    b = _browser(qtbot, gui_env / "thumbs")
    _open(qtbot, b, tmp_path / "new")
    assert b.grid_stack.currentWidget() is b.empty_label
    assert "No images yet" in b.empty_label.text()
    with qtbot.waitSignal(b.listing_failed, timeout=10000):
        b.open_project(tmp_path / "does-not-exist")
    assert "not a folder" in b.empty_label.text()


def test_reopening_drops_the_old_listing(qtbot, tmp_path, gui_env):
    a = make_shapes_dataset(tmp_path / "a", per_class=30)
    c = make_shapes_dataset(tmp_path / "c", per_class=2)
    b = _browser(qtbot, gui_env / "thumbs")
    b.open_project(a)
    _open(qtbot, b, c)
    qtbot.wait(50)
    assert b.model.file_count() == 6
    assert all(os.fspath(c) in b.model.index(r).data(Qt.ItemDataRole.UserRole + 1) for r in range(6))
