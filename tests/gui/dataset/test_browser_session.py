"""The Dataset browser as a view of a ProjectSession: the session opens a root and the
browser lists it (the one walk of the folder) and hands the rows back; the session attaches
the store and labelling starts; every change is told to the session; a project let go while
a change still writes to it is closed when that change ends."""

from __future__ import annotations

from pathlib import Path

from ponyclassifier.core.session import ProjectSession
from ponyclassifier.gui.dataset.browser import QtDatasetBrowser
from ponyclassifier.gui.projects import open_project_job
from tests.conftest import make_shapes_dataset


def _browser(qtbot, gui_env, session: ProjectSession) -> QtDatasetBrowser:
    b = QtDatasetBrowser(session, cache_dir=gui_env / "thumbs")
    qtbot.addWidget(b)
    b.resize(900, 600)
    b.show()
    return b


def _listed(qtbot, b: QtDatasetBrowser, session: ProjectSession, root: Path) -> None:
    with qtbot.waitSignal(b.listing_finished, timeout=20000):
        session.open(str(root))


def _attach(session: ProjectSession, root: Path):
    opened = open_project_job(str(root))  # what the main window runs on a worker
    assert session.attach(opened["project"], opened["rows"], opened["counts"])
    return opened["project"]


def test_the_session_opens_and_the_browser_lists_and_hands_the_rows_back(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=4, classes=("circle", "square"))
    (root / "empty").mkdir()
    session = ProjectSession()
    heard: list[str] = []
    session.rows_changed.connect(lambda: heard.append("rows"))
    b = _browser(qtbot, gui_env, session)
    try:
        _listed(qtbot, b, session, root)
        assert heard == ["rows"]
        assert b.root == session.root == str(root)
        assert session.classes == ["circle", "empty", "square"] == b.classes
        assert sorted(r.path for r in session.rows) == sorted(b.model.all_paths())
        assert {r.cls for r in session.rows} == {"circle", "square"} and session.counts == (8, 3)
        assert b.project is None and not b.can_edit  # no store attached yet

        session.close()
        assert b.root is None and b.model.file_count() == 0 and b.classes == []
        assert b.grid_stack.currentWidget() is b.empty_label and "No project open" in b.empty_label.text()
    finally:
        b.shutdown()


def test_labelling_follows_the_attached_store_and_tells_the_session(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, classes=("circle", "square"))
    session = ProjectSession()
    b = _browser(qtbot, gui_env, session)
    try:
        _listed(qtbot, b, session, root)
        with qtbot.waitSignal(b.project_attached, timeout=5000):
            project = _attach(session, root)
        assert b.project is project and b.can_edit
        splits: list[bool] = []
        session.split_changed.connect(lambda: splits.append(True))
        circle = min(p for p in b.model.all_paths() if "/circle/" in p.replace("\\", "/"))
        b.select_paths([circle])
        with qtbot.waitSignal(b.action_finished, timeout=20000):
            assert b.move_selected_to("square")
        moved = str(root / "square" / Path(circle).name)
        assert {r.path: r.cls for r in session.rows}[moved] == "square"
        assert session.counts == (6, 2) and splits
        assert session.busy_reason() is None
        with qtbot.waitSignal(b.splits_changed, timeout=20000):
            assert b.make_splits(0.5, 3)
        assert b.split_settings == {"val_fraction": 0.5, "seed": 3}
        assert session.split().val_fraction == 0.5  # the split shown is the split trained on
    finally:
        b.shutdown()


def test_a_project_let_go_during_a_change_is_closed_when_the_change_ends(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, classes=("circle", "square"))
    session = ProjectSession()
    b = _browser(qtbot, gui_env, session)
    try:
        _listed(qtbot, b, session, root)
        project = _attach(session, root)
        closes: list[bool] = []
        close = project.close
        project.close = lambda: (closes.append(b.busy), close())
        b.select_paths([b.model.all_paths()[0]])
        assert b.move_selected_to("square")
        assert b.busy and session.busy_reason()
        session.close()  # the change still writes to the project: it is not closed under it
        assert closes == [] and b.project is None
        qtbot.waitUntil(lambda: not b.busy, timeout=20000)
        assert closes == [False]  # closed once, after the change ended
        assert project.store.conn is None
    finally:
        b.shutdown()


def test_the_old_calls_still_work_through_the_session(qtbot, tmp_path, gui_env):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2, classes=("circle", "square"))
    b = QtDatasetBrowser(cache_dir=gui_env / "thumbs")  # no session given: its own
    qtbot.addWidget(b)
    try:
        with qtbot.waitSignal(b.listing_finished, timeout=20000):
            b.open_project(root)
        assert b.session.root == str(root) and len(b.session.rows) == 4
        opened = open_project_job(str(root))
        b.attach_project(opened["project"], opened["rows"], opened["classes"], opened["counts"])
        assert b.session.project is opened["project"] and b.can_edit
        b.detach_project()
        assert b.session.project is None and opened["project"].store.conn is None
        assert b.model.file_count() == 4 and b.root == str(root)  # the listing stays shown
    finally:
        b.shutdown()
