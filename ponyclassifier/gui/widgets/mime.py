"""Drag-and-drop payloads: pictures dragged out of our own grid, and local files dropped
from the desktop."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QUrl

MIME_PATHS = "application/x-ponyclassifier-paths"

__all__ = ["MIME_PATHS", "local_files_from_mime", "paths_from_mime", "paths_to_mime"]


def paths_to_mime(paths: list[str]) -> QMimeData:
    mime = QMimeData()
    mime.setData(MIME_PATHS, "\n".join(paths).encode("utf-8", "surrogateescape"))
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])  # so the desktop can take them too
    return mime


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Images dragged out of our own grid (empty for anything else)."""
    if not mime.hasFormat(MIME_PATHS):
        return []
    raw = bytes(mime.data(MIME_PATHS).data()).decode("utf-8", "surrogateescape")
    return [p for p in raw.split("\n") if p]


def local_files_from_mime(mime: QMimeData) -> list[str]:
    """Local files and folders dropped from the desktop (remote URLs are left out)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

