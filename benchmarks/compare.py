"""PonyClassifier's defaults against the baselines people write first, on six real data sets, in one run.

    python benchmarks/compare.py [--quick] [--json] [--repeats R] [--dataset NAME ...]

Every data set gets both parts, each run with the product's DEFAULTS (every setting on
auto, exactly what ``ponyclassifier train`` does with no options), against a baseline in
the same run:

Part A, ``scratch`` against the talks' plain PyTorch loop: ``ponyclassifier train TRAIN
--out M --recipe scratch --epochs 5 --test-dir TEST --json`` (a subprocess; 5 epochs is
the one setting given, the plain loop's count) against ``plain_loop.py`` (ImageFolder +
DataLoader + the Keras MNIST convnet + RMSprop), 5 epochs on the same folders. Images/s:
training images seen / training-loop seconds of each epoch (validation excluded), over all
epochs. The bar: test accuracy at least +2 points and images/s at least 1.5x.

Part B, ``transfer`` against a linear probe: ``ponyclassifier train TRAIN --recipe
transfer`` with nothing else set (through ``product_api.py``, which times each stage)
against ``linear_baseline.py``: the same pretrained network's pooled features at 224 px
and scikit-learn's StandardScaler + LogisticRegression on the whole training folder.
The bar: higher test accuracy.

Runs are interleaved (product, baseline, product, ...) so slow spells of a shared machine
hit both alike; with ``--repeats R`` part A runs R times with seeds 0..R-1 (images/s: best
and median, accuracy: mean). Each run records the load average and its CPU use.

``--json`` prints one JSON object on stdout (progress goes to stderr). ``--quick`` shrinks
everything (tiny data sets, 1 epoch) for a smoke test.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data as bench_data  # noqa: E402
from ponyclassifier.core.splits import split_indices  # noqa: E402

SCRATCH_EPOCHS = 5
ACC_BAR_POINTS = 2.0  # part A: at least two percentage points above the plain loop
SPEED_BAR = 1.5  # part A: at least 1.5x the plain loop's images/s


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_streaming(cmd: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``cmd``; every stdout/stderr line with the seconds since start it arrived at."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = _loadavg()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         stdin=subprocess.DEVNULL)
    out: list[tuple[float, str]] = []
    err: list[tuple[float, str]] = []

    def pump(stream, sink):
        for line in stream:
            sink.append((time.perf_counter() - t0, line.rstrip("\n")))

    threads = [threading.Thread(target=pump, args=(p.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(p.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"rc": rc, "stdout": out, "stderr": err, "wall_seconds": wall, "cpu_seconds": cpu,
            "cpu_per_wall": cpu / max(wall, 1e-9), "load_before": load0, "load_after": _loadavg()}


class RunFailed(RuntimeError):
    pass


def _json_lines(lines: list[tuple[float, str]]) -> list[tuple[float, dict]]:
    got = []
    for t, line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                got.append((t, json.loads(line)))
            except ValueError:
                pass
    return got


def _check(r: dict, cmd: list[str]) -> None:
    if r["rc"] != 0:
        tail = "\n".join(l for _, l in r["stderr"][-15:])
        raise RunFailed(f"command failed (exit {r['rc']}): {' '.join(cmd)}\n{tail}")


def _overall_ips(per_epoch: list[float]) -> float | None:
    """All epochs together: the same number of images each epoch, so the harmonic mean."""
    per_epoch = [v for v in per_epoch if v and v > 0]
    return len(per_epoch) / sum(1.0 / v for v in per_epoch) if per_epoch else None


def _cli_base() -> list[str]:
    exe = Path(sys.executable).with_name("ponyclassifier")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ponyclassifier"]


def product_train_images(ds: bench_data.WrittenDataset, val_fraction: float) -> int:
    """Images per training epoch under the product's stratified split (core.splits.split_indices,
    which engine.stratified_split uses). The count depends only on the class sizes, so the
    paths passed are placeholders."""
    paths, labels = [], []
    for label, (name, count) in enumerate(ds.train_counts.items()):
        paths += [str(ds.train_dir / name / str(i)) for i in range(count)]
        labels += [label] * count
    train, _ = split_indices(paths, labels, ds.train_dir, val_fraction)
    return len(train)


def run_product(ds: bench_data.WrittenDataset, recipe: str, model_path: Path, *, epochs: int | None,
                flags: list[str], seed: int, device: str) -> dict[str, Any]:
    cmd = [*_cli_base(), "train", str(ds.train_dir), "--out", str(model_path), "--recipe", recipe]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    cmd += ["--test-dir", str(ds.test_dir), "--json", "--overwrite", "--seed", str(seed), "--device", device, *flags]
    r = run_streaming(cmd)
    _check(r, cmd)
    objs = _json_lines(r["stdout"])
    epoch_rows = [(t, o) for t, o in objs if "epoch" in o]
    summary = next((o["summary"] for _, o in objs if "summary" in o), None)
    if summary is None or not epoch_rows:
        raise RunFailed(f"no epoch lines or summary from: {' '.join(cmd)}")
    ips = [o["images_per_second"] for _, o in epoch_rows]
    epoch_seconds = sum(o["seconds"] for _, o in epoch_rows)
    # Process start -> start of the first epoch (imports, scan, model), from when the line arrived.
    first_epoch_start = epoch_rows[0][0] - epoch_rows[0][1]["seconds"]
    test = summary.get("test") or {}
    n_train = summary.get("train_images") or product_train_images(ds, 0.2)
    return {
        "kind": "product", "recipe": recipe, "flags": flags, "command": cmd, "seed": seed,
        "epochs": len(epoch_rows), "train_images_per_epoch": n_train,
        "epoch_images_per_second": ips,
        "images_per_second": _overall_ips(ips),
        "images_per_second_median": statistics.median(ips),
        "epoch_seconds": epoch_seconds,  # the epochs, validation included
        "train_seconds": sum(n_train / v for v in ips) if n_train else None,  # training loops only
        "setup_seconds": first_epoch_start,
        "total_seconds": summary.get("seconds"),  # Trainer.fit, as the CLI reports it
        "wall_seconds": r["wall_seconds"],
        "cpu_per_wall": r["cpu_per_wall"], "load_before": r["load_before"], "load_after": r["load_after"],
        "test_accuracy": test.get("accuracy"), "test_macro_f1": test.get("macro_f1"), "test_count": test.get("count"),
        "best_val_accuracy": summary.get("best_val_accuracy"), "image_size": summary.get("image_size"),
        "final_train_accuracy": epoch_rows[-1][1].get("train_accuracy"),
    }


def run_product_api(ds: bench_data.WrittenDataset, recipe: str, *, epochs: int | None, seed: int,
                    device: str, flags: list[str] = ()) -> dict[str, Any]:
    """Through product_api.py: the CLI's configuration, with each stage of fit timed."""
    cmd = [sys.executable, str(HERE / "product_api.py"), str(ds.train_dir), str(ds.test_dir), "--recipe", recipe,
           "--seed", str(seed), "--device", device, *flags]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    r = run_streaming(cmd)
    _check(r, cmd)
    s = next((o["summary"] for _, o in _json_lines(r["stdout"]) if "summary" in o), None)
    if s is None:
        raise RunFailed(f"no summary from: {' '.join(cmd)}")
    st = s["stages"]
    ips = [e["images_per_second"] for e in s["epochs"]]
    return {
        "kind": "product", "recipe": recipe, "flags": list(flags), "command": cmd, "seed": seed,
        "epochs": s["epochs_run"],
        "train_images_per_epoch": s["train_images"], "val_images": s["val_images"],
        "epoch_images_per_second": ips, "images_per_second": _overall_ips(ips),
        "images_per_second_median": statistics.median(ips) if ips else None,
        "prepare_seconds": st["prepare"], "feature_seconds": st["features"], "epoch_seconds": st["epochs"],
        "evaluate_seconds": st["evaluate"], "total_seconds": st["total"],
        "train_seconds": sum(s["train_images"] / v for v in ips) if ips else None,
        "wall_seconds": r["wall_seconds"], "cpu_per_wall": r["cpu_per_wall"], "load_before": r["load_before"],
        "load_after": r["load_after"], "test_accuracy": (s["test"] or {}).get("accuracy"),
        "test_macro_f1": (s["test"] or {}).get("macro_f1"), "test_count": (s["test"] or {}).get("count"),
        "best_val_accuracy": s["best_val_accuracy"], "image_size": s["image_size"],
        "final_train_accuracy": s["epochs"][-1]["train_accuracy"] if s["epochs"] else None,
        "head": s.get("head"), "plan": s.get("plan"), "refit_epochs": s.get("refit_epochs"),
    }


