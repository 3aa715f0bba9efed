"""Live prediction: how fast, how far behind, and does the window stay responsive?

A video file of demo ponies (an animated GIF written here, played by QtMultimedia exactly as a
webcam's frames would arrive) is the camera; ``LivePredictWidget`` predicts on its worker
thread while the window keeps painting. Reported:

- camera fps (frames the video sink delivered per second), predictions/s, frames dropped
  (arrived while the model was busy and replaced by a newer one, never queued);
- latency from a frame's arrival on the GUI thread to its answer on screen: mean, p95, max;
- GUI responsiveness: the event loop's longest and 95th-percentile gap between ticks of a
  10 ms timer (``tests/gui/latency.py``'s StallMeter, here also keeping every gap), with the
  video playing and no model (baseline) and with live predictions;
- the model's raw inference rate on the same frames in the same process (decoded with PIL,
  the core's preprocessing and ``Predictor.probabilities``, one frame at a time, no GUI), and
  the ratios ``predictions/s / raw rate`` and ``predictions/s / min(raw rate, camera fps)``:
  how much of what the model alone could do the live pipeline delivers. On a busy shared
  machine the raw rate drifts between measurements, so two figures taken during the live run
  itself are printed too: the share of the run the worker spent in preprocessing + model
  (predictions/s x its mean time; 100% = the model never waited for a frame) and the latency
  beyond that time (frame conversion, hand-over between threads, the wait for the model to
  finish the previous frame, showing the answer).

Usage (from the repository root)::

    python benchmarks/live_predict.py                 # scratch model, 1 epoch on demo ponies, 10 s
    python benchmarks/live_predict.py --imagenet      # the ImageNet EfficientNet-Lite0 (224 px)
    python benchmarks/live_predict.py --cam           # with the live Grad-CAM heat map on
    python benchmarks/live_predict.py --seconds 20 --json

Runs offscreen unless QT_QPA_PLATFORM says otherwise (``QT_QPA_PLATFORM=xcb`` to watch it).
Working files go to ``bench-out/live/`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ the "camera"


def make_pony_video(path: str | os.PathLike, width: int = 320, fps: int = 30, seconds_per_pony: float = 1.5,
                    seed: int = 1000, ponies: tuple[str, ...] | None = None) -> Path:
    """An animated GIF that looks like a camera slowly panning over demo-pony scenes: a new
    pony every ``seconds_per_pony``, every frame different (GIF merges identical frames).

    GIF frame times are whole centiseconds, so 30 fps becomes 33 fps (30 ms). One palette
    for all frames (made from the scenes) keeps writing fast and the colours steady.
    """
    from ponyclassifier.core.demo import PONIES, draw_pony

    ponies = tuple(ponies or PONIES)
    height = width * 3 // 4
    side = int(width * 1.15)
    scenes = [draw_pony(name, np.random.default_rng([seed, i]), side) for i, name in enumerate(ponies)]
    per = max(2, int(round(seconds_per_pony * fps)))
    cw, ch = int(side * 0.86), int(side * 0.86 * 3 / 4)
    frames = []
    for scene in scenes:
        for k in range(per):
            t = k / (per - 1)
            x = int(round((side - cw) * t))
            y = int(round((side - ch) * (0.5 + 0.4 * np.sin(t * np.pi * 2))))
            frames.append(scene.crop((x, y, x + cw, y + ch)).resize((width, height), Image.Resampling.BILINEAR))
    sheet = Image.new("RGB", (side, side * len(scenes)))
    for i, s in enumerate(scenes):
        sheet.paste(s, (0, i * side))
    palette = sheet.quantize(255, method=Image.Quantize.MEDIANCUT)
    q = [f.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    q[0].save(path, save_all=True, append_images=q[1:], duration=max(10, round(1000 / fps, -1)), loop=0,
              optimize=False, disposal=1)
    return path


def video_frames(path: str | os.PathLike) -> list[Image.Image]:
    with Image.open(path) as im:
        return [f.convert("RGB") for f in ImageSequence.Iterator(im)]


# ------------------------------------------------------------------ the models


def scratch_model(out: Path, per_class: int = 12, epochs: int = 1):
    from ponyclassifier.core.demo import generate_demo_dataset
    from ponyclassifier.core.engine import TrainConfig, Trainer

    data = out / "demo-data"
    if not data.is_dir():
        generate_demo_dataset(data, per_class=per_class, seed=0)
    t0 = time.perf_counter()
    result = Trainer(TrainConfig(recipe="scratch", epochs=epochs, device="cpu", augment=None)).fit(data)
    return result.model, f"scratch, {epochs} epoch on {per_class} demo ponies per class", time.perf_counter() - t0


def imagenet_model():
    from ponyclassifier.core.trained import TrainedModel

    t0 = time.perf_counter()
    return TrainedModel.imagenet(), "ImageNet EfficientNet-Lite0", time.perf_counter() - t0


def raw_rate_on_thread(model, frames: list[Image.Image], seconds: float = 3.0) -> dict:
    """:func:`raw_rate` on a thread of its own, as the live worker runs (see the README:
    torch on the main thread can be much slower on a busy 2-core machine)."""
    import threading

    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", raw_rate(model, frames, seconds)))
    t.start()
    t.join()
    return box["r"]


def raw_rate(model, frames: list[Image.Image], seconds: float = 3.0, warmup: int = 3) -> dict:
    """The model alone on the same frames: decode already done, core preprocessing +
    ``Predictor.probabilities``, one frame at a time (as the live worker does)."""
    from ponyclassifier.core.predict import Predictor
    from ponyclassifier.core.preprocess import to_uint8_tensor

    pred = Predictor(model, device="cpu")
    for f in frames[:warmup]:
        pred.probabilities(to_uint8_tensor(f, model.image_size, model.channels)[None])
    times = []
    t_end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < t_end or i < 5:
        f = frames[i % len(frames)]
        t = time.perf_counter()
        pred.probabilities(to_uint8_tensor(f, model.image_size, model.channels)[None])
        times.append(time.perf_counter() - t)
        i += 1
    return {"frames": i, "per_second": i / sum(times), "mean_ms": 1000 * float(np.mean(times)),
            "p95_ms": 1000 * float(np.percentile(times, 95))}


# ------------------------------------------------------------------ the GUI run


def _install_quiet_handler():
    """QtMultimedia's notes about this machine (no VA-API, no GPU) are not results."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    noise = ("No RHI backend", "No HW decoder", "propagateSizeHints", "pipewire")

    def handler(kind, context, message):
        if context.category and context.category.startswith("qt.multimedia"):
            return
        if any(n in message for n in noise) or kind in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg):
            return
        sys.stderr.write(f"Qt: {message}\n")

    qInstallMessageHandler(handler)


