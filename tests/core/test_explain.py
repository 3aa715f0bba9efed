"""The explanation engine on cases where the answer is known.

A small ScratchCNN is trained for real on "bright square on a dark noisy background" vs
"background only"; every saliency method must then point at the square, and move with it.
The pretrained ImageNet network must look at the cat's face in skimage's cat photo.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core import explain as E
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.preprocess import load_input, to_uint8_tensor

S = 32
BOXES = [(4, 16, 10), (18, 3, 9), (11, 10, 11)]  # (top, left, side) of the square in test images


def square_image(rng: np.random.Generator, box=None) -> np.ndarray:
    """Dark, slightly noisy background; with ``box`` a bright square there (H, W, 3) uint8."""
    a = rng.integers(15, 50) + rng.normal(0, 8, (S, S, 3))
    if box is not None:
        y, x, w = box
        a[y:y + w, x:x + w] = rng.integers(170, 256) + rng.normal(0, 8, (w, w, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def box_mask(box, grow: int = 0) -> np.ndarray:
    y, x, w = box
    m = np.zeros((S, S), bool)
    m[max(0, y - grow): y + w + grow, max(0, x - grow): x + w + grow] = True
    return m


def _train_square_model(root, padding=None):
    """A scratch model that tells "a bright square somewhere" from "no square" (32x32)."""
    rng = np.random.default_rng(0)
    for cls in ("empty", "object"):
        (root / cls).mkdir()
        for i in range(80):
            box = None
            if cls == "object":
                w = int(rng.integers(S // 4, S // 3 + 1))
                y, x = rng.integers(0, S - w, 2)
                box = (y, x, w)
            Image.fromarray(square_image(rng, box)).save(root / cls / f"{i:03d}.png")
    with pytest.MonkeyPatch.context() as mp:
        if padding is not None:  # what model files from before "valid" convolutions have
            from ponyclassifier.core import models as M

            mp.setattr(M, "SCRATCH_PADDING", padding)
        result = Trainer(TrainConfig(recipe="scratch", epochs=8, augment=None, device="cpu", seed=0)).fit(root)
    model = result.model
    assert model.classes == ["empty", "object"] and model.image_size == S
    assert model.architecture["padding"] == (0 if padding is None else padding)
    assert result.history["val_accuracy"][-1] >= 0.9, result.history
    # Test images go through the one preprocessing path, from files like every other input.
    rng = np.random.default_rng(123)
    images = []
    for i, box in enumerate(BOXES):
        p = root / f"test_{i}.png"
        Image.fromarray(square_image(rng, box)).save(p)
        images.append(load_input(p, model.image_size, model.channels))
    return model, images


@pytest.fixture(scope="module")
def square_model(tmp_path_factory):
    """The product's default scratch network ("valid" 3x3 convolutions)."""
    return _train_square_model(tmp_path_factory.mktemp("squares"))


@pytest.fixture(scope="module")
def square_model_padded(tmp_path_factory):
    """The same with padded ("same") convolutions: no border effects, so every pixel position
    can matter equally and a method that follows the object shows it sharply."""
    return _train_square_model(tmp_path_factory.mktemp("squares_padded"), padding=1)


@pytest.fixture(scope="module")
def imagenet():
    from ponyclassifier.core.trained import TrainedModel

    return TrainedModel.imagenet()


@pytest.fixture(scope="module")
def cat():
    skdata = pytest.importorskip("skimage.data")
    return skdata.chelsea()  # (300, 451, 3)


def check_map(h: np.ndarray, shape) -> None:
    assert isinstance(h, np.ndarray) and h.shape == shape and h.dtype == np.float32
    assert np.isfinite(h).all() and h.min() >= 0.0 and h.max() <= 1.0 and h.max() > 0


def no_hooks(net: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in net.modules())


# ----------------------------------------------------------- saliency, known answer

SALIENCY = {
    "gradients": lambda m, img, t: E.vanilla_gradients(m, img, target=t),
    "smoothgrad": lambda m, img, t: E.vanilla_gradients(m, img, target=t, smooth=16),
    "grad_cam": lambda m, img, t: E.grad_cam(m, img, target=t),
    "occlusion": lambda m, img, t: E.occlusion(m, img, target=t, patch=8, stride=2),
}


