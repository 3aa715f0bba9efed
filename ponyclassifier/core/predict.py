"""Prediction: the training preprocessing, top-k with probabilities, and an honest "not sure"
when the best probability is under the model's threshold."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from PIL import Image

from .engine import select_device
from .images import (
    SIDECAR_SUFFIXES,
    ImageError,
    decode_image,
    display_path,
    is_candidate_file,
    name_problem,
    offered_by_name,
)
from .preprocess import load_input, to_float, to_uint8_tensor
from .trained import TrainedModel, is_unsure


@dataclass
class Prediction:
    path: str | None
    label: str | None = None
    confidence: float = 0.0
    top: list[tuple[str, float]] = field(default_factory=list)
    unsure: bool = False
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "label": self.label, "confidence": self.confidence,
                "top": [[c, p] for c, p in self.top], "unsure": self.unsure}


@dataclass(frozen=True)
class InputFile:
    """One entry of a listing of inputs: a file to decode (``problem`` None), or what was
    not used and why: a file whose name cannot be used, or a folder with no pictures.
    ``path`` is well-formed text when there is a problem (see :func:`images.display_path`)."""

    path: str
    problem: str | None = None


def list_inputs(paths: Iterable[str | os.PathLike]) -> list[InputFile]:
    """Files as given; folders become the image candidates inside them (sorted, recursive,
    hidden folders not searched). What is left out says why: a file or folder whose name is
    not valid UTF-8, and a folder that gives no pictures at all (with what was in it)."""
    out: list[InputFile] = []
    for p in paths:
        if not os.path.isdir(p):
            problem = name_problem(p)
            out.append(InputFile(os.fspath(p) if problem is None else display_path(p), problem))
            continue
        found = len(out)
        hidden = sidecars = 0
        hidden_folders = 0
        for dirpath, dirnames, filenames in os.walk(p):
            keep = []
            for d in sorted(dirnames):
                if d.startswith("."):
                    hidden_folders += 1
                elif (problem := name_problem(d)) is not None:
                    out.append(InputFile(display_path(os.path.join(dirpath, d)), problem))
                else:
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                if is_candidate_file(f):
                    out.append(InputFile(os.path.join(dirpath, f)))
                elif offered_by_name(f):
                    out.append(InputFile(display_path(os.path.join(dirpath, f)), name_problem(f)))
                elif not f.startswith(".") and os.path.splitext(f)[1].lower() in SIDECAR_SUFFIXES:
                    sidecars += 1
                else:
                    hidden += 1
        if len(out) == found:
            out.append(InputFile(display_path(p), no_pictures_reason(hidden, sidecars, hidden_folders)))
    return out


def no_pictures_reason(hidden: int, sidecars: int, hidden_folders: int) -> str:
    """Why a folder gave no pictures, in one line."""
    left = []
    if hidden:
        left.append(f"{hidden} hidden or system file{'s' if hidden != 1 else ''}")
    if sidecars:
        left.append(f"{sidecars} text or sidecar file{'s' if sidecars != 1 else ''} (.txt .json .csv .md .xmp .aae)")
    if hidden_folders:
        left.append(f"{hidden_folders} hidden folder{'s' if hidden_folders != 1 else ''} not searched")
    return "no pictures found in this folder" + (f" ({', '.join(left)})" if left else " (it is empty)")


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files as given; folders become the image candidates inside them (sorted, recursive).
    Only what can be decoded: :func:`list_inputs` also says what was left out and why."""
    return [f.path for f in list_inputs(paths) if f.problem is None]


def read_input(source, size: int, channels: int = 3) -> tuple[Image.Image, torch.Tensor]:
    """One decode of a file for a model: the decoded picture (to show, e.g. as a card) and the
    model's input, exactly what :func:`~ponyclassifier.core.preprocess.load_input` gives (the
    same draft decode at the model's size). Raises ImageError."""
    image = decode_image(source, draft_size=(size, size)).image
    return image, to_uint8_tensor(image, size, channels)


class Predictor:
    def __init__(self, model: TrainedModel, device: str = "auto", unsure_threshold: float | None = None):
        self.model = model
        self.device = select_device(device)
        self.model.network.to(self.device).eval()
        self.threshold = model.unsure_threshold if unsure_threshold is None else unsure_threshold

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str = "auto") -> "Predictor":
        return cls(TrainedModel.load(path), device)

    @torch.no_grad()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, S, S) at the model's size -> probabilities (N, classes) on the CPU."""
        x = to_float(batch.to(self.device))
        return self.model.network(x).float().softmax(1).cpu()

    def _make(self, path: str | None, probs: torch.Tensor, top_k: int) -> Prediction:
        k = max(1, min(top_k, len(self.model.classes)))
        values, idx = probs.topk(k)
        top = [(self.model.classes[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())]
        return Prediction(path, top[0][0], top[0][1], top, is_unsure(top[0][1], self.threshold))

    def predict_image(self, image: Image.Image, top_k: int = 3) -> Prediction:
        """An already-decoded RGB image (webcam frame, clipboard)."""
        x = to_uint8_tensor(image.convert("RGB"), self.model.image_size, self.model.channels)[None]
        return self._make(None, self.probabilities(x)[0], top_k)

    def predict_inputs(self, sources: Sequence[str | None], inputs: Sequence[torch.Tensor],
                       top_k: int = 3) -> list[Prediction]:
        """Model inputs already made (uint8 (C, S, S) each, from :func:`read_input` or
        ``to_uint8_tensor``), in one batch: what :meth:`predict_paths` does after decoding."""
        if not inputs:
            return []
        probs = self.probabilities(torch.stack(list(inputs)))
        return [self._make(None if s is None else str(s), p, top_k) for s, p in zip(sources, probs)]

    def predict_paths(self, paths: Sequence[str | os.PathLike], top_k: int = 3, batch_size: int = 32,
                      progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> list[Prediction]:
        entries = list_inputs(paths)
        files = [e.path for e in entries]
        results: list[Prediction | None] = [None if e.problem is None else Prediction(e.path, error=e.problem)
                                            for e in entries]
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            if pending:
                probs = self.probabilities(torch.stack([t for _, t in pending]))
                for (i, _), p in zip(pending, probs):
                    results[i] = self._make(files[i], p, top_k)
                pending.clear()

        stop = len(files)
        for i, f in enumerate(files):
            if should_stop is not None and should_stop():
                stop = i
                break
            if results[i] is not None:  # left out by the listing, with its reason
                if progress is not None:
                    progress(i + 1, len(files))
                continue
            try:
                pending.append((i, load_input(f, self.model.image_size, self.model.channels)))
            except ImageError as e:
                results[i] = Prediction(display_path(f), error=e.reason)
            except Exception as e:  # a bad file never stops the rest
                results[i] = Prediction(display_path(f), error=f"cannot read: {e}")
            if len(pending) >= batch_size:
                flush()
            if progress is not None:
                progress(i + 1, len(files))
        flush()
        return [r for r in results[:stop] if r is not None]
