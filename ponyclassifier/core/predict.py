"""Prediction: the training preprocessing, top-k with probabilities, and an honest "not sure"
when the best probability is under the model's threshold."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from PIL import Image

from .engine import select_device
from .images import ImageError, decode_image, is_candidate_file
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


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files as given; folders become the image candidates inside them (sorted, recursive)."""
    out: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                out += [str(Path(dirpath) / f) for f in sorted(filenames) if is_candidate_file(f)]
        else:
            out.append(str(p))
    return out


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
        files = expand_paths(paths)
        results: list[Prediction | None] = [None] * len(files)
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            if pending:
                probs = self.probabilities(torch.stack([t for _, t in pending]))
                for (i, _), p in zip(pending, probs):
                    results[i] = self._make(files[i], p, top_k)
                pending.clear()

        for i, f in enumerate(files):
            if should_stop is not None and should_stop():
                break
            try:
                pending.append((i, load_input(f, self.model.image_size, self.model.channels)))
            except ImageError as e:
                results[i] = Prediction(f, error=e.reason)
            except Exception as e:  # a bad file never stops the rest
                results[i] = Prediction(f, error=f"cannot read: {e}")
            if len(pending) >= batch_size:
                flush()
            if progress is not None:
                progress(i + 1, len(files))
        flush()
        return [r for r in results if r is not None]
