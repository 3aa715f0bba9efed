"""Shared test helpers: tiny generated datasets in tmp_path (no network, no fixtures on disk)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHAPES = ("circle", "square", "triangle")


def draw_shape(shape: str, rng: np.random.Generator, size: int = 32, gray: bool = False) -> Image.Image:
    """A shape on a noisy background at a random place and size: learnable, not trivial."""
    bg = tuple(int(v) for v in rng.integers(0, 90, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.22, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    fill = tuple(int(v) for v in rng.integers(150, 256, 3))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
    im = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    return im.convert("L") if gray else im


def make_shapes_dataset(root: Path, per_class: int = 12, size: int = 32, seed: int = 0, gray: bool = False,
                        classes=SHAPES, ext: str = ".png") -> Path:
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_shape(c, rng, size, gray).save(root / c / f"{c}_{i:03d}{ext}")
    return root


@pytest.fixture
def shapes_dir(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes")
