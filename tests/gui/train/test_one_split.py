"""One split: what Dataset ▸ Splits… sets is what the Train place shows and trains on, and
a run recorded by the command line appears in the app's runs table."""

from __future__ import annotations

from pathlib import Path

from ponyclassifier.core.project import Project
from ponyclassifier.core.store import ProjectStore
from ponyclassifier.gui.main_window import PLACES
from tests.conftest import make_shapes_dataset
from tests.core.test_cli import run
from tests.gui.conftest import make_panel, open_in


def test_the_split_and_test_folder_set_in_splits_are_the_ones_trained_on(qtbot, tmp_path, gui_env, make_window):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=10, size=32, classes=("circle", "square"))
    test = make_shapes_dataset(tmp_path / "elsewhere", per_class=3, size=32, seed=9, classes=("circle", "square"))
    w = make_window()
    open_in(qtbot, w, root)
    w.set_place(PLACES.index("Train"))
    panel = w.training
    # the Train place sends the user to the one place the split is made
    panel.splits_button.click()
    d = w.browser.splits_dialog
    assert d is not None and d.isVisible()
    d.fraction.setValue(30)
    d.seed.setValue(5)
    with qtbot.waitSignal(w.browser.splits_changed, timeout=20000):
        d.make_button.click()
    with qtbot.waitSignal(w.browser.splits_changed, timeout=20000):
        w.browser.set_test_folder(str(test))
    d.close()
    val = {str(root.resolve() / r["relpath"]) for r in w.browser.project.store.images() if r["split"] == "val"}
    assert len(val) == 6  # 30% of each class of 10
    # shown in the Train place as the project has it
    assert "6 of 20 pictures (30%), 30% of each class, seed 5" in panel.split_label.text()
    assert panel.test_label.text() == str(test.resolve())
    qtbot.waitUntil(lambda: "validation share</b>: 30%" in panel.plan_label.text().lower(), timeout=30000)

    panel.choose_recipe("scratch")
    panel.epochs.setValue(2)
    panel.image_size.setValue(32)
    with qtbot.waitSignal(panel.training_finished, timeout=180000) as done:
        panel.start_training()
    outcome = done.args[0]
    assert outcome.status == "finished", outcome.error
    # exactly the project's validation images, and its test folder
    assert {str(Path(p["path"]).resolve()) for p in outcome.predictions} == val
    assert outcome.test is not None and outcome.test["count"] == 6
    assert outcome.plan["validation share"]["reason"] == "the project's split: 30% of each class, seed 5"
    run_ = w.training.store.runs()[-1]
    assert run_.settings["test_dir"] == str(test.resolve())
    assert run_.settings["split"]["val_fraction"] == 0.3 and run_.settings["split"]["seed"] == 5
    assert run_.settings["split"]["val_images"] == 6
    w.close()


def test_a_run_trained_from_the_command_line_is_in_the_apps_runs_table(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=6, size=32, classes=("circle", "square"))
    with Project(root) as p:
        p.sync()
        p.make_missing_splits()
    run("train", root, "--recipe", "scratch", "--epochs", "1", "--image-size", "32", check=0)
    store = ProjectStore(root)
    try:
        win, panel = make_panel(qtbot, root, store)
        shown = panel.runs_view.run(1)
        assert shown is not None and shown.status == "finished" and shown.settings["source"] == "command line"
        assert panel.runs_view.table.rowCount() == 1
        assert panel.shutdown()
    finally:
        store.close()
