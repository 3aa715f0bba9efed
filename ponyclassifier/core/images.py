"""The one safe image decoder: every picture enters PonyClassifier through here.

Owns which formats we read (decided by content, never by file extension), the
pixel-count limit, full decoding (a damaged or truncated file is an error, never
silently padded), EXIF orientation, and the single mapping of every Pillow mode to
8-bit RGB. Anything Pillow raises becomes :class:`ImageError`, so callers handle
exactly one exception type.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageMode, UnidentifiedImageError, features

BACKGROUND: tuple[int, int, int] = (255, 255, 255)
MAX_PIXELS: int = 40_000_000

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


class ImageError(Exception):
    """A file that is not a usable image; ``reason`` is short text for the user.

    ``reason`` comes first so that ``ImageError(message)`` also works, which is
    how torch's DataLoader re-raises exceptions from worker processes.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
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
        try:
            fp = open(source, "rb")
        except FileNotFoundError:
            raise ImageError("file not found", path) from None
        except OSError as e:
            raise ImageError(f"cannot read file: {e.strerror or e}", path) from None
        with fp:
            return _decode(fp, path, max_pixels, draft_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(source), path, max_pixels, draft_size)
    return _decode(source, path, max_pixels, draft_size)


def load_rgb(source: str | os.PathLike | bytes | BinaryIO, **kw) -> Image.Image:
    return decode_image(source, **kw).image


def is_candidate_file(path: str | os.PathLike) -> bool:
    """Whether a file found in a folder should be offered to :func:`decode_image`.

    Decided by name only: hidden files (including macOS ``._`` forks), OS junk
    (Thumbs.db, desktop.ini, .DS_Store) and sidecars (.xmp .aae .json .txt .csv
    .md) are not candidates; everything else is, whatever its extension.
    """
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
            orientation = _orientation(im) if jpeg else 1
            if jpeg and draft_size is not None:
                dw, dh = draft_size if orientation < 5 else draft_size[::-1]
                im.draft("RGB", (max(1, int(dw)), max(1, int(dh))))
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
