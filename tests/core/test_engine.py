"""Trainer.fit for real on tiny generated data: learning, callbacks, stopping, recipes,
feature caching, bad files mid-training (case 8), untrainable datasets (case 22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ponyclassifier.core import engine
from ponyclassifier.core.augment import AugmentConfig
from ponyclassifier.core.callbacks import Callback, EarlyStopping, History, ModelCheckpoint
from ponyclassifier.core.dataset import DatasetError
from ponyclassifier.core.engine import TrainConfig, Trainer, TrainingError, evaluate_model
from ponyclassifier.core.trained import TrainedModel

from ..conftest import make_shapes_dataset


class Recorder(Callback):
    def __init__(self):
        self.events = []
        self.epoch_logs = []
        self.batch_logs = []
        self.messages = []

    def on_train_begin(self, logs):
        self.events.append("train_begin")

    def on_train_end(self, logs):
        self.events.append("train_end")

    def on_epoch_begin(self, epoch, logs):
        self.events.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs):
        self.events.append(f"epoch_end {epoch}")
        self.epoch_logs.append(dict(logs))

    def on_train_batch_end(self, batch, logs):
        self.batch_logs.append(dict(logs))

    def on_message(self, text):
        self.messages.append(text)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=30, size=32)


def quick(recipe="scratch", **kw) -> TrainConfig:
    kw.setdefault("epochs", 2)
    kw.setdefault("batch_size", 16)
    kw.setdefault("augment", None)
    kw.setdefault("device", "cpu")
    # the engine's mechanics, not the policy's choices (tests/core/test_policy.py)
    kw.setdefault("lr", 1e-3 if recipe == "scratch" else 3e-3)
    kw.setdefault("val_split", 0.2)
    kw.setdefault("refit", False)
    return TrainConfig(recipe=recipe, **kw)


def test_scratch_learns_and_logs_every_epoch(shapes):
    rec = Recorder()
    result = Trainer(quick(epochs=8, lr=3e-3)).fit(shapes, callbacks=[rec])
    assert rec.events[0] == "train_begin" and rec.events[-1] == "train_end"
    assert [l["epoch"] for l in rec.epoch_logs] == list(range(1, 9))
    for logs in rec.epoch_logs:
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second", "seconds"):
            assert np.isfinite(logs[key]), key
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    # 3 classes: chance is 1/3; these shapes are easy enough to learn in 8 short epochs.
    assert result.val_report.accuracy >= 0.7
    assert result.model.channels == 3 and result.model.image_size == 32
    assert rec.batch_logs and {"loss", "accuracy", "images_per_second"} <= rec.batch_logs[0].keys()


def test_training_is_reproducible_with_a_seed(shapes):
    a = Trainer(quick(seed=3)).fit(shapes)
    b = Trainer(quick(seed=3)).fit(shapes)
    np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=1e-4)


def test_grayscale_dataset_trains_single_channel(tmp_path):
    data = make_shapes_dataset(tmp_path / "gray", per_class=8, size=28, gray=True)
    result = Trainer(quick(epochs=1)).fit(data)
    assert result.model.channels == 1
    assert result.model.network.features[1].in_channels == 1


def test_stop_mid_epoch_within_one_batch_keeps_best_model(shapes):
    class StopAt(Callback):
        def __init__(self):
            self.batches_after_stop = 0
            self.stopped = False

        def on_train_batch_end(self, batch, logs):
            if self.stopped:
                self.batches_after_stop += 1
            if self.trainer.config and len(self.trainer._state["history"].epochs) == 1 and batch == 1:
                self.trainer.should_stop = True
                self.stopped = True

    stopper = StopAt()
    result = Trainer(quick(epochs=5, batch_size=8)).fit(shapes, callbacks=[stopper])
    assert stopper.stopped and stopper.batches_after_stop == 0
    assert result.epochs_run == 1 and result.stopped
    assert result.best_epoch == 1
    assert len(result.history["val_accuracy"]) == 1


class Snapshot(Callback):
    """Keeps the network's weights at the end of one epoch, and the weights it starts from."""

    def __init__(self, epoch=None):
        self.epoch = epoch
        self.state = None
        self.start = None

    def on_train_begin(self, logs):
        self.start = {k: v.detach().clone() for k, v in self.trainer.current_model().network.state_dict().items()}

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            self.state = {k: v.detach().clone() for k, v in self.trainer.current_model().network.state_dict().items()}
            self.trainer.should_stop = True


