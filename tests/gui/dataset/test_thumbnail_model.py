"""The thumbnail grid's model: its fast filters agree with a plain reference filter."""

from __future__ import annotations

import itertools
import random

from ponyclassifier.gui import workers
from ponyclassifier.gui.dataset.browser import ThumbnailModel


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
    # rows a listing adds go through the same filters (new files have no split and are "ok")
    model.set_filters("cat", None, "ok")
    model.add_files([("/p/cat/aaa_listed.png", "cat"), ("/p/dog/aaa_listed.png", "dog"), ("/p/root.png", "")])
    rows += [("/p/cat/aaa_listed.png", "cat", None, "ok", None), ("/p/dog/aaa_listed.png", "dog", None, "ok", None),
             ("/p/root.png", "", None, "unlabelled", None)]
    assert model.paths() == reference("cat", None, "ok") and "/p/cat/aaa_listed.png" in model.paths()
    model.set_filters(None, None, "unlabelled")
    assert model.paths() == reference(None, None, "unlabelled") and "/p/root.png" in model.paths()
    loader.close()
