"""Opening a project in a session from a folder and a store opened elsewhere, and the
Train place's calls from before the sessions.

:class:`StoreProject` is a project's face (root, store, read_only, close) for a store
opened elsewhere, so a session can be attached to it; its owner closes the store.
:func:`open_in_session` opens a folder (and such a store) in a session: the tests'
``make_panel`` and a panel shown on its own use it.

:class:`LegacyProjectCalls` keeps ``set_project(root, store)``, ``splits_changed()`` and
``dataset_changed()`` while the main window still makes them; each only drives the
panel's :class:`~ponyclassifier.core.session.ProjectSession`. It goes once the main window
shares its session with the panel.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.dataset import list_class_folders
from ...core.store import ProjectStore

__all__ = ["LegacyProjectCalls", "StoreProject", "open_in_session"]


class StoreProject:
    """What :meth:`ProjectSession.attach` needs of a core ``Project``, around a store the
    caller opened and closes (``close()`` here leaves it open)."""

    def __init__(self, root: str | os.PathLike, store: ProjectStore):
        self.root = Path(root)
        self.store = store

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    def close(self) -> None:
        pass  # the store is its opener's to close


def open_in_session(session, root: str | os.PathLike | None, store: ProjectStore | None = None,
                    rows: list | None = None) -> None:
    """``root`` opened in ``session`` (listed as its class folders, ``rows`` if given) and,
    with a ``store``, attached to it; None closes the session's project."""
    if root is None:
        session.close()
        return
    session.open(root)
    classes = list_class_folders(root) if Path(root).is_dir() else []
    session.set_rows(rows or [], classes)
    if store is not None:
        session.attach(StoreProject(root, store))


class LegacyProjectCalls:
    """Mixed into QtTrainingPanel: the main window's calls until it is rewired to the session."""

    def set_project(self, root: Path | str | None, store: ProjectStore | None = None) -> None:
        """Show ``root`` (a class-folder dataset) and record runs in ``store`` (None: runs are
        trained and saved but not recorded). A run still going is stopped first."""
        open_in_session(self.session, root, store)

    def splits_changed(self) -> None:
        """The project's split, its settings or its test folder changed."""
        self.session.notify_split_changed()

    def dataset_changed(self) -> None:
        """The project's images or classes changed (imported, relabelled, deleted)."""
        root = self.session.root
        if root is None:
            return
        classes = list_class_folders(root) if os.path.isdir(root) else []
        self.session.notify_rows_changed(None, classes)
