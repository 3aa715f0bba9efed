"""Screenshots of per-project state: a flat folder of photos just opened (its pictures shown
at once, with the invitation to sort them), and the Train place right after switching from
a project that had trained to another one (nothing of the last project left on screen).

Run under a real X server (not offscreen), e.g.::

    xvfb-run -s "-screen 0 1920x1080x24" python -m tests.gui.screenshot_projects OUT_DIR [WIDTH HEIGHT]

Not a test (no ``test_`` prefix): it drives the real app window the way a user would.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def _photos(folder: Path) -> None:
    """Real photos from scikit-image and scikit-learn, as a parent's unsorted holiday folder."""
    import numpy as np
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    folder.mkdir(parents=True)
    pics = [getattr(data, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                                          "hubble_deep_field", "retina")]
    pics += [data.stereo_motorcycle()[0], *load_sample_images().images]
    for i, a in enumerate(pics):
        a = np.asarray(a)
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        Image.fromarray(a[..., :3].astype(np.uint8)).save(folder / f"IMG_{1040 + i}.jpg", quality=90)


def main(out_dir: str, width: int = 1280, height: int = 800) -> int:
    from ponyclassifier.core.demo import generate_demo_dataset
    from ponyclassifier.gui.app import ErrorReporter, configure_application
    from ponyclassifier.gui.main_window import PLACES, MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pony-shots-"))
    ponies = tmp / "ponies"
    generate_demo_dataset(ponies, per_class=12, size=96)
    flat = tmp / "holiday-photos"
    _photos(flat)

    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    ErrorReporter(app).install()
    win = MainWindow()
    win.resize(width, height)
    win.show()
    t0 = time.perf_counter()
    steps: list = []

    def after(cond, then, limit=180.0):
        def poll():
            if cond() or time.perf_counter() - t0 > limit:
                QTimer.singleShot(800, then)
            else:
                QTimer.singleShot(200, poll)
        QTimer.singleShot(200, poll)

    def shoot(name: str) -> None:
        path = out / f"{name}-{width}x{height}.png"
        win.grab().save(str(path))
        print(f"saved {path} after {time.perf_counter() - t0:.1f} s")

    def opened() -> bool:
        b = win.browser
        return not b.listing and b.project is not None and not b.busy and win.training.store is not None

    def train_first() -> None:
        win.set_place(PLACES.index("Train"))
        p = win.training
        p.choose_recipe("scratch")
        p.epochs.setValue(3)
        p.start_training()
        after(lambda: p.last_outcome is not None, switch)

    def switch() -> None:
        shoot("train-before-switch")
        win.open_project(str(flat))
        after(opened, show_train_after_switch)

    def show_train_after_switch() -> None:
        win.set_place(PLACES.index("Train"))
        QTimer.singleShot(1500, lambda: (shoot("train-after-switch"), show_flat()))

    def show_flat() -> None:
        win.set_place(0)
        b = win.browser
        after(lambda: all(b.model.has_thumbnail(r) for r in range(min(b.model.rowCount(), 10))),
              lambda: (shoot("flat-folder"), win.close()), limit=240.0)

    win.open_project(str(ponies))
    after(opened, train_first)
    return app.exec()


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], *(int(a) for a in args[1:3])))
