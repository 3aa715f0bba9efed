"""The one place where the GUI starts threads. Every piece of work that leaves the GUI
thread goes through one of these; ``tests/gui/test_architecture.py`` fails if a
``QThread``, ``QRunnable``, ``QThreadPool`` or ``threading.Thread`` appears anywhere else.

* :func:`run_job` -- a short job on the shared pool: "function in, result on the GUI
  thread out" (Anki/Orange3 style). The function gets a :class:`JobState` to report
  progress, hand over partial results and check for cancellation. Listing a project,
  opening its store, every labelling action, exports.
* :class:`Lane` -- newest wins: submitting a job cancels the one before, and a job that
  was cancelled or replaced never calls back (no staleness counters in the views).
* :class:`DedicatedWorker` -- one thread of its own that runs jobs one after another,
  for long or streaming work that must not wait behind the pool: training, live camera
  inference. ``submit(..., replace_pending=True)`` keeps only the newest waiting job (the
  live view's frame-dropping rule).
* :class:`ThumbnailService` / :class:`ThumbnailLoader` -- the one thumbnail service: small
  decode jobs for every grid and preview, newest request first, with one disk cache that
  holds every size (the key has the path, mtime, byte size and size asked for).

Worker bodies are plain functions of the core (Qt-free, testable without Qt); only the
wrapping here knows about Qt. Signals that cross threads carry plain values and QImage
only. Every image is decoded by the core's one safe decoder,
:func:`ponyclassifier.core.images.decode_image`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import traceback
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from ..core.images import ImageError, decode_image

__all__ = ["Cancelled", "DedicatedWorker", "Job", "JobState", "Lane", "ThumbnailLoader", "ThumbnailService",
           "array_to_qimage", "configure_pool", "pil_to_qimage", "qimage_to_array", "run_job", "thumbnail_service",
           "wait_for_pool"]


class Cancelled(Exception):
    """Raised inside a job function (e.g. from a progress callback) to stop it early."""


class JobState:
    """What a running job may touch: progress, partial results, the cancel flag.

    Methods are called on the worker thread; they only emit signals.
    """

    def __init__(self, signals: "_JobSignals") -> None:
        self._signals = signals
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, done: int, total: int) -> None:
        self.check()
        self._signals._raw_progressed.emit(int(done), int(total))

    def report(self, done: int, total: int) -> None:
        """Progress without the cancel check, for work that must end its own way when asked
        to stop (an import stops between files and still commits what it copied)."""
        self._signals._raw_progressed.emit(int(done), int(total))

    def partial(self, value: Any) -> None:
        """Hand a chunk of the result to the GUI thread (plain Python values only)."""
        self.check()
        self._signals._raw_partial_ready.emit(value)


class _JobSignals(QObject):
    """Lives on the GUI thread. The worker emits the ``_raw`` signals; each is relayed by
    a queued connection to its public twin, so the public ones (and every callback
    connected to them, plain functions included) always fire on the GUI thread."""

    progressed = Signal(int, int)
    partial_ready = Signal(object)
    finished = Signal(object)  # the function's return value
    failed = Signal(str, str)  # message, formatted traceback
    cancelled = Signal()
    _raw_progressed = Signal(int, int)
    _raw_partial_ready = Signal(object)
    _raw_finished = Signal(object)
    _raw_failed = Signal(str, str)
    _raw_cancelled = Signal()

    def __init__(self) -> None:
        super().__init__()
        for name in ("progressed", "partial_ready", "finished", "failed", "cancelled"):
            getattr(self, "_raw_" + name).connect(getattr(self, name), Qt.ConnectionType.QueuedConnection)


# Jobs whose signals have not been delivered yet. Holding them here keeps the
# signals QObject alive until the GUI thread has seen the final signal.
_live_jobs: set["Job"] = set()


class Job(QRunnable):
    """A function run on the global pool; results come back as signals on the GUI thread."""

    def __init__(self, fn: Callable[[JobState], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self._fn = fn
        self.signals = _JobSignals()
        self.state = JobState(self.signals)
        for sig in (self.signals.finished, self.signals.failed, self.signals.cancelled):
            sig.connect(self._release)

    def cancel(self) -> None:
        self.state.cancel()

    @property
    def cancelled(self) -> bool:
        return self.state.cancelled

    def run(self) -> None:  # worker thread
        try:
            self._run()
        except RuntimeError:  # the app quit while this ran: its signals are gone, nobody listens
            pass

    def _run(self) -> None:
        try:
            result = self._fn(self.state)
        except Cancelled:
            self.signals._raw_cancelled.emit()
        except Exception as e:  # reported to the GUI, never lost on a worker thread
            self.signals._raw_failed.emit(str(e) or type(e).__name__, traceback.format_exc())
        else:
            if self.state.cancelled:
                self.signals._raw_cancelled.emit()
            else:
                self.signals._raw_finished.emit(result)

    def _release(self, *args) -> None:
        _live_jobs.discard(self)


GIL_SWITCH_INTERVAL = 0.0005  # seconds: the interpreter-lock hand-over while a stream of work runs
_gil_users: set = set()
_saved_switch_interval: float | None = None


def begin_short_gil_switch(owner) -> None:
    """While a worker streams Python-heavy work (a training run, live frames), the GUI
    thread, which re-takes the interpreter lock on every Qt call it makes while painting,
    should wait at most :data:`GIL_SWITCH_INTERVAL` each time, not CPython's 5 ms. Put
    back by :func:`end_short_gil_switch` once the last ``owner`` ends."""
    global _saved_switch_interval
    if not _gil_users:
        _saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(GIL_SWITCH_INTERVAL, _saved_switch_interval))
    _gil_users.add(owner)


def end_short_gil_switch(owner) -> None:
    _gil_users.discard(owner)
    if not _gil_users and _saved_switch_interval is not None:
        sys.setswitchinterval(_saved_switch_interval)


def _connect(job: "Job", on_finished, on_failed, on_progress, on_partial, on_cancelled, guard: bool) -> None:
    """Connect the callbacks; with ``guard`` a job cancelled on the GUI thread never calls
    back again, even with a result already on its way (the newest-wins rule)."""
    for signal, slot in ((job.signals.finished, on_finished), (job.signals.failed, on_failed),
                         (job.signals.progressed, on_progress), (job.signals.partial_ready, on_partial),
                         (job.signals.cancelled, on_cancelled)):
        if slot is None:
            continue
        if guard:
            signal.connect(lambda *a, _slot=slot: None if job.cancelled else _slot(*a))
        else:
            signal.connect(slot)


def run_job(
    fn: Callable[[JobState], Any],
    *,
    on_finished: Callable[[Any], None] | None = None,
    on_failed: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[Any], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    pool: QThreadPool | None = None,
) -> Job:
    """Run ``fn(state)`` on the shared thread pool; callbacks run on the GUI thread."""
    job = Job(fn)
    _connect(job, on_finished, on_failed, on_progress, on_partial, on_cancelled, guard=False)
    _live_jobs.add(job)
    (pool or QThreadPool.globalInstance()).start(job)
    return job


def configure_pool() -> None:
    """Long jobs (occlusion maps, filter patterns, a folder of predictions) must not leave
    quick ones (thumbnails, previews) waiting on a 2-core machine: at least 4 workers."""
    QThreadPool.globalInstance().setMaxThreadCount(max(4, QThread.idealThreadCount()))


def wait_for_pool(msecs: int = 10000) -> bool:
    """Let jobs still running (e.g. a project store still opening) end while Qt objects exist."""
    return QThreadPool.globalInstance().waitForDone(msecs)


class Lane:
    """Newest wins: one job at a time for one purpose (the picture shown, the map asked for).

    :meth:`submit` cancels the job before it; a cancelled or replaced job never calls back,
    whatever it was doing when it was replaced, so views keep no staleness counters. The job
    function should still call ``state.check()`` now and then so that it stops early."""

    def __init__(self) -> None:
        self.job: Job | None = None

    def submit(self, fn: Callable[[JobState], Any], *, on_finished=None, on_failed=None, on_progress=None,
               on_partial=None, pool: QThreadPool | None = None) -> Job:
        self.cancel()
        job = Job(fn)
        # the lane is free before the job's own callbacks run (they may submit the next job)
        job.signals.finished.connect(lambda *_: self._done(job))
        job.signals.failed.connect(lambda *_: self._done(job))
        job.signals.cancelled.connect(lambda *_: self._done(job))
        _connect(job, on_finished, on_failed, on_progress, on_partial, None, guard=True)
        self.job = job
        _live_jobs.add(job)
        (pool or QThreadPool.globalInstance()).start(job)
        return job

    def cancel(self) -> None:
        """Cancel the job in flight, if any: it will not call back."""
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def _done(self, job: Job) -> None:
        if self.job is job:
            self.job = None

    @property
    def busy(self) -> bool:
        return self.job is not None


class DedicatedWorker(QObject):
    """A thread of its own (a one-thread pool that never expires) running jobs in order.

    Training and live camera inference use it: they must not queue behind thumbnails and
    explanation jobs on the shared pool, and the thread keeps its state (torch's per-thread
    settings) from job to job. ``submit(..., replace_pending=True)`` keeps at most one job
    waiting: a newer one cancels the waiting one, which never calls back (a camera frame
    that arrived while the last one was still being read is dropped, not queued).
    :meth:`shutdown` cancels what waits, asks the running job to stop and joins the thread."""

    def __init__(self, name: str = "worker", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(1)
        self._pool.setExpiryTimeout(-1)
        self.running: Job | None = None
        self._waiting: list[Job] = []
        self._closed = False

    def submit(self, fn: Callable[[JobState], Any], *, on_finished=None, on_failed=None, on_progress=None,
               on_partial=None, on_cancelled=None, replace_pending: bool = False) -> Job | None:
        if self._closed:
            return None
        job = Job(fn)
        _connect(job, on_finished, on_failed, on_progress, on_partial, on_cancelled, guard=replace_pending)
        for sig in (job.signals.finished, job.signals.failed, job.signals.cancelled):
            sig.connect(lambda *_, j=job: self._done(j))
        _live_jobs.add(job)
        if replace_pending:
            self.cancel_pending()
        if self.running is None:
            self._start(job)
        else:
            self._waiting.append(job)
        return job

    @property
    def pending(self) -> Job | None:
        return self._waiting[0] if self._waiting else None

    def _start(self, job: Job) -> None:
        self.running = job
        self._pool.start(job)

    def _done(self, job: Job) -> None:
        if job is not self.running:
            return
        self.running = None
        if self._waiting and not self._closed:
            self._start(self._waiting.pop(0))

    @property
    def busy(self) -> bool:
        return self.running is not None or bool(self._waiting)

    def cancel_pending(self) -> None:
        """Drop the jobs that have not started; they never call back."""
        for job in self._waiting:
            job.cancel()
            _live_jobs.discard(job)
        self._waiting.clear()

    def shutdown(self, msecs: int = 30000) -> bool:
        """Cancel waiting jobs, ask the running one to stop, and join the thread. True if it
        ended within ``msecs``."""
        self._closed = True
        self.cancel_pending()
        if self.running is not None:
            self.running.cancel()
        return self._pool.waitForDone(msecs)

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)


# --------------------------------------------------------------------------
# thumbnails and previews
# --------------------------------------------------------------------------


def pil_to_qimage(im) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels (safe to send across threads)."""
    im = im.convert("RGB") if im.mode != "RGB" else im
    data = im.tobytes()
    qimg = QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888)
    return qimg.copy()  # detach from ``data``, which dies with this frame


