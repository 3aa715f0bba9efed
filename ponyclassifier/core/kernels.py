"""The classic image-processing kernels playground (the talks' table, after Wikipedia's
"Kernel (image processing)"): what a single hand-made convolution filter does to a photo,
before a network learns thousands of its own.

Pure numpy (no SciPy at run time). :func:`apply_kernel` is a true convolution (the kernel
is flipped), border handling follows ``scipy.ndimage.convolve``'s mode names, and the
result equals ``np.clip(np.rint(scipy.ndimage.convolve(image.astype(float), kernel,
mode=mode)), 0, 255)`` as uint8.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KERNELS", "KERNEL_HELP", "MODES", "apply_kernel", "parse_kernel"]


def _k(rows, scale: float = 1.0) -> np.ndarray:
    k = np.asarray(rows, dtype=np.float64) * scale
    k.setflags(write=False)
    return k


_GAUSS5 = [[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]
_UNSHARP5 = [[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, -476, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]

KERNELS: dict[str, np.ndarray] = {
    "identity": _k([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    # The three edge-detection kernels of the classic table.
    "edge detection 1": _k([[1, 0, -1], [0, 0, 0], [-1, 0, 1]]),
    "edge detection 2": _k([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "edge detection 3": _k([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    # Sobel as on Wikipedia's "Sobel operator" (applied by convolution: bright where
    # the image gets brighter to the right / downwards).
    "sobel x": _k([[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
    "sobel y": _k([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
    "sharpen": _k([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "box blur": _k(np.ones((3, 3)), 1 / 9),
    "gaussian blur 3x3": _k([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "gaussian blur 5x5": _k(_GAUSS5, 1 / 256),
    "unsharp masking 5x5": _k(_UNSHARP5, -1 / 256),
}

KERNEL_HELP: dict[str, str] = {
    "identity": "Leaves the image unchanged: only the centre pixel counts.",
    "edge detection 1": "Diagonal differences: lights up diagonal edges.",
    "edge detection 2": "Laplacian (4-neighbour): responds where brightness curves; flat areas go black.",
    "edge detection 3": "Laplacian (8-neighbour): all edges and fine texture, in every direction.",
    "sobel x": "Horizontal brightness change: vertical edges.",
    "sobel y": "Vertical brightness change: horizontal edges.",
    "sharpen": "The pixel minus its neighbours, added back: crisper edges.",
    "box blur": "Average of the 3x3 neighbourhood.",
    "gaussian blur 3x3": "Weighted average, the centre counting most: a soft blur.",
    "gaussian blur 5x5": "A wider Gaussian blur.",
    "unsharp masking 5x5": "Image plus (image minus its Gaussian blur): the photographer's sharpening.",
}

# scipy.ndimage mode name -> numpy.pad mode.
MODES: dict[str, str] = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap",
                         "constant": "constant"}


def _check_kernel(kernel) -> np.ndarray:
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ValueError(f"a kernel must be an odd square matrix (3x3, 5x5, ...), not shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError("the kernel contains a value that is not a finite number")
    return k


def parse_kernel(text: str) -> np.ndarray:
    """A kernel typed by a user: rows on lines (or separated by ';'), numbers by spaces or
    commas, fractions allowed ("1/9"). Raises ValueError with a readable message."""
    rows = [r for r in text.replace(";", "\n").splitlines() if r.strip()]
    values: list[list[float]] = []
    for r in rows:
        row = []
        for tok in r.replace(",", " ").split():
            try:
                if "/" in tok:
                    num, den = tok.split("/", 1)
                    row.append(float(num) / float(den))
                else:
                    row.append(float(tok))
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"{tok!r} is not a number") from None
        values.append(row)
    if not values or len({len(r) for r in values}) != 1:
        raise ValueError("every row of the kernel needs the same number of values")
    return _check_kernel(values)


def _convolve2d(plane: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    r = k.shape[0] // 2
    padded = np.pad(plane, r, mode=MODES[mode]) if r else plane
    h, w = plane.shape
    out = np.zeros((h, w), dtype=np.float64)
    n = k.shape[0]
    # Convolution: out[y, x] = sum k[i, j] * in[y + r - i, x + r - j].
    for i in range(n):
        for j in range(n):
            c = k[i, j]
            if c != 0.0:
                out += c * padded[n - 1 - i: n - 1 - i + h, n - 1 - j: n - 1 - j + w]
    return out


def apply_kernel(image: np.ndarray, kernel, mode: str = "reflect") -> np.ndarray:
    """Convolve a uint8 image (H, W) or (H, W, C) with an odd square kernel, per channel.

    ``mode`` handles the border like ``scipy.ndimage.convolve``: 'reflect' (d c b a | a b
    c d), 'mirror' (d c b | a b c d), 'nearest', 'wrap' or 'constant' (zeros). The float
    result is rounded and clipped to 0..255.
    """
    if mode not in MODES:
        raise ValueError(f"unknown border mode {mode!r} (choose from {', '.join(MODES)})")
    k = _check_kernel(kernel)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (H, W, C), not shape {img.shape}")
    f = img.astype(np.float64)
    if f.ndim == 2:
        out = _convolve2d(f, k, mode)
    else:
        out = np.stack([_convolve2d(f[..., c], k, mode) for c in range(f.shape[2])], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
