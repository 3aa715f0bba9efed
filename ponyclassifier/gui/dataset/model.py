"""The Dataset place's grid model: :class:`ThumbnailModel` (rows are file paths; a
thumbnail is requested only when the view asks for a row's decoration, i.e. when the row
is on screen) and :func:`list_project`, the Qt-free worker body that lists a project
folder in chunks. The store's rows are applied as differences, so scroll position,
selection and thumbnails survive a labelling change.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QRect, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap

from ...core.session import Row
from .. import workers
from ..projects import count_entries, entries_from_rows
from ..widgets.mime import MIME_PATHS, paths_to_mime

THUMB_SIZE = 128
PIXMAP_CACHE_ITEMS = 3000  # ~3000 * 128*128*4 bytes, about 200 MB at most
SPLITS = ("train", "val", "test")
STATUS_FILTERS = ("bad", "unlabelled")

PathRole = Qt.ItemDataRole.UserRole + 1
ClassRole = Qt.ItemDataRole.UserRole + 2
BrokenRole = Qt.ItemDataRole.UserRole + 3
SplitRole = Qt.ItemDataRole.UserRole + 4
StatusRole = Qt.ItemDataRole.UserRole + 5

COL_KEY, COL_NAME, COL_COUNT = 0, 1, 2  # class list columns: number key, class, count
NameRole = Qt.ItemDataRole.UserRole  # class name on COL_NAME (None for "All images")


def _square_pixmap(image: QImage, size: int) -> QPixmap:
    """The thumbnail centred on a transparent size x size square: the grid uses uniform
    item sizes, so every decoration must be the same size or file names get clipped."""
    if image.width() == size and image.height() == size:
        return QPixmap.fromImage(image)
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.drawImage((size - image.width()) // 2, (size - image.height()) // 2, image)
    p.end()
    return pm


def _placeholder_pixmap(size: int, palette: QPalette) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    base = palette.color(QPalette.ColorRole.Mid)
    base.setAlpha(60)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(base)
    p.drawRoundedRect(QRect(4, 4, size - 8, size - 8), 8, 8)
    p.end()
    return pm


def _broken_pixmap(size: int, palette: QPalette) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    red = QColor(200, 60, 60)
    bg = QColor(red)
    bg.setAlpha(35)
    p.setBrush(bg)
    p.setPen(QPen(red, 2, Qt.PenStyle.DashLine))
    p.drawRoundedRect(QRect(6, 6, size - 12, size - 12), 8, 8)
    p.setPen(QPen(red, 5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    c, r = size // 2, size // 7
    p.drawLine(c - r, c - r - 8, c + r, c + r - 8)
    p.drawLine(c + r, c - r - 8, c - r, c + r - 8)
    f = QFont()
    f.setPointSize(9)
    f.setBold(True)
    p.setFont(f)
    p.setPen(red)
    p.drawText(QRect(0, c + r, size, 24), Qt.AlignmentFlag.AlignCenter, "can't read")
    p.end()
    return pm


def list_project(root: str, state: workers.JobState, chunk: int = 1000) -> dict:
    """Worker: list a class-folder project (:func:`..core.project.iter_project_files`),
    handing rows to the GUI in chunks: partial results ``("classes", [name, ...])`` then
    ``("rows", [(path, class), ...])``; images in the root have class "" (unlabelled).
    The result's ``rows`` are the whole listing as the session keeps it (``Row`` objects,
    made here so that handing them to the session costs the GUI thread next to nothing)."""
    from ...core.folders import list_class_folders  # noqa: PLC0415 (torch-free)
    from ...core.project import iter_project_files  # noqa: PLC0415

    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a folder")
    classes = list_class_folders(root)
    state.partial(("classes", classes))
    batch: list[tuple[str, str]] = []
    rows: list[Row] = []
    for item in iter_project_files(root):
        batch.append(item)
        if len(batch) >= chunk:
            rows += [Row(*r) for r in batch]
            state.partial(("rows", batch))
            batch = []
    if batch:
        rows += [Row(*r) for r in batch]
        state.partial(("rows", batch))
    return {"root": root, "classes": classes, "total": len(rows), "rows": rows}


def session_rows(entries: dict[str, list]) -> list[Row]:
    """Worker: the session's rows (path, class) of the store's entries (path -> [class, ...])."""
    return [Row(p, e[0]) for p, e in entries.items()]


class ThumbnailModel(QAbstractListModel):
    """All images of a project, filtered by class, split and status; thumbnails load only for
    shown rows. Rows are kept in path order so changes can be applied incrementally."""

    thumbnail_arrived = Signal(str)  # path

    def __init__(self, loader: workers.ThumbnailLoader, parent=None):
        super().__init__(parent)
        self._loader = loader
        # path -> [class, split or None, status, reason or None]; the store's view when a
        # project is attached, else what the listing found.
        self._entries: dict[str, list] = {}
        self._sorted: list[str] | None = None  # sorted(_entries), kept until the paths change
        self._counts: dict[str, dict[str, int]] | None = None  # count_entries(_entries), when known
        self._rows: list[str] = []  # sorted paths that pass the filter
        self._row_of: dict[str, int] = {}
        self._filter: str | None = None
        self._split: str | None = None
        self._status: str | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self.broken: dict[str, str] = {}
        self.requests = 0  # how many thumbnails were asked for (tests check laziness)
        pal = QPalette()
        self.placeholder = _placeholder_pixmap(THUMB_SIZE, pal)
        self.broken_icon = _broken_pixmap(THUMB_SIZE, pal)
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        loader.thumbnail_failed.connect(self._on_loader_thumbnail_failed)

    # -- Qt model API
    def rowCount(self, parent=None) -> int:
        # Called for every laid-out item: keep it free of calls back into Qt.
        return len(self._rows) if parent is None or parent.row() < 0 else 0

    def flags(self, index: QModelIndex):
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
        return f | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else f

    def mimeTypes(self) -> list[str]:
        return [MIME_PATHS, "text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        return paths_to_mime(sorted({i.data(PathRole) for i in indexes if i.isValid()}))

    def supportedDragActions(self):
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        row = index.row()
        if row < 0 or row >= len(self._rows):
            return None
        path = self._rows[row]
        cls, split, status, reason = self._entries[path]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(path)
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{os.path.basename(path)}\nclass: {cls}" if cls else \
                f"{os.path.basename(path)}\nunlabelled: in the project folder itself, not in a class folder"
            if split:
                tip += f" · {split}"
            if status != "ok":
                tip += f"\nstatus: {status}" + (f" ({reason})" if reason else "")
            if path in self.broken:
                tip += f"\ncan't read: {self.broken[path]}"
            return tip
        if role == PathRole:
            return path
        if role == ClassRole:
            return cls
        if role == SplitRole:
            return split
        if role == StatusRole:
            return "bad" if path in self.broken else status
        if role == BrokenRole:
            return self.broken.get(path)
        return None

    # -- filling
    def clear(self) -> None:
        self.beginResetModel()
        self._entries, self._rows, self._row_of = {}, [], {}
        self._sorted = None
        self._counts = None
        self._pixmaps.clear()
        self.broken.clear()
        self.endResetModel()
        self._loader.cancel_pending()

    def add_files(self, batch: list[tuple[str, str]]) -> None:
        """Rows found by the folder listing (paths already known are left as they are)."""
        self._counts = None
        entries = self._entries
        new = []
        for path, cls in batch:
            if path not in entries:
                entries[path] = [cls, None, "ok" if cls else "unlabelled", None]
                new.append(path)
        self._sorted = None
        self._insert(self._wanted(new))

    def apply_rows(self, rows, renames: dict[str, str] | None = None,
                   counts: dict[str, dict[str, int]] | None = None) -> None:
        """Make the model match the store's rows ``(path, class, split, status, reason)``,
        inserting and removing only what changed. ``renames`` (old -> new path) carries
        thumbnails over to moved files, so they do not flash back to placeholders."""
        for old, new in (renames or {}).items():
            if old in self._pixmaps:
                self._pixmaps[new] = self._pixmaps.pop(old)
            if old in self.broken:
                self.broken[new] = self.broken.pop(old)
        # a dict (path -> [class, split, status, reason]) comes built by a worker; rows are converted here
        entries = rows if isinstance(rows, dict) else entries_from_rows(rows)
        old_entries = self._entries
        changed = [p for p, e in entries.items() if old_entries.get(p, e) != e]
        for p in set(self._pixmaps).difference(entries):
            del self._pixmaps[p]
        if entries.keys() != old_entries.keys():
            self._sorted = None
        self._entries = entries
        self._counts = counts  # counted from these entries on the worker (None: count when asked)
        self._refilter()
        self._changed_many(changed, [ClassRole, SplitRole, StatusRole, Qt.ItemDataRole.ToolTipRole])

    def set_statuses(self, statuses: dict[str, tuple[str, str | None]]) -> None:
        """Apply statuses the store has recorded (path -> (status, reason))."""
        self._counts = None
        changed = []
        for path, (status, reason) in statuses.items():
            e = self._entries.get(path)
            if e is None:
                continue
            if status == "ok" and not e[0]:
                status = "unlabelled"
            if (e[2], e[3]) != (status, reason):
                e[2], e[3] = status, reason
                changed.append(path)
        if self._status is not None:
            self._refilter()
        self._changed_many(changed, [StatusRole, Qt.ItemDataRole.ToolTipRole])

    # -- filtering
    @property
    def class_filter(self) -> str | None:
        return self._filter

    @property
    def split_filter(self) -> str | None:
        return self._split

    @property
    def status_filter(self) -> str | None:
        return self._status

    def set_class_filter(self, name: str | None) -> None:
        self.set_filters(name, self._split, self._status)

    def set_filters(self, cls: str | None, split: str | None, status: str | None) -> None:
        if (cls, split, status) == (self._filter, self._split, self._status):
            return
        self.beginResetModel()
        self._filter, self._split, self._status = cls, split, status
        self._rows = self._wanted()
        self._row_of = {p: r for r, p in enumerate(self._rows)}
        self.endResetModel()
        # Rows scrolled away are not worth decoding any more; shown rows ask again.
        self._loader.cancel_pending()

    def _wanted(self, paths: list[str] | None = None) -> list[str]:
        """Those of ``paths`` (default: every image, sorted) that pass the filters, in their
        order. One comprehension per filter over the cached sorted paths: at 20,000 images a
        filter change costs a few milliseconds of the GUI thread, not a sort and a function
        call per image."""
        e = self._entries
        if paths is None:
            if self._sorted is None:
                self._sorted = sorted(e)
            paths = self._sorted
        rows = paths
        if self._filter is not None:
            cls = self._filter
            rows = [p for p in rows if e[p][0] == cls]
        if self._split is not None:
            split = self._split
            rows = [p for p in rows if e[p][1] == split]
        if self._status == "bad":
            broken = self.broken
            rows = [p for p in rows if e[p][2] == "bad" or p in broken]
        elif self._status is not None:
            status = self._status
            rows = [p for p in rows if e[p][2] == status]
        return rows if rows is not self._sorted else list(rows)  # never hand out the cache itself

    def _refilter(self) -> None:
        wanted = self._wanted()
        if wanted == self._rows:
            return
        want, have = set(wanted), set(self._rows)
        self._remove(have - want)
        self._insert(want - have)

    def _insert(self, paths) -> None:
        """Insert rows at their sorted places, one beginInsertRows per run of neighbours."""
        if not paths:
            return
        paths = sorted(paths)
        if not self._rows or paths[0] > self._rows[-1]:  # the listing's usual case: append
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(paths) - 1)
            self._rows.extend(paths)
            self._row_of.update((p, r) for r, p in enumerate(paths, first))
            self.endInsertRows()
            return
        groups: list[tuple[int, list[str]]] = []
        for p in paths:
            pos = bisect.bisect_left(self._rows, p)
            if groups and groups[-1][0] == pos:
                groups[-1][1].append(p)
            else:
                groups.append((pos, [p]))
        for pos, group in reversed(groups):  # back to front: earlier positions stay valid
            self.beginInsertRows(QModelIndex(), pos, pos + len(group) - 1)
            self._rows[pos:pos] = group
            self.endInsertRows()
        self._row_of = {p: r for r, p in enumerate(self._rows)}

    def _remove(self, paths) -> None:
        rows = sorted((self._row_of[p] for p in paths if p in self._row_of), reverse=True)
        if not rows:
            return
        ranges: list[list[int]] = []  # [first, last], back to front
        for r in rows:
            if ranges and ranges[-1][0] == r + 1:
                ranges[-1][0] = r
            else:
                ranges.append([r, r])
        for first, last in ranges:
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            self.endRemoveRows()
        self._row_of = {p: r for r, p in enumerate(self._rows)}

    # -- reading
    def file_count(self) -> int:
        return len(self._entries)

    def unlabelled_count(self) -> int:
        """Pictures lying in the project folder itself, in no class yet."""
        return sum(1 for e in self._entries.values() if e[0] == "")

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def entry(self, path: str) -> tuple | None:
        e = self._entries.get(path)
        return tuple(e) if e else None

    def paths(self) -> list[str]:
        return list(self._rows)

    def all_paths(self) -> list[str]:
        """Every image of the project, whatever the filters show."""
        return sorted(self._entries)

    def rows(self) -> list[tuple]:
        return [(p, *e) for p, e in self._entries.items()]

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{class: {"total", "train", "val", "test", "unassigned", "bad", "unlabelled"}}."""
        base = self._counts
        if base is None:
            base = self._counts = count_entries(self._entries)
        out = {c: dict(d) for c, d in base.items()}
        for path in self.broken:  # files that failed to decode since the store last said so
            e = self._entries.get(path)
            if e is not None and e[2] != "bad":
                out[e[0]]["bad"] += 1
                if e[2] == "unlabelled":
                    out[e[0]]["unlabelled"] -= 1
        return out

    def has_thumbnail(self, row: int) -> bool:
        return self._rows[row] in self._pixmaps

    def cell(self, row: int) -> tuple[QPixmap, str] | None:
        """What the grid's delegate paints for ``row``: the decoration (asking the loader
        for the thumbnail when it is missing) and the file name, in one call."""
        if row < 0 or row >= len(self._rows):
            return None
        path = self._rows[row]
        return self._decoration(path), os.path.basename(path)

    def _decoration(self, path: str) -> QPixmap:
        pm = self._pixmaps.get(path)
        if pm is not None:
            self._pixmaps.move_to_end(path)
            return pm
        if path in self.broken:
            return self.broken_icon
        self.requests += 1
        self._loader.request_thumbnail(path)
        return self.placeholder

    # -- loader results (GUI thread)
    @Slot(str, QImage)
    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        if path not in self._entries:
            return  # moved or deleted while it was decoding
        self._pixmaps[path] = _square_pixmap(image, THUMB_SIZE)
        while len(self._pixmaps) > PIXMAP_CACHE_ITEMS:
            self._pixmaps.popitem(last=False)
        self._changed(path)
        self.thumbnail_arrived.emit(path)

    @Slot(str, str)
    def _on_loader_thumbnail_failed(self, path: str, reason: str) -> None:
        if path not in self._entries:
            return
        self.broken[path] = reason
        self._changed(path)

    def _changed_many(self, paths, roles) -> None:
        """One dataChanged per run of neighbouring rows: a store sync that touches all
        20,000 rows is then a handful of signals, not 20,000 (which froze the grid)."""
        rows = sorted(r for r in map(self._row_of.get, paths) if r is not None)
        start = prev = None
        for r in rows + [None]:
            if r is not None and prev is not None and r == prev + 1:
                prev = r
                continue
            if start is not None:
                self.dataChanged.emit(self.index(start), self.index(prev), roles)
            start = prev = r

    def _changed(self, path: str, roles=None) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, roles or [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole])
