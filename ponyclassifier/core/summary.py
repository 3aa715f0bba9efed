"""A Keras-style ``model.summary()``: one row per leaf layer with its output shape, its
parameter count and whether training changes it, plus the totals.

The rows come from forward hooks on the leaf modules during one forward pass of a
dummy input, so the shapes are the real ones (and a layer called twice shows twice).
``freeze_for_recipe`` marks parameters trainable exactly as the engine will, so a
transfer model shows its base as frozen before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from . import models as M

__all__ = ["ModelSummary", "model_summary", "freeze_for_recipe", "recipe_summary", "format_count"]


@dataclass
class ModelSummary:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()

    @property
    def frozen_params(self) -> int:
        return self.total_params - self.trainable_params

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def to_text(self) -> str:
        """The table as Keras prints it (for the CLI and logs)."""
        lines = [f"{'Layer (type)':<44}{'Output shape':<22}{'Param #':>12}  Trainable"]
        lines.append("=" * len(lines[0]))
        for r in self.rows:
            shape = "x".join(str(s) for s in r["output_shape"])
            lines.append(f"{r['name'] + ' (' + r['type'] + ')':<44}{shape:<22}{r['params']:>12,}  "
                         f"{'yes' if r['trainable'] else ('no' if r['params'] else '')}")
        lines.append("=" * len(lines[0]))
        lines += [f"Total params: {self.total_params:,}", f"Trainable params: {self.trainable_params:,}",
                  f"Frozen params: {self.frozen_params:,}"]
        return "\n".join(lines)


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]


def model_summary(model: nn.Module, input_shape: Sequence[int]) -> ModelSummary:
    """Run ``model`` once on zeros of ``input_shape`` (C, H, W, or N, C, H, W) and list its
    leaf layers. ``output_shape`` leaves out the batch dimension; ``trainable`` is True when
    any of the layer's parameters has ``requires_grad`` (a layer without parameters: False)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    rows: list[dict[str, Any]] = []
    handles = []

    def hook_for(name: str, module: nn.Module):
        params = list(module.parameters(recurse=False))

        def hook(mod, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            rows.append({"name": name, "type": type(mod).__name__,
                         "output_shape": tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else (),
                         "params": sum(p.numel() for p in params),
                         "trainable": any(p.requires_grad for p in params)})
        return hook

    for name, m in _leaves(model):
        handles.append(m.register_forward_hook(hook_for(name, m)))
    was_training = model.training
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        model.eval()  # BatchNorm must not update its statistics on the dummy input
        with torch.no_grad():
            out = model(torch.zeros(shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # A parameter can be counted once only, even if its layer runs twice.
    seen: set[str] = set()
    for r in rows:
        if r["name"] in seen:
            r["params"] = 0
        seen.add(r["name"])
    total, trainable = M.parameter_counts(model)
    return ModelSummary(rows, total, trainable, shape[1:], tuple(out.shape[1:]))


def freeze_for_recipe(net: nn.Module, recipe: str, arch: dict[str, Any], phase: str = "last") -> nn.Module:
    """Set ``requires_grad`` as the engine does for ``recipe``: everything for ``scratch``;
    the new head only for ``transfer``; for ``finetune`` the head in its first phase and
    the top blocks too in its last (``phase`` = "first" or "last")."""
    point = None
    if recipe == "finetune" and phase == "last":
        point = M.split_point(arch, "finetune")
    M.set_trainable(net, point)
    return net


def recipe_summary(recipe: str, num_classes: int, image_size: int, channels: int = 3,
                   dropout: float | None = None) -> ModelSummary:
    """The summary of the network a recipe would train (random weights: no file is read)."""
    arch = M.arch_config(recipe, num_classes, image_size, channels, dropout)
    net = freeze_for_recipe(M.build_model(arch), recipe, arch)
    return model_summary(net, (channels, image_size, image_size))


def format_count(n: int) -> str:
    """1234567 -> '1.23 M', 12345 -> '12.3 k'."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 10_000:
        return f"{n / 1e3:.1f} k"
    return f"{n:,}"
