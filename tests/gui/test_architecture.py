"""The GUI's layout rules, checked on the source (like tests/core/test_no_qt.py):

* threads start in one place: no ``QThread``, ``QRunnable``, ``QThreadPool``,
  ``moveToThread``, ``threading.Thread`` or ``ThreadPoolExecutor`` in ``ponyclassifier/gui``
  outside ``workers.py``, and no thread of its own in ``ponyclassifier/core`` (the core's
  decode pools are ``ThreadPoolExecutor``s that a call starts and joins before it returns);
* no hand-made staleness counters (``self._generation += 1``, ``self._token += 1``...):
  a newest-wins ``workers.Lane`` drops the work that is no longer wanted;
* a view never imports another area's view: ``gui/dataset``, ``gui/train``, ``gui/explain``
  and ``gui/predict`` import only their own area, ``gui/widgets``, ``workers``, ``projects``
  and the core; ``gui/widgets`` imports no area; only ``main_window`` composes the areas;
* no module of the GUI is longer than 800 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ponyclassifier.gui

GUI = Path(ponyclassifier.gui.__file__).parent
CORE = GUI.parent / "core"
AREAS = ("dataset", "train", "explain", "predict")
MAX_LINES = 800
THREAD_WORDS = re.compile(r"\b(QThread|QRunnable|QThreadPool|moveToThread|ThreadPoolExecutor)\b|threading\.Thread\b")
COUNTER = re.compile(r"self\.\w*(generation|_gen|token|_seq|serial)\w*\s*\+=\s*1")


def _code(py: Path) -> str:
    """The source without comments and docstrings (they may name what they replaced)."""
    tree = ast.parse(py.read_text(), str(py))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                first.value.value = ""
    return ast.unparse(tree)


def _gui_modules() -> list[Path]:
    return sorted(GUI.rglob("*.py"))


def test_threads_start_only_in_the_worker_module():
    offenders = []
    for py in _gui_modules():
        if py == GUI / "workers.py":
            continue
        offenders += [f"{py.relative_to(GUI)}: {m.group(0)}" for m in THREAD_WORDS.finditer(_code(py))]
    for py in sorted(CORE.rglob("*.py")):
        offenders += [f"core/{py.relative_to(CORE)}: {m.group(0)}" for m in
                      re.finditer(r"threading\.Thread\b|\bQThread\b", _code(py))]
    assert offenders == []


def test_no_hand_made_staleness_counters():
    offenders = []
    for py in _gui_modules():
        offenders += [f"{py.relative_to(GUI)}: {m.group(0)}" for m in COUNTER.finditer(_code(py))]
    assert offenders == []


def _gui_imports(py: Path) -> set[str]:
    """The ponyclassifier.gui modules ``py`` imports, as dotted names under gui ("dataset.browser")."""
    pkg = py.relative_to(GUI).parent.parts  # () for gui/, ("dataset",) for gui/dataset/
    out = set()
    for node in ast.walk(ast.parse(py.read_text(), str(py))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg)[: len(pkg) - (node.level - 1)] if node.level - 1 <= len(pkg) else None
                if base is None:
                    continue  # above gui/: the core or the package
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [mod + "." + a.name if not node.module else mod for a in node.names]
            else:
                if not (node.module or "").startswith("ponyclassifier.gui"):
                    continue
                names = [node.module[len("ponyclassifier.gui"):].lstrip(".")]
            out.update(n.strip(".") for n in names)
        elif isinstance(node, ast.Import):
            out.update(a.name[len("ponyclassifier.gui"):].lstrip(".") for a in node.names
                       if a.name.startswith("ponyclassifier.gui."))
    return {n for n in out if n}


def test_no_view_imports_another_areas_view():
    offenders = []
    for py in _gui_modules():
        parts = py.relative_to(GUI).parts
        area = parts[0] if len(parts) > 1 else None
        for name in _gui_imports(py):
            top = name.split(".")[0]
            if area in AREAS and top in AREAS and top != area:
                offenders.append(f"{'/'.join(parts)} imports {name}")
            if area == "widgets" and top in AREAS:
                offenders.append(f"{'/'.join(parts)} (a shared widget) imports {name}")
            if area is None and top in AREAS and py.name not in ("main_window.py",):
                offenders.append(f"{'/'.join(parts)} imports {name}: only the main window composes the places")
    assert offenders == []


def test_the_areas_exist_and_no_gui_module_is_too_long():
    for area in AREAS + ("widgets",):
        assert (GUI / area / "__init__.py").is_file(), area
    long = {str(py.relative_to(GUI)): n for py in _gui_modules()
            if (n := len(py.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_what_they_look_for():
    """The checks above would catch each thing they forbid."""
    assert THREAD_WORDS.search("t = threading.Thread(target=f)")
    assert THREAD_WORDS.search("self._thread = QThread()")
    assert COUNTER.search("self._eval_generation += 1")
    assert COUNTER.search("self._load_token += 1")
    assert not COUNTER.search("self.count += 1")
