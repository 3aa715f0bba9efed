"""What did the network learn, and why did it say that? Qt-free explanation engine.

Everything takes a :class:`~ponyclassifier.core.trained.TrainedModel` (or a bare
``nn.Module``) and images from the shared preprocessing (:func:`preprocess.load_input`:
uint8 (C, S, S); float tensors in [0, 1] and numpy (H, W, C) arrays work too), and returns
numpy arrays ready for display:

- the network's convolution layers (:func:`conv_layers`), their filters
  (:func:`first_layer_filters`, :func:`layer_filters`) and response maps
  (:func:`activations`, :func:`tile_maps`);
- saliency for the predicted or a chosen class, each an (H, W) float map in [0, 1] at the
  image's size: :func:`vanilla_gradients` (optionally SmoothGrad), :func:`grad_cam`,
  :func:`occlusion`; and :func:`overlay` to paint one over the photo;
- :func:`maximize_filter`: the pattern a filter looks for, by gradient ascent on the input.

Every function puts the network in eval mode, turns off parameter gradients, and puts both
back as they were, with every hook removed, however it ends (no global state). Long jobs
take ``progress(done, total)`` and ``should_stop()`` like the rest of core.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerInfo", "conv_layers", "find_layer", "first_layer_filters", "layer_filters", "activations",
           "tile_maps", "predict_target", "vanilla_gradients", "grad_cam", "occlusion", "overlay", "apply_colormap",
           "COLORMAPS", "filter_response",
           "maximize_filter", "default_cam_layer", "Picture", "load_picture"]

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


# ------------------------------------------------------------------------ plumbing


def _network(model: Any) -> nn.Module:
    net = getattr(model, "network", model)
    if not isinstance(net, nn.Module):
        raise TypeError(f"expected a TrainedModel or a torch nn.Module, not {type(model).__name__}")
    return net


def _device(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    for b in net.buffers():
        return b.device
    return torch.device("cpu")


def _input_channels(model: Any, net: nn.Module) -> int:
    ch = getattr(model, "channels", None)
    if ch:
        return int(ch)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            return 3 if type(net).__name__ == "EfficientNetLite0" else m.in_channels
    return 3


def _input_size(model: Any, net: nn.Module) -> int | None:
    """The size the network was trained at: the TrainedModel's, else guessed from the network."""
    size = getattr(model, "image_size", None)
    if size:
        return int(size)
    if type(net).__name__ == "EfficientNetLite0":
        return 224
    if isinstance(getattr(net, "image_size", None), int):
        return net.image_size
    return None


@contextlib.contextmanager
def _prepared(net: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; both restored afterwards."""
    was_training = net.training
    flags = [(p, p.requires_grad) for p in net.parameters()]
    try:
        net.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, rg in flags:
            p.requires_grad_(rg)
        net.train(was_training)


def _as_float_image(image: Any) -> torch.Tensor:
    """Any supported image -> float (1, C, H, W) in [0, 1] on the CPU."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3):
            arr = arr[..., :3].transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    elif isinstance(image, torch.Tensor):
        t = image.detach().cpu()
    elif hasattr(image, "convert"):  # a PIL image
        t = torch.from_numpy(np.asarray(image.convert("RGB")).transpose(2, 0, 1).copy())
    else:
        raise TypeError(f"expected an image tensor or array, not {type(image).__name__}")
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"expected an image (C, H, W), not shape {tuple(t.shape)}")
    t = t.float().div(255.0) if t.dtype == torch.uint8 else t.float()
    return t[None]


def _model_input(model: Any, net: nn.Module, image: Any, resize: bool = True) -> tuple[torch.Tensor, tuple[int, int]]:
    """(1, C, S, S) float input for the network on its device, and the image's own (H, W)."""
    x = _as_float_image(image)
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    ch = _input_channels(model, net)
    if x.shape[1] != ch:
        if ch == 1:
            x = (x[:, :3] * torch.tensor([0.299, 0.587, 0.114])[: x.shape[1], None, None]).sum(1, keepdim=True) \
                if x.shape[1] >= 3 else x[:, :1]
        elif ch == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise ValueError(f"the model wants {ch}-channel images, this one has {x.shape[1]}")
    size = _input_size(model, net) if resize else None
    if size and hw != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.to(_device(net)).contiguous(), hw


