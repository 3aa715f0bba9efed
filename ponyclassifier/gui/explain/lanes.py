"""One copy of a network, one job at a time, newest wins per purpose.

core.explain hooks layers for the length of a call, and a hook on a module fires in every
thread's forward pass through it, so two explanations must never run on one network at the
same moment. A :class:`ModelLane` owns a copy of the network and runs its jobs one after
another on the thread pool. Each job has a purpose (``key``: "predict", "maps", "cam"...);
each purpose is a :class:`~ponyclassifier.gui.workers.Lane`, so a new request for a purpose
replaces the one waiting and cancels the one running, and a replaced or cancelled job never
calls back. The next job starts only once the running one has really ended (a cancelled job
still finishes its step on the worker), so the network is never shared.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from .. import workers

__all__ = ["ModelLane"]


class ModelLane:
    """Jobs ``fn(model, state)`` on one copy of the network, one at a time (GUI thread only)."""

    def __init__(self, model: Any, on_idle: Callable[[], None] | None = None) -> None:
        self.model = model
        self._lanes: dict[str, workers.Lane] = {}
        self._waiting: OrderedDict[str, tuple[Callable, dict]] = OrderedDict()
        self._running: workers.Job | None = None  # on the pool now (perhaps cancelled, still ending)
        self._closed = False
        self._on_idle = on_idle

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._waiting)

    def submit(self, key: str, fn: Callable[[Any, workers.JobState], Any], **callbacks: Callable) -> None:
        """Run ``fn(model, state)`` after the jobs before it; ``callbacks``: on_finished,
        on_failed, on_progress, on_partial (as :meth:`workers.Lane.submit`)."""
        self.cancel(key)
        if not self._closed:
            self._waiting[key] = (fn, callbacks)
            self._start_next()

    def cancel(self, key: str | None = None) -> None:
        """Drop the job for ``key`` (None: every job), waiting or running: it never calls back."""
        for k in [k for k in self._waiting if key is None or k == key]:
            del self._waiting[k]
        for k, lane in self._lanes.items():
            if key is None or k == key:
                lane.cancel()

    def close(self) -> None:
        self._closed = True
        self.cancel()

    def _start_next(self) -> None:
        if self._running is not None or self._closed or not self._waiting:
            return
        key, (fn, callbacks) = self._waiting.popitem(last=False)
        model = self.model

        def run(state: workers.JobState):
            state.check()  # cancelled while it waited on the pool
            return fn(model, state)

        job = self._lanes.setdefault(key, workers.Lane()).submit(run, **callbacks)
        self._running = job
        # Connected after the Lane's own callbacks: the result is handed over first.
        for signal in (job.signals.finished, job.signals.failed, job.signals.cancelled):
            signal.connect(lambda *_, j=job: self._ended(j))

    def _ended(self, job: workers.Job) -> None:
        if self._running is not job:
            return
        self._running = None
        self._start_next()
        if not self.busy and self._on_idle is not None and not self._closed:
            self._on_idle()
