"""Per-project state: another project opened leaves nothing of the last one on screen; quitting
or switching during training asks first and never leaves a junk run; a flat folder of photos
shows its pictures at once with an invitation to sort them."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from ponyclassifier.core.store import ProjectStore
from ponyclassifier.gui.main_window import PLACES, MainWindow
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import open_in


def _train(qtbot, w: MainWindow, epochs: int):
    panel = w.training
    panel.choose_recipe("scratch")
    panel.epochs.setValue(epochs)
    panel.image_size.setValue(32)
    return panel.start_training()


def _answer(qtbot, w: MainWindow, text: str) -> None:
    qtbot.waitUntil(lambda: isinstance(w.last_dialog, QMessageBox) and w.last_dialog.isVisible(), timeout=10000)
    box = w.last_dialog
    (button,) = [b for b in box.buttons() if b.text() == text]
    button.click()


def test_opening_another_project_leaves_nothing_of_the_last_one_on_screen(
        qtbot, tmp_path, gui_env, make_window, media_noise):
    a = make_shapes_dataset(tmp_path / "a", per_class=6, size=32, classes=("circle", "square"))
    b = make_shapes_dataset(tmp_path / "b", per_class=6, size=32, classes=("circle", "triangle"))
    w = make_window()
    open_in(qtbot, w, a)
    w.set_place(PLACES.index("Train"))
    panel = w.training
    with qtbot.waitSignal(panel.training_finished, timeout=120000):
        _train(qtbot, w, 2)
    assert panel.log.toPlainText() and panel.best_line.isVisible() and panel.series["epoch"] == [1.0, 2.0]
    assert panel.evaluation.classes == ["circle", "square"]
    with qtbot.waitSignal(w.predict.predictions_finished, timeout=60000):
        w.predict.set_model_path(panel.last_outcome.model_path)
        w.predict.predict_paths([next((a / "circle").iterdir())])
    assert w.predict.results

    open_in(qtbot, w, b)
    # nothing of a's run is left in the log (b's own recipe suggestion may be there already,
    # depending on how soon the glance at b's pictures ends)
    assert all("suggested for this project" in line for line in panel.log.toPlainText().splitlines())
    assert not panel.best_line.isVisible()
    assert panel.series["epoch"] == [] and panel.progress.format() == "Not started"
    assert panel.last_outcome is None and panel.status_label.text() == "Press Start training."
    assert panel.runs_view.table.rowCount() == 0  # project b has no runs
    assert w.predict.results == [] and w.predict.table_model.rowCount() == 0
    assert panel.evaluation.classes == []
    w.close()


def test_quitting_during_training_asks_and_keeps_the_best_model(qtbot, tmp_path, gui_env, make_window, media_noise):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=20, size=32, classes=("circle", "square"))
    w = make_window()
    open_in(qtbot, w, root)
    w.set_place(PLACES.index("Train"))
    panel = w.training
    with qtbot.waitSignal(panel.training_started, timeout=30000):
        run = _train(qtbot, w, 200)
    qtbot.waitUntil(lambda: len(panel.series["epoch"]) >= 1, timeout=60000)
    # quit: asked; "Keep training" changes nothing
    assert not w.close()
    _answer(qtbot, w, "Keep training")
    assert panel.is_training and w.isVisible()
    # opening another project asks too
    other = make_shapes_dataset(tmp_path / "other", per_class=2, size=32, classes=("circle", "square"))
    assert not w.open_project(str(other))
    _answer(qtbot, w, "Keep training")
    assert panel.is_training and w.project == str(root)
    # quit, "Stop and keep the best model": the run stops, is recorded as stopped with its model
    assert not w.close()
    with qtbot.waitSignal(panel.training_finished, timeout=60000):
        _answer(qtbot, w, "Stop and keep the best model")
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    with ProjectStore(root, read_only=True) as s:
        (recorded,) = s.runs()
    assert recorded.id == run.run_id and recorded.status == "stopped"
    assert recorded.metrics["epochs_run"] >= 1 and Path(recorded.model_path).is_file()


def test_a_run_stopped_before_its_first_epoch_leaves_no_run_behind(qtbot, tmp_path, gui_env, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=20, size=32, classes=("circle", "square"))
    w = make_window()
    open_in(qtbot, w, root)
    panel = w.training
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as done:
        run = _train(qtbot, w, 200)
        assert run is not None and run.run_id is not None
        panel.stop_training()  # before the first batch
    outcome = done.args[0]
    assert outcome.status == "stopped", outcome.error
    assert outcome.epochs_run == 0 and outcome.run_id is None
    with ProjectStore(root, read_only=True) as s:
        assert s.runs() == []
    assert panel.runs_view.table.rowCount() == 0
    w.close()


def test_a_flat_folder_of_photos_shows_its_pictures_and_invites_sorting(qtbot, tmp_path, gui_env, make_window):
    shapes = make_shapes_dataset(tmp_path / "shapes", per_class=5, size=32, classes=("circle", "square", "triangle"))
    flat = tmp_path / "holiday"
    flat.mkdir()
    for i, p in enumerate(sorted(shapes.rglob("*.png"))):
        shutil.copy(p, flat / f"photo-{i:02d}.png")
    w = make_window()
    open_in(qtbot, w, flat)
    br = w.browser
    assert br.classes == [] and br.model.file_count() == 15
    assert br.grid_stack.currentWidget() is br.view and br.model.rowCount() == 15  # shown at once, under All
    assert br.sort_hint.isVisible() and "15 pictures, not sorted into classes yet" in br.sort_hint.text()
    assert "New Class" in br.sort_hint.text() and "1–9" in br.sort_hint.text()
    assert "not sorted into classes yet" in w.count_label.text()
    # the Train place says what its Auto settings need instead of looking at nothing for ever
    assert "two or more classes" in w.training.form.plan_label.text()
    # make a class and sort two pictures into it with its number key
    with qtbot.waitSignal(br.action_finished, timeout=20000):
        assert br.create_class("beach")
    br.select_class(None)  # back to every picture
    br.select_paths([str(flat / "photo-00.png"), str(flat / "photo-01.png")])
    with qtbot.waitSignal(br.action_finished, timeout=20000):
        assert br.move_selected_to_number(1)
    assert (flat / "beach" / "photo-00.png").exists()
    assert "13 pictures in the project folder itself" in br.sort_hint.text() and br.sort_hint.isVisible()
    w.close()


def test_a_project_opened_through_a_symlink_keeps_its_store(qtbot, tmp_path, gui_env, make_window):
    """The folder is listed as the user named it and the store resolves its root: the listing
    must still count (a mismatch once emptied the store of every row, split and status)."""
    real = make_shapes_dataset(tmp_path / "real", per_class=4, size=32, classes=("circle", "square"))
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    w = make_window()
    open_in(qtbot, w, real)
    w.browser.make_splits(0.25, 3)
    qtbot.waitUntil(lambda: not w.browser.busy, timeout=20000)
    before = {r["relpath"]: r["split"] for r in w.session.store.images()}
    open_in(qtbot, w, link)
    assert w.browser.model.file_count() == 8
    assert {r["relpath"]: r["split"] for r in w.session.store.images()} == before and len(before) == 8


def test_opening_the_same_project_again_while_its_store_opens_does_not_lock_it_out(
        qtbot, tmp_path, gui_env, make_window, monkeypatch):
    """A store still opening for a project left holds its lock until its result is back; the
    next store for the same folder waits for it instead of opening read-only."""
    import time

    from ponyclassifier.gui import projects

    a = make_shapes_dataset(tmp_path / "a", per_class=4, size=32, classes=("circle", "square"))
    b = make_shapes_dataset(tmp_path / "b", per_class=2, size=32, classes=("circle", "square"))
    real_job, calls = projects.open_project_job, []

    def slow_first(root, listing=None):
        calls.append(root)
        result = real_job(root, listing)
        if len(calls) == 1:
            time.sleep(1.0)  # the first store holds a's lock a while after it opened
        return result

    monkeypatch.setattr(projects, "open_project_job", slow_first)
    w = make_window()
    w.open_project(str(a))
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=20000)
    w.open_project(str(b))
    w.open_project(str(a))  # a, b, a again: the first store of a is not back yet
    qtbot.waitUntil(lambda: w.session.project is not None and not w.browser.busy, timeout=30000)
    assert w.session.root == str(a) and not w.session.read_only and w.browser.can_edit
    assert len(calls) == 2  # b's store was never opened: it was not wanted any more when a's came back


def test_switching_projects_during_training_shows_nothing_of_the_last_run(
        qtbot, tmp_path, gui_env, make_window):
    """The run stopped by the switch saves its best model in its own project; Explain and
    Predict are not pointed at it, and the new project cannot be trained on before its store
    is open."""
    a = make_shapes_dataset(tmp_path / "a", per_class=10, size=32, classes=("circle", "square"))
    b = make_shapes_dataset(tmp_path / "b", per_class=3, size=32, classes=("circle", "square"))
    w = make_window()
    open_in(qtbot, w, a)
    w.set_place(PLACES.index("Train"))
    assert _train(qtbot, w, 200) is not None
    qtbot.waitUntil(lambda: len(w.training.live.series["epoch"]) >= 1, timeout=120000)
    wanted = []
    w.models.wanted.connect(lambda place, path: wanted.append(path))
    assert not w.open_project(str(b))
    _answer(qtbot, w, "Stop and keep the best model")
    assert w.session.root == str(b)
    assert not w.training.start_button.isEnabled() or w.session.project is not None
    qtbot.waitUntil(lambda: w.session.project is not None, timeout=30000)
    assert all(p is None for p in wanted)  # b has no model yet: the ImageNet network, never a's
    assert w.models.state("Predict").path is None
    assert w.training.last_outcome is None and w.training.start_button.isEnabled()
    runs = ProjectStore(a, read_only=True)
    try:
        assert [r.status for r in runs.runs()] == ["stopped"]
    finally:
        runs.close()


def test_quitting_while_the_camera_view_saves_a_picture_keeps_the_picture(
        qtbot, tmp_path, gui_env, make_window, media_noise, monkeypatch):
    """The project is let go while every place still listens, so the save still writing to it
    keeps it open (and its temporary folder) until the picture is in the class folder."""
    import time

    from PySide6.QtCore import QThreadPool
    from PySide6.QtGui import QColor, QImage

    import ponyclassifier.gui.predict.live as live_mod

    a = make_shapes_dataset(tmp_path / "a", per_class=4, size=32, classes=("circle", "square"))
    real_save, seen = live_mod.save_into_project, {}

    def slow_save(project, *args):
        time.sleep(1.0)
        seen["open"] = project.store.conn is not None
        return real_save(project, *args)

    monkeypatch.setattr(live_mod, "save_into_project", slow_save)
    w = make_window()
    open_in(qtbot, w, a)
    w.set_place(PLACES.index("Predict"))
    w.predict.tabs.setCurrentIndex(w.predict.live_tab_index)
    live = w.live_host.ensure()
    frame = QImage(64, 64, QImage.Format.Format_RGB888)
    frame.fill(QColor("red"))
    live.feed_frame(frame)
    qtbot.wait(300)
    assert live.save_frame("circle")
    project = w.session.project
    w.close()
    assert project.store.conn is not None  # still open: the save writes to it
    QThreadPool.globalInstance().waitForDone(20000)
    qtbot.waitUntil(lambda: project.store.conn is None, timeout=10000)  # closed once the save ended
    assert seen == {"open": True}
    assert len(list((a / "circle").iterdir())) == 5
