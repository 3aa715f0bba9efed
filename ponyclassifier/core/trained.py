"""A trained model: the network plus everything needed to use it (class names, input size,
channels, normalisation, "not sure" threshold, training config, metrics), saved as ONE
model file and rebuilt from our own code, never unpickled."""

from __future__ import annotations

import math
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import modelfile
from . import models as M
from . import weights as W
from .modelfile import ModelFileError
from .preprocess import RESIZE

# What a model file may ask us to build. The file's tensors must match the network its metadata
# describes, shape for shape, so the network is never bigger than the file; these bounds
# also keep the shape check itself (done on a network without memory) and the input size
# every later step feeds it cheap.
MAX_CLASSES = 10_000
MAX_CLASS_NAME_CHARS = 255  # a class is a folder name: most file systems stop at 255
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
MAX_SCRATCH_BLOCKS = 8
MAX_SCRATCH_WIDTH = 4096
MAX_SCRATCH_HIDDEN = 65_536
_ARCH_TYPES = {"scratch_cnn": ("scratch",), "efficientnet_lite0": ("transfer", "finetune", "imagenet")}
# Bidirectional-text controls reorder what a terminal shows (U+202E makes "gpj.exe" read
# "exe.jpg"); Unicode puts them in category Cf with harmless joiners, so they are listed.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def class_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a class name, or None. A class name is printed on terminals,
    written to CSV files and used as a folder name, so control characters (escapes, carriage
    returns, newlines that fake an output line, bidi overrides, line separators, lone
    surrogates from undecodable folder names) are refused rather than escaped: no file we
    write then carries a name that another program would obey."""
    if not isinstance(name, str):
        return f"a class name is not text ({type(name).__name__})"
    if not name.strip():
        return "a class name is empty"
    if len(name) > MAX_CLASS_NAME_CHARS:
        return f"a class name is longer than {MAX_CLASS_NAME_CHARS} characters"
    for c in name:
        if c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
            return f"class name {_shown(name)} holds a control character (U+{ord(c):04X})"
    return None


def class_names_problem(names: Any) -> str | None:
    """Why ``names`` cannot be a model's class list, or None: each name must pass
    :func:`class_name_problem` and no two may be the same once Unicode-normalised (NFC), as
    two such names print alike and are one folder name on macOS. Names that differ only in
    case are allowed: they print differently and are two folders where the data was made."""
    if not isinstance(names, list):
        return f"the class list is not a list ({type(names).__name__})"
    if not 1 <= len(names) <= MAX_CLASSES:
        return f"{len(names)} class names (a model has 1-{MAX_CLASSES})"
    seen: dict[str, str] = {}
    for name in names:
        problem = class_name_problem(name)
        if problem:
            return problem
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            return f"class name {_shown(name)} appears twice" + ("" if seen[key] == name else
                                                                 f" (as {_shown(seen[key])})")
        seen[key] = name
    return None


def _shown(text: str, limit: int = 40) -> str:
    """A name quoted for a one-line message: escapes shown, not obeyed; long names cut."""
    r = ascii(text[:limit])
    return r + ("..." if len(text) > limit else "")


class _Bad(Exception):
    """One malformed metadata field (the message names it)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if not _is_int(v):
        raise _Bad(f"{name} is not a whole number ({_kind(v)})")
    if not lo <= v <= hi:
        raise _Bad(f"{name} {v if abs(v) < 10**12 else 'of ' + str(len(str(v))) + ' digits'} is outside {lo}-{hi}")
    return v


def _number(v: Any, name: str, lo: float, hi: float, hi_open: bool = False) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise _Bad(f"{name} is not a number ({_kind(v)})")
    try:
        f = float(v)
    except OverflowError:
        raise _Bad(f"{name} is not a finite number") from None
    if not math.isfinite(f) or not lo <= f <= hi or (hi_open and f >= hi):
        raise _Bad(f"{name} {f!r} is outside {lo}-{hi}")
    return f


def _dict(v: Any, name: str) -> dict:
    if not isinstance(v, dict):
        raise _Bad(f"{name} is not a JSON object ({_kind(v)})")
    return v


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
            float: "a fraction", int: "a whole number"}.get(type(v), type(v).__name__)


