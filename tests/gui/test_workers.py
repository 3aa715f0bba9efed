"""Background work: jobs and thumbnail decodes hand the interpreter lock over quickly while
they run (so the GUI thread never queues behind them for long) and put the interval back
afterwards; the grid model's filters agree with a plain reference filter."""

from __future__ import annotations

import itertools
import random
import sys

import pytest

from ponyclassifier.gui import workers
from ponyclassifier.gui.qt_dataset_browser import ThumbnailModel
from tests.conftest import make_shapes_dataset


@pytest.mark.parametrize("outcome", ["finished", "failed", "cancelled"])
def test_jobs_use_a_short_gil_switch_only_while_they_run(qtbot, outcome):
    before = sys.getswitchinterval()
    assert before > workers.GIL_SWITCH_INTERVAL, workers._gil_users  # nothing left holding it
    seen = []

    def fn(state):
        seen.append(sys.getswitchinterval())
        if outcome == "failed":
            raise ValueError("no")
        if outcome == "cancelled":
            raise workers.Cancelled()
        return 1

    job = workers.run_job(fn)
    with qtbot.waitSignal(getattr(job.signals, outcome), timeout=10000):
        pass
    qtbot.waitUntil(lambda: sys.getswitchinterval() == before, timeout=5000)
    assert seen == [workers.GIL_SWITCH_INTERVAL]


def test_two_jobs_share_the_short_switch_until_the_last_ends(qtbot):
    import threading

    before = sys.getswitchinterval()
    gate = threading.Event()
    first = workers.run_job(lambda state: gate.wait(10))
    with qtbot.waitSignal(workers.run_job(lambda state: 2).signals.finished, timeout=10000):
        pass
    assert sys.getswitchinterval() == workers.GIL_SWITCH_INTERVAL  # the first still runs
    with qtbot.waitSignal(first.signals.finished, timeout=10000):
        gate.set()
    qtbot.waitUntil(lambda: sys.getswitchinterval() == before, timeout=5000)


def test_thumbnail_decodes_use_a_short_gil_switch_only_while_they_run(qtbot, tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=6, classes=("a",))
    before = sys.getswitchinterval()
    loader = workers.ThumbnailLoader(size=64, cache_dir=tmp_path / "thumbs")
    got = []
    loader.thumbnail_ready.connect(lambda path, img: got.append(path))
    for p in sorted((root / "a").iterdir()):
        loader.request_thumbnail(str(p))
    assert loader.busy and sys.getswitchinterval() == workers.GIL_SWITCH_INTERVAL
    qtbot.waitUntil(lambda: len(got) == 6 and not loader.busy, timeout=10000)
    qtbot.waitUntil(lambda: sys.getswitchinterval() == before, timeout=5000)  # the last decode has returned
    loader.close()


def test_model_filters_match_a_reference_filter(qtbot):
    rnd = random.Random(3)
    loader = workers.ThumbnailLoader(size=32)
    model = ThumbnailModel(loader)
    classes, splits, statuses = ["cat", "dog", ""], [None, "train", "val", "test"], ["ok", "bad", "duplicate"]
    rows = []
    for i in range(600):
        cls = rnd.choice(classes)
        status = "unlabelled" if not cls and rnd.random() < 0.7 else rnd.choice(statuses)
        rows.append((f"/p/{cls or 'root'}/{rnd.randrange(10**6):06d}_{i}.png", cls, rnd.choice(splits), status,
                     "why" if status == "bad" else None))
    model.apply_rows(rows)
    broken = {r[0] for r in rows[::37] if r[3] != "bad"}
    for p in broken:
        model.broken[p] = "could not read"  # decode failures the store has not recorded yet

    def reference(cls, split, status):
        out = []
        for path, c, s, st, _ in rows:
            if cls is not None and c != cls or split is not None and s != split:
                continue
            if status == "bad" and not (st == "bad" or path in broken):
                continue
            if status not in (None, "bad") and st != status:
                continue
            out.append(path)
        return sorted(out)

    for cls, split, status in itertools.product([None, *classes], splits + ["val"],
                                                [None, "bad", "duplicate", "unlabelled"]):
        model.set_filters(cls, split, status)
        assert model.paths() == reference(cls, split, status), (cls, split, status)
        assert all(model.row_of(p) == r for r, p in enumerate(model.paths()))
    # rows changing under a filter (a relabel, a new file) are followed without a reset
    model.set_filters("cat", None, None)
    moved = model.paths()[0]
    rows = [(p, "dog" if p == moved else c, s, st, why) for p, c, s, st, why in rows]
    rows.append(("/p/cat/zzz_new.png", "cat", "train", "ok", None))
    model.apply_rows(rows)
    assert model.paths() == reference("cat", None, None)
    assert moved not in model.paths() and "/p/cat/zzz_new.png" in model.paths()
    loader.close()
