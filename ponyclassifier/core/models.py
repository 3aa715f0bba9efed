"""Recipe registry: the networks behind each recipe, rebuilt from a JSON architecture config.

Every network takes float images in [0, 1] (N, C, H, W) and does its own normalisation
(the first module), so training, prediction, explanation and export feed it the same thing.

Every network can also be split into a frozen ``prefix`` and a trainable ``suffix`` with
``forward(x) == suffix(prefix(x))``. The engine caches the prefix output once for frozen
bases (transfer, fine-tune), so an epoch costs only the trainable part.

Recipes:
- ``scratch``: a small convnet in the style of the talks that adapts to image size/channels.
- ``transfer``: EfficientNet-Lite0 with ImageNet weights, base frozen, new head.
- ``finetune``: ``transfer``, then the top blocks unfrozen and trained with a lower rate.
- ``imagenet``: the pretrained network's own 1000 ImageNet classes, no training.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import weights as W
from .headselect import make_head

RECIPES = ("scratch", "transfer", "finetune", "imagenet")

RECIPE_HELP = {
    "scratch": "A small convnet trained from nothing. Works on any image size and on "
    "grayscale; needs more images and epochs; best for simple pictures such as digits.",
    "transfer": "Reuse a network pretrained on ImageNet photos as a frozen feature "
    "extractor and train only a new head. Best start for photos and small datasets: "
    "trains in seconds once features are cached.",
    "finetune": "Transfer learning, then also retrain the top blocks of the pretrained "
    "network with a low learning rate. A few points more accuracy at more cost.",
    "imagenet": "No training: the pretrained network's own 1000 everyday ImageNet classes.",
}


class ArchitectureError(ValueError):
    """An architecture config we cannot build."""


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# --------------------------------------------------------------------- scratch CNN


SCRATCH_PADDING = 0  # "valid" 3x3 convolutions, as Keras' Conv2D default and the talks' convnets
# Each block pools right after its convolution, so BatchNorm and ReLU run on a quarter of the
# values: a training step costs 0.6-0.7x the classic conv-BN-ReLU-pool order on 2 CPU cores at
# 28-32 px (benchmarks/README.md), at the same accuracy. Files from before keep their order.
SCRATCH_ORDER = "conv-pool-bn-relu"
SCRATCH_ORDERS = ("conv-pool-bn-relu", "conv-bn-relu-pool")


class FastDropout(nn.Dropout):
    """nn.Dropout with its mask drawn by ``torch.rand``: the same distribution, 3x cheaper on
    the CPU than ``bernoulli_`` (which took 7% of a small network's training step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return x * 0
        return x * ((torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p)))


def scratch_plan(image_size: int, padding: int = SCRATCH_PADDING) -> list[int]:
    """Channel widths of the conv blocks: pool until the map is about 4x4 to 9x9, so
    28x28 digits get two blocks, 150x150 pictures four and 224x224 photos five."""
    widths = [32, 64, 128, 128, 256]
    n, s = 0, image_size
    threshold = 10 if padding == 0 else 12  # files from before "valid" convolutions keep their plan
    while s >= threshold and n < len(widths):
        s = (s + 2 * padding - 2) // 2
        n += 1
    return widths[: max(n, 1)]


