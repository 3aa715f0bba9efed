"""The built-in demo dataset: six cartoon ponies drawn procedurally.

This module owns the synthetic "My Little Pony" style images the app offers
when a user has no pictures of their own yet. Every image is drawn from
scratch with Pillow (no bundled artwork, no downloads), so the demo works
offline and is free of copyright questions.

The demo is a first success for a new user, so each pony is meant to be
recognisable to a person at a glance: it usually fills half to nine tenths of
the picture width, keeps its own colours under mild lighting, and shows a
bold mane and cutie mark. There is still real variation (pose, size,
position, background clutter in pony-like colours, lighting, a stronger
colour cast on the background only, occasional occluders, blur and noise),
so no single pixel or the image's average colour names the pony. A model has
to learn shapes and colour combinations (wings, horn, hat, rainbow mane,
cutie mark), which is what makes the demo a fair showcase of training.

Public API: :data:`PONIES`, :func:`draw_pony`, :func:`generate_demo_dataset`.
Pillow and numpy only: no Qt, no torch.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["PONIES", "draw_pony", "generate_demo_dataset"]

PONIES: tuple[str, ...] = (
    "Applejack",
    "Fluttershy",
    "Pinkie Pie",
    "Rainbow Dash",
    "Rarity",
    "Twilight Sparkle",
)

_MIN_SIZE = 16
_SUPERSAMPLE = 2

RGB = tuple[int, int, int]
Point = tuple[float, float]


def _hex(code: str) -> RGB:
    code = code.lstrip("#")
    return (int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16))


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(max(0, min(255, round(c * factor)))) for c in colour)  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


@dataclass(frozen=True)
class _Look:
    body: RGB
    mane: tuple[tuple[RGB, float], ...]  # colour bands across a strand, with relative widths
    eye: RGB
    style: str  # how mane and tail are drawn
    horn: bool = False
    wings: bool = False
    hat: bool = False


_RAINBOW = ((_hex("EE4144"), 1.0), (_hex("F37033"), 1.0), (_hex("FDF6AF"), 1.0),
            (_hex("62BC4D"), 1.0), (_hex("1E98D3"), 1.0), (_hex("672F89"), 1.0))

_LOOKS: dict[str, _Look] = {
    "Applejack": _Look(_hex("FBBA64"), ((_hex("FAF5AB"), 1.0),), _hex("3F9E3A"), "ponytail", hat=True),
    "Fluttershy": _Look(_hex("FDF6AF"), ((_hex("F3B6CF"), 1.0),), _hex("1FA5A2"), "long", wings=True),
    "Pinkie Pie": _Look(_hex("F5B7D0"), ((_hex("E5398A"), 1.0),), _hex("3B8FD4"), "poofy"),
    "Rainbow Dash": _Look(_hex("9EDBF9"), _RAINBOW, _hex("C0307A"), "rainbow", wings=True),
    "Rarity": _Look(_hex("F3F4F7"), ((_hex("5E51A3"), 1.0),), _hex("3E65C4"), "curly", horn=True),
    "Twilight Sparkle": _Look(
        _hex("CC9CDF"),
        ((_hex("263773"), 1.3), (_hex("662D8A"), 0.45), (_hex("ED438A"), 0.5), (_hex("263773"), 0.6)),
        _hex("6C2F8A"), "straight", horn=True,
    ),
}

# Colours of the ponies themselves, reused for background clutter so that a
# patch of "Rainbow Dash blue" proves nothing on its own.
_PONY_PALETTE: tuple[RGB, ...] = tuple(
    sorted({c for look in _LOOKS.values() for c in (look.body, *(m for m, _ in look.mane))})
)


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


# --------------------------------------------------------------------------
# geometry helpers (unit coordinates in a box, pony facing right, y down)
# --------------------------------------------------------------------------


def _bezier(ctrl: Sequence[Point], n: int = 14) -> np.ndarray:
    p = np.asarray(ctrl, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    if len(p) == 3:
        return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _normals(path: np.ndarray) -> np.ndarray:
    d = np.gradient(path, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return np.stack([-d[:, 1], d[:, 0]], axis=1)


def _rot(p: Point, pivot: Point, angle: float) -> Point:
    c, s = math.cos(angle), math.sin(angle)
    x, y = p[0] - pivot[0], p[1] - pivot[1]
    return (pivot[0] + c * x - s * y, pivot[1] + s * x + c * y)


class _Pen:
    """ImageDraw in unit coordinates, so the pony is described once at any pixel size."""

    def __init__(self, draw: ImageDraw.ImageDraw, scale: float) -> None:
        self.d = draw
        self.k = scale
        self.lw = max(1, int(round(scale * 0.009)))

    def _xy(self, pts: Sequence[Point] | np.ndarray) -> list[tuple[float, float]]:
        return [(float(x) * self.k, float(y) * self.k) for x, y in pts]

    def ellipse(self, c: Point, rx: float, ry: float, fill: RGB | None, outline: RGB | None = None,
                width: int | None = None) -> None:
        k = self.k
        box = ((c[0] - rx) * k, (c[1] - ry) * k, (c[0] + rx) * k, (c[1] + ry) * k)
        self.d.ellipse(box, fill=fill, outline=outline, width=self.lw if width is None else width)

    def poly(self, pts: Sequence[Point] | np.ndarray, fill: RGB | None, outline: RGB | None = None) -> None:
        xy = self._xy(pts)
        self.d.polygon(xy, fill=fill, outline=None)
        if outline is not None:
            self.d.line(xy + xy[:1], fill=outline, width=self.lw, joint="curve")

    def line(self, pts: Sequence[Point] | np.ndarray, fill: RGB, width: float) -> None:
        self.d.line(self._xy(pts), fill=fill, width=max(1, int(round(width * self.k))), joint="curve")

    def strand(self, ctrl: Sequence[Point], w0: float, w1: float, bands: Sequence[tuple[RGB, float]],
               outline: RGB | None, bulge: float = 0.0) -> np.ndarray:
        """A tapered hair lock along a bezier, split lengthwise into coloured bands."""
        path = _bezier(ctrl)
        nrm = _normals(path)
        t = np.linspace(0.0, 1.0, len(path))[:, None]
        w = w0 + (w1 - w0) * t + bulge * np.sin(np.pi * t)
        total = sum(f for _, f in bands)
        edges = np.cumsum([0.0] + [f / total for _, f in bands])
        for (colour, _), a, b in zip(bands, edges[:-1], edges[1:]):
            left = path + nrm * w * (a - 0.5)
            right = path + nrm * w * (b - 0.5)
            self.poly(np.concatenate([left, right[::-1]]), colour)
        if outline is not None:
            left = path + nrm * w * -0.5
            right = path + nrm * w * 0.5
            ring = np.concatenate([left, right[::-1]])
            self.line(np.concatenate([ring, ring[:1]]), outline, self.lw / self.k)
        return path


# --------------------------------------------------------------------------
# cutie marks (centre c, radius r, unit coordinates)
# --------------------------------------------------------------------------


def _star(c: Point, r: float, points: int, inner: float, phase: float = -math.pi / 2) -> list[Point]:
    out = []
    for i in range(points * 2):
        rad = r if i % 2 == 0 else r * inner
        a = phase + i * math.pi / points
        out.append((c[0] + rad * math.cos(a), c[1] + rad * math.sin(a)))
    return out


def _mark_twilight(pen: _Pen, c: Point, r: float) -> None:
    pen.poly(_star(c, r * 0.9, 6, 0.5), _hex("E0359A"), _hex("8A1A5C"))
    white = (255, 255, 255)
    for ang in (-2.3, -0.7, 0.9, 2.4, 3.3):
        p = (c[0] + r * 1.05 * math.cos(ang), c[1] + r * 1.05 * math.sin(ang))
        pen.poly(_star(p, r * 0.28, 5, 0.45), white)


def _mark_rarity(pen: _Pen, c: Point, r: float) -> None:
    blue, dark = _hex("4FA8E0"), _hex("1F5C9C")
    for dx, dy in ((-0.5, 0.35), (0.5, 0.35), (0.0, -0.45)):
        x, y = c[0] + dx * r, c[1] + dy * r
        s = r * 0.48
        pen.poly([(x, y - s), (x + s * 0.65, y), (x, y + s), (x - s * 0.65, y)], blue, dark)


def _mark_rainbow(pen: _Pen, c: Point, r: float) -> None:
    white, grey = (255, 255, 255), (150, 170, 190)
    for dx, dy, rr in ((-0.45, 0.0, 0.42), (0.0, -0.25, 0.5), (0.45, 0.0, 0.42), (0.0, 0.15, 0.4)):
        pen.ellipse((c[0] + dx * r, c[1] + dy * r - 0.3 * r), rr * r, rr * r * 0.85, white, grey)
    # Lightning bolt: three parallel zigzags in red, yellow, blue.
    for i, colour in enumerate((_hex("EE4144"), _hex("FDD835"), _hex("1E98D3"))):
        off = (i - 1) * 0.16 * r
        pts = [(c[0] + off + 0.05 * r, c[1] - 0.05 * r), (c[0] + off - 0.15 * r, c[1] + 0.45 * r),
               (c[0] + off + 0.15 * r, c[1] + 0.45 * r), (c[0] + off - 0.1 * r, c[1] + 1.0 * r)]
        pen.line(pts, colour, 0.14 * r)


def _mark_applejack(pen: _Pen, c: Point, r: float) -> None:
    red, dark, leaf = _hex("E0342C"), _hex("8E1A16"), _hex("4CAF3C")
    for dx, dy in ((-0.5, 0.35), (0.5, 0.35), (0.0, -0.42)):
        x, y = c[0] + dx * r, c[1] + dy * r
        pen.ellipse((x, y), r * 0.42, r * 0.38, red, dark)
        pen.ellipse((x + r * 0.15, y - r * 0.42), r * 0.14, r * 0.08, leaf)


def _mark_pinkie(pen: _Pen, c: Point, r: float) -> None:
    string = (90, 90, 90)
    for dx, dy, colour in ((-0.55, -0.25, _hex("47A8E5")), (0.55, -0.25, _hex("47A8E5")),
                           (0.0, -0.5, _hex("FBE04A"))):
        x, y = c[0] + dx * r, c[1] + dy * r
        pen.line([(x, y + 0.35 * r), (c[0], c[1] + 0.95 * r)], string, 0.05 * r)
        pen.ellipse((x, y), r * 0.33, r * 0.42, colour, _shade(colour, 0.6))


def _mark_fluttershy(pen: _Pen, c: Point, r: float) -> None:
    pink, dark, body = _hex("F06BA8"), _hex("9C2F66"), _hex("3AA6A6")
    for dx, dy in ((-0.5, 0.4), (0.5, 0.4), (0.0, -0.4)):
        x, y = c[0] + dx * r, c[1] + dy * r
        s = r * 0.4
        for sx in (-1, 1):
            pen.ellipse((x + sx * s * 0.55, y - s * 0.3), s * 0.5, s * 0.45, pink, dark)
            pen.ellipse((x + sx * s * 0.4, y + s * 0.4), s * 0.35, s * 0.3, pink, dark)
        pen.line([(x, y - s * 0.7), (x, y + s * 0.7)], body, 0.08 * r)


_MARKS: dict[str, Callable[[_Pen, Point, float], None]] = {
    "Applejack": _mark_applejack,
    "Fluttershy": _mark_fluttershy,
    "Pinkie Pie": _mark_pinkie,
    "Rainbow Dash": _mark_rainbow,
    "Rarity": _mark_rarity,
    "Twilight Sparkle": _mark_twilight,
}


# --------------------------------------------------------------------------
# the pony
# --------------------------------------------------------------------------


def _curl(pen: _Pen, c: Point, r: float, colour: RGB, outline: RGB) -> None:
    pen.ellipse(c, r, r, colour, outline)
    spiral = [(c[0] + r * (0.75 - 0.1 * a) * math.cos(a), c[1] + r * (0.75 - 0.1 * a) * math.sin(a))
              for a in np.linspace(0.0, 5.5, 14)]
    pen.line(spiral, outline, pen.lw / pen.k)


def _puffs(pen: _Pen, path: np.ndarray, rng: np.random.Generator, r: float, colour: RGB, outline: RGB) -> None:
    for x, y in path[::2]:
        for _ in range(2):
            rr = r * rng.uniform(0.6, 1.1)
            pen.ellipse((x + rng.normal(0, r * 0.35), y + rng.normal(0, r * 0.35)), rr, rr, colour, outline)


def _hair(pen: _Pen, look: _Look, ctrl: Sequence[Point], w0: float, w1: float,
          rng: np.random.Generator, bulge: float = 0.0) -> None:
    """Draw mane or tail in the pony's style along a bezier."""
    base = look.mane[0][0]
    dark = _shade(base, 0.6)
    if look.style == "poofy":
        path = _bezier(ctrl)
        _puffs(pen, path, rng, (w0 + w1) * 0.45 + bulge * 0.3, base, dark)
        return
    path = pen.strand(ctrl, w0, w1, look.mane, dark, bulge=bulge)
    if look.style == "curly":
        end = path[-1]
        _curl(pen, (float(end[0]), float(end[1])), max(w0, w1) * 0.55 + bulge * 0.3, base, dark)


