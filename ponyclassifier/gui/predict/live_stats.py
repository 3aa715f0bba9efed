"""The live view's counters, without Qt: frames seen, answered and dropped, latency, rates.

A :class:`LiveCounter` is made at each start (or model change, or reset); a job counts
only into the counter it was sent with (compared by identity), so answers to frames from
before a reset never count after it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

RATE_WINDOW = 2.0  # s: the frame rates shown are over the last this many seconds


@dataclass(frozen=True)
class LiveStats:
    """Counters since the last start (or model change).

    ``frames_seen``: frames that arrived from the source; ``frames_predicted``: frames the
    model answered; ``frames_dropped``: frames that arrived while the model was busy and were
    replaced by a newer one before their turn (never queued). Latency is from a frame's
    arrival on the GUI thread to its answer being shown; rates are over the whole time.
    """

    frames_seen: int = 0
    frames_predicted: int = 0
    frames_dropped: int = 0
    mean_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    max_latency_ms: float = 0.0
    predictions_per_second: float = 0.0
    camera_fps: float = 0.0
    mean_inference_ms: float = 0.0
    heatmaps: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class LiveCounter:
    """What happened since it was made; :attr:`stats` sums it up."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.frames_seen = self.predicted = self.dropped = self.heatmaps = 0
        self.lat_sum = self.inf_sum = 0.0
        self.lat_recent: deque[float] = deque(maxlen=2000)
        self.first_frame = self.last_frame = self.first_submit = self.last_result = 0.0
        self.frame_times: deque[float] = deque()
        self.result_times: deque[float] = deque()
        self.recent_latency: deque[tuple[float, float]] = deque()

    def frame(self, now: float) -> None:
        if self.frames_seen == 0:
            self.first_frame = now
        self.frames_seen += 1
        self.last_frame = now
        self.frame_times.append(now)

    def submitted(self, now: float) -> None:
        if self.first_submit == 0.0:
            self.first_submit = now

    def answered(self, now: float, latency_ms: float, infer_ms: float) -> None:
        self.predicted += 1
        self.lat_sum += latency_ms
        self.lat_recent.append(latency_ms)
        self.inf_sum += infer_ms
        self.last_result = now
        self.result_times.append(now)
        self.recent_latency.append((now, latency_ms))

    @property
    def stats(self) -> LiveStats:
        lat = sorted(self.lat_recent)
        n = self.predicted
        span_frames = self.last_frame - self.first_frame if self.frames_seen > 1 else 0.0
        span_pred = self.last_result - self.first_submit if n else 0.0
        return LiveStats(
            frames_seen=self.frames_seen, frames_predicted=n, frames_dropped=self.dropped,
            mean_latency_ms=self.lat_sum / n if n else 0.0,
            p95_latency_ms=float(np.percentile(lat, 95)) if lat else 0.0,
            max_latency_ms=lat[-1] if lat else 0.0,
            predictions_per_second=n / span_pred if span_pred > 0 else 0.0,
            camera_fps=(self.frames_seen - 1) / span_frames if span_frames > 0 else 0.0,
            mean_inference_ms=self.inf_sum / n if n else 0.0,
            heatmaps=self.heatmaps, seconds=time.perf_counter() - self.t0)

    def rates_text(self, running: bool, with_model: bool) -> str:
        """The line under the picture: recent camera and answer rates, or a summary when stopped."""
        now = time.perf_counter()
        for dq in (self.frame_times, self.result_times, self.recent_latency):
            while dq and now - (dq[0][0] if isinstance(dq[0], tuple) else dq[0]) > RATE_WINDOW:
                dq.popleft()
        if not running:
            st = self.stats
            if st.frames_seen:
                return (f"Stopped · {st.frames_predicted} answers for {st.frames_seen} frames, "
                        f"on average {st.mean_latency_ms:.0f} ms from picture to answer")
            return ""
        span = RATE_WINDOW if now - self.t0 > RATE_WINDOW else max(now - self.t0, 1e-3)
        parts = [f"Camera {len(self.frame_times) / span:.0f} frames/s"]
        if with_model:
            parts.append(f"{len(self.result_times) / span:.1f} answers/s")
            if self.recent_latency:
                lat = sum(v for _, v in self.recent_latency) / len(self.recent_latency)
                parts.append(f"{lat:.0f} ms from picture to answer")
            if self.dropped:
                parts.append(f"{self.dropped} frames skipped while the model was busy")
        return " · ".join(parts)
