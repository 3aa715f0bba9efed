"""The baseline: the plain PyTorch training loop of the talks.

The Keras MNIST convnet (Chollet, "Deep Learning with Python", ch. 5) ported to plain
PyTorch, with the data pipeline everybody writes first::

    ImageFolder + Compose([Grayscale(1) (grayscale data), Resize((S, S)), ToTensor()])
    DataLoader(batch_size=64, shuffle=True, num_workers=0)
    Conv2d(1,32,3)-ReLU-MaxPool2-Conv2d(32,64,3)-ReLU-MaxPool2-Conv2d(64,64,3)-ReLU
    -Flatten-Linear(.,64)-ReLU-Linear(64,classes);  RMSprop(lr=1e-3);  cross-entropy

No tricks added (no channels_last, no caching of decoded images, no thread tuning, no
denormal flushing, no augmentation, no validation split) and none removed: every epoch
decodes the PNG files again through PIL, as ImageFolder does.

Measured like the product: images per second of an epoch is the images seen by the
training loop divided by the time of that loop (data loading included, evaluation
excluded). Test accuracy: the trained model on the external test folder, read with the
same ImageFolder pipeline.

Run: ``python benchmarks/plain_loop.py TRAIN_DIR TEST_DIR --epochs 5 [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def keras_mnist_convnet(num_classes: int, channels: int = 1, size: int = 28) -> nn.Sequential:
    features = nn.Sequential(
        nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, channels, size, size)).shape[1]
    return nn.Sequential(*features, nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, num_classes))


def is_grayscale_folder(root: str | Path) -> bool:
    """True when the first image of every class folder is single-channel."""
    ds = datasets.ImageFolder(str(root))
    seen = set()
    for path, label in ds.samples:
        if label in seen:
            continue
        seen.add(label)
        with Image.open(path) as im:
            if im.mode not in ("L", "1", "I;16", "I", "F", "LA"):
                return False
    return True


def make_transform(size: int, grayscale: bool) -> transforms.Compose:
    steps = [transforms.Grayscale(1)] if grayscale else []
    return transforms.Compose([*steps, transforms.Resize((size, size)), transforms.ToTensor()])


def run(train_dir: str | Path, test_dir: str | Path, *, epochs: int = 5, size: int = 28, batch_size: int = 64,
        lr: float = 1e-3, seed: int = 0, device: str = "auto", log=None) -> dict:
    t_wall = time.perf_counter()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)

    gray = is_grayscale_folder(train_dir)
    tf = make_transform(size, gray)
    train_ds = datasets.ImageFolder(str(train_dir), transform=tf)
    test_ds = datasets.ImageFolder(str(test_dir), transform=tf)
    if test_ds.classes != train_ds.classes:
        raise SystemExit(f"test classes {test_ds.classes} differ from train classes {train_ds.classes}")
    g = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=0, generator=g)
    test_loader = DataLoader(test_ds, batch_size=batch_size, shuffle=False, num_workers=0)

    channels = 1 if gray else 3
    model = keras_mnist_convnet(len(train_ds.classes), channels, size).to(dev)
    opt = torch.optim.RMSprop(model.parameters(), lr=lr)

    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        seen, correct, loss_sum = 0, 0, 0.0
        t0 = time.perf_counter()
        for x, y in train_loader:
            x, y = x.to(dev), y.to(dev)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        secs = time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "images_per_second": seen / secs, "seconds": secs, "images": seen}
        history.append(row)
        if log:
            log(row)

    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for x, y in test_loader:
            x, y = x.to(dev), y.to(dev)
            correct += (model(x).argmax(1) == y).sum().item()
            count += len(y)

    train_seconds = sum(r["seconds"] for r in history)
    images = sum(r["images"] for r in history)
    return {
        "epochs": history,
        "test": {"accuracy": correct / max(count, 1), "count": count},
        "images_per_second": images / train_seconds,  # all epochs together
        "images_per_second_median": float(np.median([r["images_per_second"] for r in history])),
        "train_seconds": train_seconds,
        "train_images": len(train_ds),
        "image_size": size,
        "channels": channels,
        "classes": train_ds.classes,
        "device": str(dev),
        "wall_seconds": time.perf_counter() - t_wall,
        "config": {"batch_size": batch_size, "optimizer": "RMSprop", "lr": lr, "epochs": epochs, "seed": seed,
                   "num_workers": 0, "model": "Keras MNIST convnet"},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Plain PyTorch baseline (Keras MNIST convnet).")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--size", type=int, default=28, help="Resize((S, S)) (default 28)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch, then the result")
    a = p.parse_args(argv)

    def log(row):
        if a.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} "
                  f"{row['images_per_second']:.0f} img/s {row['seconds']:.1f}s", flush=True)

    r = run(a.train_dir, a.test_dir, epochs=a.epochs, size=a.size, batch_size=a.batch_size, seed=a.seed,
            device=a.device, log=log)
    if a.json:
        print(json.dumps({"summary": r}), flush=True)
    else:
        print(f"test accuracy {r['test']['accuracy']:.4f} on {r['test']['count']} images; "
              f"{r['images_per_second']:.0f} img/s over {a.epochs} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