def _render_pony(name: str, rng: np.random.Generator, px: int) -> Image.Image:
    """One pony on a transparent px-by-px layer, facing right, before pose transforms."""
    look = _LOOKS[name]
    layer = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    pen = _Pen(draw, px)

    body = look.body
    line = _shade(body, 0.62)
    far = _shade(body, 0.85)
    hoof = _shade(body, 0.72)

    body_len = rng.uniform(0.9, 1.08)
    leg_len = rng.uniform(0.9, 1.1)
    tilt = rng.uniform(-0.28, 0.22)  # head tilt (radians), looking up or down
    bc = (0.44, 0.56)
    brx, bry = 0.21 * body_len, 0.13

    def leg(x: float, swing: float, colour: RGB) -> None:
        top = (x, bc[1] + 0.05)
        length = 0.29 * leg_len
        w = 0.032
        pts = [(x - w, top[1]), (x + w, top[1]), (x + w * 0.95, top[1] + length), (x - w * 0.95, top[1] + length)]
        pts = [_rot(p, top, swing) for p in pts]
        pen.poly(pts, colour, line)
        hx, hy = _rot((x, top[1] + length * 0.93), top, swing)
        pen.ellipse((hx, hy), w * 1.05, 0.03, hoof, line)

    gait = rng.uniform(-0.35, 0.35)
    back_x, front_x = bc[0] - brx * 0.62, bc[0] + brx * 0.62

    # Tail first: it hangs behind the body.
    tail_root = (bc[0] - brx * 0.92, bc[1] - 0.07)
    sway = rng.uniform(-0.08, 0.1)
    tail_len = 0.42 if look.style == "long" else 0.34
    if look.style == "ponytail":
        tail_ctrl = [tail_root, (tail_root[0] - 0.1, tail_root[1] + 0.0),
                     (tail_root[0] - 0.14 + sway, tail_root[1] + 0.18), (tail_root[0] - 0.08 + sway, tail_root[1] + 0.3)]
        _hair(pen, look, tail_ctrl, 0.04, 0.1, rng, bulge=0.02)
        tie = _bezier(tail_ctrl)[3]
        pen.ellipse((float(tie[0]), float(tie[1])), 0.03, 0.03, _hex("D8302A"), _hex("7A1512"))
    else:
        tail_ctrl = [tail_root, (tail_root[0] - 0.14, tail_root[1] - 0.02),
                     (tail_root[0] - 0.16 + sway, tail_root[1] + tail_len * 0.6),
                     (tail_root[0] - 0.06 + sway * 1.5, tail_root[1] + tail_len)]
        _hair(pen, look, tail_ctrl, 0.05, 0.035, rng, bulge=0.05)

    # Far-side legs sit behind the body, slightly darker, as in the cartoons.
    leg(back_x + 0.05, -gait * 0.6, far)
    leg(front_x + 0.05, gait * 0.6, far)

    if look.wings and rng.random() < 0.5:
        _wing(pen, body, line, bc, brx, spread=True, rng=rng, far=True)

    # Near legs go under the body so their tops merge into it without a seam.
    leg(back_x, gait, body)
    leg(front_x, -gait, body)
    pen.ellipse(bc, brx, bry, body, line)

    # Neck and head pivot together around the shoulder for the head tilt.
    pivot = (bc[0] + brx * 0.7, bc[1] - 0.06)
    hc0 = (bc[0] + brx * 0.95 + 0.09, bc[1] - 0.28)

    def hp(dx: float, dy: float) -> Point:
        return _rot((hc0[0] + dx, hc0[1] + dy), pivot, tilt)

    hc = hp(0.0, 0.0)
    neck = [(pivot[0] - 0.1, pivot[1] - 0.03), (pivot[0] + 0.05, pivot[1] + 0.07), hp(0.05, 0.07), hp(-0.07, 0.0)]
    pen.poly(neck, body, None)
    pen.line([neck[0], neck[3]], line, pen.lw / pen.k)
    pen.line([neck[1], neck[2]], line, pen.lw / pen.k)

    # Mane down the back of the neck (behind the head).
    mane_ctrl = [hp(-0.02, -0.11), hp(-0.17, -0.07), hp(-0.13, 0.12), (pivot[0] - 0.12, pivot[1] + 0.01)]
    if look.style == "long":
        mane_ctrl = [hp(-0.02, -0.11), hp(-0.2, -0.06), hp(-0.14, 0.2), (pivot[0] - 0.04, pivot[1] + 0.12)]
        _hair(pen, look, mane_ctrl, 0.1, 0.05, rng, bulge=0.04)
    elif look.style == "ponytail":
        _hair(pen, look, [hp(-0.02, -0.11), hp(-0.14, -0.08), hp(-0.15, 0.0), hp(-0.14, 0.06)], 0.08, 0.05, rng)
    else:
        _hair(pen, look, mane_ctrl, 0.09, 0.04, rng, bulge=0.03)

    # Head, snout, ear.
    pen.poly([hp(-0.06, -0.08), hp(-0.03, -0.19), hp(0.015, -0.095)], body, line)
    pen.ellipse(hc, 0.125, 0.115, body, line)
    snout = hp(0.095, 0.055)
    pen.ellipse(snout, 0.07, 0.055, body, line)
    pen.ellipse(hp(0.0, 0.0), 0.115, 0.105, body, None)  # hide the snout's seam
    pen.ellipse(hp(0.135, 0.04), 0.008, 0.008, line)
    pen.line([hp(0.07, 0.085), hp(0.1, 0.09), hp(0.125, 0.08)], line, 0.008)

    if look.horn:
        base_l, base_r, tip = hp(0.0, -0.105), hp(0.045, -0.095), hp(0.065, -0.27)
        pen.poly([base_l, tip, base_r], _shade(body, 0.95), line)
        for t in (0.3, 0.55):
            a = (base_l[0] + (tip[0] - base_l[0]) * t, base_l[1] + (tip[1] - base_l[1]) * t)
            b = (base_r[0] + (tip[0] - base_r[0]) * t, base_r[1] + (tip[1] - base_r[1]) * t)
            pen.line([a, b], line, 0.006)

    # Forelock over the forehead.
    if look.style == "poofy":
        _puffs(pen, _bezier([hp(-0.04, -0.12), hp(0.04, -0.16), hp(0.08, -0.07)], 6), rng, 0.04,
               look.mane[0][0], _shade(look.mane[0][0], 0.6))
    elif look.style == "curly":
        pen.strand([hp(-0.04, -0.11), hp(0.06, -0.16), hp(0.11, -0.08)], 0.07, 0.04, look.mane,
                   _shade(look.mane[0][0], 0.6))
        _curl(pen, hp(0.1, -0.07), 0.035, look.mane[0][0], _shade(look.mane[0][0], 0.6))
    else:
        pen.strand([hp(-0.04, -0.115), hp(0.05, -0.14), hp(0.085, -0.05)], 0.075, 0.02, look.mane,
                   _shade(look.mane[0][0], 0.6))

    # Big cartoon eye.
    ec = hp(0.045, 0.0)
    pen.ellipse(ec, 0.04, 0.055, (255, 255, 255), (40, 40, 40))
    pen.ellipse(hp(0.055, 0.008), 0.028, 0.042, look.eye, None)
    pen.ellipse(hp(0.058, 0.012), 0.014, 0.022, (20, 20, 30), None)
    pen.ellipse(hp(0.05, -0.015), 0.009, 0.011, (255, 255, 255), None)
    # Upper lid and lashes sweeping back: reads as friendly, not frowning.
    lid = [hp(0.045 + 0.04 * math.cos(a), 0.055 * math.sin(a)) for a in np.linspace(math.pi * 1.05, math.pi * 1.75, 6)]
    pen.line(lid, (30, 30, 30), 0.009)
    for dx, dy, ex, ey in ((0.008, -0.025, -0.012, -0.04), (0.017, -0.04, -0.0, -0.062)):
        pen.line([hp(dx, dy), hp(ex, ey)], (30, 30, 30), 0.007)

    if look.hat:
        crown = [hp(-0.1, -0.12), hp(-0.07, -0.23), hp(0.0, -0.2), hp(0.06, -0.24), hp(0.09, -0.12)]
        brown, dark = _hex("B0713F"), _hex("6A3E1C")
        pen.poly(crown, brown, dark)
        pen.line([hp(-0.09, -0.145), hp(0.085, -0.145)], dark, 0.02)
        brim = _bezier([hp(-0.2, -0.15), hp(-0.1, -0.085), hp(0.1, -0.085), hp(0.19, -0.15)], 10)
        lower = _bezier([hp(0.19, -0.15), hp(0.1, -0.06), hp(-0.1, -0.06), hp(-0.2, -0.15)], 10)
        pen.poly(np.concatenate([brim, lower]), brown, dark)

    if look.wings:
        _wing(pen, body, line, bc, brx, spread=rng.random() < 0.5, rng=rng, far=False)

    _MARKS[name](pen, (bc[0] - brx * 0.52, bc[1] + 0.0), 0.078)
    return layer


