"""Export a trained model for use outside PonyClassifier: ONNX, TorchScript, or a plain
copy of the model file (safetensors with our JSON metadata).

Every exported network takes what ours take: float images in [0, 1], shape
(N, C, S, S) at the model's image size, with a dynamic batch dimension; it does its own
normalisation and returns logits (softmax gives the probabilities). The class names and
preprocessing travel inside the file (ONNX ``metadata_props``, a TorchScript extra file
``ponyclassifier.json``), as torchvision's weights carry ``meta["categories"]``.

Writing is atomic (temp file in the same folder, fsync, ``os.replace``, fsync the folder):
an interrupted export leaves any earlier file intact.

We use the TorchScript-based ONNX exporter (``dynamo=False``): it needs no extra package
(the torch.export-based one needs ``onnxscript``) and our networks are plain convnets it
handles fully. Its deprecation notice and the tracer's notes about the fixed padding of
``Conv2dSame`` (exact, since the image size is fixed) are silenced here.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from . import modelfile as _modelfile
from .preprocess import RESIZE
from .trained import TrainedModel

__all__ = ["ExportError", "FORMATS", "export_model", "export_onnx", "export_torchscript", "copy_model_file",
           "export_metadata", "write_atomic"]

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "pony": ".pony"}
ONNX_OPSET = 17


class ExportError(Exception):
    """An export failed; the message names the file and the reason."""


def export_metadata(model: TrainedModel) -> dict[str, Any]:
    """What a user of the exported file needs besides the weights."""
    return {"classes": list(model.classes), "image_size": model.image_size, "channels": model.channels,
            "input": "float32 NCHW in [0, 1], RGB" if model.channels == 3 else "float32 NCHW in [0, 1], gray",
            "resize": RESIZE, "output": "logits (apply softmax for probabilities)",
            "recipe": model.recipe, "unsure_threshold": model.unsure_threshold}


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(fh)`` into a temporary file beside it, fsync, then
    rename over ``path``: readers see the old file or the whole new one, never a part.
    :func:`modelfile.write_atomic` with an :class:`ExportError` for an ``OSError``."""
    _modelfile.write_atomic(path, write, error=_write_error)


def _write_error(path: Path, exc: OSError) -> ExportError:
    return ExportError(f"{path}: cannot write ({exc.strerror or exc})")


def _cpu_network(model: TrainedModel) -> torch.nn.Module:
    # A private CPU copy: the caller's model may be on the GPU, in use, or in train mode.
    net = copy.deepcopy(model.network).to("cpu").eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _example(model: TrainedModel, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, model.channels, model.image_size, model.image_size)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def export_onnx(model: TrainedModel, path: str | os.PathLike, opset: int = ONNX_OPSET) -> Path:
    path = Path(path)
    net = _cpu_network(model)
    buf = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(net, (_example(model),), buf, dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as e:  # the exporter raises many types; the user needs one message
        raise ExportError(f"{path}: ONNX export failed: {e}") from e
    data = buf.getvalue()
    try:  # class names inside the file; optional, the onnx package is not a runtime dependency
        import onnx

        proto = onnx.load_from_string(data)
        for k, v in export_metadata(model).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, json.dumps(v)
        proto.producer_name = "PonyClassifier"
        data = proto.SerializeToString()
    except ImportError:
        pass
    write_atomic(path, lambda fh: fh.write(data))
    return path


def export_torchscript(model: TrainedModel, path: str | os.PathLike) -> Path:
    path = Path(path)
    net = _cpu_network(model)
    try:
        with _quiet():
            traced = torch.jit.trace(net, _example(model))
            buf = io.BytesIO()
            torch.jit.save(traced, buf, _extra_files={"ponyclassifier.json": json.dumps(export_metadata(model))})
    except Exception as e:
        raise ExportError(f"{path}: TorchScript export failed: {e}") from e
    data = buf.getvalue()
    write_atomic(path, lambda fh: fh.write(data))
    return path


def copy_model_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Our own model file (safetensors + metadata), copied atomically. The source is checked
    as any model file is (a project someone sent may hold a damaged or hostile one, or a
    named pipe where the file should be): only a file that loads is copied."""
    dst = Path(dst)
    try:
        TrainedModel.load(src)
    except _modelfile.ModelFileError as e:
        raise ExportError(f"{src}: not copied: {e.reason}") from None
    try:
        with _modelfile._open_for_reading(src) as fin:
            write_atomic(dst, lambda fh: shutil.copyfileobj(fin, fh, 1 << 20))
    except _modelfile.ModelFileError as e:
        raise ExportError(str(e)) from None
    except OSError as e:
        raise ExportError(f"{src}: cannot read ({e.strerror or e})") from e
    return dst


def export_model(model: TrainedModel, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Export by format name ("onnx", "torchscript", "pony") or by the file's extension."""
    path = Path(path)
    if fmt is None:
        fmt = {v: k for k, v in FORMATS.items()}.get(path.suffix.lower())
        if path.suffix.lower() in (".torchscript", ".ts"):
            fmt = "torchscript"
    if fmt == "onnx":
        return export_onnx(model, path)
    if fmt == "torchscript":
        return export_torchscript(model, path)
    if fmt == "pony":
        model.save(path)
        return path
    raise ExportError(f"{path}: unknown export format {fmt!r} (choose onnx, torchscript or pony)")
