"""The dataset map's work, without Qt: features of the pictures and the map made of them.

Run on the worker pool by :class:`~ponyclassifier.gui.explain.embedding.EmbeddingMapWidget`
(each function returns the job body ``run(state)``; ``state`` is the job's
:class:`~ponyclassifier.gui.workers.JobState`: ``progress``, ``partial``, ``check``). The
rules are the core's (:mod:`ponyclassifier.core.embedding`); what is here is the order of
work, chunking for progress and Stop, and what is handed back.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CHUNK", "MISFIT_THRESHOLD", "MapPoint", "NEIGHBOURS", "features_job", "map_job", "private_model"]

NEIGHBOURS = 5  # how many nearest pictures decide whether a picture is a misfit
MISFIT_THRESHOLD = 0.5  # a misfit: more than this share of its neighbours carry another label
CHUNK = 16  # pictures decoded and embedded per step (progress and Stop in between)


@dataclass(frozen=True)
class MapPoint:
    path: str
    label: str
    x: float
    y: float
    misfit: bool
    disagreement: float  # share of the nearest pictures with another label
    neighbours_mostly: str | None  # their most common label, for misfits


def _file_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_size, st.st_mtime_ns)


def private_model(model: Any) -> Any:
    """A copy of the model whose network nobody else runs or hooks: another view explaining the
    same model at the same time cannot interfere through hooks or train/eval switches."""
    import copy
    import dataclasses

    net = copy.deepcopy(model.network)
    for m in net.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            d = getattr(m, attr, None)
            if d is not None:
                d.clear()
    if dataclasses.is_dataclass(model):
        return dataclasses.replace(model, network=net)
    return net


def features_job(model: Any, paths: list[str], cached: dict, private: bool = False,
                  lock: threading.Lock | None = None):
    """Worker: features of the files not yet in ``cached``, handed over chunk by chunk as
    partial results ``(keys, features)``; returns the (path, reason) pairs that failed and,
    under "keys", each readable file's key as it is now (a file changed since it was read
    no longer matches its features), so the GUI thread never stats a file."""

    def current_keys(bad: list[tuple[str, str]]) -> dict[str, tuple | None]:
        failed = {p for p, _ in bad}
        return {p: _file_key(p) for p in paths if p not in failed}

    lock = lock or threading.Lock()

    def run(state) -> dict:
        import torch

        from ...core import embedding as EM
        from ...core import preprocess
        from ...core.explain import _input_channels, _input_size, _network
        from ...core.images import ImageError

        todo: list[tuple[str, tuple]] = []
        bad: list[tuple[str, str]] = []
        for p in paths:
            key = _file_key(p)
            if key is None:
                bad.append((p, "file not found" if not os.path.exists(p) else "cannot read file"))
            elif key not in cached:
                todo.append((p, key))
        total = len(todo)
        state.progress(0, total)
        if not todo:
            return {"bad": bad, "computed": 0, "keys": current_keys(bad)}
        # ``private``: the caller's copy is already this widget's alone; the lock keeps a
        # stopped job that is still finishing its chunk from hooking it alongside a new one.
        own = model if private else private_model(model)
        net = _network(own)
        size = _input_size(own, net) or 224
        channels = _input_channels(own, net)
        done = 0
        for start in range(0, total, CHUNK):
            state.check()
            tensors, keys = [], []
            for p, key in todo[start:start + CHUNK]:
                try:
                    tensors.append(preprocess.load_input(p, size, channels))
                    keys.append(key)
                except ImageError as e:
                    bad.append((p, e.reason))
                except (OSError, ValueError) as e:  # never let one odd file end the map
                    bad.append((p, f"could not read: {e}"))
            if tensors:
                with lock:
                    feats = EM.embed_features(own, torch.stack(tensors), batch_size=CHUNK)
                state.partial((keys, feats))
            done = min(total, start + CHUNK)
            state.progress(done, total)
        return {"bad": bad, "computed": total, "keys": current_keys(bad)}

    return run


def map_job(features: np.ndarray, labels: list[str], method: str, space: str,
             head: tuple[np.ndarray, np.ndarray] | None):
    """Worker: the view chosen (features, or class scores through the model's last layer),
    its 2-D points, and each picture's nearest neighbours in that view."""

    def run(state) -> dict:
        from ...core import embedding as EM

        if space == "scores":
            w, b = head
            x = features.astype(np.float64) @ w.T.astype(np.float64) + b
            near = x  # class scores: plain distances
        else:
            x = features
            # features: cosine neighbours (the length of a feature vector mostly says how much
            # "stuff" there is in the picture, not what it is)
            near = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        pts = EM.project_2d(x, method, seed=0)
        state.check()
        lab = np.asarray(labels)
        n = len(lab)
        counts = {c: int((lab == c).sum()) for c in set(labels)}
        # A class of 3 pictures cannot have 5 neighbours of its own: ask only as many as the
        # smallest class could give (at least 1, at most NEIGHBOURS).
        k = max(1, min(NEIGHBOURS, min(counts.values()) - 1))
        if n > 1:
            frac = EM.neighbour_disagreement(near, lab, k=k)
            idx = np.nonzero(frac > MISFIT_THRESHOLD)[0]  # EM.misfits' rule, sharing one neighbour search
            idx = idx[np.argsort(-frac[idx], kind="stable")]
        else:
            frac, idx = np.zeros(n), np.zeros(0, int)
        state.check()
        info: dict[int, tuple[float, str]] = {}
        if len(idx):
            nn_idx = EM.nearest_neighbours(near, k, rows=idx)
            for row, i in enumerate(idx):
                neigh = lab[nn_idx[row]]
                values, cnt = np.unique(neigh[neigh != lab[i]], return_counts=True)
                info[int(i)] = (float(frac[i]), str(values[np.argmax(cnt)]) if len(values) else "")
        return {"points": pts, "misfits": [int(i) for i in idx], "info": info, "k": k, "method": method,
                "space": space, "own_share": float(1 - frac.mean()) if n > 1 else 1.0}

    return run