@pytest.mark.parametrize("method", sorted(SALIENCY))
def test_saliency_points_at_the_object(square_model_padded, method):
    model, images = square_model_padded
    obj = model.classes.index("object")
    for i, (img, box) in enumerate(zip(images, BOXES)):
        assert E.predict_target(model, img)[0] == obj
        h = SALIENCY[method](model, img, None)  # target None: the predicted class, "object"
        check_map(h, (S, S))
        inside = box_mask(box)
        # Pixel gradients also light up the square's immediate surroundings (they define its
        # edges); "elsewhere" for them is more than 4 pixels away from the square.
        far = ~box_mask(box, grow=0 if method in ("grad_cam", "occlusion") else 4)
        assert h[inside].mean() > 2 * h[far].mean(), (method, i, h[inside].mean(), h[far].mean())
        # ...and the map moves with the object: the other test images' squares are not hot.
        # (SmoothGrad's noisy copies also show the model's real, weaker sensitivity to the
        # background's brightness around the square, so it gets a lower bar here.)
        factor = 1.5 if method == "smoothgrad" else 2.0
        for j, other in enumerate(BOXES):
            if j != i:
                elsewhere = box_mask(other) & far
                if elsewhere.sum() >= 9:
                    assert h[inside].mean() > factor * h[elsewhere].mean(), (method, i, j)
        # The peak (the mean position of the hottest 3 % of pixels) is on the object.
        ys, xs = np.nonzero(h >= np.quantile(h, 0.97))
        assert box_mask(box, grow=1)[int(round(ys.mean())), int(round(xs.mean()))], (method, i)


@pytest.mark.parametrize("method", sorted(SALIENCY))
def test_saliency_on_the_default_scratch_network(square_model, method):
    """The product's default network uses "valid" convolutions: a pixel near the border
    enters fewer 3x3 windows than one in the middle, so pixel gradients there are
    weaker everywhere off-centre (a real property of such networks, which the maps show).
    The object still stands out and the peak is on it; Grad-CAM and occlusion, which
    work on regions, also move with the object as sharply as with padded convolutions."""
    model, images = square_model
    obj = model.classes.index("object")
    for i, (img, box) in enumerate(zip(images, BOXES)):
        assert E.predict_target(model, img)[0] == obj
        h = SALIENCY[method](model, img, None)
        check_map(h, (S, S))
        far = ~box_mask(box, grow=0 if method in ("grad_cam", "occlusion") else 4)
        assert h[box_mask(box)].mean() > 2 * h[far].mean(), (method, i)
        ys, xs = np.nonzero(h >= np.quantile(h, 0.97))
        grow = 1 if method in ("grad_cam", "occlusion") else 3  # pixel gradients lean to the centre
        assert box_mask(box, grow=grow)[int(round(ys.mean())), int(round(xs.mean()))], (method, i, ys.mean(), xs.mean())
        if method in ("grad_cam", "occlusion"):
            for j, other in enumerate(BOXES):
                elsewhere = box_mask(other) & far
                if j != i and elsewhere.sum() >= 9:
                    assert h[box_mask(box)].mean() > 2 * h[elsewhere].mean(), (method, i, j)


def test_saliency_with_explicit_target_and_other_image_sizes(square_model):
    model, images = square_model
    img = images[0]
    a = E.grad_cam(model, img, target=1)
    np.testing.assert_allclose(a, E.grad_cam(model, img))
    # An image at another size: maps come back at that size (bilinear), still on the object.
    big = torch.nn.functional.interpolate(img[None].float(), size=(64, 80), mode="nearest")[0].to(torch.uint8)
    for name, fn in SALIENCY.items():
        h = fn(model, big, 1)
        check_map(h, (64, 80))
    g = E.grad_cam(model, big, 1)
    y, x, w = BOXES[0]
    ys, xs = slice(2 * y, 2 * (y + w)), slice(int(2.5 * x), int(2.5 * (x + w)))
    assert g[ys, xs].mean() > 2 * g.mean()
    with pytest.raises(ValueError):
        E.grad_cam(model, img, target=5)
    # "empty" as the target: a valid map; the raw probability drop can be asked for.
    check_map(E.vanilla_gradients(model, img, target=0), (S, S))
    raw = E.occlusion(model, img, target=1, patch=8, stride=4, normalise=False)
    assert raw.shape == (S, S) and 0 <= raw.min() and raw.max() <= 1
    check_map(E.occlusion(model, img, target=1, patch=8, stride=4, score="logit", fill="mean"), (S, S))


