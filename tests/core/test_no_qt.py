"""The one rule: ponyclassifier.core never imports Qt, pyqtgraph or ponyclassifier.gui.

Checked two ways: statically (no import statement names them) and by importing every core
module, and running a tiny training, in a fresh interpreter where those imports fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ponyclassifier.core

FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "ponyclassifier.gui")
CORE = Path(ponyclassifier.core.__file__).parent


def test_no_forbidden_import_statements():
    offenders = []
    for py in CORE.rglob("*.py"):
        tree = ast.parse(py.read_text(), str(py))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:  # relative: resolve against ponyclassifier.core
                    mod = "ponyclassifier." + ("core." if node.level == 1 else "") + mod
                names = [mod]
            offenders += [f"{py.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []


BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6') or name.startswith('ponyclassifier.gui'):
            raise ImportError('blocked in core: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib, ponyclassifier.core as core
for m in pkgutil.iter_modules(core.__path__):
    importlib.import_module('ponyclassifier.core.' + m.name)
import ponyclassifier.cli
bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph') or m.startswith('ponyclassifier.gui')]
assert not bad, bad
print('core-ok')
"""


def test_core_imports_with_qt_blocked():
    r = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "core-ok" in r.stdout


def test_project_modules_do_not_import_torch():
    """Opening a project in the app must not import torch: a first torch import holds the
    GIL for hundreds of milliseconds and stalls the window."""
    code = ("import sys\n"
            "import ponyclassifier.core.project, ponyclassifier.core.splits, ponyclassifier.core.store\n"
            "import ponyclassifier.core.folders, ponyclassifier.core.images\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('torch-free')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "torch-free" in r.stdout, r.stderr
