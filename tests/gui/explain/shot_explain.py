"""Take the README screenshots of the Explain place.

Run under a real X server (not offscreen), e.g.::

    xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.gui.explain.shot_explain resources/screenshots

It makes the demo ponies and trains a transfer model on them through the CLI, exactly as
a user would (``python -m ponyclassifier demo-data DIR --per-class 30`` and ``python -m
ponyclassifier train DIR --out m.pony --recipe transfer --epochs 5``; reused when
``--work`` points at a folder that has them), then shows the page and saves:

- explain-saliency.png: gradients, Grad-CAM and occlusion side by side on a demo pony;
- explain-filters.png: the first layer's colour filters and a depthwise layer's kernels;
- explain-maps.png: the response maps of a layer for that pony, one shown large;
- explain-patterns.png: what some filters of the ImageNet network look for;
- explain-imagenet.png: the ImageNet model's saliency on skimage's cat photo.

Not a test (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(work: Path) -> tuple[Path, Path, Path]:
    """(demo folder, transfer model, cat photo) in ``work``, made when missing."""
    work.mkdir(parents=True, exist_ok=True)
    demo, model, cat = work / "demo", work / "m.pony", work / "chelsea.png"
    if not demo.is_dir():
        subprocess.run([sys.executable, "-m", "ponyclassifier", "demo-data", str(demo), "--per-class", "30"],
                       check=True)
    if not model.exists():
        subprocess.run([sys.executable, "-m", "ponyclassifier", "train", str(demo), "--out", str(model),
                        "--recipe", "transfer", "--epochs", "5"], check=True)
    if not cat.exists():
        from PIL import Image
        from skimage import data

        Image.fromarray(data.chelsea()).save(cat)
    return demo, model, cat


def samples_of(root: Path) -> list[tuple[str, str]]:
    from ponyclassifier.core.folders import iter_class_files, list_class_folders

    return [(str(p), c) for c in list_class_folders(root) for p in iter_class_files(root / c)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder for the PNG files")
    ap.add_argument("--work", help="folder for the demo data and model (kept for the next run)")
    ap.add_argument("--pony", default="Fluttershy", help="class of the pony to explain")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.gettempdir()) / "ponyclassifier-explain-shots"
    demo, model_path, cat = prepare(work)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ponyclassifier.gui.app import ErrorReporter, configure_application
    from ponyclassifier.gui.explain.page import ExplainPage

    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    ErrorReporter(app).install()
    page = ExplainPage()
    page.setWindowTitle("PonyClassifier · Explain")
    page.resize(1400, 880)
    page.show()
    samples = samples_of(demo)
    page.set_model_path(model_path)
    page.set_project(str(demo), samples)
    t0 = time.perf_counter()

    def current(view: str) -> bool:
        return page._done.get(view) is not None and page._done.get(view) == page._ctx(view)

    def saliency_ready() -> bool:
        return (all(current(v) for v in ("gradients", "cam", "occlusion")) and len(page.overlays) == 3
                and not page._overlay_lane.busy)

    def pick_pony() -> None:
        # Of the first dozen pictures of the class, the one the model is surest about (and
        # right), so the maps explain a correct answer.
        page.class_combo.setCurrentIndex(page.class_combo.findData(args.pony))
        pony = [p for p, c in samples if c == args.pony][:12]
        state["candidates"], state["tried"], state["best"] = pony[1:], [], None
        page.set_image_path(pony[0])

    def pony_predicted() -> bool:
        if page.predicted is None or page._pred_ctx != (page._model_key, page._image_key):
            return False
        if state["best"] is not None:
            return page.image_path == state["best"]
        k = page.model.classes.index(args.pony)
        score = float(page.probabilities[k]) if page.predicted == k else -1.0
        state["tried"].append((score, page.image_path))
        if state["candidates"]:
            page.set_image_path(state["candidates"].pop(0))
            return False
        state["best"] = max(state["tried"])[1]
        page.set_image_path(state["best"])
        return False

    def layer_named(kind: str, n: int = 0) -> int:
        return [i for i, info in enumerate(page.layers) if info.kind == kind][n]

    steps = [
        ("model", lambda: None, lambda: page.model is not None and page.image is not None),
        ("pony", pick_pony, pony_predicted),
        ("explain-saliency.png", lambda: page.tabs.setCurrentIndex(page.TAB_SALIENCY), saliency_ready),
        ("explain-filters.png", lambda: (page.tabs.setCurrentIndex(page.TAB_FILTERS),
                                         page.select_layer(layer_named("depthwise", 1))),
         lambda: current("first_filters") and current("layer_filters")),
        ("explain-maps.png", lambda: (page.select_layer(layer_named("depthwise", 1)),
                                      page.tabs.setCurrentIndex(page.TAB_MAPS)),
         lambda: current("maps") and not page._map_detail_lane.busy),
        ("imagenet", lambda: (page.set_project(None, None), page.set_model_path(None), page.set_image_path(cat)),
         lambda: page.model is not None and page.model.recipe == "imagenet" and page.image_path == str(cat)
         and page.predicted is not None and page._pred_ctx == (page._model_key, page._image_key)),
        ("explain-imagenet.png", lambda: page.tabs.setCurrentIndex(page.TAB_SALIENCY), saliency_ready),
        ("explain-patterns.png", lambda: (page.tabs.setCurrentIndex(page.TAB_MAXIMIZE),
                                          page.select_layer(layer_named("expand", 5)),
                                          page.max_channels.setText("0-9"), page.max_steps.setValue(96),
                                          page.max_size.setValue(112), page.start_maximize()),
         lambda: not page.maximizing),
    ]
    state = {"i": 0, "started": False}

    def poll() -> None:
        name, start, ready = steps[state["i"]]
        if not state["started"]:
            state["started"] = True
            start()
        elif ready():
            if name.endswith(".png"):
                QTimer.singleShot(600, lambda: shoot(name))
                return
            advance()
            return
        if time.perf_counter() - t0 > 900:
            print(f"gave up waiting at {name}", file=sys.stderr)
            finish(1)
            return
        QTimer.singleShot(150, poll)

    def shoot(name: str) -> None:
        page.grab().save(str(out / name))
        print(f"saved {out / name} after {time.perf_counter() - t0:.1f} s")
        advance()

    def advance() -> None:
        state["i"] += 1
        state["started"] = False
        if state["i"] == len(steps):
            finish(0)
        else:
            QTimer.singleShot(50, poll)

    def finish(code: int) -> None:
        page.shutdown()
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30000)
        app.exit(code)

    QTimer.singleShot(100, poll)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
