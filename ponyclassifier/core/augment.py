"""Augmentation in the spirit of Keras' ImageDataGenerator, applied to whole batches on the device.

torchvision.transforms.v2's built-in random transforms draw ONE set of random parameters per
call, so applied to a batch tensor every image would get the same rotation and flip. Our
transforms are v2 ``Transform`` subclasses that draw parameters per image and apply them in
one batched ``affine_grid``/``grid_sample``, so a batch of 64 costs one kernel launch,
not 64, and each image is augmented differently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


@dataclass
class AugmentConfig:
    """Strengths, with Keras' meanings: rotation in degrees, shifts as a fraction of the
    size, shear in degrees, zoom as a +/- fraction, brightness/contrast as +/- fractions."""

    rotation: float = 20.0
    width_shift: float = 0.1
    height_shift: float = 0.1
    shear: float = 10.0
    zoom: float = 0.15
    horizontal_flip: bool = True
    brightness: float = 0.15
    contrast: float = 0.15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "AugmentConfig | None":
        if d is None:
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def is_identity(self) -> bool:
        return not any([self.rotation, self.width_shift, self.height_shift, self.shear, self.zoom,
                        self.horizontal_flip, self.brightness, self.contrast])


def _uniform(n: int, amount: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * amount


class RandomAffineBatch(v2.Transform):
    """Per-image rotation, shift, shear, zoom and horizontal flip, edges filled by the
    nearest border pixel (Keras' fill_mode='nearest')."""

    def __init__(self, cfg: AugmentConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg, self.generator = cfg, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) float
        n, dev, c = x.shape[0], x.device, self.cfg
        g = self.generator
        rot = _uniform(n, math.radians(c.rotation), g, dev)
        shear = _uniform(n, math.radians(c.shear), g, dev)
        zoom = 1 + _uniform(n, c.zoom, g, dev)
        # grid coordinates span [-1, 1], so a shift of f of the size is 2f.
        tx = _uniform(n, 2 * c.width_shift, g, dev)
        ty = _uniform(n, 2 * c.height_shift, g, dev)
        flip = torch.ones(n, device=dev)
        if c.horizontal_flip:
            flip = torch.where(torch.rand(n, generator=g, device=dev) < 0.5, -flip, flip)
        cos, sin = torch.cos(rot), torch.sin(rot)
        # output->input sampling matrix: rotate, shear along x, zoom, flip.
        a = cos / zoom * flip
        b = (-sin + cos * torch.tan(shear)) / zoom
        d = sin / zoom * flip
        e = (cos + sin * torch.tan(shear)) / zoom
        theta = torch.stack([torch.stack([a, b, tx], 1), torch.stack([d, e, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomBrightnessContrastBatch(v2.Transform):
    def __init__(self, cfg: AugmentConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg, self.generator = cfg, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, dev, c = x.shape[0], x.device, self.cfg
        shape = (n, 1, 1, 1)
        if c.contrast:
            f = (1 + _uniform(n, c.contrast, self.generator, dev)).view(shape).to(x.dtype)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * f + mean
        if c.brightness:
            f = (1 + _uniform(n, c.brightness, self.generator, dev)).view(shape).to(x.dtype)
            x = x * f
        return x.clamp_(0, 1)


def build_augmenter(cfg: AugmentConfig | None, seed: int | None = None, device="cpu") -> v2.Transform | None:
    """A v2 transform for float batches in [0, 1], or None when augmentation is off."""
    if cfg is None or cfg.is_identity:
        return None
    g = None
    if seed is not None:
        g = torch.Generator(device=device)
        g.manual_seed(seed)
    parts: list[v2.Transform] = []
    if any([cfg.rotation, cfg.width_shift, cfg.height_shift, cfg.shear, cfg.zoom, cfg.horizontal_flip]):
        parts.append(RandomAffineBatch(cfg, g))
    if cfg.brightness or cfg.contrast:
        parts.append(RandomBrightnessContrastBatch(cfg, g))
    return v2.Compose(parts)
