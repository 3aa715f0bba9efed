"""Labelling actions on a project: files on disk and the store change together, nothing
is ever overwritten, deletes are recoverable, every action undoes (cases 15, 16, 19)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ponyclassifier.core.project import Project, ProjectError

from ..conftest import draw_shape, make_shapes_dataset


def disk_state(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".ponyclassifier" not in p.parts}


def store_state(project: Project) -> dict[str, str]:
    return {r["relpath"]: r["class"] for r in project.store.images()}


def consistent(project: Project) -> bool:
    return set(store_state(project)) == set(disk_state(project.root))


@pytest.fixture
def project(tmp_path):
    root = make_shapes_dataset(tmp_path / "p", per_class=4)
    with Project(root) as p:
        p.sync()
        yield p


def test_sync_records_every_image(project):
    assert len(store_state(project)) == 12 and consistent(project)


def test_sync_from_a_listing_made_by_the_caller_walks_nothing_and_agrees(tmp_path, monkeypatch):
    """The app lists a project once on open and hands that listing to the store's sync."""
    from ponyclassifier.core import project as P

    a = make_shapes_dataset(tmp_path / "a", per_class=4)
    (a / "loose.png").write_bytes((a / "circle" / "circle_000.png").read_bytes())  # unlabelled
    other = make_shapes_dataset(tmp_path / "other", per_class=1)
    listing = list(P.iter_project_files(a)) + [(str(other / "circle" / "circle_000.png"), "circle")]
    walks = []
    real = P.iter_project_files
    monkeypatch.setattr(P, "iter_project_files", lambda root: walks.append(root) or real(root))
    with Project(a) as p:
        p.sync(listing)
        from_listing = store_state(p)
    assert walks == []
    assert from_listing["loose.png"] == "" and len(from_listing) == 13  # nothing from outside the project
    with Project(a) as p:
        (a / "circle" / "circle_000.png").unlink()
        p.sync()
        assert len(walks) == 1 and consistent(p)


def test_a_listing_made_through_a_symlink_keeps_every_row(tmp_path):
    """The app lists the folder as the user opened it; a project reached through a symbolic
    link (or any other spelling of its path) must not lose its rows to a path mismatch."""
    from ponyclassifier.core.project import iter_project_files

    real = make_shapes_dataset(tmp_path / "real", per_class=3)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with Project(real) as p:
        p.sync()
        p.make_splits(0.34, 1)
        before = {r["relpath"]: (r["class"], r["split"]) for r in p.store.images()}
    listing = list(iter_project_files(link))
    assert listing and all(path.startswith(str(link)) for path, _ in listing)
    with Project(link) as p:
        p.sync(listing, listed_root=link)
        assert {r["relpath"]: (r["class"], r["split"]) for r in p.store.images()} == before
    with Project(link) as p:  # a caller that does not say where it listed: walked, never emptied
        p.sync(listing)
        assert len(p.store.images()) == len(before)


def test_relabel_moves_file_and_row_and_never_overwrites(project):
    root = project.root
    src = root / "circle" / "circle_000.png"
    clash = root / "square" / "circle_000.png"
    clash.write_bytes((root / "square" / "square_000.png").read_bytes())  # same name waiting in the target
    clash_bytes = clash.read_bytes()
    project.sync()
    src_bytes = src.read_bytes()
    op = project.move_to_class([src], "square")
    new = Path(op.moves[0][1])
    assert new.name == "circle_000 (2).png" and new.read_bytes() == src_bytes
    assert clash.read_bytes() == clash_bytes and not src.exists()
    assert store_state(project)["square/circle_000 (2).png"] == "square"
    assert consistent(project)


def test_undo_redo_relabel(project):
    before = disk_state(project.root)
    project.move_to_class([project.root / "circle" / "circle_001.png"], "triangle")
    assert project.undo() is not None
    assert disk_state(project.root) == before and consistent(project)
    project.redo()
    assert (project.root / "triangle" / "circle_001.png").exists() and consistent(project)


def test_delete_goes_to_trash_and_undo_restores(project):
    before = disk_state(project.root)
    victim = project.root / "square" / "square_002.png"
    op = project.delete([victim])
    trashed = Path(op.moves[0][1])
    assert not victim.exists() and trashed.exists() and ".ponyclassifier" in trashed.parts
    assert "square/square_002.png" not in store_state(project)
    project.undo()
    assert disk_state(project.root) == before and consistent(project)


