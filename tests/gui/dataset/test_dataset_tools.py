"""The Dataset place's tools in the real main window: capture from a (video-file) camera
into a class, the Augmentation tab following the selection, and Find Duplicates / Find
Similar with deletes through the project (trash, undo)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest

from ponyclassifier.gui.dataset.similar import _Thumb
from ponyclassifier.gui.main_window import AUGMENT_SETTINGS_KEY, MainWindow
from tests.conftest import make_shapes_dataset

pytest.importorskip("PySide6.QtMultimedia", reason="QtMultimedia comes with PySide6-Addons")

from tests.gui.dataset.test_capture import make_video  # noqa: E402

pytestmark = pytest.mark.usefixtures("media_noise")  # tests/gui/conftest.py


def _images(root: Path, cls: str) -> list[Path]:
    return sorted(p for p in (root / cls).iterdir() if p.is_file())


@pytest.fixture
def win(qtbot, tmp_path, make_window):
    """The main window with a shapes project open and its store attached (labelling on)."""
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    w = make_window(1360, 840)
    with qtbot.waitSignal(w.project_ready, timeout=30000):
        w.open_project(root)
    qtbot.waitUntil(lambda: not w.browser.listing and w.browser.project is not None, timeout=10000)
    w.root = root
    yield w
    w.close()


def test_actions_are_in_the_dataset_menu_and_follow_the_project(qtbot, win):
    texts = [a.text() for a in win.dataset_menu.actions()]
    assert "&Capture from Camera…" in texts and "Find &Duplicates…" in texts and "Find &Similar" in texts
    b = win.browser
    assert b.act_capture.isEnabled() and b.act_find_duplicates.isEnabled()
    b.detach_project()  # no store: no capture
    assert not b.act_capture.isEnabled()


def test_capture_from_a_video_adds_pictures_to_the_grid_and_undo_removes_them(qtbot, tmp_path, win):
    b, root = win.browser, win.root
    b.select_class("square")
    before = _images(root, "square")
    assert b.model.rowCount() == len(before) == 3
    video = make_video(tmp_path / "square.gif")
    with qtbot.waitSignal(b.capture_opened) as opened:
        b.open_capture(video_file=video)
    d = opened.args[0]
    assert d is b.capture_dialog and d.target_class == "square" and d.windowModality() == Qt.WindowModality.WindowModal
    assert not b.act_capture.isEnabled()  # one capture dialog at a time
    with qtbot.waitSignal(d.frame_shown, timeout=20000):
        pass
    captured: list = []
    d.images_captured.connect(lambda cls, paths: captured.append(list(paths)))
    with qtbot.waitSignal(b.action_finished, timeout=10000):
        assert d.take_photo()  # saved on a worker; the grid follows when it is in
    shot = captured[0]
    assert len(shot) == 1 and Path(shot[0]).parent == root / "square" and Path(shot[0]).exists()
    assert b.model.rowCount() == 4 and b.selected_paths() == shot  # shown and selected in the grid
    with qtbot.waitSignal(b.action_finished, timeout=20000):
        d.start_burst(count=2, interval_ms=60, countdown_s=0)
    qtbot.waitUntil(lambda: b.model.rowCount() == 6, timeout=10000)
    assert len(_images(root, "square")) == 6 and b.counts["square"] == 6
    assert "Import into square" in b.act_undo.text()

    d.reject()
    qtbot.waitUntil(lambda: b.capture_dialog is None)
    assert b.act_capture.isEnabled()
    with qtbot.waitSignal(b.action_finished, timeout=10000):
        b.undo()  # the burst
    with qtbot.waitSignal(b.action_finished, timeout=10000):
        b.undo()  # the single shot
    assert _images(root, "square") == before and b.model.rowCount() == 3


def test_context_menus_offer_capture_into_the_class_and_find_similar(qtbot, win):
    b = win.browser
    b.select_class("circle")
    menu = b.class_tree_menu()
    capture = next(a for a in menu.actions() if a.text() == "Capture into circle…")
    assert capture.isEnabled()
    menu.deleteLater()
    b.view.setCurrentIndex(b.model.index(0))
    menu = b.grid_menu()
    assert b.act_find_similar in menu.actions() and b.act_find_similar.isEnabled()
    menu.deleteLater()


def test_augmentation_tab_follows_the_selection_and_remembers_the_strengths(qtbot, win):
    b = win.browser
    assert b.augment is None  # built only when first shown (it brings torch in)
    b.view.setCurrentIndex(b.model.index(1))
    with qtbot.waitSignal(b.side_tab_changed):
        panel = b.show_side_tab("augment")
    with qtbot.waitSignal(panel.variants_ready, timeout=30000) as ready:
        pass
    assert ready.args == [12] and panel.path == b.model.index(1).data(Qt.ItemDataRole.UserRole + 1)
    assert all(not t.pixmap().isNull() for t in panel.tiles)
    assert b.side_tabs.width() >= panel.minimumSizeHint().width()  # the pane made room

    with qtbot.waitSignal(panel.variants_ready, timeout=30000):
        b.view.setCurrentIndex(b.model.index(4))
    assert panel.path == b.selected_paths()[0]

    panel.spins["rotation"].setValue(33)
    saved = json.loads(QSettings().value(AUGMENT_SETTINGS_KEY))
    assert saved["rotation"] == 33 and "horizontal_flip" in saved
    qtbot.waitUntil(lambda: not panel.busy, timeout=30000)

    win.close()  # a new window starts with what was set
    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert w2.browser.augment_config()["rotation"] == 33
    assert w2.browser.show_side_tab("augment").spins["rotation"].value() == 33
    w2.close()


def test_find_duplicates_and_delete_one_through_the_project(qtbot, win):
    b, root = win.browser, win.root
    original = _images(root, "circle")[0]
    copy = root / "triangle" / "copy-of-circle.png"
    shutil.copyfile(original, copy)
    with qtbot.waitSignal(b.action_finished, timeout=10000):
        win.act_reload.trigger()  # the store learns about the file added behind its back
    assert b.model.entry(str(copy)) is not None

    with qtbot.waitSignal(b.side_tab_changed):
        b.act_find_duplicates.trigger()
    panel = b.similar
    with qtbot.waitSignal(panel.scan_finished, timeout=120000) as done:
        pass
    assert done.args[0] == 1  # one exact pair (the shapes are drawn at random: no other)
    pair = next(p for p in panel.visible_pairs() if p.kind == "same file")
    assert {pair.a, pair.b} == {str(original), str(copy)}

    row = panel.rows[0]
    button = row.delete_b if pair.b == str(copy) else row.delete_a
    with qtbot.waitSignal(b.action_finished, timeout=10000):
        button.click()
    assert not copy.exists()
    assert any(p.name == copy.name for p in (root / ".ponyclassifier").rglob("*"))  # in the trash
    assert b.model.entry(str(copy)) is None and panel.visible_pairs() == []  # the pair is gone

    with qtbot.waitSignal(b.action_finished, timeout=10000):
        b.undo()
    assert copy.exists() and b.model.entry(str(copy)) is not None


def test_find_similar_from_the_grid_and_click_a_result_to_select_it(qtbot, win):
    b = win.browser
    b.view.setCurrentIndex(b.model.index(0))
    query = b.selected_paths()[0]
    with qtbot.waitSignal(b.side_tab_changed):
        b.act_find_similar.trigger()
    panel = b.similar
    with qtbot.waitSignal(panel.similar_found, timeout=120000) as found:
        pass
    q, results = found.args
    assert q == query and results and all(p != query for p, _ in results)

    b.select_class("circle")  # the result may be hidden by the class filter: it is shown anyway
    target = next(p for p, _ in results if b.model.entry(p)[0] != "circle")
    thumb = next(t for t in panel.similar_scroll.widget().findChildren(_Thumb) if t.path == target)
    QTest.mouseClick(thumb, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    assert b.selected_paths() == [target]
    assert b.model.class_filter == b.model.entry(target)[0]


def test_another_project_closes_capture_and_stops_a_scan(qtbot, tmp_path, win):
    b = win.browser
    d = b.open_capture(video_file=make_video(tmp_path / "v.gif", frames=8))
    b.act_find_duplicates.trigger()
    assert b.similar.busy
    other = make_shapes_dataset(tmp_path / "other", per_class=2)
    with qtbot.waitSignal(win.project_ready, timeout=30000):
        win.open_project(other)
    assert b.capture_dialog is None and not shiboken6.isValid(d)  # stopped and deleted
    assert not b.similar.busy and b.similar.paths == [] and b.similar.visible_pairs() == []
    assert b.act_capture.isEnabled()