def run_plain(ds: bench_data.WrittenDataset, *, epochs: int, seed: int, device: str) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "plain_loop.py"), str(ds.train_dir), str(ds.test_dir), "--epochs", str(epochs),
           "--size", str(ds.image_size), "--seed", str(seed), "--device", device, "--json"]
    r = run_streaming(cmd)
    _check(r, cmd)
    objs = _json_lines(r["stdout"])
    s = next((o["summary"] for _, o in objs if "summary" in o), None)
    if s is None:
        raise RunFailed(f"no summary from: {' '.join(cmd)}")
    ips = [e["images_per_second"] for e in s["epochs"]]
    return {
        "kind": "plain", "recipe": "plain loop (Keras MNIST convnet)", "flags": [], "command": cmd, "seed": seed,
        "epochs": len(ips), "epoch_images_per_second": ips,
        "images_per_second": s["images_per_second"], "images_per_second_median": statistics.median(ips),
        "train_images_per_epoch": s["epochs"][0]["images"],
        "train_seconds": s["train_seconds"], "epoch_seconds": s["train_seconds"], "wall_seconds": r["wall_seconds"],
        "cpu_per_wall": r["cpu_per_wall"], "load_before": r["load_before"], "load_after": r["load_after"],
        "test_accuracy": s["test"]["accuracy"], "test_count": s["test"]["count"], "image_size": s["image_size"],
        "final_train_accuracy": s["epochs"][-1]["train_accuracy"],
    }


