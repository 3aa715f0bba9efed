"""The Explain place's own work, without Qt: loading a model to explain and decoding a
picture. Each runs on a worker (``state`` is the job's
:class:`~ponyclassifier.gui.workers.JobState`; only ``state.check()`` is used) and returns
plain values."""

from __future__ import annotations

import copy
import dataclasses

from ...core import explain as E
from ...core.images import ImageError
from ...core.modelfile import ModelFileError

__all__ = ["DISPLAY_SIDE", "LANE_COPIES", "Refused", "decode_picture", "load_model"]

DISPLAY_SIDE = 512  # the photo is shown (and saliency overlaid) at most this many pixels a side
# The work that gets a copy of the network of its own (see lanes.ModelLane); "quick" work
# uses the loaded network itself.
LANE_COPIES = ("occlusion", "maximize", "embedding")


class Refused(Exception):
    """A file we cannot use; the message is the reason alone (the page names the file)."""


def load_model(path: str | None, state) -> dict:
    """The model file ``path`` (None: the ImageNet network) on the best device, its
    convolution layers, the default Grad-CAM layer and one copy of the network per
    :data:`LANE_COPIES`, made here, before any of them runs."""
    from ...core.engine import select_device
    from ...core.trained import TrainedModel

    try:
        model = TrainedModel.imagenet() if path is None else TrainedModel.load(path)
    except ModelFileError as e:
        raise Refused(e.reason) from None
    except OSError as e:
        raise Refused(e.strerror or str(e)) from None
    try:
        device = select_device("auto")
    except Exception:  # a broken GPU setup: explanations still work on the CPU
        device = None
    if device is not None:
        model.network.to(device)
    model.network.eval()
    state.check()
    layers = E.conv_layers(model)
    cam_layer = E.default_cam_layer(model, layers) if layers else None
    state.check()
    replicas = {name: dataclasses.replace(model, network=copy.deepcopy(model.network)) for name in LANE_COPIES}
    summary = model.summary()
    return {"model": model, "layers": layers, "cam_layer": cam_layer, "replicas": replicas,
            "parameters": int(summary.get("parameters", 0))}


def decode_picture(path: str, size: int | None, channels: int, state) -> E.Picture:
    """The picture chosen, decoded once (:func:`core.explain.load_picture`): what is shown
    (at most :data:`DISPLAY_SIDE` a side) and, with a model, its input, exactly as the
    Predict place sees it."""
    try:
        picture = E.load_picture(path, size, channels, DISPLAY_SIDE)
    except ImageError as e:
        raise Refused(e.reason) from None
    state.check()
    return picture
