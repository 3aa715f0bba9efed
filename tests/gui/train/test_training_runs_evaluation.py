"""The Evaluation tab for any recorded run, not only the one just trained: a run from an
earlier session (its stored metrics have no per-image predictions) is evaluated from its
model file on the project's validation split, on a worker, and clicking a confusion-matrix
cell then shows exactly the validation images of that true and predicted class."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThreadPool

from ponyclassifier.core.dataset import scan_dataset, stratified_split
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.predict import Predictor
from ponyclassifier.core.store import ProjectStore
from ponyclassifier.gui.train.thread import models_dir
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import make_panel


def record_run(store: ProjectStore, root: Path, config: TrainConfig, result) -> int:
    """What a training in an earlier session left: the store row and the model file, but
    only the compact metrics (no per-image predictions)."""
    settings = result.model.training | {"dataset": str(root)}
    run_id = store.start_run(config.recipe, settings, "cpu")
    path = models_dir(root) / f"run-{run_id}.pony"
    path.parent.mkdir(parents=True, exist_ok=True)
    result.model.save(path)
    store.finish_run(run_id, status="finished", seconds=1.0, model_path=str(path),
                     metrics=dict(result.model.metrics) | {"epochs_run": result.epochs_run})
    return run_id


@pytest.fixture
def earlier_session(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=12, size=32)
    store = ProjectStore(root)
    runs = []
    for seed, epochs in ((1, 1), (2, 3)):
        cfg = TrainConfig(recipe="scratch", epochs=epochs, batch_size=8, lr=3e-3, augment=None, device="cpu",
                          seed=seed, val_split=0.2, refit=False)
        runs.append(record_run(store, root, cfg, Trainer(cfg).fit(root)))
    yield root, store, runs
    store.close()


@pytest.fixture
def panel(qtbot, earlier_session):
    root, store, _ = earlier_session
    _win, panel = make_panel(qtbot, root, store)
    yield panel
    assert panel.shutdown(30000)


def row_of(rv, run_id: int) -> int:
    return next(r for r in range(rv.table.rowCount())
                if rv.table.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) == run_id)


def test_any_run_shows_the_images_behind_each_cell(qtbot, panel, earlier_session):
    root, store, (first, second) = earlier_session
    rv, ev = panel.runs_view, panel.evaluation
    stored = store.runs()[0].metrics["validation"]
    assert "predictions" not in store.runs()[0].metrics

    # select the first run in the table and ask for its evaluation, as a user would
    rv.select_runs([first])
    assert rv.evaluate_button.isEnabled()
    with qtbot.waitSignal(panel.evaluation_ready, timeout=60000) as ready:
        qtbot.mouseClick(rv.evaluate_button, Qt.MouseButton.LeftButton)
        assert panel.tabs.currentWidget() is ev
        assert "Evaluating run" in ev.cell_title.text()  # the stored scores show meanwhile
        assert ev.validation == stored
    assert ready.args == [first]
    assert f"Run {first}" in ev.scores.text()

    # the same split as the training used: the fresh matrix is the stored one
    cm = ev.validation["confusion_matrix"]
    assert cm == stored["confusion_matrix"]
    scan = scan_dataset(root, image_size=32)
    _, val_idx = stratified_split(scan, 0.2, 1)
    val_paths = {str(scan.samples[i].path) for i in val_idx}
    predictor = Predictor.from_file(store.runs()[0].model_path, device="cpu")
    predicted = {p.path: p.top[0][0] for p in predictor.predict_paths(sorted(val_paths))}
    classes = ev.classes
    seen: set[str] = set()
    for r in range(len(classes)):
        for c in range(len(classes)):
            item = ev.matrix.item(r, c)
            qtbot.mouseClick(ev.matrix.viewport(), Qt.MouseButton.LeftButton,
                             pos=ev.matrix.visualItemRect(item).center())
            shown = ev.shown_paths()
            assert len(shown) == cm[r][c] == int(item.text())
            for p in shown:
                assert Path(p).parent.name == classes[r] and predicted[p] == classes[c]
            seen.update(shown)
    assert seen == val_paths
    qtbot.waitUntil(lambda: not ev.loader.busy, timeout=10000)


def test_the_last_run_asked_for_wins_and_results_are_kept(qtbot, panel, earlier_session):
    root, store, (first, second) = earlier_session
    first_job = panel.show_run_evaluation(first)
    with qtbot.waitSignal(panel.evaluation_ready, timeout=60000) as ready:
        second_job = panel.show_run_evaluation(second)  # asked for before the first was done
    assert first_job is not None and second_job is not None
    assert ready.args == [second] and f"Run {second}" in panel.evaluation.scores.text()
    # the first job, cancelled or done, must not replace what is shown when it ends
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30000)
    qtbot.wait(20)
    assert f"Run {second}" in panel.evaluation.scores.text()
    assert len(panel.evaluation.predictions) == panel.evaluation.validation["count"] > 0
    # asked again (a double-click in the table): shown at once from what was worked out
    panel.tabs.setCurrentWidget(panel.runs_view)
    table = panel.runs_view.table
    at = table.visualItemRect(table.item(row_of(panel.runs_view, second), 0)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=at)  # a double-click starts with a press
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert panel.tabs.currentWidget() is panel.evaluation
    assert panel._eval_job is None and f"Run {second}" in panel.evaluation.scores.text()
    assert len(panel.evaluation.predictions) == panel.evaluation.validation["count"]


def test_a_run_without_its_model_file_says_so(qtbot, panel, earlier_session):
    root, store, (first, second) = earlier_session
    Path(store.runs()[0].model_path).unlink()
    panel.runs_view.refresh()
    assert panel.show_run_evaluation(first) is None
    ev = panel.evaluation
    assert "no model file" in ev.cell_title.text()
    assert ev.validation["confusion_matrix"] and ev.matrix.rowCount() == 3  # the stored scores still show
    item = ev.matrix.item(0, 0)
    qtbot.mouseClick(ev.matrix.viewport(), Qt.MouseButton.LeftButton, pos=ev.matrix.visualItemRect(item).center())
    assert ev.shown_paths() == []


def test_selecting_runs_is_one_change_and_reads_each_runs_curves_once(qtbot, panel, earlier_session,
                                                                      monkeypatch):
    root, _store, (first, second) = earlier_session
    rv = panel.runs_view
    store = panel.session.reader  # the connection the app reads runs through
    reads: list[int] = []
    real_run_curves = store.run_curves
    monkeypatch.setattr(store, "run_curves", lambda rid: reads.append(rid) or real_run_curves(rid))
    rv.refresh()  # nothing selected: the latest runs are overlaid, each read once
    assert sorted(reads) == [first, second]
    changes: list[set[int]] = []
    rv.table.itemSelectionChanged.connect(lambda: changes.append(set(rv.selected_run_ids())))

    rv.select_runs([first, second])
    assert changes == [{first, second}]  # one selection change, not one per run
    assert set(rv._overlay) == {first, second}
    assert not rv.evaluate_button.isEnabled() and not rv.delete_button.isEnabled()  # two runs selected
    rv.select_runs([second])
    assert rv.selected_run_ids() == [second] and rv.evaluate_button.isEnabled() and rv.delete_button.isEnabled()
    rv.curve_choice.setCurrentIndex((rv.curve_choice.currentIndex() + 1) % rv.curve_choice.count())
    rv.select_runs([first, second])
    assert sorted(reads) == [first, second]  # the curves were kept, not read again

    rv.refresh()  # a refresh reads them afresh and keeps the selection
    assert set(rv.selected_run_ids()) == {first, second}
    assert sorted(reads) == [first, first, second, second]
