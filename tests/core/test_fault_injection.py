"""The fault-injection harness (issue 12, Must show): a child process (fault_driver.py)
performs a move, delete, import, undo or redo on a project and SIGKILLs itself at step
boundary k of it, for every k from 0 to the number of boundaries the operation has, and at
random moments of a loop of operations; then the project is reopened here and checked: no
file lost, none duplicated, nothing outside the project touched (a sentinel folder beside
it and a picture there that the project links to), store rows and folders agree, no hidden
copy left, and the project works (one more move succeeds).

Each child is a fresh Python importing only the torch-free project modules; a child that
hangs is stopped by a generous subprocess timeout, not by a time bound on the work.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ponyclassifier.core.project import Project, iter_project_files
from ponyclassifier.core.store import STORE_DIR

from ..conftest import draw_shape, make_shapes_dataset

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 120  # only a hang comes near this
KILLED = -signal.SIGKILL
COVERED: Counter = Counter()  # kill points per operation, reported at the end of the module


# --------------------------------------------------------------------------- the world
def _template(base: Path) -> Path:
    """base/world: project/ (3 classes, a symbolic link to a picture outside, a loose
    picture in the root), sentinel/ (files the project must never touch), incoming/ (what
    gets imported: pictures unlike any in the project)."""
    world = base / "world"
    if world.exists():
        return world
    root = make_shapes_dataset(world / "project", per_class=4, classes=("circle", "square", "triangle"))
    sentinel = world / "sentinel"
    sentinel.mkdir()
    import numpy as np

    rng = np.random.default_rng(7)
    for i in range(3):
        draw_shape("triangle", rng, 40).save(sentinel / f"keep_{i}.png")
    (sentinel / "notes.txt").write_text("not yours")
    # a picture of the project that is a symbolic link to a file outside it: moving or
    # deleting it moves the link, never the file
    os.symlink(os.path.join("..", "..", "sentinel", "keep_0.png"), root / "circle" / "circle_0000_link.png")
    shutil.copy(root / "square" / "square_000.png", root / "loose.png")
    incoming = world / "incoming"
    incoming.mkdir()
    for i in range(3):
        draw_shape("circle", rng, 24 + i).save(incoming / f"new_{i}.png")
    with Project(root) as p:
        p.sync()
        p.make_splits(0.5, 1)
    return world


def _fresh(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def _key(path: Path) -> str:
    st = os.lstat(path)
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    assert os.path.isfile(path) and st.st_nlink == 1, f"{path}: a file under two names"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def picture(root: Path) -> Counter:
    """Every file of the project as (where, content): where is its class ("" for the root)
    or "trash"; content its hash (a link: its target). A Counter: a duplicate counts twice."""
    out: Counter = Counter()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts[:1] == (STORE_DIR,) and rel.parts[1:2] != ("trash",):
            dirnames[:] = [d for d in dirnames if d == "trash"] if rel == Path(STORE_DIR) else []
            continue
        for f in filenames:
            where = "trash" if rel.parts[:1] == (STORE_DIR,) else (rel.parts[0] if rel.parts else "")
            out[(where, _key(Path(dirpath) / f))] += 1
    return out


def outside(world: Path) -> dict:
    """Everything beside the project, to the byte and the nanosecond."""
    out = {}
    for folder in ("sentinel", "incoming"):
        for f in sorted((world / folder).rglob("*")):
            st = os.lstat(f)
            out[str(f)] = (f.read_bytes(), st.st_mtime_ns, st.st_size, st.st_ino)
    return out


def leftovers(root: Path) -> list[str]:
    return [str(f) for f in root.rglob(".pony*") if f.name.startswith((".ponyimport-", ".ponymove-"))]


def run_child(world: Path, op: str, k: int) -> subprocess.CompletedProcess:
    """``op`` "nolink-X": X on a file system without hard links (see fault_driver.py)."""
    env = dict(os.environ, PONYCLASSIFIER_TEST_NO_HARDLINKS="1" if op.startswith("nolink-") else "0")
    return subprocess.run([sys.executable, "-m", "tests.core.fault_driver", str(world / "project"),
                           str(world / "incoming"), op.removeprefix("nolink-"), str(k)],
                          cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=env)


def boundaries(r: subprocess.CompletedProcess) -> int:
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("boundaries")[-1])


def check_reopened(world: Path, allowed: list[Counter], where: str) -> Counter:
    """Reopen the project after a kill and check everything the harness promises; returns
    the picture it found (one of ``allowed``, unless ``allowed`` is empty)."""
    root = world / "project"
    with Project(root) as p:
        assert not p.read_only, where
        found = picture(root)
        if allowed:
            assert found in allowed, f"{where}: the files are neither before nor after: {found}"
        assert leftovers(root) == [], where
        on_disk = {Path(f).relative_to(p.root).as_posix(): c for f, c in iter_project_files(p.root)}
        in_store = {r["relpath"]: r["class"] for r in p.store.images()}
        assert in_store == on_disk, f"{where}: store and folders disagree"
        assert p.store.integrity_ok()
        # the project works: one more move (and its undo) succeeds
        target = sorted((p.root / "triangle").iterdir())[0]
        p.move_to_class([target], "square")
        assert {r["relpath"]: r["class"] for r in p.store.images()} == \
            {Path(f).relative_to(p.root).as_posix(): c for f, c in iter_project_files(p.root)}
        p.undo()
    with Project(root) as p:
        assert p.recovered == [], f"{where}: a second open still had something to recover"
    return found


def _contents(found: Counter, leave_out: set) -> Counter:
    """How many times each content is in the project (its class or the trash)."""
    out: Counter = Counter()
    for (_, key), v in found.items():
        if key not in leave_out:
            out[key] += v
    return out


def in_parallel(check, cases) -> int:
    """Run ``check(case)`` for every case, two at a time (each child is a process of its
    own, on a project copy of its own); re-raises the first failure; returns the count."""
    cases = list(cases)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in pool.map(check, cases):
            pass
    return len(cases)


# --------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return _template(tmp_path_factory.mktemp("fault"))


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    total = sum(COVERED.values())
    print(f"\nkill points covered: {dict(COVERED)}; total {total}")


@pytest.mark.parametrize("op", ["move", "delete", "import", "undo-move", "redo-move", "undo-delete",
                                "undo-import", "redo-import", "nolink-move", "nolink-import",
                                "nolink-undo-delete"])
def test_a_kill_at_every_step_boundary_leaves_one_consistent_state(op, template, tmp_path):
    # the two allowed pictures: before the armed operation and after it
    w = _fresh(template, tmp_path / "before")
    assert run_child(w, op, -2).returncode == 0
    before = picture(w / "project")
    w = _fresh(template, tmp_path / "after")
    n = boundaries(run_child(w, op, -1))
    after = picture(w / "project")
    assert before != after and n >= 6, (op, n)
    base = outside(template)

    def kill_at(k: int) -> None:
        w = _fresh(template, tmp_path / f"k{k}")
        sentinel = outside(w)
        r = run_child(w, op, k)
        assert r.returncode == (KILLED if k < n else 0), (op, k, r.returncode, r.stderr)  # died where told
        found = check_reopened(w, [before, after], f"{op} killed at boundary {k} of {n}")
        assert outside(w) == sentinel and len(sentinel) == len(base), f"{op} k={k}: outside the project touched"
        if k == 0:
            assert found == before  # nothing had happened yet
        shutil.rmtree(w)

    COVERED[op] += in_parallel(kill_at, range(n + 1))


def test_a_kill_during_recovery_is_recovered_by_the_next_open(template, tmp_path):
    """Opening a project rolls back an operation that was killed part-way; a kill during
    that rollback is itself rolled back by the next open."""
    w = _fresh(template, tmp_path / "before")
    before = picture(w / "project")
    mid = 5  # a move killed with two of its three files moved and the third linked
    w = _fresh(template, tmp_path / "count")
    assert run_child(w, "move", mid).returncode == KILLED
    n = boundaries(run_child(w, "recover", -1))
    assert n >= 2

    def kill_at(k: int) -> None:
        w = _fresh(template, tmp_path / f"k{k}")
        sentinel = outside(w)
        assert run_child(w, "move", mid).returncode == KILLED
        r = run_child(w, "recover", k)
        assert r.returncode == (KILLED if k < n else 0), (k, r.stderr)
        check_reopened(w, [before], f"recovery killed at boundary {k} of {n}")
        assert outside(w) == sentinel
        shutil.rmtree(w)

    COVERED["recovery"] += in_parallel(kill_at, range(n + 1))


def _kill_at_random(argv: list[str], delay: float) -> int:
    """Start the driver, wait for its "ready", let it work ``delay`` seconds, SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-m", "tests.core.fault_driver", *argv], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        if line == "ready":
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=CHILD_TIMEOUT)
        assert line == "ready", child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    return child.returncode


