"""Real-image benchmark datasets, written as class folders of PNG files.

Every dataset is written as ``ROOT/NAME/train/<class>/*.png`` plus a separate external
test folder ``ROOT/NAME/test/<class>/*.png``; nothing is downloaded, everything comes from
data that an installed package ships. Writing is deterministic (fixed seeds, fixed file
names) and skipped when the folder already holds the same dataset (``.dataset.json``).

Datasets:

``digits``
    scikit-learn's ``load_digits``: 1,797 real handwritten digits (8x8 grayscale, values
    0-16), 10 classes; stratified 75% train / 25% test. Each digit is scaled to 0-255,
    upscaled with a bicubic filter to 20x20 and centred in a black 28x28 frame, the layout
    of MNIST (digits fitted into a 20x20 box inside 28x28). Why upscaled rather than the
    native 8x8: the Keras MNIST convnet of the plain loop (three unpadded 3x3 convolutions
    and two 2x2 poolings) needs at least 18x18 inputs, and at 8x8 the product would pick
    its minimum size 16 and upsample anyway; at 28x28 both pipelines read the files at
    their real size and do no resizing, so the comparison is of the training loops, not
    of resize choices.
``animals``
    The ``animal-mnist`` PyPI package (MIT, version 0.4; ``pip install --no-deps
    animal-mnist``, its declared TensorFlow dependency is only needed by its own loader,
    which we do not import) bundles 10,000 28x28 grayscale animal silhouettes, 10 classes
    of 1,000 (bear ... zebra), in the MNIST format. Exact duplicate images (about 3%) are
    kept once, and images that occur under two labels are dropped, so no test image is
    also a training image; then a stratified 75% / 25% split. The package's files are
    pickles: they are read with an unpickler that only accepts numpy arrays.
    Optional: ``available("animals")`` is False when the package is not installed.
``faces``
    scikit-image's bundled ``lfw_subset()``: 200 real 25x25 grayscale photos, 100 faces
    (Labeled Faces in the Wild) and 100 non-faces; 2 classes, 70% train / 30% test.
``textures``
    scikit-image's bundled real photos ``brick``, ``grass`` and ``gravel`` (512x512
    grayscale): non-overlapping 32x32 crops on a grid, training crops from the left 60% of
    each photo and test crops from the right 40%, so no test pixel was ever seen in
    training; 100 train and 50 test crops per class, chosen at random among the grid cells.
``photos``
    Colour: ten real colour photos shipped by scikit-image (astronaut, chelsea the cat,
    coffee, rocket, Hubble deep field, retina, immunohistochemistry, motorcycle) and
    scikit-learn (``load_sample_images``: china, flower), one class each, each scaled so
    its shorter side is 448 px, and cut into a grid of 32x32 crops. Groups of 2x2 crops
    alternate like a checkerboard between training (80 per class, chosen at random) and
    test (40 per class), so no crop overlaps another and no test pixel was ever seen in
    training. Nearly flat crops (pixel
    standard deviation under 4 of 255: black sky, white background) carry no class and
    are left out. Which photo does this patch come from: colour, texture and parts of
    objects, at a small size.
``animals100``
    ``animals`` with only the first 100 training images of each class (1,000 in all) and the
    same full test set: about 100 images per class, where pretrained features should beat
    a network trained from scratch.

``quick=True`` writes small subsets (for smoke tests) to a separate folder.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import pickle
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DATASETS = ("digits", "animals", "faces", "textures", "photos", "animals100")
SEED = 0
FORMAT_VERSION = 2
ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
# Quick mode: at most this many train / test images per class.
QUICK_PER_CLASS = {"digits": (12, 4), "animals": (12, 4), "faces": (10, 5), "textures": (10, 5),
                   "photos": (10, 5), "animals100": (10, 5)}


class DatasetUnavailable(Exception):
    """The package that ships a dataset is not installed."""


@dataclass
class WrittenDataset:
    name: str
    train_dir: Path
    test_dir: Path
    classes: list[str]
    train_counts: dict[str, int]
    test_counts: dict[str, int]
    image_size: int
    grayscale: bool
    source: str

    @property
    def train_images(self) -> int:
        return sum(self.train_counts.values())

    @property
    def test_images(self) -> int:
        return sum(self.test_counts.values())

    def to_dict(self) -> dict:
        return {"name": self.name, "train_dir": str(self.train_dir), "test_dir": str(self.test_dir),
                "classes": self.classes, "train_images": self.train_images, "test_images": self.test_images,
                "train_counts": self.train_counts, "test_counts": self.test_counts,
                "image_size": self.image_size, "grayscale": self.grayscale, "source": self.source}


# ----------------------------------------------------------------------- loaders
# Each returns (images uint8 (N, H, W), labels int (N,), class names, source text).


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
    return np.sort(tr), np.sort(te)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = []
    for x in d.images:  # float 0..16
        a = np.clip(np.rint(x * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        small = Image.fromarray(a, "L").resize((20, 20), Image.BICUBIC)
        frame = Image.new("L", (28, 28), 0)
        frame.paste(small, (4, 4))
        imgs.append(np.asarray(frame))
    images, labels = np.stack(imgs), d.target.astype(np.int64)
    classes = [str(i) for i in range(10)]
    tr, te = _stratified_split(labels, 0.25, SEED)
    return images, labels, classes, tr, te, "scikit-learn load_digits (UCI optdigits, 8x8 -> 28x28 bicubic)"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except what a plain numpy array needs."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a data file")
        if module == "numpy.core.multiarray" and not hasattr(np, "core"):
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _animal_mnist_dir() -> Path | None:
    spec = importlib.util.find_spec("animal_mnist")  # the package's __init__ is empty; never imported here
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"
    return p if (p / "animal_data_version_3.gz").is_file() else None


def _animals():
    folder = _animal_mnist_dir()
    if folder is None:
        raise DatasetUnavailable("the 'animals' dataset needs the animal-mnist package: "
                                 "pip install --no-deps animal-mnist==0.4")
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as f:
        images = _NumpyOnlyUnpickler(io.BytesIO(f.read())).load()
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as f:
        labels = _NumpyOnlyUnpickler(io.BytesIO(f.read())).load()
    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DatasetUnavailable(f"animal-mnist: unexpected data shape {images.shape}")
    # Exact duplicates: keep the first copy; drop images seen under two different labels.
    first: dict[bytes, int] = {}
    label_sets: dict[bytes, set[int]] = {}
    for i, a in enumerate(images):
        k = hashlib.blake2b(a.tobytes(), digest_size=16).digest()
        first.setdefault(k, i)
        label_sets.setdefault(k, set()).add(int(labels[i]))
    keep = np.array(sorted(i for k, i in first.items() if len(label_sets[k]) == 1), dtype=np.int64)
    images, labels = images[keep], labels[keep]
    tr, te = _stratified_split(labels, 0.25, SEED)
    return images, labels, list(ANIMAL_CLASSES), tr, te, "animal-mnist 0.4 (PyPI), duplicates removed"


def _faces():
    from skimage.data import lfw_subset

    x = lfw_subset()  # (200, 25, 25) float in [0, 1]; first 100 faces, then 100 non-faces
    images = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    labels = np.array([0] * 100 + [1] * 100, dtype=np.int64)
    tr, te = _stratified_split(labels, 0.3, SEED)
    return images, labels, ["face", "non_face"], tr, te, "scikit-image lfw_subset (200 real 25x25 photos)"


def _textures(crop: int = 32, train_per_class: int = 100, test_per_class: int = 50):
    import skimage.data as skd

    rng = np.random.default_rng(SEED)
    names = ["brick", "grass", "gravel"]
    imgs, labels, is_test = [], [], []
    for c, name in enumerate(names):
        photo = np.asarray(getattr(skd, name)(), dtype=np.uint8)
        h, w = photo.shape
        cut = int(w * 0.6)
        for part, (x0, x1, n) in enumerate([(0, cut, train_per_class), (cut, w, test_per_class)]):
            cells = [(y, x) for y in range(0, h - crop + 1, crop) for x in range(x0, x1 - crop + 1, crop)]
            found = _pick_crops(photo, cells, n, crop, rng, f"{name}: only {len(cells)} crops of {crop}px fit")
            imgs += found
            labels += [c] * len(found)
            is_test += [part == 1] * len(found)
    images, labels, is_test = np.stack(imgs), np.array(labels, dtype=np.int64), np.array(is_test)
    return (images, labels, names, np.flatnonzero(~is_test), np.flatnonzero(is_test),
            "scikit-image brick/grass/gravel photos, 32x32 crops (train: left 60%, test: right 40%)")


def _pick_crops(photo: np.ndarray, cells: list[tuple[int, int]], n: int, crop: int, rng: np.random.Generator,
                too_few: str) -> list[np.ndarray]:
    """``n`` of the ``crop``-sized squares at ``cells`` (top-left corners) of ``photo``, drawn
    without replacement, in the cells' order; ``too_few`` starts the error when there are fewer."""
    if n > len(cells):
        raise ValueError(f"{too_few}, {n} asked for")
    picks = np.sort(rng.choice(len(cells), n, replace=False))
    return [photo[y:y + crop, x:x + crop] for y, x in (cells[j] for j in picks)]