# ------------------------------------------------------------------------ aggregation


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def aggregate(name: str, runs: list[dict]) -> dict[str, Any]:
    """One table row from the repeats of one configuration."""
    ips = [r["images_per_second"] for r in runs if r.get("images_per_second")]
    accs = [r["test_accuracy"] for r in runs if r.get("test_accuracy") is not None]
    first = runs[0]
    row = {
        "name": name, "kind": first["kind"], "recipe": first["recipe"], "flags": first["flags"],
        "command": first["command"], "epochs": first["epochs"], "repeats": len(runs),
        "seeds": [r["seed"] for r in runs],
        "images_per_second": max(ips) if ips else None,  # best of the repeats
        "images_per_second_median": statistics.median(ips) if ips else None,
        "images_per_second_all": ips,
        "test_accuracy": _mean(accs), "test_accuracy_all": accs,
        "test_accuracy_min": min(accs) if accs else None, "test_accuracy_max": max(accs) if accs else None,
        "test_count": first.get("test_count"),
        "epoch_seconds": _mean([r.get("epoch_seconds") for r in runs]),
        "train_seconds": _mean([r.get("train_seconds") for r in runs]),
        "train_images_per_epoch": first.get("train_images_per_epoch"),
        "wall_seconds": _mean([r.get("wall_seconds") for r in runs]),
        "cpu_per_wall": _mean([r.get("cpu_per_wall") for r in runs]),
        "image_size": first.get("image_size"),
        "runs": runs,
    }
    for k in ("prepare_seconds", "feature_seconds", "evaluate_seconds", "setup_seconds", "total_seconds",
              "best_val_accuracy"):
        if k in first:
            row[k] = _mean([r.get(k) for r in runs])
    return row


# ------------------------------------------------------------------------------ parts


def part_scratch(ds, *, epochs: int, repeats: int, device: str, models: Path) -> dict[str, Any]:
    """Product scratch (defaults, --epochs E) against the plain loop, interleaved."""
    configs = [("product scratch (defaults)", "product"), ("plain loop", "plain")]
    runs: dict[str, list] = {name: [] for name, _ in configs}
    for rep in range(repeats):
        for name, kind in configs:
            log(f"[{ds.name}] A: {name}  (seed {rep}, repeat {rep + 1}/{repeats})")
            if kind == "product":
                r = run_product(ds, "scratch", models / f"{ds.name}-scratch.pony", epochs=epochs, flags=[], seed=rep,
                                device=device)
            else:
                r = run_plain(ds, epochs=epochs, seed=rep, device=device)
            log(f"    {r['images_per_second']:.0f} img/s, test accuracy {r['test_accuracy']:.4f}, "
                f"{r['wall_seconds']:.1f} s wall, CPU use {r['cpu_per_wall']:.2f} cores, load {r['load_before']}")
            runs[name].append(r)
    product, plain = (aggregate(name, runs[name]) for name, _ in configs)
    diff = (product["test_accuracy"] - plain["test_accuracy"]) * 100
    ratio = product["images_per_second"] / plain["images_per_second"]
    ratio_med = product["images_per_second_median"] / plain["images_per_second_median"]
    return {"dataset": ds.to_dict(), "epochs": epochs, "rows": [product, plain],
            "comparison": {"test_accuracy_diff_points": diff, "images_per_second_ratio": ratio,
                           "images_per_second_ratio_median": ratio_med,
                           "accuracy_bar_met": diff >= ACC_BAR_POINTS, "speed_bar_met": ratio >= SPEED_BAR,
                           "meets_bar": diff >= ACC_BAR_POINTS and ratio >= SPEED_BAR}}


