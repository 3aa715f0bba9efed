"""What the live view's inference thread runs, without Qt: one frame (or one picture file)
through the model, with Grad-CAM a few times a second at most, and the rules of the live
answer (the steadied probabilities, the top classes and "not sure").

The live widget runs :func:`infer` on its ``workers.DedicatedWorker`` (a thread of its own,
so frames never wait behind thumbnails on the shared pool); only the wrapping there knows
about Qt (turning a camera frame into pixels, a heat map into a QImage layer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from ...core.trained import is_unsure

TOP_K = 3
CAM_MIN_INTERVAL = 0.3  # s: at most ~3 heat maps a second
CAM_TIME_SHARE = 0.35  # and never more than about this share of the worker's time
STEADY_WEIGHT = 0.45  # weight of the newest probabilities in the steadied answer
SHOWN_SIDE = 1600  # a picture file is shown at most this many pixels a side


class LivePrediction(NamedTuple):
    """One live answer: the best class, its probability, whether that is under the "not sure"
    threshold, and the top classes as ``[(class, probability), ...]``, best first."""

    label: str
    confidence: float
    unsure: bool
    top: list


def network_device(model) -> str:
    for p in model.network.parameters():
        return str(p.device)
    return "cpu"


class LiveEngine:
    """One model as the inference thread uses it: its predictor and Grad-CAM layer, made
    on that thread the first time they are needed. A new model gets a new engine; jobs
    already sent keep the engine they were sent with."""

    def __init__(self, model) -> None:
        self.model = model
        self._predictor = None
        self._cam_layer = None

    @property
    def predictor(self):
        if self._predictor is None:
            from ...core.predict import Predictor

            # Use the network where it already is: moving a model that is shared to another
            # device from this thread would pull it out from under its other users.
            self._predictor = Predictor(self.model, device=network_device(self.model))
        return self._predictor

    @property
    def cam_layer(self):
        if self._cam_layer is None:
            from ...core import explain

            self._cam_layer = explain.default_cam_layer(self.model)
        return self._cam_layer


@dataclass
class CamPacer:
    """When the next heat map may be made: no sooner than CAM_MIN_INTERVAL after the last, and
    Grad-CAM never takes much more than CAM_TIME_SHARE of the thread's time. Read and written
    on the inference thread; the widget resets it (``next_at = 0``) when the heat map is
    switched on."""

    next_at: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def made(self, now: float, cam_seconds: float) -> None:
        self.next_at = now + max(CAM_MIN_INTERVAL, cam_seconds * (1 / CAM_TIME_SHARE - 1))


@dataclass
class Answer:
    """What :func:`infer` gives back: the probabilities (None without a model), the Grad-CAM
    heat (H, W) in [0, 1] when one was made, the picture shown for a file, and timings."""

    probs: np.ndarray | None = None
    heat: np.ndarray | None = None
    image: Image.Image | None = None
    infer_ms: float = 0.0
    cam_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def infer(engine: LiveEngine | None, rgb: np.ndarray | None = None, path: str | None = None,
          want_cam: bool = False, pacer: CamPacer | None = None) -> Answer:
    """One frame (``rgb``, uint8 (H, W, 3), mirrored as shown) or one picture file (``path``)
    through ``engine``'s model. A file is decoded for the model exactly as the Predict page
    does (the draft decode at the model's size), so both give the same probabilities; it is
    decoded again, whole, for the picture shown. Raises ImageError for a bad file."""
    from ...core.preprocess import load_input, to_uint8_tensor

    out = Answer()
    if path is not None:
        from ...core.images import decode_image

        shown = decode_image(path).image
        shown.thumbnail((SHOWN_SIDE, SHOWN_SIDE))  # the picture shown; the model gets its own input below
        out.image = shown
    if engine is None:
        return out  # no model: a still is shown anyway
    model = engine.model
    x = load_input(path, model.image_size, model.channels) if path is not None else None
    t0 = time.perf_counter()
    if x is None:
        x = to_uint8_tensor(Image.fromarray(rgb, "RGB"), model.image_size, model.channels)
    probs = engine.predictor.probabilities(x[None])[0]
    out.probs = probs.numpy().astype(np.float32)
    out.infer_ms = (time.perf_counter() - t0) * 1000
    if want_cam and (pacer is None or pacer.due(time.perf_counter())):
        from ...core import explain

        t1 = time.perf_counter()
        out.heat = explain.grad_cam(model, x, target=int(probs.argmax()), layer_name=engine.cam_layer)
        t2 = time.perf_counter()
        out.cam_ms = (t2 - t1) * 1000
        if pacer is not None:
            pacer.made(t2, t2 - t1)
    return out


def steadied(previous: np.ndarray | None, probs: np.ndarray) -> np.ndarray:
    """The steadied answer: an exponential average of the last probabilities, so the label
    does not flicker between two classes on every frame."""
    if previous is None or previous.shape != probs.shape:
        return probs
    return STEADY_WEIGHT * probs + (1 - STEADY_WEIGHT) * previous


def answer(probs: np.ndarray, classes: list[str], threshold: float, k: int = TOP_K) -> LivePrediction:
    """The top ``k`` classes of ``probs`` and the "not sure" rule (core.trained.is_unsure)."""
    k = min(k, len(classes))
    idx = np.argsort(-probs)[:k]
    top = [(classes[i], float(probs[i])) for i in idx]
    label, conf = top[0]
    return LivePrediction(label, conf, is_unsure(conf, threshold), top)
