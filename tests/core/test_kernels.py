"""The kernels playground: every table kernel, and random user kernels, give exactly what
scipy.ndimage.convolve gives on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from ponyclassifier.core.kernels import KERNELS, MODES, apply_kernel, parse_kernel

ndimage = pytest.importorskip("scipy.ndimage")
skdata = pytest.importorskip("skimage.data")


def reference(image: np.ndarray, kernel: np.ndarray, mode: str = "reflect") -> np.ndarray:
    f = image.astype(np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if f.ndim == 3:
        out = np.stack([ndimage.convolve(f[..., c], k, mode=mode) for c in range(f.shape[2])], -1)
    else:
        out = ndimage.convolve(f, k, mode=mode)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos():
    return {"camera": skdata.camera(), "astronaut": skdata.astronaut()}


def test_table_is_complete_and_classic():
    for name in ("identity", "edge detection 1", "edge detection 2", "edge detection 3", "sobel x", "sobel y",
                 "sharpen", "box blur", "gaussian blur 3x3", "gaussian blur 5x5", "unsharp masking 5x5"):
        assert name in KERNELS
    assert KERNELS["edge detection 3"][1, 1] == 8 and KERNELS["edge detection 3"].sum() == 0
    assert KERNELS["edge detection 2"][1, 1] == -4
    for name in ("box blur", "gaussian blur 3x3", "gaussian blur 5x5", "unsharp masking 5x5", "sharpen", "identity"):
        assert KERNELS[name].sum() == pytest.approx(1.0), name  # brightness-preserving
    assert KERNELS["unsharp masking 5x5"][2, 2] == pytest.approx(476 / 256)
    assert KERNELS["gaussian blur 5x5"].shape == (5, 5)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_matches_scipy(name, photos):
    for img in photos.values():
        out = apply_kernel(img, KERNELS[name])
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(out, reference(img, KERNELS[name]))


def test_identity_is_identity_and_blur_blurs(photos):
    cam = photos["camera"]
    np.testing.assert_array_equal(apply_kernel(cam, KERNELS["identity"]), cam)
    blurred = apply_kernel(cam, KERNELS["gaussian blur 5x5"]).astype(float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.8 * np.abs(np.diff(cam.astype(float), axis=1)).mean()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_random_user_kernels_match_scipy(mode, photos):
    rng = np.random.default_rng(42)
    for size in (1, 3, 5, 7):
        k = rng.normal(0, 1, (size, size)) / size
        for img in photos.values():
            crop = img[100:260, 50:230]  # border handling matters: use an off-centre crop
            np.testing.assert_array_equal(apply_kernel(crop, k, mode=mode), reference(crop, k, mode))


def test_asymmetric_kernel_is_a_convolution_not_a_correlation():
    img = np.zeros((7, 7), np.uint8)
    img[3, 3] = 100
    k = np.zeros((3, 3))
    k[0, 0] = 1.0
    k[2, 1] = 0.5
    out = apply_kernel(img, k)
    # A convolution's response to a single dot is the kernel itself (a correlation's is the
    # kernel flipped).
    np.testing.assert_array_equal(out[2:5, 2:5], (100 * k).astype(np.uint8))


def test_bad_kernels_and_parsing():
    for bad in (np.ones((2, 2)), np.ones((3, 5)), np.ones(3), [[1, np.nan, 0]] * 3):
        with pytest.raises(ValueError):
            apply_kernel(np.zeros((8, 8), np.uint8), bad)
    with pytest.raises(ValueError):
        apply_kernel(np.zeros((8, 8), np.uint8), KERNELS["identity"], mode="bogus")
    np.testing.assert_allclose(parse_kernel("1/9 1/9 1/9\n1/9,1/9,1/9; 1/9 1/9 1/9"), KERNELS["box blur"])
    for text in ("1 2\n3", "a b c", "1 2\n3 4", "1/0"):
        with pytest.raises(ValueError):
            parse_kernel(text)