def run_linear(ds: bench_data.WrittenDataset, *, image_size: int) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "linear_baseline.py"), str(ds.train_dir), str(ds.test_dir),
           "--image-size", str(image_size), "--json"]
    r = run_streaming(cmd)
    _check(r, cmd)
    s = next((o["summary"] for _, o in _json_lines(r["stdout"]) if "summary" in o), None)
    if s is None:
        raise RunFailed(f"no summary from: {' '.join(cmd)}")
    return {"kind": "baseline", "recipe": "frozen features + logistic regression", "flags": [], "command": cmd,
            "seed": 0, "epochs": 0, "test_accuracy": s["test"]["accuracy"], "test_count": s["test"]["count"],
            "train_images_per_epoch": s["train_images"], "feature_seconds": s["seconds"]["features"],
            "fit_seconds": s["seconds"]["fit"], "total_seconds": s["seconds"]["total"],
            "wall_seconds": r["wall_seconds"], "cpu_per_wall": r["cpu_per_wall"], "load_before": r["load_before"],
            "load_after": r["load_after"], "image_size": s["image_size"]}


def part_transfer(ds, *, epochs: int | None, device: str, quick: bool = False) -> dict[str, Any]:
    """Product transfer (defaults) against frozen features + logistic regression."""
    size = 64 if quick else 224  # quick: a smoke test, not a measurement
    flags = ["--image-size", str(size)] if quick else []
    log(f"[{ds.name}] B: product transfer (defaults)")
    product = run_product_api(ds, "transfer", epochs=epochs, seed=0, device=device, flags=flags)
    log(f"    test accuracy {product['test_accuracy']:.4f}, {product['total_seconds']:.1f} s in fit: prepare "
        f"{product['prepare_seconds']:.1f} s, features and head choice {product['feature_seconds']:.1f} s, "
        f"epochs {product['epoch_seconds']:.1f} s, refit and evaluate {product['evaluate_seconds']:.1f} s; "
        f"head: {product.get('head')}")
    log(f"[{ds.name}] B: frozen features + logistic regression")
    base = run_linear(ds, image_size=size)
    log(f"    test accuracy {base['test_accuracy']:.4f}, {base['total_seconds']:.1f} s (features "
        f"{base['feature_seconds']:.1f} s, fit {base['fit_seconds']:.1f} s)")
    p_row = aggregate("product transfer (defaults)", [product])
    p_row["head"] = product.get("head")
    b_row = aggregate("frozen features + logistic regression", [base])
    diff = (p_row["test_accuracy"] - b_row["test_accuracy"]) * 100
    ceiling = b_row["test_accuracy"] >= 1.0 and p_row["test_accuracy"] >= 1.0
    return {"dataset": ds.to_dict(), "rows": [p_row, b_row],
            "comparison": {"test_accuracy_diff_points": diff, "both_at_100": ceiling, "meets_bar": diff > 0}}


# ------------------------------------------------------------------------------ report


def _f(v, fmt="{:.0f}", none="-"):
    return none if v is None else fmt.format(v)