def _photos(crop: int = 32, side: int = 448, train_per_class: int = 80, test_per_class: int = 40):
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    photos = {"astronaut": skd.astronaut(), "cat": skd.chelsea(), "coffee": skd.coffee(), "rocket": skd.rocket(),
              "hubble": skd.hubble_deep_field(), "retina": skd.retina(), "ihc": skd.immunohistochemistry(),
              "motorcycle": skd.stereo_motorcycle()[0]}
    sample = load_sample_images()
    for fname, img in zip(sample.filenames, sample.images):
        photos[Path(fname).stem] = img  # china, flower
    rng = np.random.default_rng(SEED)
    names = sorted(photos)
    imgs, labels, is_test = [], [], []
    for c, name in enumerate(names):
        im = Image.fromarray(np.asarray(photos[name], dtype=np.uint8)[..., :3], "RGB")
        scale = side / min(im.size)
        photo = np.asarray(im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS))
        h, w = photo.shape[:2]
        cells = [(y, x) for y in range(0, h - crop + 1, crop) for x in range(0, w - crop + 1, crop)
                 if photo[y:y + crop, x:x + crop].std() >= 4]
        for part, n in ((0, train_per_class), (1, test_per_class)):
            # 2x2 groups of cells alternate like a checkerboard between training and test
            mine = [(y, x) for y, x in cells if ((y // (2 * crop)) + (x // (2 * crop))) % 2 == part]
            found = _pick_crops(photo, mine, n, crop, rng, f"{name}: only {len(mine)} textured {crop}px crops")
            imgs += found
            labels += [c] * len(found)
            is_test += [part == 1] * len(found)
    images, labels, is_test = np.stack(imgs), np.array(labels, dtype=np.int64), np.array(is_test)
    return (images, labels, names, np.flatnonzero(~is_test), np.flatnonzero(is_test),
            "scikit-image and scikit-learn colour photos, 32x32 crops (train and test from alternate 64x64 blocks)")


def _animals100():
    """``animals`` with only the first 100 training images of each class (1,000), and the
    same full test set (2,429): the small-data regime where pretrained features should win."""
    images, labels, classes, tr, te, source = _animals()
    return images, labels, classes, _subset(labels, tr, 100), te, source + ", 100 train images per class"


_LOADERS = {"digits": _digits, "animals": _animals, "faces": _faces, "textures": _textures,
            "photos": _photos, "animals100": _animals100}


def available(name: str) -> bool:
    if name in ("animals", "animals100"):
        return _animal_mnist_dir() is not None
    return name in _LOADERS


# ------------------------------------------------------------------------ writer


def _subset(labels: np.ndarray, idx: np.ndarray, per_class: int) -> np.ndarray:
    out = []
    for c in np.unique(labels[idx]):
        out += list(idx[labels[idx] == c][:per_class])
    return np.array(sorted(out), dtype=np.int64)


def write_dataset(name: str, root: str | Path, *, quick: bool = False, force: bool = False) -> WrittenDataset:
    """Write dataset ``name`` under ``root/name`` (train/ and test/); reuse it if already there."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    base = Path(root) / name
    marker = base / ".dataset.json"
    params = {"name": name, "quick": quick, "seed": SEED, "format": FORMAT_VERSION}
    if marker.is_file() and not force:
        try:
            info = json.loads(marker.read_text())
            if info.get("params") == params:
                return _from_info(base, info)
        except (OSError, ValueError, KeyError):
            pass
    images, labels, classes, tr, te, source = _LOADERS[name]()
    if quick:
        n_tr, n_te = QUICK_PER_CLASS[name]
        tr, te = _subset(labels, tr, n_tr), _subset(labels, te, n_te)
    if base.exists():
        shutil.rmtree(base)
    counts = {}
    for part, idx in (("train", tr), ("test", te)):
        c_counts = {c: 0 for c in classes}
        for c in classes:
            (base / part / c).mkdir(parents=True, exist_ok=True)
        for i in idx:
            c = classes[labels[i]]
            Image.fromarray(images[i], "L" if images.ndim == 3 else "RGB").save(base / part / c / f"{name}_{i:05d}.png", optimize=False)
            c_counts[c] += 1
        counts[part] = c_counts
    info = {"params": params, "classes": classes, "train_counts": counts["train"], "test_counts": counts["test"],
            "image_size": int(images.shape[1]), "grayscale": images.ndim == 3, "source": source}
    marker.write_text(json.dumps(info, indent=1))
    return _from_info(base, info)


def _from_info(base: Path, info: dict) -> WrittenDataset:
    return WrittenDataset(info["params"]["name"], base / "train", base / "test", info["classes"],
                          info["train_counts"], info["test_counts"], info["image_size"], info["grayscale"],
                          info["source"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write the benchmark datasets as class folders of PNG files.")
    p.add_argument("names", nargs="*", default=["digits", "faces", "textures"], metavar="NAME", help=f"datasets to write ({', '.join(DATASETS)}); default digits faces textures")
    p.add_argument("--root", default="bench-out/data", help="where to write (default bench-out/data)")
    p.add_argument("--quick", action="store_true", help="small subsets for smoke tests")
    p.add_argument("--force", action="store_true", help="rewrite even if already there")
    a = p.parse_args(argv)
    for n in a.names:
        if n not in DATASETS:
            p.error(f"unknown dataset {n!r}; choose from {', '.join(DATASETS)}")
    for n in a.names:
        try:
            d = write_dataset(n, Path(a.root) / ("quick" if a.quick else "full"), quick=a.quick, force=a.force)
        except DatasetUnavailable as e:
            print(f"{n}: skipped: {e}", file=sys.stderr)
            continue
        print(f"{n}: {d.train_images} train in {d.train_dir}, {d.test_images} test in {d.test_dir} "
              f"({len(d.classes)} classes, {d.image_size}x{d.image_size}) from {d.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
