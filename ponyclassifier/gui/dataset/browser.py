"""The Dataset place: a project's classes, a lazy thumbnail grid, a side pane with the
Preview, Augmentation (:class:`.augment_preview.QtAugmentPreview`) and Similar
(:class:`.similar.QtSimilarPanel`) tabs, labelling (import by drag and drop, paste or
camera capture, move, delete to trash, class changes, undo) and duplicate finding.

:class:`QtDatasetBrowser` is a view of a :class:`~ponyclassifier.core.session.ProjectSession`:
when the session opens a root the browser lists the folder (the one walk of it, on a
worker) and hands the listing back with ``session.set_rows``; when the session attaches
the project's store, labelling starts; when the session lets the project go, work still
writing to it defers the close. After every change the session hears of the new rows
(``notify_rows_changed``). The browser keeps no copy of the root, the project, its split
settings or its test folder: it reads them from the session.

The browser is composed of mixins, one module each: :mod:`.layout` (widgets, actions,
menus, empty states), :mod:`.classes` (class list, filters, selection), :mod:`.labelling`
(every change to the project, on a worker, one at a time), :mod:`.side` (preview,
augmentation and similar tabs). The grid's model is :mod:`.model`, its widgets
:mod:`.views`, the dialogs :mod:`.dialogs`. Listing, decoding and every change happen in
:mod:`ponyclassifier.gui.workers`; this package only touches widgets, on the GUI thread.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QWidget

from ...core.session import ProjectSession
from .. import workers
from ..projects import entries_from_rows, tally
from .classes import ClassList
from .dialogs import ImportReport, SplitsDialog
from .labelling import Labelling
from .layout import BrowserLayout
from .model import (
    COL_COUNT,
    COL_KEY,
    COL_NAME,
    THUMB_SIZE,
    BrokenRole,
    ClassRole,
    NameRole,
    PathRole,
    SplitRole,
    StatusRole,
    ThumbnailModel,
    list_project,
)
from .side import SideTools
from .views import QtPreviewPane

__all__ = ["COL_COUNT", "COL_KEY", "COL_NAME", "THUMB_SIZE", "BrokenRole", "ClassRole", "ImportReport", "NameRole",
           "PathRole", "QtDatasetBrowser", "QtPreviewPane", "SplitRole", "SplitsDialog", "StatusRole",
           "ThumbnailModel", "list_project"]

BUSY_REASON = "the dataset is busy with another change"


class QtDatasetBrowser(Labelling, ClassList, SideTools, BrowserLayout, QWidget):
    """Classes with counts, the filter bar, the thumbnail grid and the preview of the
    session's project folder; with the project's store attached, labelling too."""

    project_opened = Signal(str)
    listing_finished = Signal(int)  # number of files
    listing_failed = Signal(str)
    file_count_changed = Signal(int)
    counts_changed = Signal(int, int)  # images, classes
    status_message = Signal(str, int)  # text, milliseconds to show it
    project_attached = Signal()
    action_finished = Signal(str)  # what was done, e.g. "Move to square"
    action_failed = Signal(str)
    import_finished = Signal(object)  # {"imported": n, "skipped": [(source, reason)], "cancelled": bool}
    augment_config_changed = Signal(dict)  # AugmentConfig.to_dict() of the Augmentation tab
    capture_opened = Signal(object)  # the QtCaptureDialog just shown
    side_tab_changed = Signal(str)  # "preview", "augment" or "similar"
    splits_changed = Signal()  # the split, its settings or the external test folder changed

    SIDE_TABS = ("preview", "augment", "similar")

    def __init__(self, session: ProjectSession | None = None, cache_dir: str | os.PathLike | None = None,
                 parent=None):
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession()
        self.classes: list[str] = []  # the class list shown (the listing's, then the store's)
        self.counts: dict[str, int] = {}
        self.split_counts: dict[str, dict[str, int]] = {}
        self.splits_dialog: SplitsDialog | None = None
        self.listing = False
        self.last_import: dict | None = None
        self.last_import_report: ImportReport | None = None
        self._listing_lane = workers.Lane()  # a listing replaced by another (or cancelled) never calls back
        self._action: workers.Job | None = None
        self._close_deferred: Callable[[], None] | None = None  # session.defer_close's done() for _action
        self._attach_classes: list[str] = []  # classes handed to attach_project (the old call)
        self._import_stop: threading.Event | None = None
        self._shut = False
        self._preview_path: str | None = None
        self._pending_filter: str | None = None
        self._warn_icon: QIcon | None = None
        self._cache_dir = cache_dir
        self.augment = None  # QtAugmentPreview, built when its tab is first shown
        self.similar = None  # QtSimilarPanel, likewise
        self._augment_config: dict | None = None
        self.capture_dialog = None  # the open QtCaptureDialog
        # a store re-read asked for while busy: (paths to select, class to show)
        self._refresh_pending: tuple[list[str], str | None] | None = None
        self._side_widths: dict[int, int] = {}  # side pane width per tab, as the user left it
        self._side_index = 0

        self.loader = workers.ThumbnailLoader(THUMB_SIZE, cache_dir, parent=self)
        self.loader.preview_ready.connect(self._on_loader_preview_ready)
        self.loader.preview_failed.connect(self._on_loader_preview_failed)
        self.loader.thumbnail_failed.connect(self._on_loader_thumbnail_failed)
        self.loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        self._statuses_pending: dict[str, tuple[str, str | None]] = {}  # for the store, path -> (status, reason)
        self._statuses_timer = QTimer(self)
        self._statuses_timer.setSingleShot(True)
        self._statuses_timer.setInterval(250)  # gather a screenful of failures into one write
        self._statuses_timer.timeout.connect(self._flush_statuses)
        self.model = ThumbnailModel(self.loader, self)
        self._build_ui()

        self.session.opened.connect(self._on_session_opened)
        self.session.attached.connect(self._on_session_attached)
        self.session.closing.connect(self._on_session_closing)
        self.session.busy_reason = self._busy_reason

    # ------------------------------------------------------------------ the session's state
    @property
    def root(self) -> str | None:
        return self.session.root

    @property
    def project(self):
        """The session's core Project while labelling is possible (its store is attached)."""
        return self.session.project

    @property
    def test_folder(self) -> str | None:
        """The project's external test folder (read from its store)."""
        return self.project.test_folder if self.project is not None else None

    @property
    def split_settings(self) -> dict | None:
        """``{"val_fraction", "seed"}`` of the last split made (read from the store)."""
        return self.project.split_settings() if self.project is not None else None

    @property
    def busy(self) -> bool:
        return self._action is not None

    @property
    def can_edit(self) -> bool:
        return self.project is not None and not self.project.read_only

    def _busy_reason(self) -> str | None:
        return BUSY_REASON if self.busy else None

    # ------------------------------------------------------------------ the old calls
    def open_project(self, root: str | os.PathLike) -> None:
        """Open ``root`` in the session: the folder is listed in the background and rows
        appear as they are found. Labelling starts when the store is attached."""
        self.session.open(os.path.abspath(os.fspath(root)))

    def attach_project(self, project, rows, classes: list[str], counts: dict | None = None) -> None:
        """Attach ``project`` (opened on a worker) to the session: ``rows`` its images (see
        :func:`.projects.snapshot`, or as :func:`.projects.entries_from_rows` makes them on
        the worker, with ``counts`` from :func:`.projects.count_entries`)."""
        entries = dict(rows) if isinstance(rows, dict) else entries_from_rows(rows)
        self._attach_classes = list(classes)
        try:
            self.session.attach(project, entries, counts)
        finally:
            self._attach_classes = []

    def detach_project(self) -> None:
        """Labelling off: the session lets its project go (closed now, or by the work
        still writing to it); the listing stays shown."""
        self.session.release()

    def show_failure(self, html: str) -> None:
        """The project could not be opened: nothing is shown from it."""
        self.cancel_listing()
        if self.session.root is not None:
            self.session.close()
        self._forget_project()
        self.banner.hide()
        self._show_empty(html)
        self._update_titles()

    # ------------------------------------------------------------------ session events
    def _on_session_opened(self, root: str | None) -> None:
        """A new root (or none): forget the last project's listing and list this one."""
        if root is None:
            self.cancel_listing()
            self._forget_project()
            self._show_empty("No project open. Use File ▸ Open Folder… to choose a folder with one subfolder "
                             "per class.")
            self._update_titles()
            self._update_actions()
            return
        self._start_listing(root)
        self.project_opened.emit(root)

    def _forget_project(self) -> None:
        self.classes, self.counts, self.split_counts = [], {}, {}
        self.model.set_filters(None, None, None)
        self._sync_filter_buttons()
        self.model.clear()
        self.preview.show_nothing()
        self._preview_path = None
        self._reset_tools()
        self.class_tree.clear()

    def _start_listing(self, root: str) -> None:
        self.cancel_listing()
        self._forget_project()
        self.listing = True
        self.grid_stack.setCurrentWidget(self.view)
        self._update_titles()
        self._listing_lane.submit(lambda state: list_project(root, state), on_partial=self._on_listing_partial,
                                  on_finished=self._on_listing_finished, on_failed=self._on_listing_failed)

    def _on_session_attached(self, project) -> None:
        """Labelling on: the session's store is open, with its rows read on a worker."""
        entries = dict(self.session.entries)
        counts = self.session.class_counts
        if project.read_only:  # not synced: files the store has not seen yet stay listed
            extra = {r[0]: list(r[1:]) for r in self.model.rows() if r[0] not in entries}
            if extra:
                entries.update(extra)
                counts = None
        self.model.apply_rows(entries, counts=counts)
        stored = self._attach_classes or {e[0] for e in entries.values() if e[0]}
        self._set_classes(sorted(set(stored) | set(self.classes) | set(self.session.classes)))
        notes = []
        if project.read_only:
            notes.append(f"<b>Read-only.</b> {project.store.message or 'The project store is read-only.'} "
                         "Labelling is switched off.")
        notes += list(project.recovered)
        if notes:
            self.banner.show_message("<br>".join(notes), "warning" if project.read_only else "info")
            self.status_message.emit(" ".join(n.replace("<b>", "").replace("</b>", "") for n in notes), 15000)
        self._after_change()
        self.project_attached.emit()

    def _on_session_closing(self, project) -> None:
        """The session lets ``project`` go: labelling off. Work still writing to it (a
        change on a worker, the capture dialog's last save) keeps it open until it ends."""
        capture = self.capture_dialog
        self.close_capture()  # it writes to this project
        if capture is not None and capture.saving:
            # it finishes its last save first; the project is closed when it has gone
            done = self.session.defer_close(project)
            capture.finished.connect(lambda r: done())
        self._refresh_pending = None
        self._statuses_pending.clear()
        self._statuses_timer.stop()
        if self._import_stop is not None:
            self._import_stop.set()
        if self._action is not None and self._close_deferred is None:
            self._close_deferred = self.session.defer_close(project)  # called when the change ends
        if self.splits_dialog is not None:
            self.splits_dialog.close()
        self.banner.hide()
        self._update_actions()

    def _notify_session(self, rows: list | None = None) -> None:
        """The session hears of a labelling change: ``rows`` the (path, class) of every image
        now (made on the worker), or None when only statuses changed."""
        if rows is not None:
            self.session.notify_rows_changed(rows, list(self.classes))
        else:
            self.session.notify_rows_changed()

    # ------------------------------------------------------------------ listing
    def reload(self) -> None:
        """List the folder again; with a project, sync the store with files added or removed
        by other tools instead, keeping the view where it is."""
        if self.project is not None and not self.project.read_only:
            self._run_op(lambda p: (p.sync(), p.make_missing_splits()), undoable=False, busy="Reloading…",
                         done=lambda op: "Reloaded the project folder.")
            return
        if self.root:
            keep = self.model.class_filter
            self._start_listing(self.root)
            self._pending_filter = keep
            self.project_opened.emit(self.root)

    def cancel_listing(self) -> None:
        self._listing_lane.cancel()
        self.listing = False

    def shutdown(self) -> None:
        """Stop background work started by this widget (at window close); the session lets
        the project go (what still writes to it closes it when done)."""
        self.cancel_listing()
        self.detach_project()
        self._shut = True
        self.session.opened.disconnect(self._on_session_opened)
        self.session.attached.disconnect(self._on_session_attached)
        self.session.closing.disconnect(self._on_session_closing)
        if self.session.busy_reason == self._busy_reason:
            self.session.busy_reason = lambda: None
        self.loader.close()
        if self.augment is not None:
            self.augment.shutdown()
        if self.similar is not None:
            self.similar.shutdown()
        if self.last_import_report is not None:
            self.last_import_report.close()

    def _on_listing_partial(self, item) -> None:
        kind, value = item
        if kind == "classes":
            self._set_classes(sorted(set(value) | set(self.classes)))
            return
        before = self.model.file_count()
        self.model.add_files(value)
        if self.model.file_count() - before == len(value):
            # all new: count just this batch (a full recount per batch adds up on big folders)
            for _, cls in value:
                d = tally(self.split_counts, cls, None, "ok" if cls else "unlabelled")
                if cls:
                    self.counts[cls] = d["total"]
            self._update_class_counts()
        else:
            self._refresh_counts()
        self._update_titles()
        self.file_count_changed.emit(self.model.file_count())

    def _on_listing_finished(self, result: dict) -> None:
        self.listing = False
        self._refresh_counts()
        self._update_titles()
        keep, self._pending_filter = self._pending_filter, None
        if keep and keep in self.classes:
            self.select_class(keep)
        self._show_grid_or_empty()
        if self.view.currentIndex().row() < 0 and self.model.rowCount() > 0:
            self.view.setCurrentIndex(self.model.index(0))
        self.session.set_rows(result["rows"], list(self.classes))  # the one walk of the folder
        self.listing_finished.emit(self.model.file_count())

    def _on_listing_failed(self, message: str, tb: str) -> None:
        self.listing = False
        self._show_empty(f"<b>Could not list this folder</b><br>{message}")
        self._update_titles()
        self.listing_failed.emit(message)
