"""Labelling in the Dataset place, driven through the real main window: every step is
checked against the folder on disk AND the project store (RELIABILITY cases 15, 16, 18, 19)."""

from __future__ import annotations

import gc
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtTest import QTest

from ponyclassifier.core.project import Project
from ponyclassifier.core.store import STORE_DIR, store_path
from ponyclassifier.gui.dataset.browser import COL_COUNT, COL_KEY, PathRole, QtDatasetBrowser
from ponyclassifier.gui.main_window import MainWindow
from tests.conftest import make_shapes_dataset

from ..latency import StallMeter

MAX_STALL_MS = 100
CTRL = Qt.KeyboardModifier.ControlModifier


# ---------------------------------------------------------------------------- helpers
def _window(make_window, qtbot, root: Path) -> MainWindow:
    w = make_window(1200, 800)
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.project_ready, timeout=60000):
        w.open_project(root)
    qtbot.waitUntil(lambda: not w.browser.listing, timeout=20000)
    w.activateWindow()
    w.browser.view.setFocus()
    return w


def _do(qtbot, b: QtDatasetBrowser, fn, *args):
    with qtbot.waitSignal(b.action_finished, timeout=30000) as sig:
        assert fn(*args) is not False
    return sig.args[0]


def _key(qtbot, b: QtDatasetBrowser, key, mods=Qt.KeyboardModifier.NoModifier):
    with qtbot.waitSignal(b.action_finished, timeout=30000) as sig:
        QTest.keyClick(b.view, key, mods)
    return sig.args[0]


def _disk(root: Path) -> dict[str, str]:
    """relpath -> class for every file in a class folder (the store's folder left out)."""
    out = {}
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith((".", "_")):
            for f in d.rglob("*"):
                if f.is_file():
                    out[f.relative_to(root).as_posix()] = d.name
    return out


def _store(b: QtDatasetBrowser) -> dict[str, str]:
    return {r["relpath"]: r["class"] for r in b.project.store.images()}


def _model(b: QtDatasetBrowser, root: Path) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in b.model._entries}


def _agree(b: QtDatasetBrowser, root: Path) -> dict[str, str]:
    disk = _disk(root)
    assert _store(b) == disk
    assert _model(b, root) == set(disk)
    assert b.counts == {c: sum(1 for v in disk.values() if v == c) for c in b.classes}
    return disk


def _select(b: QtDatasetBrowser, cls: str | None, rows=(0,)) -> list[str]:
    b.select_class(cls)
    paths = [b.model.index(r).data(PathRole) for r in rows]
    b.select_paths(paths)
    return paths


def _png(path: Path, color=(200, 60, 40), size=(24, 18)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def _drop_urls(widget, pos, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(os.fspath(p)) for p in paths])
    _drop(widget, pos, mime)


def _drop(widget, pos, mime: QMimeData) -> None:
    ev = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(ev)


def _class_pos(b: QtDatasetBrowser, cls: str):
    return b.class_tree.visualItemRect(b.class_item(cls)).center()


# ---------------------------------------------------------------------------- tests
def test_open_records_splits_and_filters_by_split(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=10)
    w = _window(make_window, qtbot, root)
    b = w.browser
    _agree(b, root)
    rows = b.project.store.images()
    assert all(r["split"] in ("train", "val") for r in rows)
    assert sum(r["split"] == "val" for r in rows) == 3 * 2  # 20% of each class
    assert "train 8 · val 2" in b.class_item("circle").toolTip(COL_COUNT)
    assert [b.class_item(c).text(COL_KEY) for c in ("circle", "square", "triangle")] == ["1", "2", "3"]
    b.split_buttons[1]["val"].click()
    assert b.model.rowCount() == 6 and b.model.split_filter == "val"
    assert b.class_tree.headerItem().text(COL_COUNT) == "Val"
    assert b.class_item("square").text(COL_COUNT) == "2"
    b.select_class("square")
    assert b.model.rowCount() == 2 and "square · val" in b.grid_title.text()
    b.status_buttons[1]["unlabelled"].click()
    assert b.model.rowCount() == 0
    b.status_buttons[1][None].click()
    b.split_buttons[1][None].click()
    assert b.model.rowCount() == 10
    # reopening keeps the recorded splits
    before = {r["relpath"]: r["split"] for r in rows}
    w.close()
    w2 = _window(make_window, qtbot, root)
    assert {r["relpath"]: r["split"] for r in w2.browser.project.store.images()} == before


