"""The one safe image decoder: every picture enters PonyClassifier through here.

Owns which formats we read (decided by content, never by file extension), the
pixel-count limit, full decoding (a damaged or truncated file is an error, never
silently padded), EXIF orientation, and the single mapping of every Pillow mode to
8-bit RGB. Anything Pillow raises becomes :class:`ImageError`, so callers handle
exactly one exception type.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import re
import stat
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageMode, UnidentifiedImageError, features

BACKGROUND: tuple[int, int, int] = (255, 255, 255)
MAX_PIXELS: int = 40_000_000
# A progressive JPEG decodes its whole coefficient buffer once per scan, so a small file
# with thousands of scans costs minutes. Real ones have about 10 (libjpeg's progressive
# script: 10 for colour, 6 for grey; MPO frames are counted one at a time); libjpeg-turbo's
# own guard (djpeg -maxscans) exists for this attack.
MAX_JPEG_SCANS: int = 100


def _default_decode_budget() -> int:
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return min(1 << 30, max(256 << 20, physical // 8))


# Memory that decodes may hold at once, process-wide (bytes, estimated from each header
# before decoding; see _decode_cost). A decode that would pass it waits for others to
# finish; one alone always runs (the per-file bound is MAX_PIXELS), so nothing deadlocks.
DECODE_BUDGET: int = _default_decode_budget()

# ICO is deliberately absent: its frames are nested PNG/BMP files opened by Pillow
# itself, whose real size is only known after our pixel check has run. Anything
# needing an external program (EPS via Ghostscript) or another renderer (PDF, SVG,
# PSD...) is absent too. MPO camera files arrive through the JPEG opener.
for _plugin in ("Jpeg", "Png", "Gif", "Bmp", "WebP", "Tiff", "Ppm"):
    try:
        importlib.import_module(f"PIL.{_plugin}ImagePlugin")
    except ImportError:  # a Pillow build without that codec: the format is just absent
        pass
ALLOWED_FORMATS: tuple[str, ...] = tuple(
    f
    for f in ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM")
    if f in Image.OPEN and (f != "WEBP" or features.check_module("webp"))
)

# Warning policy. Decoding runs on pool threads, and warnings.catch_warnings()
# swaps the process-wide filter list (not thread-safe before Python 3.14), so we
# never use it per call. Instead two process-wide filters: Pillow's bomb warning
# (raised inside Image.open, before we can check the size ourselves) is an error,
# and Pillow's advisory UserWarnings (corrupt EXIF, palette transparency,
# malformed MPO) are ignored. They are put back in front whenever something
# (a test runner, ``-W error``, catch_warnings elsewhere) has displaced them, so a
# file decodes the same way under every warning configuration. In steady state
# this is a read-only check; a racing re-install at worst duplicates an entry.
_WARNING_POLICY = (
    ("error", Image.DecompressionBombWarning, ""),
    ("ignore", UserWarning, r"PIL\."),
)


def _install_warning_policy() -> list:
    for action, category, module in reversed(_WARNING_POLICY):
        warnings.filterwarnings(action, category=category, module=module)
    return warnings.filters[: len(_WARNING_POLICY)]


_POLICY_FILTERS = _install_warning_policy()

_UNSUPPORTED = "unsupported file (not an image we can read)"
_BAD_NAME = "file name is not valid UTF-8 (shown with \\x escapes); rename the file to use it"
_DAMAGED = "damaged or truncated image"
_ORIENTATION_TAG = 0x0112
# Same table as ImageOps.exif_transpose; applied by hand so that the draft size
# and original_size agree with the rotation actually performed.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})
# Text/metadata files that cameras, phones and people leave next to pictures.
# They are skipped silently; anything else is tried and, if it is not an image,
# reported as unsupported (so a stray .pdf or .svg is visible to the user).
_SIDECAR_SUFFIXES = frozenset({".xmp", ".aae", ".json", ".txt", ".csv", ".md"})
SIDECAR_SUFFIXES = _SIDECAR_SUFFIXES


class ImageError(Exception):
    """A file that is not a usable image; ``reason`` is short text for the user.

    ``reason`` comes first so that ``ImageError(message)`` also works, which is
    how torch's DataLoader re-raises exceptions from worker processes.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path = None if path is None else display_path(path)
        super().__init__(reason if path is None else f"{path}: {reason}")

    def __reduce__(self):
        return type(self), (self.reason, self.path)


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    format: str
    source_mode: str
    grayscale: bool
    original_size: tuple[int, int]


