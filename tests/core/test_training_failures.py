"""Training fails loudly and recovers where it can: a diverging loss stops the run with the
epoch and the likely cause, non-finite weights are never written or loaded, and running out
of GPU memory halves the batch and rebuilds the learning-rate schedule for it (training,
feature caching and validation alike). There is no GPU here: the allocator's error is
raised at the real place it surfaces, by a network that "fits" only small batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from ponyclassifier.core import models as M
from ponyclassifier.core.callbacks import Callback, ModelCheckpoint
from ponyclassifier.core.engine import TrainConfig, Trainer, TrainingDiverged
from ponyclassifier.core.modelfile import ModelFileError, save_model_file
from ponyclassifier.core.trained import TrainedModel

from ..conftest import make_shapes_dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("fail") / "shapes", per_class=24, size=28)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, augment=None, device="cpu", lr=1e-3, val_split=0.25, refit=False)
    return TrainConfig(**(base | kw))


class Said(Callback):
    def __init__(self):
        self.messages, self.epochs = [], []

    def on_message(self, text):
        self.messages.append(text)

    def on_epoch_end(self, epoch, logs):
        self.epochs.append(dict(logs))


def test_a_huge_learning_rate_stops_at_once_and_writes_nothing(shapes, tmp_path):
    ckpt = tmp_path / "m.pony"
    with pytest.raises(TrainingDiverged) as e:
        Trainer(cfg(lr=1e30)).fit(shapes, callbacks=[ModelCheckpoint(ckpt)])
    msg = str(e.value)
    assert "diverged in epoch 1" in msg and "learning rate (1e+30) is probably too high" in msg
    assert not ckpt.exists()


def test_divergence_later_keeps_the_best_finite_model(shapes):
    class Poison(Callback):  # what a runaway step does to a weight
        def on_train_batch_end(self, batch, logs):
            if len(self.trainer._state["history"].epochs) == 2 and batch == 1:
                with torch.no_grad():
                    self.trainer._state["net"].classifier[-1].weight.mul_(float("inf"))

    said = Said()
    trainer = Trainer(cfg(epochs=5))
    result = trainer.fit(shapes, callbacks=[said, Poison()])
    assert trainer.diverged and result.epochs_run == 2 and result.best_epoch in (1, 2)
    assert "diverged in epoch 3" in result.stop_reason
    assert any("diverged in epoch 3" in m for m in said.messages)
    assert all(torch.isfinite(t).all() for t in result.model.network.state_dict().values() if t.is_floating_point())


def test_non_finite_weights_are_never_written_nor_loaded(tmp_path):
    net = M.build_model(M.arch_config("scratch", 3, 28, 1))
    model = TrainedModel(network=net, classes=["a", "b", "c"], recipe="scratch",
                         architecture=M.arch_config("scratch", 3, 28, 1), image_size=28, channels=1)
    good = tmp_path / "good.pony"
    model.save(good)
    with torch.no_grad():
        net.classifier[-1].bias[0] = float("nan")
    with pytest.raises(ModelFileError, match="not all finite"):
        model.save(good)
    assert TrainedModel.load(good)  # the earlier file is untouched
    # a file someone else wrote with a NaN inside is refused, with its name
    bad = tmp_path / "bad.pony"
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    save = dict(tensors)
    save["classifier.5.bias"] = torch.tensor([float("nan"), 0.0, 0.0])
    header = TrainedModel.load(good).metadata()
    # write through the raw format (our writer refuses): the loader must refuse by itself
    from ponyclassifier.core import modelfile

    data = modelfile._serialise(bad, save, header)
    bad.write_bytes(data)
    with pytest.raises(ModelFileError, match="not all finite") as e:
        TrainedModel.load(bad)
    assert "bad.pony" in str(e.value)


def _limit(monkeypatch, cls, max_batch, *, when=lambda module: True):
    """``cls.forward`` raises CUDA's out-of-memory error for batches over ``max_batch``."""
    orig = cls.forward
    seen = []

    def forward(self, x):
        if when(self) and x.shape[0] > max_batch:
            seen.append(x.shape[0])
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return orig(self, x)

    monkeypatch.setattr(cls, "forward", forward)
    return seen


def test_out_of_memory_rebuilds_the_schedule_for_the_halved_batch(shapes, monkeypatch):
    # the reference: the same run at batch 8 from the start
    ref = Said()
    Trainer(cfg(epochs=4, batch_size=8)).fit(shapes, callbacks=[ref])

    class Shrink(Callback):  # from epoch 2 on, the GPU has room for 8 images only
        def on_epoch_begin(self, epoch, logs):
            if epoch == 2:
                _limit(monkeypatch, M.ScratchCNN, 8, when=lambda m: m.training)

    said = Said()
    result = Trainer(cfg(epochs=4, batch_size=16)).fit(shapes, callbacks=[said, Shrink()])
    assert result.epochs_run == 4 and result.model.training["batch_size_used"] == 8
    assert any("batch size halved to 8; repeating epoch 2" in m for m in said.messages)
    lr = [e["lr"] for e in said.epochs]
    ref_lr = [e["lr"] for e in ref.epochs]
    # epochs 2-4 follow the schedule of a batch-8 run: the learning rate did not collapse
    assert lr[1:] == pytest.approx(ref_lr[1:], rel=1e-6)
    assert lr[1] > 0.5 * max(ref_lr)  # still near the peak in epoch 2, not at the schedule's end
    assert math.isfinite(result.history["val_loss"][-1])


def test_out_of_memory_while_validating_halves_the_validation_batch(shapes, monkeypatch):
    seen = _limit(monkeypatch, M.ScratchCNN, 4, when=lambda m: not m.training)
    said = Said()
    result = Trainer(cfg(epochs=2)).fit(shapes, callbacks=[said])
    assert seen and result.epochs_run == 2 and result.val_report.count == result.model.training["val_images"]
    assert any("while computing the validation loss: batch size halved to 8" in m for m in said.messages)


def test_out_of_memory_while_caching_features_halves_that_batch(shapes, monkeypatch):
    seen = _limit(monkeypatch, M._LitePrefix, 4)
    said = Said()
    result = Trainer(cfg(recipe="transfer", epochs=2, image_size=32, head="linear")).fit(shapes, callbacks=[said])
    assert seen[:2] == [16, 8] and result.epochs_run == 2
    assert any("while computing the base's features: batch size halved to 4" in m for m in said.messages)
    assert result.val_report.count == result.model.training["val_images"]
    assert np.isfinite(result.history["train_loss"]).all()
