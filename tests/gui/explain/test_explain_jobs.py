"""The Explain place's worker bodies and picture helpers run without Qt (as the core
does): its jobs, grids and the dataset map's work import and run with PySide6 and
pyqtgraph blocked. And the one decode of a chosen picture gives the model exactly the
input of the shared preprocessing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from ponyclassifier.core import explain as E
from ponyclassifier.core.preprocess import load_input

QT_BLOCKED = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from PIL import Image
from ponyclassifier.gui.explain import embedding_jobs, grids, jobs

class State:
    cancelled = False
    def check(self): pass
    def progress(self, done, total): pass
    def partial(self, value): pass

path = sys.argv[1]
Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
picture = jobs.decode_picture(path, 32, 3, State())
assert picture.rgb.shape == (40, 60, 3) and tuple(picture.input.shape) == (3, 32, 32)
grid, cols, scale = grids.kernel_grid(np.random.default_rng(1).random((4, 3, 3, 3)))
assert grid.dtype == np.uint8 and cols >= 1
feats = np.random.default_rng(2).random((12, 8)).astype(np.float32)
labels = ['a'] * 6 + ['b'] * 6
out = embedding_jobs.map_job(feats, labels, 'pca', 'features', None)(State())
assert out['points'].shape == (12, 2)
bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')]
assert not bad, bad
print('qt-free-ok')
"""


def test_worker_bodies_run_without_qt(tmp_path):
    r = subprocess.run([sys.executable, "-c", QT_BLOCKED, str(tmp_path / "p.png")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "qt-free-ok" in r.stdout


def test_one_decode_gives_the_shared_preprocessing_input(tmp_path):
    """A JPEG large enough to be drafted: the input equals preprocess.load_input's byte for
    byte; the picture shown is the same pixels, at most display_side a side."""
    rng = np.random.default_rng(3)
    big = np.kron(rng.integers(0, 256, (75, 100, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=90)
    for size, channels in ((150, 3), (64, 1), (224, 3)):
        picture = E.load_picture(path, size, channels, display_side=512)
        assert (picture.input == load_input(path, size, channels)).all()
        assert max(picture.rgb.shape[:2]) <= 512 and min(picture.rgb.shape[:2]) >= size
        assert picture.original_size == (1600, 1200)
    shown = E.load_picture(path, None, display_side=512)
    assert shown.input is None and shown.rgb.shape == (384, 512, 3)
