"""Classification metrics: accuracy, per-class precision/recall/F1, macro F1, confusion
matrix (rows = true class), and the top-loss images (the most confidently wrong)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


@dataclass
class Report:
    classes: list[str]
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    count: int
    top_losses: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "classes": self.classes,
                "per_class": self.per_class, "confusion_matrix": self.confusion_matrix,
                "count": self.count, "top_losses": self.top_losses}


def classification_report(y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str],
                          paths: Sequence[str] | None = None, top_k_losses: int = 16) -> Report:
    """Metrics from true labels and predicted probabilities (N, C)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(len(y_true), len(classes))
    y_pred = probs.argmax(1) if len(y_true) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    # sklearn's convention: average over classes that occur in the truth or the predictions.
    present = (support > 0) | (predicted > 0)
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i, c in enumerate(classes)}
    losses = []
    if paths is not None and len(y_true):
        p_true = probs[np.arange(len(y_true)), y_true]
        loss = -np.log(np.clip(p_true, 1e-12, 1.0))
        wrong = np.flatnonzero(y_pred != y_true)
        for i in wrong[np.argsort(-loss[wrong])][:top_k_losses]:
            losses.append({"path": paths[i], "true": classes[y_true[i]], "predicted": classes[y_pred[i]],
                           "confidence": float(probs[i, y_pred[i]]), "loss": float(loss[i])})
    return Report(
        classes=list(classes),
        accuracy=float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class=per_class,
        confusion_matrix=cm.tolist(),
        count=int(len(y_true)),
        top_losses=losses,
    )