def _wing(pen: _Pen, body: RGB, line: RGB, bc: Point, brx: float, spread: bool,
          rng: np.random.Generator, far: bool) -> None:
    colour = _shade(body, 0.88) if far else body
    root = (bc[0] + brx * 0.2 + (0.04 if far else 0.0), bc[1] - 0.06)
    if spread:
        lift = rng.uniform(0.16, 0.28)
        tip = (root[0] - 0.12, root[1] - lift)
        pts = [root, (root[0] + 0.05, root[1] - lift * 0.6), (tip[0] + 0.06, tip[1] - 0.02), tip]
        feathers = 4
        for i in range(1, feathers + 1):
            t = i / feathers
            x = tip[0] + (root[0] - 0.1 - tip[0]) * t
            y = tip[1] + (root[1] - tip[1]) * t
            pts.append((x - 0.03, y + 0.005))
            pts.append((x, y + 0.03))
        pts.append((root[0] - 0.08, root[1] + 0.01))
    else:
        pts = [(root[0] + 0.05, root[1] - 0.02), (root[0] - 0.02, root[1] - 0.06),
               (root[0] - 0.13, root[1] - 0.03), (root[0] - 0.17, root[1] + 0.01),
               (root[0] - 0.12, root[1] + 0.015), (root[0] - 0.15, root[1] + 0.04),
               (root[0] - 0.09, root[1] + 0.045), (root[0] - 0.1, root[1] + 0.07),
               (root[0] + 0.0, root[1] + 0.06)]
    pen.poly(pts, colour, line)


