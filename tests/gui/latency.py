"""Event-loop latency measurement shared by the GUI tests."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer


class StallMeter:
    """Ticks every 10 ms on the GUI thread; the longest gap is the worst freeze."""

    def __init__(self):
        self.max_gap = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self._last)
        self._last = now

    def start(self):
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()