def test_occlusion_batches_progress_and_stop(square_model):
    model, images = square_model
    calls = []
    h1 = E.occlusion(model, images[1], patch=8, stride=4, batch_size=5, progress=lambda d, t: calls.append((d, t)))
    h2 = E.occlusion(model, images[1], patch=8, stride=4, batch_size=64)
    np.testing.assert_allclose(h1, h2, atol=1e-5)  # batching does not change the answer
    assert calls[-1][0] == calls[-1][1] == 49 and len(calls) == 10
    stops = iter([False, False, True])
    calls.clear()
    E.occlusion(model, images[1], patch=8, stride=4, batch_size=5, should_stop=lambda: next(stops, True),
                progress=lambda d, t: calls.append(d))
    assert calls == [5, 10]


def test_model_state_restored_and_no_hooks_left(square_model):
    model, images = square_model
    net = model.network
    net.train()
    flags = [p.requires_grad for p in net.parameters()]
    E.vanilla_gradients(model, images[0], smooth=2)
    E.grad_cam(model, images[0])
    E.occlusion(model, images[0], patch=8, stride=8)
    E.activations(model, images[0], "conv 2 · 3x3")
    E.maximize_filter(model, 0, 0, steps=2)
    E.conv_layers(model)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags and no_hooks(net)
    with pytest.raises(ValueError):
        E.grad_cam(model, images[0], target=7)
    def broken_stop():
        raise RuntimeError("the GUI went away")

    with pytest.raises(RuntimeError):
        E.maximize_filter(model, 1, 0, steps=5, should_stop=broken_stop)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags and no_hooks(net)
    net.eval()


# ------------------------------------------------------------ ImageNet + real photo


def test_grad_cam_on_the_cat_looks_at_its_face(imagenet, cat):
    img = torch.from_numpy(cat.transpose(2, 0, 1).copy())  # the full photo: resized for the net
    top, _ = E.predict_target(imagenet, img)
    assert 281 <= top <= 285, imagenet.classes[top]  # tabby / tiger / Persian / Siamese / Egyptian cat
    h = E.grad_cam(imagenet, img)
    check_map(h, cat.shape[:2])
    face = h[60:240, 120:340]  # eyes, nose and mouth
    border = np.ones(h.shape, bool)
    border[30:-30, 30:-30] = False
    assert face.mean() > 0.5 and face.mean() > 3 * h[border].mean(), (face.mean(), h[border].mean())
    # Same answer from the shared preprocessing (224x224 uint8) at that size.
    h224 = E.grad_cam(imagenet, to_uint8_tensor(Image.fromarray(cat), 224))
    check_map(h224, (224, 224))
    assert h224[45:180, 60:170].mean() > 3 * h224[np.pad(np.zeros((184, 184), bool), 20, constant_values=True)].mean()


def test_occlusion_and_gradients_on_the_cat(imagenet, cat):
    img = to_uint8_tensor(Image.fromarray(cat), 224)
    h = E.occlusion(imagenet, img, patch=56, stride=56, batch_size=16)
    check_map(h, (224, 224))
    check_map(E.vanilla_gradients(imagenet, img), (224, 224))


