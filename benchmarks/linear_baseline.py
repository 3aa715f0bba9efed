"""The transfer baseline: frozen pretrained features + logistic regression.

What a practitioner writes first for transfer learning on a small dataset (a "linear
probe"): the same pretrained network the product uses (EfficientNet-Lite0, ImageNet
weights from the installed package, input scaled to 224x224), its pooled 1280-number
features for every image, and scikit-learn's ``StandardScaler`` + ``LogisticRegression``
(L2, C=1, lbfgs run to convergence) fitted on the whole training folder. No validation
split, no augmentation, nothing tuned per data set. Test accuracy on the external test
folder.

Images are read with plain PIL (``convert("RGB")``, ``resize((S, S), BILINEAR)``), not
through the product's decoder, so only the network is shared.

Run: ``python benchmarks/linear_baseline.py TRAIN_DIR TEST_DIR [--image-size 224] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_folder(root: Path, classes: list[str] | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, c in enumerate(classes):
        for p in sorted((root / c).rglob("*")):
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(p)
                labels.append(label)
    return paths, np.array(labels, dtype=np.int64), classes


@torch.no_grad()
def features(net, paths: list[Path], size: int, batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(paths), batch):
        imgs = []
        for p in paths[i:i + batch]:
            with Image.open(p) as im:
                a = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
            imgs.append(torch.from_numpy(a).permute(2, 0, 1))
        x = torch.stack(imgs).contiguous(memory_format=torch.channels_last)
        h = net.stem(x)
        for b in net._blocks:
            h = b(h)
        out.append(net.head_features(h).mean((2, 3)).numpy())
    return np.concatenate(out)


def run(train_dir: str | Path, test_dir: str | Path, *, image_size: int = 224) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ponyclassifier.core.models import imagenet_model

    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    net = imagenet_model().eval().to(memory_format=torch.channels_last)
    tr_paths, y_tr, classes = list_folder(Path(train_dir))
    te_paths, y_te, _ = list_folder(Path(test_dir), classes)
    t1 = time.perf_counter()
    x_tr = features(net, tr_paths, image_size)
    x_te = features(net, te_paths, image_size)
    t2 = time.perf_counter()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x_tr, y_tr)
    t3 = time.perf_counter()
    acc = float((clf.predict(x_te) == y_te).mean())
    return {"test": {"accuracy": acc, "count": len(y_te)}, "train_images": len(y_tr), "image_size": image_size,
            "seconds": {"load": t1 - t0, "features": t2 - t1, "fit": t3 - t2, "total": time.perf_counter() - t0}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Frozen pretrained features + logistic regression (JSON on stdout).")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = run(a.train_dir, a.test_dir, image_size=a.image_size)
    if a.json:
        print(json.dumps({"summary": r}), flush=True)
    else:
        print(f"test accuracy {r['test']['accuracy']:.4f} on {r['test']['count']} images "
              f"({r['train_images']} training images, {r['seconds']['total']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