def _to_image_size(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(h, w) map -> (H, W), bilinear."""
    if tuple(m.shape[-2:]) == hw:
        return m
    return F.interpolate(m[None, None], size=hw, mode="bilinear", align_corners=False)[0, 0]


def _unit(m: torch.Tensor, clip_percentile: float | None = None) -> np.ndarray:
    """A non-negative map -> float32 [0, 1] by its maximum (or a high percentile)."""
    a = m.detach().float().cpu().numpy()
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    a = np.maximum(a, 0.0)
    top = float(np.percentile(a, clip_percentile)) if clip_percentile else float(a.max())
    if top <= 0:
        top = float(a.max())
    if top <= 0:
        return np.zeros(a.shape, np.float32)
    return np.clip(a / top, 0.0, 1.0).astype(np.float32)


class _Reached(Exception):
    """Raised by a hook to end a forward pass once the wanted layer has run."""


# -------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class LayerInfo:
    name: str  # readable, e.g. "block 3 · depthwise 5x5"
    module_path: str  # the Conv2d in net.named_modules(), e.g. "_blocks.3._depthwise_conv"
    kind: str  # conv | stem | expand | depthwise | project | head
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    output_shape: tuple[int, int, int]  # (C, h, w) of the conv output at the model's input size
    # Where the layer's response is read after its batch norm, and the activation applied
    # there ("relu", "relu6" or None): the maps the next layer actually sees.
    response_path: str = field(default="", repr=False, compare=False)
    activation: str | None = field(default=None, repr=False, compare=False)
    groups: int = field(default=1, repr=False, compare=False)


def _ksize(conv: nn.Conv2d) -> str:
    kh, kw = conv.kernel_size
    return f"{kh}x{kw}"


def _describe_convs(net: nn.Module) -> list[tuple[str, str, str, str, str | None]]:
    """(module_path, name, kind, response_path, activation) per Conv2d, in module order."""
    mods = dict(net.named_modules())
    out = []
    if type(net).__name__ == "EfficientNetLite0":
        out.append(("_conv_stem", f"stem · conv {_ksize(net._conv_stem)}", "stem", "_bn0", "relu6"))
        for i, b in enumerate(net._blocks):
            if hasattr(b, "_expand_conv"):
                out.append((f"_blocks.{i}._expand_conv", f"block {i} · expand {_ksize(b._expand_conv)}", "expand",
                            f"_blocks.{i}._bn0", "relu6"))
            out.append((f"_blocks.{i}._depthwise_conv", f"block {i} · depthwise {_ksize(b._depthwise_conv)}",
                        "depthwise", f"_blocks.{i}._bn1", "relu6"))
            out.append((f"_blocks.{i}._project_conv", f"block {i} · project {_ksize(b._project_conv)}", "project",
                        f"_blocks.{i}._bn2", None))
        out.append(("_conv_head", f"head · conv {_ksize(net._conv_head)}", "head", "_bn1", "relu6"))
        return out
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential):
        n = 0
        layers = list(features)
        for j, m in enumerate(layers):
            if not isinstance(m, nn.Conv2d):
                continue
            n += 1
            resp, act = f"features.{j}", None
            if (j + 3 < len(layers) and isinstance(layers[j + 1], nn.MaxPool2d)
                    and isinstance(layers[j + 2], nn.BatchNorm2d) and isinstance(layers[j + 3], nn.ReLU)):
                # pooled before its batch norm (the scratch network's block): the maps at full
                # resolution, through that batch norm and ReLU, are what the pooling picks from
                act = f"{_BN_RELU}features.{j + 2}"
            elif j + 1 < len(layers) and isinstance(layers[j + 1], nn.BatchNorm2d):
                resp = f"features.{j + 1}"
                if j + 2 < len(layers) and isinstance(layers[j + 2], (nn.ReLU, nn.ReLU6)):
                    act = "relu6" if isinstance(layers[j + 2], nn.ReLU6) else "relu"
            elif j + 1 < len(layers) and isinstance(layers[j + 1], (nn.ReLU, nn.ReLU6)):
                act = "relu6" if isinstance(layers[j + 1], nn.ReLU6) else "relu"
            out.append((f"features.{j}", f"conv {n} · {_ksize(m)}", "conv", resp, act))
        if out:
            return out
    n = 0
    for path, m in mods.items():
        if isinstance(m, nn.Conv2d):
            n += 1
            kind = "depthwise" if m.groups > 1 and m.groups == m.in_channels else "conv"
            out.append((path, f"conv {n} · {path} {_ksize(m)}", kind, path, None))
    return out


_LAYERS_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_LAYERS_LOCK = threading.Lock()


def conv_layers(model: Any) -> list[LayerInfo]:
    """Every convolution of the network in forward order, with its output shape for the
    model's input size (found by one forward pass of a blank image, once per network and
    input size: a network's layers never change, and saliency or live Grad-CAM ask often)."""
    net = _network(model)
    key = (_input_size(model, net) or 224, _input_channels(model, net))
    with _LAYERS_LOCK:
        cached = _LAYERS_CACHE.get(net, {}).get(key)
    if cached is not None:
        return list(cached)
    layers = _conv_layers(model, net)
    with _LAYERS_LOCK:
        _LAYERS_CACHE.setdefault(net, {})[key] = tuple(layers)
    return layers


def _conv_layers(model: Any, net: nn.Module) -> list[LayerInfo]:
    described = _describe_convs(net)
    mods = dict(net.named_modules())
    size = _input_size(model, net) or 224
    ch = _input_channels(model, net)
    shapes: dict[str, tuple[int, int, int]] = {}
    order: list[str] = []
    handles = []

    def hook_for(path: str):
        def hook(_m, _inp, out):
            if path not in shapes:
                order.append(path)
                shapes[path] = tuple(int(v) for v in out.shape[1:])
        return hook

    with _prepared(net):
        try:
            for path, *_ in described:
                handles.append(mods[path].register_forward_hook(hook_for(path)))
            with torch.no_grad():
                net(torch.zeros(1, ch, size, size, device=_device(net)))
        finally:
            for h in handles:
                h.remove()
    rank = {p: i for i, p in enumerate(order)}
    described.sort(key=lambda d: rank.get(d[0], len(rank)))
    result = []
    for path, name, kind, resp, act in described:
        conv = mods[path]
        result.append(LayerInfo(name=name, module_path=path, kind=kind, in_channels=conv.in_channels,
                                out_channels=conv.out_channels, kernel_size=tuple(conv.kernel_size),
                                output_shape=shapes.get(path, (conv.out_channels, 0, 0)),
                                response_path=resp, activation=act, groups=conv.groups))
    return result


def find_layer(model: Any, layer: str | int | LayerInfo | None, layers: list[LayerInfo] | None = None) -> LayerInfo:
    """A layer by readable name, module path, index in :func:`conv_layers` (negative from the
    end) or LayerInfo; None: the first."""
    layers = layers if layers is not None else conv_layers(model)
    if not layers:
        raise ValueError("this network has no convolution layers")
    if layer is None:
        return layers[0]
    if isinstance(layer, LayerInfo):
        layer = layer.module_path
    if isinstance(layer, int):
        return layers[layer]
    for info in layers:
        if layer in (info.name, info.module_path):
            return info
    names = ", ".join(i.name for i in layers[:4])
    raise ValueError(f"no convolution layer {layer!r} (layers are named like {names}, ...)")


def default_cam_layer(model: Any, layers: list[LayerInfo] | None = None) -> LayerInfo:
    """The last convolution whose output is still a map (spatial size > 1)."""
    layers = layers if layers is not None else conv_layers(model)
    for info in reversed(layers):
        if info.output_shape[1] > 1 and info.output_shape[2] > 1:
            return info
    raise ValueError("no convolution layer has a spatial output larger than 1x1 at this input size")


# ------------------------------------------------------------------------- filters


def _minmax_per_filter(w: np.ndarray) -> np.ndarray:
    """(N, kh, kw, C) -> each filter stretched to [0, 1] (a constant filter -> 0.5)."""
    w = w.astype(np.float32)
    lo = w.reshape(len(w), -1).min(1)[:, None, None, None]
    hi = w.reshape(len(w), -1).max(1)[:, None, None, None]
    span = hi - lo
    return np.where(span > 0, (w - lo) / np.where(span > 0, span, 1), 0.5).astype(np.float32)


def layer_filters(model: Any, layer_name: str | int | LayerInfo | None = None,
                  in_channel: int | None = None) -> np.ndarray:
    """A conv layer's weights as (N, kh, kw, c), each filter min-max normalised to [0, 1].

    With ``in_channel`` the slice that reads that input channel (c = 1). Without it: the
    colour filters of a layer reading 3 channels (the first layer of an RGB network), the
    one channel of a 1-input or depthwise layer, otherwise the mean over input channels.
    """
    net = _network(model)
    info = find_layer(model, layer_name)
    w = dict(net.named_modules())[info.module_path].weight.detach().float().cpu().numpy()  # (N, cin/g, kh, kw)
    if in_channel is not None:
        if not 0 <= in_channel < w.shape[1]:
            raise ValueError(f"{info.name} reads {w.shape[1]} input channels per filter; "
                             f"channel {in_channel} does not exist")
        w = w[:, in_channel: in_channel + 1]
    elif w.shape[1] not in (1, 3):
        w = w.mean(1, keepdims=True)
    return _minmax_per_filter(w.transpose(0, 2, 3, 1))


def first_layer_filters(model: Any) -> np.ndarray:
    """The first convolution's filters (N, kh, kw, 3 or 1) for display: what the network
    looks for in the raw pixels (edges, colour blobs)."""
    return layer_filters(model, 0)


# --------------------------------------------------------------------- activations


def _capture(net: nn.Module, x: torch.Tensor, info: LayerInfo, stop_after: bool, raw: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the network and return (the layer's response, the network output or None).

    The response is read after the conv's batch norm (a clone, so in-place activations
    later cannot change it); ``raw`` reads the conv output itself. With ``stop_after`` the
    forward pass ends right there (cheaper; no output).
    """
    mods = dict(net.named_modules())
    path = info.module_path if raw or not info.response_path else info.response_path
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        store["r"] = out
        if stop_after:
            raise _Reached
        return out.clone()  # the network goes on with a copy; in-place ReLUs cannot touch ours

    handle = mods[path].register_forward_hook(hook)
    try:
        try:
            y = net(x)
        except _Reached:
            y = None
    finally:
        handle.remove()
    if "r" not in store:
        raise RuntimeError(f"layer {info.name} did not run")
    return store["r"], y


_BN_RELU = "bn-relu:"  # an activation that is a batch norm (this module path) and a ReLU


def _activate(r: torch.Tensor, act: str | None, net: nn.Module | None = None) -> torch.Tensor:
    if act is not None and act.startswith(_BN_RELU) and net is not None:
        bn = dict(net.named_modules())[act[len(_BN_RELU):]]
        return F.relu(F.batch_norm(r, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))
    if act == "relu":
        return F.relu(r)
    if act == "relu6":
        return F.relu6(r)
    return r


def _gradient_at_response(g: torch.Tensor, act: str | None, net: nn.Module) -> torch.Tensor:
    """Grad-CAM weighs channels by the gradient at the normalised response. Where the batch
    norm comes after pooling, the captured gradient is at the conv output, scaled by the
    norm's gamma / sigma per channel: undo that (a channel the norm turns off weighs 0)."""
    if act is None or not act.startswith(_BN_RELU):
        return g
    bn = dict(net.named_modules())[act[len(_BN_RELU):]]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).to(g.dtype).view(1, -1, 1, 1)
    safe = scale.abs() > 1e-6
    return torch.where(safe, g / torch.where(safe, scale, torch.ones_like(scale)), torch.zeros_like(g))


def activations(model: Any, image: Any, layer_name: str | int | LayerInfo | None = None,
                raw: bool = False) -> np.ndarray:
    """Response maps (C, h, w) of a conv layer for one image: after its batch norm and
    activation (what the next layer sees), or the bare conv output with ``raw=True``."""
    net = _network(model)
    info = find_layer(model, layer_name)
    with _prepared(net):
        x, _ = _model_input(model, net, image)
        with torch.no_grad():
            r, _ = _capture(net, x, info, stop_after=True, raw=raw)
            if not raw:
                r = _activate(r, info.activation, net)
    return r[0].float().cpu().numpy()


def tile_maps(maps: np.ndarray, cols: int | None = None, pad: int = 1, normalise: str = "each",
              limit: int | None = None) -> np.ndarray:
    """Tile (C, h, w) maps into one uint8 grid image (rows x cols), ``pad`` pixels apart.

    ``normalise``: 'each' (every map to its own 0..255), 'all' (one scale for all maps, so
    strong and weak channels can be compared) or 'none' (maps already in [0, 1]).
    """
    m = np.asarray(maps, dtype=np.float32)
    if m.ndim == 2:
        m = m[None]
    if limit is not None:
        m = m[:limit]
    n, h, w = m.shape
    if n == 0:
        return np.zeros((h, w), np.uint8)
    if normalise == "each":
        lo = m.reshape(n, -1).min(1)[:, None, None]
        hi = m.reshape(n, -1).max(1)[:, None, None]
        m = np.where(hi > lo, (m - lo) / np.where(hi > lo, hi - lo, 1), 0.0)
    elif normalise == "all":
        lo, hi = float(m.min()), float(m.max())
        m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    elif normalise != "none":
        raise ValueError("normalise must be 'each', 'all' or 'none'")
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = m[i]
    return (np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------------ saliency


def predict_target(model: Any, image: Any) -> tuple[int, np.ndarray]:
    """(the predicted class index, the class probabilities) for one image."""
    net = _network(model)
    with _prepared(net), torch.no_grad():
        x, _ = _model_input(model, net, image)
        p = torch.softmax(net(x).float(), 1)[0].cpu().numpy()
    return int(p.argmax()), p


def _target(logits: torch.Tensor, target: int | None) -> int:
    if target is None:
        return int(logits[0].argmax())
    n = logits.shape[1]
    if not -n <= int(target) < n:
        raise ValueError(f"class index {target} is out of range for {n} classes")
    return int(target) % n


def vanilla_gradients(model: Any, image: Any, target: int | None = None, smooth: int = 0,
                      noise: float = 0.1, batch_size: int = 8, seed: int = 0,
                      progress: Progress | None = None, should_stop: ShouldStop | None = None) -> np.ndarray:
    """|d class score / d input pixel|, max over colour channels (Simonyan et al.).

    The score is the class logit (before softmax). ``smooth=n`` averages the gradients of n
    noisy copies (SmoothGrad, noise ``noise`` x the image's value range) before taking the
    magnitude, which removes much of the speckle. Scaled so the 99.5th percentile is 1.
    """
    net = _network(model)
    with _prepared(net):
        x, hw = _model_input(model, net, image)
        n = max(int(smooth), 0)
        if n == 0:
            xs = x.clone().requires_grad_(True)
            logits = net(xs)
            tgt = _target(logits.detach(), target)
            (g,) = torch.autograd.grad(logits[:, tgt].sum(), xs)
            total = g[0]
        else:
            tgt = None
            if target is None:  # the class the clean image is predicted as
                with torch.no_grad():
                    tgt = _target(net(x), None)
            total = torch.zeros(x.shape[1:], device=x.device)
            gen = torch.Generator(device="cpu").manual_seed(seed)
            sigma = noise * float((x.max() - x.min()).clamp_min(1e-3))
            done = 0
            while done < n:
                if should_stop is not None and should_stop() and done:
                    break
                b = min(batch_size, n - done)
                eps = torch.randn((b, *x.shape[1:]), generator=gen).to(x.device) * sigma
                xs = (x + eps).requires_grad_(True)
                logits = net(xs)
                if tgt is None:  # a given class: checked against the first batch's logits
                    tgt = _target(logits.detach(), target)
                (g,) = torch.autograd.grad(logits[:, tgt].sum(), xs)
                total += g.sum(0)
                done += b
                if progress is not None:
                    progress(done, n)
            total = total / max(done, 1)
        heat = _to_image_size(total.abs().amax(0).detach().float().cpu(), hw)
    return _unit(heat, clip_percentile=99.5)


def grad_cam(model: Any, image: Any, target: int | None = None,
             layer_name: str | int | LayerInfo | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.): the layer's response maps weighted by the mean gradient
    of the class score with respect to each, summed, ReLU'd, upsampled to the image.

    Default layer: the last convolution whose output is still a map (EfficientNet: the head
    conv, 7x7 at 224; ScratchCNN: the last block's conv).
    """
    net = _network(model)
    layers = conv_layers(model)
    info = default_cam_layer(model, layers) if layer_name is None else find_layer(model, layer_name, layers)
    with _prepared(net):
        x, hw = _model_input(model, net, image)
        with torch.enable_grad():
            x.requires_grad_(True)  # parameters are frozen: the input carries the graph
            r, y = _capture(net, x, info, stop_after=False)
            tgt = _target(y, target)
            (g,) = torch.autograd.grad(y[0, tgt], r)
        with torch.no_grad():
            a = _activate(r, info.activation, net)[0].float()
            g = _gradient_at_response(g, info.activation, net)
            w = g[0].float().mean((1, 2))
            cam = F.relu((w[:, None, None] * a).sum(0))
        heat = _to_image_size(cam.cpu(), hw)
    return _unit(heat)


def occlusion(model: Any, image: Any, target: int | None = None, patch: int | None = None,
              stride: int | None = None, batch_size: int = 32, fill: float | str = 0.5,
              normalise: bool = True, score: str = "probability", progress: Progress | None = None,
              should_stop: ShouldStop | None = None) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus): how much the target class's probability
    drops when a ``fill`` patch (0.5: gray; 'mean': the image's mean colour) covers each
    place. Default patch: 1/7 of the input side, stride half a patch; the occluded copies
    run ``batch_size`` at a time. ``normalise=False`` keeps the raw drop in probability.
    The drop is computed in float64 from the other classes' probability mass, so a very
    sure model (p = 1 - 1e-12) still gives a map; ``score='logit'`` measures the drop in
    the class's logit instead.
    """
    if score not in ("probability", "logit"):
        raise ValueError("score must be 'probability' or 'logit'")
    net = _network(model)

    def loss(logits: torch.Tensor, tgt: int) -> torch.Tensor:
        """How far the target is from certain: 1 - p (as the other classes' probability
        mass, in float64, so a drop from 1 - 1e-12 to 1 - 1e-9 still registers), or -logit."""
        logits = logits.double()
        if score == "logit":
            return -logits[:, tgt]
        others = torch.cat([logits[:, :tgt], logits[:, tgt + 1:]], 1)
        return torch.exp(torch.logsumexp(others, 1) - torch.logsumexp(logits, 1))

    with _prepared(net):
        x, hw = _model_input(model, net, image)
        s_h, s_w = x.shape[-2:]
        side = min(s_h, s_w)
        patch = int(patch or max(2, round(side / 7)))
        patch = max(1, min(patch, side))
        stride = int(stride or max(1, patch // 2))
        if fill == "mean":
            fill_v = x.mean((2, 3), keepdim=True)[0]
        else:
            fill_v = torch.full((x.shape[1], 1, 1), float(fill), device=x.device)

        def starts(n: int) -> list[int]:
            s = list(range(0, n - patch + 1, stride))
            if s[-1] != n - patch:
                s.append(n - patch)
            return s


        spots = [(i, j) for i in starts(s_h) for j in starts(s_w)]
        with torch.no_grad():
            y0 = net(x)
            tgt = _target(y0, target)
            base = float(loss(y0, tgt)[0])
            drop = torch.zeros((s_h, s_w), dtype=torch.float64)
            count = torch.zeros((s_h, s_w), dtype=torch.float64)
            for k in range(0, len(spots), batch_size):
                if should_stop is not None and should_stop() and k:
                    break
                chunk = spots[k: k + batch_size]
                xb = x.repeat(len(chunk), 1, 1, 1)
                for b, (i, j) in enumerate(chunk):
                    xb[b, :, i: i + patch, j: j + patch] = fill_v
                xb = xb.contiguous(memory_format=torch.channels_last)  # ~1.3x faster on CPU
                q = loss(net(xb), tgt).cpu()
                for b, (i, j) in enumerate(chunk):
                    drop[i: i + patch, j: j + patch] += float(q[b]) - base
                    count[i: i + patch, j: j + patch] += 1
                if progress is not None:
                    progress(min(k + batch_size, len(spots)), len(spots))
            heat = (drop / count.clamp_min(1)).clamp_min(0)
        if normalise or score == "logit":  # scale first: tiny drops would vanish in float32
            top = float(heat.max())
            heat = heat / top if top > 0 else heat
        heat = _to_image_size(heat.float(), hw)
    if normalise or score == "logit":
        return _unit(heat)
    return heat.clamp(0, 1).numpy().astype(np.float32)


# ------------------------------------------------------------------------- overlay

# Anchor colours of a jet-like map (dark blue, blue, cyan, yellow, red, dark red).
_JET = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0],
                 [0.5, 0.0, 0.0]], np.float32)
_JET_AT = np.array([0.0, 0.11, 0.36, 0.62, 0.89, 1.0], np.float32)
_INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32) / 255
_INFERNO_AT = np.linspace(0, 1, len(_INFERNO), dtype=np.float32)
COLORMAPS = {"jet": (_JET_AT, _JET), "inferno": (_INFERNO_AT, _INFERNO),
             "gray": (np.array([0.0, 1.0], np.float32), np.array([[0, 0, 0], [1, 1, 1]], np.float32))}


def apply_colormap(values: np.ndarray, name: str = "jet") -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3), by linear interpolation."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r} (choose from {', '.join(COLORMAPS)})")
    at, colours = COLORMAPS[name]
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0, 1)
    rgb = np.stack([np.interp(v, at, colours[:, c]) for c in range(3)], axis=-1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def overlay(image_rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.5, colormap: str = "jet",
            weight_by_heat: bool = False) -> np.ndarray:
    """Blend a heat map (H, W) in [0, 1], coloured, over a uint8 RGB (H, W, 3) (or gray
    (H, W)) image; a heat map of another size is resized. ``weight_by_heat``: cold places
    stay the bare photo."""
    img = np.asarray(image_rgb)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an RGB image (H, W, 3), not shape {img.shape}")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    h = np.asarray(heat, dtype=np.float32)
    if h.shape != img.shape[:2]:
        h = _to_image_size(torch.from_numpy(np.ascontiguousarray(h)), img.shape[:2]).numpy()
    colours = apply_colormap(h, colormap).astype(np.float32)
    alpha = float(np.clip(opacity, 0.0, 1.0))
    a = alpha * np.clip(h, 0, 1)[..., None] if weight_by_heat else alpha
    out = img.astype(np.float32) * (1 - a) + colours * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


CAM_OPACITY = 0.6  # Grad-CAM colours at the hottest places (Predict's cards and the live view)
CAM_FLOOR = 0.25  # on a live picture, heat below this is left clear


def heat_rgba(heat: np.ndarray, opacity: float = CAM_OPACITY, floor: float = CAM_FLOOR,
              colormap: str = "jet") -> np.ndarray:
    """A heat map (H, W) in [0, 1] -> a uint8 RGBA layer (H, W, 4) to paint over a picture at
    display size. Like ``overlay(..., weight_by_heat=True)``, but fully clear below ``floor``:
    on a live picture a faint tint everywhere hides more than it shows, so only the places
    that mattered are coloured."""
    h = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0, 1)
    rgba = np.empty((*h.shape, 4), np.uint8)
    rgba[..., :3] = apply_colormap(h, colormap)
    alpha = np.clip((h - floor) / max(1e-6, 1 - floor), 0, 1) * (float(np.clip(opacity, 0, 1)) * 255)
    rgba[..., 3] = (alpha + 0.5).astype(np.uint8)
    return rgba


