"""Export to ONNX and TorchScript: the exported files predict what the native model predicts,
on real photos (skimage.data) and on generated shapes; writing is atomic."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core import export as X
from ponyclassifier.core.engine import Trainer, TrainConfig
from ponyclassifier.core.preprocess import to_float, to_uint8_tensor
from ponyclassifier.core.trained import TrainedModel
from tests.conftest import SHAPES, draw_shape, make_shapes_dataset

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.astronaut()), Image.fromarray(data.chelsea()), Image.fromarray(data.coffee()),
            Image.fromarray(data.rocket()), Image.fromarray(data.camera()).convert("RGB")]


def batch(images, model: TrainedModel) -> torch.Tensor:
    return to_float(torch.stack([to_uint8_tensor(im.convert("RGB"), model.image_size, model.channels)
                                 for im in images]))


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory) -> TrainedModel:
    root = make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=20, size=32)
    cfg = TrainConfig(recipe="scratch", epochs=4, batch_size=16, lr=3e-3, augment=None, device="cpu")
    return Trainer(cfg).fit(root).model


def shape_images(n: int = 12) -> tuple[list[Image.Image], list[str]]:
    rng = np.random.default_rng(123)
    names = [SHAPES[i % 3] for i in range(n)]
    return [draw_shape(s, rng, 32) for s in names], names


def native(model: TrainedModel, x: torch.Tensor) -> np.ndarray:
    model.network.eval()
    with torch.no_grad():
        return model.network(x).numpy()


def onnx_run(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": x.numpy()})[0]


def test_onnx_predicts_the_same_classes_as_the_model_on_shapes(shapes_model, tmp_path):
    path = X.export_model(shapes_model, tmp_path / "shapes.onnx")
    images, truth = shape_images()
    x = batch(images, shapes_model)
    ours, theirs = native(shapes_model, x), onnx_run(path, x)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4)
    classes = shapes_model.classes
    assert np.mean([classes[i] == t for i, t in zip(theirs.argmax(1), truth)]) > 0.5  # it learned something
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["classes"] == classes and meta["image_size"] == 32


def test_onnx_of_the_pretrained_network_agrees_on_real_photos(tmp_path):
    model = TrainedModel.imagenet()
    path = X.export_onnx(model, tmp_path / "imagenet.onnx")
    x = batch(photos(), model)
    ours, theirs = native(model, x), onnx_run(path, x)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=2e-3)
    cat = model.classes[int(theirs[1].argmax())].lower()
    assert "cat" in cat or "tabby" in cat, cat  # skimage's chelsea is a tabby cat
    # dynamic batch: one image at a time gives the same answer
    single = onnx_run(path, x[1:2])
    np.testing.assert_allclose(single[0], theirs[1], rtol=1e-3, atol=2e-3)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_and_carries_the_classes(shapes_model, tmp_path):
    path = X.export_model(shapes_model, tmp_path / "shapes.pt")
    images, _ = shape_images(5)
    x = batch(images, shapes_model)
    extra = {"ponyclassifier.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), native(shapes_model, x), rtol=1e-4, atol=1e-5)
    assert json.loads(extra["ponyclassifier.json"])["classes"] == shapes_model.classes


def test_export_is_atomic_and_leaves_no_temp_files(shapes_model, tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the earlier export")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(X.os, "replace", broken_replace)
    with pytest.raises(X.ExportError, match="No space left"):
        X.export_onnx(shapes_model, target)
    assert target.read_bytes() == b"the earlier export"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_copy_model_file_and_unknown_format(shapes_model, tmp_path):
    src = tmp_path / "a.pony"
    shapes_model.save(src)
    dst = X.copy_model_file(src, tmp_path / "b.pony")
    assert TrainedModel.load(dst).classes == shapes_model.classes
    with pytest.raises(X.ExportError, match="unknown export format"):
        X.export_model(shapes_model, tmp_path / "m.xyz")
