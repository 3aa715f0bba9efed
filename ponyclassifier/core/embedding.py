"""How does the network see the dataset? Penultimate-layer features, a 2-D map of them
(PCA, or t-SNE when scikit-learn is installed), and the images that sit among another
class ("misfits": often mislabelled or ambiguous pictures).

Qt-free; long jobs take ``progress(done, total)`` and ``should_stop()``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import preprocess
from .explain import _device, _input_channels, _input_size, _network
from .images import ImageError

__all__ = ["embed_features", "feature_layer", "project_2d", "misfits", "nearest_neighbours", "neighbour_disagreement"]

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def feature_layer(net: nn.Module) -> nn.Linear:
    """The classifier's last Linear layer: its input is the penultimate feature vector
    (EfficientNet: the pooled 1280-d head features; ScratchCNN: the hidden Dense output)."""
    last = None
    for m in net.modules():
        if isinstance(m, nn.Linear):
            last = m
    if last is None:
        raise ValueError("the network has no Linear layer to take features from")
    return last


def embed_features(model: Any, images: Sequence[Any] | torch.Tensor, progress: Progress | None = None,
                   should_stop: ShouldStop | None = None, batch_size: int = 32,
                   errors: str = "raise") -> np.ndarray:
    """Penultimate features (N, D) float32 for images or image files.

    ``images``: paths (read through :func:`preprocess.load_input` at the model's size and
    channels, like training), uint8 (or float [0, 1]) tensors (C, S, S) from the same
    preprocessing, or
    one (N, C, H, W) batch. A file that cannot be read raises ImageError, or with
    ``errors='nan'`` gives a row of NaN so rows stay aligned with the input. A stop
    request returns the rows done so far.
    """
    if errors not in ("raise", "nan"):
        raise ValueError("errors must be 'raise' or 'nan'")
    net = _network(model)
    size = _input_size(model, net) or 224
    channels = _input_channels(model, net)
    layer = feature_layer(net)
    device = _device(net)
    items = list(images) if not isinstance(images, torch.Tensor) else list(images.unbind(0))
    total = len(items)
    out = np.full((total, layer.in_features), np.nan, dtype=np.float32)
    captured: dict[str, torch.Tensor] = {}

    def hook(_m, inp):
        captured["f"] = inp[0]

    was_training = net.training
    handle = layer.register_forward_pre_hook(hook)
    done = 0
    try:
        net.eval()
        with torch.no_grad():
            for start in range(0, total, batch_size):
                if should_stop is not None and should_stop():
                    out = out[:done]
                    break
                chunk = items[start: start + batch_size]
                tensors, rows = [], []
                for k, item in enumerate(chunk):
                    try:
                        t = _as_tensor(item, size, channels)
                    except ImageError:
                        if errors == "raise":
                            raise
                        continue
                    tensors.append(t)
                    rows.append(start + k)
                if tensors:
                    x = torch.stack(tensors).to(device)
                    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
                    net(x)
                    out[rows] = captured.pop("f").flatten(1).float().cpu().numpy()
                done = start + len(chunk)
                if progress is not None:
                    progress(done, total)
    finally:
        handle.remove()
        net.train(was_training)
    return out


def _as_tensor(item: Any, size: int, channels: int) -> torch.Tensor:
    if isinstance(item, (str, os.PathLike, bytes)):
        return preprocess.load_input(item, size, channels)
    if isinstance(item, np.ndarray):
        item = torch.from_numpy(np.ascontiguousarray(item))
    if not isinstance(item, torch.Tensor) or item.ndim != 3:
        raise TypeError("expected image paths or image tensors (C, H, W)")
    return item


def project_2d(features: np.ndarray, method: str = "pca", seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """(N, D) features -> (N, 2) points: 'pca' (numpy SVD; deterministic signs) or 'tsne'
    (scikit-learn, when installed)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"expected features (N, D), not shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("some feature rows are not finite (images that could not be read?); drop them first")
    n = len(f)
    if method == "pca":
        if n == 0:
            return np.zeros((0, 2), np.float32)
        c = f - f.mean(0)
        _, sv, vt = np.linalg.svd(c, full_matrices=False)
        k = min(2, vt.shape[0])
        pts = np.zeros((n, 2))
        pts[:, :k] = c @ vt[:k].T
        for j in range(k):  # the sign of a component is arbitrary: make the largest |score| positive
            if pts[np.argmax(np.abs(pts[:, j])), j] < 0:
                pts[:, j] *= -1
        return pts.astype(np.float32)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise RuntimeError("t-SNE needs scikit-learn, which is not installed "
                               "(pip install scikit-learn); use method='pca'") from None
        if n < 4:
            raise ValueError(f"t-SNE needs at least 4 images, not {n}; use method='pca'")
        perp = perplexity if perplexity is not None else min(30.0, max(1.0, (n - 1) / 3))
        tsne = TSNE(n_components=2, perplexity=min(perp, n - 1.0), init="pca", random_state=seed)
        return tsne.fit_transform(f.astype(np.float32)).astype(np.float32)
    raise ValueError(f"unknown projection {method!r} (choose 'pca' or 'tsne')")


def nearest_neighbours(points: np.ndarray, k: int, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Indices (len(rows), k) of the k nearest points (Euclidean) to each of ``rows`` (all
    points by default), itself excluded, nearest first (equal distances in index order; which
    of several points tied at the k-th place is taken is not specified). ``k`` is capped at
    N - 1; with fewer than 2 points there are no neighbours (k = 0)."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if n < 2:
        return np.zeros((len(rows), 0), dtype=np.int64)
    k = max(1, min(int(k), n - 1))
    sq = (p ** 2).sum(1)
    out = np.empty((len(rows), k), dtype=np.int64)
    for s in range(0, len(rows), 1024):  # chunks keep memory at 1024 x N distances
        r = rows[s: s + 1024]
        d = sq[r, None] + sq[None, :] - 2 * p[r] @ p.T
        d[np.arange(len(r)), r] = np.inf
        part = np.sort(np.argpartition(d, k - 1, axis=1)[:, :k], axis=1)  # index order for stable ties
        order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
        out[s: s + len(r)] = np.take_along_axis(part, order, 1)
    return out


def neighbour_disagreement(points: np.ndarray, labels: Sequence[Any], k: int = 5) -> np.ndarray:
    """For each point, the fraction of its k nearest neighbours (itself excluded) whose
    label differs from its own."""
    lab = np.asarray(labels)
    n = len(points)
    if lab.shape[0] != n:
        raise ValueError(f"{n} points but {lab.shape[0]} labels")
    if n < 2:
        return np.zeros(n)
    nn_idx = nearest_neighbours(points, k)
    return (lab[nn_idx] != lab[:, None]).mean(1)


def misfits(points: np.ndarray, labels: Sequence[Any], k: int = 5, threshold: float = 0.5) -> np.ndarray:
    """Indices of the points whose k nearest neighbours mostly (more than ``threshold``)
    carry another label, most out of place first: candidates for a wrong label."""
    frac = neighbour_disagreement(points, labels, k)
    idx = np.nonzero(frac > threshold)[0]
    return idx[np.argsort(-frac[idx], kind="stable")]
