"""The Train place as a view of the ProjectSession: it follows the project opened, records
through its own connection to the store, and shows the runs the session lists."""

from __future__ import annotations

from ponyclassifier.core.store import ProjectStore
from ponyclassifier.gui.train.panel import QtTrainingPanel
from tests.conftest import make_shapes_dataset
from tests.gui.conftest import make_panel


def record(store: ProjectStore, recipe: str = "scratch") -> int:
    run_id = store.start_run(recipe, {"dataset": str(store.root)}, "cpu")
    store.finish_run(run_id, status="finished", seconds=1.0, model_path=None, metrics={"epochs_run": 1})
    return run_id


def test_the_panel_follows_the_session(qtbot, tmp_path):
    a = make_shapes_dataset(tmp_path / "a", per_class=3, size=16, classes=("circle", "square"))
    b = make_shapes_dataset(tmp_path / "b", per_class=3, size=16, classes=("circle", "triangle"))
    store = ProjectStore(a)
    try:
        _win, panel = make_panel(qtbot, a, store)
        session = panel.session
        assert panel.root == a and panel.store is store
        own = panel._record_store  # noqa: SLF001 (the panel's own connection records its runs)
        assert own is not None and own is not store and own.conn is not None
        # a run recorded elsewhere (the command line) shows once the session says runs changed
        assert panel.runs_view.table.rowCount() == 0
        first = record(store)
        session.notify_runs_changed()
        assert [r.id for r in panel.runs_view.runs] == [first] and panel.runs_view.table.rowCount() == 1
        # deleting a run writes through the panel's connection and tells the session
        heard = []
        session.runs_changed.connect(lambda: heard.append(True))
        assert panel.runs_view.delete_run(first, confirm=False)
        assert heard and store.runs() == [] and panel.runs_view.table.rowCount() == 0
        # another project opened: nothing of the last one, and the own connection is closed
        panel.live.write("from project a")
        session.open(b)
        assert panel.root == b and panel.store is None and panel._record_store is None  # noqa: SLF001
        assert own.conn is None and panel.log.toPlainText() == "" and panel.runs_view.runs == []
        assert not panel.start_button.isEnabled()  # listed, store not open yet: no split, no run record
        assert panel.start_training() is None and "still opening" in panel.log.toPlainText()
        session.close()
        assert panel.root is None and not panel.start_button.isEnabled()
        assert panel.shutdown()
        assert len(session.opened) == 0 and len(session.runs_changed) == 1  # only the test's listener is left
    finally:
        store.close()


def test_a_panel_made_for_an_open_session_shows_its_project(qtbot, tmp_path):
    from ponyclassifier.core.session import ProjectSession
    from ponyclassifier.gui.train.open_session import open_in_session

    root = make_shapes_dataset(tmp_path / "shapes", per_class=3, size=16, classes=("circle", "square"))
    store = ProjectStore(root)
    try:
        run_id = record(store)
        session = ProjectSession()
        open_in_session(session, root, store)
        panel = QtTrainingPanel(session)
        qtbot.addWidget(panel)
        assert panel.root == root and panel._record_store is not None  # noqa: SLF001
        assert [r.id for r in panel.runs_view.runs] == [run_id] and panel.start_button.isEnabled()
        assert panel.shutdown()
        session.close()
    finally:
        store.close()
