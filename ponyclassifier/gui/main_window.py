"""The main window: the four places (Dataset, Train, Explain, Predict), menus,
toolbar, status bar, projects (open, new, recent, demo) and remembered window state.

Opening a project lists its folder in the browser at once and, beside it on a worker,
opens the project store (:func:`.projects.open_project_job`); a damaged store is
reported in a dialog and the project is not opened (RELIABILITY.md case 18).

The Dataset menu and toolbar reach the browser's tools (capture from a camera, find
duplicates / similar images, the augmentation preview). The augmentation strengths set in
the Dataset place are remembered under :data:`AUGMENT_SETTINGS_KEY` (a JSON object, the
``AugmentConfig.to_dict()``) so the Train place trains with what the user previewed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QStackedWidget,
    QStyle,
    QToolBar,
    QWidget,
)

from ..core.session import ModelSession, ProjectSession
from . import projects, workers
from .dataset.browser import QtDatasetBrowser

PLACES = ("Dataset", "Train", "Explain", "Predict")
AUGMENT_SETTINGS_KEY = "augment/config"  # JSON of AugmentConfig.to_dict(); the Train place reads it too


def load_augment_config(settings: QSettings | None = None) -> dict | None:
    """The remembered augmentation strengths, or None (never saved, or unreadable)."""
    raw = (settings or QSettings()).value(AUGMENT_SETTINGS_KEY)
    if not raw:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def save_augment_config(config: dict, settings: QSettings | None = None) -> None:
    (settings or QSettings()).setValue(AUGMENT_SETTINGS_KEY, json.dumps(config, sort_keys=True))


class MainWindow(QMainWindow):
    project_changed = Signal(str)
    project_ready = Signal(str)  # the store is open: labelling works
    project_failed = Signal(str)  # the store could not be opened (message)
    demo_ready = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("PonyClassifier")
        self.setMinimumSize(720, 480)
        self.project: str | None = None
        self._demo_job: workers.Job | None = None
        self._demo_dialog: QProgressDialog | None = None
        self._store_job: workers.Job | None = None  # the store of the project being opened
        self._store_jobs: set = set()  # store jobs not yet back (a superseded one closes what it opened)
        self._store_next = None  # the store job to start once those are back (one project lock at a time)
        self._store_wanted_for: str | None = None  # its root, until the listing is complete
        self._model_chosen = False  # the user chose a model for this project before its store opened
        self._closing = False
        self._stop_confirmed = False  # the user chose to stop the training for what comes next
        self.last_dialog: QMessageBox | None = None

        workers.thumbnail_service().set_cache_dir(projects.thumbnail_cache_dir())  # one cache, every size
        # The app's state, once (core/session.py): every place is a view of these two.
        self.session = ProjectSession()
        self.models = ModelSession()
        self.session.rows_changed.connect(self._on_rows_changed)
        self.browser = QtDatasetBrowser(self.session, cache_dir=projects.thumbnail_cache_dir())
        self.browser.file_count_changed.connect(self._on_browser_file_count_changed)
        self.browser.listing_finished.connect(self._on_browser_listing_finished)
        self.browser.listing_failed.connect(self._on_browser_listing_failed)
        self.browser.counts_changed.connect(self._on_browser_counts_changed)
        self.browser.status_message.connect(self._on_browser_status_message)
        self.browser.set_augment_config(load_augment_config())
        self.browser.augment_config_changed.connect(self._on_browser_augment_config_changed)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.browser)
        from .train.panel import QtTrainingPanel

        self.training = QtTrainingPanel(self.session)
        self.training.set_augment_config(load_augment_config())
        self.browser.augment_config_changed.connect(self.training.set_augment_config)
        self.training.relabel_requested.connect(self._on_training_relabel_requested)
        self.stack.addWidget(self.training)
        self.training.open_model_requested.connect(self.open_model_in)
        self.training.model_saved.connect(self._on_training_model_saved)
        # one split (in the session): the Dataset place changes it, the Train place shows it and trains on it
        self.training.splits_requested.connect(self.browser.open_splits)
        from .explain.page import ExplainPage
        from .predict.live_host import LiveHost
        from .predict.page import PredictPage

        self.explain = ExplainPage(self.session, self.models)
        self.explain.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.explain.open_image_requested.connect(self._on_explain_open_image_requested)
        self.stack.addWidget(self.explain)
        self.predict = PredictPage(self.session, self.models)
        self.predict.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.stack.addWidget(self.predict)
        self.live_host = LiveHost(self.session, self.models, self)
        self.live_host.created.connect(self._on_live_created)
        self.predict.set_live_widget(self.live_host)

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(22, 22))
        self.sidebar.setFixedWidth(150)
        self.sidebar.setSpacing(2)
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        sp = QStyle.StandardPixmap
        icons = (sp.SP_DirIcon, sp.SP_MediaPlay, sp.SP_FileDialogContentsView, sp.SP_DialogApplyButton)
        for name, icon in zip(PLACES, icons):
            it = QListWidgetItem(self.style().standardIcon(icon), name)
            it.setSizeHint(QSize(140, 40))
            self.sidebar.addItem(it)
        self.sidebar.currentRowChanged.connect(self._on_sidebar_current_row_changed)

        central = QWidget()
        cl = QHBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.sidebar)
        cl.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self.path_label = QLabel("No project")
        self.count_label = QLabel("")
        self.statusBar().addWidget(self.path_label, 1)
        self.statusBar().addPermanentWidget(self.count_label)
        self.setStyleSheet(
            "QListWidget#sidebar { border: none; border-right: 1px solid palette(mid);"
            " background: palette(window); padding-top: 8px; font-size: 13px; }"
            "QListWidget#sidebar::item { padding-left: 10px; border-radius: 6px; margin: 0 6px; }"
            "QListWidget#sidebar::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }"
            "QLabel#pageTitle { font-size: 22px; font-weight: 600; }"
            "QLabel#command { font-family: monospace; font-size: 13px; padding: 10px 12px;"
            " background: palette(base); border: 1px solid palette(mid); border-radius: 6px; }")
        self.set_place(0)
        self._restore_settings()

    # ------------------------------------------------------------------ UI
    def _make_actions(self) -> None:
        sp = QStyle.StandardPixmap
        st = self.style()
        self.act_new = QAction(st.standardIcon(sp.SP_FileDialogNewFolder), "&New Project…", self)
        self.act_new.setShortcut(QKeySequence.StandardKey.New)
        self.act_new.setStatusTip("Choose an empty folder and create one subfolder per class")
        self.act_new.triggered.connect(self.new_project_dialog)
        self.act_open = QAction(st.standardIcon(sp.SP_DirOpenIcon), "&Open Folder…", self)
        self.act_open.setShortcut(QKeySequence("Ctrl+O"))
        self.act_open.setStatusTip("Open a folder with one subfolder per class")
        self.act_open.triggered.connect(self.open_folder_dialog)
        self.act_demo = QAction(st.standardIcon(sp.SP_DirHomeIcon), "Open &Demo Project", self)
        self.act_demo.setStatusTip("Open the built-in cartoon pony project")
        self.act_demo.triggered.connect(self.open_demo)
        self.act_reload = QAction(st.standardIcon(sp.SP_BrowserReload), "&Reload", self)
        self.act_reload.setShortcut(QKeySequence("F5"))
        self.act_reload.setStatusTip("List the project folder again (after adding or removing files)")
        self.act_reload.triggered.connect(self.browser.reload)
        self.act_play = QAction("&Play Mode", self)
        self.act_play.setShortcut(QKeySequence("F11"))
        self.act_play.setStatusTip("Full screen, big answers, for kids and demos (Esc leaves)")
        self.act_play.triggered.connect(self.open_play_mode)
        self.act_quit = QAction("&Quit", self)
        self.act_quit.setShortcut(QKeySequence("Ctrl+Q"))
        self.act_quit.setMenuRole(QAction.MenuRole.QuitRole)
        self.act_quit.triggered.connect(self.close)
        self.act_about = QAction("&About PonyClassifier", self)
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.act_about.triggered.connect(self.about)
        self.place_group = QActionGroup(self)
        self.place_actions: list[QAction] = []
        for i, name in enumerate(PLACES):
            a = QAction(name, self, checkable=True)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.triggered.connect(lambda checked=False, i=i: self.set_place(i))
            self.place_group.addAction(a)
            self.place_actions.append(a)
            self.addAction(a)  # shortcuts work even while the menu bar is hidden

    def _make_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_new)
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        m.addAction(self.act_demo)
        m.addSeparator()
        m.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        self.browser.fill_edit_menu(e)
        self.dataset_menu = d = mb.addMenu("&Dataset")
        self.browser.fill_dataset_menu(d)
        v = mb.addMenu("&View")
        for a in self.place_actions:
            v.addAction(a)
        v.addSeparator()
        v.addAction(self.act_play)
        v.addAction(self.act_reload)
        h = mb.addMenu("&Help")
        h.addAction(self.act_about)

    def _make_toolbar(self) -> None:
        tb = QToolBar("Main toolbar")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_open, self.act_new, self.act_demo, self.act_reload):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.browser.act_capture)
        self.browser.act_capture.setIconText("Capture")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = projects.recent_projects()
        for path in items:
            a = self.recent_menu.addAction(path)
            a.setEnabled(os.path.isdir(path))
            a.triggered.connect(lambda checked=False, p=path: self.open_project(p))
        if not items:
            a = self.recent_menu.addAction("No recent projects")
            a.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self._clear_recent)

    def _clear_recent(self) -> None:
        projects.clear_recent_projects()
        self._fill_recent_menu()

    # ------------------------------------------------------------------ places
    def set_place(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.place_actions[index].setChecked(True)
        if self.sidebar.currentRow() != index:
            self.sidebar.setCurrentRow(index)

    def place(self) -> str:
        return PLACES[self.stack.currentIndex()]

    # ------------------------------------------------------------------ models
    def open_model_in(self, model_path: str | None, place: str = "Predict") -> None:
        """Show ``model_path`` (None: the ImageNet network) in Explain or Predict, and go there
        (each page loads the model its session wants when it is shown)."""
        self._model_chosen = True
        self.models.want(place, model_path)
        self.set_place(PLACES.index(place))

    def _set_wanted_models(self, model_path: str | None) -> None:
        for place in ("Explain", "Predict"):
            self.models.want(place, model_path)

    @Slot(str)
    def _on_training_model_saved(self, path: str) -> None:
        """The newest model is what Explain and Predict show next; not while another project
        is being opened (the last project's run, stopped for the switch, saves its model then)."""
        if self._store_wanted_for is None and self._store_job is None:
            self._set_wanted_models(path)

    def _latest_model(self, runs) -> str | None:
        """The newest run's model that is still on disk, or None (the ImageNet network)."""
        done = [r for r in runs if r.model_path and os.path.exists(r.model_path)]
        return max(done, key=lambda r: r.id).model_path if done else None

    @property
    def live(self):
        """The live camera view, once built (the first time its tab is shown)."""
        return self.live_host.widget

    def _on_live_created(self, live) -> None:
        live.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        live.frame_saved.connect(self._on_live_frame_saved)

    @Slot(str)
    def _on_live_frame_saved(self, path: str) -> None:
        self.browser.refresh_from_store()
        self.statusBar().showMessage(f"Saved {os.path.basename(path)} into the dataset", 6000)

    def open_play_mode(self) -> None:
        """Full-screen play mode for kids and demos (Esc leaves), fed by the live camera view."""
        self.set_place(PLACES.index("Predict"))
        self.predict.tabs.setCurrentIndex(self.predict.live_tab_index)
        live = self.live_host.ensure()
        if live is None:
            QMessageBox.information(self, "Play mode", "Play mode needs the camera view, which is not available "
                                    f"in this installation:\n{self.live_host.error}")
            return
        live.open_play_mode()

    @Slot(str)
    def _on_explain_open_image_requested(self, path: str) -> None:
        self.set_place(0)
        self.browser.reveal_path(path)

    def _on_sidebar_current_row_changed(self, row: int) -> None:
        if row >= 0 and row != self.stack.currentIndex():
            self.set_place(row)

    # ------------------------------------------------------------------ projects
    def start(self, project: str | None = None, demo: bool = False) -> None:
        """What to show at launch: the given folder, else the last project, else the demo."""
        if demo:
            self.open_demo()
            return
        if project:
            self.open_project(project)
            return
        for path in projects.recent_projects():
            if os.path.isdir(path):
                self.open_project(path)
                return
        self.open_demo()

    def open_project(self, path: str | os.PathLike) -> bool:
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            self._stop_confirmed = False  # a "stop the training" said for this opening is not carried over
            QMessageBox.warning(self, "Open project", f"{path}\n\nis not a folder (it may have been moved "
                                "or deleted).")
            return False
        if self.browser.busy:
            self._stop_confirmed = False
            self.statusBar().showMessage("Wait for the current change to finish (or cancel the import) before "
                                         "opening another project.", 8000)
            return False
        if not self.training_may_end("open another project", lambda: self.open_project(path)):
            return False
        self.project = path
        projects.add_recent_project(path)
        self._fill_recent_menu()
        self.setWindowTitle(f"{Path(path).name} — PonyClassifier")
        self.path_label.setText(path)
        self.path_label.setToolTip(path)
        self.count_label.setText("Listing…")
        # Every place forgets the last project and the browser lists this one (the one walk
        # of the folder); the store opens once the listing is complete (_on_rows_changed).
        self._store_job = None
        self._store_next = None  # a store waiting for an earlier one is not wanted any more
        self._store_wanted_for = path
        self._model_chosen = False
        self.session.open(path)
        self.set_place(0)
        self.project_changed.emit(path)
        return True

    def _on_rows_changed(self) -> None:
        """The listing of the project being opened is complete: open its store on a worker,
        synced from that listing (the folder is not walked a second time)."""
        path = self._store_wanted_for
        if path is None or path != self.session.root or self.session.project is not None:
            return  # a labelling change or a reload of a project already open
        self._store_wanted_for = None
        listing = [(r.path, r.cls) for r in self.session.rows]

        def start() -> None:
            job = self._store_job = workers.run_job(
                lambda state: projects.open_project_job(path, listing),
                on_finished=lambda result: self._on_store_opened(job, path, result),
                on_failed=lambda message, tb: self._on_store_failed(job, path, message))
            self._store_jobs.add(job)

        # A store still opening for a project left meanwhile holds that project's lock until
        # its result is back and closed: wait for it (A, then B, then A again would otherwise
        # find A locked and open it read-only).
        self._store_next = start
        if not self._store_jobs:
            self._start_next_store_job()

    def _start_next_store_job(self) -> None:
        start, self._store_next = self._store_next, None
        if start is not None and not self._closing:
            start()

    def _on_store_opened(self, job, path: str, result: dict) -> None:
        project = result["project"]
        self._store_jobs.discard(job)
        if job is not self._store_job or self._closing:
            project.close()  # another project was opened meanwhile, or the window closed
            self._start_next_store_job()
            return
        self._store_job = None
        if result.get("relisted") is not None and path == self.session.root:
            self.session.set_rows(result["relisted"])  # files moved back by the store's recovery
        if not self.session.attach(project, result["rows"], result.get("counts")):
            return  # opened for a root that is no longer the session's (closed by the session)
        self.browser.view.setFocus()
        if not self._model_chosen:  # the newest model, or ImageNet; never over the user's own choice
            self._set_wanted_models(self._latest_model(self.session.runs()))
        self.project_ready.emit(path)

    @Slot(str, str)
    def _on_training_relabel_requested(self, path: str, new_class: str) -> None:
        self.browser.relabel_paths([path], new_class)

    def _on_store_failed(self, job, path: str, message: str) -> None:
        self._store_jobs.discard(job)
        if job is not self._store_job or self._closing:
            self._start_next_store_job()
            return
        self._store_job = None
        self.project = None
        self.setWindowTitle("PonyClassifier")
        self.path_label.setText("No project")
        self.count_label.setText("")
        self.browser.show_failure(f"<b>This project could not be opened.</b><br>{message}")
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("Open project")
        box.setText(f"<b>Could not open the project</b><br>{path}")
        box.setInformativeText(f"{message}\n\nNothing in the folder was changed.")
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.last_dialog = box
        box.destroyed.connect(lambda *a: setattr(self, "last_dialog", None))
        box.open()  # not exec(): no nested event loop
        self.project_failed.emit(message)

    def open_folder_dialog(self) -> None:
        start = os.path.dirname(self.project) if self.project else str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open a project folder (one subfolder per class)", start)
        if path:
            self.open_project(path)

    def new_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "New project: choose an empty folder", str(Path.home()))
        if not path:
            return
        if any(not n.startswith(".") for n in os.listdir(path)):
            QMessageBox.warning(self, "New project", f"{path}\n\nis not empty. Choose an empty folder, or use "
                                "Open Folder… for a folder that already has class folders.")
            return
        text, ok = QInputDialog.getMultiLineText(
            self, "New project", "Class names, one per line (each becomes a folder):", "cat\ndog")
        if ok:
            self.create_project(path, [t.strip() for t in text.splitlines() if t.strip()])

    def create_project(self, path: str, classes: list[str]) -> bool:
        problems = [p for p in (projects.valid_class_name(c) for c in classes) if p]
        if not classes:
            problems.append("give at least one class name")
        if len(set(classes)) != len(classes):
            problems.append("class names must be different")
        if problems:
            QMessageBox.warning(self, "New project", "Cannot create the project:\n- " + "\n- ".join(problems))
            return False
        try:
            for c in classes:
                os.makedirs(os.path.join(path, c), exist_ok=True)
        except OSError as e:
            QMessageBox.warning(self, "New project", f"Cannot create the class folders in {path}:\n{e}")
            return False
        return self.open_project(path)

    def open_demo(self) -> None:
        if projects.demo_is_ready():
            self.open_project(projects.demo_dir())
            self.demo_ready.emit(str(projects.demo_dir()))
            return
        if self._demo_job is not None:
            return
        total = projects.demo_per_class() * 6
        dlg = QProgressDialog("Drawing the demo ponies…", "Cancel", 0, total, self)
        dlg.setWindowTitle("Creating the demo project")
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.setMinimumDuration(0)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.setValue(0)
        self._demo_dialog = dlg
        self.path_label.setText("Creating the demo project…")
        self._demo_job = job = workers.run_job(
            projects.generate_demo,
            on_progress=self._on_demo_progress,
            on_finished=self._on_demo_finished,
            on_failed=self._on_demo_failed,
            on_cancelled=self._on_demo_cancelled,
        )
        dlg.canceled.connect(job.cancel)
        dlg.show()

    def _on_demo_progress(self, done: int, total: int) -> None:
        dlg = self._demo_dialog
        if dlg is not None:
            # A modal QProgressDialog.setValue() runs the event loop, so the job may finish
            # (and _end_demo run) inside it: work on a local reference, value last.
            dlg.setLabelText(f"Drawing the demo ponies… {done} of {total}")
            dlg.setMaximum(total)
            dlg.setValue(done)

    def _end_demo(self) -> None:
        self._demo_job = None
        if self._demo_dialog is not None:
            self._demo_dialog.close()
            self._demo_dialog.deleteLater()
            self._demo_dialog = None

    def _on_demo_finished(self, path: str) -> None:
        self._end_demo()
        self.open_project(path)
        self.demo_ready.emit(path)

    def _on_demo_failed(self, message: str, tb: str) -> None:
        self._end_demo()
        self.path_label.setText("No project")
        QMessageBox.warning(self, "Demo project", f"Could not create the demo project in "
                            f"{projects.demo_dir()}:\n{message}")

    def _on_demo_cancelled(self) -> None:
        self._end_demo()
        self.path_label.setText(self.project or "No project")

    # ------------------------------------------------------------------ status
    def _on_browser_file_count_changed(self, n: int) -> None:
        self.count_label.setText(f"Listing… {n:,} files")

    def _on_browser_listing_finished(self, n: int) -> None:
        self._on_browser_counts_changed(n, len(self.browser.classes))  # also refreshes Explain's list

    def _on_browser_counts_changed(self, n: int, c: int) -> None:
        if self.browser.listing:
            return
        images = f"{n:,} image{'s' if n != 1 else ''}"
        self.count_label.setText(f"{images}, not sorted into classes yet" if n and not c else
                                 f"{images} in {c} class{'es' if c != 1 else ''}")

    def _on_browser_status_message(self, text: str, ms: int) -> None:
        self.statusBar().showMessage(text, ms)

    def _on_browser_augment_config_changed(self, config: dict) -> None:
        save_augment_config(config)

    def _on_browser_listing_failed(self, message: str) -> None:
        self.count_label.setText("")
        self.statusBar().showMessage(f"Could not list the project: {message}", 10000)

    def about(self) -> None:
        from .. import __version__ as version  # noqa: PLC0415

        QMessageBox.about(self, "About PonyClassifier",
                          f"<h3>PonyClassifier {version}</h3><p>Label your own photos, train an image "
                          "classifier on your own machine, see what it learned and try it live. "
                          "Everything stays on this computer.</p>")

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = QSettings()
        geo = s.value("mainWindow/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 800)
        state = s.value("mainWindow/state")
        if state is not None:
            self.restoreState(state)
        self.browser.restore_state(s.value("mainWindow/datasetSplitter"))
        try:
            place = int(s.value("mainWindow/place", 0))
        except (TypeError, ValueError):
            place = 0
        self.set_place(place if 0 <= place < len(PLACES) else 0)

    def save_settings(self) -> None:
        s = QSettings()
        s.setValue("mainWindow/geometry", self.saveGeometry())
        s.setValue("mainWindow/state", self.saveState())
        s.setValue("mainWindow/datasetSplitter", self.browser.splitter.saveState())
        s.setValue("mainWindow/place", self.stack.currentIndex())
        s.sync()

    def training_may_end(self, doing: str, then) -> bool:
        """Before ``doing`` something that ends a running training (quit, open another
        project): True to go on now (nothing trains, or the user already said stop). Else
        asks, without a nested event loop, and returns False; if the user chooses "Stop and
        keep the best model", ``then()`` runs (and does it: the run stops, its best model is
        kept and it is recorded as stopped); "Keep training" (or Esc) changes nothing."""
        if not self.training.is_training or self._stop_confirmed:
            self._stop_confirmed = False
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"A model is training. To {doing}, the training stops; the best model so far is kept "
                          "and the run is recorded as stopped.", QMessageBox.StandardButton.NoButton, self)
        stop = box.addButton("Stop and keep the best model", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def clicked(button) -> None:
            if button is stop:
                self._stop_confirmed = True
                then()

        box.buttonClicked.connect(clicked)
        self.last_dialog = box
        box.destroyed.connect(lambda *a: setattr(self, "last_dialog", None))
        box.open()
        return False

    def closeEvent(self, event) -> None:
        if not self._closing and not self.training_may_end("quit", self.close):
            event.ignore()
            return
        self._closing = True
        self.save_settings()
        if self._demo_job is not None:
            self._demo_job.cancel()
        self._end_demo()
        self.training.shutdown()
        self.explain.shutdown()
        # Let the project go while every place still listens: work still writing to it (an
        # import, a camera picture being saved) keeps it open until that work has ended.
        self.session.release()
        self.live_host.shutdown()
        self.predict.shutdown()
        self.browser.shutdown()
        super().closeEvent(event)