# ------------------------------------------------------------------ the picture


@dataclass
class Picture:
    """A picture to explain, decoded once: what is shown and what the model is given."""

    rgb: np.ndarray  # uint8 (H, W, 3), at most ``display_side`` pixels a side
    input: torch.Tensor | None  # uint8 (C, S, S): exactly :func:`preprocess.load_input`'s; None without a model
    original_size: tuple[int, int]  # (width, height) of the file, upright


def load_picture(source: Any, size: int | None = None, channels: int = 3, display_side: int = 512) -> Picture:
    """Decode ``source`` once (:func:`images.decode_image`) for both the picture to show and,
    when ``size`` is given, the model's input. The decode is :func:`preprocess.load_input`'s
    (a JPEG drafted to ``size``), so the input is byte for byte what training, evaluation and
    prediction see; the picture shown is made from the same pixels (a JPEG much larger than
    the model's input is then shown at its drafted size, never below ``size``). Raises
    ``ImageError``."""
    from .images import decode_image
    from .preprocess import to_uint8_tensor

    draft = (size, size) if size else (display_side, display_side)
    decoded = decode_image(source, draft_size=draft)
    im = decoded.image
    x = to_uint8_tensor(im, size, channels) if size else None
    im.thumbnail((display_side, display_side))
    return Picture(np.asarray(im).copy(), x, decoded.original_size)