# --------------------------------------------------------------------------
# scene: background, clutter, pose, lighting, camera
# --------------------------------------------------------------------------


def _rand_colour(rng: np.random.Generator) -> RGB:
    if rng.random() < 0.4:
        base = _PONY_PALETTE[int(rng.integers(len(_PONY_PALETTE)))]
        return tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in base)  # type: ignore[return-value]
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _jitter(colour: RGB, rng: np.random.Generator, sd: float = 25.0) -> RGB:
    return tuple(int(np.clip(c + rng.normal(0, sd), 0, 255)) for c in colour)  # type: ignore[return-value]


def _background(rng: np.random.Generator, s: int) -> Image.Image:
    kind = rng.integers(3)
    if kind == 0:  # sky and grass
        top, mid = _jitter(_hex("6FB7F0"), rng, 40), _jitter(_hex("D8ECFA"), rng, 30)
        lo_a, lo_b = _jitter(_hex("7CC45A"), rng, 45), _jitter(_hex("3F8A30"), rng, 40)
    elif kind == 1:  # indoors: wall and floor
        top, mid = _jitter(_rand_colour(rng), rng, 20), _jitter(_rand_colour(rng), rng, 20)
        lo_a, lo_b = _jitter(_hex("A87A4E"), rng, 50), _jitter(_hex("6B4A2B"), rng, 40)
    else:  # anything goes
        top, mid, lo_a, lo_b = (_rand_colour(rng) for _ in range(4))
    horizon = rng.uniform(0.45, 0.8)
    y = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None]
    up = np.clip(y / horizon, 0, 1)
    down = np.clip((y - horizon) / (1 - horizon), 0, 1)
    sky = np.asarray(top, np.float32) * (1 - up) + np.asarray(mid, np.float32) * up
    ground = np.asarray(lo_a, np.float32) * (1 - down) + np.asarray(lo_b, np.float32) * down
    col = np.where(y < horizon, sky, ground)
    arr = np.broadcast_to(col[:, None, :], (s, s, 3))
    return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8), "RGB")