def test_drop_files_from_the_desktop_onto_a_class(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    src = tmp_path / "desktop"
    src.mkdir()
    good = _png(src / "pony.png")
    uni = _png(src / "ポニー ñ.png", (20, 160, 90))
    text = src / "notes.png"
    text.write_text("not a picture")
    w = _window(make_window, qtbot, root)
    b = w.browser
    with qtbot.waitSignal(b.import_finished, timeout=30000) as sig:
        _drop_urls(b.class_tree, _class_pos(b, "square"), [good, uni, text])
    result = sig.args[0]
    assert result["imported"] == 2 and not result["cancelled"]
    assert [Path(s).name for s, r in result["skipped"]] == ["notes.png"]
    assert result["skipped"][0][1].startswith("unsupported file")
    disk = _agree(b, root)
    assert disk["square/pony.png"] == "square" and disk["square/ポニー ñ.png"] == "square"
    assert good.exists() and uni.exists()  # imported as copies
    report = b.last_import_report
    assert report is not None and report.isVisible()
    assert report.table.topLevelItem(0).text(1).startswith("unsupported file")
    report.close()
    # dropped again: collisions get new names, nothing is overwritten (case 19)
    b.select_class("square")
    said: list[str] = []
    b.status_message.connect(lambda text, ms: said.append(text))
    with qtbot.waitSignal(b.import_finished, timeout=30000):
        _drop_urls(b.view, b.view.rect().center(), [good])
    disk = _agree(b, root)
    assert "square/pony (2).png" in disk and "square/pony.png" in disk
    assert b.model.row_of(str(root / "square" / "pony (2).png")) is not None
    # (what the status bar shows by now also depends on where earlier tests left the
    # mouse pointer: a toolbar button's status tip replaces it; so read what was said)
    assert any("Undo" in text for text in said), said
    # the import is one undoable step: undo takes the copies to the trash
    assert b.act_undo.text() == "&Undo Import into square"
    _do(qtbot, b, b.undo)
    assert "square/pony (2).png" not in _agree(b, root)


def test_number_keys_relabel_then_undo_and_redo(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=4)
    w = _window(make_window, qtbot, root)
    b = w.browser
    (path,) = _select(b, "circle", rows=(1,))
    name = Path(path).name
    assert _key(qtbot, b, Qt.Key.Key_2) == "Move to square"
    disk = _agree(b, root)
    assert disk[f"square/{name}"] == "square" and f"circle/{name}" not in disk
    # the moved image left the circle view; the one now in its place is selected
    assert b.model.rowCount() == 3
    assert b.view.currentIndex().row() == 1 and len(b.selected_paths()) == 1
    assert b.act_undo.text() == "&Undo Move to square"
    assert _key(qtbot, b, Qt.Key.Key_Z, CTRL) == "Move to square"
    assert _agree(b, root)[f"circle/{name}"] == "circle"
    assert b.act_redo.text() == "&Redo Move to square"
    _key(qtbot, b, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert _agree(b, root)[f"square/{name}"] == "square"
    # a number without a class does nothing but say so
    b.select_paths([b.model.index(0).data(PathRole)])
    QTest.keyClick(b.view, Qt.Key.Key_9)
    assert "no class 9" in w.statusBar().currentMessage()


def test_several_images_move_with_the_context_menu_path_and_keep_the_view(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=60)
    w = _window(make_window, qtbot, root)
    b = w.browser
    b.select_class(None)  # all images: moved files stay in view and stay selected
    b.view.scrollTo(b.model.index(30))
    qtbot.wait(20)
    scroll = b.view.verticalScrollBar().value()
    paths = _select(b, None, rows=(30, 31, 32))
    _do(qtbot, b, b.move_selected_to, "triangle")
    disk = _agree(b, root)
    moved = [f"triangle/{Path(p).name}" for p in paths]
    assert all(disk[m] == "triangle" for m in moved)
    assert b.selected_paths() == sorted(str(root / m) for m in moved)
    assert abs(b.view.verticalScrollBar().value() - scroll) < 400


def test_drag_images_from_the_grid_onto_a_class(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    # a name that exists in the target too: the moved file gets a new name (case 19)
    _png(root / "circle" / "same.png")
    _png(root / "square" / "same.png", (10, 10, 200))
    w = _window(make_window, qtbot, root)
    b = w.browser
    b.select_class("circle")
    same = str(root / "circle" / "same.png")
    b.select_paths([same])
    mime = b.model.mimeData(b.view.selectionModel().selectedIndexes())
    assert mime.urls()[0].toLocalFile() == same
    with qtbot.waitSignal(b.action_finished, timeout=30000):
        _drop(b.class_tree, _class_pos(b, "square"), mime)
    disk = _agree(b, root)
    assert disk["square/same.png"] == "square" and disk["square/same (2).png"] == "square"
    assert Image.open(root / "square" / "same.png").getpixel((0, 0)) == (10, 10, 200)  # not overwritten
    # our own drag dropped back on the grid is not an import
    _drop(b.view, b.view.rect().center(), mime)
    assert b._action is None


def test_delete_key_moves_to_the_trash_and_undo_brings_it_back(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    w = _window(make_window, qtbot, root)
    b = w.browser
    paths = _select(b, "triangle", rows=(0, 2))
    assert _key(qtbot, b, Qt.Key.Key_Delete) == "Delete"
    assert w.statusBar().currentMessage() == "Moved 2 images to the trash — Undo (Ctrl+Z)"
    disk = _agree(b, root)
    assert not any(p.startswith("triangle/") and p.endswith(("000.png", "002.png")) for p in disk)
    trashed = sorted(f.name for f in (root / STORE_DIR / "trash").rglob("*.png"))
    assert trashed == sorted(Path(p).name for p in paths)
    _key(qtbot, b, Qt.Key.Key_Z, CTRL)
    assert all(Path(p).exists() for p in paths)
    _agree(b, root)


def test_paste_an_image_from_the_clipboard(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    w = _window(make_window, qtbot, root)
    b = w.browser
    b.select_class("circle")
    img = QImage(30, 20, QImage.Format.Format_RGB32)
    img.fill(Qt.GlobalColor.magenta)
    QGuiApplication.clipboard().setImage(img)
    _key(qtbot, b, Qt.Key.Key_V, CTRL)
    _key(qtbot, b, Qt.Key.Key_V, CTRL)  # same second, same name: gets a new one
    disk = _agree(b, root)
    pasted = sorted(p for p in disk if "pasted-" in p)
    assert len(pasted) == 2 and all(p.startswith("circle/") for p in pasted)
    im = Image.open(root / pasted[0])
    assert im.size == (30, 20) and im.convert("RGB").getpixel((3, 3)) == (255, 0, 255)
    if len({p.split(" (")[0].removesuffix(".png") for p in pasted}) == 1:
        assert any(p.endswith(" (2).png") for p in pasted)
    newest = max(pasted, key=lambda p: (root / p).stat().st_mtime_ns)
    assert b.selected_paths() == [str(root / newest)]  # the pasted image is shown
    _do(qtbot, b, b.undo)
    assert len([p for p in _agree(b, root) if "pasted-" in p]) == 1


def test_create_rename_merge_and_delete_classes(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    w = _window(make_window, qtbot, root)
    b = w.browser
    _do(qtbot, b, b.create_class, "hexagon")
    assert (root / "hexagon").is_dir() and b.classes[1] == "hexagon" and b.model.class_filter == "hexagon"
    assert "Drag pictures" in b.empty_label.text() or b.model.rowCount() == 0
    b.select_class("square")
    assert _do(qtbot, b, b.rename_class, "square", "box") == "Rename square to box"
    disk = _agree(b, root)
    assert not (root / "square").exists() and sum(v == "box" for v in disk.values()) == 3
    assert b.model.class_filter == "box" and b.model.rowCount() == 3  # the view followed the class
    assert _do(qtbot, b, b.merge_classes, ["box", "triangle"], "circle") == "Merge into circle"
    disk = _agree(b, root)
    assert set(disk.values()) == {"circle"} and len(disk) == 9
    assert b.classes == ["circle", "hexagon"] and b.model.class_filter == "circle"
    assert _do(qtbot, b, b.delete_class, "circle") == "Delete class circle"
    assert _agree(b, root) == {} and b.classes == ["hexagon"] and b.model.class_filter is None
    # undo, one step at a time, back to where we started
    for _ in range(3):
        _do(qtbot, b, b.undo)
    disk = _agree(b, root)
    assert sorted(set(disk.values())) == ["circle", "square", "triangle"] and len(disk) == 9
    assert b.classes == ["circle", "hexagon", "square", "triangle"]
    # a bad name is refused by the project and nothing changes
    with qtbot.waitSignal(b.action_failed, timeout=10000):
        b.create_class(".hidden")
    assert "not a usable class name" in b.banner.text and not (root / ".hidden").exists()


def test_open_shows_rolled_back_operations(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    src, dst = root / "circle" / "circle_000.png", root / "square" / "moved.png"
    p = Project(root)
    p.sync()
    p._journal_begin("relabel", [(str(src), str(dst))])  # killed after moving, before the commit
    os.replace(src, dst)
    p.close()
    w = _window(make_window, qtbot, root)
    assert src.exists() and not dst.exists()
    assert "interrupted relabel was rolled back" in w.browser.banner.text
    _agree(w.browser, root)


def test_second_window_gets_the_project_read_only(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    before = _disk(root)
    other = Project(root)  # another window holds the project
    try:
        w = _window(make_window, qtbot, root)
        b = w.browser
        assert b.project.read_only and "another PonyClassifier window" in b.banner.text
        assert not b.act_delete.isEnabled() and not b.act_new_class.isEnabled()
        _select(b, "circle")
        QTest.keyClick(b.view, Qt.Key.Key_2)
        assert "read-only" in w.statusBar().currentMessage()
        assert _disk(root) == before  # nothing moved
        assert b.model.file_count() == 6  # still shown from the folder listing
    finally:
        other.close()


def test_corrupt_store_is_reported_and_left_untouched(qtbot, tmp_path, make_window):
    """RELIABILITY case 18."""
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    store = store_path(root)
    store.parent.mkdir()
    junk = b"this is not SQLite" * 100
    store.write_bytes(junk)
    w = make_window()
    with qtbot.waitSignal(w.project_failed, timeout=60000) as sig:
        w.open_project(root)
    assert "left untouched" in sig.args[0]
    box = w.last_dialog
    assert box is not None and box.isVisible() and str(root) in box.text()
    assert "Nothing in the folder was changed" in box.informativeText()
    qtbot.waitUntil(lambda: not w.browser.listing, timeout=10000)
    assert w.project is None and w.browser.project is None and w.browser.model.rowCount() == 0
    assert "could not be opened" in w.browser.empty_label.text()
    assert store.read_bytes() == junk
    box.close()


def test_dropping_1000_files_keeps_the_app_responsive(qtbot, tmp_path, make_window):
    """RELIABILITY case 15: 1,000 files, some unreadable, vanished or non-ASCII-named."""
    root = make_shapes_dataset(tmp_path / "shapes", per_class=5)
    src = tmp_path / "drop"
    src.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (48, 36), (90, 140, 200)).save(buf, format="PNG")
    data = buf.getvalue()
    files = []
    for i in range(980):
        name = f"ポニー_{i:04d}.png" if i % 10 == 0 else f"img_{i:04d}.png"
        (src / name).write_bytes(data)
        files.append(src / name)
    for i in range(8):  # text renamed .png
        (src / f"text_{i}.png").write_text("hello")
        files.append(src / f"text_{i}.png")
    for i in range(6):  # vanished: links to files that are gone
        (src / f"gone_{i}.png").symlink_to(src / f"missing_{i}.png")
        files.append(src / f"gone_{i}.png")
    for i in range(6):  # unreadable: chmod 000 (root reads anyway: then an empty file stands in)
        f = src / f"locked_{i}.png"
        f.write_bytes(data)
        f.chmod(0)
        if os.geteuid() == 0:
            f.chmod(0o644)
            f.write_bytes(b"")
        files.append(f)
    folder = tmp_path / "a folder.png"  # a folder named like an image: its images are imported
    folder.mkdir()
    (folder / "inner.png").write_bytes(data)
    assert len(files) == 1000
    w = _window(make_window, qtbot, root)
    b = w.browser
    b.select_class("circle")
    gc.collect()  # a full collection left over from earlier tests is not this drop's stall
    meter = StallMeter()
    meter.start()
    progress = []
    t0 = time.perf_counter()
    with qtbot.waitSignal(b.import_finished, timeout=120000) as sig:
        b.import_bar.valueChanged.connect(progress.append)
        _drop_urls(b.class_tree, _class_pos(b, "circle"), [*files, folder])
        assert b.import_panel.isVisible()
    took = time.perf_counter() - t0
    qtbot.wait(100)  # the rows arrive in the grid right after
    meter.timer.stop()
    result = sig.args[0]
    reasons = {Path(s).name: r for s, r in result["skipped"]}
    print(f"\n1,000 dropped files: {result['imported']} imported, {len(reasons)} skipped in {took:.1f} s; "
          f"max event-loop stall {meter.max_gap * 1000:.0f} ms")
    assert result["imported"] == 980 + 1
    assert len(reasons) == 20
    assert all("unsupported" in reasons[f"text_{i}.png"] for i in range(8))
    assert all("not found" in reasons[f"gone_{i}.png"] for i in range(6))
    assert all(f"locked_{i}.png" in reasons for i in range(6))
    assert len(progress) > 3 and not b.import_panel.isVisible()
    disk = _agree(b, root)
    assert sum(v == "circle" for v in disk.values()) == 5 + 981
    assert "circle/ポニー_0000.png" in disk
    assert b.model.rowCount() == 5 + 981 and b.last_import_report.table.topLevelItemCount() == 20
    b.last_import_report.close()
    assert meter.max_gap * 1000 < MAX_STALL_MS, f"event loop stalled {meter.max_gap * 1000:.0f} ms"


def test_cancel_keeps_what_was_imported(qtbot, tmp_path, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    src = tmp_path / "drop"
    src.mkdir()
    files = [_png(src / f"p{i:03d}.png") for i in range(300)]
    w = _window(make_window, qtbot, root)
    b = w.browser
    b.import_bar.valueChanged.connect(lambda v: v >= 5 and b.cancel_import())
    with qtbot.waitSignal(b.import_finished, timeout=60000) as sig:
        assert b.import_files([str(f) for f in files], "square")
    result = sig.args[0]
    assert result["cancelled"] and 0 < result["imported"] < 300
    disk = _agree(b, root)
    assert sum(v == "square" for v in disk.values()) == 2 + result["imported"]
    b.last_import_report.close()


@pytest.mark.parametrize("place", [1])
def test_delete_key_does_nothing_on_other_places(qtbot, tmp_path, place, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    w = _window(make_window, qtbot, root)
    _select(w.browser, "circle")
    w.set_place(place)
    w.sidebar.setFocus()
    QTest.keyClick(w.windowHandle(), Qt.Key.Key_Delete)
    qtbot.wait(50)
    assert len(_disk(root)) == 6