def test_resume_continues_weights_epochs_and_schedule(shapes, tmp_path):
    full = Recorder()
    Trainer(quick(epochs=4, seed=5)).fit(shapes, callbacks=[full])
    # the same run stopped after epoch 2...
    snap = Snapshot(epoch=2)
    first = Trainer(quick(epochs=4, seed=5)).fit(shapes, callbacks=[snap])
    assert first.epochs_run == 2 and snap.state is not None
    # ...and resumed from its weights: epochs 3 and 4, starting from exactly those weights
    rec, start = Recorder(), Snapshot()
    resumed = Trainer(quick(epochs=4, seed=5)).fit(shapes, callbacks=[rec, start], initial_model=snap.state,
                                                   initial_epoch=2)
    assert all(torch.equal(start.start[k], v) for k, v in snap.state.items())
    assert [l["epoch"] for l in rec.epoch_logs] == [3, 4]
    assert rec.events[:3] == ["train_begin", "epoch_begin 3", "epoch_end 3"]
    assert resumed.epochs_run == 2 and resumed.best_epoch in (3, 4)
    assert resumed.model.metrics["initial_epoch"] == 2 and resumed.model.metrics["epochs_run"] == 2
    # the one-cycle learning rate goes on where it was, not from its warm-up
    lr_full = {l["epoch"]: l["lr"] for l in full.epoch_logs}
    for logs in rec.epoch_logs:
        assert logs["lr"] == pytest.approx(lr_full[logs["epoch"]], rel=1e-6)
    # resumed from the epoch-2 weights, it starts where the stopped run was, not from scratch
    fresh = Recorder()
    Trainer(quick(epochs=4, seed=5)).fit(shapes, callbacks=[fresh, Snapshot(epoch=1)])
    assert rec.batch_logs[0]["batch_loss"] < fresh.batch_logs[0]["batch_loss"]

    # a saved model file works the same way, and its image size is kept
    path = tmp_path / "stopped.pony"
    first.model.save(path)
    again = Trainer(quick(epochs=3)).fit(shapes, initial_model=path, initial_epoch=2)
    assert again.epochs_run == 1 and again.best_epoch == 3 and again.model.image_size == first.model.image_size


def test_resume_refuses_what_does_not_fit(shapes, tmp_path):
    other = make_shapes_dataset(tmp_path / "other", per_class=6, size=32, classes=("circle", "square"))
    two = Trainer(quick(epochs=1)).fit(other).model
    with pytest.raises(TrainingError, match="classes changed"):
        Trainer(quick(epochs=3)).fit(shapes, initial_model=two, initial_epoch=1)
    with pytest.raises(TrainingError, match="does not fit"):
        Trainer(quick(epochs=3)).fit(shapes, initial_model={"nonsense": torch.zeros(1)}, initial_epoch=1)
    with pytest.raises(TrainingError, match="epoch 4"):
        Trainer(quick(epochs=3)).fit(shapes, initial_epoch=3)


def test_resumed_finetune_continues_in_its_second_phase(shapes):
    snap = Snapshot(epoch=2)
    Trainer(quick("finetune", epochs=4, image_size=64)).fit(shapes, callbacks=[snap])
    rec = Recorder()
    result = Trainer(quick("finetune", epochs=4, image_size=64)).fit(shapes, callbacks=[rec],
                                                                     initial_model=snap.state, initial_epoch=2)
    assert [(l["epoch"], l["phase"]) for l in rec.epoch_logs] == [(3, "finetune"), (4, "finetune")]
    assert result.epochs_run == 2


def test_early_stopping_and_checkpoint(shapes, tmp_path):
    ckpt = tmp_path / "best.pony"
    es = EarlyStopping("val_loss", patience=1, min_delta=10.0)  # nothing improves by 10: stops after 2 epochs
    mc = ModelCheckpoint(ckpt, monitor="val_accuracy")
    result = Trainer(quick(epochs=6)).fit(shapes, callbacks=[es, mc])
    assert result.epochs_run == 2 and es.stopped_epoch == 2
    assert "early stopping" in result.stop_reason
    assert ckpt.exists() and mc.saved_epochs[0] == 1
    loaded = TrainedModel.load(ckpt)
    assert loaded.classes == ["circle", "square", "triangle"]


