"""What the Predict place's workers run, without Qt: loading a model, a request's pictures
through the network a chunk at a time, and the Grad-CAM of one result.

Each picture of a request is decoded once (:func:`ponyclassifier.core.predict.read_input`,
the model's own draft decode): the same decode gives the model its input, the card its
picture and Grad-CAM its input (kept with the result). The page wraps these functions in
``workers.run_job`` / ``workers.Lane`` jobs and turns the pictures into QImages there.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ...core.explain import CAM_OPACITY
from ...core.images import ImageError
from ...core.predict import InputFile, Prediction, Predictor, list_inputs, read_input
from ...core.preprocess import to_uint8_tensor
from ..widgets.format import RECIPE_LABELS

MAX_TOP_K = 10  # probabilities kept per picture: the top-k spin box goes this high
# Pictures go through the network in chunks; results and progress reach the GUI per chunk and
# a stop takes effect between chunks. The first chunk is small so the first answers come at
# once; chunks double while one takes under CHUNK_SECONDS, up to the page's chunk_size.
CHUNK = 32
FIRST_CHUNK = 4
CHUNK_SECONDS = 0.3
PICTURE_SIDE = 512  # card pictures and Grad-CAM overlays are at most this many pixels wide/high
PASTED_NAME = "pasted image"


def recipe_label(recipe: str) -> str:
    return RECIPE_LABELS.get(recipe, recipe)


@dataclass(eq=False)
class LoadedModel:
    """A model ready to predict, with the lock that keeps its network to one job at a time
    (Grad-CAM puts hooks on its layers, which a concurrent forward pass would trip over)."""

    model: Any  # core TrainedModel
    predictor: Predictor
    path: str | None  # None: the ImageNet network
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def imagenet(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        return "ImageNet network" if self.path is None else os.path.basename(self.path)

    def describe(self) -> str:
        """One line for the main window: name, classes, recipe."""
        m = self.model
        if self.imagenet:
            return "ImageNet network (EfficientNet-Lite0), 1000 everyday things"
        shown = ", ".join(m.classes[:6]) + (f" and {len(m.classes) - 6} more" if len(m.classes) > 6 else "")
        return f"{self.name}: {len(m.classes)} classes ({shown}), {recipe_label(m.recipe)}"


@dataclass(frozen=True)
class Pasted:
    """A picture with no file (clipboard, image data dropped from a web browser)."""

    image: Image.Image
    name: str = PASTED_NAME


@dataclass
class Row:
    """One picture's answer as a worker hands it over: the card picture (PIL, at most
    PICTURE_SIDE a side) only for the first cards, and the model input it was given (for
    Grad-CAM without decoding again) with it."""

    source: str
    prediction: Prediction
    picture: Any = None  # PIL image; the page's wrapper turns it into a QImage on the worker
    pasted: Image.Image | None = None
    input: torch.Tensor | None = None


class LoadFailed(Exception):
    pass


def load_model(path: str | None, check: Callable[[], None] = lambda: None) -> LoadedModel:
    """The model file at ``path`` (None: the ImageNet network), ready to predict."""
    from ...core.modelfile import ModelFileError
    from ...core.trained import TrainedModel
    from ...core.weights import WeightsError

    try:
        model = TrainedModel.imagenet() if path is None else TrainedModel.load(path)
    except ModelFileError as e:
        raise LoadFailed(f"{os.path.basename(os.fspath(e.path))}: {e.reason}") from None
    except WeightsError as e:
        raise LoadFailed(f"the ImageNet network is not available ({e})") from None
    check()
    return LoadedModel(model, Predictor(model, device="auto"), path)


def card_picture(image: Image.Image) -> Image.Image:
    """The card's picture: at most PICTURE_SIDE a side (a copy)."""
    im = image.copy()
    im.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    return im


def read_card(source: str, model) -> tuple[Image.Image, torch.Tensor]:
    """One decode of a file for a card made later (a result past the first cards): its
    picture and the model's input. Raises ImageError."""
    image, x = read_input(source, model.image_size, model.channels)
    return card_picture(image), x


def _read(entry: str | Pasted | InputFile, model) -> tuple[Image.Image | None, torch.Tensor | None, str | None]:
    """(decoded picture, model input, error) for one entry: decoded once."""
    if isinstance(entry, InputFile):  # left out by the listing (a name, an empty folder): why
        return None, None, entry.problem
    try:
        if isinstance(entry, Pasted):
            return entry.image, to_uint8_tensor(entry.image, model.image_size, model.channels), None
        image, x = read_input(entry, model.image_size, model.channels)
        return image, x, None
    except ImageError as e:
        return None, None, e.reason
    except Exception as e:  # a bad file never stops the rest
        return None, None, f"cannot read: {e}"


def predict_batches(loaded: LoadedModel, items: Sequence[str | Pasted], max_cards: int, max_chunk: int,
                    cancelled: Callable[[], bool]) -> Iterator[tuple[str, Any]]:
    """Folders expanded, then the pictures through the network a chunk at a time.

    Yields ``("total", n)`` once, then ``("rows", [Row, ...])`` per chunk in request order,
    then ``("progress", (done, total))``. Stops (yielding nothing more) when ``cancelled()``."""
    entries: list[str | Pasted | InputFile] = []
    for item in items:
        if isinstance(item, Pasted):
            entries.append(item)
        else:  # a row for every picture, and one saying why for what was left out
            entries += [e.path if e.problem is None else e for e in list_inputs([item])]
        if cancelled():
            return
    total = len(entries)
    yield "total", total
    model, predictor = loaded.model, loaded.predictor
    k = min(MAX_TOP_K, len(model.classes))
    start, chunk = 0, max(1, min(FIRST_CHUNK, max_chunk))
    while start < total:
        t0 = time.perf_counter()
        part = entries[start: start + chunk]
        read = []
        for entry in part:
            if cancelled():
                return
            read.append(_read(entry, model))
        good = [(i, x) for i, (_, x, err) in enumerate(read) if err is None]
        with loaded.lock:
            if cancelled():
                return
            preds = predictor.predict_inputs([None] * len(good), [x for _, x in good], top_k=k)
        by_index = dict(zip((i for i, _ in good), preds))
        rows = []
        for i, (entry, (image, x, err)) in enumerate(zip(part, read)):
            name = entry.name if isinstance(entry, Pasted) else entry.path if isinstance(entry, InputFile) else entry
            pred = by_index.get(i) or Prediction(name, error=err)
            pred.path = name
            carded = start + i < max_cards and err is None
            rows.append(Row(name, pred, card_picture(image) if carded else None,
                            entry.image if isinstance(entry, Pasted) else None,
                            x if carded or isinstance(entry, Pasted) else None))
        yield "rows", rows
        start += len(part)
        yield "progress", (start, total)
        if time.perf_counter() - t0 < CHUNK_SECONDS:
            chunk = min(chunk * 2, max_chunk)


def cam_overlay(loaded: LoadedModel, x: torch.Tensor, shown_rgb: np.ndarray, label: str,
                check: Callable[[], None] = lambda: None) -> np.ndarray:
    """The Grad-CAM overlay (uint8 RGB, the shown picture's size) for class ``label`` on
    the model input ``x``, painted over ``shown_rgb`` (the card picture)."""
    from ...core import explain

    m = loaded.model
    with loaded.lock:
        check()
        heat = explain.grad_cam(m, x, target=m.classes.index(label))
    return explain.overlay(shown_rgb, heat, opacity=CAM_OPACITY, weight_by_heat=True)
