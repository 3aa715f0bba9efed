"""Pictures of what a layer holds, without Qt: filter grids, response-map grids, the
filter list a user types. Plain numpy; the Explain place shows what these return."""

from __future__ import annotations

import math
import re

import numpy as np

from ...core import explain as E

__all__ = ["GRID_BACKGROUND", "MAX_PATTERNS", "enlarge", "kernel_grid", "maps_grid", "parse_channels", "unit_map"]

MAX_PATTERNS = 64  # filters maximised in one go
GRID_BACKGROUND = (222, 222, 226)


def kernel_grid(filters: np.ndarray, cell: int = 30, gap: int = 3, cols: int | None = None,
                background: tuple[int, int, int] = GRID_BACKGROUND) -> tuple[np.ndarray, int, int]:
    """Filters (N, kh, kw, c) in [0, 1] -> one RGB uint8 grid, every kernel enlarged by a whole
    number (nearest neighbour) to about ``cell`` pixels, so the pixels of a 3x3 kernel show.

    Returns (grid, columns, enlargement)."""
    f = np.asarray(filters, dtype=np.float32)
    n, kh, kw, c = f.shape
    scale = max(1, cell // max(kh, kw))
    k = np.repeat(np.repeat(f, scale, 1), scale, 2)
    if c == 1:
        k = np.repeat(k, 3, -1)
    k = (np.clip(k[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n * 2))))
    rows = max(1, math.ceil(n / cols))
    ch, cw = kh * scale, kw * scale
    grid = np.empty((rows * ch + (rows + 1) * gap, cols * cw + (cols + 1) * gap, 3), np.uint8)
    grid[:] = background
    for i in range(n):
        r, cc = divmod(i, cols)
        y, x = gap + r * (ch + gap), gap + cc * (cw + gap)
        grid[y:y + ch, x:x + cw] = k[i]
    return grid, cols, scale


def maps_grid(maps: np.ndarray, normalise: str = "each", colormap: str = "inferno", cols: int | None = None,
              background: tuple[int, int, int] = GRID_BACKGROUND) -> tuple[np.ndarray, int, int]:
    """Response maps (C, h, w) -> an RGB grid (:func:`explain.tile_maps`, coloured), the gaps
    and the empty cells painted ``background``. Returns (grid, columns, gap)."""
    m = np.asarray(maps, dtype=np.float32)
    n, h, w = m.shape
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n * 1.5))))
    pad = max(1, round(max(h, w) / 16))
    g = E.tile_maps(m, cols=cols, pad=pad, normalise=normalise)
    rgb = E.apply_colormap(g.astype(np.float32) / 255.0, colormap)
    yy = (np.arange(g.shape[0]) % (h + pad)) >= h
    xx = (np.arange(g.shape[1]) % (w + pad)) >= w
    gaps = yy[:, None] | xx[None, :]
    rows = math.ceil(n / cols)
    for i in range(n, rows * cols):  # the empty cells after the last map
        r, c = divmod(i, cols)
        gaps[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = True
    rgb[gaps] = background
    return rgb, cols, pad


def unit_map(m: np.ndarray) -> np.ndarray:
    """A map stretched to [0, 1] (a flat map -> zeros)."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32))
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def parse_channels(text: str, count: int, limit: int = MAX_PATTERNS) -> list[int]:
    """"0-7, 12, 40" -> [0, ..., 7, 12, 40] for a layer of ``count`` filters; ValueError with a
    message for the user otherwise."""
    cleaned = re.sub(r"\s*[-–]\s*", "-", text.strip())
    out: list[int] = []
    for part in re.split(r"[,;\s]+", cleaned):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"“{part}” is not a filter number or a range like 0-7")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            a, b = b, a
        for ch in (a, b):
            if ch >= count:
                raise ValueError(f"filter {ch} does not exist: this layer has {count} filters (0–{count - 1})")
        for ch in range(a, b + 1):
            if ch not in out:
                out.append(ch)
                if len(out) > limit:
                    raise ValueError(f"at most {limit} filters at a time")
    if not out:
        raise ValueError("type the filters to show, e.g. 0-7 or 3, 12, 40")
    return out


def enlarge(img: np.ndarray, side: int) -> np.ndarray:
    """Small pictures enlarged by a whole number (nearest), so tiny patterns stay sharp."""
    k = max(1, side // max(img.shape[:2]))
    return np.repeat(np.repeat(img, k, 0), k, 1) if k > 1 else img