def test_history_callback_collects_logs(shapes):
    h = History()
    Trainer(quick(epochs=2)).fit(shapes, callbacks=[h])
    assert h.epochs == [1, 2] and len(h.history["val_accuracy"]) == 2


def _count_stem_images(model_cls_patch, monkeypatch):
    seen = {"n": 0}
    orig = model_cls_patch.stem

    def stem(self, x):
        seen["n"] += x.shape[0]
        return orig(self, x)

    monkeypatch.setattr(model_cls_patch, "stem", stem)
    return seen


def test_transfer_caches_base_features_once(shapes, monkeypatch):
    from ponyclassifier.core.models import EfficientNetLite0

    seen = _count_stem_images(EfficientNetLite0, monkeypatch)
    result = Trainer(quick("transfer", epochs=4, image_size=64)).fit(shapes)
    train_n, val_n = result.model.training["train_images"], result.model.training["val_images"]
    # 4 epochs and the final validation report, but the frozen base saw every image once
    assert seen["n"] == train_n + val_n
    assert result.model.recipe == "transfer"
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    # the frozen base really stayed frozen: BatchNorm statistics are the pretrained ones
    from ponyclassifier.core.weights import load_efficientnet_lite0_state

    ref = load_efficientnet_lite0_state()
    net = result.model.network
    assert torch.equal(net._bn0.running_mean.cpu(), ref["_bn0.running_mean"])
    assert torch.equal(net._blocks[15]._bn2.running_var.cpu(), ref["_blocks.15._bn2.running_var"])
    # the saved validation score is the score of the model that was kept
    assert result.val_report.accuracy == pytest.approx(max(result.history["val_accuracy"]))
    # ...and the report made from cached features is the report of the whole kept network
    from ponyclassifier.core.dataset import BatchSource
    from ponyclassifier.core.engine import evaluate_source, stratified_split

    _, val_idx = stratified_split(result.scan, 0.2, 0)
    src = BatchSource(result.scan, val_idx, 16, image_size=64, channels=3, device=torch.device("cpu"), shuffle=False)
    fresh = evaluate_source(net, src, result.model.classes)
    assert fresh.confusion_matrix == result.val_report.confusion_matrix
    assert fresh.macro_f1 == pytest.approx(result.val_report.macro_f1)
    assert [t["path"] for t in fresh.top_losses] == [t["path"] for t in result.val_report.top_losses]
    assert [t["loss"] for t in fresh.top_losses] == pytest.approx([t["loss"] for t in result.val_report.top_losses],
                                                                  rel=1e-4, abs=1e-5)


def test_transfer_with_augmentation_says_what_it_costs(shapes, monkeypatch):
    from ponyclassifier.core.models import EfficientNetLite0

    seen = _count_stem_images(EfficientNetLite0, monkeypatch)
    rec = Recorder()
    result = Trainer(quick("transfer", epochs=3, image_size=64, augment=AugmentConfig(), aug_copies=2)).fit(
        shapes, callbacks=[rec])
    train_n, val_n = result.model.training["train_images"], result.model.training["val_images"]
    assert seen["n"] == 2 * train_n + val_n  # validation images are never augmented: once
    assert any("2 augmented copies" in m for m in rec.messages)


