"""Prediction, the trained-model file round trip, ImageNet mode, pretrained weights, no network."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core import modelfile, weights
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.modelfile import ModelFileError
from ponyclassifier.core.predict import Predictor
from ponyclassifier.core.trained import TrainedModel

from ..conftest import draw_shape, make_shapes_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    data = make_shapes_dataset(root / "data", per_class=20, size=32)
    result = Trainer(TrainConfig(epochs=6, lr=3e-3, batch_size=16, augment=None, device="cpu")).fit(data)
    path = root / "shapes.pony"
    result.model.save(path)
    return result.model, path, data


def test_model_file_round_trip_predicts_identically(trained):
    model, path, data = trained
    loaded = TrainedModel.load(path)
    assert loaded.classes == model.classes and loaded.recipe == "scratch"
    assert loaded.image_size == 32 and loaded.channels == 3
    x = torch.rand(4, 3, 32, 32)
    model.network.eval()
    with torch.no_grad():
        assert torch.allclose(model.network.cpu()(x), loaded.network(x), atol=1e-6)
    meta = modelfile.read_header(path).metadata
    for key in ("classes", "recipe", "architecture", "input", "normalization", "training", "metrics",
                "format_version", "created", "unsure_threshold"):
        assert key in meta, key


def test_predict_paths_files_folders_and_bad_files(trained, tmp_path):
    model, path, data = trained
    predictor = Predictor(TrainedModel.load(path), device="cpu")
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(5)
    draw_shape("circle", rng).save(folder / "a_circle.png")
    draw_shape("square", rng).save(folder / "b_square.jpg")
    (folder / "c_broken.png").write_text("nope")
    results = predictor.predict_paths([folder], top_k=2)
    assert [Path(r.path).name for r in results] == ["a_circle.png", "b_square.jpg", "c_broken.png"]
    assert results[2].error and "unsupported" in results[2].error
    for r in results[:2]:
        assert r.error is None and len(r.top) == 2
        assert r.top[0][1] >= r.top[1][1] and r.label == r.top[0][0] and r.confidence == r.top[0][1]
        assert 0 <= r.confidence <= 1
    d = results[0].to_dict()
    assert set(d) == {"path", "label", "confidence", "top", "unsure"}
    assert results[2].to_dict() == {"path": str(folder / "c_broken.png"), "error": results[2].error}


def test_predictions_agree_with_training_preprocessing(trained):
    model, path, data = trained
    from ponyclassifier.core.engine import evaluate_model

    report, _ = evaluate_model(TrainedModel.load(path), data, device="cpu")
    predictor = Predictor(TrainedModel.load(path), device="cpu")
    files = sorted(data.rglob("*.png"))
    preds = predictor.predict_paths(files)
    acc = np.mean([p.label == Path(p.path).parent.name for p in preds])
    assert acc == pytest.approx(report.accuracy)


def test_unsure_threshold_is_honest(trained, tmp_path):
    model, path, data = trained
    loaded = TrainedModel.load(path)
    img = data / "circle" / "circle_000.png"
    strict = Predictor(loaded, device="cpu", unsure_threshold=0.999).predict_paths([img])[0]
    lenient = Predictor(loaded, device="cpu", unsure_threshold=0.0).predict_paths([img])[0]
    assert strict.unsure != (strict.confidence >= 0.999)
    assert not lenient.unsure
    # the threshold travels in the model file
    loaded.unsure_threshold = 0.77
    loaded.save(tmp_path / "t.pony")
    assert TrainedModel.load(tmp_path / "t.pony").unsure_threshold == 0.77


def test_predict_image_matches_predict_path(trained):
    model, path, data = trained
    predictor = Predictor(TrainedModel.load(path), device="cpu")
    img = data / "square" / "square_003.png"
    a = predictor.predict_paths([img])[0]
    b = predictor.predict_image(Image.open(img).convert("RGB"))
    assert a.label == b.label and a.confidence == pytest.approx(b.confidence, abs=1e-6)


def test_wrong_class_count_is_refused_before_weights(trained, tmp_path):
    model, path, data = trained
    header = modelfile.read_header(path)
    meta = dict(header.metadata)
    meta["classes"] = meta["classes"] + ["extra"]
    _, tensors = modelfile.load_model_file(path)
    bad = tmp_path / "bad.pony"
    modelfile.save_model_file(bad, tensors, meta)
    with pytest.raises(ModelFileError, match="3 outputs|class names"):
        TrainedModel.load(bad)
    meta["classes"] = meta["classes"][:3]
    meta["architecture"] = dict(meta["architecture"], num_classes=4)
    meta["classes"] = meta["classes"] + ["extra"]
    modelfile.save_model_file(bad, tensors, meta)
    with pytest.raises(ModelFileError, match="architecture"):
        TrainedModel.load(bad)


def test_imagenet_mode_names_real_photos():
    from skimage import data as skdata

    model = TrainedModel.imagenet()
    assert len(model.classes) == 1000
    predictor = Predictor(model, device="cpu")
    cat = predictor.predict_image(Image.fromarray(skdata.chelsea()), top_k=5)
    coffee = predictor.predict_image(Image.fromarray(skdata.coffee()), top_k=5)
    assert any("cat" in label for label, _ in cat.top)
    assert any(w in label for label, _ in coffee.top for w in ("espresso", "cup", "coffee"))


def test_pretrained_weights_are_checksum_verified(monkeypatch):
    weights._cache.clear()
    monkeypatch.setattr(weights, "EFFICIENTNET_LITE0_SHA256", "0" * 64)
    with pytest.raises(weights.WeightsError, match="checksum mismatch"):
        weights.load_efficientnet_lite0_state()
    monkeypatch.undo()
    weights._cache.clear()
    state = weights.load_efficientnet_lite0_state()
    assert state["_fc.weight"].shape == (1000, 1280)


def test_user_weights_file_that_is_a_malicious_pickle_is_refused(tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    import pickle

    evil = tmp_path / "weights.pth"
    evil.write_bytes(pickle.dumps({"_conv_stem.weight": Evil()}))
    weights._cache.clear()
    with pytest.raises(weights.WeightsError):
        weights.load_efficientnet_lite0_state(evil)
    assert not sentinel.exists()


def test_nothing_reaches_the_network(tmp_path, monkeypatch):
    """Case 25: ImageNet prediction and transfer training with every connection refused."""

    def refuse(*a, **k):
        raise AssertionError(f"network access attempted: {a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    weights._cache.clear()
    data = make_shapes_dataset(tmp_path / "d", per_class=4, size=32)
    result = Trainer(TrainConfig(recipe="transfer", epochs=1, image_size=48, augment=None, device="cpu")).fit(data)
    assert result.epochs_run == 1
    Predictor(TrainedModel.imagenet(), device="cpu").predict_paths([data / "circle"])


def test_read_input_and_predict_inputs_give_what_predict_paths_gives(trained, tmp_path):
    """One decode (read_input) serves the picture and the model input; predicting those inputs
    gives exactly the answers of predict_paths (the same draft decode, the same batch maths)."""
    from ponyclassifier.core.predict import read_input
    from ponyclassifier.core.preprocess import load_input

    model, _, _ = trained
    rng = np.random.default_rng(4)
    files = []
    for i, shape in enumerate(("circle", "square", "triangle")):
        p = tmp_path / f"{shape}.jpg"
        draw_shape(shape, rng, 96 + 40 * i).save(p, quality=90)  # big enough for a draft decode
        files.append(p)
    predictor = Predictor(model, device="cpu")
    read = [read_input(f, model.image_size, model.channels) for f in files]
    for (image, x), f in zip(read, files):
        assert torch.equal(x, load_input(f, model.image_size, model.channels))
        assert min(image.size) >= model.image_size
    got = predictor.predict_inputs([str(f) for f in files], [x for _, x in read], top_k=3)
    expected = predictor.predict_paths(files, top_k=3)
    assert [(g.path, g.label, g.top) for g in got] == [(e.path, e.label, e.top) for e in expected]
    assert predictor.predict_inputs([], []) == []
