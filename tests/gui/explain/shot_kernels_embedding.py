"""Take the README screenshots of the kernels playground and the dataset map.

Run under a real X server (not offscreen), e.g.::

    xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.gui.explain.shot_kernels_embedding resources/screenshots

writes ``kernels.png`` (edge detection on skimage's astronaut photo) and
``embedding.png`` (the map of the demo ponies, 30 per class, arranged by the class scores of
a transfer model trained on them for 20 epochs and flattened with t-SNE, the mouse over
the most out-of-place picture). ``--model FILE`` uses a model file instead of training one,
``--imagenet`` the ImageNet network, ``--data DIR`` a class-folder dataset instead of
generating the demo ponies; ``--space`` and ``--projection`` pick the view.

Not a test (no ``test_`` prefix): it shows the real widgets the way a user sees them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def _wait(app: QApplication, seconds: float) -> None:
    """Process events while the pool works. (QTest.qWait keeps Python's lock, so worker
    threads written in Python would not run at all while it waits.)"""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        app.processEvents()
        time.sleep(0.01)


def _dataset(args, tmp: Path) -> Path:
    if args.data:
        return Path(args.data)
    from ponyclassifier.core.demo import generate_demo_dataset

    root = tmp / "ponies"
    generate_demo_dataset(root, per_class=30)
    return root


def _model(args, data: Path):
    from ponyclassifier.core.trained import TrainedModel

    if args.imagenet:
        return TrainedModel.imagenet()
    if args.model:
        return TrainedModel.load(args.model)
    from ponyclassifier.core.engine import TrainConfig, Trainer

    t0 = time.perf_counter()
    result = Trainer(TrainConfig(recipe="transfer", epochs=args.epochs, seed=0)).fit(data)
    print(f"trained a transfer model in {time.perf_counter() - t0:.0f} s, validation accuracy "
          f"{result.history['val_accuracy'][-1]:.2f}")
    return result.model


def shoot_kernels(app: QApplication, out: Path) -> None:
    from skimage import data

    from ponyclassifier.gui.explain.kernels import KernelPlayground

    w = KernelPlayground()
    w.resize(1300, 720)
    w.show()
    w.set_image(data.astronaut())
    w.select_kernel("edge detection 3")
    t0 = time.perf_counter()
    while (w.busy or w.result_image() is None) and time.perf_counter() - t0 < 30:
        app.processEvents()
        time.sleep(0.02)
    _wait(app, 0.3)
    w.grab().save(str(out))
    print(f"saved {out}")
    w.shutdown()
    w.close()


def shoot_embedding(app: QApplication, out: Path, model, data: Path, space: str, projection: str) -> None:
    from ponyclassifier.core.folders import iter_class_files, list_class_folders
    from ponyclassifier.gui.explain.embedding import EmbeddingMapWidget

    paths, labels = [], []
    for c in list_class_folders(data):
        for p in iter_class_files(data / c):
            paths.append(str(p))
            labels.append(c)
    w = EmbeddingMapWidget()
    w.resize(1300, 760)
    w.show()
    w.set_model(model)
    w.set_samples(paths, labels)
    w.set_space(space)
    w.set_projection(projection)
    done: list[int] = []
    w.map_ready.connect(done.append)
    w.map_failed.connect(lambda m: (print(m), done.append(-1)))
    w.compute()
    t0 = time.perf_counter()
    while not done and time.perf_counter() - t0 < 600:
        app.processEvents()
        time.sleep(0.02)
    misfits = w.misfit_paths()
    print(f"map of {done[0] if done else 0} pictures in {time.perf_counter() - t0:.1f} s; {len(misfits)} possible "
          f"misfits, first: {[Path(p).name for p in misfits[:5]]}")
    if misfits:  # hover the most out-of-place picture, as a user would
        i = [p.path for p in w.points()].index(misfits[0])
        QTest.mouseMove(w.plot.viewport(), w.plot.mapFromScene(w.scene_pos_of(i)))
    _wait(app, 2.0)  # thumbnails arrive from the pool
    w.grab().save(str(out))
    print(f"saved {out}")
    w.shutdown()
    w.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="resources/screenshots")
    ap.add_argument("--model")
    ap.add_argument("--imagenet", action="store_true")
    ap.add_argument("--data")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the transfer model trained when no "
                                                             "--model or --imagenet is given")
    ap.add_argument("--only", choices=("kernels", "embedding"))
    ap.add_argument("--space", choices=("features", "scores"), default="scores")
    ap.add_argument("--projection", choices=("pca", "tsne"), default="tsne")
    ap.add_argument("--name", default="embedding.png")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from ponyclassifier.gui.app import configure_application

    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    if args.only in (None, "kernels"):
        shoot_kernels(app, out / "kernels.png")
    if args.only in (None, "embedding"):
        with tempfile.TemporaryDirectory() as tmp:
            data = _dataset(args, Path(tmp))
            shoot_embedding(app, out / args.name, _model(args, data), data, args.space, args.projection)
    QThreadPool.globalInstance().waitForDone(30000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
