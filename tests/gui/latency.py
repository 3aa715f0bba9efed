"""Event-loop latency measurement shared by the GUI tests."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QTimer


class StallMeter:
    """Ticks every 10 ms on the GUI thread; a gap between ticks is how long the event loop
    could not run: the longest is the worst freeze."""

    def __init__(self, interval_ms: int = 10):
        self.max_gap = 0.0  # seconds
        self.gaps: list[float] = []  # seconds, one per tick
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        gap = now - self._last
        self.gaps.append(gap)
        self.max_gap = max(self.max_gap, gap)
        self._last = now

    def start(self):
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()
        self._tick()  # the time since the last tick is a gap too

    def percentile_ms(self, q: float) -> float:
        g = sorted(self.gaps) or [0.0]
        return 1000 * g[min(len(g) - 1, int(round(q / 100 * (len(g) - 1))))]

    def summary(self) -> str:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        return (f"longest {1000 * self.max_gap:.0f} ms, 99th percentile {self.percentile_ms(99):.0f} ms, "
                f"95th {self.percentile_ms(95):.0f} ms over {len(self.gaps)} ticks of a 10 ms timer "
                f"({os.cpu_count()} CPUs, load {load:.2f})")
