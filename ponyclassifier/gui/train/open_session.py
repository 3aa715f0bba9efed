"""Opening a project in a session from a folder and a store opened elsewhere.

:class:`StoreProject` is a project's face (root, store, read_only, close) for a store
opened elsewhere, so a session can be attached to it; its owner closes the store.
:func:`open_in_session` opens a folder (and such a store) in a session: the tests'
``make_panel`` and a panel shown on its own use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.dataset import list_class_folders
from ...core.store import ProjectStore

__all__ = ["StoreProject", "open_in_session"]


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
