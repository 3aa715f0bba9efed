"""The main window: first run builds the demo, places, shortcuts, projects, settings and
the error hook (RELIABILITY case 23)."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtTest import QTest

from ponyclassifier.gui import projects
from ponyclassifier.gui.app import ErrorReporter
from ponyclassifier.gui.main_window import PLACES
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import open_in


def test_first_run_creates_and_opens_the_demo(qtbot, gui_env, make_window):
    assert projects.recent_projects() == []
    w = make_window(None)
    with qtbot.waitSignal(w.browser.listing_finished, timeout=60000) as done:
        w.start()
    assert done.args == [6 * 4]
    demo = gui_env / "demo-ponies"
    assert w.project == str(demo)
    assert len(w.browser.classes) == 6 and set(w.browser.counts.values()) == {4}
    assert not (gui_env / "demo-ponies.partial").exists()
    assert projects.recent_projects() == [str(demo)]
    assert "24 images in 6 classes" in w.count_label.text()
    assert str(demo) in w.path_label.text()


def test_next_run_reopens_the_last_project(qtbot, tmp_path, gui_env, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    projects.add_recent_project(str(root))
    w = make_window(None)
    with qtbot.waitSignal(w.browser.listing_finished, timeout=10000):
        w.start()
    assert w.project == str(root)
    assert not (gui_env / "demo-ponies").exists()


def test_recent_projects_keep_eight_newest_first(tmp_path):
    for i in range(10):
        projects.add_recent_project(str(tmp_path / f"p{i}"))
    projects.add_recent_project(str(tmp_path / "p5"))
    got = projects.recent_projects()
    assert len(got) == 8 and got[0].endswith("p5") and got[1].endswith("p9")
    assert len(set(got)) == 8


def test_new_project_creates_class_folders(qtbot, tmp_path, monkeypatch, make_window):
    w = make_window(None)
    warned = []
    monkeypatch.setattr("ponyclassifier.gui.main_window.QMessageBox.warning", lambda *a: warned.append(a[2]))
    target = tmp_path / "mine"
    target.mkdir()
    assert not w.create_project(str(target), ["cat", "a/b"])
    assert warned and "cannot contain" in warned[-1]
    with qtbot.waitSignal(w.browser.listing_finished, timeout=10000):
        assert w.create_project(str(target), ["cat", "dog"])
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == ["cat", "dog"]
    assert w.browser.classes == ["cat", "dog"]
    assert "No images yet" in w.browser.empty_label.text()


def test_ctrl_1_to_4_switch_places(qtbot, make_window):
    w = make_window(None)
    w.activateWindow()
    qtbot.waitExposed(w)
    for i, name in reversed(list(enumerate(PLACES))):
        QTest.keyClick(w.windowHandle(), getattr(Qt.Key, f"Key_{i + 1}"), Qt.KeyboardModifier.ControlModifier)
        assert w.place() == name
        assert w.sidebar.currentRow() == i
    w.sidebar.setCurrentRow(2)
    assert w.place() == "Explain"


def test_explain_and_predict_follow_the_model_chosen(qtbot, trained_shapes, make_window, media_noise):
    """A run's model opened from the Train place, or a newly trained one, is what Explain and
    Predict show; the live camera view gets its own copy of Predict's model."""
    tiny = trained_shapes(per_class=6, size=24, epochs=1)
    path, data = str(tiny.path), tiny.data
    w = make_window(None)
    open_in(qtbot, w, data)
    with qtbot.waitSignal(w.predict.model_loaded, timeout=60000):
        w.training.runs_view.open_model_requested.emit(path, "Predict")
    assert w.place() == "Predict" and w.predict.loaded.path == path
    assert w.live is None  # the camera view (QtMultimedia) is built only when its tab is first shown
    assert w.live_host._model[0] is w.predict.loaded.model  # no copy made for a tab nobody opened
    assert w.live_host.ensure() is not None and w.live is not None
    live_model = w.live._model
    assert live_model is not None and live_model is not w.predict.loaded.model  # the view's own copy
    assert live_model.classes == w.predict.loaded.model.classes == ["circle", "square", "triangle"]
    # A model saved by training becomes the one both places show, Explain when it is opened.
    w.training.model_saved.emit(path)
    with qtbot.waitSignal(w.explain.model_loaded, timeout=60000):
        w.set_place(PLACES.index("Explain"))
    assert w.place() == "Explain"
    assert sorted(w.explain.samples) == sorted((r[0], r[1]) for r in w.browser.model.rows())
    w.set_place(0)
    with qtbot.assertNotEmitted(w.explain.model_loaded, wait=500):
        w.set_place(PLACES.index("Explain"))  # the same model again: nothing reloads
    # A relabelled image is listed under its new class the next time Explain is shown.
    w.set_place(0)
    moved = next(p for p, c in w.explain.samples if c == "circle")
    with qtbot.waitSignal(w.browser.counts_changed, timeout=30000):
        w.browser.relabel_paths([moved], "square")
    qtbot.waitUntil(lambda: not w.browser.busy, timeout=30000)
    w.set_place(PLACES.index("Explain"))
    assert not any(p == moved for p, _ in w.explain.samples)
    assert any(c == "square" and os.path.basename(p) == os.path.basename(moved) for p, c in w.explain.samples)


def test_window_state_is_saved_and_restored(qtbot, tmp_path, make_window):
    w = make_window(None)
    w.resize(761, 543)  # the offscreen screen is 800 x 600: restoreGeometry clamps to it
    w.set_place(2)
    w.browser.splitter.setSizes([300, 400, 300])
    sizes = w.browser.splitter.sizes()
    w.close()
    assert QSettings().value("mainWindow/geometry") is not None
    w2 = make_window(None)
    assert (w2.width(), w2.height()) == (761, 543)
    assert w2.place() == "Explain"
    # the splitter comes back close to where it was (Qt re-spreads a few pixels on relayout)
    assert all(abs(a - b) <= 40 for a, b in zip(w2.browser.splitter.sizes(), sizes))


class _Boom(QObject):
    fired = Signal()

    def raise_in_slot(self):
        raise RuntimeError("boom from a slot")


@pytest.mark.qt_no_exception_capture
def test_exception_in_a_slot_is_logged_and_shown(qtbot, gui_env):
    reporter = ErrorReporter().install()
    try:
        boom = _Boom()
        with qtbot.waitSignal(reporter.error_shown, timeout=5000) as shown:
            QTimer.singleShot(0, boom.raise_in_slot)  # called by Qt's event loop, like any slot
        assert shown.args == ["RuntimeError: boom from a slot"]
        box = reporter.last_dialog
        assert box is not None and box.isVisible()
        assert "boom from a slot" in box.detailedText() and "raise_in_slot" in box.detailedText()
        log = (gui_env / "ponyclassifier.log").read_text()
        assert "RuntimeError: boom from a slot" in log
        box.close()
        # the app is still alive and handles the next error too
        with qtbot.waitSignal(reporter.error_shown, timeout=5000):
            boom.fired.connect(boom.raise_in_slot)
            QTimer.singleShot(0, boom.fired.emit)
        reporter.last_dialog.close()
    finally:
        reporter.uninstall()
