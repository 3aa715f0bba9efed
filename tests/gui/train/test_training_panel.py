"""The Training panel, driven as a user would: a real (short, CPU) training of generated
shapes through the panel, with live curves, a stop mid-epoch, a resume, the store record,
the evaluation drill-down and the runs table; plus the model summary, the OOM message
and a dataset that cannot train."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt

from ponyclassifier.core.callbacks import Callback
from ponyclassifier.core.engine import Trainer
from ponyclassifier.core.store import ProjectStore
from ponyclassifier.core.trained import TrainedModel
from ponyclassifier.gui.train.open_session import open_in_session
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import make_panel
from tests.gui.latency import StallMeter


class StopWatch(Callback):
    """Runs on the training thread: counts batches that began or ended after the stop request."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.began_after_stop = 0
        self.ended_after_stop = 0
        self.batches = 0

    def on_train_batch_begin(self, batch, logs):
        if self.trainer.should_stop:
            self.began_after_stop += 1

    def on_train_batch_end(self, batch, logs):
        self.batches += 1
        if self.trainer.should_stop:
            self.ended_after_stop += 1
        if self.delay:
            time.sleep(self.delay)  # a human-observable epoch on a fast CPU


def npoints(curve) -> int:
    return 0 if curve.xData is None else len(curve.xData)


@pytest.fixture
def project(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=20, size=32)
    store = ProjectStore(root)
    yield root, store
    store.close()


@pytest.fixture
def panel(qtbot, project):
    root, store = project
    _win, panel = make_panel(qtbot, root, store)
    panel.choose_recipe("scratch")
    panel.aug_mode.setCurrentIndex(panel.aug_mode.findData("off"))
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.batch_size.setValue(4)
    panel.lr.setValue(0.003)
    yield panel
    assert panel.shutdown(30000)
    assert not panel.is_training