def test_finetune_trains_head_then_top_blocks(shapes):
    rec = Recorder()
    result = Trainer(quick("finetune", epochs=4, image_size=64)).fit(shapes, callbacks=[rec])
    phases = [l["phase"] for l in rec.epoch_logs]
    assert phases == ["head", "head", "finetune", "finetune"]
    lrs = [l["lr"] for l in rec.epoch_logs]
    assert max(lrs[2:]) < max(lrs[:2])  # fine-tuning uses a lower learning rate
    net = result.model.network
    # the lower blocks are untouched ImageNet weights, the top block changed
    from ponyclassifier.core.weights import load_efficientnet_lite0_state

    ref = load_efficientnet_lite0_state()
    assert torch.equal(net._blocks[0]._depthwise_conv.weight.cpu(), ref["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(net._blocks[14]._bn1.running_mean.cpu(), ref["_blocks.14._bn1.running_mean"])
    assert not torch.equal(net._blocks[15]._project_conv.weight.cpu(), ref["_blocks.15._project_conv.weight"])


def test_external_test_set_is_scored(shapes, tmp_path):
    test = make_shapes_dataset(tmp_path / "test", per_class=5, size=32, seed=99)
    result = Trainer(quick(epochs=2)).fit(shapes, test_dir=test)
    assert result.test_report is not None and result.test_report.count == 15
    assert "test" in result.model.metrics


def test_evaluate_model_reports_top_losses(shapes, tmp_path):
    result = Trainer(quick(epochs=1)).fit(shapes)
    report, skipped = evaluate_model(result.model, shapes, device="cpu")
    assert report.count == 90 and skipped == []
    assert len(report.confusion_matrix) == 3 and sum(map(sum, report.confusion_matrix)) == 90
    for item in report.top_losses:
        assert item["true"] != item["predicted"]
    losses = [t["loss"] for t in report.top_losses]
    assert losses == sorted(losses, reverse=True)


# ----------------------------------------------------------- case 8: files break mid-training


class BreakFiles(Callback):
    def __init__(self, paths, how="delete"):
        self.paths, self.how = paths, how

    def on_train_begin(self, logs):
        for p in self.paths:
            if self.how == "delete":
                Path(p).unlink()
            else:
                Path(p).write_bytes(Path(p).read_bytes()[:40])


def test_file_deleted_mid_training_is_skipped_and_counted(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=10, size=32)
    victims = [data / "circle" / "circle_000.png", data / "square" / "square_001.png"]
    cfg = quick(epochs=2, cache_budget=0)  # stream from disk so the break is hit mid-epoch
    result = Trainer(cfg).fit(data, callbacks=[BreakFiles(victims[:1]), BreakFiles(victims[1:], "truncate")])
    assert result.epochs_run == 2
    skipped = {Path(s.path).name: s.reason for s in result.skipped}
    assert "circle_000.png" in skipped and "square_001.png" in skipped


def test_too_many_broken_files_stop_with_a_report(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=10, size=32)
    victims = sorted(data.rglob("*.png"))[:12]
    with pytest.raises(TrainingError, match="unreadable during training"):
        Trainer(quick(epochs=2, cache_budget=0)).fit(data, callbacks=[BreakFiles(victims)])


# ----------------------------------------------------------- case 22: cannot train


class NeverStarts(Callback):
    def on_train_begin(self, logs):  # pragma: no cover - must not be reached
        raise AssertionError("training started on an untrainable dataset")


def _fit_error(path) -> str:
    with pytest.raises(DatasetError) as e:
        Trainer(quick()).fit(path, callbacks=[NeverStarts()])
    return str(e.value)


def test_one_class_is_refused(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4, classes=("circle",))
    assert "only one class" in _fit_error(data)


def test_empty_class_is_refused(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4)
    (data / "empty").mkdir()
    assert "'empty' has no usable images" in _fit_error(data)


def test_class_with_one_image_is_refused(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4)
    for p in list((data / "circle").iterdir())[1:]:
        p.unlink()
    assert "'circle' has only 1 image" in _fit_error(data)


def test_ten_thousand_classes_refused_before_decoding(tmp_path):
    root = tmp_path / "many"
    for i in range(10_000):
        (root / f"c{i:05d}").mkdir(parents=True)
    msg = _fit_error(root)
    assert "10000 classes" in msg


def test_all_images_bad_is_refused(tmp_path):
    root = tmp_path / "bad"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            (root / c / f"{i}.png").write_text("not an image")
    msg = _fit_error(root)
    assert "no usable images" in msg and "all 6 files were skipped" in msg


def test_no_class_folders_is_refused(tmp_path):
    assert "no class folders" in _fit_error(tmp_path)


# ----------------------------------------------------------- case 20 (engine side): OOM halving


def test_out_of_memory_halves_the_batch_and_goes_on(shapes, monkeypatch):
    # No GPU here: simulate the allocator's error at the real place it surfaces.
    orig = Trainer._train_epoch
    calls = []

    def flaky(self, *args):
        batch_size = args[12]
        calls.append(batch_size)
        if batch_size > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return orig(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", flaky)
    rec = Recorder()
    result = Trainer(quick(epochs=2, batch_size=32)).fit(shapes, callbacks=[rec])
    assert calls[:3] == [32, 16, 8]
    assert result.epochs_run == 2 and result.model.training["batch_size_used"] == 8
    assert any("batch size halved to 16" in m for m in rec.messages)


def test_device_selection():
    assert engine.select_device("cpu").type == "cpu"
    assert engine.select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA GPU"):
            engine.select_device("cuda")
