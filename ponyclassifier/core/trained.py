"""A trained model: the network plus everything needed to use it (class names, input size,
channels, normalisation, "not sure" threshold, training config, metrics), saved as ONE
model file and rebuilt from our own code, never unpickled."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import modelfile
from . import models as M
from . import weights as W
from .modelfile import ModelFileError
from .preprocess import RESIZE


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
        tensors = {k: v.detach() for k, v in self.network.state_dict().items()}
        modelfile.save_model_file(path, tensors, self.metadata())
        self.path = os.fspath(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "TrainedModel":
        header = modelfile.read_header(path)
        meta = header.metadata
        try:
            classes = [str(c) for c in meta["classes"]]
            arch = dict(meta["architecture"])
            recipe = str(meta["recipe"])
            inp = meta["input"]
            image_size, channels = int(inp["image_size"]), int(inp["channels"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"damaged model file (metadata field missing or wrong: {e})") from None
        if int(arch.get("num_classes", -1)) != len(classes):
            raise ModelFileError(path, f"does not match its architecture: {len(classes)} class names but "
                                       f"the network has {arch.get('num_classes')} outputs")
        try:
            network = M.build_model(arch)
        except M.ArchitectureError as e:
            raise ModelFileError(path, f"unsupported architecture: {e}") from None
        expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
        _, tensors = modelfile.load_model_file(path, expected=expected, device="cpu")
        network.load_state_dict(tensors, strict=True)
        network.to(device).eval()
        return cls(network=network, classes=classes, recipe=recipe, architecture=arch, image_size=image_size,
                   channels=channels, unsure_threshold=float(meta.get("unsure_threshold",
                                                                      default_unsure_threshold(len(classes)))),
                   training=dict(meta.get("training", {})), metrics=dict(meta.get("metrics", {})),
                   history=dict(meta.get("history", {})), created=meta.get("created"), path=os.fspath(path))

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
