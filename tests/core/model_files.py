"""Helpers for tests that write model files by hand, as a hostile sender could."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import safetensors.torch
import torch

from ponyclassifier.core import models as M
from ponyclassifier.core.modelfile import FORMAT_NAME, FORMAT_VERSION
from ponyclassifier.core.trained import TrainedModel


def small_model(classes=("cat", "dog", "pony"), image_size: int = 16, channels: int = 3) -> TrainedModel:
    torch.manual_seed(0)
    arch = M.arch_config("scratch", len(classes), image_size, channels=channels)
    return TrainedModel(M.build_model(arch).eval(), list(classes), "scratch", arch, image_size, channels)


def good_parts(model: TrainedModel | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and tensors a real save writes (deep copies, to be mutated)."""
    model = model or small_model()
    meta = copy.deepcopy(model.metadata())
    tensors = {k: v.detach().clone() for k, v in model.network.state_dict().items()}
    return meta, tensors


def write_raw(path: Path, meta, tensors: dict[str, torch.Tensor]) -> Path:
    """A model file with exactly this metadata (any JSON value) and these tensors: no check
    of ours runs, as when someone else wrote it."""
    header = {"ponyclassifier": json.dumps(meta), "format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    Path(path).write_bytes(safetensors.torch.save({k: v.contiguous() for k, v in tensors.items()}, metadata=header))
    return Path(path)