_ARRAY_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888,
                  4: QImage.Format.Format_RGBA8888}


def array_to_qimage(a) -> QImage:
    """A uint8 array (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA as a QImage that owns its
    pixels (a copy: safe to send across threads and to keep after ``a`` changes)."""
    a = np.ascontiguousarray(a)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, not {a.dtype}")
    channels = 1 if a.ndim == 2 else a.shape[2] if a.ndim == 3 else 0
    if channels not in _ARRAY_FORMATS:
        raise ValueError(f"expected an image (H, W), (H, W, 3) or (H, W, 4), not {a.shape}")
    h, w = a.shape[:2]
    return QImage(a.data, w, h, a.strides[0], _ARRAY_FORMATS[channels]).copy()


def qimage_to_array(img: QImage, keep_gray: bool = True) -> np.ndarray:
    """A QImage's pixels as a uint8 array that owns its memory: (H, W) for a Grayscale8 image
    when ``keep_gray``, else (H, W, 3) RGB (any other format is converted; alpha is dropped)."""
    gray = keep_gray and img.format() == QImage.Format.Format_Grayscale8
    if not gray and img.format() != QImage.Format.Format_RGB888:
        img = img.convertToFormat(QImage.Format.Format_RGB888)
    c = 1 if gray else 3
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    out = buf[:, : w * c].reshape(h, w, c).copy()
    return out[..., 0] if gray else out


