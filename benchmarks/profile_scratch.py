"""Where an epoch of the ``scratch`` recipe spends its time, against the plain loop.

    python benchmarks/profile_scratch.py [TRAIN_DIR] [--images N] [--rounds R] [--profile]

Times training steps in one process, variant by variant, interleaved over R rounds (the
best round counts, so that a busy shared machine disturbs every variant alike):

- ``product``: the product's step as ``Trainer._train_epoch`` runs it: batches from the
  decoded-image cache (BatchSource), uint8 -> float, batch augmentation, the ScratchCNN in
  channels_last, AdamW + OneCycleLR, the engine's default batch size (64 for images up to
  64 px, else 32), one ``.item()`` per step;
- the same with one thing changed at a time: no augmentation, the other batch size (32 or 64), contiguous
  memory format, the plain loop's network instead of ScratchCNN;
- ``plain``: the plain loop's step (ImageFolder + DataLoader decoding PNGs every epoch,
  the Keras MNIST convnet, RMSprop, batch 64), and its data loading alone.

``--profile`` adds a torch.profiler table of the product's step (top operators by CPU time).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import plain_loop  # noqa: E402
from ponyclassifier.core import models as M  # noqa: E402
from ponyclassifier.core.augment import AugmentConfig, build_augmenter  # noqa: E402
from ponyclassifier.core.dataset import BatchSource, scan_dataset  # noqa: E402
from ponyclassifier.core.engine import default_batch_size  # noqa: E402
from ponyclassifier.core.preprocess import to_float  # noqa: E402


def product_variant(report, idx, *, batch=None, augment=True, channels_last=True, net="scratch"):
    """One epoch of the product's step; ``batch`` None: the engine's default for the image size."""
    torch.manual_seed(0)
    size, ch, n_cls = report.image_size, report.channels, len(report.classes)
    batch = batch or default_batch_size(size)
    if net == "scratch":
        model = M.build_model(M.arch_config("scratch", n_cls, size, ch))
    else:
        model = plain_loop.keras_mnist_convnet(n_cls, ch, size)
    mf = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=mf).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = math.ceil(len(idx) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=50 * steps + 1, pct_start=0.15,
                                                anneal_strategy="cos", cycle_momentum=False)
    aug = build_augmenter(AugmentConfig() if augment else None, seed=0)
    src = BatchSource(report, idx, batch, image_size=size, channels=ch, device=torch.device("cpu"), shuffle=True)
    state = {"epoch": 0}

    def epoch():
        state["epoch"] += 1
        loss_sum, correct, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
        for xb, y, _ in src.batches(state["epoch"]):
            x = to_float(xb)
            if aug is not None:
                x = aug(x)
            x = x.contiguous(memory_format=mf)
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            loss_sum.item(), correct.item()
        return seen
    return epoch


def plain_variant(train_dir, n, *, data_only=False):
    torch.manual_seed(0)
    gray = plain_loop.is_grayscale_folder(train_dir)
    ds = datasets.ImageFolder(str(train_dir), transform=plain_loop.make_transform(28, gray))
    rng = np.random.default_rng(0)
    ds = Subset(ds, sorted(rng.choice(len(ds), min(n, len(ds)), replace=False).tolist()))
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=0)
    model = plain_loop.keras_mnist_convnet(len(ds.dataset.classes), 1 if gray else 3, 28)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def epoch():
        seen = 0
        for x, y in loader:
            seen += len(y)
            if data_only:
                continue
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            (logits.argmax(1) == y).sum().item()
        return seen
    return epoch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train_dir", nargs="?", default="bench-out/data/full/animals/train")
    p.add_argument("--images", type=int, default=2048, help="images per timed epoch (default 2048)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args(argv)

    report = scan_dataset(a.train_dir, image_size=28)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(report.samples), min(a.images, len(report.samples)), replace=False))
    bs = default_batch_size(report.image_size)
    other_bs = 32 if bs == 64 else 64
    default = f"product (defaults: aug, bs{bs}, channels_last, AdamW)"
    variants = {
        default: product_variant(report, idx),
        "product --no-augment": product_variant(report, idx, augment=False),
        f"product --no-augment, batch {other_bs}": product_variant(report, idx, augment=False, batch=other_bs),
        "product --no-augment, contiguous": product_variant(report, idx, augment=False, channels_last=False),
        f"product --no-augment, plain's net, bs{bs}": product_variant(report, idx, augment=False, net="plain"),
        f"product --no-augment, plain's net, bs{other_bs}": product_variant(report, idx, augment=False, net="plain",
                                                                           batch=other_bs),
        "product --no-augment, denormals not flushed": product_variant(report, idx, augment=False),
        "plain loop": plain_variant(a.train_dir, len(idx)),
        "plain loop, data loading only": plain_variant(a.train_dir, len(idx), data_only=True),
    }
    flush_of = {k: ("not flushed" not in k and not k.startswith("plain")) for k in variants}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for k, f in variants.items():  # warm-up
        torch.set_flush_denormal(flush_of[k])
        f()
    for r in range(a.rounds):
        for k, f in variants.items():
            torch.set_flush_denormal(flush_of[k])
            t = time.perf_counter()
            n = f()
            times[k].append(n / (time.perf_counter() - t))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    w = max(len(k) for k in times)
    print(f"{'variant':<{w}} {'img/s best':>10} {'img/s median':>12}")
    for k, v in times.items():
        print(f"{k:<{w}} {max(v):>10.0f} {statistics.median(v):>12.0f}")
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        f = variants[default]
        torch.set_flush_denormal(True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            f()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=22))
        f = variants["plain loop"]
        torch.set_flush_denormal(False)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            f()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    return 0


if __name__ == "__main__":
    sys.exit(main())