def test_overlay_and_colormap(cat):
    heat = np.zeros(cat.shape[:2], np.float32)
    heat[100:200, 150:300] = 1.0
    out = E.overlay(cat, heat, opacity=0.5)
    assert out.dtype == np.uint8 and out.shape == cat.shape
    np.testing.assert_array_equal(E.overlay(cat, heat, opacity=0.0), cat)
    hot, cold = out[150, 200].astype(int), out[20, 20].astype(int)
    assert hot[0] > hot[2]  # jet: red where hot...
    assert cold[2] > cat[20, 20, 2] * 0.5  # ...blue where cold
    cm = E.apply_colormap(np.array([0.0, 0.5, 1.0]))
    assert cm.shape == (3, 3) and cm[0, 2] > 100 and cm[0, 0] == 0 and cm[2, 0] > 100 and cm[2, 2] == 0
    np.testing.assert_array_equal(E.overlay(cat[..., 0], heat[:50, :50]).shape, cat.shape)  # gray, resized heat
    with pytest.raises(ValueError):
        E.apply_colormap(heat, "nope")


# ------------------------------------------------------------- layers and filters


def test_layers_scratch(square_model):
    model, _ = square_model
    layers = E.conv_layers(model)
    assert [l.name for l in layers] == ["conv 1 · 3x3", "conv 2 · 3x3"]
    # "valid" 3x3 convolutions: 32 -> 30 (pool 15) -> 13
    assert [l.output_shape for l in layers] == [(32, 30, 30), (64, 13, 13)]
    assert layers[0].in_channels == 3 and layers[1].in_channels == 32 and layers[0].kernel_size == (3, 3)
    assert E.default_cam_layer(model).name == "conv 2 · 3x3"
    # A bare network works too (its input size is inferred).
    assert [l.output_shape for l in E.conv_layers(model.network)] == [(32, 30, 30), (64, 13, 13)]


def test_layers_efficientnet(imagenet):
    layers = E.conv_layers(imagenet)
    names = [l.name for l in layers]
    assert names[0] == "stem · conv 3x3" and names[-1] == "head · conv 1x1"
    assert len(layers) == 1 + 16 * 2 + 15 + 1  # stem, depthwise+project per block, 15 expands, head
    info = E.find_layer(imagenet, "block 3 · depthwise 5x5")
    assert info.module_path == "_blocks.3._depthwise_conv" and info.kind == "depthwise"
    assert info.output_shape == (144, 28, 28)
    assert names.index("block 3 · expand 1x1") < names.index("block 3 · depthwise 5x5") < \
        names.index("block 3 · project 1x1") < names.index("block 4 · expand 1x1")
    assert layers[-1].output_shape == (1280, 7, 7) and layers[0].output_shape == (32, 112, 112)
    assert E.default_cam_layer(imagenet).name == "head · conv 1x1"
    assert E.find_layer(imagenet, "_conv_head") == layers[-1] and E.find_layer(imagenet, -1) == layers[-1]
    with pytest.raises(ValueError, match="no convolution layer"):
        E.find_layer(imagenet, "block 99 · nothing")


def test_filters(square_model, imagenet):
    model, _ = square_model
    f = E.first_layer_filters(model)
    assert f.shape == (32, 3, 3, 3) and f.dtype == np.float32
    np.testing.assert_allclose(f.reshape(32, -1).min(1), 0)
    np.testing.assert_allclose(f.reshape(32, -1).max(1), 1)
    w = model.network.features[1].weight.detach().numpy()
    k = 5
    expect = w[k].transpose(1, 2, 0)
    np.testing.assert_allclose(f[k], (expect - expect.min()) / (expect.max() - expect.min()), atol=1e-6)
    assert E.layer_filters(model, "conv 2 · 3x3", in_channel=7).shape == (64, 3, 3, 1)
    assert E.layer_filters(model, "conv 2 · 3x3").shape == (64, 3, 3, 1)
    with pytest.raises(ValueError):
        E.layer_filters(model, "conv 2 · 3x3", in_channel=32)
    assert E.first_layer_filters(imagenet).shape == (32, 3, 3, 3)
    assert E.layer_filters(imagenet, "block 3 · depthwise 5x5").shape == (144, 5, 5, 1)
    assert E.layer_filters(imagenet, "block 3 · project 1x1", in_channel=0).shape == (40, 1, 1, 1)


