"""The application object: Qt setup, the error hook, and ``main()``.

PySide6 prints and swallows exceptions raised inside slots; :class:`ErrorReporter`
installs ``sys.excepthook`` so every uncaught exception (from a slot, a timer, the
event loop) is written to the log file and shown in a dialog while the app keeps
running (RELIABILITY.md case 23).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import traceback

from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    QSettings,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtWidgets import QApplication, QMessageBox

from . import projects, workers

APP_NAME = "PonyClassifier"
ORG_NAME = "PonyClassifier"
ORG_DOMAIN = "ponyclassifier.org"


class ErrorReporter(QObject):
    """Logs uncaught exceptions and shows each in a non-blocking dialog."""

    error_shown = Signal(str)  # "Type: message", after the dialog is up
    _raised = Signal(str, str)  # summary, traceback; queued when raised off the GUI thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.last_dialog: QMessageBox | None = None
        self.last_error: str | None = None
        self._previous_hook = None
        self._raised.connect(self._on_raised)

    def install(self) -> "ErrorReporter":
        self._previous_hook = sys.excepthook
        sys.excepthook = self.excepthook
        return self

    def uninstall(self) -> None:
        if sys.excepthook == self.excepthook:
            sys.excepthook = self._previous_hook or sys.__excepthook__

    def excepthook(self, etype, value, tb) -> None:
        if issubclass(etype, KeyboardInterrupt):
            QCoreApplication.quit()
            return
        text = "".join(traceback.format_exception(etype, value, tb))
        summary = f"{etype.__name__}: {value}" if str(value) else etype.__name__
        self._log(text)
        sys.stderr.write(text)
        try:
            self._raised.emit(summary, text)
        except RuntimeError:  # the reporter is gone (app shutting down): the log has it
            pass

    def _log(self, text: str) -> None:
        try:
            with open(projects.log_path(), "a", encoding="utf-8") as fh:
                fh.write(f"--- {datetime.datetime.now().isoformat(timespec='seconds')}\n{text}\n")
        except OSError:
            pass  # an unwritable log must not turn one error into two

    @Slot(str, str)
    def _on_raised(self, summary: str, text: str) -> None:
        box = QMessageBox(QApplication.activeWindow())
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(f"{APP_NAME}: something went wrong")
        box.setText(f"<b>An unexpected error happened.</b><br>{summary}")
        box.setInformativeText(f"Your projects are unchanged and the app keeps running.\n"
                               f"Details were written to {projects.log_path()}")
        box.setDetailedText(text)
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.last_dialog, self.last_error = box, summary
        box.open()  # not exec(): no nested event loop inside whatever just failed
        self.error_shown.emit(summary)


def configure_application(app: QCoreApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setOrganizationDomain(ORG_DOMAIN)
    app.setApplicationDisplayName(APP_NAME)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    workers.configure_pool()


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ponyclassifier", description="Open the PonyClassifier app.")
    p.add_argument("project", nargs="?", help="a project folder (one subfolder per class) to open")
    p.add_argument("--demo", action="store_true", help="open the built-in pony demo project")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(list(argv))
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "ponyclassifier"])
    configure_application(app)
    app.setStyle("Fusion")
    reporter = ErrorReporter(app).install()
    from .main_window import MainWindow  # after the app exists: widgets need it

    win = MainWindow()
    win.show()
    win.start(project=args.project, demo=args.demo)
    try:
        return app.exec()
    finally:
        # Let workers (e.g. a project store still opening) end while Qt objects still exist.
        workers.wait_for_pool(10000)
        reporter.uninstall()