def decode_image(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    max_pixels: int = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
    path_hint: str | None = None,
) -> DecodedImage:
    """Decode the first frame of ``source`` into an upright, detached RGB image.

    ``source`` is a path, the file's bytes, or a binary file object (read from
    its start). ``draft_size`` lets JPEGs decode at a reduced scale that is never
    smaller than it, in the upright orientation. Raises :class:`ImageError`.

    Colour rules: alpha (and tRNS transparency) is composited onto BACKGROUND;
    16-bit samples keep their high byte (65535 -> 255, 32768 -> 128), as Pillow
    already does for 16-bit RGB PNGs; mode I is read as 16-bit (clipped to
    0..65535); mode F is 0..1 if its maximum is <= 1, else 0..255, clipped, NaN -> 0.
    Transparency of 16-bit/I/F grey images is ignored.
    """
    path = path_hint
    if path is None and isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
    if isinstance(source, (str, os.PathLike)):
        # the file's own name: a folder above it with an odd name (an old USB drive, an
        # unpacked archive) is where the user keeps the pictures, not a problem of theirs
        if name_problem(os.path.basename(os.fspath(source))) is not None:
            raise ImageError(_BAD_NAME, path)
        with open_regular_file(source, path) as fp:
            return _decode(fp, path, max_pixels, draft_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(source), path, max_pixels, draft_size)
    return _decode(source, path, max_pixels, draft_size)


def load_rgb(source: str | os.PathLike | bytes | BinaryIO, **kw) -> Image.Image:
    return decode_image(source, **kw).image