def _check_metadata(meta: dict) -> dict[str, Any]:
    """Every field a model's metadata holds, checked for type and range and against each
    other; returns what :meth:`TrainedModel.load` uses. Raises :class:`_Bad`."""
    for key in ("classes", "recipe", "architecture", "input"):
        if key not in meta:
            raise _Bad(f"metadata field {key!r} is missing")
    classes = meta["classes"]
    problem = class_names_problem(classes)
    if problem:
        raise _Bad(problem)
    recipe = meta["recipe"]
    if not isinstance(recipe, str) or recipe not in M.RECIPES:
        raise _Bad(f"unknown recipe {_shown(recipe) if isinstance(recipe, str) else _kind(recipe)}")
    arch = _check_architecture(_dict(meta["architecture"], "architecture"), recipe)
    inp = _dict(meta["input"], "input")
    for key in ("image_size", "channels"):
        if key not in inp:
            raise _Bad(f"metadata field 'input.{key}' is missing")
    image_size = _int(inp["image_size"], "input image size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    channels = _int(inp["channels"], "input channels", 1, 3)
    if image_size != arch["image_size"]:
        raise _Bad(f"input image size {image_size} differs from the network's {arch['image_size']}")
    if channels != arch["in_channels"]:
        raise _Bad(f"input channels {channels} differ from the network's {arch['in_channels']}")
    if arch["num_classes"] != len(classes):
        raise _Bad(f"{len(classes)} class names but the network has {arch['num_classes']} outputs")
    threshold = meta.get("unsure_threshold")
    threshold = default_unsure_threshold(len(classes)) if threshold is None else \
        _number(threshold, "'not sure' threshold", 0.0, 1.0)
    extras = {key: _dict(meta.get(key) if meta.get(key) is not None else {}, key)
              for key in ("training", "metrics", "history")}
    for key, values in extras["history"].items():
        if not isinstance(values, list):
            raise _Bad(f"history {_shown(key)} is not a list ({_kind(values)})")
    norm = meta.get("normalization")
    if norm is not None:
        for key in ("mean", "std"):
            values = _dict(norm, "normalization").get(key)
            if not isinstance(values, list) or not 1 <= len(values) <= 4:
                raise _Bad(f"normalization {key} is not a list of 1-4 numbers")
            for v in values:
                _number(v, f"normalization {key}", -1e6, 1e6)
    created = meta.get("created")
    if created is not None and not isinstance(created, str):
        raise _Bad(f"creation time is not text ({_kind(created)})")
    return {"classes": list(classes), "recipe": recipe, "architecture": arch, "image_size": image_size,
            "channels": channels, "unsure_threshold": threshold, "created": created, **extras}


def _check_architecture(arch: dict, recipe: str) -> dict:
    kind = arch.get("type")
    if not isinstance(kind, str) or kind not in _ARCH_TYPES:
        raise _Bad(f"unknown network type {_shown(kind) if isinstance(kind, str) else _kind(kind)}")
    if recipe not in _ARCH_TYPES[kind]:
        raise _Bad(f"recipe {recipe!r} does not use a {kind} network")
    for key in ("num_classes", "in_channels", "image_size", "dropout"):
        if key not in arch:
            raise _Bad(f"metadata field 'architecture.{key}' is missing")
    _int(arch["num_classes"], "the network's class count", 1, MAX_CLASSES)
    _int(arch["in_channels"], "the network's input channels", 1, 3)
    if arch["in_channels"] == 2:
        raise _Bad("the network's input channels are 2 (1 or 3 expected)")
    _int(arch["image_size"], "the network's image size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    _number(arch["dropout"], "dropout", 0.0, 1.0, hi_open=True)
    if kind == "scratch_cnn":
        for key in ("widths", "hidden"):
            if key not in arch:
                raise _Bad(f"metadata field 'architecture.{key}' is missing")
        widths = arch["widths"]
        if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_SCRATCH_BLOCKS:
            raise _Bad(f"the network's block widths are not a list of 1-{MAX_SCRATCH_BLOCKS} numbers")
        for w in widths:
            _int(w, "a block width", 1, MAX_SCRATCH_WIDTH)
        _int(arch["hidden"], "the hidden layer size", 0, MAX_SCRATCH_HIDDEN)
        padding = arch.get("padding", 1)
        pads = padding if isinstance(padding, list) else [padding]
        if isinstance(padding, list) and len(padding) != len(widths):
            raise _Bad("the network's paddings do not match its blocks")
        for p in pads:
            _int(p, "a padding", 0, 1)
        order = arch.get("order", "conv-bn-relu-pool")
        if not isinstance(order, str) or order not in M.SCRATCH_ORDERS:
            raise _Bad("unknown block order")
    else:
        _int(arch.get("head_hidden", 0), "the head size", 0, M.MAX_HEAD_HIDDEN)
        _number(arch.get("head_dropout", 0.5), "head dropout", 0.0, 1.0, hi_open=True)
        if "finetune_from" in arch:
            _int(arch["finetune_from"], "the first fine-tuned block", 0, M.LITE0_NUM_BLOCKS)
    return arch


def _network_layout(arch: dict) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The tensor shapes and dtypes of the network ``arch`` describes, from a network built
    on the "meta" device: no memory for weights, whatever sizes the file asks for."""
    with torch.device("meta"):
        skeleton = M.build_model(arch)
    state = skeleton.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    dtypes = {k: modelfile.dtype_name(v.dtype) or str(v.dtype) for k, v in state.items()}
    return shapes, dtypes


def default_unsure_threshold(num_classes: int) -> float:
    """Below this top probability the answer is "not sure". With two classes a 0.6 guess is
    barely better than a coin, so the bar is higher for few classes."""
    if num_classes >= 100:
        return 0.3
    return round(max(0.5, min(0.9, 1.5 / max(num_classes, 1))), 2)


def is_unsure(confidence: float, threshold: float) -> bool:
    """The "not sure" rule (one place for the command line, Predict and the live view): the
    best class's probability is under the threshold."""
    return confidence < threshold


@dataclass
class TrainedModel:
    network: nn.Module
    classes: list[str]
    recipe: str
    architecture: dict[str, Any]
    image_size: int
    channels: int = 3
    unsure_threshold: float = 0.5
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    created: str | None = None
    path: str | None = None

    # ------------------------------------------------------------------ metadata
    def metadata(self) -> dict[str, Any]:
        from .. import __version__

        norm = self.network.normalize if hasattr(self.network, "normalize") else self.network.features[0]
        return {
            "classes": list(self.classes),
            "recipe": self.recipe,
            "architecture": self.architecture,
            "input": {"image_size": self.image_size, "channels": self.channels, "resize": RESIZE,
                      "value_range": [0.0, 1.0], "layout": "NCHW"},
            "normalization": {"mean": norm.mean.flatten().tolist(), "std": norm.std.flatten().tolist()},
            "unsure_threshold": self.unsure_threshold,
            "training": self.training,
            "metrics": self.metrics,
            "history": self.history,
            "app_version": __version__,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically. Refused (``ModelFileError``) when it would not
        load again: class names with control characters, empty or duplicate names."""
        problem = class_names_problem(list(self.classes))
        if problem:
            raise ModelFileError(path, f"cannot save model: {problem}")
        tensors = {k: v.detach() for k, v in self.network.state_dict().items()}
        modelfile.save_model_file(path, tensors, self.metadata())
        self.path = os.fspath(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "TrainedModel":
        """A model from a file of unknown origin. Every metadata field is checked, and the
        tensor shapes and dtypes the metadata implies are compared with those the file's
        header lists, before any network is built or any weight read; then the weights must
        be finite (and BatchNorm variances not negative). Any failure is a
        :class:`ModelFileError` with a one-line reason."""
        header = modelfile.read_header(path)
        try:
            fields = _check_metadata(header.metadata)
        except _Bad as e:
            raise ModelFileError(path, f"damaged model file ({e})") from None
        arch = fields["architecture"]
        try:
            shapes, dtypes = _network_layout(arch)
        except (M.ArchitectureError, RuntimeError, ValueError, TypeError) as e:
            raise ModelFileError(path, f"unsupported architecture: {_one_line(e)}") from None
        # Refused here, before the real network exists: a network is never bigger than the
        # tensors the file really holds.
        modelfile.check_architecture(path, header, shapes)
        modelfile.check_dtypes(path, header, dtypes)
        try:
            network = M.build_model(arch)
        except M.ArchitectureError as e:
            raise ModelFileError(path, f"unsupported architecture: {_one_line(e)}") from None
        _, tensors = modelfile.load_model_file(path, expected=shapes, dtypes=dtypes, device="cpu")
        for name, t in tensors.items():
            if name.endswith("running_var") and t.is_floating_point() and bool((t < 0).any()):
                raise ModelFileError(path, f"damaged model file ({name} holds a negative variance; "
                                           "the model cannot predict anything)")
        network.load_state_dict(tensors, strict=True)
        network.to(device).eval()
        return cls(network=network, classes=fields["classes"], recipe=fields["recipe"], architecture=arch,
                   image_size=fields["image_size"], channels=fields["channels"],
                   unsure_threshold=fields["unsure_threshold"], training=dict(fields["training"]),
                   metrics=dict(fields["metrics"]), history=dict(fields["history"]), created=fields["created"],
                   path=os.fspath(path))

    @classmethod
    def imagenet(cls, weights_path: str | None = None) -> "TrainedModel":
        """The pretrained network's own 1000 ImageNet classes: a photo works out of the box."""
        net = M.imagenet_model(weights_path)
        cats = W.imagenet_categories()
        return cls(network=net, classes=cats, recipe="imagenet",
                   architecture=M.arch_config("imagenet", 1000, W.IMAGENET_SIZE),
                   image_size=W.IMAGENET_SIZE, channels=3, unsure_threshold=default_unsure_threshold(1000),
                   training={"weights": "EfficientNet-Lite0 ImageNet", "sha256": W.EFFICIENTNET_LITE0_SHA256})

    def summary(self) -> dict[str, Any]:
        total, trainable = M.parameter_counts(self.network)
        return {"path": self.path, "recipe": self.recipe, "classes": self.classes, "num_classes": len(self.classes),
                "image_size": self.image_size, "channels": self.channels, "parameters": total,
                "unsure_threshold": self.unsure_threshold, "created": self.created, "metrics": self.metrics,
                "training": self.training}


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__
