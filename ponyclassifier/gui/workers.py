"""Background work for the GUI: the thread pool jobs (training and the live camera view run on
QThreads of their own, in training_thread.py and qt_live.py).

Two kinds of work leave the GUI thread:

* :func:`run_job` -- "function in, result on the main thread out" (Anki/Orange3
  style). The function gets a :class:`JobState` to report progress, hand over
  partial results and check for cancellation. Used for listing a project folder and
  generating the demo project, opening a project store, and every labelling action
  on a project (import, move, delete, class changes, undo), one at a time.
* :class:`ThumbnailLoader` -- small decode jobs for the thumbnail grid and the preview
  pane, on the global ``QThreadPool``. The worker produces a ``QImage`` (safe off the
  GUI thread); the GUI thread turns it into a ``QPixmap`` when the signal arrives.

Signals that cross threads carry plain values and QImage only. Every image is decoded
by the core's one safe decoder, :func:`ponyclassifier.core.images.decode_image`.
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
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from ..core.images import ImageError, decode_image

__all__ = ["Cancelled", "Job", "JobState", "ThumbnailLoader", "array_to_qimage", "pil_to_qimage", "qimage_to_array",
           "run_job"]


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


def run_job(
    fn: Callable[[JobState], Any],
    *,
    on_finished: Callable[[Any], None] | None = None,
    on_failed: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[Any], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
) -> Job:
    """Run ``fn(state)`` on the global thread pool; callbacks run on the GUI thread."""
    job = Job(fn)
    for signal, slot in ((job.signals.finished, on_finished), (job.signals.failed, on_failed),
                         (job.signals.progressed, on_progress), (job.signals.partial_ready, on_partial),
                         (job.signals.cancelled, on_cancelled)):
        if slot is not None:
            signal.connect(slot)
    _live_jobs.add(job)
    QThreadPool.globalInstance().start(job)
    return job


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


class ThumbnailLoader(QObject):
    """Decodes thumbnails and previews on the global pool, newest request first.

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
        self.cache_dir = os.fspath(cache_dir) if cache_dir else None
        self._max_in_flight = max_in_flight or max(2, min(8, (os.cpu_count() or 2)))
        self._max_pending = max_pending
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[tuple[str, str]] = set()
        # Unparented on purpose: jobs still running hold it alive after the loader is gone.
        self._signals = _DecodeSignals()
        self._signals.done.connect(self._on_job_done, Qt.ConnectionType.QueuedConnection)
        self._signals.failed.connect(self._on_job_failed, Qt.ConnectionType.QueuedConnection)
        self._closed = False

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
