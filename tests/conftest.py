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


class TrainedShapes:
    """A small scratch CNN trained for real on generated shapes, saved as a model file."""

    def __init__(self, path: Path, data: Path, model) -> None:
        self.path, self.data, self.model = path, data, model


@pytest.fixture(scope="session")
def trained_shapes(tmp_path_factory):
    """The one tiny-model fixture: ``trained_shapes(per_class=16, size=32, epochs=3, ...)``
    trains (once per set of arguments in the whole test session) a scratch CNN on circles,
    squares and triangles and returns a :class:`TrainedShapes` (model file, data folder,
    TrainedModel). Keyword arguments beyond the data's go to ``TrainConfig``."""
    import torch

    from ponyclassifier.core.engine import TrainConfig, Trainer

    made: dict[tuple, TrainedShapes] = {}

    def make(per_class: int = 16, size: int = 32, epochs: int = 3, gray: bool = False, **config) -> TrainedShapes:
        key = (per_class, size, epochs, gray, tuple(sorted(config.items())))
        if key not in made:
            root = tmp_path_factory.mktemp("trained_shapes")
            data = make_shapes_dataset(root / "data", per_class=per_class, size=size, gray=gray)
            kwargs = {"recipe": "scratch", "lr": 3e-3, "batch_size": 16, "augment": None, "device": "cpu",
                      "seed": 0, **config}
            # One thread: on a busy shared CPU, two contending torch threads make this far slower.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                result = Trainer(TrainConfig(epochs=epochs, **kwargs)).fit(data)
            finally:
                torch.set_num_threads(threads)
            path = root / "shapes.pony"
            result.model.save(path)
            made[key] = TrainedShapes(path, data, result.model)
        return made[key]

    return make