def thumbnail_cache_key(path: str, size: int) -> str | None:
    """Key of a file's cached thumbnail: path, mtime and byte size, so edits invalidate it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    raw = f"{os.path.abspath(path)}\0{st.st_mtime_ns}\0{st.st_size}\0{size}".encode("utf-8", "surrogateescape")
    return hashlib.sha1(raw).hexdigest()


def _decode_thumbnail(path: str, size: int, cache_dir: str | None) -> QImage:
    """Worker thread: the thumbnail of ``path`` from the disk cache or by decoding it."""
    key = thumbnail_cache_key(path, size) if cache_dir else None
    cached = os.path.join(cache_dir, key[:2], key + ".jpg") if key else None
    if cached and os.path.exists(cached):
        try:
            return pil_to_qimage(decode_image(cached).image)
        except ImageError:
            pass  # a damaged cache file is just a miss; it is rewritten below
    im = decode_image(path, draft_size=(size, size)).image
    im.thumbnail((size, size))
    if cached:
        try:
            folder = os.path.dirname(cached)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                im.save(fh, format="JPEG", quality=88)
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only or full disk only costs us the cache
    return pil_to_qimage(im)


def _decode_preview(path: str, size: int) -> tuple[QImage, dict]:
    dec = decode_image(path, draft_size=(size, size))
    im = dec.image
    im.thumbnail((size, size))
    info = {"width": dec.original_size[0], "height": dec.original_size[1], "format": dec.format,
            "mode": dec.source_mode}
    return pil_to_qimage(im), info


class _DecodeSignals(QObject):
    done = Signal(str, str, QImage, object)  # kind, path, image, info dict
    failed = Signal(str, str, str)  # kind, path, reason


class _DecodeJob(QRunnable):
    def __init__(self, signals: _DecodeSignals, kind: str, path: str, size: int, cache_dir: str | None):
        super().__init__()
        self._signals, self._kind, self._path, self._size, self._cache = signals, kind, path, size, cache_dir

    def run(self) -> None:  # worker thread
        try:
            if self._kind == "thumb":
                img, info = _decode_thumbnail(self._path, self._size, self._cache), {}
            else:
                img, info = _decode_preview(self._path, self._size)
        except ImageError as e:
            self._signals.failed.emit(self._kind, self._path, e.reason)
        except Exception as e:  # never let a bad file kill a pool thread silently
            self._signals.failed.emit(self._kind, self._path, f"could not read: {e}")
        else:
            self._signals.done.emit(self._kind, self._path, img, info)


class ThumbnailService:
    """The one thumbnail service of the app: where the disk cache lives (every size in one
    cache) and how many decodes may run at once for all grids together."""

    def __init__(self) -> None:
        self.cache_dir: str | None = None
        self.max_in_flight = max(2, min(8, (os.cpu_count() or 2)))

    def set_cache_dir(self, path: str | os.PathLike | None) -> None:
        self.cache_dir = os.fspath(path) if path else None


_THUMBNAILS = ThumbnailService()


def thumbnail_service() -> ThumbnailService:
    return _THUMBNAILS


class ThumbnailLoader(QObject):
    """One view's client of the thumbnail service: decodes thumbnails and previews on the
    shared pool, newest request first, through the service's disk cache.

    At most ``max_in_flight`` decodes run at once; further requests wait in a stack, so
    the rows on screen now are decoded before the ones that scrolled past. The stack is
    capped: requests that fall off are simply asked for again if their row is shown.
    """

    thumbnail_ready = Signal(str, QImage)
    thumbnail_failed = Signal(str, str)  # path, reason
    preview_ready = Signal(str, QImage, object)  # path, image, info
    preview_failed = Signal(str, str)

    def __init__(self, size: int = 128, cache_dir: str | os.PathLike | None = None,
                 max_in_flight: int | None = None, max_pending: int = 512, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self._own_cache_dir = os.fspath(cache_dir) if cache_dir else None
        self._max_in_flight = max_in_flight or _THUMBNAILS.max_in_flight
        self._max_pending = max_pending
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[tuple[str, str]] = set()
        # Unparented on purpose: jobs still running hold it alive after the loader is gone.
        self._signals = _DecodeSignals()
        self._signals.done.connect(self._on_job_done, Qt.ConnectionType.QueuedConnection)
        self._signals.failed.connect(self._on_job_failed, Qt.ConnectionType.QueuedConnection)
        self._closed = False

    @property
    def cache_dir(self) -> str | None:
        """This loader's cache folder: the one given, else the service's (one for every size)."""
        return self._own_cache_dir or _THUMBNAILS.cache_dir

    def request_thumbnail(self, path: str) -> None:
        if self._closed or ("thumb", path) in self._in_flight:
            return
        self._pending.pop(path, None)
        self._pending[path] = None  # newest at the end
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        self._start_more()

    def request_preview(self, path: str, size: int = 1024) -> None:
        """Previews skip the queue: the user is waiting for this one."""
        if self._closed:
            return
        self._in_flight.add(("preview", path))
        QThreadPool.globalInstance().start(_DecodeJob(self._signals, "preview", path, size, None))

    def cancel_pending(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        self._closed = True
        self._pending.clear()

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._in_flight)

    def _start_more(self) -> None:
        pool = QThreadPool.globalInstance()
        while self._pending and self._thumb_jobs() < self._max_in_flight:
            path, _ = self._pending.popitem(last=True)
            self._in_flight.add(("thumb", path))
            pool.start(_DecodeJob(self._signals, "thumb", path, self.size, self.cache_dir))

    def _thumb_jobs(self) -> int:
        return sum(1 for kind, _ in self._in_flight if kind == "thumb")

    @Slot(str, str, QImage, object)
    def _on_job_done(self, kind: str, path: str, image: QImage, info: dict) -> None:
        self._in_flight.discard((kind, path))
        if kind == "thumb":
            self.thumbnail_ready.emit(path, image)
        else:
            self.preview_ready.emit(path, image, info)
        self._start_more()

    @Slot(str, str, str)
    def _on_job_failed(self, kind: str, path: str, reason: str) -> None:
        self._in_flight.discard((kind, path))
        if kind == "thumb":
            self.thumbnail_failed.emit(path, reason)
        else:
            self.preview_failed.emit(path, reason)
        self._start_more()
