"""The SQLite project store: schema, runs, atomic batches, and case 16/18 faults."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from ponyclassifier.core.store import SCHEMA_VERSION, ProjectStore, StoreError, store_path


def test_new_store_is_versioned_wal_and_sound(tmp_path):
    with ProjectStore(tmp_path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.integrity_ok() and not s.read_only
    # reopening does not re-run migrations
    with ProjectStore(tmp_path) as s:
        assert s.conn.execute("SELECT COUNT(*) FROM meta WHERE key='created'").fetchone()[0] == 1


def test_images_counts_splits_and_moves(tmp_path):
    with ProjectStore(tmp_path) as s:
        s.upsert_images([{"relpath": f"cat/{i}.png", "class": "cat", "split": "train" if i < 3 else "val"}
                         for i in range(4)] + [{"relpath": "dog/x.png", "class": "dog", "status": "bad",
                                                 "reason": "damaged or truncated image"}])
        assert s.counts()["cat"] == {"train": 3, "val": 1, "test": 0, "unassigned": 0, "bad": 0, "total": 4}
        assert s.counts()["dog"]["bad"] == 1
        s.move_images([("cat/0.png", "dog/0.png", "dog")])
        assert [r["relpath"] for r in s.images(cls="dog")] == ["dog/0.png", "dog/x.png"]
        assert s.images(cls="dog")[0]["split"] == "train"  # a relabel keeps the split
        with pytest.raises(StoreError):
            s.move_images([("cat/1.png", "dog/1.png", "dog"), ("cat/missing.png", "dog/m.png", "dog")])
        # all-or-nothing: the first move of the failed batch was rolled back
        assert {r["relpath"] for r in s.images(cls="cat")} == {"cat/1.png", "cat/2.png", "cat/3.png"}


def test_runs_are_recorded_with_curves_and_f1_gap(tmp_path):
    with ProjectStore(tmp_path) as s:
        rid = s.start_run("transfer", {"epochs": 2, "lr": 1e-3}, "cpu")
        s.add_epoch(rid, 1, {"train_loss": 1.0, "val_loss": float("nan")})
        s.add_epoch(rid, 2, {"train_loss": 0.5, "val_loss": 0.7})
        s.finish_run(rid, status="finished", seconds=3.5, model_path="m.pony",
                     metrics={"validation": {"accuracy": 0.9, "macro_f1": 0.88},
                              "test": {"accuracy": 0.7, "macro_f1": 0.66}})
        run = s.runs()[0]
        assert run.recipe == "transfer" and run.settings["lr"] == 1e-3 and run.status == "finished"
        assert run.f1_gap == pytest.approx(0.22)
        assert [c["train_loss"] for c in s.run_curves(rid)] == [1.0, 0.5]
        assert s.run_curves(rid)[0]["val_loss"] is None
        s.delete_run(rid)
        assert s.runs() == [] and s.run_curves(rid) == []


def test_corrupt_store_is_refused_and_left_untouched(tmp_path):
    p = store_path(tmp_path)
    p.parent.mkdir(parents=True)
    junk = b"this is not a database" * 100
    p.write_bytes(junk)
    with pytest.raises(StoreError, match="left untouched"):
        ProjectStore(tmp_path)
    assert p.read_bytes() == junk


def test_damaged_pages_are_detected(tmp_path):
    with ProjectStore(tmp_path) as s:
        s.upsert_images([{"relpath": f"c/{i:05d}.png", "class": "c", "reason": "x" * 200} for i in range(2000)])
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    p = store_path(tmp_path)
    data = bytearray(p.read_bytes())
    for i in range(8192, 8192 + 4096 * 4):  # scribble over a few b-tree pages
        data[i] = 0xA5
    p.write_bytes(bytes(data))
    before = p.read_bytes()
    with pytest.raises(StoreError):
        ProjectStore(tmp_path)
    assert p.read_bytes() == before


def test_newer_store_version_opens_read_only(tmp_path):
    with ProjectStore(tmp_path) as s:
        s.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with ProjectStore(tmp_path) as s:
        assert s.read_only and "newer PonyClassifier" in s.message
        with pytest.raises(StoreError, match="newer"):
            s.start_run("scratch", {})
    with sqlite3.connect(store_path(tmp_path)) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_counts_cope_with_a_split_this_version_does_not_know():
    """A store of a newer version (opened read-only) may hold a split value added later: the
    project's counts put it with the images without a split instead of failing."""
    from ponyclassifier.gui.projects import count_entries

    counts = count_entries({"x": ["a", "holdout", "ok", None], "y": ["a", "val", "ok", None]})
    assert counts["a"]["total"] == 2 and counts["a"]["unassigned"] == 1 and counts["a"]["val"] == 1


