"""Duplicate and look-alike images: exact duplicates by content hash, near duplicates and
reverse image search from pretrained CNN features.

Exact duplicates are files with the same bytes (SHA-256), or, with ``pixels=True``, the
same decoded pixels (a PNG re-saved by another program, a copy with its metadata
stripped). Near duplicates are pairs whose L2-normalised EfficientNet-Lite0 features (the
pooled 1280-d vector in front of the ImageNet classifier, at 224x224, through the same
:func:`preprocess.load_input` as training) have a cosine similarity above a threshold:
resized, recompressed or slightly cropped copies, and burst shots of the same scene.

Qt-free: the GUI runs :meth:`FeatureIndex.build` on a worker and passes ``progress`` /
``should_stop``, like every other long job.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from . import preprocess
from .images import ImageError, decode_image
from .weights import file_sha256

FEATURE_SIZE = 224
NEAR_DUPLICATE_THRESHOLD = 0.95

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

__all__ = ["FEATURE_SIZE", "NEAR_DUPLICATE_THRESHOLD", "FeatureIndex", "file_sha256", "find_exact_duplicates",
           "pixel_sha256", "feature_extractor"]


# ---------------------------------------------------------------- exact duplicates


def pixel_sha256(path: str | os.PathLike) -> str:
    """Hash of the decoded, upright RGB pixels and their size (raises ImageError)."""
    im = decode_image(path).image
    h = hashlib.sha256(f"{im.width}x{im.height}:".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def find_exact_duplicates(paths: Iterable[str | os.PathLike], *, pixels: bool = True,
                          progress: Progress | None = None,
                          should_stop: ShouldStop | None = None) -> list[list[str]]:
    """Groups (two or more files each) of identical files, largest group first.

    ``pixels=True`` also joins files whose bytes differ but whose decoded pixels are the
    same; files that cannot be read or decoded simply join no group. A stop request ends
    the scan early and returns the groups found so far.
    """
    paths = [os.fspath(p) for p in paths]
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(groups: dict[str, list[int]]) -> None:
        for members in groups.values():
            root = find(members[0])
            for m in members[1:]:
                parent[find(m)] = root

    by_bytes: dict[str, list[int]] = {}
    by_pixels: dict[str, list[int]] = {}
    total = len(paths)
    for i, p in enumerate(paths):
        if should_stop is not None and should_stop():
            break
        try:
            by_bytes.setdefault(file_sha256(p), []).append(i)
            if pixels:
                by_pixels.setdefault(pixel_sha256(p), []).append(i)
        except (OSError, ImageError):
            pass  # unreadable or not an image: it is nobody's duplicate
        if progress is not None:
            progress(i + 1, total)
    join(by_bytes)
    join(by_pixels)
    groups: dict[int, list[str]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(find(i), []).append(p)
    out = [sorted(g) for g in groups.values() if len(g) > 1]
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


# ----------------------------------------------------------------- CNN features

_extractor: torch.nn.Module | None = None
_extractor_key: str | None = None
_extractor_lock = threading.Lock()


def feature_extractor(weights_path: str | os.PathLike | None = None) -> torch.nn.Module:
    """The pretrained EfficientNet-Lite0 up to its pooled features, in eval mode, cached
    per process (building it costs a second; the weights are checksum-verified once)."""
    global _extractor, _extractor_key
    from .models import EfficientNetLite0, load_pretrained_base

    key = os.fspath(weights_path) if weights_path else ""
    with _extractor_lock:
        if _extractor is None or _extractor_key != key:
            net = EfficientNetLite0(1000)
            load_pretrained_base(net, weights_path)
            net.eval()
            prefix, _ = net.split(None)
            _extractor, _extractor_key = prefix.eval(), key
        return _extractor


def _normalise(f: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(f.float(), dim=1)


@dataclass
class FeatureIndex:
    """L2-normalised features of a set of images; similarity is their dot product."""

    paths: list[str]
    features: torch.Tensor  # (N, 1280) float32 on the CPU, rows of unit length
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    complete: bool = True  # False when the build was stopped early
    weights_path: str | None = None

    @classmethod
    def build(cls, paths: Sequence[str | os.PathLike], progress: Progress | None = None,
              should_stop: ShouldStop | None = None, batch_size: int = 32, *,
              device: str | torch.device = "cpu", weights_path: str | os.PathLike | None = None) -> "FeatureIndex":
        """Features of every readable image in ``paths``; unreadable ones land in ``skipped``
        with the decoder's reason. A stop request returns what was computed so far."""
        model = feature_extractor(weights_path).to(device)
        paths = [os.fspath(p) for p in paths]
        kept: list[str] = []
        chunks: list[torch.Tensor] = []
        skipped: list[tuple[str, str]] = []
        complete = True
        total = len(paths)
        batch_size = max(1, int(batch_size))
        for start in range(0, total, batch_size):
            if should_stop is not None and should_stop():
                complete = False
                break
            tensors, names = [], []
            for p in paths[start:start + batch_size]:
                try:
                    tensors.append(preprocess.load_input(p, FEATURE_SIZE))
                    names.append(p)
                except ImageError as e:
                    skipped.append((p, e.reason))
            if tensors:
                chunks.append(_embed(model, torch.stack(tensors)))
                kept += names
            if progress is not None:
                progress(min(start + batch_size, total), total)
        feats = torch.cat(chunks) if chunks else torch.zeros((0, 1280))
        return cls(kept, feats, skipped, complete, os.fspath(weights_path) if weights_path else None)

    def __len__(self) -> int:
        return len(self.paths)

    def feature(self, query) -> torch.Tensor:
        """A unit feature vector (1280,) for a path in the index, any image file or bytes,
        a PIL image, or a feature vector (normalised here)."""
        if isinstance(query, torch.Tensor):
            return _normalise(query.reshape(1, -1))[0]
        if isinstance(query, np.ndarray):
            return _normalise(torch.from_numpy(query).reshape(1, -1))[0]
        if isinstance(query, (str, os.PathLike)):
            p = os.fspath(query)
            i = self._row(p)
            if i is not None:
                return self.features[i]
        if hasattr(query, "convert") and hasattr(query, "size"):  # a PIL image
            x = preprocess.to_uint8_tensor(query.convert("RGB"), FEATURE_SIZE)
        else:
            x = preprocess.load_input(query, FEATURE_SIZE)
        return _embed(feature_extractor(self.weights_path), x[None])[0]

    def most_similar(self, query, k: int = 8, *, exclude_self: bool = True) -> list[tuple[str, float]]:
        """The ``k`` most similar indexed images to ``query`` (see :meth:`feature`), best
        first. A query that is itself in the index is left out of its own results."""
        if not self.paths:
            return []
        q = self.feature(query)
        sims = self.features @ q
        own = self._row(os.fspath(query)) if isinstance(query, (str, os.PathLike)) else None
        if exclude_self and own is not None:
            sims[own] = -2.0
        k = min(int(k), len(self.paths) - (1 if exclude_self and own is not None else 0))
        if k <= 0:
            return []
        vals, idx = torch.topk(sims, k)
        return [(self.paths[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist())]

    def near_duplicates(self, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                        block: int = 1024) -> list[tuple[str, str, float]]:
        """Every pair with similarity >= ``threshold``, most similar first. Computed in
        blocks of rows, so 20,000 images need 80 MB, not 1.6 GB."""
        f = self.features
        n = f.shape[0]
        pairs: list[tuple[int, int, float]] = []
        for s in range(0, n, block):
            sims = f[s:s + block] @ f.T  # (b, n)
            rows = torch.arange(s, min(s + block, n)).unsqueeze(1)
            mask = (sims >= threshold) & (torch.arange(n).unsqueeze(0) > rows)  # each pair once
            for r, c in mask.nonzero().tolist():
                pairs.append((s + r, c, float(sims[r, c])))
        pairs.sort(key=lambda t: (-t[2], t[0], t[1]))
        return [(self.paths[a], self.paths[b], v) for a, b, v in pairs]

    def _row(self, path: str) -> int | None:
        if not hasattr(self, "_rows") or len(self._rows) != len(self.paths):
            self._rows = {p: i for i, p in enumerate(self.paths)}
        return self._rows.get(path)


def _embed(model: torch.nn.Module, batch_uint8: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device  # the cached model may live on a GPU
    with torch.inference_mode():
        x = preprocess.to_float(batch_uint8.to(device))
        return _normalise(model(x)).cpu()
