"""Take the README screenshot of the Dataset place on the demo project.

Run under a real X server (not offscreen), e.g.::

    xvfb-run -s "-screen 0 1400x900x24" python -m tests.gui.screenshot resources/screenshots/dataset-browser.png

Not a test (no ``test_`` prefix): it drives the real app window the way a user would.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def main(out: str, place: int = 0, select_row: int = 7) -> int:
    from ponyclassifier.gui.app import ErrorReporter, configure_application
    from ponyclassifier.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    ErrorReporter(app).install()
    win = MainWindow()
    win.resize(1360, 840)
    win.show()
    win.start(demo=True)
    t0 = time.perf_counter()

    def ready() -> bool:
        b = win.browser
        if b.listing or b.model.rowCount() == 0:
            return False
        first, last = b.view.indexAt(b.view.rect().topLeft()).row(), b.model.rowCount()
        visible = [r for r in range(max(first, 0), min(last, 40))
                   if b.view.visualRect(b.model.index(r)).intersects(b.view.viewport().rect())]
        return bool(visible) and all(b.model.has_thumbnail(r) for r in visible)

    def poll() -> None:
        if ready() or time.perf_counter() - t0 > 60:
            win.set_place(place)
            b = win.browser
            if b.model.rowCount() > select_row:
                b.view.setCurrentIndex(b.model.index(select_row))
            QTimer.singleShot(1500, shoot)
        else:
            QTimer.singleShot(200, poll)

    def shoot() -> None:
        win.grab().save(out)
        print(f"saved {out} after {time.perf_counter() - t0:.1f} s")
        win.close()

    QTimer.singleShot(200, poll)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dataset-browser.png",
                  int(sys.argv[2]) if len(sys.argv) > 2 else 0))