class ScratchCNN(nn.Module):
    """Conv/BN/ReLU/MaxPool blocks, then Flatten, Dropout, Dense, Dropout, Dense.

    ``padding`` 0 ("valid", Keras' default) is what new models get: at 28x28 a training step
    costs about 0.7x that of padded ("same") convolutions (benchmarks/README.md). Pixel
    gradients of such a network lean towards the image centre, since a border pixel enters
    fewer 3x3 windows. Model files written before it existed have no ``padding`` key and were
    padded (1): build_model() keeps them so. A list gives one padding per block.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: int = 150,
                 dropout: float = 0.5, widths: list[int] | None = None, hidden: int | None = None,
                 padding: int | list[int] = SCRATCH_PADDING, order: str = SCRATCH_ORDER):
        super().__init__()
        first = padding[0] if isinstance(padding, (list, tuple)) and padding else padding
        widths = list(widths or scratch_plan(image_size, int(first)))
        pads = list(padding) if isinstance(padding, (list, tuple)) else [padding] * len(widths)
        if len(pads) != len(widths) or any(p not in (0, 1) for p in pads):
            raise ArchitectureError(f"scratch padding must be 0 or 1 per block, not {padding}")
        if order not in SCRATCH_ORDERS:
            raise ArchitectureError(f"unknown scratch block order {order!r}")
        hidden = hidden or (256 if image_size >= 64 else 128)
        self.image_size = image_size  # a plain attribute (not in the state dict): explain tools read it
        mean = (0.5,) * in_channels
        std = (0.25,) * in_channels
        layers: list[nn.Module] = [Normalize(mean, std)]
        c, s = in_channels, image_size
        for w, pad in zip(widths, pads):
            if s + 2 * pad < 4:
                raise ArchitectureError(f"image size {image_size} is too small for {len(widths)} blocks")
            conv = nn.Conv2d(c, w, 3, padding=pad, bias=False)
            if order == "conv-pool-bn-relu":
                layers += [conv, nn.MaxPool2d(2), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            else:
                layers += [conv, nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c, s = w, (s + 2 * pad - 2) // 2
        if s < 1:
            raise ArchitectureError(f"image size {image_size} is too small for {len(widths)} blocks")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), FastDropout(dropout), nn.Linear(c * s * s, hidden), nn.ReLU(inplace=True),
            FastDropout(dropout), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def split(self, point: int | None = None) -> tuple[nn.Module, nn.Module]:
        return nn.Identity(), self


# ---------------------------------------------------------------- EfficientNet-Lite0

# (repeats, kernel, stride, expand ratio, in, out) per stage, as in the Lite0 reference.
_LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
LITE0_NUM_BLOCKS = sum(s[0] for s in _LITE0_STAGES)
# Blocks 11-15 run at 1/32 of the input size: the top "block" in the VGG sense.
DEFAULT_FINETUNE_FROM = 11
MAX_HEAD_HIDDEN = 4096
_BN = dict(eps=1e-3, momentum=0.01)


class Conv2dSame(nn.Conv2d):
    """TensorFlow 'SAME' padding (asymmetric for stride 2), which the weights were trained with."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride, padding=(k // 2 if stride == 1 else 0), groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = Conv2dSame(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = Conv2dSame(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = Conv2dSame(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the key names of the reference weights, and a new head."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, head_hidden: int = 0,
                 head_dropout: float = 0.5):
        super().__init__()
        self.normalize = Normalize(W.IMAGENET_MEAN, W.IMAGENET_STD)
        self._conv_stem = Conv2dSame(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        for repeats, k, s, e, cin, cout in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        # one linear layer (the reference weights' shape), or two with ``head_hidden`` units
        self._fc = make_head(1280, num_classes, head_hidden, head_dropout)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Input normalisation and the stem convolution, in 3 channels."""
        if x.shape[1] == 1:  # a grayscale dataset: the pretrained stem wants RGB
            x = x.expand(-1, 3, -1, -1)
        return F.relu6(self._bn0(self._conv_stem(self.normalize(x))))

    def head_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last conv features (N, 1280, h, w) from the output of the last block."""
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for b in self._blocks:
            x = b(x)
        x = self.head_features(x).mean((2, 3))
        return self._fc(self._dropout(x))

    def split(self, point: int | None) -> tuple[nn.Module, nn.Module]:
        """point=None: everything but the classifier is frozen (feature extraction);
        point=k: blocks k.. and the head conv are trainable."""
        return _LitePrefix(self, point), _LiteSuffix(self, point)


class _LitePrefix(nn.Module):
    def __init__(self, net: EfficientNetLite0, point: int | None):
        super().__init__()
        self.net, self.point = net, point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net.stem(x)
        for b in net._blocks[: self.point if self.point is not None else len(net._blocks)]:
            x = b(x)
        if self.point is None:
            x = net.head_features(x).mean((2, 3))
        return x


class _LiteSuffix(nn.Module):
    def __init__(self, net: EfficientNetLite0, point: int | None):
        super().__init__()
        self.net, self.point = net, point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        if self.point is not None:
            for b in net._blocks[self.point:]:
                x = b(x)
            x = net.head_features(x).mean((2, 3))
        return net._fc(net._dropout(x))

    def trainable_modules(self) -> list[nn.Module]:
        net = self.net
        if self.point is None:
            return [net._fc]
        return [*net._blocks[self.point:], net._conv_head, net._bn1, net._fc]


# ------------------------------------------------------------------------ registry


def arch_config(recipe: str, num_classes: int, image_size: int, channels: int = 3,
                dropout: float | None = None, finetune_from: int | None = None, head_hidden: int = 0,
                head_dropout: float = 0.5) -> dict[str, Any]:
    """The JSON-serialisable description stored in the model file; build_model() reads it."""
    if recipe not in RECIPES:
        raise ArchitectureError(f"unknown recipe {recipe!r} (choose from {', '.join(RECIPES)})")
    if recipe == "scratch":
        return {"type": "scratch_cnn", "num_classes": num_classes, "in_channels": channels,
                "image_size": image_size, "dropout": 0.5 if dropout is None else dropout,
                "widths": scratch_plan(image_size), "hidden": 256 if image_size >= 64 else 128,
                "padding": SCRATCH_PADDING, "order": SCRATCH_ORDER}
    cfg = {"type": "efficientnet_lite0", "num_classes": 1000 if recipe == "imagenet" else num_classes,
           "in_channels": channels, "image_size": image_size,
           "dropout": 0.2 if dropout is None else dropout}
    if head_hidden:
        cfg["head_hidden"] = int(head_hidden)
        cfg["head_dropout"] = float(head_dropout)
    if recipe == "finetune":
        cfg["finetune_from"] = DEFAULT_FINETUNE_FROM if finetune_from is None else finetune_from
    return cfg


def _padding(v: Any) -> int | list[int]:
    return [int(p) for p in v] if isinstance(v, (list, tuple)) else int(v)


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """Rebuild a network from its architecture config (never from pickled code)."""
    try:
        kind = cfg["type"]
        if kind == "scratch_cnn":
            return ScratchCNN(int(cfg["num_classes"]), int(cfg["in_channels"]), int(cfg["image_size"]),
                              float(cfg["dropout"]), [int(w) for w in cfg["widths"]], int(cfg["hidden"]),
                              _padding(cfg.get("padding", 1)), str(cfg.get("order", "conv-bn-relu-pool")))
        if kind == "efficientnet_lite0":
            hidden = int(cfg.get("head_hidden", 0))
            if not 0 <= hidden <= MAX_HEAD_HIDDEN:
                raise ArchitectureError(f"head size {hidden} is outside 0-{MAX_HEAD_HIDDEN}")
            return EfficientNetLite0(int(cfg["num_classes"]), float(cfg["dropout"]), hidden,
                                     float(cfg.get("head_dropout", 0.5)))
    except (KeyError, TypeError, ValueError) as e:
        raise ArchitectureError(f"invalid architecture config: {e}") from None
    raise ArchitectureError(f"unknown architecture type {kind!r}")


def load_pretrained_base(model: EfficientNetLite0, weights_path: str | None = None,
                         keep_classifier: bool = False) -> None:
    """Copy the verified ImageNet weights into ``model`` (the classifier only when asked)."""
    state = W.load_efficientnet_lite0_state(weights_path)
    state = {k: v for k, v in state.items() if keep_classifier or not k.startswith("_fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if keep_classifier or not k.startswith("_fc.")]
    if missing or unexpected:
        raise W.WeightsError(f"pretrained weights do not fit EfficientNet-Lite0: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")


def imagenet_model(weights_path: str | None = None) -> EfficientNetLite0:
    model = EfficientNetLite0(1000)
    load_pretrained_base(model, weights_path, keep_classifier=True)
    return model.eval()


def split_point(cfg: dict[str, Any], recipe: str) -> int | None:
    """Where the frozen prefix ends for a recipe (None: just before the classifier)."""
    if recipe == "finetune":
        return int(cfg.get("finetune_from", DEFAULT_FINETUNE_FROM))
    return None


def set_trainable(net: nn.Module, point: int | None) -> tuple[nn.Module, nn.Module, list[nn.Module]]:
    """Split ``net`` at ``point``, freeze every parameter, then unfreeze the trainable
    modules of the suffix (the whole network if the suffix does not name them).
    Returns ``(prefix, suffix, trainable)``."""
    prefix, suffix = net.split(point)
    for p in net.parameters():
        p.requires_grad_(False)
    trainable = suffix.trainable_modules() if hasattr(suffix, "trainable_modules") else [net]
    for m in trainable:
        for p in m.parameters():
            p.requires_grad_(True)
    return prefix, suffix, trainable


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