def test_a_kill_at_random_moments_of_model_saves_leaves_a_whole_model(tmp_path):
    """Model save (through core/modelfile.py's public save_model_file, in a child that
    saves version after version): killed at random moments, the file at the path is always
    one whole version (its tensor filled with the version its metadata names); leftovers
    are only the save's own temp names, which its cleanup removes; nothing else is touched."""
    from ponyclassifier.core.modelfile import cleanup_stale_temp_files, load_model_file

    rng = random.Random(5)
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "other.pony").write_bytes(b"not ours")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "neighbour.pony").write_bytes(b"someone's model")
    for i in range(4):
        before = outside_files(sentinel) | outside_files(folder, skip="model.pony")
        path = folder / "model.pony"
        assert _kill_at_random([str(path), str(tmp_path), "save-loop", "0"], rng.uniform(0.0, 0.4)) == KILLED
        meta, tensors = load_model_file(path)
        assert tensors["w"].min() == tensors["w"].max() == meta["version"], f"kill {i}: a torn model file"
        cleanup_stale_temp_files(folder)
        assert sorted(f.name for f in folder.iterdir()) == ["model.pony", "neighbour.pony"]
        assert outside_files(sentinel) | outside_files(folder, skip="model.pony") == before
        COVERED["model save"] += 1