def _gap_meter():
    from tests.gui.latency import StallMeter

    class GapMeter(StallMeter):
        """The tests' StallMeter (which keeps every gap), summarised as figures for the report."""

        def summary(self) -> dict:
            g = np.array(self.gaps or [0.0]) * 1000
            return {"ticks": len(self.gaps), "max_ms": float(g.max()), "p95_ms": float(np.percentile(g, 95)),
                    "over_100ms": int((g > 100).sum())}

    return GapMeter()


class GcTimer:
    """Times Python's garbage collections (they hold the GIL, so a long one freezes the GUI
    thread whichever thread triggered it)."""

    def __init__(self):
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._t0) * 1000))

    def __enter__(self):
        import gc

        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        import gc

        gc.callbacks.remove(self)

    def summary(self) -> dict:
        full = [ms for g, ms in self.pauses if g == 2]
        return {"collections": len(self.pauses), "max_ms": max((ms for _, ms in self.pauses), default=0.0),
                "full_collections": len(full), "full_max_ms": max(full, default=0.0)}


def _run_for(app, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _wait(app, cond, timeout: float) -> bool:
    t_end = time.perf_counter() + timeout
    while time.perf_counter() < t_end:
        if cond():
            return True
        app.processEvents()
        time.sleep(0.01)
    return cond()


def gui_run(model, description: str, video: Path, seconds: float, cam: bool, baseline_seconds: float) -> dict:
    from PySide6.QtWidgets import QApplication

    from ponyclassifier.gui.predict.live import LivePredictWidget

    app = QApplication.instance() or QApplication([])
    _install_quiet_handler()
    w = LivePredictWidget()
    w.resize(1100, 700)
    w.show()
    try:
        w.use_video_file(video)
        if not _wait(app, lambda: w.stats.frames_seen > 5, 30):
            raise SystemExit("QtMultimedia did not play the video on this machine")

        def video_alone() -> dict:
            w.reset_stats()
            meter = _gap_meter()
            meter.start()
            _run_for(app, baseline_seconds / 2)
            meter.stop()
            return {"camera_fps": w.stats.camera_fps, "stall": meter.summary()}

        # baseline: the video playing, no model; half before and half after the live run,
        # since on a shared machine the load drifts
        before = video_alone()

        # live predictions
        w.set_model(model, description)
        w.cam_check.setChecked(cam)
        _wait(app, lambda: w.stats.frames_predicted >= 2, 60)  # thread started, first answers (warm-up)
        w.reset_stats()
        meter = _gap_meter()
        meter.start()
        with GcTimer() as gct:
            _run_for(app, seconds)
        meter.stop()
        st = w.stats
        live = {**st.as_dict(), "stall": meter.summary(), "gc": gct.summary(),
                "dropped_fraction": st.frames_dropped / st.frames_seen if st.frames_seen else 0.0}

        w.set_model(None, "")
        after = video_alone()
        baseline = {"camera_fps": (before["camera_fps"] + after["camera_fps"]) / 2,
                    "stall": {k: max(before["stall"][k], after["stall"][k]) for k in before["stall"]},
                    "before": before, "after": after}
    finally:
        w.shutdown()
        w.close()
    return {"baseline": baseline, "live": live}


# ------------------------------------------------------------------ report


def render(r: dict) -> str:
    lv, bl, raw = r["live"], r["baseline"], r["raw"]
    lines = [
        f"model: {r['model']} ({r['image_size']} px, {r['classes']} classes); video {r['video']['size']} "
        f"at {r['video']['nominal_fps']} fps; {r['seconds']:.0f} s live{' with Grad-CAM' if r['cam'] else ''}",
        f"torch threads {r['threads']}, load average {r['load']}",
        "",
        f"camera fps                {lv['camera_fps']:7.1f}   (video alone, no model: {bl['camera_fps']:.1f})",
        f"predictions/s             {lv['predictions_per_second']:7.1f}",
        f"frames seen / predicted   {lv['frames_seen']:7d} / {lv['frames_predicted']}",
        f"frames dropped            {lv['frames_dropped']:7d}   ({100 * lv['dropped_fraction']:.0f}% of frames)",
        f"latency mean / p95 / max  {lv['mean_latency_ms']:7.1f} / {lv['p95_latency_ms']:.1f} / "
        f"{lv['max_latency_ms']:.1f} ms   (preprocessing + model on the worker: {lv['mean_inference_ms']:.1f} ms)",
    ]
    if r["cam"]:
        lines.append(f"heat maps                 {lv['heatmaps']:7d}")
    lines += [
        f"GUI stall max / p95       {lv['stall']['max_ms']:7.1f} / {lv['stall']['p95_ms']:.1f} ms   "
        f"(video alone, worst of before/after: {bl['stall']['max_ms']:.1f} / {bl['stall']['p95_ms']:.1f} ms; "
        f"gaps over 100 ms: {lv['stall']['over_100ms']} vs {bl['stall']['over_100ms']})",
        f"Python GC during it         {lv['gc']['collections']:5d} collections, longest {lv['gc']['max_ms']:.1f} ms "
        f"({lv['gc']['full_collections']} full, longest {lv['gc']['full_max_ms']:.1f} ms)",
        "",
        f"raw inference, same frames, same process, own thread: {raw['per_second']:.1f} frames/s "
        f"({raw['mean_ms']:.1f} ms mean, {raw['p95_ms']:.1f} ms p95; before the live run "
        f"{raw['before_per_second']:.1f}, after {raw['after_per_second']:.1f})",
        f"  (the same on the main thread: {r['raw_main_thread']['per_second']:.1f} frames/s, "
        f"{r['raw_main_thread']['mean_ms']:.1f} ms mean)",
        f"ratio predictions/s / raw rate:                    x{r['ratios']['live_vs_raw']:.2f}",
        f"ratio predictions/s / min(raw rate, camera fps):   x{r['ratios']['live_vs_ceiling']:.2f}",
        f"share of the live run the worker spent in preprocessing + model: {100 * r['ratios']['worker_model_share']:.0f}%"
        f"; latency beyond it: {r['ratios']['overhead_ms']:.1f} ms per answer",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of live prediction measured (10)")
    ap.add_argument("--baseline-seconds", type=float, default=4.0, help="seconds of video without a model, half before and half after the live run (4)")
    ap.add_argument("--imagenet", action="store_true", help="the ImageNet EfficientNet-Lite0 instead of scratch")
    ap.add_argument("--cam", action="store_true", help="live Grad-CAM heat map on")
    ap.add_argument("--width", type=int, default=320, help="video width in px, 4:3 (320)")
    ap.add_argument("--fps", type=int, default=30, help="video frame rate (30)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=str(ROOT / "bench-out" / "live"))
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = sys.stderr

    video = out / f"ponies-{args.width}-{args.fps}.gif"
    if not video.exists():
        print(f"writing {video} …", file=log)
        make_pony_video(video, width=args.width, fps=args.fps)
    frames = video_frames(video)
    if args.imagenet:
        model, description, prep_s = imagenet_model()
    else:
        print("training the scratch model (1 epoch on demo ponies) …", file=log)
        model, description, prep_s = scratch_model(out)
    model.network.to("cpu").eval()
    print(f"raw inference on {len(frames)} frames …", file=log)
    raw = raw_rate_on_thread(model, frames)
    raw_main = raw_rate(model, frames, seconds=2.0)
    print(f"live: {args.seconds:.0f} s with the model, between {args.baseline_seconds:.0f} s of video alone …",
          file=log)
    gui = gui_run(model, description, video, args.seconds, args.cam, args.baseline_seconds)
    # measured again after the live run: on a shared machine the load drifts, and the mean of
    # a measurement before and one after is the fairer baseline for the run between them
    after = raw_rate_on_thread(model, frames)
    raw = {"frames": raw["frames"] + after["frames"],
           "per_second": (raw["per_second"] + after["per_second"]) / 2,
           "mean_ms": (raw["mean_ms"] + after["mean_ms"]) / 2, "p95_ms": max(raw["p95_ms"], after["p95_ms"]),
           "before_per_second": raw["per_second"], "after_per_second": after["per_second"]}
    lv = gui["live"]
    ceiling = min(raw["per_second"], lv["camera_fps"]) if lv["camera_fps"] else raw["per_second"]
    result = {
        "model": description, "image_size": model.image_size, "classes": len(model.classes),
        "model_seconds": prep_s, "cam": args.cam, "seconds": args.seconds, "threads": torch.get_num_threads(),
        "load": " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "video": {"path": str(video), "size": f"{frames[0].width}x{frames[0].height}", "frames": len(frames),
                  "nominal_fps": round(1000 / max(10, round(1000 / args.fps, -1)), 1)},
        "raw": raw, "raw_main_thread": raw_main, **gui,
        "ratios": {"live_vs_raw": lv["predictions_per_second"] / raw["per_second"],
                   "live_vs_ceiling": lv["predictions_per_second"] / ceiling if ceiling else 0.0,
                   # measured during the live run itself, so immune to the load drifting between runs
                   "worker_model_share": lv["predictions_per_second"] * lv["mean_inference_ms"] / 1000,
                   "overhead_ms": lv["mean_latency_ms"] - lv["mean_inference_ms"]},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
