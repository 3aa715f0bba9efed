"""GUI test harness: isolated settings and data folder, Qt warnings fail the test, and a
test fails if it leaves a worker running on the thread pool."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThreadPool, QtMsgType, qInstallMessageHandler

from ponyclassifier.gui.app import configure_application


@pytest.fixture(autouse=True)
def gui_env(qapp, tmp_path, monkeypatch):
    data = tmp_path / "appdata"
    monkeypatch.setenv("PONYCLASSIFIER_DATA_DIR", str(data))
    monkeypatch.setenv("PONYCLASSIFIER_DEMO_PER_CLASS", "4")
    configure_application(qapp)
    qapp.setOrganizationName("PonyClassifierTests")  # never the user's real settings
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QSettings().clear()

    problems: list[str] = []
    # The offscreen platform plugin itself says this on every top-level show; it is about
    # the test platform, not our code, and never appears on xcb/Windows/macOS.
    platform_noise = ("This plugin does not support propagateSizeHints()",
                      "This plugin does not support raise()")

    def handler(kind, context, message):
        if message in platform_noise:
            return
        if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            problems.append(f"{kind.name}: {message} ({context.file}:{context.line})")

    previous = qInstallMessageHandler(handler)
    yield data
    pool = QThreadPool.globalInstance()
    idle = pool.waitForDone(15000)
    qInstallMessageHandler(previous)
    assert idle, f"a worker was left running on the thread pool ({pool.activeThreadCount()} active)"
    assert not problems, "Qt warnings:\n" + "\n".join(problems)


def make_panel(qtbot, root, store):
    """(window, panel): a QtTrainingPanel in a shown 1300×850 main window, viewing a
    ``ProjectSession`` (``panel.session``) with the project ``root`` open and attached to its
    ``store`` (the caller's: it closes it). Keep the window referenced while the panel is
    used (qtbot holds it only weakly); the caller shuts the panel down."""
    from PySide6.QtWidgets import QMainWindow

    from ponyclassifier.core.project import iter_project_files
    from ponyclassifier.core.session import ProjectSession
    from ponyclassifier.gui.train.open_session import open_in_session
    from ponyclassifier.gui.train.panel import QtTrainingPanel

    session = ProjectSession()
    win = QMainWindow()
    panel = QtTrainingPanel(session)
    win.setCentralWidget(panel)
    win.resize(1300, 850)
    qtbot.addWidget(win)
    win.show()
    open_in_session(session, root, store, rows=list(iter_project_files(root)))
    return win, panel


@pytest.fixture
def make_window(qtbot):
    """Factory: ``make_window(width=1280, height=800)`` gives a shown MainWindow at the default
    window size (``make_window(None)``: at the size the window restored from its settings);
    each one is closed after the test (a training still running is stopped, as if the user
    had said so), so no test leaves a window or a run behind."""
    from ponyclassifier.gui.main_window import MainWindow

    made = []

    def make(width: int | None = 1280, height: int = 800) -> MainWindow:
        w = MainWindow()
        qtbot.addWidget(w)
        if width is not None:
            w.resize(width, height)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        if w.isVisible():
            w._stop_confirmed = True  # noqa: SLF001 (the user's "stop and keep the best model")
            w.close()


def open_in(qtbot, w, root) -> None:
    """Open ``root`` in main window ``w`` and wait until every place has the project."""
    with qtbot.waitSignal(w.browser.listing_finished, timeout=30000):
        assert w.open_project(str(root))
    qtbot.waitUntil(lambda: w.browser.project is not None and w.training.store is not None and not w.browser.busy,
                    timeout=30000)


# QtMultimedia probes for VA-API and PipeWire on every machine and warns when they are not
# installed, and the offscreen platform has no GPU for frame conversion. Both are about the
# test machine, not our code; everything else still fails the test (the check above).
_MEDIA_NOISE_CATEGORIES = ("qt.multimedia.symbolsresolver",)
_MEDIA_NOISE = ("No RHI backend",)


@pytest.fixture
def media_noise(gui_env):
    """Drops the machine noise of QtMultimedia; a test may add messages it expects to the
    list yielded. Modules that build camera views use it for every test
    (``pytestmark = pytest.mark.usefixtures("media_noise")``)."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    previous = None
    expected: list[str] = []

    def handler(kind, context, message):
        if context.category in _MEDIA_NOISE_CATEGORIES or any(n in message for n in (*_MEDIA_NOISE, *expected)):
            return
        if kind in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg):
            return
        previous(kind, context, message)

    previous = qInstallMessageHandler(handler)
    yield expected
    qInstallMessageHandler(previous)
