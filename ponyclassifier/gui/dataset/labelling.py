"""Labelling in the Dataset place: every change to the project (move, delete to trash,
class changes, import by drop or paste, undo / redo, splits, statuses found by decoding,
pictures from the capture dialog) runs on a worker, one at a time, through the core
``Project``; afterwards the store's rows come back and the grid applies only the
difference. A mixin of :class:`.browser.QtDatasetBrowser`; the session hears of every
change (``notify_rows_changed``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QInputDialog, QMessageBox

from .. import workers
from ..projects import import_images, read_back, valid_class_name
from ..widgets.mime import local_files_from_mime, paths_from_mime
from .dialogs import ImportReport, SplitsDialog
from .model import session_rows


class Labelling:
    """Changes to the project, on a worker, one at a time (see the module docstring)."""

    # ------------------------------------------------------------------ labelling
    def _refuse(self, why: str) -> bool:
        self.status_message.emit(why, 5000)
        return False

    def _editable(self) -> bool:
        if self.project is None:
            return self._refuse("Open a project first.")
        if self.project.read_only:
            return self._refuse(self.project.store.message or "This project is open read-only.")
        return True

    def _end_action(self, project) -> bool:
        """The running change has ended; True when the session let ``project`` go (or the
        browser was shut) while it ran, so its result is dropped. The session closes the
        project now if it deferred the close for this change."""
        self._action = None
        done, self._close_deferred = self._close_deferred, None
        if project is not self.project or self._shut:
            if done is not None:
                done()
            return True
        return False

    def _run_op(self, call: Callable, *, undoable: bool = True, **kwargs) -> bool:
        """:meth:`_run_action` for one ``call(project)`` on the worker: with ``undoable`` it
        returns the Operation (undo step) whose moves the view follows; otherwise its result
        is not used."""
        def fn(project, state):
            op = call(project)
            return (op, op.moves) if undoable else (None, [])

        return self._run_action(fn, **kwargs)

    def _run_action(self, fn, *, busy: str, done: Callable | None = None, select: str | None = "keep",
                    on_progress: Callable[[int, int], None] | None = None) -> bool:
        """Run ``fn(project, state) -> (operation or None, [(source, target), ...])`` on a
        worker, then apply the store's new rows to the view. One change at a time."""
        if not self._editable():
            return False
        if self._action is not None:
            return self._refuse("Still busy with the last change; try again in a moment.")
        project, root = self.project, self.root
        before = self._remember_view()

        def work(state):
            settings = (project.test_folder, project.split_settings())
            op, moves = fn(project, state)
            entries, counts = read_back(project, root)
            return (op, moves, (entries, counts), project.classes(),
                    (project.test_folder, project.split_settings()) != settings, session_rows(entries))

        self._action = workers.run_job(
            work,
            on_finished=lambda result: self._on_action_finished(project, result, before, done, select),
            on_failed=lambda message, tb: self._on_action_failed(project, message),
            on_progress=on_progress,
        )
        self.grid_status.setText(busy)
        self._update_actions()
        return True

    def _on_action_finished(self, project, result, before, done, select) -> None:
        if self._end_action(project):
            return
        op, moves, rows, classes, splits_changed, labels = result
        renames = {s: d for s, d in moves if s}
        self._set_classes(classes, select)
        entries, counts = rows
        self.model.apply_rows(entries, renames, counts)
        if select == "keep":
            self._restore_view(before, renames)
        self._after_change()
        self._notify_session(labels)
        self._forget_gone_in_similar()
        message = done(op) if done is not None else None
        if message:
            self.status_message.emit(message, 10000)
        if splits_changed:
            self.splits_changed.emit()
        self.action_finished.emit(op.label if op is not None else "")
        self._run_pending_refresh()

    def _on_action_failed(self, project, message: str) -> None:
        if self._end_action(project):
            return
        self.import_panel.hide()
        self.banner.show_message(f"<b>That did not work:</b> {message}<br>Nothing was changed.", "error")
        self.status_message.emit(f"Failed: {message}", 10000)
        self._update_titles()
        self._update_actions()
        self.action_failed.emit(message)
        self._run_pending_refresh()

    def _after_change(self) -> None:
        self._refresh_counts()
        self._update_titles()
        self._show_grid_or_empty()
        self._update_actions()

    def move_selected_to(self, cls: str) -> bool:
        return self.relabel_paths(self.selected_paths(), cls)

    def relabel_paths(self, paths: list[str], cls: str) -> bool:
        """Move these images to class ``cls`` (undoable), e.g. from the Train place's gallery."""
        if not self._editable():
            return False
        paths = [p for p in paths if (self.model.entry(p) or ("",))[0] != cls]
        if not paths:
            return self._refuse(f"Nothing to move: select images that are not in {cls} yet.")
        n = len(paths)
        return self._run_op(lambda p: p.move_to_class(paths, cls), busy=f"Moving {n:,} image{'s' if n != 1 else ''}…",
                            done=lambda op: f"Moved {n:,} image{'s' if n != 1 else ''} to {cls} — Undo (Ctrl+Z)")

    def move_selected_to_number(self, number: int) -> bool:
        if not 1 <= number <= min(9, len(self.classes)):
            return self._refuse(f"There is no class {number} (see the numbers in the class list).")
        return self.move_selected_to(self.classes[number - 1])

    def delete_selected(self) -> bool:
        if not self._editable():
            return False
        paths = self.selected_paths()
        if not paths:
            return self._refuse("Select images to delete first.")
        return self.delete_paths(paths)

    def delete_paths(self, paths: list[str]) -> bool:
        """Move ``paths`` to the project's trash (one undoable step), from the grid or from
        another panel (the Similar tab's Delete buttons)."""
        if not self._editable():
            return False
        paths = sorted({p for p in paths if self.model.entry(p) is not None})
        if not paths:
            return self._refuse("Those images are not in the project any more (moved or deleted).")
        n = len(paths)
        return self._run_op(lambda p: p.delete(paths), busy="Moving to the trash…",
                            done=lambda op: f"Moved {n:,} image{'s' if n != 1 else ''} to the trash — "
                                            "Undo (Ctrl+Z)")

    def undo(self) -> bool:
        if self.project is None or not self.project.undo_stack:
            return self._refuse("Nothing to undo.")

        def fn(project, state):
            op = project.undo()
            return op, list(op.undone_moves)

        return self._run_action(fn, busy="Undoing…", done=lambda op: f"Undid: {op.label} — Redo (Ctrl+Shift+Z)")

    def redo(self) -> bool:
        if self.project is None or not self.project.redo_stack:
            return self._refuse("Nothing to redo.")

        def fn(project, state):
            op = project.redo()
            return op, [(d, s) for s, d in op.undone_moves]

        return self._run_action(fn, busy="Redoing…", done=lambda op: f"Redid: {op.label}")

    # -- importing
    def _on_class_tree_drop(self, cls: str, mime: QMimeData) -> bool:
        inside = paths_from_mime(mime)
        if inside:
            self.select_paths(inside)
            return self.move_selected_to(cls)
        return self.import_files(local_files_from_mime(mime), cls)

    def _on_grid_drop(self, mime: QMimeData) -> bool:
        cls = self.model.class_filter
        if cls is None:
            return self._refuse("Drop the files on a class in the list on the left, or show one class first.")
        return self.import_files(local_files_from_mime(mime), cls)

    def import_files(self, sources: list[str], cls: str) -> bool:
        """Copy files (folders: the images inside) into ``cls`` on a worker, with progress
        and Cancel; afterwards a list of what was skipped and why."""
        if not self._editable():
            return False
        if not sources:
            return self._refuse("Nothing to import: drop image files or folders.")
        stop = threading.Event()

        def fn(project, state):
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if done == total or now - last[0] > 0.04:  # ~25 updates a second at most
                    last[0] = now
                    state.report(done, total)

            op = project.import_files(sources, cls, progress=progress, should_stop=stop.is_set)
            return op, op.moves

        started = self._run_action(fn, busy="Importing…", done=lambda op: self._on_import_done(op, cls, stop),
                                   on_progress=lambda d, t: self._on_import_progress(d, t, cls))
        if started:
            self._import_stop = stop
            self.import_label.setText(f"Importing into {cls}…")
            self.import_bar.setRange(0, 0)
            self.import_cancel.setEnabled(True)
            self.import_panel.show()
        return started

    def cancel_import(self) -> None:
        if self._import_stop is not None:
            self._import_stop.set()
            self.import_cancel.setEnabled(False)
            self.import_label.setText("Stopping after the current file…")

    def _on_import_progress(self, done: int, total: int, cls: str) -> None:
        if self._shut:
            return
        self.import_bar.setRange(0, max(total, 1))
        self.import_bar.setValue(done)
        if self.import_cancel.isEnabled():
            # the core checks every file, then copies them: the bar covers both
            self.import_label.setText(f"Importing into {cls}: {done * 100 // max(total, 1)}%")

    def _on_import_done(self, op, cls: str, stop: threading.Event) -> str:
        self._import_stop = None
        self.import_panel.hide()
        imported = [r for r in op.results if r.target]
        skipped = [(r.source, r.error) for r in op.results if r.error]
        cancelled = stop.is_set()
        n = len(imported)
        summary = f"Imported {n:,} image{'s' if n != 1 else ''} into {cls}"
        if skipped:
            summary += f"; {len(skipped):,} file{'s' if len(skipped) != 1 else ''} skipped"
        if cancelled:
            summary += " (cancelled: the rest was not looked at)"
        self.last_import = {"imported": n, "skipped": skipped, "cancelled": cancelled, "class": cls}
        if skipped or cancelled:
            if self.last_import_report is not None:
                self.last_import_report.close()
            self.last_import_report = ImportReport(summary + ".", skipped, self.window())
            self.last_import_report.destroyed.connect(lambda *a: setattr(self, "last_import_report", None))
            self.last_import_report.show()
        self.import_finished.emit(self.last_import)
        return summary + (" — Undo (Ctrl+Z)" if n else ".")

    def paste(self) -> bool:
        """The clipboard's image (or copied files) into the class shown, through the project."""
        cls = self.model.class_filter
        if not self._editable():
            return False
        if cls is None:
            return self._refuse("Show a class first (click it on the left); the pasted image goes there.")
        mime = QGuiApplication.clipboard().mimeData()
        files = local_files_from_mime(mime) if mime is not None else []
        if files:
            return self.import_files(files, cls)
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            return self._refuse("The clipboard holds no image.")
        name = time.strftime("pasted-%Y%m%d-%H%M%S.png")

        def fn(project, state):
            op, failed = import_images(project, cls, [(image, name)])
            if failed:
                raise OSError("could not write the pasted image to a temporary file")
            if op.results and op.results[0].error:
                raise OSError(op.results[0].error)
            return op, op.moves

        def done(op):
            target = op.results[0].target if op.results else None
            if target:
                self.select_paths([target])
            return f"Pasted into {cls} as {os.path.basename(target or name)} — Undo (Ctrl+Z)"

        return self._run_action(fn, busy="Pasting…", done=done)

    # -- splits
    def make_splits(self, val_fraction: float, seed: int = 0) -> bool:
        """(Re)make the seeded, stratified train/validation split (on a worker)."""
        return self._run_op(lambda p: p.make_splits(val_fraction, seed), undoable=False, busy="Splitting…",
                            done=lambda op: f"Made a new split: {val_fraction:.0%} of "
                                            f"each class for validation, seed {seed}.")

    def set_test_folder(self, folder: str | None) -> bool:
        """Choose (or with None, clear) the project's external test folder."""
        return self._run_op(lambda p: p.set_test_folder(folder), undoable=False, busy="Saving…",
                            done=lambda op: f"External test folder: {folder}" if folder
                            else "No external test folder.")

    def open_splits(self) -> "SplitsDialog | None":
        if self.project is None:
            self._refuse("Open a project first.")
            return None
        if self.splits_dialog is None:
            self.splits_dialog = SplitsDialog(self, self.window())
            self.splits_dialog.destroyed.connect(lambda *a: setattr(self, "splits_dialog", None))
        self.splits_dialog.show()
        self.splits_dialog.raise_()
        return self.splits_dialog

    # -- classes
    def create_class(self, name: str) -> bool:
        return self._run_op(lambda p: p.create_class(name), undoable=False, busy="Creating class…", select=name,
                            done=lambda op: f"Created class {name}.")

    def rename_class(self, old: str, new: str) -> bool:
        follow = new if self.model.class_filter == old else "keep"
        return self._run_op(lambda p: p.rename_class(old, new), busy="Renaming…", select=follow,
                            done=lambda op: f"Renamed {old} to {new} — Undo (Ctrl+Z)")

    def merge_classes(self, sources: list[str], into: str) -> bool:
        follow = into if self.model.class_filter in sources else "keep"
        return self._run_op(lambda p: p.merge_classes(sources, into), busy="Merging…", select=follow,
                            done=lambda op: f"Merged {', '.join(s for s in sources if s != into)} into "
                                            f"{into} — Undo (Ctrl+Z)")

    def delete_class(self, name: str) -> bool:
        n = self.counts.get(name, 0)
        follow = None if self.model.class_filter == name else "keep"
        return self._run_op(lambda p: p.delete_class(name), busy="Deleting class…", select=follow,
                            done=lambda op: f"Moved class {name} ({n:,} images) to the trash — Undo (Ctrl+Z)")

    def _ask_class_name(self, title: str, label: str, text: str = "") -> str | None:
        while True:
            name, ok = QInputDialog.getText(self, title, label, text=text)
            if not ok:
                return None
            problem = valid_class_name(name)
            if problem is None and name in self.classes and name != text:
                problem = f"there is already a class {name!r}"
            if problem is None:
                return name
            QMessageBox.warning(self, title, f"Cannot use that name: {problem}.")
            text = name

    def new_class_dialog(self) -> None:
        name = self._ask_class_name("New class", "Name of the new class (a folder of that name is made):")
        if name:
            self.create_class(name)

    def rename_class_dialog(self) -> None:
        old = self._current_class()
        if old is None:
            return
        new = self._ask_class_name("Rename class", f"New name for {old}:", old)
        if new and new != old:
            self.rename_class(old, new)

    def merge_classes_dialog(self) -> None:
        sources = self.selected_classes()
        if len(sources) < 2:
            QMessageBox.information(self, "Merge classes", "Select two or more classes in the list "
                                    "(Ctrl+click), then merge them.")
            return
        into, ok = QInputDialog.getItem(self, "Merge classes", f"Merge {', '.join(sources)} into:", sources, 0,
                                        False)
        if not ok:
            return
        n = sum(self.counts.get(s, 0) for s in sources if s != into)
        if QMessageBox.question(self, "Merge classes", f"Move {n:,} images into {into} and remove the other "
                                "class folders? You can undo this.") == QMessageBox.StandardButton.Yes:
            self.merge_classes(sources, into)

    def delete_class_dialog(self) -> None:
        name = self._current_class()
        if name is None:
            return
        n = self.counts.get(name, 0)
        if QMessageBox.question(self, "Delete class", f"Move the class {name} and its {n:,} images to the "
                                "project's trash? You can undo this.") == QMessageBox.StandardButton.Yes:
            self.delete_class(name)

    # ------------------------------------------------------------------ statuses
    def _on_loader_thumbnail_failed(self, path: str, reason: str) -> None:
        self._note_status(path, "bad", reason)

    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        e = self.model.entry(path)
        if e is not None and e[2] == "bad":  # readable again (fixed by another tool)
            self._note_status(path, "ok", None)

    def _note_status(self, path: str, status: str, reason: str | None) -> None:
        """A decode found ``path`` unreadable (or readable again): record it in the project
        store, so the Bad filter, the class counts and training all see it."""
        e = self.model.entry(path)
        if e is None or not self.can_edit or (e[2], e[3]) == (status, reason):
            return
        if status == "ok" and e[2] != "bad":
            return
        self._statuses_pending[path] = (status, reason)
        self._kick_statuses()

    def _kick_statuses(self) -> None:
        """Start the timer that writes the gathered statuses, if any wait and it is not running."""
        if self._statuses_pending and not self._statuses_timer.isActive():
            self._statuses_timer.start()

    def _flush_statuses(self) -> None:
        if not self._statuses_pending or not self.can_edit or self._shut:
            self._statuses_pending.clear()
            return
        if self._action is not None or self.capture_dialog is not None:
            return  # one change at a time: after the running one (or when the capture closes)
        pending, self._statuses_pending = self._statuses_pending, {}
        project = self.project

        def work(state):
            project.set_statuses(pending)
            return pending

        self._action = workers.run_job(
            work,
            on_finished=lambda result: self._on_statuses_recorded(project, result),
            on_failed=lambda message, tb: self._on_statuses_failed(project, message),
        )

    def _on_statuses_recorded(self, project, statuses: dict) -> None:
        if self._end_action(project):
            return
        self.model.set_statuses(statuses)
        self._after_change()
        self._notify_session()  # the listing is the same; the statuses (the split's "left out") are not
        bad = sum(1 for s, _ in statuses.values() if s == "bad")
        if bad:
            self.status_message.emit(f"{bad:,} unreadable file{'s' if bad != 1 else ''} marked as bad "
                                     "(Bad filter); training skips them.", 8000)
        self._run_pending_refresh()

    def _on_statuses_failed(self, project, message: str) -> None:
        if self._end_action(project):
            return
        self.status_message.emit(f"Could not record unreadable files in the project store: {message}", 10000)
        self._run_pending_refresh()

    # ------------------------------------------------------------------ capture
    def open_capture(self, cls: str | None = None, video_file: str | os.PathLike | None = None):
        """Open the capture dialog on this project, into ``cls`` (default: the class shown).
        Its pictures go in through the project's journaled import; the grid follows."""
        if not self._editable():
            return None
        if self.capture_dialog is not None:
            self.capture_dialog.raise_()
            self.capture_dialog.activateWindow()
            return self.capture_dialog
        if self.busy:
            self._refuse("Still busy with the last change; try again in a moment.")
            return None
        try:
            from .capture import QtCaptureDialog  # noqa: PLC0415 (QtMultimedia: only when wanted)
        except ImportError as e:
            QMessageBox.warning(self, "Capture", f"Camera capture needs QtMultimedia (PySide6-Addons):\n{e}")
            return None
        if cls is None:
            cls = self.model.class_filter or (self.classes[0] if self.classes else None)
        d = QtCaptureDialog(self.project, target_class=cls, video_file=video_file, parent=self.window())
        # Window-modal: while it writes to the project, no other change can start.
        d.setWindowModality(Qt.WindowModality.WindowModal)
        d.resize(960, 640)
        d.images_captured.connect(self._on_capture_images_captured)
        d.finished.connect(lambda r, d=d: self._on_capture_finished(d))
        self.capture_dialog = d
        self._update_actions()
        d.open()
        self.capture_opened.emit(d)
        return d

    def close_capture(self) -> None:
        if self.capture_dialog is not None:
            self.capture_dialog.reject()  # stops the camera / player; finished() tidies up

    def _on_capture_finished(self, d) -> None:
        if d is self.capture_dialog:
            self.capture_dialog = None
        d.deleteLater()
        self._update_actions()
        self._kick_statuses()

    def _on_capture_images_captured(self, cls: str, paths: list) -> None:
        self.refresh_from_store(list(paths), cls)

    def refresh_from_store(self, select: list[str] | None = None, cls: str | None = None) -> bool:
        """Re-read the project's store on a worker and show what changed (another widget,
        e.g. the capture dialog, changed the project); ``select`` those paths afterwards,
        showing class ``cls`` if the grid shows another one."""
        if self.project is None:
            return False
        if self._action is not None:  # one change at a time: after the running one
            paths, last_cls = self._refresh_pending or ([], None)
            self._refresh_pending = (paths + list(select or []), cls if cls is not None else last_cls)
            return True
        follow = cls if cls is not None and self.model.class_filter not in (None, cls) else "keep"

        def done(op):
            if select:
                self.select_paths([p for p in select if self.model.row_of(p) is not None])
                row = self.model.row_of(select[-1])
                if row is not None:
                    self.view.scrollTo(self.model.index(row))
            n = len(select or [])
            return f"Added {n:,} picture{'s' if n != 1 else ''} — Undo (Ctrl+Z)" if n else None

        return self._run_op(lambda p: None, undoable=False, busy="Updating…", select=follow, done=done)

    def _run_pending_refresh(self) -> None:
        pending, self._refresh_pending = self._refresh_pending, None
        if pending is not None and self.project is not None and not self._shut:
            self.refresh_from_store(*pending)
        else:
            self._kick_statuses()
