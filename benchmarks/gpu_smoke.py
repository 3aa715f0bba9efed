"""The GPU path, end to end: scratch and transfer training on CUDA with mixed precision,
against the CPU in the same run.

    python benchmarks/gpu_smoke.py [--data DIR] [--epochs N] [--json]

For a machine with a CUDA GPU (it says so and exits 0 without one). It writes the built-in
demo pony dataset (or uses ``--data``), then trains through ``Trainer.fit`` with the
product's defaults:

- ``scratch`` on CUDA with mixed precision (bfloat16 where the GPU supports it), on CUDA
  in float32 (``--no-amp``), and on the CPU;
- ``transfer`` on CUDA with mixed precision and on the CPU;

and prints, per row, images/s (training loop only, the engine's own per-epoch figure,
best epoch after the first), the feature-caching seconds for transfer, validation
accuracy, and the ratio to the CPU row of the same recipe. It also checks that every run
wrote a finite model, that the CUDA runs really ran on CUDA, and that ``cuda:N`` beyond the
GPU count is refused with a clear message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ponyclassifier.core.callbacks import Callback
from ponyclassifier.core.demo import generate_demo_dataset
from ponyclassifier.core.engine import TrainConfig, Trainer, TrainingError, select_device


class Timer(Callback):
    def __init__(self):
        self.ips, self.stage_seconds, self._t = [], {}, {}

    def on_prepare_progress(self, stage, done, total):
        t = time.perf_counter()
        first = self._t.setdefault(stage, t)
        self.stage_seconds[stage] = t - first

    def on_epoch_end(self, epoch, logs):
        self.ips.append(logs["images_per_second"])


def run(data: Path, recipe: str, device: str, amp: bool | None, epochs: int) -> dict:
    timer = Timer()
    cfg = TrainConfig(recipe=recipe, epochs=epochs, device=device, mixed_precision=amp, seed=0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = Trainer(cfg).fit(data, callbacks=[timer])
    seconds = time.perf_counter() - t0
    finite = all(bool(torch.isfinite(t).all()) for t in result.model.network.state_dict().values()
                 if t.is_floating_point())
    steady = timer.ips[1:] or timer.ips
    return {"recipe": recipe, "device": result.device, "precision": result.model.training.get("precision"),
            "images_per_second": max(steady), "fit_seconds": round(seconds, 2),
            "feature_seconds": round(sum(v for k, v in timer.stage_seconds.items() if k.startswith("features")), 2),
            "val_accuracy": result.val_report.accuracy if result.val_report else None, "finite": finite}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="a class-folder dataset (default: the demo ponies, written to a temp folder)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to measure (run this where a GPU is lent)")
        return 0
    count = torch.cuda.device_count()
    try:
        select_device(f"cuda:{count}")
        refused = None
    except TrainingError as e:
        refused = str(e)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(a.data) if a.data else Path(tmp) / "ponies"
        if not a.data:
            generate_demo_dataset(data, per_class=120, seed=0, size=150)
        rows = [run(data, "scratch", "cuda", None, a.epochs), run(data, "scratch", "cuda", False, a.epochs),
                run(data, "scratch", "cpu", None, a.epochs),
                run(data, "transfer", "cuda", None, a.epochs), run(data, "transfer", "cpu", None, a.epochs)]
    cpu = {r["recipe"]: r for r in rows if r["device"] == "cpu"}
    for r in rows:
        r["x_cpu"] = r["images_per_second"] / cpu[r["recipe"]]["images_per_second"]
    out = {"gpu": torch.cuda.get_device_name(0), "gpus": count, "torch": torch.__version__,
           "bf16": torch.cuda.is_bf16_supported(), f"cuda:{count} refused": refused, "rows": rows}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['gpu']} ({count} GPU(s)), torch {out['torch']}, bfloat16 {'yes' if out['bf16'] else 'no'}")
        print(f"cuda:{count} -> {refused}")
        print(f"{'recipe':<9} {'device':<28} {'precision':<28} {'img/s':>9} {'x CPU':>7} {'features s':>10} "
              f"{'fit s':>7} {'val acc':>7} finite")
        for r in rows:
            print(f"{r['recipe']:<9} {r['device'][:28]:<28} {r['precision'][:28]:<28} {r['images_per_second']:>9.0f} "
                  f"{r['x_cpu']:>7.1f} {r['feature_seconds']:>10.1f} {r['fit_seconds']:>7.1f} "
                  f"{(r['val_accuracy'] or 0):>7.3f} {r['finite']}")
    ok = refused is not None and all(r["finite"] for r in rows) and all(
        r["device"].startswith("cuda") for r in rows if r is not cpu[r["recipe"]])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
