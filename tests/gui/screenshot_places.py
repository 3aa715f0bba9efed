"""Screenshots of the four places on the demo project at one window size, to look at every
place as a user would after a change (nothing elided, clipped or overlapping).

Run under a real X server (not offscreen), e.g.::

    xvfb-run -a -s "-screen 0 1920x1080x24" python -m tests.gui.screenshot_places OUT_DIR 1280 800

Not a test (no ``test_`` prefix): it drives the real app window the way a user would.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def main(out_dir: str, width: int = 1280, height: int = 800) -> int:
    os.environ.setdefault("PONYCLASSIFIER_DATA_DIR", tempfile.mkdtemp(prefix="pony-shots-"))
    os.environ.setdefault("PONYCLASSIFIER_DEMO_PER_CLASS", "12")
    from ponyclassifier.gui.app import ErrorReporter, configure_application
    from ponyclassifier.gui.main_window import PLACES, MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    ErrorReporter(app).install()
    win = MainWindow()
    win.resize(width, height)
    win.show()
    win.start(demo=True)
    steps = list(enumerate(PLACES))
    t0 = time.perf_counter()

    def ready() -> bool:
        return win.session.project is not None and not win.browser.busy

    def shoot() -> None:
        if not ready() and time.perf_counter() - t0 < 180:
            QTimer.singleShot(300, shoot)
            return
        if not steps:
            app.quit()
            return
        i, name = steps.pop(0)
        win.set_place(i)
        if name == "Explain" and win.explain.samples:
            win.explain.set_image_path(win.explain.samples[0][0])

        def grab() -> None:
            busy = getattr(getattr(win, name.lower() if name != "Dataset" else "browser", None), "busy", False)
            if busy and time.perf_counter() - t0 < 240:
                QTimer.singleShot(500, grab)
                return
            win.grab().save(str(out / f"{name.lower()}-{width}x{height}.png"))
            QTimer.singleShot(100, shoot)

        QTimer.singleShot(2500, grab)

    QTimer.singleShot(500, shoot)
    app.exec()
    win._stop_confirmed = True  # noqa: SLF001
    win.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], *(int(a) for a in args[1:3])))