def test_second_instance_gets_read_only(tmp_path):
    first = ProjectStore(tmp_path)
    try:
        code = textwrap.dedent(f"""
            from ponyclassifier.core.store import ProjectStore
            s = ProjectStore({str(tmp_path)!r})
            print(s.read_only, s.message)
        """)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.stdout.startswith("True") and "another PonyClassifier window" in r.stdout, r.stderr
    finally:
        first.close()
    with ProjectStore(tmp_path) as again:  # lock released on close
        assert not again.read_only


def test_kill_during_a_batch_leaves_store_sound_and_batch_absent(tmp_path):
    """Case 16 at the store level: SIGKILL in the middle of a big transaction."""
    with ProjectStore(tmp_path) as s:
        s.upsert_images([{"relpath": "keep/a.png", "class": "keep"}])
    code = textwrap.dedent(f"""
        import os, signal
        from ponyclassifier.core.store import ProjectStore
        s = ProjectStore({str(tmp_path)!r})
        def rows():
            for i in range(50000):
                if i == 20000:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield {{"relpath": f"new/{{i}}.png", "class": "new"}}
        s.upsert_images(rows())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -9
    with ProjectStore(tmp_path) as s:
        assert s.integrity_ok()
        assert [r["relpath"] for r in s.images()] == ["keep/a.png"]


def test_sibling_connection_shares_the_lock_and_sees_commits(tmp_path):
    with ProjectStore(tmp_path) as s:
        other = s.sibling()
        try:
            rid = other.start_run("scratch", {"epochs": 1})
            assert [r.id for r in s.runs()] == [rid]
            assert not other.read_only
        finally:
            other.close()
        assert s._lock_fd is not None  # closing the sibling kept the owner's lock


def test_batched_writes_check_first_count_changes_and_stay_all_or_nothing(tmp_path):
    with ProjectStore(tmp_path) as s:
        assert s.upsert_images([{"relpath": f"cat/{i}.png", "class": "cat"} for i in range(5)]) == 5
        # an invalid row anywhere in a batch writes nothing of it
        with pytest.raises(StoreError, match="unknown split"):
            s.upsert_images([{"relpath": "cat/new.png", "class": "cat"}, {"relpath": "x", "class": "cat",
                                                                          "split": "later"}])
        with pytest.raises(StoreError, match="unknown split"):
            s.set_splits({"cat/0.png": "train", "cat/1.png": "nope"})
        assert s.image_classes() == {f"cat/{i}.png": "cat" for i in range(5)}
        assert all(r["split"] is None for r in s.images()) and s.has_labelled_without_split()
        # a re-upsert keeps a split it does not name
        s.set_splits({f"cat/{i}.png": "train" for i in range(5)})
        assert not s.has_labelled_without_split()
        s.upsert_images([{"relpath": "cat/0.png", "class": "cat", "status": "bad", "reason": "r"}])
        assert s.images()[0]["split"] == "train" and s.images()[0]["status"] == "bad"
        # set_statuses counts only the rows it changed, and skips unknown paths
        assert s.set_statuses({"cat/0.png": ("bad", "r"), "cat/1.png": ("bad", "damaged"),
                               "cat/2.png": ("ok", None), "gone.png": ("bad", "x")}) == 1
        s.remove_images(["cat/3.png", "cat/4.png", "never.png"])
        assert sorted(s.image_classes()) == ["cat/0.png", "cat/1.png", "cat/2.png"]
        s.upsert_images([{"relpath": "root.png", "class": "", "status": "unlabelled"}])
        assert not s.has_labelled_without_split()  # unlabelled images get no split
