"""Tests for ponyclassifier.core.images, the one safe image decoder (reliability cases 6-14)."""

from __future__ import annotations

import io
import os
import pickle
import random
import re
import struct
import subprocess
import sys
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import GifImagePlugin, Image, ImageFile

from ponyclassifier.core import images
from ponyclassifier.core.images import (
    ALLOWED_FORMATS,
    BACKGROUND,
    MAX_PIXELS,
    DecodedImage,
    ImageError,
    decode_image,
    is_candidate_file,
    load_rgb,
)

UNSUPPORTED = "unsupported file (not an image we can read)"
DAMAGED = "damaged or truncated image"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- helpers


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int = 64, h: int = 64, seed: int = 0) -> Image.Image:
    return Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))


def png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def raw_png(w: int, h: int, depth: int, colour_type: int, rows: list[bytes] | None = None) -> bytes:
    """A PNG written by hand, for bit depths Pillow cannot save and lying headers."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    body = b"".join(b"\x00" + r for r in rows) if rows is not None else b"\x00" * 64
    return (
        PNG_MAGIC
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(body))
        + png_chunk(b"IEND", b"")
    )


def exif_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def row(im: Image.Image) -> list[tuple[int, int, int]]:
    return [im.getpixel((x, 0)) for x in range(im.width)]


def close(a, b, tol=2) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ---------------------------------------------------------------- API basics


def test_error_text_and_pickling():
    e = ImageError("empty file", "/x/a.png")
    assert (e.path, e.reason, str(e)) == ("/x/a.png", "empty file", "/x/a.png: empty file")
    assert str(ImageError("empty file")) == "empty file"
    back = pickle.loads(pickle.dumps(e))
    assert (back.path, back.reason, str(back)) == (e.path, e.reason, str(e))


def test_allowed_formats_are_a_safe_whitelist():
    for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "PPM"):
        assert fmt in ALLOWED_FORMATS
    for fmt in ("EPS", "PDF", "SVG", "PSD", "ICO", "TGA", "PCX", "XBM", "SPIDER"):
        assert fmt not in ALLOWED_FORMATS
    assert BACKGROUND == (255, 255, 255) and MAX_PIXELS == 40_000_000


def test_decode_returns_detached_rgb_and_closes_file(tmp_path):
    p = write(tmp_path, "a.png", encode(Image.new("RGB", (5, 3), (10, 200, 30)), "PNG"))
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        d = decode_image(p)
    assert not [w for w in rec if issubclass(w.category, ResourceWarning)]
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds
    p.unlink()
    assert isinstance(d, DecodedImage)
    assert not isinstance(d.image, ImageFile.ImageFile)
    assert d.image.mode == "RGB" and d.image.getpixel((4, 2)) == (10, 200, 30)
    assert (d.format, d.source_mode, d.grayscale, d.original_size) == ("PNG", "RGB", False, (5, 3))


def test_sources_bytes_stream_unseekable_and_path_hint(tmp_path):
    data = encode(Image.new("L", (3, 2), 9), "PNG")
    p = write(tmp_path, "g.png", data)

    class Unseekable(io.RawIOBase):
        def __init__(self, b):
            self._b = io.BytesIO(b)

        def readable(self):
            return True

        def readinto(self, buf):
            return self._b.readinto(buf)

    for src in (data, bytearray(data), io.BytesIO(data), Unseekable(data), str(p), p):
        assert load_rgb(src).getpixel((0, 0)) == (9, 9, 9)
    with open(p, "rb") as f:
        f.read(5)  # file objects are read from their start
        assert decode_image(f).grayscale
    with pytest.raises(ImageError) as ei:
        decode_image(b"not an image", path_hint="cam/x.jpg")
    assert str(ei.value) == f"cam/x.jpg: {UNSUPPORTED}"


def test_missing_directory_and_unreadable_files(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageError) as ei:
        decode_image(missing)
    assert ei.value.reason == "file not found" and ei.value.path == str(missing)
    assert str(missing) in str(ei.value)
    with pytest.raises(ImageError, match="cannot read file: "):
        decode_image(tmp_path)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = write(tmp_path, "locked.png", encode(Image.new("RGB", (2, 2)), "PNG"))
        locked.chmod(0)
        with pytest.raises(ImageError, match="cannot read file: .*[Pp]ermission"):
            decode_image(locked)


# ---------------------------------------------------------------- 6: bombs


def test_header_far_over_pillows_limit_is_rejected_before_decoding():
    bomb = raw_png(30000, 30000, 8, 2)  # ~2.7 GB of pixels, a few hundred bytes of file
    rss = _peak_rss_mb()
    t = time.perf_counter()
    with pytest.raises(ImageError, match=r"^image too large: \d+ pixels \(limit 40000000\)$"):
        decode_image(bomb)
    assert time.perf_counter() - t < 1.0
    assert _peak_rss_mb() - rss < 100


def test_header_over_our_limit_is_rejected_with_its_size():
    rss = _peak_rss_mb()
    with pytest.raises(ImageError) as ei:
        decode_image(raw_png(7000, 6000, 8, 2))  # 42 Mpx: under Pillow's limit, over ours
    assert ei.value.reason == "image too large: 7000 x 6000 pixels (limit 40000000)"
    assert _peak_rss_mb() - rss < 100
    small = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageError, match=r"image too large: 100 x 100 pixels \(limit 5000\)"):
        decode_image(small, max_pixels=5000)
    assert decode_image(small, max_pixels=10_000).original_size == (100, 100)


@pytest.mark.parametrize("action", ["default", "always", "ignore", "error"])
def test_pillows_bomb_warning_becomes_image_error(action):
    # 100 Mpx: Pillow warns (not raises) inside Image.open, before we see the size.
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter(action)
        with pytest.raises(ImageError, match="image too large"):
            decode_image(raw_png(10000, 10000, 8, 2))
    assert rec == []


def test_production_warning_filters(tmp_path):
    """With default warning filters, no Pillow warning reaches the caller."""
    bomb = write(tmp_path, "bomb.png", raw_png(10000, 10000, 8, 2))
    ifd = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x010E, 2, 100, 5000)
    jpeg = write(
        tmp_path, "exif.jpg",
        encode(Image.new("RGB", (8, 8)), "JPEG", exif=b"Exif\x00\x00" + ifd + b"\0\0\0\0"),
    )
    script = (
        "import sys\n"
        "from ponyclassifier.core.images import decode_image, ImageError\n"
        "try:\n"
        "    decode_image(sys.argv[1])\n"
        "    sys.exit('bomb accepted')\n"
        "except ImageError as e:\n"
        "    assert e.reason.startswith('image too large'), e\n"
        "decode_image(sys.argv[2]).image.getexif()\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTHONWARNINGS", None)
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", script, str(bomb), str(jpeg)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------- 7: truncation


@pytest.mark.parametrize(
    "fmt, kw",
    [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("PPM", {})],
)
def test_half_length_file_is_damaged(fmt, kw):
    data = encode(noise(256, 256), fmt, **kw)
    decode_image(data)  # the whole file is fine
    half = data[: len(data) // 2]
    with pytest.raises(ImageError) as ei:
        decode_image(half)
    assert ei.value.reason == DAMAGED
    if fmt == "JPEG":
        with pytest.raises(ImageError, match=DAMAGED):
            decode_image(half, draft_size=(32, 32))


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_half_length_other_formats_raise_image_error(fmt):
    data = encode(noise(256, 256), fmt)
    with pytest.raises(ImageError):
        decode_image(data[: len(data) // 2])


def test_truncated_images_are_never_tolerated():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    source = Path(images.__file__).read_text(encoding="utf-8")
    assert not re.search(r"LOAD_TRUNCATED_IMAGES\s*=", source)
    assert not re.search(r"MAX_IMAGE_PIXELS\s*=", source)


# ---------------------------------------------------------------- 9, 10: content decides


def test_content_not_extension_decides(tmp_path):
    png_as_jpg = write(tmp_path, "a.jpg", encode(Image.new("RGB", (4, 4), "red"), "PNG"))
    jpg_as_png = write(tmp_path, "b.png", encode(Image.new("RGB", (4, 4), "blue"), "JPEG"))
    assert decode_image(png_as_jpg).format == "PNG"
    assert decode_image(jpg_as_png).format == "JPEG"
    assert close(load_rgb(jpg_as_png).getpixel((1, 1)), (0, 0, 255), tol=8)


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
    b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n"
)
NOT_IMAGES = {
    "text.png": b"hello, I am definitely a picture\n" * 5,
    "eps.jpg": EPS,
    "eps.eps": EPS,
    "doseps.eps": b"\xc5\xd0\xd3\xc6" + struct.pack("<6I", 30, len(EPS), 0, 0, 0, 0) + b"\xff\xff" + EPS,
    "doc.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "pic.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "favicon.ico": encode(Image.new("RGB", (16, 16)), "ICO"),
    "old.tga": encode(Image.new("RGB", (16, 16)), "TGA"),
    "old.pcx": encode(Image.new("RGB", (16, 16)), "PCX"),
}


@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_non_images_are_unsupported_and_ghostscript_never_runs(tmp_path, monkeypatch, name):
    from PIL import EpsImagePlugin

    def tripwire(*a, **k):
        raise AssertionError("Ghostscript must never run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", tripwire)
    monkeypatch.setattr(subprocess, "Popen", tripwire)
    p = write(tmp_path, name, NOT_IMAGES[name])
    with pytest.raises(ImageError) as ei:
        decode_image(p)
    assert ei.value.reason == UNSUPPORTED and ei.value.path == str(p)


def test_empty_file(tmp_path):
    for src in (write(tmp_path, "zero.jpg", b""), b"", io.BytesIO()):
        with pytest.raises(ImageError) as ei:
            decode_image(src)
        assert ei.value.reason == "empty file"


# ---------------------------------------------------------------- 11: EXIF orientation

QUADS = np.array([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (255, 255, 0)]], dtype=np.uint8)
# How a viewer must turn the stored pixels for each orientation (independent of Pillow).
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_made_upright(orientation):
    stored = Image.fromarray(QUADS.repeat(16, axis=0).repeat(32, axis=1))  # 64 x 32
    data = encode(stored, "JPEG", quality=95, exif=exif_with_orientation(orientation))
    d = decode_image(data)
    expected = UPRIGHT[orientation](QUADS)
    w, h = d.image.size
    assert (w, h) == ((32, 64) if orientation >= 5 else (64, 32)) == d.original_size
    for r in range(2):
        for c in range(2):
            centre = (w * (2 * c + 1) // 4, h * (2 * r + 1) // 4)
            assert close(d.image.getpixel(centre), expected[r, c], tol=40), (r, c)


@pytest.mark.parametrize("orientation, top", [(6, (255, 0, 0)), (8, (0, 0, 255))])
def test_orientation_6_and_8_turn_red_left_half_to_top_or_bottom(orientation, top):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    d = decode_image(encode(stored, "JPEG", quality=95, exif=exif_with_orientation(orientation)))
    assert d.image.size == d.original_size == (20, 40)
    bottom = (255, 0, 0) if top == (0, 0, 255) else (0, 0, 255)
    assert close(d.image.getpixel((10, 5)), top, tol=30)
    assert close(d.image.getpixel((10, 34)), bottom, tol=30)


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00garbage!!",
        b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff",
        exif_with_orientation(9),
        exif_with_orientation(0),
    ],
)
@pytest.mark.parametrize("action", ["always", "error"])
def test_broken_exif_means_no_rotation(exif, action):
    data = encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter(action)  # Pillow warns about these; the caller never sees it
        d = decode_image(data)
    assert d.image.size == d.original_size == (40, 20)
    assert rec == []


@pytest.mark.parametrize("action", ["always", "error"])
def test_partly_broken_exif_still_rotates_the_same_way_under_any_filters(action):
    ifd = b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHII", 0x0112, 3, 1, 6)
    ifd += struct.pack("<HHII", 0x010E, 2, 100, 5000) + b"\0\0\0\0"  # tag data past the end
    data = encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=b"Exif\x00\x00" + ifd)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter(action)
        assert decode_image(data).original_size == (20, 40)
    assert rec == []


def test_orientation_in_png_exif():
    stored = Image.new("RGB", (6, 2), (0, 255, 0))
    stored.putpixel((0, 0), (255, 0, 0))
    d = decode_image(encode(stored, "PNG", exif=exif_with_orientation(6)))
    assert d.image.size == (2, 6) and d.image.getpixel((1, 0)) == (255, 0, 0)


# ---------------------------------------------------------------- draft_size


def test_draft_size_decodes_jpeg_smaller_but_never_below_the_target():
    data = encode(noise(1600, 800), "JPEG")
    d = decode_image(data, draft_size=(224, 224))
    assert d.original_size == (1600, 800)
    assert d.image.size == (800, 400)  # scale 1/2: 1/4 would be 400 x 200 < 224
    assert decode_image(data).image.size == (1600, 800)
    rotated = encode(noise(1600, 800), "JPEG", exif=exif_with_orientation(6))
    d = decode_image(rotated, draft_size=(100, 700))  # in upright terms: 800 wide, 1600 tall
    assert d.original_size == (800, 1600)
    assert d.image.width >= 100 and d.image.height >= 700 and d.image.size != (800, 1600)
    png = encode(Image.new("RGB", (300, 200)), "PNG")
    assert decode_image(png, draft_size=(10, 10)).image.size == (300, 200)


# ---------------------------------------------------------------- 12: colour modes


def _tiff(mode, values):
    arr = np.array([values], dtype={"I": np.int32, "F": np.float32}[mode])
    return encode(Image.fromarray(arr), "TIFF")


def _palette(colour, fmt, **kw):
    im = Image.new("P", (4, 1), 0)
    im.putpalette(list(colour) + [0, 0, 0] * 255)
    return encode(im, fmt, **kw)


def _pa():
    im = Image.new("PA", (4, 1), (0, 128))
    im.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    return encode(im, "TIFF")


PINK = (255, 127, 127)
MODE_CASES = {
    "1 white": (lambda: encode(Image.new("1", (4, 1), 1), "PNG"), "1", True, [(255,) * 3] * 4),
    "1 black": (lambda: encode(Image.new("1", (4, 1), 0), "PNG"), "1", True, [(0,) * 3] * 4),
    "1 tRNS": (lambda: encode(Image.new("1", (4, 1), 0), "PNG", transparency=0), "1", True, [BACKGROUND] * 4),
    "L": (lambda: encode(Image.new("L", (4, 1), 77), "PNG"), "L", True, [(77,) * 3] * 4),
    "L tRNS": (lambda: encode(Image.new("L", (4, 1), 77), "PNG", transparency=77), "L", True, [BACKGROUND] * 4),
    "LA": (lambda: encode(Image.new("LA", (4, 1), (0, 128)), "PNG"), "LA", True, [(127,) * 3] * 4),
    "P": (lambda: _palette((10, 20, 30), "PNG"), "P", False, [(10, 20, 30)] * 4),
    "P tRNS": (lambda: _palette((255, 0, 0), "PNG", transparency=bytes([128])), "P", False, [PINK] * 4),
    "P GIF transparent": (lambda: _palette((9, 9, 9), "GIF", transparency=0), "P", False, [BACKGROUND] * 4),
    "PA": (_pa, "PA", False, [PINK] * 4),
    "RGB": (lambda: encode(Image.new("RGB", (4, 1), (10, 200, 30)), "PNG"), "RGB", False, [(10, 200, 30)] * 4),
    "RGB tRNS": (
        lambda: encode(Image.new("RGB", (4, 1), (1, 2, 3)), "PNG", transparency=(1, 2, 3)),
        "RGB", False, [BACKGROUND] * 4,
    ),
    "RGBA": (lambda: encode(Image.new("RGBA", (4, 1), (255, 0, 0, 128)), "PNG"), "RGBA", False, [PINK] * 4),
    "RGBA clear": (lambda: encode(Image.new("RGBA", (4, 1), (0, 0, 0, 0)), "PNG"), "RGBA", False, [BACKGROUND] * 4),
    "CMYK": (lambda: encode(Image.new("CMYK", (4, 1), (0, 255, 255, 0)), "TIFF"), "CMYK", False, [(255, 0, 0)] * 4),
    "CMYK JPEG": (lambda: encode(Image.new("CMYK", (4, 1), (0, 0, 0, 0)), "JPEG"), "CMYK", False, [BACKGROUND] * 4),
    "I;16": (
        lambda: raw_png(4, 1, 16, 0, [struct.pack(">4H", 0, 25700, 32768, 65535)]),
        "I;16", True, [(0,) * 3, (100,) * 3, (128,) * 3, (255,) * 3],
    ),
    "I;16 TIFF": (
        lambda: encode(Image.frombytes("I;16", (4, 1), struct.pack("<4H", 0, 257, 32768, 65535)), "TIFF"),
        "I;16", True, [(0,) * 3, (1,) * 3, (128,) * 3, (255,) * 3],
    ),
    "PGM 16-bit": (
        lambda: b"P5 4 1 65535\n" + struct.pack(">4H", 0, 255, 32768, 65535),
        "I", True, [(0,) * 3, (0,) * 3, (128,) * 3, (255,) * 3],
    ),
    "RGB 16-bit": (
        lambda: raw_png(4, 1, 16, 2, [struct.pack(">12H", *([65535, 32768, 0] * 4))]),
        "RGB", False, [(255, 128, 0)] * 4,
    ),
    "LA 16-bit": (
        lambda: raw_png(2, 1, 16, 4, [struct.pack(">4H", 65535, 0, 0, 65535)]),
        "RGBA", False, [BACKGROUND, (0, 0, 0)],  # Pillow reads 16-bit LA as RGBA
    ),
    "I": (lambda: _tiff("I", [-5, 0, 32768, 70000]), "I", True, [(0,) * 3, (0,) * 3, (128,) * 3, (255,) * 3]),
    "F 0..1": (
        lambda: _tiff("F", [0.0, 0.5, 1.0, float("nan")]), "F", True,
        [(0,) * 3, (128,) * 3, (255,) * 3, (0,) * 3],
    ),
    "F 0..255": (
        lambda: _tiff("F", [-3.0, 0.5, 200.0, 300.0]), "F", True,
        [(0,) * 3, (0,) * 3, (200,) * 3, (255,) * 3],
    ),
}


@pytest.mark.parametrize("case", sorted(MODE_CASES))
def test_every_mode_has_one_defined_rgb_result(case):
    make, source_mode, grayscale, expected = MODE_CASES[case]
    d = decode_image(make())
    assert d.image.mode == "RGB"
    assert (d.source_mode, d.grayscale) == (source_mode, grayscale)
    got = row(d.image)
    assert all(close(g, e, tol=1) for g, e in zip(got, expected)), got


# ---------------------------------------------------------------- 13: animations


def test_animated_gif_and_webp_give_the_first_frame(monkeypatch):
    def tripwire(self):
        raise AssertionError("frames must not be counted")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(tripwire))
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "is_animated", property(tripwire))
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert row(load_rgb(gif)) == [(255, 0, 0)] * 8
    if "WEBP" in ALLOWED_FORMATS:
        webp = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50)
        assert decode_image(webp).format == "WEBP"
        assert all(close(p, (255, 0, 0)) for p in row(load_rgb(webp)))


# ---------------------------------------------------------------- 14: anything goes in, only ImageError comes out


def _seeds() -> list[bytes]:
    base = noise(16, 12, seed=3)
    out = [encode(base, f) for f in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "PPM")]
    out.append(encode(base, "JPEG", progressive=True, exif=exif_with_orientation(6)))
    out.append(encode(base.convert("RGBA"), "PNG"))
    if "WEBP" in ALLOWED_FORMATS:
        out.append(encode(base, "WEBP"))
    return out


SEEDS = _seeds()


@st.composite
def mutated_images(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        # Bias towards the first bytes, where headers (and sizes) live.
        i = draw(st.one_of(st.integers(0, 64), st.integers(0, max(0, len(data) - 1))))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
        if op == "flip" and i < len(data):
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[i : i + len(chunk)] = chunk
    return bytes(data)


def _decode_or_image_error(data: bytes) -> None:
    try:
        d = decode_image(data)
    except ImageError as e:
        assert e.reason
        return
    assert d.image.mode == "RGB" and d.image.width >= 1 and d.image.height >= 1
    assert sorted(d.image.size) == sorted(d.original_size)
    d.image.tobytes()


FUZZ = settings(
    deadline=2000, max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    _decode_or_image_error(data)


@FUZZ
@given(mutated_images())
def test_mutated_images(data):
    _decode_or_image_error(data)


# ---------------------------------------------------------------- concurrency


def test_concurrent_decoding_matches_sequential():
    jobs = [
        encode(noise(80, 60, seed=i), fmt, **kw)
        for i in range(8)
        for fmt, kw in (("PNG", {}), ("JPEG", {"exif": exif_with_orientation(6)}), ("GIF", {}))
    ]
    jobs += [j[: len(j) // 2] for j in jobs[:6]] + [raw_png(10000, 10000, 8, 2)]

    def outcome(data):
        try:
            d = decode_image(data, draft_size=(20, 20))
            return d.image.size, d.image.tobytes()
        except ImageError as e:
            return e.reason

    expected = [outcome(j) for j in jobs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(outcome, jobs)) == expected


# ---------------------------------------------------------------- candidates


@pytest.mark.parametrize(
    "name, ok",
    [
        ("cat.jpg", True), ("cat.PNG", True), ("png_named.jpg", True), ("noext", True),
        ("weird.pdf", True), (".hidden.jpg", False), ("._cat.jpg", False), (".DS_Store", False),
        ("Thumbs.db", False), ("thumbs.db", False), ("desktop.ini", False), ("Desktop.ini", False),
        ("cat.jpg.xmp", False), ("IMG_1.AAE", False), ("cat.jpg.json", False), ("notes.txt", False),
        ("labels.csv", False), ("README.md", False),
    ],
)
def test_is_candidate_file(tmp_path, name, ok):
    assert is_candidate_file(name) is ok
    assert is_candidate_file(tmp_path / "sub" / name) is ok
