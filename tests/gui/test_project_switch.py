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
    assert panel.log.toPlainText() == "" and not panel.best_line.isVisible()
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
