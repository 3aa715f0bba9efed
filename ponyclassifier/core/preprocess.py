"""The one preprocessing path shared by training, evaluation, prediction, explanation and export.

decode (images.decode_image) -> resize to a square of ``size`` (the whole picture, squashed
like Keras' ``target_size``, so nothing at the edges is cropped away) -> uint8 tensor
(C, size, size) -> on the device: float in [0, 1] -> (training only) augmentation -> the
network, which normalises its own input.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .images import decode_image

RESIZE = "squash-bilinear"


def to_uint8_tensor(image: Image.Image, size: int, channels: int = 3) -> torch.Tensor:
    """An RGB PIL image -> uint8 tensor (channels, size, size)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    if channels == 1:
        arr = np.array(image.convert("L"))[None]  # a writable copy: torch warns on read-only arrays
    else:
        arr = np.asarray(image).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_input(source, size: int, channels: int = 3) -> torch.Tensor:
    """A file (or bytes) -> uint8 tensor, through the one safe decoder. Raises ImageError."""
    decoded = decode_image(source, draft_size=(size, size))
    return to_uint8_tensor(decoded.image, size, channels)


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1], on the batch's device."""
    return batch.float().div_(255.0)