def test_import_reports_each_file_and_undo_removes_only_copies(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    rng = np.random.default_rng(1)
    draw_shape("circle", rng).save(outside / "Éclair ☀.png")  # non-ASCII name
    draw_shape("circle", rng).save(outside / "circle_000.png")  # collides with an existing file
    (outside / "notes.png").write_text("text")
    vanished = outside / "gone.png"
    results = project.import_files([outside / "Éclair ☀.png", outside / "circle_000.png", outside / "notes.png",
                                    vanished], "circle").results
    by_name = {Path(r.source).name: r for r in results}
    assert by_name["Éclair ☀.png"].target.endswith("circle/Éclair ☀.png")
    assert by_name["circle_000.png"].target.endswith("circle/circle_000 (2).png")
    assert "unsupported" in by_name["notes.png"].error
    assert "not found" in by_name["gone.png"].error
    assert consistent(project) and len(store_state(project)) == 14
    project.undo()
    assert len(store_state(project)) == 12 and consistent(project)
    assert (outside / "Éclair ☀.png").exists()  # the user's originals are never touched
    project.redo()
    assert len(store_state(project)) == 14 and consistent(project)


def test_class_rename_merge_delete_and_undo(project):
    before = disk_state(project.root)
    project.rename_class("circle", "round")
    assert "round" in project.classes() and "circle" not in project.classes() and consistent(project)
    project.merge_classes(["round", "square"], "square")
    assert project.classes() == ["square", "triangle"] and consistent(project)
    project.delete_class("triangle")
    assert project.classes() == ["square"] and consistent(project)
    while project.undo():
        pass
    assert disk_state(project.root) == before and consistent(project)


def test_bad_class_names_are_refused(project):
    for bad in ("", "a/b", ".hidden", " space", "x:y"):
        with pytest.raises(ProjectError):
            project.move_to_class([project.root / "circle" / "circle_000.png"], bad)


def test_failed_move_rolls_back_all_files(project, monkeypatch):
    import ponyclassifier.core.project as P

    before = disk_state(project.root)
    calls = {"n": 0}
    real = P._move_no_overwrite

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(P, "_move_no_overwrite", flaky)
    with pytest.raises(OSError):
        project.move_to_class(sorted((project.root / "circle").iterdir()), "square")
    assert disk_state(project.root) == before and consistent(project)


def test_killed_mid_relabel_is_rolled_back_on_next_open(tmp_path):
    """Case 16: SIGKILL after some files moved but before the store commit."""
    root = make_shapes_dataset(tmp_path / "p", per_class=6)
    with Project(root) as p:
        p.sync()
    before = disk_state(root)
    code = textwrap.dedent(f"""
        import os, signal
        import ponyclassifier.core.project as P
        real, n = P._move_no_overwrite, [0]
        def killing(src, dst):
            real(src, dst)
            n[0] += 1
            if n[0] == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        P._move_no_overwrite = killing
        p = P.Project({str(root)!r})
        p.move_to_class(sorted((p.root / "circle").iterdir()), "square")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr
    assert disk_state(root) != before  # files really were half moved
    with Project(root) as p:
        assert p.recovered and "rolled back" in p.recovered[0]
        assert disk_state(root) == before
        assert consistent(p) and p.store.integrity_ok()


def test_second_window_is_read_only(project):
    with Project(project.root) as second:
        assert second.read_only
        with pytest.raises(ProjectError):
            second.move_to_class([project.root / "circle" / "circle_000.png"], "square")


def test_new_images_get_splits_with_the_share_and_seed_of_the_last_make_splits(tmp_path):
    from ponyclassifier.core.splits import split_indices

    root = make_shapes_dataset(tmp_path / "p", per_class=5, classes=("circle", "square"))
    with Project(root) as p:
        p.sync()
        p.make_splits(0.5, 7)
        old = {r["relpath"]: r["split"] for r in p.store.images()}
        rng = np.random.default_rng(3)
        for c in ("circle", "square"):
            for i in range(20):
                draw_shape(c, rng, 32).save(root / c / f"new_{i:03d}.png")
        p.sync()
        assert p.make_missing_splits() == 40
        rows = p.store.images()
        now = {r["relpath"]: r["split"] for r in rows}
        assert {k: now[k] for k in old} == old  # images that had a split keep it
        assert p.split_settings() == {"val_fraction": 0.5, "seed": 7}  # remembered, not rewritten

        def oracle(fraction, seed):
            labels = [0 if r["class"] == "circle" else 1 for r in rows]
            train, val = split_indices([str(root / r["relpath"]) for r in rows], labels, root, fraction, seed)
            out = {rows[i]["relpath"]: "train" for i in train} | {rows[i]["relpath"]: "val" for i in val}
            return {k: v for k, v in out.items() if k not in old}

        new = {k: v for k, v in now.items() if k not in old}
        assert oracle(0.5, 7) != oracle(0.2, 0)  # the test can tell the settings apart
        assert new == oracle(0.5, 7)
        for c in ("circle", "square"):
            assert sum(1 for k, v in now.items() if k.startswith(c) and v == "val") >= 9  # about half, not 20 %
        assert p.make_missing_splits() == 0  # nothing left to give


def test_missing_splits_default_to_one_fifth_and_seed_zero_before_any_make_splits(project):
    assert project.split_settings() is None
    assert project.make_missing_splits() == len(project.store.images())
    for c, d in project.store.counts().items():
        assert d["val"] == 1 and d["train"] == 3  # round(4 * 0.2) = 1 per class


def test_one_set_of_class_name_rules(project):
    from ponyclassifier.core.project import class_name_problem

    assert class_name_problem("cat") is None and class_name_problem("big cat") is None
    for bad in ("", "  ", " cat", ".cat", "_cat", "a/b", "a\\b", "a:b", "..", "a\0b"):
        assert class_name_problem(bad), bad
        with pytest.raises(ProjectError, match="is not a usable class name"):
            project.create_class(bad)


def test_split_by_relpath_is_the_split_by_absolute_path(tmp_path):
    """The store's relative paths give exactly the split the absolute paths give (projects
    split before this shortcut keep their splits), nested folders and odd names included."""
    from ponyclassifier.core.splits import split_indices, split_indices_by_relpath

    rng = np.random.default_rng(0)
    rels = [f"{c}/{'sub/' if i % 3 == 0 else ''}{name}_{i}.png" for c in ("cat", "dog", "pony")
            for i, name in enumerate(["a", "ü ber", "x#y", "z"] * 8)]
    labels = [("cat", "dog", "pony").index(r.split("/")[0]) for r in rels]
    order = rng.permutation(len(rels))
    rels, labels = [rels[i] for i in order], [labels[i] for i in order]
    for fraction, seed in ((0.2, 0), (0.5, 7), (0.34, 123)):
        a = split_indices([str(tmp_path / r) for r in rels], labels, tmp_path, fraction, seed)
        b = split_indices_by_relpath(rels, labels, fraction, seed)
        assert [x.tolist() for x in a] == [x.tolist() for x in b]
    # and the split itself has not changed with the shortcut (values from the code before it)
    train, val = split_indices_by_relpath(["c/a.png", "c/b.png", "c/c.png", "c/d.png", "c/e.png"], [0] * 5, 0.4, 0)
    assert (train.tolist(), val.tolist()) == ([0, 2, 4], [1, 3])


def _loose_pictures(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        draw_shape("circle", rng, 32).save(folder / f"p{i}.png")
        out.append(folder / f"p{i}.png")
    return out


def test_a_picture_that_vanishes_between_its_check_and_its_copy_fails_alone(project, tmp_path):
    """Every file is checked (decoded) first, then copied: one that is gone by then is one
    failed row, and the others are imported."""
    files = _loose_pictures(tmp_path / "drop", 3)

    def progress(done, total):
        if done == len(files):  # every file checked: the copying starts next
            files[0].unlink()

    op = project.import_files(files, "square", progress=progress)
    by_name = {Path(r.source).name: r for r in op.results}
    assert "not found" in by_name["p0.png"].error
    assert by_name["p1.png"].target and by_name["p2.png"].target
    assert consistent(project) and len(store_state(project)) == 14


def test_stopping_an_import_keeps_what_was_copied_and_says_what_was_not(project, tmp_path):
    files = _loose_pictures(tmp_path / "drop", 4)
    seen, stop = [], []

    def progress(done, total):
        seen.append((done, total))
        if done == len(files) + 2:  # the second copy has started
            stop.append(True)

    op = project.import_files(files, "square", progress=progress, should_stop=lambda: bool(stop))
    imported = [r for r in op.results if r.target]
    assert len(imported) == 2 and all("stopped" in r.error for r in op.results if not r.target)
    assert seen[-1][1] == 2 * len(files) and [d for d, _ in seen] == list(range(1, len(files) + 3))
    assert consistent(project) and len(store_state(project)) == 14
