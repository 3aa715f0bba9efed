"""The auto settings: what the policy chooses for which data, and that training uses and
reports exactly that (no Qt, no GPU)."""

from __future__ import annotations

import pytest
import torch

from ponyclassifier.core import policy as P
from ponyclassifier.core.augment import AugmentConfig
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.trained import TrainedModel

from ..conftest import make_shapes_dataset


def facts(images=6000, classes=10, size=28, side=None, channels=1) -> P.DataFacts:
    return P.DataFacts(images=images, classes=classes, min_per_class=images // classes, image_size=size,
                       source_side=side or size, channels=channels)


def plan(recipe="scratch", f=None, **kw) -> P.TrainingPlan:
    return P.plan_training(TrainConfig(recipe=recipe, **kw).resolved(), f or facts())


def test_short_runs_and_tiny_images_get_no_augmentation():
    p = plan(epochs=5)
    assert p.augment.value is None and p.augment.auto
    assert "short run of 5 epochs" in p.augment.text()
    # a long run, but 28 px pictures: still none
    p = plan(epochs=40)
    assert p.augment.value is None and "28 px" in p.augment.reason


def test_augmentation_grows_with_image_size_and_epochs():
    mild = plan(epochs=15, f=facts(size=48, channels=3)).augment.value
    strong = plan(epochs=40, f=facts(size=150, side=400, channels=3)).augment.value
    assert mild is not None and strong is not None
    assert 0 < mild.rotation < strong.rotation and mild.shear == 0 < strong.shear
    assert strong.rotation == AugmentConfig().rotation  # the Keras strengths of the talks


def test_flips_only_for_colour_photos_and_never_when_forbidden():
    gray = plan(epochs=40, f=facts(size=64, side=64, channels=1)).augment
    photo = plan(epochs=40, f=facts(size=150, side=300, channels=3)).augment
    small_colour = plan(epochs=40, f=facts(size=40, side=40, channels=3)).augment
    assert not gray.value.horizontal_flip and "mirror image" in gray.reason
    assert photo.value.horizontal_flip and "colour photos" in photo.reason
    assert not small_colour.value.horizontal_flip
    no_flip = P.plan_training(TrainConfig(epochs=40, allow_flip=False).resolved(),
                              facts(size=150, side=300, channels=3)).augment
    assert not no_flip.value.horizontal_flip and "as asked" in no_flip.reason


def test_transfer_augments_nothing_by_default_and_keeps_what_is_set():
    assert plan("transfer", f=facts(size=224, side=300, channels=3)).augment.value is None
    asked = AugmentConfig(rotation=5)
    d = plan("transfer", f=facts(size=224, side=300, channels=3), augment=asked).augment
    assert d.value == asked and not d.auto and d.reason == "as set"
    off = plan(augment=None).augment
    assert off.value is None and not off.auto


def test_small_sets_get_small_batches_and_more_epochs():
    tiny = plan(f=facts(images=140, classes=2, size=25))
    big = plan(f=facts(images=7000, classes=10, size=28))
    photos = plan(f=facts(images=2000, classes=2, size=150, side=400, channels=3))
    assert tiny.batch_size.value == 32 and big.batch_size.value == 64 and photos.batch_size.value == 32
    assert tiny.epochs.value > big.epochs.value == P.SCRATCH_MIN_EPOCHS
    assert tiny.epochs.value <= P.SCRATCH_MAX_EPOCHS and "small set" in tiny.epochs.reason
    # what is set is kept, and said to be set
    kept = plan(f=facts(images=140, classes=2, size=25), batch_size=64, epochs=3, lr=0.01)
    assert (kept.batch_size.value, kept.epochs.value, kept.lr.value) == (64, 3, 0.01)
    assert all(not d.auto for d in (kept.batch_size, kept.epochs, kept.lr))


def test_validation_share_and_refit():
    small = plan(f=facts(images=800))
    large = plan(f=facts(images=20000))
    assert small.val_split.value == 0.2 and large.val_split.value == 0.1
    assert small.refit.value is True and "validation figures are from the first pass" in small.refit.reason
    assert plan(f=facts(images=8000)).refit.value is False  # scratch twice on a big set: no
    assert plan("transfer", f=facts(images=50000, size=224)).refit.value is True  # free on cached features
    assert plan("finetune", f=facts(images=500, size=224)).refit.value is False
    assert plan(f=facts(images=800), val_split=0.0).refit.value is False
    assert plan(f=facts(images=800), refit=False).refit.value is False


def test_every_line_says_auto_and_why():
    lines = plan(f=facts(images=300, classes=3, size=32, channels=3)).lines()
    assert len(lines) == 6
    for line in lines:
        assert ": auto: " in line and line.endswith(")") and "(" in line


def test_training_uses_and_records_the_plan(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=10, size=32)
    messages = []

    from ponyclassifier.core.callbacks import Callback

    class Said(Callback):
        def on_message(self, text):
            messages.append(text)

    from ponyclassifier.core.callbacks import ModelCheckpoint

    held_out = tmp_path / "held-out.pony"  # the best epoch's model, before the refit
    result = Trainer(TrainConfig(epochs=2, device="cpu")).fit(data, callbacks=[Said(), ModelCheckpoint(held_out)])
    assert result.plan.batch_size.value == 32 and result.plan.augment.value is None
    assert any(m.startswith("batch size: auto: 32") for m in messages)
    assert any(m.startswith("augmentation: auto: none") for m in messages)
    # small set: refitted on all 30 images after the validation images chose the epoch
    assert result.refit_epochs == result.best_epoch and any(m.startswith("Refit:") for m in messages)
    assert result.model.training["refit"] == {"epochs": result.best_epoch, "images": 30}
    path = tmp_path / "m.pony"
    result.model.save(path)
    stored = TrainedModel.load(path).training
    assert stored["plan"]["batch size"] == {"value": 32, "auto": True, "reason": result.plan.batch_size.reason}
    assert stored["batch_size_used"] == 32 and stored["augment"] == "auto"
    # the final model is another network than the held-out one...
    before = TrainedModel.load(held_out).network.state_dict()
    after = result.model.network.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # ...but the validation figures are the held-out model's: its epoch's score, and its predictions
    assert result.val_report.accuracy == pytest.approx(result.history["val_accuracy"][result.best_epoch - 1])
    assert len(result.val_predictions) == result.val_report.count == result.model.training["val_images"]
    agree = sum(p["true"] == p["predicted"] for p in result.val_predictions) / len(result.val_predictions)
    assert agree == pytest.approx(result.val_report.accuracy)
