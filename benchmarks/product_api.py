"""Train through PonyClassifier's Python API with a timing callback: where the time goes.

``python benchmarks/product_api.py TRAIN_DIR TEST_DIR --recipe transfer [--epochs N]
[--no-augment] [--seed S] [--device D]`` prints one JSON object: the epoch logs, the
external test accuracy, and the seconds spent in each stage of ``Trainer.fit``:

- ``prepare``: scanning and decoding the train and test folders, building the network,
  loading the pretrained weights (from the start of ``fit`` to ``on_train_begin``);
- ``features``: computing the cached outputs of the frozen base (``transfer``), from
  ``on_train_begin`` to the start of the first epoch (about 0 for ``scratch``);
- ``epochs``: all epochs, each with its validation;
- ``evaluate``: the final validation and external test evaluation.

The configuration is the CLI's (``TrainConfig`` defaults: every setting on auto, as the
policy chooses; augmentation off with ``--no-augment``), so the numbers are those of
``ponyclassifier train`` with the same flags; the CLI itself does not say how long the
feature caching took. ``features`` includes choosing the transfer head by
cross-validation; ``evaluate`` includes the refit on all images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ponyclassifier.core.callbacks import Callback
from ponyclassifier.core.engine import TrainConfig, Trainer


class StageTimer(Callback):
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.epochs: list[dict] = []
        self._epoch_t0 = 0.0
        self.stages: dict[str, list[float]] = {}

    def _now(self) -> float:
        return time.perf_counter() - self.t0

    def on_prepare_progress(self, stage, done, total):
        t = self._now()
        s = self.stages.setdefault(stage, [t, t])
        s[1] = t

    def on_train_begin(self, logs):
        self.marks["train_begin"] = self._now()

    def on_epoch_begin(self, epoch, logs):
        self._epoch_t0 = self._now()
        self.marks.setdefault("first_epoch_begin", self._epoch_t0)

    def on_epoch_end(self, epoch, logs):
        t = self._now()
        self.marks["last_epoch_end"] = t
        row = {k: (v if not isinstance(v, float) or v == v else None) for k, v in logs.items()}
        row["wall"] = t - self._epoch_t0
        self.epochs.append(row)

    def on_train_end(self, logs):
        self.marks["train_end"] = self._now()


def run(train_dir, test_dir, *, recipe: str, epochs: int | None, augment: bool, seed: int, device: str,
        image_size: int | None = None) -> dict:
    cfg = TrainConfig(recipe=recipe, epochs=epochs, seed=seed, device=device, image_size=image_size,
                      augment="auto" if augment else None)
    timer = StageTimer()
    t0 = time.perf_counter()
    timer.t0 = t0
    result = Trainer(cfg).fit(train_dir, callbacks=[timer], test_dir=test_dir)
    m = timer.marks
    stages = {
        "prepare": m.get("train_begin"),
        "features": (m["first_epoch_begin"] - m["train_begin"]) if "first_epoch_begin" in m else None,
        "epochs": sum(e["wall"] for e in timer.epochs),
        "evaluate": (m["train_end"] - m["last_epoch_end"]) if "last_epoch_end" in m else None,
        "total": result.seconds,
    }
    t = result.test_report
    return {"recipe": recipe, "epochs": timer.epochs, "epochs_run": result.epochs_run, "stages": stages,
            "progress_stages": timer.stages, "device": result.device,
            "image_size": result.model.image_size, "channels": result.model.channels,
            "train_images": result.model.training.get("train_images"),
            "val_images": result.model.training.get("val_images"),
            "test": {"accuracy": t.accuracy, "macro_f1": t.macro_f1, "count": t.count} if t else None,
            "best_val_accuracy": max((e.get("val_accuracy") or 0 for e in timer.epochs), default=None),
            "plan": result.plan.lines() if result.plan else [], "refit_epochs": result.refit_epochs,
            "head": (result.model.training.get("head_choice") or {}).get("name")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train via the API and time each stage (JSON on stdout).")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("--recipe", choices=["scratch", "transfer", "finetune"], default="scratch")
    p.add_argument("--epochs", type=int)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--image-size", type=int, help="as the CLI's --image-size (default: the recipe's)")
    a = p.parse_args(argv)
    r = run(a.train_dir, a.test_dir, recipe=a.recipe, epochs=a.epochs, augment=not a.no_augment, seed=a.seed,
            device=a.device, image_size=a.image_size)
    print(json.dumps({"summary": r}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
