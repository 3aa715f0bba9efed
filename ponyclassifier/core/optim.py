"""Optimizers and the one-cycle learning-rate schedule, shared by the training loop and the
cross-validated choice of a transfer head (:mod:`.headselect`)."""

from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = list(params)
    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        kw = {"weight_decay": weight_decay} if name == "adamw" else {}
        # one fused kernel per step instead of ~10 small ops per tensor: the optimizer took
        # 17% of a small network's CPU step (benchmarks/README.md)
        devices = {p.device.type for p in params}
        if devices <= {"cpu", "cuda"}:
            try:
                return cls(params, lr=lr, fused=True, **kw)
            except (RuntimeError, TypeError, ValueError):
                pass
        return cls(params, lr=lr, **kw)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def one_cycle(opt: torch.optim.Optimizer, lr: float, total_steps: int, pct_start: float,
              start_step: int = 0) -> torch.optim.lr_scheduler.OneCycleLR:
    """The one-cycle schedule over ``total_steps``, ``start_step`` steps in (a resumed run, or
    a phase whose batch size was halved after running out of memory, continues its schedule)."""
    div_factor, final_div_factor = 25.0, 1e4
    start_step = max(0, min(start_step, total_steps - 1))
    for g in opt.param_groups:
        # what OneCycleLR writes into the groups at step 0, which it needs to start later on
        # (and which a rebuilt schedule must not take from the previous one)
        g["initial_lr"] = lr / div_factor
        g["max_lr"] = lr
        g["min_lr"] = g["initial_lr"] / final_div_factor
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=pct_start,
                                               anneal_strategy="cos", cycle_momentum=False, div_factor=div_factor,
                                               final_div_factor=final_div_factor, last_epoch=start_step - 1)


def pct_start(epochs: int) -> float:
    """Warm-up share of the one-cycle schedule."""
    return 0.15 if epochs > 2 else 0.3
