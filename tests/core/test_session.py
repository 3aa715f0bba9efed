"""The application state without Qt: core/session.py driven with a real project store."""

from __future__ import annotations

import pytest

from ponyclassifier.core.project import Project
from ponyclassifier.core.session import Event, ModelSession, ProjectSession

from ..conftest import make_shapes_dataset


def test_event_calls_every_listener_even_when_one_fails():
    ev, heard = Event("x"), []
    ev.connect(lambda v: heard.append(("a", v)))

    def bad(v):
        raise ValueError("boom")

    ev.connect(bad)
    ev.connect(lambda v: heard.append(("c", v)))
    with pytest.raises(ValueError):
        ev.emit(1)
    assert heard == [("a", 1), ("c", 1)]
    ev.disconnect(bad)
    ev.emit(2)
    assert heard[-2:] == [("a", 2), ("c", 2)]


def test_the_split_the_session_gives_is_the_one_made_in_the_store(tmp_path):
    root = make_shapes_dataset(tmp_path / "p", per_class=10, size=16)
    s, heard = ProjectSession(), []
    for name in ("opened", "attached", "split_changed", "runs_changed", "counts_changed", "closed"):
        getattr(s, name).connect(lambda *a, n=name: heard.append(n))
    s.open(root)
    s.set_rows([(str(p), p.parent.name) for p in sorted(root.rglob("*.png"))])
    assert s.counts == (30, 3)
    project = Project(root)
    project.sync()
    assert s.attach(project)
    assert s.split() is not None
    s.make_splits(0.3, 5)
    split = s.split()
    assert (split.val_fraction, split.seed) == (0.3, 5)
    assert split.val == frozenset(r["relpath"] for r in project.store.images(split="val"))
    test = tmp_path / "external"
    test.mkdir()
    s.set_test_folder(test)
    assert s.test_folder == str(test)
    assert heard[:4] == ["opened", "counts_changed", "attached", "split_changed"]
    assert heard.count("split_changed") == 3
    reader = s.reader
    assert reader is not project.store and reader.conn is not None  # its own connection for reads
    s.close()
    assert heard[-1] == "opened" and "closed" in heard
    assert s.project is None and s.split() is None and s.rows == []
    assert reader.conn is None


def test_the_stores_entries_are_handed_to_the_attached_listeners_and_not_kept(tmp_path):
    root = make_shapes_dataset(tmp_path / "p", per_class=2, size=16)
    s, seen = ProjectSession(), []
    s.attached.connect(lambda project: seen.append(dict(s.entries)))
    s.open(root)
    project = Project(root)
    s.attach(project, {"x": ["circle", "train", "ok", None]}, {"circle": {"total": 1}})
    assert seen == [{"x": ["circle", "train", "ok", None]}]
    assert s.entries == {} and s.class_counts is None  # no copy left to go stale
    s.close()


def test_a_store_opened_for_another_root_is_closed_not_attached(tmp_path):
    a = make_shapes_dataset(tmp_path / "a", per_class=2, size=16)
    b = make_shapes_dataset(tmp_path / "b", per_class=2, size=16)
    s = ProjectSession()
    s.open(a)
    s.open(b)  # the user opened b while a's store was opening
    late = Project(a)
    assert not s.attach(late)
    assert s.project is None
    again = Project(a)  # a's lock was released when the late store was closed
    again.close()


def test_work_still_running_keeps_the_project_open_until_it_ends(tmp_path):
    root = make_shapes_dataset(tmp_path / "p", per_class=2, size=16)
    s = ProjectSession()
    s.open(root)
    project = Project(root)
    s.attach(project)
    dones = []
    s.closing.connect(lambda p: dones.append(s.defer_close(p)))
    s.close()
    assert s.project is None
    assert project.store.conn is not None  # an import still writes to it
    project.store.meta("x")
    dones[0]()
    dones[0]()  # twice is harmless
    with pytest.raises(Exception):
        project.store.meta("x")


def test_model_session_gives_each_lane_its_own_replica():
    import torch

    m = ModelSession()
    heard = []
    m.wanted.connect(lambda place, path: heard.append((place, path)))
    m.loaded.connect(lambda place: heard.append(place))
    m.want("Predict", "/x.pony")
    net = torch.nn.Linear(2, 2)
    m.set_loaded("Predict", net, "tiny")
    m.want("Predict", "/x.pony")  # shown already: no event
    live = m.replica("Predict", "live")
    assert live is not net and m.replica("Predict", "live") is live
    assert torch.equal(live.weight, net.weight)
    m.set_loaded("Predict", torch.nn.Linear(2, 2))
    assert m.replica("Predict", "live") is not live
    assert heard == [("Predict", "/x.pony"), "Predict", "Predict"]
    m.want("Predict", "/bad.pony")  # its load fails: the page keeps the model it had
    m.want("Predict", "/bad.pony")  # asked again (the file may be fixed now): asked again
    assert heard[-2:] == [("Predict", "/bad.pony")] * 2
