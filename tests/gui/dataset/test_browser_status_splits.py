"""Per-image status in the store (unreadable files become "bad", root images are
"unlabelled" and can be moved into a class), the editable splits with an external test
folder, and a class list that keeps its names readable when the side pane grows."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from ponyclassifier.gui.dataset.browser import COL_NAME, QtDatasetBrowser, SplitsDialog
from ponyclassifier.gui.projects import open_project_job
from tests.conftest import make_shapes_dataset


def _attached(qtbot, gui_env, root: Path) -> QtDatasetBrowser:
    b = QtDatasetBrowser(cache_dir=gui_env / "thumbs")
    qtbot.addWidget(b)
    b.resize(1100, 650)
    b.show()
    with qtbot.waitSignal(b.listing_finished, timeout=20000):
        b.open_project(root)
    opened = open_project_job(str(root))  # what the main window runs on a worker
    b.attach_project(opened["project"], opened["rows"], opened["classes"])
    return b


def _do(qtbot, b, fn, *args):
    with qtbot.waitSignal(b.action_finished, timeout=20000):
        assert fn(*args)


def _store_row(b, relpath):
    return next(r for r in b.project.store.images() if r["relpath"] == relpath)


def test_unreadable_file_is_recorded_bad_with_its_reason(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, classes=("circle", "square"))
    (root / "circle" / "zz-notes.png").write_text("not an image at all")
    b = _attached(qtbot, gui_env, root)
    try:
        b.select_class("circle")
        qtbot.waitUntil(lambda: _store_row(b, "circle/zz-notes.png")["status"] == "bad", timeout=15000)
        row = _store_row(b, "circle/zz-notes.png")
        assert "unsupported" in row["reason"] or "not" in row["reason"]
        assert b.project.store.counts()["circle"]["bad"] == 1
        qtbot.waitUntil(lambda: b.split_counts["circle"]["bad"] == 1, timeout=5000)
        b.set_status_filter("bad")
        assert [Path(p).name for p in b.model.paths()] == ["zz-notes.png"]
        assert "bad" in b.class_item("circle").toolTip(COL_NAME) or "unreadable" in b.class_item("circle").toolTip(
            COL_NAME)
        b.view.setCurrentIndex(b.model.index(0))
        qtbot.waitUntil(lambda: "Can't read this file" in b.preview.reason, timeout=10000)
        # fixed by another tool: readable again, so no longer bad
        shutil.copy(root / "circle" / sorted(p.name for p in (root / "circle").iterdir())[0],
                    root / "circle" / "zz-notes.png")
        b.set_status_filter(None)
        b.loader.request_thumbnail(str(root / "circle" / "zz-notes.png"))
        qtbot.waitUntil(lambda: _store_row(b, "circle/zz-notes.png")["status"] == "ok", timeout=15000)
    finally:
        b.shutdown()


def test_root_images_are_unlabelled_and_move_into_a_class(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, classes=("circle", "square"))
    loose = root / "loose.png"
    shutil.copy(next((root / "square").iterdir()), loose)
    b = _attached(qtbot, gui_env, root)
    try:
        assert _store_row(b, "loose.png")["status"] == "unlabelled"
        assert b.counts == {"circle": 3, "square": 3}  # not a class, no warning for it
        b.set_status_filter("unlabelled")
        assert b.model.paths() == [str(loose)]
        b.select_paths([str(loose)])
        _do(qtbot, b, b.move_selected_to, "square")
        assert not loose.exists() and (root / "square" / "loose.png").exists()
        row = _store_row(b, "square/loose.png")
        assert (row["class"], row["status"]) == ("square", "ok")
        assert b.model.paths() == []  # nothing unlabelled is left
        _do(qtbot, b, b.undo)
        assert loose.exists() and _store_row(b, "loose.png")["status"] == "unlabelled"
    finally:
        b.shutdown()


def test_splits_can_be_remade_with_a_share_and_seed_and_a_test_folder_chosen(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=10, classes=("circle", "square"))
    test_dir = make_shapes_dataset(tmp_path / "elsewhere", per_class=2, classes=("circle", "square"))
    b = _attached(qtbot, gui_env, root)
    try:
        d = b.open_splits()
        assert isinstance(d, SplitsDialog) and d.make_button.isEnabled()
        d.fraction.setValue(40)
        d.seed.setValue(7)
        with qtbot.waitSignal(b.splits_changed, timeout=20000):
            d.make_button.click()
        counts = b.project.store.counts()
        assert counts["circle"]["val"] == counts["square"]["val"] == 4  # stratified: 40 % of each class
        assert b.split_settings == {"val_fraction": 0.4, "seed": 7}
        first = {r["relpath"]: r["split"] for r in b.project.store.images()}
        assert d.table.topLevelItem(0).text(2) == "4" and d.table.topLevelItem(0).text(1) == "6"
        _do(qtbot, b, b.make_splits, 0.4, 8)
        other = {r["relpath"]: r["split"] for r in b.project.store.images()}
        assert other != first  # another seed, another choice
        _do(qtbot, b, b.make_splits, 0.4, 7)
        assert {r["relpath"]: r["split"] for r in b.project.store.images()} == first  # same seed, same split
        b.set_split_filter("val")
        assert b.model.rowCount() == 8
        assert b.class_item("circle").text(2) == "4"  # the count column follows the split shown

        with qtbot.waitSignal(b.splits_changed, timeout=20000):
            b.set_test_folder(str(test_dir))
        assert b.project.test_folder == str(test_dir.resolve()) and str(test_dir.resolve()) in d.test_label.text()
        assert d.clear_test.isEnabled()
        with qtbot.waitSignal(b.action_failed, timeout=20000):
            b.set_test_folder(str(root / "circle"))  # inside the project: refused
        assert b.project.test_folder == str(test_dir.resolve())
        with qtbot.waitSignal(b.splits_changed, timeout=20000):
            d.clear_test.click()
        assert b.project.test_folder is None and "none" in d.test_label.text()
    finally:
        b.shutdown()


def test_class_names_stay_readable_when_the_side_pane_is_widened(qtbot, tmp_path, gui_env):
    names = ("a-rather-long-class-name", "square")
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2, classes=names)
    b = _attached(qtbot, gui_env, root)
    try:
        b.resize(1000, 600)
        b.splitter.setSizes([200, 300, 900])  # the side tab pane dragged wide
        qtbot.wait(50)
        left = b.splitter.widget(0)
        assert left.width() >= 190
        fm = b.class_tree.fontMetrics()
        assert b.class_tree.columnWidth(COL_NAME) >= fm.horizontalAdvance("square") + 8
        assert b.class_tree.textElideMode() == Qt.TextElideMode.ElideMiddle
        assert b.class_item(names[0]).toolTip(COL_NAME).startswith(names[0])  # the full name on hover
    finally:
        b.shutdown()


def test_a_store_refresh_asked_for_while_busy_still_shows_its_class(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, classes=("circle", "square"))
    b = _attached(qtbot, gui_env, root)
    try:
        b.select_class("circle")
        assert b.model.class_filter == "circle"
        new = root / "square" / "zz_added.png"
        shutil.copy(root / "square" / "square_000.png", new)
        with qtbot.waitSignal(b.action_finished, timeout=20000):
            b.reload()  # syncs the new file in; the refresh below waits for it
            assert b.busy
            assert b.refresh_from_store([str(new)], "square")
        qtbot.waitUntil(lambda: not b.busy and b.model.class_filter == "square", timeout=20000)
        qtbot.waitUntil(lambda: b.selected_paths() == [str(new)], timeout=20000)
    finally:
        b.shutdown()