def render(result: dict[str, Any]) -> str:
    m = result["meta"]
    out = [f"PonyClassifier benchmark  {m['date']}  torch {m['torch']}  {m['cpu_count']} CPU(s), "
           f"OMP_NUM_THREADS={m.get('omp_num_threads') or 'unset'}, device {m['device']}{'  [QUICK]' if m['quick'] else ''}",
           f"ponyclassifier at commit {m.get('commit')}; load average at start {m['load_start']}, "
           f"at end {m.get('load_end')}", ""]
    by_name: dict[str, dict] = {}
    for part in result["scratch"]:
        by_name.setdefault(part["dataset"]["name"], {})["A"] = part
    for part in result["transfer"]:
        by_name.setdefault(part["dataset"]["name"], {})["B"] = part
    hdr = (f"  {'data set':<11} {'train':>6} {'test':>5} {'px':>3} | {'A scratch':>9} {'plain':>6} {'diff':>6} "
           f"{'img/s x':>7} {'bar':>4} | {'B transfer':>10} {'linear':>6} {'diff':>6} {'bar':>4}")
    out += ["Defaults against the baselines (test accuracy; A: 5 epochs each, B: each with its defaults)",
            hdr, "  " + "-" * (len(hdr) - 2)]
    for name, parts in by_name.items():
        d = (parts.get("A") or parts.get("B"))["dataset"]
        a, b = parts.get("A"), parts.get("B")
        cells = f"  {name:<11} {d['train_images']:>6} {d['test_images']:>5} {d['image_size']:>3} |"
        if a:
            c = a["comparison"]
            cells += (f" {a['rows'][0]['test_accuracy']:>9.4f} {a['rows'][1]['test_accuracy']:>6.4f} "
                      f"{c['test_accuracy_diff_points']:>+6.1f} {c['images_per_second_ratio']:>7.2f} "
                      f"{'MET' if c['meets_bar'] else 'NOT':>4} |")
        else:
            cells += f" {'-':>9} {'-':>6} {'-':>6} {'-':>7} {'-':>4} |"
        if b:
            c = b["comparison"]
            verdict = "MET" if c["meets_bar"] else ("TIE" if c["both_at_100"] else "NOT")
            cells += (f" {b['rows'][0]['test_accuracy']:>10.4f} {b['rows'][1]['test_accuracy']:>6.4f} "
                      f"{c['test_accuracy_diff_points']:>+6.1f} {verdict:>4}")
        out.append(cells)
    out += [f"  bars: A: >= +{ACC_BAR_POINTS:.0f} points and >= x{SPEED_BAR} images/s; B: higher test accuracy "
            "(TIE: both at 100%)", ""]
    for part in result["scratch"]:
        d = part["dataset"]
        out.append(f"A. {d['name']}: {d['train_images']} train / {d['test_images']} test images, "
                   f"{len(d['classes'])} classes, {d['image_size']}x{d['image_size']}, {part['epochs']} epochs, "
                   f"{part['rows'][0]['repeats']} repeat(s)  [{d['source']}]")
        hdr = (f"  {'row':<28} {'img/epoch':>9} {'img/s best':>10} {'img/s med':>9} {'test acc':>9} "
               f"{'acc range':>13} {'train s':>7} {'wall s':>7} {'cpu/wall':>8}")
        out += [hdr, "  " + "-" * (len(hdr) - 2)]
        for r in part["rows"]:
            rng = (f"{r['test_accuracy_min']:.3f}-{r['test_accuracy_max']:.3f}" if r["repeats"] > 1 else "")
            out.append(f"  {r['name']:<28} {_f(r['train_images_per_epoch']):>9} {_f(r['images_per_second']):>10} "
                       f"{_f(r['images_per_second_median']):>9} "
                       f"{_f(r['test_accuracy'], '{:.4f}'):>9} {rng:>13} {_f(r['train_seconds'], '{:.1f}'):>7} "
                       f"{_f(r['wall_seconds'], '{:.1f}'):>7} {_f(r['cpu_per_wall'], '{:.2f}'):>8}")
        c = part["comparison"]
        out.append(f"  product vs plain: test accuracy {c['test_accuracy_diff_points']:+.1f} points, images/s "
                   f"x{c['images_per_second_ratio']:.2f} (medians x{c['images_per_second_ratio_median']:.2f})")
        out.append("  commands: " + " | ".join(" ".join(_short(x) for x in r["command"]) for r in part["rows"]))
        out.append("")
    for part in result["transfer"]:
        d = part["dataset"]
        out.append(f"B. {d['name']}: {d['train_images']} train / {d['test_images']} test images, "
                   f"{len(d['classes'])} classes, {d['image_size']}x{d['image_size']}  [{d['source']}]")
        p, b = part["rows"]
        out.append(f"  product transfer (defaults): test accuracy {p['test_accuracy']:.4f}; head: {p.get('head')}; "
                   f"{_f(p.get('total_seconds'), '{:.1f}')} s in fit (prepare {_f(p.get('prepare_seconds'), '{:.1f}')}, "
                   f"features and head choice {_f(p.get('feature_seconds'), '{:.1f}')}, epochs "
                   f"{_f(p['epoch_seconds'], '{:.1f}')}, refit and evaluation {_f(p.get('evaluate_seconds'), '{:.1f}')})")
        out.append(f"  frozen features + logistic regression: test accuracy {b['test_accuracy']:.4f}; "
                   f"{_f(b.get('total_seconds'), '{:.1f}')} s")
        out.append(f"  difference {part['comparison']['test_accuracy_diff_points']:+.1f} points")
        out.append("  commands: " + " | ".join(" ".join(_short(x) for x in r["command"]) for r in part["rows"]))
        out.append("")
    for s in result["skipped"]:
        out.append(f"skipped: {s}")
    return "\n".join(out)


