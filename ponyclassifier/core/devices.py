"""Where training and inference run: device choice, mixed precision, determinism."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext

import numpy as np
import torch


class DeviceError(Exception):
    """A device that was asked for is not there; the message says what is."""


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def select_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU. ``cuda:N`` is checked against the GPUs there are."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise DeviceError("--device mps was asked for, but Apple MPS is not available")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"--device {name} was asked for, but no CUDA GPU is available")
        if name == "cuda":
            return torch.device("cuda")
        index = name.split(":", 1)[1]
        if not index.isdigit():
            raise DeviceError(f"unknown device {name!r}: write cuda:N with N a GPU number")
        if int(index) >= count:
            have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise DeviceError(f"--device {name} was asked for, but this machine has {count} CUDA GPU"
                              f"{'s' if count != 1 else ''} ({have})")
        return torch.device("cuda", int(index))
    raise DeviceError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps")


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


class Precision:
    """Mixed precision on CUDA: bfloat16 where the GPU supports it (no loss scaling needed),
    else float16 with a gradient scaler. Elsewhere float32: CPU autocast is slower than
    float32 on most CPUs, and MPS autocast is not reliable for training."""

    def __init__(self, device: torch.device, wanted: bool | None):
        self.device = device
        self.enabled = device.type == "cuda" and wanted is not False
        self.dtype = None
        self.scaler = None
        if self.enabled:
            # bfloat16 where the tensor cores do it (Ampere and later); emulated bfloat16 is slow
            major = torch.cuda.get_device_capability(device)[0]
            self.dtype = torch.bfloat16 if major >= 8 else torch.float16
            if self.dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")
        self.asked_but_unavailable = bool(wanted) and not self.enabled

    def autocast(self):
        if not self.enabled:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def describe(self) -> str:
        if self.enabled:
            name = "bfloat16" if self.dtype == torch.bfloat16 else "float16 with loss scaling"
            return f"mixed precision ({name})"
        return "float32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    """Same seed, same data, same machine: the same model, bit for bit (slower on a GPU).
    Kernels without a deterministic version warn instead of failing."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False if on else torch.backends.cudnn.benchmark