_O_FLAGS = (os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
            | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"cannot read file: not a regular file ({kind})"


def open_regular_file(source: str | os.PathLike, path: str | None = None) -> BinaryIO:
    """``source`` opened for reading, only if it is a regular file (after symbolic links).

    A named pipe, socket, device or folder named like a picture is refused with its kind
    and is never opened in a way that can block: the kind is checked with ``stat`` first,
    the file is opened with ``O_NONBLOCK`` (so a pipe swapped in meanwhile cannot block the
    open either), and the opened descriptor is checked again. Raises :class:`ImageError`."""
    path = os.fsdecode(source) if path is None else path
    try:
        st = os.stat(source)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(_not_regular(st.st_mode), path)
        fd = os.open(source, _O_FLAGS)
    except FileNotFoundError:
        raise ImageError("file not found", path) from None
    except OSError as e:
        raise ImageError(f"cannot read file: {e.strerror or e}", path) from None
    except ValueError:  # a NUL byte in the path
        raise ImageError("cannot read file: not a valid path", path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(_not_regular(st.st_mode), path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def name_problem(path: str | os.PathLike) -> str | None:
    """Why a path cannot be used as a name (None: it can). On POSIX a name is bytes; one
    that is not valid UTF-8 reaches Python with surrogate escapes, which no text consumer
    (the project store, JSON, the GUI, a UTF-8 terminal) accepts, so it is refused here,
    once, with a reason that :func:`display_path` can show."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _BAD_NAME
    return None


def display_path(path: str | os.PathLike) -> str:
    """``path`` as well-formed text for messages: the path itself when it is valid UTF-8,
    else its undecodable bytes as ``\\xNN`` escapes (never raises)."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # bytes that were not UTF-8, surrogate-escaped by the OS layer: show the bytes
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates (a Windows name): show the code points
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_candidate_file(path: str | os.PathLike) -> bool:
    """Whether a file found in a folder should be offered to :func:`decode_image`.

    Decided by name only: hidden files (including macOS ``._`` forks), OS junk
    (Thumbs.db, desktop.ini, .DS_Store) and sidecars (.xmp .aae .json .txt .csv
    .md) are not candidates, nor is a name that is not valid UTF-8 (see
    :func:`name_problem`; listings that report what they leave out say so with
    :func:`offered_by_name`); everything else is, whatever its extension.
    """
    return offered_by_name(path) and name_problem(os.path.basename(os.fsdecode(path))) is None


def offered_by_name(path: str | os.PathLike) -> bool:
    """:func:`is_candidate_file` without the UTF-8 rule: not hidden, junk or a sidecar."""
    name = os.path.basename(os.fsdecode(path))
    if not name or name.startswith(".") or name.lower() in _JUNK_NAMES:
        return False
    return os.path.splitext(name)[1].lower() not in _SIDECAR_SUFFIXES


def _decode(fp: BinaryIO, path: str | None, max_pixels: int, draft_size) -> DecodedImage:
    if warnings.filters[: len(_POLICY_FILTERS)] != _POLICY_FILTERS:
        _install_warning_policy()
    try:
        try:
            fp.seek(0)
        except (AttributeError, OSError):  # unseekable stream: buffer it
            fp = io.BytesIO(fp.read())
        if not fp.read(1):
            raise ImageError("empty file", path)
        with Image.open(fp, formats=ALLOWED_FORMATS) as im:
            fmt, source_mode, (w, h) = im.format, im.mode, im.size
            if w < 1 or h < 1:
                raise ImageError(_DAMAGED, path)
            if w * h > max_pixels:
                raise ImageError(
                    f"image too large: {w} x {h} pixels (limit {max_pixels})", path
                )
            # A JPEG's EXIF is parsed at open; other formats (PNG's eXIf chunk may
            # follow the pixels) are only read once the image is loaded.
            jpeg = fmt in ("JPEG", "MPO")
            if jpeg:
                scans = jpeg_scan_count(fp, MAX_JPEG_SCANS)
                if scans > MAX_JPEG_SCANS:
                    raise ImageError(f"too many JPEG scans: more than {MAX_JPEG_SCANS} (real pictures have "
                                     "about 10; this many would take minutes to decode)", path)
            orientation = _orientation(im) if jpeg else 1
            if jpeg and draft_size is not None:
                dw, dh = draft_size if orientation < 5 else draft_size[::-1]
                im.draft("RGB", (max(1, int(dw)), max(1, int(dh))))
            with _budget.reserve(_decode_cost(im, (w, h) if jpeg else None)):
                im.load()
                if not jpeg:
                    orientation = _orientation(im)
                rgb = _to_rgb(im, path)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(_UNSUPPORTED, path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        count = pixels.group(1) if pixels else "too many"
        raise ImageError(
            f"image too large: {count} pixels (limit {max_pixels})", path
        ) from e
    except MemoryError:
        raise ImageError("not enough memory to decode image", path) from None
    except Exception as e:  # Pillow raises a zoo: OSError, SyntaxError, struct.error...
        raise ImageError(_DAMAGED, path) from e

    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    if orientation >= 5:
        w, h = h, w
    return DecodedImage(
        image=rgb,
        format=fmt,
        source_mode=source_mode,
        grayscale=ImageMode.getmode(source_mode).basemode == "L",
        original_size=(w, h),
    )


class _DecodeBudget:
    """A weighted semaphore over bytes: reservations wait while the total would pass
    ``capacity``, except that one alone is always let through (no deadlock, and a file
    within MAX_PIXELS always decodes)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0  # the most ever reserved at once (for tests and measurements)
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()  # waiting reservations, first come first served

    @contextmanager
    def reserve(self, amount: int):
        """Reservations are served in the order they ask: a big picture waiting for room is
        not passed for ever by a stream of small ones (they wait behind it)."""
        turn = object()
        with self._cond:
            self._queue.append(turn)
            try:
                while self._queue[0] is not turn or (self.used and self.used + amount > self.capacity):
                    self._cond.wait()
            finally:
                self._queue.remove(turn)  # served, or gave up (an exception while waiting)
                self._cond.notify_all()
            self.used += amount
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= amount
                self._cond.notify_all()


_budget = _DecodeBudget(DECODE_BUDGET)

# Pillow allocates an image in 16 MiB blocks by default; glibc serves blocks that size from
# per-thread heaps that keep freed memory, so four decode threads each kept their largest
# decode and the budget above bounded nothing. One block per image (up to 1 GiB) is above
# malloc's mmap threshold: a big image's memory goes back to the system when it is freed.
# Small images are one block either way.
_BLOCK_SIZE = 1 << 30
if Image.core.get_block_size() < _BLOCK_SIZE:
    Image.core.set_block_size(_BLOCK_SIZE)


def _decode_cost(im: Image.Image, full_size: tuple[int, int] | None = None) -> int:
    """Bytes a decode of ``im`` (at its size after any draft) may hold at its peak: the
    decoded pixels as Pillow stores them (1, 2 or 4 bytes a pixel), plus the RGB result
    (4), plus the RGBA copies of alpha flattening or the numpy arrays of I/F conversion.
    A progressive JPEG also holds libjpeg's coefficient buffer, 2 bytes per sample of the
    whole picture (``full_size``, before any draft) whatever the scale it is decoded at."""
    coefficients = 0
    if full_size is not None and (im.info.get("progressive") or im.info.get("progression")):
        coefficients = full_size[0] * full_size[1] * len(im.getbands()) * 2
    return coefficients + _pixels_cost(im)


def _pixels_cost(im: Image.Image) -> int:
    w, h = im.size
    mode = im.mode
    bands = im.getbands()
    source = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    extra = 0
    if "A" in bands or "a" in bands or "transparency" in im.info:
        extra = 12
    elif mode == "F" or bands == ("I",):
        extra = 16
    return w * h * (source + 4 + extra)


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # stuffing, restarts and fill bytes are not markers
_JPEG_STANDALONE = frozenset({0x01, 0xD8})  # TEM, SOI: no length field


def jpeg_scan_count(fp: BinaryIO, limit: int = MAX_JPEG_SCANS, chunk: int = 1 << 20) -> int:
    """Scans (SOS segments) in the first image of a JPEG stream, counted the way libjpeg
    reads the stream: marker segments skipped by their length (so bytes inside an EXIF
    thumbnail or a comment are never counted), entropy-coded data searched for the next
    marker, counting stopped at EOI (an MPO's later frames are not decoded). Stops early
    once past ``limit``; reads ``chunk`` bytes at a time and puts the file position back."""
    start = fp.tell()
    try:
        fp.seek(0)
        buf, base = fp.read(chunk), 0  # buf holds the file's bytes [base, base + len(buf))
        pos, scans = 2, 0  # after SOI
        while True:
            if pos >= base + len(buf):  # the next segment starts past what we hold
                fp.seek(pos)
                buf, base = fp.read(chunk), pos
                if not buf:
                    return scans
            m = _JPEG_MARKER.search(buf, pos - base)
            if m is None:  # keep the last byte: it may be the 0xFF of a marker
                more = fp.read(chunk)
                if not more:
                    return scans
                base, buf = base + len(buf) - 1, buf[-1:] + more
                pos = max(pos, base)
                continue
            at = m.start()
            marker = buf[at + 1]
            if marker in _JPEG_STANDALONE:
                pos = base + at + 2
                continue
            if marker == 0xD9:  # EOI
                return scans
            if at + 4 > len(buf):  # the length field is past what we hold
                base, buf, at = base + at, buf[at:], 0
                while len(buf) < 4:
                    more = fp.read(chunk)
                    if not more:
                        return scans
                    buf += more
            length = int.from_bytes(buf[at + 2:at + 4], "big")
            if length < 2:  # libjpeg stops here with an error
                return scans
            if marker == 0xDA:
                scans += 1
                if scans > limit:
                    return scans
            pos = base + at + 2 + length
    finally:
        fp.seek(start)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1..8; broken or odd EXIF means "no rotation"."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
        return value if isinstance(value, int) and value in _TRANSPOSE else 1
    except Exception:
        return 1


def _to_rgb(im: Image.Image, path: str | None) -> Image.Image:
    bands = im.getbands()
    if im.mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0)
        if a.size and a.max() <= 1.0:
            a = a * np.float32(255.0)
        return _gray8(np.rint(np.clip(a, 0, 255)))
    if bands == ("I",):  # I and I;16*: 16-bit range, keep the high byte
        a = np.asarray(im).astype(np.int64)
        return _gray8(np.clip(a, 0, 65535) >> 8)
    if im.mode == "1":  # via L so that a tRNS colour is kept
        im = im.convert("L")
    if "A" in bands or "a" in bands or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError:
        raise ImageError(f"unsupported colour mode {im.mode}", path) from None


def _gray8(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a.astype(np.uint8)).convert("RGB")