def test_activations(square_model, imagenet, cat):
    model, images = square_model
    a = E.activations(model, images[0], "conv 1 · 3x3")
    assert a.shape == (32, 30, 30) and a.min() >= 0  # after BN + ReLU
    raw = E.activations(model, images[0], "conv 2 · 3x3", raw=True)
    assert raw.shape == (64, 13, 13) and raw.min() < 0
    # The first layer responds to the square: its edges/area are more active than the background.
    y, x, w = BOXES[0]
    energy = np.pad(np.abs(a).sum(0), 1)  # a valid 3x3 map's pixel (i, j) is centred on image pixel (i+1, j+1)
    assert energy[y:y + w, x:x + w].mean() > energy[box_mask(BOXES[0], 3) == 0].mean()
    img = to_uint8_tensor(Image.fromarray(cat), 224)
    e = E.activations(imagenet, img, "block 3 · depthwise 5x5")
    assert e.shape == (144, 28, 28) and 0 <= e.min() and e.max() <= 6  # relu6
    grid = E.tile_maps(e, limit=16)
    assert grid.dtype == np.uint8 and grid.shape == (4 * 28 + 3, 4 * 28 + 3)
    assert E.tile_maps(a, cols=8, pad=2).shape == (4 * 30 + 3 * 2, 8 * 30 + 7 * 2)


# -------------------------------------------------------- filter visualisation


def test_maximize_filter_raises_the_activation(square_model):
    model, _ = square_model
    layer, channel = "conv 2 · 3x3", 3
    steps_seen = []
    img = E.maximize_filter(model, layer, channel, steps=30, progress=lambda s, n: steps_seen.append((s, n)))
    assert img.shape == (S, S, 3) and img.dtype == np.uint8
    assert steps_seen[-1] == (30, 30) and len(steps_seen) == 30
    start = E.maximize_filter(model, layer, channel, steps=0)  # the starting noise, same seed
    before = E.filter_response(model, torch.from_numpy(start.transpose(2, 0, 1).copy()), layer, channel)
    after = E.filter_response(model, torch.from_numpy(img.transpose(2, 0, 1).copy()), layer, channel)
    assert after > before + 1.0, (before, after)
    others = [E.filter_response(model, torch.from_numpy(img.transpose(2, 0, 1).copy()), layer, c)
              for c in range(8) if c != channel]
    assert after > np.mean(others)  # the picture excites that filter, not everything


def test_maximize_filter_should_stop_and_efficientnet(imagenet):
    n = {"calls": 0}

    def stop():
        n["calls"] += 1
        return n["calls"] > 3

    seen = []
    img = E.maximize_filter(imagenet, "block 3 · depthwise 5x5", 10, steps=100, size=64, should_stop=stop,
                            progress=lambda s, t: seen.append(s))
    assert img.shape == (64, 64, 3) and seen == [1, 2, 3]
    layer = "block 1 · expand 1x1"
    out = E.maximize_filter(imagenet, layer, 5, steps=12, size=64)
    start = E.maximize_filter(imagenet, layer, 5, steps=0, size=64)
    r = [E.filter_response(imagenet, torch.from_numpy(i.transpose(2, 0, 1).copy()), layer, 5) for i in (start, out)]
    assert r[1] > r[0] + 0.5, r
    with pytest.raises(ValueError):
        E.maximize_filter(imagenet, layer, 10_000)


def test_conv_layers_are_listed_once_per_network_and_size(square_model, monkeypatch):
    """Saliency and live Grad-CAM ask for the layers on every call: the forward pass that
    finds their shapes runs once per network and input size."""
    model, images = square_model
    calls = []
    real = E._conv_layers
    monkeypatch.setattr(E, "_conv_layers", lambda m, net: calls.append(1) or real(m, net))
    E._LAYERS_CACHE.clear()
    first = E.conv_layers(model)
    for _ in range(3):
        E.grad_cam(model, images[0])
        assert E.conv_layers(model) == first
    assert len(calls) == 1
    other = E.conv_layers(model.network)  # a bare network: the same size, inferred
    assert other == first and len(calls) == 1