def _short(x: str) -> str:
    cwd = str(Path.cwd()) + os.sep
    return x[len(cwd):] if x.startswith(cwd) else x


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../ponyclassifier"], cwd=HERE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+local changes" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def meta(args, device: str) -> dict[str, Any]:
    import torch

    return {"date": _dt.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torchvision": __import__("torchvision").__version__, "device": device, "quick": args.quick,
            "repeats": args.repeats, "load_start": _loadavg(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "commit": _git_commit()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny datasets and 1 epoch (smoke test)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--dataset", action="append", choices=bench_data.DATASETS, metavar="NAME",
                   help=f"{', '.join(bench_data.DATASETS)}; repeatable. Default: all available (quick: digits "
                        "and faces)")
    p.add_argument("--part", choices=["A", "B"], action="append",
                   help="only part A (scratch vs the plain loop) or B (transfer vs the linear baseline)")
    p.add_argument("--epochs", type=int, default=None, help=f"part A epochs (default {SCRATCH_EPOCHS}; quick 1)")
    p.add_argument("--transfer-epochs", type=int, default=None,
                   help="part B epochs (default: the product's own choice; quick 1)")
    p.add_argument("--repeats", type=int, default=1, help="part A: runs of each row, seeds 0..R-1 (default 1)")
    p.add_argument("--device", default="cpu", help="device for both the product and the plain loop (default cpu)")
    p.add_argument("--out", default="bench-out", help="working folder for data and models (default bench-out)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="set OMP_NUM_THREADS=N for every run (product and plain alike); default: torch's own "
                        "choice (all cores). On a busy machine N=1 is far less disturbed by other work")
    p.add_argument("--save", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--render", metavar="FILE", help="print the table of a saved JSON result and exit (- reads stdin)")
    a = p.parse_args(argv)
    if a.render:
        text = sys.stdin.read() if a.render == "-" else Path(a.render).read_text()
        print(render(json.loads(text)))
        return 0
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
        os.environ["MKL_NUM_THREADS"] = str(a.threads)

    names = a.dataset or (["digits", "faces"] if a.quick else list(bench_data.DATASETS))
    epochs = a.epochs or (1 if a.quick else SCRATCH_EPOCHS)
    parts = a.part or ["A", "B"]
    t_epochs = a.transfer_epochs or (1 if a.quick else None)
    out = Path(a.out)
    data_root = out / "data" / ("quick" if a.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    models = Path(tempfile.mkdtemp(prefix="models-", dir=out))

    result: dict[str, Any] = {"meta": meta(a, a.device), "bars": {
        "scratch": f"product test accuracy >= plain + {ACC_BAR_POINTS} points and images/s >= {SPEED_BAR}x plain",
        "transfer": "product transfer test accuracy > frozen features + logistic regression"},
        "scratch": [], "transfer": [], "skipped": []}
    try:
        for name in names:
            if not bench_data.available(name):
                msg = f"{name}: not available (pip install --no-deps animal-mnist==0.4 for 'animals')"
                log("skipped " + msg)
                result["skipped"].append(msg)
                continue
            ds = bench_data.write_dataset(name, data_root, quick=a.quick)
            if "A" in parts:
                result["scratch"].append(part_scratch(ds, epochs=epochs, repeats=a.repeats, device=a.device,
                                                      models=models))
            if "B" in parts:
                result["transfer"].append(part_transfer(ds, epochs=t_epochs, device=a.device, quick=a.quick))
    finally:
        shutil.rmtree(models, ignore_errors=True)
    result["meta"]["load_end"] = _loadavg()
    if a.save:
        Path(a.save).write_text(json.dumps(result, indent=1))
    if a.json:
        print(json.dumps(result))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