# ------------------------------------------------------------ filter visualisation


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def filter_response(model: Any, image: Any, layer_name: str | int | LayerInfo, channel: int) -> float:
    """Mean pre-activation response of one filter to one image (what maximize_filter raises)."""
    net = _network(model)
    info = find_layer(model, layer_name)
    with _prepared(net), torch.no_grad():
        x, _ = _model_input(model, net, image, resize=False)
        r, _ = _capture(net, x, info, stop_after=True)
    return float(r[0, channel].float().mean())


def maximize_filter(model: Any, layer_name: str | int | LayerInfo, channel: int, steps: int = 64,
                    lr: float = 0.05, size: int | None = None, progress: Progress | None = None,
                    should_stop: ShouldStop | None = None, seed: int = 0, jitter: int | None = None,
                    blur_every: int = 4, blur_sigma: float = 0.5, time_limit: float | None = None,
                    stretch: bool = False) -> np.ndarray:
    """The input pattern that most excites one filter ("what the filters look for").

    Gradient ascent from faint noise on the input image to raise the mean (pre-activation)
    response of ``channel`` in the layer, with the usual regularisers so the picture shows
    structure rather than adversarial noise: random jitter (shifting the image by up to
    ``jitter`` strides of the layer each step; default about size/16 pixels), a small blur every ``blur_every`` steps, a normalised step of ``lr`` and
    clipping to [0, 1]. The forward pass stops at the layer. ``should_stop`` is checked and
    ``progress(step, steps)`` reported each step; a stop returns the pattern so far.
    Returns uint8 (size, size, 3), the optimised input itself (a gray network's pattern
    repeated into RGB); ``stretch=True`` boosts its contrast around the mean for display
    (which changes what the filter sees).
    """
    net = _network(model)
    info = find_layer(model, layer_name)
    if not 0 <= channel < info.out_channels:
        raise ValueError(f"{info.name} has {info.out_channels} filters; filter {channel} does not exist")
    size = int(size or _input_size(model, net) or 224)
    ch = _input_channels(model, net)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    device = _device(net)
    x = (0.5 + 0.05 * torch.randn((1, ch, size, size), generator=gen)).clamp(0, 1).to(device)
    t0 = time.perf_counter()
    with _prepared(net), torch.enable_grad():
        # Jitter in whole strides of the layer: a shift by part of a stride changes which
        # pixels the strided convolutions sample and undoes the pattern being built.
        with torch.no_grad():
            unit = max(1, round(size / _capture(net, x, info, stop_after=True)[0].shape[-1]))
        jitter = max(1, (size // 16) // unit) if jitter is None else int(jitter)
        for step in range(int(steps)):
            if should_stop is not None and should_stop():
                break
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
            dy, dx = ((torch.randint(-jitter, jitter + 1, (2,), generator=gen) * unit).tolist() if jitter
                      else (0, 0))
            xs = torch.roll(x, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
            r, _ = _capture(net, xs, info, stop_after=True)
            objective = r[0, channel].float().mean()
            (g,) = torch.autograd.grad(objective, xs)
            g = torch.roll(g, shifts=(-dy, -dx), dims=(2, 3))
            g = g / (g.pow(2).mean().sqrt() + 1e-8)
            with torch.no_grad():
                x = (x + lr * g).clamp_(0, 1)
                if blur_every and (step + 1) % blur_every == 0 and blur_sigma > 0:
                    x = _gaussian_blur(x, blur_sigma).clamp_(0, 1)
            if progress is not None:
                progress(step + 1, int(steps))
    img = x[0].detach().float().cpu()
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    if stretch:  # faint patterns made visible: mean to mid-gray, +-3 std to the full range
        img = img - img.mean()
        img = img / (6 * img.std() + 1e-8) + 0.5
    return (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