def outside_files(folder: Path, skip: str = "") -> dict:
    return {str(f): (f.read_bytes(), os.lstat(f).st_mtime_ns) for f in sorted(folder.iterdir())
            if f.name != skip and not f.name.endswith(".ponytmp")}


def test_a_kill_at_random_moments_of_a_loop_of_operations(template, tmp_path):
    """Moves, deletes, imports, undos and redos round and round, SIGKILLed after a random
    (seeded) delay: whatever the moment, every original picture is there exactly once
    (in its class or the trash), an import is all there or not at all, and the rest of the
    checks hold."""
    rng = random.Random(12)
    w = _fresh(template, tmp_path / "orig")
    original = picture(w / "project")
    incoming = {_key(f) for f in (w / "incoming").iterdir()}
    delays = [rng.uniform(0.0, 0.3) for _ in range(16)]

    def kill_after(i: int) -> None:
        w = _fresh(template, tmp_path / f"r{i}")
        sentinel = outside(w)
        rc = _kill_at_random([str(w / "project"), str(w / "incoming"), "loop", "0"], delays[i])
        assert rc == KILLED, rc  # still looping, not crashed
        found = check_reopened(w, [], f"random kill {i}")
        assert outside(w) == sentinel, f"random kill {i}: outside the project touched"
        assert _contents(found, incoming) == _contents(original, incoming), f"random kill {i}: a file lost or doubled"
        live = [key for (where, key), v in found.items() if key in incoming and where != "trash" for _ in range(v)]
        assert sorted(live) in ([], sorted(incoming)), f"random kill {i}: a part of an import"
        shutil.rmtree(w)

    COVERED["random"] += in_parallel(kill_after, range(len(delays)))
