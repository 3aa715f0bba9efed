"""Choosing the transfer recipe's head by k-fold cross-validation on the cached features.

With a frozen base every candidate head trains on the same cached features in seconds, so
the choice can be made by the data instead of by a default: each candidate is trained on
k-1 folds of the training split and scored on the held-out fold, and the best mean
accuracy wins (ties go to the earlier candidate). The validation split is not touched, so
its figures stay an honest estimate of the chosen head.

Measured on six real data sets (``benchmarks/README.md``): no single head was best on all
of them (label smoothing helped digits and silhouettes by 0.6-1 point, the two-layer head
helped colour photo crops), and the cross-validated choice was never below the best
single default by more than the noise of the test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .optim import make_optimizer, one_cycle, pct_start


@dataclass(frozen=True)
class HeadSpec:
    key: str  # what the command line and the config call it
    name: str  # what people read
    hidden: int  # 0: one linear layer
    label_smoothing: float
    dropout: float | None  # None: the recipe's dropout
    lr_scale: float = 1.0  # of the recipe's learning rate (a hidden layer wants a gentler one)


CANDIDATES = (
    HeadSpec("linear-smooth", "linear, label smoothing", 0, 0.1, None),
    HeadSpec("linear", "linear", 0, 0.0, None),
    HeadSpec("mlp-smooth", "two layers (512), label smoothing", 512, 0.1, 0.5, 0.3),
)
DEFAULT = CANDIDATES[0]
HEAD_KEYS = ("auto", *(c.key for c in CANDIDATES))


def spec_for(key: str) -> HeadSpec:
    for c in CANDIDATES:
        if c.key == key:
            return c
    raise ValueError(f"unknown head {key!r}; choose {', '.join(HEAD_KEYS)}")
MAX_CV_IMAGES = 30_000  # above this, the default head (cross-validation would take minutes)


@dataclass
class HeadChoice:
    spec: HeadSpec
    scores: dict[str, float]  # mean held-out accuracy per candidate
    folds: int

    def text(self) -> str:
        if not self.scores:
            return f"head: {self.spec.name}"
        ranked = ", ".join(f"{n} {a:.1%}" for n, a in sorted(self.scores.items(), key=lambda kv: -kv[1]))
        return f"head: auto: {self.spec.name} ({self.folds}-fold cross-validation on the training split: {ranked})"


def make_head(in_features: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    """The classifier after the pooled features (the network's own dropout comes before it)."""
    if hidden <= 0:
        return nn.Linear(in_features, num_classes)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


def stratified_folds(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """A fold number per sample: each class shuffled (seeded) and dealt round-robin."""
    g = torch.Generator().manual_seed(seed)
    y = labels.cpu()
    fold = torch.empty(len(y), dtype=torch.long)
    offset = 0
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        fold[idx] = (torch.arange(len(idx)) + offset) % k
        offset += len(idx)  # classes start where the last left off, so small classes spread over folds
    return fold


def train_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, spec: HeadSpec, *,
               dropout: float, epochs: int, lr: float, batch_size: int, weight_decay: float, optimizer: str,
               seed: int, should_stop: Callable[[], bool] | None = None) -> nn.Module | None:
    """A head trained like the engine trains it (one-cycle, the same optimizer); None if stopped."""
    torch.manual_seed(seed)
    drop = spec.dropout if spec.dropout is not None else dropout
    model = nn.Sequential(nn.Dropout(dropout), make_head(features.shape[1], num_classes, spec.hidden, drop))
    model.to(features.device)
    lr = lr * spec.lr_scale
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    steps = max(1, math.ceil(len(labels) / batch_size))
    sched = one_cycle(opt, lr, epochs * steps + 1, pct_start(epochs))
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        if should_stop is not None and should_stop():
            return None
        perm = torch.randperm(len(labels), generator=g).to(features.device)
        for i in range(0, len(perm), batch_size):
            j = perm[i:i + batch_size]
            loss = F.cross_entropy(model(features[j]), labels[j], label_smoothing=spec.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def choose_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, dropout: float, epochs: int,
                lr: float, batch_size: int, weight_decay: float, optimizer: str, seed: int,
                should_stop: Callable[[], bool] | None = None,
                progress: Callable[[int, int], None] | None = None) -> HeadChoice:
    """The candidate with the best k-fold accuracy on (features, labels); the default head
    when the set is too small to fold (fewer than 2 images in a class) or very large."""
    n = len(labels)
    counts = torch.bincount(labels.cpu(), minlength=num_classes)
    present = counts[counts > 0]
    k = min(5 if n < 3000 else 3, int(present.min()) if len(present) else 0)
    if k < 2 or n > MAX_CV_IMAGES:
        return HeadChoice(DEFAULT, {}, 0)
    fold = stratified_folds(labels, k, seed).to(features.device)
    total, done = k * len(CANDIDATES), 0
    scores: dict[str, float] = {}
    with torch.enable_grad():
        for spec in CANDIDATES:
            correct = 0
            for f in range(k):
                train, held = fold != f, fold == f
                head = train_head(features[train], labels[train], num_classes, spec, dropout=dropout, epochs=epochs,
                                  lr=lr, batch_size=batch_size, weight_decay=weight_decay, optimizer=optimizer,
                                  seed=seed + f, should_stop=should_stop)
                if head is None:
                    return HeadChoice(DEFAULT, {}, 0)
                with torch.no_grad():
                    correct += int((head(features[held]).argmax(1) == labels[held]).sum())
                done += 1
                if progress is not None:
                    progress(done, total)
            scores[spec.name] = correct / n
    best = max(CANDIDATES, key=lambda s: (scores[s.name], -CANDIDATES.index(s)))
    return HeadChoice(best, scores, k)
