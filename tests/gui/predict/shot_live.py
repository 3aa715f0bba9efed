"""Take the README screenshots of live prediction and play mode.

Run under a real X server (not offscreen), from the repository root, e.g.::

    xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.gui.predict.shot_live resources/screenshots

Not a test (no ``test_`` prefix). It makes demo ponies, trains a transfer model on them
(EfficientNet-Lite0 base, about a minute on a CPU), writes a video of other demo ponies
(``benchmarks/live_predict.py``'s camera stand-in) and plays it as the camera, then saves:

- ``live.png``: the live view with an answer and the top classes;
- ``live-heatmap.png``: the same with the live Grad-CAM heat map;
- ``play.png``: play mode (full screen) with a big class name;
- ``play-unsure.png``: play mode on a picture the model is not sure about.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def wait_until(app, cond, timeout: float = 60.0) -> bool:
    t_end = time.perf_counter() + timeout
    while time.perf_counter() < t_end:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    return False


def ambiguous_pictures(folder: Path, n: int = 12) -> list[Path]:
    """Scenes without a pony, and two ponies blended: things a pony model should doubt."""
    from PIL import Image, ImageDraw

    from ponyclassifier.core import demo

    out = []
    rng = np.random.default_rng(77)
    for i in range(n):
        if i % 2 == 0:
            im = demo._background(rng, 360)
            d = ImageDraw.Draw(im)
            for _ in range(6):
                demo._clutter_item(d, rng, 360, big=True)
        else:
            a = demo.draw_pony(demo.PONIES[i % 6], rng, 360)
            b = demo.draw_pony(demo.PONIES[(i + 2) % 6], rng, 360)
            im = Image.blend(a, b, 0.5)
        p = folder / f"puzzle-{i:02d}.png"
        im.convert("RGB").save(p)
        out.append(p)
    return out


def main(out_dir: str = "resources/screenshots") -> int:
    from PySide6.QtWidgets import QApplication

    from benchmarks.live_predict import make_pony_video
    from ponyclassifier.core.demo import generate_demo_dataset
    from ponyclassifier.core.engine import TrainConfig, Trainer
    from ponyclassifier.core.predict import Predictor
    from ponyclassifier.core.project import Project
    from ponyclassifier.gui.app import configure_application
    from ponyclassifier.gui.predict.live import LivePredictWidget

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="shot-live-"))
    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    t0 = time.perf_counter()

    data = tmp / "Ponies"
    generate_demo_dataset(data, per_class=30, seed=0)
    result = Trainer(TrainConfig(recipe="transfer", augment=None, device="cpu")).fit(data)
    model = result.model
    print(f"trained in {time.perf_counter() - t0:.0f} s: {result.model.metrics}", flush=True)
    video = make_pony_video(tmp / "ponies.gif", width=480, fps=25, seconds_per_pony=2.5, seed=4242)
    project = Project(data)
    project.sync()

    w = LivePredictWidget()
    w.setWindowTitle("Live – PonyClassifier")
    w.resize(1240, 720)
    w.show()
    w.set_model(model, "Ponies – transfer, run 1")
    w.set_project(project)
    w.use_video_file(video)

    def confident(min_conf: float = 0.8):
        p = w.last_prediction
        return p is not None and not p.unsure and p.confidence >= min_conf and w.stats.frames_predicted > 20

    wait_until(app, confident, 120)
    w.grab().save(str(out / "live.png"))
    print("live.png", w.last_prediction, w.stats, flush=True)

    w.cam_check.setChecked(True)
    start = w.stats.heatmaps
    wait_until(app, lambda: w.stats.heatmaps >= start + 3 and confident(), 120)
    w.grab().save(str(out / "live-heatmap.png"))
    print("live-heatmap.png", w.last_prediction, flush=True)
    w.cam_check.setChecked(False)

    play = w.open_play_mode(fullscreen=True)
    screen = play.screen().geometry()
    if not wait_until(app, lambda: play.size() == screen.size(), 5):
        play.setGeometry(screen)  # Xvfb has no window manager to make it full screen
        wait_until(app, lambda: play.size() == screen.size(), 5)
    wait_until(app, lambda: confident(0.85) and play.label == w.last_prediction.label, 120)
    app.processEvents()
    play.grab().save(str(out / "play.png"))
    print("play.png", play.answer_text, play.meter.text, flush=True)

    # a picture the model doubts, opened the way play mode's "Open picture…" does
    predictor = Predictor(model, device="cpu")
    puzzles = ambiguous_pictures(tmp)
    preds = predictor.predict_paths(puzzles)
    unsure = [p for p in preds if p.unsure and p.error is None]
    pick = max(unsure, key=lambda p: p.confidence) if unsure else min(preds, key=lambda p: p.confidence)
    print("unsure candidates:", [(Path(p.path).name, p.label, round(p.confidence, 2)) for p in preds], flush=True)
    w.predict_file(pick.path)
    wait_until(app, lambda: not w.busy and w.last_prediction is not None and w.last_prediction.unsure, 30)
    app.processEvents()
    play.grab().save(str(out / "play-unsure.png"))
    print("play-unsure.png", play.answer_text, play.phrase.text(), flush=True)

    play.close()
    w.shutdown()
    w.close()
    project.close()
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