def _clutter_item(draw: ImageDraw.ImageDraw, rng: np.random.Generator, s: int, big: bool = False) -> None:
    kind = int(rng.integers(6))
    x, y = rng.uniform(-0.1, 1.1) * s, rng.uniform(-0.1, 1.1) * s
    r = rng.uniform(0.04, 0.16 if not big else 0.28) * s
    colour = _rand_colour(rng)
    outline = _shade(colour, 0.6) if rng.random() < 0.5 else None
    lw = max(1, s // 100)
    if kind == 0:
        draw.ellipse((x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r), fill=colour, outline=outline, width=lw)
    elif kind == 1:
        draw.rectangle((x - r, y - r * rng.uniform(0.3, 2), x + r * rng.uniform(0.3, 2), y + r),
                       fill=colour, outline=outline, width=lw)
    elif kind == 2:
        x2, y2 = rng.uniform(0, 1) * s, rng.uniform(0, 1) * s
        draw.line((x, y, x2, y2), fill=colour, width=max(1, int(r * rng.uniform(0.05, 0.3))))
    elif kind == 3:  # tree
        trunk = _jitter(_hex("7A5230"), rng, 25)
        draw.rectangle((x - r * 0.15, y, x + r * 0.15, y + r * 2.2), fill=trunk)
        leaves = _jitter(_hex("3E9A3A"), rng, 50) if rng.random() < 0.6 else colour
        for dx, dy in ((0, -0.6), (-0.5, -0.1), (0.5, -0.1), (0, 0.1)):
            draw.ellipse((x + dx * r - r * 0.7, y + dy * r - r * 0.7, x + dx * r + r * 0.7, y + dy * r + r * 0.7),
                         fill=leaves)
    elif kind == 4:  # flower
        rr = r * 0.35
        draw.line((x, y, x, y + r * 1.8), fill=_jitter(_hex("3E8E3A"), rng), width=max(1, int(rr * 0.3)))
        for i in range(5):
            a = i * 2 * math.pi / 5
            px, py = x + rr * math.cos(a), y + rr * math.sin(a)
            draw.ellipse((px - rr * 0.7, py - rr * 0.7, px + rr * 0.7, py + rr * 0.7), fill=colour)
        draw.ellipse((x - rr * 0.5, y - rr * 0.5, x + rr * 0.5, y + rr * 0.5), fill=_rand_colour(rng))
    else:  # polygon blob
        n = int(rng.integers(3, 7))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        pts = [(x + r * rng.uniform(0.5, 1.3) * math.cos(a), y + r * rng.uniform(0.5, 1.3) * math.sin(a)) for a in ang]
        draw.polygon(pts, fill=colour, outline=outline)


def _apply_camera(img: Image.Image, rng: np.random.Generator, pony_mask: np.ndarray | None = None) -> Image.Image:
    """Lighting, colour cast, blur and sensor noise, at final resolution.

    The cast is split in two: a mild one over the whole picture (the light
    source) and a stronger one on the background only (coloured walls, sunset
    skies). The pony's own colours therefore stay recognisable, while the
    image's average colour still wanders far from the pony's.
    """
    if rng.random() < 0.1:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    a = np.asarray(img, dtype=np.float32) / 255.0
    # Saturation: drift towards grey.
    grey = a.mean(axis=2, keepdims=True)
    a = grey + (a - grey) * rng.uniform(0.8, 1.15)
    # Contrast and brightness.
    a = (a - 0.5) * rng.uniform(0.8, 1.1) + 0.5
    a = a * rng.uniform(0.85, 1.15)
    # Mild global cast: warm/cool temperature plus a faint random tint.
    temp = rng.uniform(-1.0, 1.0)
    gains = np.array([1 + 0.12 * temp, 1 + rng.uniform(-0.05, 0.05), 1 - 0.12 * temp], np.float32)
    a = a * gains
    tint = rng.uniform(0, 1, 3).astype(np.float32)
    k = rng.uniform(0.0, 0.12)
    a = a * (1 - k) + tint * k
    # Stronger cast on the background only.
    bg_tint = rng.uniform(0, 1, 3).astype(np.float32)
    bg_k = np.float32(rng.uniform(0.0, 0.35))
    if pony_mask is not None:
        w = (1.0 - pony_mask)[..., None] * bg_k
        a = a * (1 - w) + bg_tint * w
    a += rng.standard_normal(a.shape, dtype=np.float32) * np.float32(rng.uniform(0.008, 0.03))
    return Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def draw_pony(name: str, rng: np.random.Generator, size: int = 150) -> Image.Image:
    """Draw one ``size`` x ``size`` RGB picture of the pony ``name`` in a random scene.

    All randomness comes from ``rng``, so a generator seeded the same way gives
    the same picture.
    """
    if name not in _LOOKS:
        raise ValueError(f"unknown pony {name!r}; expected one of {', '.join(PONIES)}")
    if int(size) < _MIN_SIZE:
        raise ValueError(f"size must be at least {_MIN_SIZE} pixels, got {size}")
    size = int(size)
    s = size * _SUPERSAMPLE

    canvas = _background(rng, s)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 8))):
        _clutter_item(draw, rng, s)

    # The drawn pony spans about 0.87 of its layer, so scale the layer so the
    # pony itself covers mostly 50-90% of the picture width (now and then 40%).
    frac = rng.uniform(0.5, 0.9) if rng.random() < 0.9 else rng.uniform(0.4, 0.5)
    px = max(8, int(round(frac * s / 0.87)))
    pony = _render_pony(name, rng, px)
    if rng.random() < 0.5:
        pony = pony.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pony = pony.rotate(float(rng.uniform(-14, 14)), resample=Image.Resampling.BILINEAR, expand=True)

    w, h = pony.size
    if rng.random() < 0.08:  # let up to about a fifth of the pony leave the frame
        cx = rng.uniform(min(w * 0.3, s / 2), max(s - w * 0.3, s / 2))
        cy = rng.uniform(min(h * 0.35, s / 2), max(s - h * 0.35, s / 2))
    else:
        cx = rng.uniform(min(w / 2, s / 2), max(s - w / 2, s / 2))
        cy = rng.uniform(min(h / 2, s / 2), max(s - h / 2, s / 2))
    corner = (int(round(cx - w / 2)), int(round(cy - h / 2)))
    canvas.paste(pony, corner, pony)
    mask = Image.new("L", (s, s), 0)
    mask.paste(pony.getchannel("A"), corner)

    if rng.random() < 0.2:  # occluder in front of the pony
        odraw = ImageDraw.Draw(canvas)
        r = rng.uniform(0.06, 0.14) * px
        ox, oy = cx + rng.uniform(-0.4, 0.4) * w, cy + rng.uniform(-0.4, 0.4) * h
        colour = _rand_colour(rng)
        if rng.random() < 0.5:
            odraw.ellipse((ox - r, oy - r, ox + r, oy + r), fill=colour, outline=_shade(colour, 0.6),
                          width=max(1, s // 120))
        else:
            odraw.rectangle((ox - r * 0.4, oy - r * 2, ox + r * 0.4, oy + r * 2), fill=colour,
                            outline=_shade(colour, 0.6), width=max(1, s // 120))

    img = canvas.resize((size, size), Image.Resampling.LANCZOS)
    pony_mask = np.asarray(mask.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return _apply_camera(img, rng, pony_mask)


# --------------------------------------------------------------------------
# writing a dataset to disk
# --------------------------------------------------------------------------


def _publish(tmp: str, final: Path) -> bool:
    """Give the finished temp file its final name without ever replacing a file.

    Returns False when ``final`` is taken. A hard link is atomic and refuses
    to clobber, unlike a plain rename on POSIX.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links (FAT, some network shares).
        if os.name == "nt":
            try:
                os.rename(tmp, final)  # refuses to overwrite on Windows
            except FileExistsError:
                return False
            return True
        if os.path.lexists(final):
            return False
        os.replace(tmp, final)
        return True
    os.unlink(tmp)
    return True


def generate_demo_dataset(
    root: str | os.PathLike,
    per_class: int = 60,
    seed: int = 0,
    size: int = 150,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write ``per_class`` PNGs for each pony under ``root/<Pony Name>/``.

    Files are named ``<pony-name>_0001.png`` and up. Existing files are never
    overwritten or deleted: a taken name is skipped for the next free number,
    so running twice adds pictures rather than replacing them. Image ``i`` of
    a class depends only on ``(seed, class, i)``, not on ``per_class``.

    ``progress(done, total)`` is called after each image. Returns the number
    of images written per class.
    """
    if isinstance(per_class, bool) or int(per_class) != per_class or per_class < 0:
        raise ValueError(f"per_class must be a non-negative integer, got {per_class!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if int(size) != size or size < _MIN_SIZE:
        raise ValueError(f"size must be an integer of at least {_MIN_SIZE}, got {size!r}")
    per_class, seed, size = int(per_class), int(seed), int(size)

    root = Path(root)
    total = per_class * len(PONIES)
    done = 0
    counts: dict[str, int] = {}
    for class_index, name in enumerate(PONIES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        slug = _slug(name)
        number = 1
        for image_index in range(per_class):
            rng = np.random.default_rng([seed, class_index, image_index])
            img = draw_pony(name, rng, size)
            fd, tmp = tempfile.mkstemp(prefix=f".{slug}_", suffix=".png.tmp", dir=folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    img.save(fh, format="PNG", optimize=False, compress_level=1)
                while True:
                    final = folder / f"{slug}_{number:04d}.png"
                    number += 1
                    if not os.path.lexists(final) and _publish(tmp, final):
                        break
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            done += 1
            if progress is not None:
                progress(done, total)
        counts[name] = per_class
    return counts
