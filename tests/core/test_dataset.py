"""Scanning, the report, splits, the decoded cache, the batch source, augmentation, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core.augment import AugmentConfig, build_augmenter
from ponyclassifier.core.dataset import BatchSource, scan_dataset, stratified_split
from ponyclassifier.core.metrics import classification_report

from ..conftest import make_shapes_dataset


def test_scan_reports_good_images_and_every_skipped_file(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=5)
    nested = data / "circle" / "holiday" / "day2"
    nested.mkdir(parents=True)
    Image.new("RGB", (40, 30), "red").save(nested / "deep.jpg")  # anywhere below a class folder counts
    (data / "square" / "notes.png").write_text("hello")  # text renamed .png
    (data / "square" / "empty.jpg").write_bytes(b"")
    (data / "triangle" / ".hidden.png").write_bytes(b"junk")  # hidden: not a candidate
    (data / "triangle" / "Thumbs.db").write_bytes(b"junk")
    (data / ".git").mkdir()  # hidden folders are not classes
    good = data / "triangle" / "triangle_000.png"
    (data / "triangle" / "half.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])

    report = scan_dataset(data)
    assert report.classes == ["circle", "square", "triangle"]
    assert report.counts == {"circle": 6, "square": 5, "triangle": 5}
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"notes.png", "empty.jpg", "half.png"}
    assert all(reasons.values())
    assert report.training_problems() == []


def test_scan_keeps_resized_images_in_memory_within_budget(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4, size=40)
    report = scan_dataset(data, image_size=24)
    assert report.images is not None and report.images.shape == (12, 3, 24, 24)
    assert report.images.dtype == torch.uint8
    small = scan_dataset(data, image_size=24, cache_budget=100)
    assert small.images is None  # too big for the budget: streamed from disk instead


def test_grayscale_dataset_is_detected(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=3, gray=True)
    report = scan_dataset(data, image_size=16)
    assert report.grayscale and report.channels == 1 and report.images.shape[1] == 1


def test_stratified_split_is_deterministic_stable_and_stratified(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=20)
    report = scan_dataset(data)
    tr, va = stratified_split(report, 0.25, seed=1)
    tr2, va2 = stratified_split(scan_dataset(data), 0.25, seed=1)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 60
    labels = report.labels
    assert np.bincount(labels[va]).tolist() == [5, 5, 5]
    other_tr, other_va = stratified_split(report, 0.25, seed=2)
    assert not np.array_equal(va, other_va)
    # adding an image moves at most one other image between the splits
    before = {report.samples[i].path for i in va}
    Image.new("RGB", (32, 32), "blue").save(data / "circle" / "zz_new.png")
    r2 = scan_dataset(data)
    _, va3 = stratified_split(r2, 0.25, seed=1)
    after = {r2.samples[i].path for i in va3}
    assert len(before - after) <= 1


def test_split_keeps_one_validation_image_for_tiny_classes(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=2)
    tr, va = stratified_split(scan_dataset(data), 0.1)
    assert len(va) == 3 and len(tr) == 3


def test_batch_source_streams_when_not_cached_and_matches_cache(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4)
    cached = scan_dataset(data, image_size=32)
    streamed = scan_dataset(data, image_size=32, cache_budget=0)
    idx = np.arange(12)
    kw = dict(image_size=32, channels=3, device=torch.device("cpu"), shuffle=False)
    a = torch.cat([x for x, _, _ in BatchSource(cached, idx, 5, **kw).batches()])
    b = torch.cat([x for x, _, _ in BatchSource(streamed, idx, 5, **kw).batches()])
    assert torch.equal(a, b)  # one preprocessing path, whether cached or not
    shuffled = BatchSource(cached, idx, 5, **{**kw, "shuffle": True}, seed=0)
    assert not np.array_equal(shuffled.order(0), shuffled.order(1))
    assert sorted(shuffled.order(0)) == list(idx)


def test_augmentation_is_per_image_and_keeps_range():
    x = torch.rand(8, 3, 32, 32)
    x[:] = x[0]  # eight identical images
    aug = build_augmenter(AugmentConfig(), seed=0)
    y = aug(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    diffs = [(y[0] - y[i]).abs().mean().item() for i in range(1, 8)]
    assert min(diffs) > 1e-3  # each image got its own random transform
    assert build_augmenter(None) is None
    assert build_augmenter(AugmentConfig(0, 0, 0, 0, 0, False, 0, 0)) is None


def test_flip_only_augmentation_mirrors_exactly():
    x = torch.rand(16, 3, 10, 10)
    cfg = AugmentConfig(rotation=0, width_shift=0, height_shift=0, shear=0, zoom=0, horizontal_flip=True,
                        brightness=0, contrast=0)
    y = build_augmenter(cfg, seed=0)(x)
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(16)]
    same = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(16)]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


def test_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    probs = rng.random((200, 4))
    probs[np.arange(200), y] += rng.random(200)  # better than chance
    pred = probs.argmax(1)
    r = classification_report(y, probs, ["a", "b", "c", "d"], paths=[f"{i}.png" for i in range(200)])
    assert r.accuracy == pytest.approx(accuracy_score(y, pred))
    assert r.macro_f1 == pytest.approx(f1_score(y, pred, average="macro"))
    p, rc, f, s = precision_recall_fscore_support(y, pred)
    for i, c in enumerate("abcd"):
        assert r.per_class[c]["precision"] == pytest.approx(p[i])
        assert r.per_class[c]["recall"] == pytest.approx(rc[i])
        assert r.per_class[c]["f1"] == pytest.approx(f[i])
        assert r.per_class[c]["support"] == s[i]
    assert r.confusion_matrix == confusion_matrix(y, pred).tolist()
    worst = r.top_losses[0]
    i = int(worst["path"].split(".")[0])
    assert pred[i] != y[i] and worst["loss"] == pytest.approx(-np.log(probs[i, y[i]]))


def test_class_warnings_name_small_and_outnumbered_classes_once_in_core():
    from ponyclassifier.core.folders import class_warnings

    w = class_warnings({"big": 40, "ok": 20, "small": 4, "empty": 0})
    assert set(w) == {"small", "empty"}
    assert "only 4 images; aim for at least 10 per class" in w["small"]
    assert "10.0× fewer images than 'big' (40)" in w["small"]
    assert w["empty"].startswith("only 0 images")
    assert class_warnings({}) == {} and class_warnings({"a": 12, "b": 12}) == {}


def test_a_class_folder_name_no_model_could_carry_refuses_training_up_front(tmp_path):
    """The app's training checks class names with the model file's rule before reading a
    picture, instead of training and then failing to save."""
    from ponyclassifier.core.dataset import DatasetError
    from ponyclassifier.core.engine import TrainConfig, Trainer

    root = make_shapes_dataset(tmp_path / "d", per_class=4, size=16, classes=("circle", "sq\x1bare"))
    with pytest.raises(DatasetError) as e:
        Trainer(TrainConfig(recipe="scratch", epochs=1, device="cpu")).fit(root)
    assert "control character (U+001B)" in str(e.value) and "rename the class folder" in str(e.value)