def test_train_live_stop_resume_finish_and_evaluate(qtbot, panel, project, tmp_path):
    root, store = project
    classes = sorted(os.listdir(root))
    classes.remove(".ponyclassifier")
    watch = StopWatch(delay=0.02)
    panel.extra_callbacks = [watch]
    panel.epochs.setValue(5)
    meter = StallMeter()
    meter.start()

    run = panel.start_training()
    assert run is not None and panel.is_training and not panel.start_button.isEnabled()
    # live: the per-epoch curves get points while training is still going
    qtbot.waitUntil(lambda: npoints(panel.curves["train_loss"]) >= 1, timeout=60000)
    assert len(panel.batch_raw) >= 12 and panel.is_training  # every batch's loss arrived
    qtbot.waitUntil(lambda: npoints(panel.curves["batch_raw"]) >= 12, timeout=5000)  # 5 Hz plot
    # stop in the middle of epoch 2 (or later), from the GUI thread
    stop_at = {}
    switch_intervals = []  # the GIL hand-over interval is short while a run is active

    def on_batches(info):
        switch_intervals.append(sys.getswitchinterval())
        if not stop_at and info["epoch"] >= 2 and info["seen"] >= 12 and panel.is_training:
            stop_at.update(info)
            panel.stop_training()

    run.batches_finished.connect(on_batches)
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as blocker:
        pass
    meter.stop()  # the test's own checks below block the event loop; they are not the app's
    stopped = blocker.args[0]
    assert stop_at, "never got a batch update mid-epoch"
    assert stopped.status == "stopped"
    assert watch.began_after_stop == 0 and watch.ended_after_stop <= 1  # stops within one batch
    assert stopped.epochs_run == stop_at["epoch"] - 1  # the partial epoch is not recorded
    # case 21: the best model so far is kept on disk, and it is the best epoch's model
    assert stopped.model_path and Path(stopped.model_path).parent == root / ".ponyclassifier" / "models"
    saved = TrainedModel.load(stopped.model_path)
    assert saved.metrics["best_epoch"] == stopped.best_epoch
    best_val = stopped.history["val_accuracy"][stopped.best_epoch - 1]
    assert stopped.validation["accuracy"] == pytest.approx(best_val)
    assert max(stopped.history["val_accuracy"]) == pytest.approx(best_val)
    runs = store.runs()
    assert len(runs) == 1 and runs[0].status == "stopped" and runs[0].model_path == stopped.model_path
    assert [c["epoch"] for c in store.run_curves(runs[0].id)] == list(range(1, stopped.epochs_run + 1))
    assert "Stopping after this batch" in panel.log.toPlainText()

    # resume: continues from the saved model, the epochs go on where they stopped
    assert panel.resume_button.isEnabled()
    watch.delay = 0.0
    meter.start()
    with qtbot.waitSignal(panel.training_finished, timeout=120000) as blocker:
        assert panel.resume_training() is not None
    done = blocker.args[0]
    meter.stop()
    print(f"\nGUI event-loop gaps while training: {meter.summary()}")
    assert done.status == "finished", done.error
    assert done.first_epoch == stopped.epochs_run + 1
    assert done.epochs_run == 5 - stopped.epochs_run
    assert list(panel.curves["train_loss"].xData) == [1, 2, 3, 4, 5]
    assert panel.best_line.value() == done.best_epoch  # the line marks the model that was kept
    assert switch_intervals and max(switch_intervals) <= 0.0005 < sys.getswitchinterval()
    runs = store.runs()
    assert len(runs) == 2 and runs[1].status == "finished" and runs[1].settings["resumed_from"] == runs[0].id
    assert [c["epoch"] for c in store.run_curves(runs[1].id)] == list(range(stopped.epochs_run + 1, 6))
    assert runs[1].val_f1 is not None and runs[1].metrics["validation"]["confusion_matrix"]
    assert Path(runs[1].model_path).name == f"run-{runs[1].id}.pony" and os.path.exists(runs[1].model_path)
    # RELIABILITY case 24: the event loop never stalls over 100 ms during training (start,
    # live curves, stop, resume and finish included), here on a CPU that trains at once.
    assert meter.max_gap < 0.100, f"the event loop stalled: {meter.summary()}"

    # evaluation: clicking a confusion-matrix cell shows exactly those validation images
    ev = panel.evaluation
    assert ev.classes == classes and len(ev.predictions) == done.validation["count"]
    cm = done.validation["confusion_matrix"]
    cells = [(r, c) for r in range(3) for c in range(3) if cm[r][c]]
    off = [rc for rc in cells if rc[0] != rc[1]]
    for r, c in [cells[0]] + off[:1]:
        item = ev.matrix.item(r, c)
        rect = ev.matrix.visualItemRect(item)
        qtbot.mouseClick(ev.matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        shown = ev.shown_paths()
        assert len(shown) == cm[r][c] == int(item.text())
        assert all(Path(p).parent.name == classes[r] for p in shown)
        expected = {p["path"] for p in ev.predictions if p["true"] == classes[r] and p["predicted"] == classes[c]}
        assert set(shown) == expected
    qtbot.waitUntil(lambda: not ev.loader.busy, timeout=10000)
    assert ev.per_class.rowCount() == 3

    # runs table: both runs, CSV export, ONNX export off the GUI thread, delete
    rv = panel.runs_view
    assert rv.table.rowCount() == 2
    csv_path = rv.export_csv(tmp_path / "runs.csv")
    text = Path(csv_path).read_text()
    assert text.splitlines()[0].startswith("Run,Recipe,Status,Epochs,Val accuracy,Val F1,Test F1,Difference")
    assert len(text.splitlines()) == 3
    with qtbot.waitSignal(rv.model_exported, timeout=60000) as exported:
        rv.export_run_model(runs[1].id, "onnx", tmp_path / "m.onnx")
    assert os.path.getsize(exported.args[0]) > 1000
    assert rv.delete_run(runs[0].id, confirm=False)
    assert [r.id for r in store.runs()] == [runs[1].id] and not os.path.exists(runs[0].model_path)


def test_summary_shows_the_network_before_training(qtbot, panel):
    qtbot.waitUntil(lambda: panel.summary_table.rowCount() > 0, timeout=20000)
    types = [panel.summary_table.item(r, 1).text() for r in range(panel.summary_table.rowCount())]
    assert "Conv2d" in types and "Linear" in types
    assert "Total parameters" in panel.summary_totals.text()
    assert panel.summary.trainable_params == panel.summary.total_params
    panel.choose_recipe("transfer")
    assert panel.image_size.value() == 224 and panel.epochs.value() == 0 and panel.epochs.text() == "Auto"
    assert "ImageNet" in panel.recipe_help.text()
    qtbot.waitUntil(lambda: panel.summary is not None and panel.summary.frozen_params > 0, timeout=30000)
    states = {panel.summary_table.item(r, 4).text() for r in range(panel.summary_table.rowCount())}
    assert {"frozen", "trainable"} <= states
    assert panel.summary.trainable_params == 1280 * 3 + 3


def test_out_of_memory_message_appears_in_the_log(qtbot, panel, monkeypatch):
    orig = Trainer._train_epoch

    def flaky(self, *args):
        if args[12] > 8:  # batch_size
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return orig(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", flaky)
    panel.batch_size.setValue(32)
    panel.epochs.setValue(1)
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as blocker:
        panel.start_training()
    assert blocker.args[0].status == "finished"
    log = panel.log.toPlainText()
    assert "batch size halved to 16" in log and "batch size halved to 8" in log


def test_a_dataset_that_cannot_train_says_why(qtbot, tmp_path, panel):
    lonely = make_shapes_dataset(tmp_path / "lonely", per_class=5, classes=("circle",))
    store = ProjectStore(lonely)
    open_in_session(panel.session, lonely, store)
    with qtbot.waitSignal(panel.training_finished, timeout=30000) as blocker:
        panel.start_training()
    outcome = blocker.args[0]
    assert outcome.status == "failed" and "class" in outcome.error
    assert "Training failed" in panel.log.toPlainText() and panel.start_button.isEnabled()
    assert not panel.resume_button.isEnabled()
    open_in_session(panel.session, None, None)
    store.close()


def test_relabel_button_asks_for_the_predicted_class(qtbot, panel):
    ev = panel.evaluation
    val = {"classes": ["a", "b"], "accuracy": 0.5, "macro_f1": 0.5, "count": 2,
           "per_class": {"a": {"precision": 1, "recall": 0.5, "f1": 0.67, "support": 2},
                         "b": {"precision": 0, "recall": 0, "f1": 0, "support": 0}},
           "confusion_matrix": [[1, 1], [0, 0]],
           "top_losses": [{"path": "/nowhere/a/x.png", "true": "a", "predicted": "b", "confidence": 0.9,
                           "loss": 2.3}]}
    test = dict(val, accuracy=0.4, macro_f1=0.3, count=5)
    ev.set_results(["a", "b"], val, test, [])
    assert "External test" in ev.scores.text() and "+0.200" in ev.scores.text()
    assert ev.relabel_buttons[0].text() == "Relabel to b"
    with qtbot.waitSignal(ev.relabel_requested) as blocker:
        qtbot.mouseClick(ev.relabel_buttons[0], Qt.MouseButton.LeftButton)
    assert blocker.args == ["/nowhere/a/x.png", "b"]
    assert not ev.relabel_buttons[0].isEnabled()
    qtbot.waitUntil(lambda: not ev.loader.busy, timeout=5000)


def test_closing_the_project_while_the_summary_is_worked_out(qtbot, panel):
    """The model summary runs on a worker; a project closed meanwhile must not break when
    its result arrives (found when the window closed right after opening a project)."""
    from PySide6.QtCore import QThreadPool

    root = panel.root
    open_in_session(panel.session, root, None)
    panel._summary_timer.stop()
    panel._compute_summary()  # the summary job for this project is now running on a worker
    open_in_session(panel.session, None, None)  # ...and the project goes away before it finishes
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30000)
    qtbot.wait(50)  # let the finished signal be delivered; an exception in the slot fails the test
    assert panel.root is None


def test_augmentation_set_in_the_dataset_place_reaches_training(qtbot, panel):
    """The strengths chosen in the augmentation preview (remembered by the main window as
    AugmentConfig.to_dict() JSON) are what the training panel shows and trains with, in
    the same units and ranges."""
    from PySide6.QtCore import QSettings

    from ponyclassifier.core.augment import AugmentConfig
    from ponyclassifier.gui.dataset.augment_preview import STRENGTHS, QtAugmentPreview
    from ponyclassifier.gui.main_window import load_augment_config, save_augment_config

    preview = QtAugmentPreview(count=1, image_size=32)
    qtbot.addWidget(preview)
    for s in STRENGTHS:  # the same boxes: range, step and unit
        mine, theirs = panel.aug_fields[s.name], preview.spins[s.name]
        assert (mine.minimum(), mine.maximum(), mine.suffix(), mine.decimals()) == \
            (theirs.minimum(), theirs.maximum(), theirs.suffix(), theirs.decimals())
    assert set(panel.aug_fields) == {s.name for s in STRENGTHS}

    wanted = {"rotation": 35.0, "width_shift": 0.25, "height_shift": 0.05, "shear": 0.0, "zoom": 0.3,
              "horizontal_flip": False, "brightness": 0.8, "contrast": 0.4}
    preview.set_config(wanted)
    save_augment_config(preview.config_dict(), QSettings())
    panel.aug_mode.setCurrentIndex(panel.aug_mode.findData("custom"))
    panel.set_augment_config(load_augment_config(QSettings()))
    assert panel.aug_fields["brightness"].value() == 80 and panel.aug_fields["rotation"].value() == 35
    assert not panel.aug_flip.isChecked()
    assert panel.config().augment == AugmentConfig(**wanted)

    # beyond the range: clamped as the preview does; missing or unreadable entries are left alone
    preview.set_config({"brightness": 0.95})
    panel.set_augment_config({"brightness": 0.95, "zoom": "lots", "contrast": None})
    got = panel.config().augment
    assert got.brightness == pytest.approx(preview.config().brightness) == pytest.approx(0.8)
    assert got.zoom == pytest.approx(0.3) and got.contrast == pytest.approx(0.4)
    assert got.rotation == 35.0 and not got.horizontal_flip
    # "All off" in the preview turns every strength off here too
    preview.set_all_off()
    panel.set_augment_config(preview.config_dict())
    assert panel.config().augment is None  # every strength 0: no augmentation


def test_shutdown_closes_the_evaluation_thumbnail_loader(qtbot, panel, project):
    root, _store = project
    image = next(p for p in sorted(root.rglob("*.png")))
    assert panel.shutdown(30000)
    panel.evaluation.loader.request_thumbnail(str(image))
    assert not panel.evaluation.loader.busy  # closed: no new thumbnail work after shutdown
