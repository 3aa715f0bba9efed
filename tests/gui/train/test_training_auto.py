"""The Train panel's Auto settings, as a user meets them: what Auto will choose and why,
the recipe suggested for a project (and remembered once chosen), settings that override
Auto, and a refitted run's evaluation."""

from __future__ import annotations

import pytest

from ponyclassifier.core.project import Project
from ponyclassifier.core.store import ProjectStore
from ponyclassifier.gui.train.open_session import open_in_session
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import make_panel


@pytest.fixture
def project(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=20, size=32)
    store = ProjectStore(root)
    yield root, store
    store.close()


def settle(qtbot, panel):
    qtbot.waitUntil(lambda: panel.summary is not None and "steps per epoch" in panel.plan_label.text()
                    or "cached features" in panel.plan_label.text(), timeout=30000)


def test_auto_box_says_what_auto_chooses_and_follows_the_settings(qtbot, project):
    root, store = project
    win, panel = make_panel(qtbot, root, store)
    panel.choose_recipe("scratch")
    settle(qtbot, panel)
    text = panel.plan_label.text()
    # 60 pictures of 32 px: small batches, more epochs, no augmentation for so few epochs? (50 epochs: mild)
    assert "<b>Batch size</b>: 32" in text and "(auto:" in text
    assert "<b>Refit on all images</b>: yes" in text
    assert "<b>Epochs</b>: 50" in text and "small set" in text
    # a setting made by hand is shown as set, and Auto's other choices follow it
    panel.epochs.setValue(5)
    text = panel.plan_label.text()
    assert "<b>Epochs</b>: 5 <i>(set: as set)</i>" in text
    assert "<b>Augmentation</b>: none" in text and "short run of 5 epochs" in text
    panel.aug_mode.setCurrentIndex(panel.aug_mode.findData("off"))
    assert "<b>Augmentation</b>: none <i>(set: turned off)</i>" in panel.plan_label.text()
    # what the box says is what a run is given
    cfg = panel.config()
    assert cfg.epochs == 5 and cfg.batch_size is None and cfg.lr is None and cfg.val_split is None
    assert cfg.augment is None and cfg.refit is None and cfg.mixed_precision is None
    panel.refit.setCurrentIndex(panel.refit.findData(False))
    panel.mixed_precision.setChecked(False)
    cfg = panel.config()
    assert cfg.refit is False and cfg.mixed_precision is False
    # the validation share is the project's split (Dataset > Splits...), shown here as it is
    open_in_session(panel.session, None, None)
    store.close()
    with Project(root) as p:
        p.sync()
        p.make_splits(0.1, 3)
        open_in_session(panel.session, root, p.store)
        assert "6 of 60 pictures (10%), 10% of each class, seed 3" in panel.split_label.text()
        qtbot.waitUntil(lambda: "<b>Validation share</b>: 10% <i>(set: the project&#x27;s split: 10% of each "
                                "class, seed 3)</i>" in panel.plan_label.text(), timeout=30000)
        assert panel.config().val_split is None  # the run takes the project's split, not a share of its own
        open_in_session(panel.session, None, None)
    assert panel.shutdown()


def test_a_project_gets_a_suggested_recipe_until_one_is_chosen_and_then_keeps_it(qtbot, project):
    root, store = project
    win, panel = make_panel(qtbot, root, store)
    # nobody chose: 60 small pictures -> a pretrained network, and the panel says why
    qtbot.waitUntil(lambda: panel.recipe() == "transfer" and panel.summary is not None, timeout=30000)
    assert panel.recipe_note.isVisible() and "Suggested for this project" in panel.recipe_note.text()
    assert "pretrained network" in panel.recipe_note.text()
    # the user picks scratch from the list: remembered in the project
    index = panel.recipe_combo.findData("scratch")
    panel.recipe_combo.setCurrentIndex(index)
    panel.recipe_combo.activated.emit(index)
    assert store.meta("train_recipe") == "scratch" and not panel.recipe_note.isVisible()
    # the project opened again: the choice stands, and no suggestion replaces it
    open_in_session(panel.session, None, None)
    open_in_session(panel.session, root, store)
    assert panel.recipe() == "scratch" and "last choice" in panel.recipe_note.text()
    qtbot.waitUntil(lambda: panel.summary is not None and "Epochs" in panel.plan_label.text(), timeout=30000)
    qtbot.wait(300)
    assert panel.recipe() == "scratch"
    assert panel.shutdown()


def test_a_refitted_run_is_not_scored_again_on_its_validation_images(qtbot, project):
    root, store = project
    win, panel = make_panel(qtbot, root, store)
    panel.choose_recipe("scratch")
    panel.aug_mode.setCurrentIndex(panel.aug_mode.findData("off"))
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.epochs.setValue(2)
    with qtbot.waitSignal(panel.training_finished, timeout=120000) as blocker:
        panel.start_training()
    outcome = blocker.args[0]
    assert outcome.status == "finished" and outcome.refit_epochs >= 1  # a small set: refitted
    assert "refitted on all images" in panel.status_label.text()
    # this session: the engine's own per-image predictions of the held-out model
    assert len(outcome.predictions) == outcome.validation["count"]
    run = store.runs()[0]
    assert run.metrics["refit_epochs"] == outcome.refit_epochs
    assert run.metrics["plan"]["batch size"]["value"] == 32
    # a later session (nothing cached): the stored scores, and a note instead of a re-score
    panel._run_results.clear()
    assert panel.show_run_evaluation(run.id) is None
    assert "trained again on every image" in panel.evaluation.cell_title.text()
    # finished: nothing left to resume
    assert not panel.resume_button.isEnabled()
    assert panel.shutdown()
