"""Exact duplicates, near duplicates and reverse image search on real photos (scikit-image's
bundled sample pictures), with the pretrained EfficientNet-Lite0 features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ponyclassifier.core.similar import FeatureIndex, find_exact_duplicates, pixel_sha256

skdata = pytest.importorskip("skimage.data")

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse", "clock", "brick")


def photo(name: str) -> Image.Image:
    a = getattr(skdata, name)()
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return Image.fromarray(a).convert("RGB")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """The originals plus altered copies: resized, slightly cropped + JPEG, re-saved PNG."""
    d = tmp_path_factory.mktemp("photos")
    out: dict[str, Path] = {}
    for n in PHOTOS:
        out[n] = d / f"{n}.png"
        photo(n).save(out[n])
    cat = photo("chelsea")
    w, h = cat.size
    cat.resize((w // 2, h // 2), Image.LANCZOS).save(out.setdefault("cat_small", d / "cat_small.png"))
    cat.crop((10, 8, w - 12, h - 6)).save(out.setdefault("cat_cropped", d / "cat_cropped.jpg"), quality=70)
    cat.save(out.setdefault("cat_q40", d / "cat_q40.jpg"), quality=40)
    cat.save(out.setdefault("cat_resaved", d / "cat_resaved.png"), compress_level=1)  # same pixels
    cat.crop((100, 20, 300, 220)).save(out.setdefault("cat_face", d / "cat_face.png"))
    coffee = photo("coffee")
    cw, ch = coffee.size
    coffee.crop((6, 6, cw - 6, ch - 6)).resize((cw * 3 // 4, ch * 3 // 4)).save(
        out.setdefault("coffee_copy", d / "coffee_copy.jpg"), quality=75)
    (d / "copy_of_rocket.png").write_bytes(out["rocket"].read_bytes())
    out["rocket_copy"] = d / "copy_of_rocket.png"
    (d / "broken.png").write_bytes(out["clock"].read_bytes()[:500])
    out["broken"] = d / "broken.png"
    (d / "notes.png").write_text("not a picture")
    out["text"] = d / "notes.png"
    return out


@pytest.fixture(scope="module")
def index(photos) -> FeatureIndex:
    paths = [str(p) for k, p in photos.items() if k != "cat_face"]
    return FeatureIndex.build(paths, batch_size=5)


def test_exact_duplicates_by_bytes_and_by_pixels(photos):
    groups = find_exact_duplicates([photos[k] for k in photos])
    as_sets = [set(map(Path, g)) for g in groups]
    assert {photos["rocket"], photos["rocket_copy"]} in as_sets
    assert {photos["chelsea"], photos["cat_resaved"]} in as_sets  # different bytes, same pixels
    assert photos["chelsea"].read_bytes() != photos["cat_resaved"].read_bytes()
    assert len(groups) == 2  # the JPEG / resized copies are near, not exact, duplicates
    bytes_only = find_exact_duplicates([photos[k] for k in photos], pixels=False)
    assert [set(map(Path, g)) for g in bytes_only] == [{photos["rocket"], photos["rocket_copy"]}]


def test_exact_duplicates_progress_and_stop(photos):
    seen = []
    paths = list(photos.values())
    find_exact_duplicates(paths, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(paths), len(paths))
    assert find_exact_duplicates(paths, should_stop=lambda: True) == []


def test_pixel_hash_ignores_file_format(photos, tmp_path):
    bmp = tmp_path / "cat.bmp"
    Image.open(photos["chelsea"]).save(bmp)
    assert pixel_sha256(bmp) == pixel_sha256(photos["chelsea"])
    assert pixel_sha256(photos["cat_q40"]) != pixel_sha256(photos["chelsea"])


def test_index_features_are_unit_vectors_and_bad_files_are_skipped(index, photos):
    assert index.complete
    assert index.features.shape == (len(index.paths), 1280)
    assert torch.allclose(index.features.norm(dim=1), torch.ones(len(index)), atol=1e-4)
    skipped = dict(index.skipped)
    assert set(skipped) == {str(photos["broken"]), str(photos["text"])}
    assert "damaged" in skipped[str(photos["broken"])] and "unsupported" in skipped[str(photos["text"])]


def test_altered_copies_are_near_duplicates_and_different_photos_are_not(index, photos):
    pairs = index.near_duplicates(0.95)
    found = {frozenset((Path(a).name, Path(b).name)) for a, b, _ in pairs}
    for copy in ("cat_small", "cat_cropped", "cat_q40", "cat_resaved"):
        assert frozenset(("chelsea.png", photos[copy].name)) in found, copy
    assert frozenset(("coffee.png", "coffee_copy.jpg")) in found
    assert frozenset(("rocket.png", "copy_of_rocket.png")) in found
    # every pair is the cat, the coffee cup or the rocket with its own copies: no cross-photo pair
    family = {"chelsea": "cat", "cat": "cat", "coffee": "coffee", "rocket": "rocket", "copy": "rocket"}
    for a, b, s in pairs:
        fa, fb = (family[Path(x).stem.split("_")[0]] for x in (a, b))
        assert fa == fb, (a, b, s)
        assert 0.95 <= s <= 1.0001
    assert [s for _, _, s in pairs] == sorted((s for _, _, s in pairs), reverse=True)
    # the most similar two different photos stay far below the threshold
    originals = [index.paths.index(str(photos[n])) for n in PHOTOS]
    f = index.features[originals]
    sims = f @ f.T - 2 * torch.eye(len(originals))
    assert sims.max() < 0.8


def test_most_similar_of_a_cat_crop_is_the_cat(index, photos):
    results = index.most_similar(photos["cat_face"], k=5)  # not in the index: embedded on the fly
    assert len(results) == 5
    cats = {str(photos[k]) for k in ("chelsea", "cat_small", "cat_cropped", "cat_q40", "cat_resaved")}
    assert set(p for p, _ in results) == cats
    assert results[0][1] >= results[-1][1]
    # the same query as a PIL image and as a feature vector
    pil = index.most_similar(Image.open(photos["cat_face"]), k=1)
    assert pil[0][0] in cats
    vec = index.feature(photos["cat_face"])
    assert index.most_similar(vec, k=1)[0][0] == pil[0][0]


def test_most_similar_leaves_the_query_out(index, photos):
    res = index.most_similar(str(photos["coffee"]), k=3)
    assert str(photos["coffee"]) not in [p for p, _ in res]
    assert res[0][0] == str(photos["coffee_copy"])
    assert len(index.most_similar(str(photos["coffee"]), k=1000)) == len(index) - 1


def test_build_stops_early_and_reports_progress(photos):
    calls = []
    paths = [str(p) for p in photos.values()]
    idx = FeatureIndex.build(paths, progress=lambda d, t: calls.append((d, t)),
                             should_stop=lambda: len(calls) >= 1, batch_size=4)
    assert not idx.complete
    assert len(idx) == 4 and calls == [(4, len(paths))]
    empty = FeatureIndex.build([])
    assert len(empty) == 0 and empty.near_duplicates() == [] and empty.most_similar(paths[0]) == []
