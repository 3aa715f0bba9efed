"""Dataset map: penultimate features, 2-D projections and misfit detection."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core import embedding as EM
from ponyclassifier.core import models as M
from ponyclassifier.core.images import ImageError


def smooth_sky(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A soft vertical gradient (sky-like)."""
    top, bottom = rng.integers(120, 256, 3), rng.integers(0, 120, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    a = top * (1 - t) + bottom * t + rng.normal(0, 2, (size, size, 3))
    return np.clip(np.broadcast_to(a, (size, size, 3)), 0, 255).astype(np.uint8)


def checkerboard(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A high-contrast black-and-white checkerboard (a texture)."""
    cell = int(rng.integers(4, 9))
    yy, xx = np.mgrid[:size, :size]
    board = (((yy // cell) + (xx // cell)) % 2).astype(float) * 255
    return np.clip(board[..., None] + rng.normal(0, 10, (size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def imagenet():
    from ponyclassifier.core.trained import TrainedModel

    return TrainedModel.imagenet()


@pytest.fixture(scope="module")
def two_kinds(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(1)
    paths, labels = [], []
    for i in range(8):
        for label, make in (("sky", smooth_sky), ("board", checkerboard)):
            p = root / f"{label}_{i}.png"
            Image.fromarray(make(rng)).save(p)
            paths.append(p)
            labels.append(label)
    return paths, np.array(labels)


def test_pca_separates_two_obviously_different_classes(imagenet, two_kinds):
    paths, labels = two_kinds
    seen = []
    feats = EM.embed_features(imagenet, paths, progress=lambda d, t: seen.append((d, t)), batch_size=6)
    assert feats.shape == (16, 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert seen == [(6, 16), (12, 16), (16, 16)]
    pts = EM.project_2d(feats, "pca")
    assert pts.shape == (16, 2)
    # Nearest class centre in the 2-D map gets every image right, and the classes sit
    # apart along the first component.
    centres = {c: pts[labels == c].mean(0) for c in ("sky", "board")}
    pred = np.array(["sky" if np.linalg.norm(p - centres["sky"]) < np.linalg.norm(p - centres["board"]) else "board"
                     for p in pts])
    assert (pred == labels).all()
    a, b = pts[labels == "sky", 0], pts[labels == "board", 0]
    assert a.max() < b.min() or b.max() < a.min()
    assert len(EM.misfits(pts, labels, k=3)) == 0
    # The same features from tensors of the shared preprocessing.
    from ponyclassifier.core.preprocess import load_input

    batch = torch.stack([load_input(p, 224) for p in paths[:4]])
    np.testing.assert_allclose(EM.embed_features(imagenet, batch), feats[:4], rtol=1e-4, atol=1e-4)


def test_pca_matches_a_reference_and_is_deterministic():
    rng = np.random.default_rng(0)
    f = rng.normal(0, 1, (50, 6)) * np.array([5, 2, 1, 0.5, 0.2, 0.1])
    pts = EM.project_2d(f)
    # Principal components of this data are the first two axes (variances 25 and 4).
    c = f - f.mean(0)
    for j in range(2):
        assert abs(np.corrcoef(pts[:, j], c[:, j])[0, 1]) > 0.98
    np.testing.assert_array_equal(pts, EM.project_2d(f[:, :]))
    sk = pytest.importorskip("sklearn.decomposition")
    ref = sk.PCA(2).fit_transform(f)
    np.testing.assert_allclose(np.abs(pts), np.abs(ref), rtol=1e-4, atol=1e-4)
    assert EM.project_2d(f[:1]).shape == (1, 2) and EM.project_2d(f[:, :1]).shape == (50, 2)
    with pytest.raises(ValueError):
        EM.project_2d(np.full((3, 2), np.nan))
    with pytest.raises(ValueError):
        EM.project_2d(f, "umap")


def test_tsne_and_missing_sklearn(monkeypatch):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.normal(0, 1, (15, 8)), rng.normal(8, 1, (15, 8))])
    pts = EM.project_2d(f, "tsne", seed=0)
    assert pts.shape == (30, 2) and np.isfinite(pts).all()
    labels = np.array([0] * 15 + [1] * 15)
    assert len(EM.misfits(pts, labels, k=5)) == 0
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # as if not installed
    with pytest.raises(RuntimeError, match="scikit-learn"):
        EM.project_2d(f, "tsne")


def test_misfits_finds_a_mislabelled_point():
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.normal(0, 1, (30, 2)), rng.normal(10, 1, (30, 2))])
    labels = np.array(["cat"] * 30 + ["dog"] * 30)
    assert list(EM.misfits(pts, labels)) == []
    labels[42] = "cat"  # a dog filed under cat
    labels[7] = "dog"  # and a cat under dog
    found = EM.misfits(pts, labels, k=5)
    assert set(found.tolist()) == {7, 42}
    frac = EM.neighbour_disagreement(pts, labels, k=5)
    assert frac[7] == 1.0 and frac[42] == 1.0 and np.median(frac) == 0.0
    with pytest.raises(ValueError):
        EM.misfits(pts, labels[:10])


def test_scratch_features_stop_and_bad_files(tmp_path):
    net = M.ScratchCNN(3, in_channels=1, image_size=32)
    imgs = torch.randint(0, 256, (10, 1, 32, 32), dtype=torch.uint8)
    f = EM.embed_features(net, imgs, batch_size=4)
    assert f.shape == (10, net.classifier[-1].in_features) == (10, 128)
    # The input to the last Linear: check against a manual forward.
    net.eval()
    with torch.no_grad():
        h = net.classifier[:-1](net.features(imgs.float() / 255))
    np.testing.assert_allclose(f, h.numpy(), rtol=1e-5, atol=1e-5)
    calls = iter([False, False, True])
    part = EM.embed_features(net, imgs, batch_size=4, should_stop=lambda: next(calls))
    assert part.shape == (8, 128)
    # Files: a broken one raises, or with errors='nan' keeps its row as NaN.
    net = M.ScratchCNN(3, in_channels=3, image_size=32)
    good = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not an image")

    class Small:  # TrainedModel-like: size and channels come from the model
        network, image_size, channels = net, 32, 3

    with pytest.raises(ImageError):
        EM.embed_features(Small(), [good, bad])
    out = EM.embed_features(Small(), [good, bad, good], errors="nan")
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all() and np.allclose(out[0], out[2])


def test_nearest_neighbours_matches_a_brute_force_sort():
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(60, 3))
    pts[5] = pts[4]  # duplicates: ties among the k nearest go in index order
    pts[6] = pts[4]
    nn = EM.nearest_neighbours(pts, 4)
    assert nn.shape == (60, 4)
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    # The same distances as a full sort (which of several points tied at the k-th place is
    # taken is not specified), nearest first.
    np.testing.assert_allclose(np.take_along_axis(d, nn, 1), np.sort(d, axis=1)[:, :4], atol=1e-9)
    untied = [i for i in range(60) if i not in (4, 5, 6) and not set(nn[i]) & {4, 5, 6}]
    np.testing.assert_array_equal(nn[untied], np.argsort(d, axis=1, kind="stable")[untied, :4])
    assert list(nn[4][:2]) == [5, 6] and 4 not in nn[4]
    np.testing.assert_array_equal(EM.nearest_neighbours(pts, 4, rows=[9, 2]), nn[[9, 2]])
    assert EM.nearest_neighbours(pts[:3], 10).shape == (3, 2)  # k capped at N - 1
    assert EM.nearest_neighbours(pts[:1], 3).shape == (1, 0)
    labels = ["a"] * 30 + ["b"] * 30
    expected = (np.asarray(labels)[nn] != np.asarray(labels)[:, None]).mean(1)
    np.testing.assert_allclose(EM.neighbour_disagreement(pts, labels, k=4), expected)
