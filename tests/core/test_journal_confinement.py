"""The project journal and store as hostile input (issue 12): a project folder someone sends
you may hold any journal rows and any store; opening it never touches a file outside it,
a row that cannot be followed safely is set aside (reported, no file touched) and the
project opens; a store in a state this version cannot read gives a StoreError (left as it
is). Also: a symbolic link is moved, never its target; a failed undo keeps its operation;
a picture left under two names by a kill is one picture again after the next open."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from ponyclassifier.core.project import Project, ProjectError
from ponyclassifier.core.store import SCHEMA_VERSION, StoreError, store_path

from ..conftest import make_shapes_dataset


def tree(folder: Path) -> dict:
    """Every entry below ``folder`` with its bytes (a link: its target) and times."""
    out = {}
    for f in sorted(folder.rglob("*")):
        st = os.lstat(f)
        if f.is_dir() and not f.is_symlink():  # a folder: its name (its times follow its files)
            out[f.relative_to(folder).as_posix()] = "folder"
            continue
        data = os.readlink(f) if f.is_symlink() else f.read_bytes()
        out[f.relative_to(folder).as_posix()] = (data, st.st_mtime_ns, st.st_ino)
    return out


def project_files(root: Path) -> dict:
    return {k: v for k, v in tree(root).items() if not k.startswith(".ponyclassifier")}


@pytest.fixture
def world(tmp_path):
    root = make_shapes_dataset(tmp_path / "project", per_class=2, classes=("circle", "square"))
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "precious.png").write_bytes((root / "circle" / "circle_000.png").read_bytes())
    (sentinel / "diary.txt").write_text("mine")
    with Project(root) as p:
        p.sync()
    return root, sentinel


def add_rows(root: Path, rows: list[tuple[object, object]], state: str = "pending") -> None:
    """Journal rows as another program (or an attacker) might have left them."""
    with Project(root) as p:
        with p.store.transaction() as c:
            for kind, moves in rows:
                c.execute("INSERT INTO journal (created, kind, moves, state) VALUES (0, ?, ?, ?)", (kind, moves, state))


def v2(*pairs) -> str:
    return json.dumps({"v": 2, "moves": [list(p) for p in pairs]})


HOSTILE = {
    "parent dirs out": ("relabel", v2(("../sentinel/precious.png", "circle/stolen.png"))),
    "parent dirs in": ("relabel", v2(("circle/circle_000.png", "../sentinel/precious.png"))),
    "dots inside": ("relabel", v2(("circle/../../sentinel/precious.png", "circle/x.png"))),
    "absolute": ("relabel", v2(("SENTINEL/precious.png", "circle/x.png"))),
    "drive": ("relabel", v2(("C:/Users/x/precious.png", "circle/x.png"))),
    "nul": ("relabel", v2(("circle/circle_000.png\0", "square/x.png"))),
    "not normalised": ("relabel", v2(("circle//circle_000.png", "square/x.png"))),
    "the store itself": ("relabel", v2((".ponyclassifier/project.sqlite", "circle/x.png"))),
    "a folder as a file": ("relabel", v2(("square", "circle/x"))),
    "old format, outside": ("relabel", json.dumps([["SENTINEL/precious.png", "ROOT/circle/x.png"]])),
    "old format, relative": ("relabel", json.dumps([["circle/circle_000.png", "square/x.png"]])),
    "old import outside": ("import", json.dumps([["", "SENTINEL/precious.png"]])),
    "import copy name": ("import", v2(("circle/circle_000.png", "circle/x.png"))),
    "not json": ("relabel", "{{{ not json"),
    "json number": ("relabel", "42"),
    "unknown version": ("relabel", json.dumps({"v": 99, "moves": []})),
    "not pairs": ("relabel", v2(("circle/circle_000.png",))),
    "numbers": ("relabel", json.dumps({"v": 2, "moves": [[1, 2]]})),
    "nested deep": ("relabel", "[" * 100000 + "]" * 100000),
    "kind a number": (7, v2(("circle/circle_000.png", "square/x.png"))),
    "kind with escapes": ("relabel\x1b[2J\r", v2(("circle/circle_000.png", "square/x.png"))),
    "moves a blob": ("relabel", b'[["circle/circle_000.png", "square/x.png"]]'),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_journal_row_is_set_aside_and_touches_nothing(world, name):
    root, sentinel = world
    kind, moves = HOSTILE[name]
    if isinstance(moves, str):
        moves = moves.replace("SENTINEL", str(sentinel)).replace("ROOT", str(root))
    before_out, before_in = tree(sentinel), project_files(root)
    add_rows(root, [(kind, moves)])
    with Project(root) as p:
        assert not p.read_only
        assert len(p.recovered) == 1 and "set aside" in p.recovered[0] and "no file was touched" in p.recovered[0]
        assert "\x1b" not in p.recovered[0] and "\r" not in p.recovered[0]
        assert p.store.conn.execute("SELECT state FROM journal").fetchone()[0] == "set aside"
        p.move_to_class([root / "circle" / "circle_001.png"], "square")  # the project works
        p.undo()
    assert tree(sentinel) == before_out, "a file outside the project was touched"
    assert project_files(root) == before_in
    with Project(root) as p:
        assert p.recovered == []  # reported once


def test_a_symlinked_folder_leading_out_is_not_followed(world):
    root, sentinel = world
    os.symlink(sentinel, root / "circle" / "door")  # inside a class: circle/door -> outside
    before_out = tree(sentinel)
    add_rows(root, [("relabel", v2(("circle/door/precious.png", "square/stolen.png"))),
                    ("relabel", v2(("circle/circle_000.png", "circle/door/planted.png")))])
    with Project(root) as p:
        assert len(p.recovered) == 2 and all("symbolic link" in n for n in p.recovered)
    assert tree(sentinel) == before_out and not (root / "square" / "stolen.png").exists()


def test_a_bad_row_does_not_stop_a_good_one_from_being_rolled_back(world):
    root, sentinel = world
    src, dst = root / "circle" / "circle_000.png", root / "square" / "moved.png"
    add_rows(root, [("relabel", v2(("../sentinel/precious.png", "circle/x.png"))),
                    ("relabel", v2(("circle/circle_000.png", "square/moved.png")))])
    os.replace(src, dst)  # the second was killed after moving, before its commit
    with Project(root) as p:
        assert "set aside" in p.recovered[0] and "was rolled back" in p.recovered[1]
        assert src.exists() and not dst.exists()


def test_a_picture_left_under_two_names_is_one_picture_again(world):
    """A kill between linking the new name and unlinking the old."""
    root, _ = world
    src, dst = root / "circle" / "circle_000.png", root / "square" / "circle_000.png"
    with Project(root) as p:
        p._journal_begin("relabel", [(str(src), str(dst))])
    os.link(src, dst)
    with Project(root) as p:
        assert "rolled back" in p.recovered[0]
        assert src.exists() and not dst.exists() and os.stat(src).st_nlink == 1
        assert {r["relpath"] for r in p.store.images()} == {"circle/circle_000.png", "circle/circle_001.png",
                                                            "square/square_000.png", "square/square_001.png"}


def test_an_unrelated_file_under_a_planned_name_is_left_alone(world):
    """A planned target that is someone else's file (not the same file as the source) is
    never deleted by a rollback: only a provably moved file is touched."""
    root, _ = world
    src, dst = root / "circle" / "circle_000.png", root / "square" / "theirs.png"
    dst.write_bytes(b"someone else's")
    with Project(root) as p:
        p._journal_begin("relabel", [(str(src), str(root / "square" / "x.png"))])
        with p.store.transaction() as c:  # as if planned when the name was free
            c.execute("UPDATE journal SET moves=? WHERE state='pending'", (v2(("circle/circle_000.png",
                                                                                 "square/theirs.png")),))
    with Project(root) as p:
        assert "rolled back" in p.recovered[0]
    assert src.exists() and dst.read_bytes() == b"someone else's"


def test_a_flood_of_journal_rows_is_bounded(world, monkeypatch):
    import ponyclassifier.core.project as P

    monkeypatch.setattr(P, "_RECOVER_ROWS", 5)
    root, sentinel = world
    before = tree(sentinel)
    add_rows(root, [("relabel", v2(("../sentinel/precious.png", f"circle/{i}.png"))) for i in range(40)])
    with Project(root) as p:
        assert len(p.recovered) == 6 and "35 more unfinished entries" in p.recovered[0]
        assert p.store.conn.execute("SELECT COUNT(*) FROM journal WHERE state='set aside'").fetchone()[0] == 40
    assert tree(sentinel) == before


def test_a_damaged_journal_table_is_a_clear_error(world):
    root, sentinel = world
    with sqlite3.connect(store_path(root)) as c:
        c.execute("DROP TABLE journal")
        c.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY, what TEXT)")
    with pytest.raises(ProjectError, match="journal is damaged"):
        Project(root)
    with Project(root, read_only=True) as p:  # still readable
        assert p.read_only


# ------------------------------------------------------------------- the store
def _store_with(root: Path, *statements: str, version: int | None = None) -> bytes:
    with sqlite3.connect(store_path(root)) as c:
        for s in statements:
            c.execute(s)
        if version is not None:
            c.execute(f"PRAGMA user_version={version}")
    c.close()
    return store_path(root).read_bytes()


@pytest.mark.parametrize("statements, message", [
    (["DROP TABLE images"], "no images table"),
    (["ALTER TABLE runs DROP COLUMN metrics"], "runs table lacks metrics"),
    (["INSERT INTO images (relpath, class, updated) VALUES (x'41', 'circle', 0)"], "damaged row"),
    (["INSERT INTO images (relpath, class, updated) VALUES ('../outside.png', 'circle', 0)"], "damaged row"),
    (["INSERT INTO images (relpath, class, updated) VALUES ('/etc/passwd', 'circle', 0)"], "damaged row"),
    (["INSERT INTO images (relpath, class, updated) VALUES ('a.png', x'00ff', 0)"], "damaged row"),
    (["INSERT INTO images (relpath, class, updated, width) VALUES ('b.png', 'c', 0, 'wide')"], "damaged row"),
    (["INSERT INTO meta VALUES ('split_settings', x'0c')"], "damaged row"),
    (["INSERT INTO run_epochs VALUES (1, 'one', '{}')"], "damaged row"),
])
def test_a_store_in_a_state_this_version_cannot_read_is_refused_untouched(world, statements, message):
    root, _ = world
    before = _store_with(root, *statements)
    for read_only in (False, True):
        with pytest.raises(StoreError, match=message):
            Project(root, read_only=read_only)
        assert store_path(root).read_bytes() == before


def test_a_newer_store_missing_what_we_read_is_refused_and_one_that_has_it_opens_read_only(world):
    root, _ = world
    _store_with(root, version=SCHEMA_VERSION + 1)
    with Project(root) as p:
        assert p.read_only and "newer" in p.store.message
    before = _store_with(root, "DROP TABLE thumbnails")
    with pytest.raises(StoreError, match="no thumbnails table"):
        Project(root)
    assert store_path(root).read_bytes() == before


def test_another_programs_database_under_our_name_is_refused_untouched(tmp_path):
    root = make_shapes_dataset(tmp_path / "p", per_class=1, classes=("a", "b"))
    store_path(root).parent.mkdir()
    with sqlite3.connect(store_path(root)) as c:
        c.execute("CREATE TABLE meta (something TEXT)")
    c.close()
    before = store_path(root).read_bytes()
    with pytest.raises(StoreError, match="left as it was"):
        Project(root)
    assert store_path(root).read_bytes() == before


def test_damaged_run_records_and_split_settings_give_clear_results(world):
    root, _ = world
    with Project(root) as p:
        rid = p.store.start_run("transfer", {"epochs": 1})
        p.store.add_epoch(rid, 1, {"loss": 1.0})
        with p.store.transaction() as c:
            c.execute("UPDATE runs SET settings='{not json' WHERE id=?", (rid,))
            c.execute("UPDATE run_epochs SET logs='[1, 2]'")
            c.execute("INSERT OR REPLACE INTO meta VALUES ('split_settings', '[\"garbage\"]')")
        with pytest.raises(StoreError, match=f"run {rid} in the project store is damaged"):
            p.store.runs()
        with pytest.raises(StoreError, match="epoch 1 of run"):
            p.store.run_curves(rid)
        assert p.split_settings() is None
        for garbage in ('{"val_fraction": "x", "seed": 0}', '{"val_fraction": 0.2, "seed": [1]}', "1e999"):
            p.store.set_meta("split_settings", garbage)
            assert p.split_settings() is None
        p.store.set_meta("split_settings", '{"val_fraction": 7, "seed": 0}')
        p.move_to_class([root / "circle" / "circle_000.png"], "square")  # splits with the defaults
        assert all(r["split"] for r in p.store.images())
        from ponyclassifier.core.runs import project_split

        assert project_split(p.store).val_fraction is None


# ------------------------------------------------------------ links, undo, outside
def test_a_symlinked_picture_is_moved_and_deleted_as_a_link(world):
    root, sentinel = world
    link = root / "circle" / "link.png"
    os.symlink(sentinel / "precious.png", link)
    before_out = tree(sentinel)
    with Project(root) as p:
        p.sync()
        op = p.move_to_class([link], "square")
        moved = root / "square" / "link.png"
        assert moved.is_symlink() and os.readlink(moved) == str(sentinel / "precious.png") and not link.exists()
        assert ("square/link.png", "square") in {(r["relpath"], r["class"]) for r in p.store.images()}
        assert op.moves == [(str(link), str(moved))]
        op = p.delete([moved])
        assert Path(op.moves[0][1]).is_symlink() and not os.path.lexists(moved)
        p.undo()
        p.undo()
        assert link.is_symlink() and os.readlink(link) == str(sentinel / "precious.png")
    assert tree(sentinel) == before_out


def test_paths_outside_the_project_are_refused_before_anything_moves(world):
    root, sentinel = world
    before_out, before_in = tree(sentinel), project_files(root)
    with Project(root) as p:
        with pytest.raises(ProjectError, match="not inside the project"):
            p.move_to_class([root / "circle" / "circle_000.png", sentinel / "precious.png"], "square")
        with pytest.raises(ProjectError, match="not inside the project"):
            p.delete([sentinel / "precious.png"])
        with pytest.raises(ProjectError, match="not a file"):
            p.delete([root / "square"])
        assert p.store.conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert tree(sentinel) == before_out and project_files(root) == before_in


def test_a_failed_undo_or_redo_keeps_the_operation(world):
    root, _ = world
    with Project(root) as p:
        op = p.move_to_class([root / "circle" / "circle_000.png"], "square")
        moved = Path(op.moves[0][1])
        aside = root.parent / "aside.png"
        os.replace(moved, aside)  # another program takes the file away
        with pytest.raises(OSError):
            p.undo()
        assert p.undo_stack == [op] and p.redo_stack == []  # still undoable
        os.replace(aside, moved)
        assert p.undo() is op and p.redo_stack == [op] and p.undo_stack == []
        (root / "square" / "circle_000.png").write_bytes(b"x")  # the redo's target name is taken
        with pytest.raises(FileExistsError):
            p.redo()
        assert p.redo_stack == [op] and p.undo_stack == []
        assert (root / "circle" / "circle_000.png").exists()  # rolled back: nothing moved


def test_an_import_into_a_read_only_project_copies_nothing(world, tmp_path):
    root, sentinel = world
    before = project_files(root)
    with Project(root) as first, Project(root) as second:
        assert second.read_only and not first.read_only
        with pytest.raises(ProjectError):
            second.import_files([sentinel / "precious.png"], "circle")
    assert project_files(root) == before


def test_an_interrupted_import_leaves_no_copy_the_journal_does_not_know(world):
    """Killed mid-copy (a truncated hidden copy), after linking (the copy under its name
    and the hidden one), or before starting (a file someone else put at a planned name
    since: not ours, so kept)."""
    root, _ = world
    folder = root / "circle"
    steps = [(folder / f".ponyimport-abc-{i}", folder / f"new_{i}.png") for i in range(3)]
    with Project(root) as p:
        p._journal_begin("import", [(str(t), str(d)) for t, d in steps])
    steps[0][0].write_bytes(b"\x89PNG half")  # truncated mid-copy
    steps[1][0].write_bytes((folder / "circle_000.png").read_bytes())
    os.link(steps[1][0], steps[1][1])  # linked, not committed
    steps[2][1].write_bytes(b"someone else's")  # never copied; the name taken by another program
    with Project(root) as p:
        assert p.recovered == ["An interrupted import was rolled back: its 3 unfinished copies removed."]
        assert not any(os.path.lexists(t) for t, _ in steps)
        assert not steps[0][1].exists() and not steps[1][1].exists()
        assert steps[2][1].read_bytes() == b"someone else's"
