"""The Dataset place: a project's classes, a lazy thumbnail grid, a side pane with the
Preview, Augmentation (:class:`.qt_augment_preview.QtAugmentPreview`) and Similar
(:class:`.qt_similar.QtSimilarPanel`) tabs, labelling (import by drag and drop, paste or
camera capture, move, delete to trash, class changes, undo) and duplicate finding.

Owns :class:`ThumbnailModel` (rows are file paths; a thumbnail is requested only when
the view asks for a row's decoration, i.e. when the row is on screen) and
:class:`QtDatasetBrowser`, the widget composing class list, filter bar, grid and preview.
Listing, decoding and every change to a project (``ponyclassifier.core.project.Project``)
happen in :mod:`ponyclassifier.gui.workers`, one change at a time; after each the worker
hands back the store's rows and the model applies only the difference, so scroll
position, selection and thumbnails survive. This module only touches widgets, on the
GUI thread. The Augmentation and Similar panels (torch on their workers) and the capture
dialog (QtMultimedia) are built the first time they are wanted, so opening the app and
a project stays quick; deletes asked for by the Similar panel and pictures taken by the
capture dialog go through the same project path as every other change, so Undo works.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import OrderedDict
from typing import Callable

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QDrag,
    QFont,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import workers
from ..projects import (
    count_entries,
    entries_from_rows,
    import_images,
    read_back,
    tally,
    valid_class_name,
)
from ..widgets.banner import Banner
from ..widgets.format import human_size
from ..widgets.mime import (
    MIME_PATHS,
    local_files_from_mime,
    paths_from_mime,
    paths_to_mime,
)

THUMB_SIZE = 128
MIN_IMAGES_WARNING = 10  # fewer images than this in a class earns a warning
IMBALANCE_WARNING = 3.0  # largest class / a class above this earns a warning
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
    ``("rows", [(path, class), ...])``; images in the root have class "" (unlabelled)."""
    from ...core.folders import list_class_folders  # noqa: PLC0415 (torch-free)
    from ...core.project import iter_project_files  # noqa: PLC0415

    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a folder")
    classes = list_class_folders(root)
    state.partial(("classes", classes))
    batch: list[tuple[str, str]] = []
    total = 0
    for item in iter_project_files(root):
        batch.append(item)
        if len(batch) >= chunk:
            total += len(batch)
            state.partial(("rows", batch))
            batch = []
    if batch:
        total += len(batch)
        state.partial(("rows", batch))
    return {"root": root, "classes": classes, "total": total}


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


class QtPreviewPane(QFrame):
    """The selected image, large and scaled to fit, with what we know about the file."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(260)
        self._pixmap: QPixmap | None = None
        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(200, 200)
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image_label.setObjectName("previewImage")
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setObjectName("previewReason")
        self.reason_label.setStyleSheet(
            "QLabel#previewReason { color: #b02a2a; background: rgba(200,60,60,0.10);"
            " border: 1px solid rgba(200,60,60,0.45); border-radius: 6px; padding: 8px; }")
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label.hide()
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        for key, label in (("name", "File"), ("class", "Class"), ("pixels", "Pixels"),
                           ("bytes", "File size"), ("format", "Format")):
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setMinimumWidth(10)
            self.fields[key] = value
            title = QLabel(label)
            title.setEnabled(False)
            form.addRow(title, value)
        self.heading = QLabel("Preview")
        self.heading.setObjectName("paneHeading")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 10)
        lay.addWidget(self.heading)
        lay.addWidget(self.image_label, 1)
        lay.addWidget(self.reason_label)
        lay.addLayout(form)
        self.show_nothing()

    def show_nothing(self) -> None:
        self._pixmap = None
        self.image_label.setPixmap(QPixmap())
        self.image_label.setText("Select an image to see it here.")
        self.reason_label.hide()
        for v in self.fields.values():
            v.setText("–")

    def show_loading(self, path: str, cls: str) -> None:
        self._pixmap = None
        self.image_label.setPixmap(QPixmap())
        self.image_label.setText("Loading…")
        self.reason_label.hide()
        self.fields["name"].setText(os.path.basename(path))
        self.fields["name"].setToolTip(path)
        self.fields["class"].setText(cls)
        try:
            self.fields["bytes"].setText(human_size(os.stat(path).st_size))
        except OSError:
            self.fields["bytes"].setText("–")
        self.fields["pixels"].setText("–")
        self.fields["format"].setText("–")

    def show_image(self, image: QImage, info: dict) -> None:
        self._pixmap = QPixmap.fromImage(image)
        self.image_label.setText("")
        self.fields["pixels"].setText(f"{info['width']} × {info['height']}")
        self.fields["format"].setText(f"{info['format']} ({info['mode']})")
        self._rescale()

    def show_broken(self, reason: str) -> None:
        self._pixmap = None
        self.image_label.setText("")
        self.image_label.setPixmap(_broken_pixmap(THUMB_SIZE, self.palette()))
        self.reason_label.setText(f"<b>Can't read this file:</b> {reason}.<br>It will be skipped in training.")
        self.reason_label.show()

    @property
    def reason(self) -> str:
        return "" if self.reason_label.isHidden() else self.reason_label.text()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        size = self.image_label.size()
        pm = self._pixmap
        # Small images are scaled up too (at most 4x) so the pane is used; big ones down.
        cap = QSize(min(size.width(), pm.width() * 4), min(size.height(), pm.height() * 4))
        if cap != pm.size():
            pm = pm.scaled(cap, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.image_label.setPixmap(pm)


def _camera_icon(palette: QPalette, size: int = 32) -> QIcon:
    """A small camera drawn in the palette's text colour (no icon theme is needed)."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = palette.color(QPalette.ColorRole.WindowText)
    p.setPen(QPen(colour, size / 14))
    p.setBrush(Qt.BrushStyle.NoBrush)
    u = size / 32
    p.drawRoundedRect(QRect(round(3 * u), round(9 * u), round(26 * u), round(18 * u)), 3 * u, 3 * u)
    p.drawRect(QRect(round(11 * u), round(5 * u), round(10 * u), round(4 * u)))
    p.drawEllipse(QRect(round(10 * u), round(12 * u), round(12 * u), round(12 * u)))
    p.end()
    return QIcon(pm)


class _ClassTree(QTreeWidget):
    """The class list. Takes files and folders from the desktop (import) and images dragged
    out of the grid (move); both are handed to ``on_drop(class name, mime data)``."""

    def __init__(self, on_drop: Callable[[str, QMimeData], bool], parent=None):
        super().__init__(parent)
        self._on_drop = on_drop
        self._hover: QTreeWidgetItem | None = None
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(False)

    def target_class(self, pos) -> str | None:
        it = self.itemAt(pos)
        return it.data(COL_NAME, NameRole) if it is not None else None

    @staticmethod
    def _usable(mime: QMimeData) -> bool:
        return mime.hasFormat(MIME_PATHS) or bool(local_files_from_mime(mime))

    @staticmethod
    def _action(mime: QMimeData):
        return Qt.DropAction.MoveAction if mime.hasFormat(MIME_PATHS) else Qt.DropAction.CopyAction

    def dragEnterEvent(self, event) -> None:
        if self._usable(event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        cls = self.target_class(event.position().toPoint())
        if cls and self._usable(event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
            self._set_hover(self.itemAt(event.position().toPoint()))
        else:
            event.ignore()
            self._set_hover(None)

    def dragLeaveEvent(self, event) -> None:
        self._set_hover(None)

    def dropEvent(self, event) -> None:
        self._set_hover(None)
        cls = self.target_class(event.position().toPoint())
        if cls and self._on_drop(cls, event.mimeData()):
            event.setDropAction(self._action(event.mimeData()))
            event.accept()
        else:
            event.ignore()

    def _set_hover(self, item: QTreeWidgetItem | None) -> None:
        if item is self._hover:
            return
        for it, brush in ((self._hover, QBrush()), (item, QBrush(self._hover_color()))):
            if it is not None:
                for c in range(self.columnCount()):
                    it.setBackground(c, brush)
        self._hover = item

    def _hover_color(self) -> QColor:
        c = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        c.setAlpha(70)
        return c

    def clear(self) -> None:
        self._hover = None
        super().clear()


class _ThumbDelegate(QStyledItemDelegate):
    """Paints a grid cell (thumbnail over its elided file name) with one call into Python.

    The stock delegate asks the model for eight roles per painted cell, each a separate
    call from C++ into Python that must take the GIL; while a worker runs Python (listing
    a big folder, decoding) each of those waits its turn, and a screenful of them added up
    to 100-200 ms freezes. Here a cell costs one Python call (plus ``flags``)."""

    def __init__(self, model: "ThumbnailModel", parent=None):
        super().__init__(parent)
        self._model = model
        self._elided: dict[tuple[str, int], str] = {}

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        cell = self._model.cell(index.row())
        if cell is None:
            return
        pm, name = cell
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        r = option.rect
        painter.drawPixmap(r.x() + (r.width() - pm.width()) // 2, r.y() + 3, pm)
        width = r.width() - 6
        key = (name, width)
        text = self._elided.get(key)
        if text is None:
            if len(self._elided) > 20000:
                self._elided.clear()
            text = self._elided[key] = option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        painter.drawText(QRect(r.x() + 3, r.y() + 5 + pm.height(), width, r.height() - pm.height() - 6),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def sizeHint(self, option, index: QModelIndex) -> QSize:
        return QSize(THUMB_SIZE + 22, THUMB_SIZE + 30)


class _Grid(QListView):
    """The thumbnail grid: number keys move the selection to a class, files from the
    desktop are imported into the class shown, selected images drag onto the class list."""

    def __init__(self, on_number: Callable[[int], None], on_drop: Callable[[QMimeData], bool], parent=None):
        super().__init__(parent)
        self._on_number = on_number
        self._on_drop = on_drop
        self.setAcceptDrops(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(False)

    def keyPressEvent(self, event) -> None:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        key = event.key()
        if mods == Qt.KeyboardModifier.NoModifier and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self._on_number(int(key) - int(Qt.Key.Key_0))
            event.accept()
            return
        super().keyPressEvent(event)

    def startDrag(self, supported_actions) -> None:
        indexes = self.selectedIndexes()
        if not indexes:
            return
        drag = QDrag(self)
        drag.setMimeData(self.model().mimeData(indexes))
        pm = self.currentIndex().data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            drag.setPixmap(pm.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))
        # The model never removes rows itself: a move is done by the project, then applied.
        drag.exec(Qt.DropAction.MoveAction | Qt.DropAction.CopyAction, Qt.DropAction.MoveAction)

    @staticmethod
    def _external(mime: QMimeData) -> bool:
        return not mime.hasFormat(MIME_PATHS) and bool(local_files_from_mime(mime))

    def dragEnterEvent(self, event) -> None:
        if self._external(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        if self._external(event.mimeData()) and self._on_drop(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()


class ImportReport(QDialog):
    """What happened to each dropped file that was not imported, and why (non-modal)."""

    def __init__(self, summary: str, skipped: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import finished")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(680, 380)
        head = QLabel(summary)
        head.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["File", "Why it was skipped"])
        self.table.setUniformRowHeights(True)
        self.table.setAlternatingRowColors(True)
        for source, reason in skipped:
            it = QTreeWidgetItem([source, reason])
            it.setToolTip(0, source)
            self.table.addTopLevelItem(it)
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(0, 400)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)


class SplitsDialog(QDialog):
    """The project's splits, visible and editable: per-class counts, the seeded stratified
    train/validation split (share and seed), and the optional external test folder."""

    def __init__(self, browser: "QtDatasetBrowser", parent=None):
        super().__init__(parent)
        self.browser = browser
        self.setWindowTitle("Splits")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        intro = QLabel("Training learns from the <b>train</b> images; the <b>validation</b> images are held back "
                       "to check it honestly. Each class is split on its own (stratified), by a seeded shuffle, "
                       "so the same seed always gives the same split.")
        intro.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setHeaderLabels(["Class", "Train", "Validation", "Test", "No split"])
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.fraction = QDoubleSpinBox()
        self.fraction.setRange(5, 50)
        self.fraction.setDecimals(0)
        self.fraction.setSuffix(" %")
        self.fraction.setToolTip("The share of each class held back for validation")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setToolTip("Another number gives another (but repeatable) choice of validation images")
        self.make_button = QPushButton("Make Split")
        self.make_button.setToolTip("Split every class again with this share and seed (replaces the current split)")
        self.make_button.clicked.connect(self._on_make_button_clicked)
        self.test_label = QLabel()
        self.test_label.setWordWrap(True)
        self.test_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_test = QPushButton("Choose…")
        self.choose_test.setToolTip("A folder with the same class subfolders, photographed elsewhere: the fairest "
                                    "test of how the model does on new pictures. It is never trained on.")
        self.choose_test.clicked.connect(self._on_choose_test_clicked)
        self.clear_test = QPushButton("Clear")
        self.clear_test.setToolTip("Stop using an external test folder (the folder itself is not touched)")
        self.clear_test.clicked.connect(lambda: self.browser.set_test_folder(None))
        form = QFormLayout()
        split_row = QHBoxLayout()
        split_row.addWidget(self.fraction)
        split_row.addWidget(QLabel("seed"))
        split_row.addWidget(self.seed)
        split_row.addStretch(1)
        split_row.addWidget(self.make_button)
        form.addRow("Validation share", split_row)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_label, 1)
        test_row.addWidget(self.choose_test)
        test_row.addWidget(self.clear_test)
        form.addRow("External test folder", test_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.table, 1)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self.resize(560, 420)
        settings = browser.split_settings or {}
        self.fraction.setValue(round(100 * float(settings.get("val_fraction", 0.2))))
        self.seed.setValue(int(settings.get("seed", 0)))
        browser.counts_changed.connect(self.refresh)
        browser.splits_changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *args) -> None:
        b = self.browser
        self.table.clear()
        for c in b.classes:
            d = b.split_counts.get(c, {})
            it = QTreeWidgetItem([c] + [f"{d.get(k, 0):,}" for k in ("train", "val", "test", "unassigned")])
            for col in range(1, 5):
                it.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.addTopLevelItem(it)
        folder = b.test_folder
        self.test_label.setText(folder or "<i>none</i> (optional)")
        self.test_label.setToolTip(folder or "")
        self.clear_test.setEnabled(bool(folder) and b.can_edit)
        self.choose_test.setEnabled(b.can_edit)
        self.make_button.setEnabled(b.can_edit)

    def _on_make_button_clicked(self) -> None:
        self.browser.make_splits(self.fraction.value() / 100, self.seed.value())

    def _on_choose_test_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "External test folder", self.browser.test_folder or "")
        if folder:
            self.browser.set_test_folder(folder)


class QtDatasetBrowser(QWidget):
    """Classes with counts, the filter bar, the thumbnail grid and the preview of a project
    folder; with a :class:`~ponyclassifier.core.project.Project` attached, labelling too."""

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

    def __init__(self, cache_dir: str | os.PathLike | None = None, parent=None):
        super().__init__(parent)
        self.root: str | None = None
        self.project = None  # a core Project while labelling is possible
        self.classes: list[str] = []
        self.counts: dict[str, int] = {}
        self.split_counts: dict[str, dict[str, int]] = {}
        self.test_folder: str | None = None  # the project's external test folder
        self.split_settings: dict | None = None  # {"val_fraction", "seed"} of the last split made
        self.splits_dialog: SplitsDialog | None = None
        self.listing = False
        self.last_import: dict | None = None
        self.last_import_report: ImportReport | None = None
        self._job: workers.Job | None = None
        self._action: workers.Job | None = None
        self._import_stop: threading.Event | None = None
        self._shut = False
        self._preview_path: str | None = None
        self._generation = 0  # results of a superseded listing are dropped
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
        self._make_actions()

        # left: classes
        self.class_tree = _ClassTree(self._on_class_tree_drop)
        self.class_tree.setColumnCount(3)
        self.class_tree.setHeaderLabels(["", "Class", "Images"])
        self.class_tree.setRootIsDecorated(False)
        self.class_tree.setUniformRowHeights(True)
        self.class_tree.setIconSize(QSize(16, 16))
        self.class_tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.class_tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.class_tree.customContextMenuRequested.connect(self._on_class_tree_context_menu)
        hdr = self.class_tree.header()
        hdr.setStretchLastSection(False)
        hdr.setMinimumSectionSize(18)
        hdr.setSectionResizeMode(COL_KEY, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        hdr.setSectionResizeMode(COL_COUNT, QHeaderView.ResizeMode.ResizeToContents)
        self.class_tree.headerItem().setToolTip(COL_KEY, "Press this number key in the grid to move the "
                                                "selected images to the class")
        self.class_tree.currentItemChanged.connect(self._on_class_tree_current_changed)
        self.class_tree.itemSelectionChanged.connect(self._update_actions)
        self.class_hint = QLabel()
        self.class_hint.setWordWrap(True)
        self.class_hint.setObjectName("hint")
        new_class = QToolButton()
        new_class.setDefaultAction(self.act_new_class)
        new_class.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        new_class.setAutoRaise(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(8, 8, 0, 8)
        head_row = QHBoxLayout()
        heading = QLabel("Classes")
        heading.setObjectName("paneHeading")
        head_row.addWidget(heading)
        head_row.addStretch(1)
        head_row.addWidget(new_class)
        ll.addLayout(head_row)
        ll.addWidget(self.class_tree, 1)
        ll.addWidget(self.class_hint)
        # The class list keeps room for its names when the grid or the side pane grows: the
        # splitter gives and takes space from the grid (stretch 1) first, and long names are
        # elided in the middle with the full name in the tooltip.
        left.setMinimumWidth(190)
        self.class_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        # centre: title + filter bar, grid, import progress
        self.view = _Grid(self.move_selected_to_number, self._on_grid_drop)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.view.setGridSize(QSize(THUMB_SIZE + 22, THUMB_SIZE + 30))
        self.view.setSpacing(0)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalScrollBar().setSingleStep(24)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu)
        self.view.setModel(self.model)
        self.view.setItemDelegate(_ThumbDelegate(self.model, self.view))
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        self.grid_title = QLabel()
        self.grid_title.setObjectName("paneHeading")
        self.grid_status = QLabel()
        self.grid_status.setObjectName("hint")
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("emptyState")
        # a folder of photos with no classes yet is how most people start: their pictures are
        # shown at once, with this invitation to make classes and sort them
        self.sort_hint = QLabel()
        self.sort_hint.setWordWrap(True)
        self.sort_hint.setObjectName("sortHint")
        self.sort_hint.setTextFormat(Qt.TextFormat.RichText)
        self.sort_hint.hide()
        self.grid_stack = QStackedWidget()
        self.grid_stack.addWidget(self.view)
        self.grid_stack.addWidget(self.empty_label)
        self.split_buttons = self._segmented([("All", None), ("Train", "train"), ("Val", "val"), ("Test", "test")],
                                             self.set_split_filter, "Show images of one split")
        self.status_buttons = self._segmented([("Any", None), ("Bad", "bad"), ("Unlabelled", "unlabelled")],
                                              self.set_status_filter, "Show only unreadable or unlabelled images")
        centre = QWidget()
        cl = QVBoxLayout(centre)
        cl.setContentsMargins(0, 8, 0, 0)
        cl.setSpacing(4)
        title_row = QHBoxLayout()
        title_row.setContentsMargins(4, 0, 4, 0)
        title_row.addWidget(self.grid_title)
        title_row.addSpacing(8)
        title_row.addWidget(self.grid_status)
        title_row.addStretch(1)
        title_row.addWidget(self.split_buttons[0])
        title_row.addSpacing(10)
        title_row.addWidget(self.status_buttons[0])
        title_row.addSpacing(10)
        splits_button = QToolButton()
        splits_button.setDefaultAction(self.act_splits)
        splits_button.setAutoRaise(True)
        splits_button.setToolTip("See and remake the train/validation split; choose an external test folder")
        title_row.addWidget(splits_button)
        cl.addLayout(title_row)
        self._title_row = title_row
        cl.addWidget(self.sort_hint)
        cl.addWidget(self.grid_stack, 1)
        cl.addWidget(self._make_import_panel())

        # right: preview, augmentation and similar images of the selection, as tabs
        self.preview = QtPreviewPane()
        self.preview.heading.hide()  # the tab says it
        self.side_tabs = QTabWidget()
        self.side_tabs.setObjectName("sideTabs")
        self.side_tabs.setDocumentMode(True)
        self.side_tabs.addTab(self.preview, "Preview")
        self._augment_page = self._lazy_page()
        self._similar_page = self._lazy_page()
        self.side_tabs.addTab(self._augment_page, "Augmentation")
        self.side_tabs.addTab(self._similar_page, "Similar")
        self.side_tabs.setTabToolTip(0, "The selected image, large, and what we know about the file")
        self.side_tabs.setTabToolTip(1, "The selected image as training may see it: random variants within the "
                                        "augmentation strengths set here")
        self.side_tabs.setTabToolTip(2, "Duplicates and look-alikes in the project, and the images most like "
                                        "the selected one")
        self.side_tabs.currentChanged.connect(self._on_side_tabs_current_changed)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([240, 680, 320])
        self.splitter.setChildrenCollapsible(False)
        self.banner = Banner()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        banner_box = QHBoxLayout()
        banner_box.setContentsMargins(8, 6, 8, 0)
        banner_box.addWidget(self.banner)
        lay.addLayout(banner_box)
        lay.addWidget(self.splitter, 1)
        self.setStyleSheet(
            "QLabel#paneHeading { font-weight: 600; padding: 2px 0 4px 0; }"
            "QLabel#hint { color: palette(placeholder-text); }"
            "QTreeWidget::item { padding: 3px 2px; }"
            "QToolButton#segment { padding: 2px 9px; border: 1px solid palette(mid); border-radius: 0;"
            " background: palette(button); }"
            "QToolButton#segment:checked { background: palette(highlight); color: palette(highlighted-text);"
            " border-color: palette(highlight); }"
            "QFrame#importPanel { border-top: 1px solid palette(mid); }"
            "QLabel#emptyState { color: palette(placeholder-text); font-size: 14px; padding: 40px; }"
            "QLabel#sortHint { background: #e8f0fe; color: #1a3a6b; border: 1px solid #b6cbf2; border-radius: 4px;"
            " padding: 6px 8px; }")
        self._show_empty("No project open. Use File ▸ Open Folder… to choose a folder with one subfolder per class.")
        self._update_titles()
        self._update_actions()

    # ------------------------------------------------------------------ building
    @staticmethod
    def _lazy_page() -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        return page

    def _segmented(self, choices, on_pick, tip: str) -> tuple[QWidget, dict]:
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        group = QButtonGroup(box)
        buttons = {}
        for text, value in choices:
            b = QToolButton()
            b.setObjectName("segment")
            b.setText(text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setChecked(value is None)
            b.clicked.connect(lambda checked=False, v=value: on_pick(v))
            group.addButton(b)
            lay.addWidget(b)
            buttons[value] = b
        group.setExclusive(True)
        return box, buttons

    def _make_import_panel(self) -> QWidget:
        self.import_panel = QFrame()
        self.import_panel.setObjectName("importPanel")
        self.import_label = QLabel()
        self.import_bar = QProgressBar()
        self.import_bar.setTextVisible(False)
        self.import_bar.setMaximumHeight(12)
        self.import_cancel = QPushButton("Cancel")
        self.import_cancel.clicked.connect(self.cancel_import)
        lay = QHBoxLayout(self.import_panel)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addWidget(self.import_label)
        lay.addWidget(self.import_bar, 1)
        lay.addWidget(self.import_cancel)
        self.import_panel.hide()
        return self.import_panel

    def _make_actions(self) -> None:
        def act(text, slot, shortcut=None, tip="", local=False) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
            a.setStatusTip(tip)
            a.triggered.connect(lambda checked=False: slot())
            if local:  # only while the Dataset place has focus (other places have their own keys)
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(a)
            return a

        self.act_undo = act("&Undo", self.undo, QKeySequence("Ctrl+Z"), "Undo the last labelling change")
        self.act_redo = act("&Redo", self.redo, [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")],
                            "Redo the change just undone")
        self.act_paste = act("&Paste Image", self.paste, QKeySequence("Ctrl+V"),
                             "Add the image on the clipboard to the class shown", local=True)
        self.act_delete = act("&Delete to Trash", self.delete_selected, [QKeySequence("Delete"),
                              QKeySequence("Backspace")], "Move the selected images to the project's trash "
                              "(undo brings them back)", local=True)
        self.act_new_class = act("&New Class…", self.new_class_dialog, tip="Create a class (a new folder)")
        self.act_rename_class = act("Re&name Class…", self.rename_class_dialog, QKeySequence("F2"),
                                    "Rename the selected class (its folder)", local=True)
        self.act_merge_classes = act("&Merge Classes…", self.merge_classes_dialog,
                                     tip="Move every image of the selected classes into one of them")
        self.act_delete_class = act("Delete C&lass…", self.delete_class_dialog,
                                    tip="Move the selected class and its images to the project's trash")
        self.act_capture = act("&Capture from Camera…", self.open_capture, QKeySequence("Ctrl+Shift+C"),
                               "Take pictures with a webcam (or a video file) straight into a class")
        self.act_capture.setIcon(_camera_icon(self.palette()))
        self.act_find_duplicates = act("Find &Duplicates…", self.find_duplicates, QKeySequence("Ctrl+Shift+D"),
                                       "Look for identical and nearly identical images in the project")
        self.act_find_similar = act("Find &Similar", self.find_similar_to, QKeySequence("Ctrl+Shift+F"),
                                    "Show the images of the project most like the selected one", local=True)
        self.act_show_augment = act("&Augmentation Preview", lambda: self.show_side_tab("augment"),
                                    QKeySequence("Ctrl+Shift+A"),
                                    "See the selected image as training may see it, and set the augmentation")
        self.act_splits = act("S&plits…", self.open_splits, tip="See and remake the train/validation split, and "
                              "choose an external test folder")
        self.move_menu = QMenu("&Move to")
        self.move_menu.aboutToShow.connect(self._fill_move_menu)
        self.dataset_actions = [self.act_capture, None, self.act_find_duplicates, self.act_find_similar, None,
                                self.act_show_augment, self.act_splits]
        self.edit_actions = [self.act_undo, self.act_redo, None, self.act_paste, self.move_menu, self.act_delete,
                             None, self.act_new_class, self.act_rename_class, self.act_merge_classes,
                             self.act_delete_class]

    def fill_edit_menu(self, menu: QMenu) -> None:
        self._fill_menu(menu, self.edit_actions)

    def fill_dataset_menu(self, menu: QMenu) -> None:
        self._fill_menu(menu, self.dataset_actions)

    @staticmethod
    def _fill_menu(menu: QMenu, actions) -> None:
        for a in actions:
            if a is None:
                menu.addSeparator()
            elif isinstance(a, QMenu):
                menu.addMenu(a)
            else:
                menu.addAction(a)

    def _fill_move_menu(self) -> None:
        self.move_menu.clear()
        for i, c in enumerate(self.classes):
            a = self.move_menu.addAction(f"&{i + 1}  {c}" if i < 9 else c)
            a.setEnabled(self.can_edit and bool(self.selected_paths()))
            a.triggered.connect(lambda checked=False, c=c: self.move_selected_to(c))
        if not self.classes:
            self.move_menu.addAction("No classes").setEnabled(False)

    # ------------------------------------------------------------------ projects
    def open_project(self, root: str | os.PathLike) -> None:
        """Start listing ``root`` in the background; rows appear as they are found.
        Labelling starts when a project is attached (:meth:`attach_project`)."""
        self.cancel_listing()
        self.root = os.path.abspath(os.fspath(root))
        self.classes, self.counts, self.split_counts = [], {}, {}
        self.model.set_filters(None, None, None)
        self._sync_filter_buttons()
        self.model.clear()
        self.preview.show_nothing()
        self._preview_path = None
        self._reset_tools()
        self.class_tree.clear()
        self.listing = True
        self.grid_stack.setCurrentWidget(self.view)
        self._update_titles()
        self._generation += 1
        gen, root_s = self._generation, self.root
        self._job = workers.run_job(
            lambda state: list_project(root_s, state),
            on_partial=lambda value: self._on_listing_partial(gen, value),
            on_finished=lambda result: self._on_listing_finished(gen, result),
            on_failed=lambda message, tb: self._on_listing_failed(gen, message, tb),
        )
        self.project_opened.emit(self.root)

    def attach_project(self, project, rows, classes: list[str], counts: dict | None = None) -> None:
        """Labelling on: ``project`` (opened on a worker) is the root's store; ``rows`` its
        images (see :func:`.projects.snapshot`, or as :func:`.projects.entries_from_rows`
        makes them on the worker, with ``counts`` from :func:`.projects.count_entries`)."""
        self.detach_project()
        self.project = project
        self.test_folder, self.split_settings = project.test_folder, project.split_settings()  # one tiny read
        entries = dict(rows) if isinstance(rows, dict) else entries_from_rows(rows)
        if project.read_only:  # not synced: files the store has not seen yet stay listed
            extra = {r[0]: list(r[1:]) for r in self.model.rows() if r[0] not in entries}
            if extra:
                entries.update(extra)
                counts = None
        self.model.apply_rows(entries, counts=counts)
        self._set_classes(sorted(set(classes) | set(self.classes)))
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

    def detach_project(self) -> None:
        """Labelling off; the project is closed now, or by the action still running on it."""
        capture = self.capture_dialog
        self.close_capture()  # it writes to this project
        project, self.project = self.project, None
        if project is not None and capture is not None and capture.saving:
            # it finishes its last save first; the project is closed when it has gone
            capture.finished.connect(lambda r, p=project: p.close())
            project = None
        self._refresh_pending = None
        self._statuses_pending.clear()
        self._statuses_timer.stop()
        if self._import_stop is not None:
            self._import_stop.set()
        if project is not None and self._action is None:
            project.close()
        if self.splits_dialog is not None:
            self.splits_dialog.close()
        self.banner.hide()
        self._update_actions()

    def show_failure(self, html: str) -> None:
        """The project could not be opened: nothing is shown from it."""
        self.cancel_listing()
        self._generation += 1  # drop what the listing still has on its way
        self.detach_project()
        self.model.clear()
        self.class_tree.clear()
        self.classes, self.counts, self.split_counts = [], {}, {}
        self.preview.show_nothing()
        self._show_empty(html)
        self._update_titles()

    def reload(self) -> None:
        """List the folder again; with a project, sync the store with files added or removed
        by other tools instead, keeping the view where it is."""
        if self.project is not None and not self.project.read_only:
            self._run_op(lambda p: (p.sync(), p.make_missing_splits()), undoable=False, busy="Reloading…",
                         done=lambda op: "Reloaded the project folder.")
            return
        if self.root:
            keep = self.model.class_filter
            self.open_project(self.root)
            self._pending_filter = keep

    def cancel_listing(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self.listing = False

    def shutdown(self) -> None:
        """Stop background work started by this widget (at window close)."""
        self.cancel_listing()
        self.detach_project()
        self._shut = True
        self.loader.close()
        if self.augment is not None:
            self.augment.shutdown()
        if self.similar is not None:
            self.similar.shutdown()
        if self.last_import_report is not None:
            self.last_import_report.close()

    @property
    def busy(self) -> bool:
        return self._action is not None

    @property
    def can_edit(self) -> bool:
        return self.project is not None and not self.project.read_only

    def _on_listing_partial(self, gen: int, item) -> None:
        if gen != self._generation or not self.listing:
            return
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

    def _on_listing_finished(self, gen: int, result: dict) -> None:
        if gen != self._generation:
            return  # an older listing, superseded
        self._job = None
        self.listing = False
        self._refresh_counts()
        self._update_titles()
        keep, self._pending_filter = self._pending_filter, None
        if keep and keep in self.classes:
            self.select_class(keep)
        self._show_grid_or_empty()
        if self.view.currentIndex().row() < 0 and self.model.rowCount() > 0:
            self.view.setCurrentIndex(self.model.index(0))
        self.listing_finished.emit(self.model.file_count())

    def _on_listing_failed(self, gen: int, message: str, tb: str) -> None:
        if gen != self._generation:
            return
        self._job = None
        self.listing = False
        self._show_empty(f"<b>Could not list this folder</b><br>{message}")
        self._update_titles()
        self.listing_failed.emit(message)

    def _show_grid_or_empty(self) -> None:
        if self.root is None:
            self.sort_hint.hide()
            return
        loose = self.model.unlabelled_count()
        self._update_sort_hint(loose)
        if not self.classes and loose:
            self.grid_stack.setCurrentWidget(self.view)
        elif not self.classes:
            self._show_empty(f"<b>No class folders in</b><br>{self.root}<br><br>A project is a folder with one "
                             "subfolder per class, e.g. <i>pets/cat/</i> and <i>pets/dog/</i>.")
        elif self.model.file_count() == 0 and not self.listing:
            self._show_empty("<b>No images yet.</b><br><br>Drag pictures from your desktop onto a class on the "
                             "left, or copy them into the class folders:<br>"
                             + "<br>".join(os.path.join(self.root, c) for c in self.classes[:6])
                             + "<br><br>then choose View ▸ Reload (F5).")
        else:
            self.grid_stack.setCurrentWidget(self.view)

    def _update_sort_hint(self, loose: int) -> None:
        if not loose:
            self.sort_hint.hide()
            return
        n = f"{loose:,} picture{'s' if loose != 1 else ''}"
        if not self.classes:
            text = (f"<b>{n}, not sorted into classes yet.</b> Make a class for each kind of picture with the "
                    "<b>New Class</b> button above the class list; then select pictures here and press the "
                    "class's number key (1–9), or drag them onto the class.")
        else:
            text = (f"<b>{n} in the project folder itself, in no class yet.</b> Select them and press a class's "
                    "number key (1–9), or drag them onto a class on the left (the <b>Unlabelled</b> filter shows "
                    "only them).")
        self.sort_hint.setText(text)
        self.sort_hint.show()

    def _show_empty(self, html: str) -> None:
        self.empty_label.setText(html)
        self.grid_stack.setCurrentWidget(self.empty_label)

    # ------------------------------------------------------------------ classes
    def _set_classes(self, classes: list[str], select: str | None = "keep") -> None:
        """Rebuild the class list if it changed; keep the class shown (or show ``select``)."""
        current = self.model.class_filter if select == "keep" else select
        if current is not None and current not in classes:
            current = None
        if classes != self.classes or self.class_tree.topLevelItemCount() != len(classes) + 1:
            self.classes = list(classes)
            self._rebuild_class_tree(current)
        if current != self.model.class_filter:
            self._show_class_quietly(current, lambda: self.model.set_class_filter(current))

    def _show_class_quietly(self, cls: str | None, set_filter) -> None:
        """Make ``cls``'s row current without the tree's signals, apply ``set_filter()`` to the
        model and update what follows a filter change."""
        self.class_tree.blockSignals(True)
        self.class_tree.setCurrentItem(self.class_item(cls))
        self.class_tree.blockSignals(False)
        set_filter()
        self._after_filter_change()

    def _rebuild_class_tree(self, current: str | None = None) -> None:
        self.class_tree.blockSignals(True)
        self.class_tree.clear()
        all_item = QTreeWidgetItem(["", "All images", "0"])
        all_item.setData(COL_NAME, NameRole, None)
        f = all_item.font(COL_NAME)
        f.setBold(True)
        all_item.setFont(COL_NAME, f)
        all_item.setFont(COL_COUNT, f)
        all_item.setTextAlignment(COL_COUNT, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.class_tree.addTopLevelItem(all_item)
        dim = self.palette().color(QPalette.ColorRole.PlaceholderText)
        chosen = all_item
        for i, c in enumerate(self.classes):
            it = QTreeWidgetItem([str(i + 1) if i < 9 else "", c, "0"])
            it.setData(COL_NAME, NameRole, c)
            it.setForeground(COL_KEY, dim)
            it.setTextAlignment(COL_KEY, Qt.AlignmentFlag.AlignCenter)
            it.setTextAlignment(COL_COUNT, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if i < 9:
                it.setToolTip(COL_KEY, f"Press {i + 1} in the grid to move the selected images to {c}")
            self.class_tree.addTopLevelItem(it)
            if c == current:
                chosen = it
        self.class_tree.setCurrentItem(chosen)
        self.class_tree.blockSignals(False)
        self._update_class_counts()

    def class_problems(self) -> dict[str, str]:
        """Per class, why it may train badly (too few images, strong imbalance)."""
        out: dict[str, str] = {}
        if not self.counts:
            return out
        largest = max(self.counts.values())
        big = max(self.counts, key=self.counts.get)
        for c, n in self.counts.items():
            why = []
            if n < MIN_IMAGES_WARNING:
                why.append(f"only {n} image{'s' if n != 1 else ''}; aim for at least {MIN_IMAGES_WARNING} per class")
            if n == 0 or largest / max(n, 1) > IMBALANCE_WARNING:
                if n and c != big:
                    why.append(f"{largest / n:.1f}× fewer images than {big!r} ({largest}); unbalanced "
                               "classes bias the model towards the big ones")
            if why:
                out[c] = "; ".join(why)
        return out

    def _refresh_counts(self) -> None:
        self.split_counts = self.model.class_counts()
        self.counts = {c: self.split_counts.get(c, {}).get("total", 0) for c in self.classes}
        for c, d in self.split_counts.items():  # files in folders the class list has not seen yet
            if c:  # "" holds the unlabelled images in the project root: not a class
                self.counts.setdefault(c, d["total"])
        self._update_class_counts()
        self.counts_changed.emit(self.model.file_count(), len(self.classes))

    def _count_key(self) -> str:
        """Which number the count column shows: all images, or those of the split / status shown."""
        return self.model.status_filter or self.model.split_filter or "total"

    def _update_class_counts(self) -> None:
        problems = self.class_problems() if not self.listing else {}
        if self._warn_icon is None:
            self._warn_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        warn = self._warn_icon
        key = self._count_key()
        self.class_tree.headerItem().setText(COL_COUNT, "Images" if key == "total" else key.capitalize())
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            c = it.data(COL_NAME, NameRole)
            if c is None:
                n = sum(d.get(key, 0) for d in self.split_counts.values())
                it.setText(COL_COUNT, f"{n:,}")
                continue
            d = self.split_counts.get(c, {})
            it.setText(COL_COUNT, f"{d.get(key, 0):,}")
            total = self.counts.get(c, 0)
            tip = f"{c}: {total:,} image{'s' if total != 1 else ''}"
            if self.project is not None and d:
                tip += (f"\ntrain {d['train']:,} · val {d['val']:,} · test {d['test']:,}"
                        + (f" · no split {d['unassigned']:,}" if d["unassigned"] else "")
                        + (f"\n{d['bad']:,} unreadable" if d["bad"] else ""))
            problem = problems.get(c)
            if problem:
                tip += f"\n⚠ {problem}"
            it.setIcon(COL_NAME, warn if problem else QIcon())
            for col in (COL_NAME, COL_COUNT):
                it.setToolTip(col, tip)
        if problems:
            self.class_hint.setText(f"⚠ {len(problems)} class{'es' if len(problems) != 1 else ''} may train "
                                    "badly; hover for why.")
        elif self.can_edit and self.classes:
            self.class_hint.setText("Drop pictures on a class to add them. Keys 1–9 move the selected images.")
        else:
            self.class_hint.setText("")

    def class_item(self, name: str | None) -> QTreeWidgetItem | None:
        for i in range(self.class_tree.topLevelItemCount()):
            it = self.class_tree.topLevelItem(i)
            if it.data(COL_NAME, NameRole) == name:
                return it
        return None

    def select_class(self, name: str | None) -> None:
        it = self.class_item(name)
        if it is not None:
            self.class_tree.setCurrentItem(it)

    def selected_classes(self) -> list[str]:
        return [c for c in (it.data(COL_NAME, NameRole) for it in self.class_tree.selectedItems()) if c]

    def _current_class(self) -> str | None:
        it = self.class_tree.currentItem()
        return it.data(COL_NAME, NameRole) if it is not None else None

    def _on_class_tree_current_changed(self, current, previous) -> None:
        name = current.data(COL_NAME, NameRole) if current is not None else None
        self.model.set_class_filter(name)
        self._after_filter_change()

    def _on_class_tree_context_menu(self, pos) -> None:
        it = self.class_tree.itemAt(pos)
        if it is not None and not it.isSelected():
            self.class_tree.setCurrentItem(it)
        menu = self.class_tree_menu()
        menu.exec(self.class_tree.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def class_tree_menu(self) -> QMenu:
        """The class list's context menu, for the current class."""
        menu = QMenu(self)
        cls = self._current_class()
        if cls is not None:
            cap = menu.addAction(_camera_icon(self.palette(), 16), f"Capture into {cls}…")
            cap.setEnabled(self.act_capture.isEnabled())
            cap.triggered.connect(lambda checked=False, c=cls: self.open_capture(c))
            menu.addSeparator()
        for a in (self.act_new_class, self.act_rename_class, self.act_merge_classes, self.act_delete_class):
            menu.addAction(a)
        return menu

    # ------------------------------------------------------------------ filters
    def set_split_filter(self, split: str | None) -> None:
        self.model.set_filters(self.model.class_filter, split, self.model.status_filter)
        self._after_filter_change()

    def set_status_filter(self, status: str | None) -> None:
        self.model.set_filters(self.model.class_filter, self.model.split_filter, status)
        self._after_filter_change()

    def _sync_filter_buttons(self) -> None:
        self.split_buttons[1][self.model.split_filter].setChecked(True)
        self.status_buttons[1][self.model.status_filter].setChecked(True)

    def _after_filter_change(self) -> None:
        self._sync_filter_buttons()
        self._update_titles()
        self._update_class_counts()
        if self.model.rowCount():
            self.grid_stack.setCurrentWidget(self.view)
            self.view.setCurrentIndex(self.model.index(0))
            self.view.scrollToTop()
        else:
            self.preview.show_nothing()
        self._update_actions()

    def _update_titles(self) -> None:
        name = self.model.class_filter
        n = self.model.rowCount()
        parts = [name or "All images"]
        if self.model.split_filter:
            parts.append(self.model.split_filter)
        if self.model.status_filter:
            parts.append(self.model.status_filter)
        self.grid_title.setText(f"{' · '.join(parts)}  ·  {n:,} image{'s' if n != 1 else ''}" if self.root else "")
        self.grid_status.setText(f"Listing files… {self.model.file_count():,} found" if self.listing else "")

    # ------------------------------------------------------------------ selection
    def selected_paths(self) -> list[str]:
        return sorted(i.data(PathRole) for i in self.view.selectionModel().selectedIndexes())

    def select_paths(self, paths: list[str]) -> None:
        rows = [r for r in (self.model.row_of(p) for p in paths) if r is not None]
        sel = QItemSelection()
        for r in rows:
            sel.select(self.model.index(r), self.model.index(r))
        sm = self.view.selectionModel()
        if rows:
            sm.setCurrentIndex(self.model.index(rows[0]), QItemSelectionModel.SelectionFlag.NoUpdate)
        sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _remember_view(self) -> dict:
        cur = self.view.currentIndex()
        return {"selected": self.selected_paths(), "current": cur.data(PathRole) if cur.isValid() else None,
                "row": cur.row(), "scroll": self.view.verticalScrollBar().value()}

    def _restore_view(self, before: dict, renames: dict[str, str]) -> None:
        """Selection follows renamed files that are still shown; when the shown ones left the
        view (moved to another class, deleted), the image now in their place is selected, so
        labelling can go on image by image."""
        keep = [renames.get(p, p) for p in before["selected"]]
        keep = [p for p in keep if self.model.row_of(p) is not None]
        current = renames.get(before["current"], before["current"])
        sm = self.view.selectionModel()
        sb = self.view.verticalScrollBar()
        if keep:  # still shown (perhaps elsewhere in the grid): keep them selected, stay put
            self.select_paths(keep)
            row = self.model.row_of(current)
            if row is not None:
                sm.setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
            sb.setValue(before["scroll"])
        elif self.model.rowCount():
            row = min(max(before["row"], 0), self.model.rowCount() - 1)
            self.view.setCurrentIndex(self.model.index(row))
            sb.setValue(before["scroll"])
            self.view.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.EnsureVisible)
        else:
            self.preview.show_nothing()

    def _update_actions(self) -> None:
        edit = self.can_edit and not self.busy
        has_sel = bool(self.view.selectionModel().hasSelection())
        cls = self._current_class()
        p = self.project
        undo = p.undo_stack[-1].label if p is not None and p.undo_stack else None
        redo = p.redo_stack[-1].label if p is not None and p.redo_stack else None
        self.act_undo.setText(f"&Undo {undo}" if undo else "&Undo")
        self.act_redo.setText(f"&Redo {redo}" if redo else "&Redo")
        self.act_undo.setEnabled(edit and undo is not None)
        self.act_redo.setEnabled(edit and redo is not None)
        self.act_paste.setEnabled(edit)
        self.act_delete.setEnabled(edit and has_sel)
        self.move_menu.setEnabled(edit and has_sel)
        self.act_new_class.setEnabled(edit)
        self.act_rename_class.setEnabled(edit and cls is not None)
        self.act_merge_classes.setEnabled(edit and len(self.selected_classes()) >= 2)
        self.act_delete_class.setEnabled(edit and cls is not None)
        self.act_capture.setEnabled(edit and self.capture_dialog is None)
        self.act_splits.setEnabled(self.project is not None)
        has_images = self.root is not None and self.model.file_count() > 0
        self.act_find_duplicates.setEnabled(has_images and not self.listing)
        self.act_find_similar.setEnabled(has_images and not self.listing and self.view.currentIndex().isValid())

    def _on_view_context_menu(self, pos) -> None:
        idx = self.view.indexAt(pos)
        if idx.isValid() and not self.view.selectionModel().isSelected(idx):
            self.view.setCurrentIndex(idx)
        self._update_actions()
        menu = self.grid_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def grid_menu(self) -> QMenu:
        """The grid's context menu, for the selected images."""
        menu = QMenu(self)
        menu.addMenu(self.move_menu)
        menu.addAction(self.act_delete)
        menu.addSeparator()
        menu.addAction(self.act_find_similar)
        menu.addSeparator()
        menu.addAction(self.act_paste)
        return menu

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
        """The running change has ended; True (and ``project`` closed) when the browser was
        detached from it or shut while it ran, so its result is dropped."""
        self._action = None
        if project is not self.project or self._shut:
            project.close()  # detached while it ran
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
            op, moves = fn(project, state)
            return (op, moves, read_back(project, root), project.classes(), project.test_folder,
                    project.split_settings())

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
        op, moves, rows, classes, test_folder, split_settings = result
        splits_changed = (test_folder, split_settings) != (self.test_folder, self.split_settings)
        self.test_folder, self.split_settings = test_folder, split_settings
        renames = {s: d for s, d in moves if s}
        self._set_classes(classes, select)
        entries, counts = rows
        self.model.apply_rows(entries, renames, counts)
        if select == "keep":
            self._restore_view(before, renames)
        self._after_change()
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
            self.import_label.setText(f"Importing into {cls}: {done:,} of {total:,}")

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

    # ------------------------------------------------------------------ preview
    def _on_view_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if not current.isValid():
            self.preview.show_nothing()
            self._preview_path = None
            if self.augment is not None:
                self.augment.set_image(None)
            return
        path = current.data(PathRole)
        if path == self._preview_path:
            return
        self._preview_path = path
        self.preview.show_loading(path, current.data(ClassRole))
        self.loader.request_preview(path, 1024)
        if self.augment is not None and self.side_tabs.currentWidget() is self._augment_page:
            self.augment.set_image(path)

    # ------------------------------------------------------------------ statuses
    @Slot(str, str)
    def _on_loader_thumbnail_failed(self, path: str, reason: str) -> None:
        self._note_status(path, "bad", reason)

    @Slot(str, QImage)
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

    @Slot(str, QImage, object)
    def _on_loader_preview_ready(self, path: str, image: QImage, info: dict) -> None:
        if path == self._preview_path:
            self.preview.show_image(image, info)

    @Slot(str, str)
    def _on_loader_preview_failed(self, path: str, reason: str) -> None:
        if path == self._preview_path:
            self.preview.show_broken(reason)
        self._note_status(path, "bad", reason)

    # ------------------------------------------------------------------ side tabs
    def show_side_tab(self, name: str) -> QWidget:
        """Show the "preview", "augment" or "similar" tab; its panel (built if need be)."""
        self.side_tabs.setCurrentIndex(self.SIDE_TABS.index(name))
        return {"preview": self.preview, "augment": self.augment, "similar": self.similar}[name]

    def side_tab(self) -> str:
        return self.SIDE_TABS[self.side_tabs.currentIndex()]

    def augment_panel(self):
        """The Augmentation tab's panel (built on first use: it brings torch in)."""
        if self.augment is None:
            from .augment_preview import QtAugmentPreview  # noqa: PLC0415

            self.augment = QtAugmentPreview(count=12, columns=4, tile=92, stacked=True)
            if self._augment_config:
                try:
                    self.augment.set_config(self._augment_config)
                except (TypeError, ValueError, KeyError):
                    pass  # remembered by an older version: the defaults it is
            self.augment.config_changed.connect(self._on_augment_config_changed)
            self._augment_page.layout().addWidget(self.augment)
        return self.augment

    def similar_panel(self):
        """The Similar tab's panel (built on first use)."""
        if self.similar is None:
            from .similar import QtSimilarPanel  # noqa: PLC0415

            self.similar = QtSimilarPanel(self._cache_dir, thumb_size=112)
            self.similar.heading.hide()  # the tab says it
            self.similar.delete_requested.connect(self._on_similar_delete_requested)
            self.similar.image_clicked.connect(self._on_similar_image_clicked)
            self._similar_page.layout().addWidget(self.similar)
        return self.similar

    def set_augment_config(self, config: dict | None) -> None:
        """The augmentation strengths to show (remembered ones, from the settings)."""
        self._augment_config = dict(config) if config else None
        if self.augment is not None and config:
            self.augment.set_config(config)

    def augment_config(self) -> dict | None:
        return self.augment.config_dict() if self.augment is not None else self._augment_config

    def _on_augment_config_changed(self, config: dict) -> None:
        self._augment_config = dict(config)
        self.augment_config_changed.emit(dict(config))

    def _on_side_tabs_current_changed(self, index: int) -> None:
        page = self.side_tabs.widget(index)
        if page is self._augment_page:
            panel = self.augment_panel()
            if panel.path != self._preview_path:
                panel.set_image(self._preview_path)
        elif page is self._similar_page:
            self.similar_panel()
        self._fit_side_pane(index)
        self.side_tab_changed.emit(self.SIDE_TABS[index])

    def _fit_side_pane(self, index: int) -> None:
        """Give the side pane the width this tab had last time, or at least what its panel
        needs; the grid gives way (down to a column of thumbnails or two)."""
        sizes = self.splitter.sizes()
        if len(sizes) != 3 or sum(sizes) <= 0:
            return
        self._side_widths[self._side_index] = sizes[2]
        self._side_index = index
        want = self._side_widths.get(index)
        if want is None:
            panel = {1: self.augment, 2: self.similar}.get(index) or self.side_tabs.widget(index)
            want = max(sizes[2], panel.sizeHint().width() + 4)
        # the grid keeps its filter bar whole and two columns of thumbnails
        need = max(self._title_row.sizeHint().width(), (THUMB_SIZE + 22) * 2 + 30)
        want = min(want, sizes[2] + max(sizes[1] - need, 0))
        if want != sizes[2]:
            self.splitter.setSizes([sizes[0], sizes[1] - (want - sizes[2]), want])

    def _reset_tools(self) -> None:
        """Another project: the panels forget the old one's images."""
        if self.augment is not None:
            self.augment.shutdown()
            self.augment.set_image(None)
        if self.similar is not None:
            self.similar.clear()

    # ------------------------------------------------------------------ similar
    def find_duplicates(self) -> bool:
        """Scan every image of the project for exact and near duplicates (Similar tab)."""
        paths = self.model.all_paths()
        if not paths:
            return self._refuse("Open a project with images first.")
        panel = self.show_side_tab("similar")
        panel.scan(paths)
        return True

    def find_similar_to(self, path: str | None = None) -> bool:
        """Show the images most like ``path`` (default: the current one) in the Similar tab;
        the first search indexes the project (on a worker)."""
        if path is None:
            cur = self.view.currentIndex()
            path = cur.data(PathRole) if cur.isValid() else None
        if not path:
            return self._refuse("Select an image first.")
        panel = self.show_side_tab("similar")
        if panel.index is None and not panel.busy:
            panel.set_paths(self.model.all_paths())
        panel.find_similar(path)
        return True

    def reveal_path(self, path: str) -> bool:
        """Select ``path`` in the grid, showing its class first if the filters hide it."""
        entry = self.model.entry(path)
        if entry is None:
            return self._refuse(f"{os.path.basename(path)} is not in the project any more.")
        if self.model.row_of(path) is None:
            cls = entry[0] if entry[0] in self.classes else None
            self._show_class_quietly(cls, lambda: self.model.set_filters(cls, None, None))
        self.select_paths([path])
        row = self.model.row_of(path)
        if row is not None:
            self.view.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _on_similar_image_clicked(self, path: str) -> None:
        self.reveal_path(path)

    def _on_similar_delete_requested(self, paths: list) -> None:
        self.delete_paths(list(paths))

    def _forget_gone_in_similar(self) -> None:
        """Deleted or moved files leave the Similar tab's pairs and results."""
        if self.similar is None or not self.similar.paths:
            return
        gone = [p for p in self.similar.paths if self.model.entry(p) is None]
        if gone:
            self.similar.forget_paths(gone)

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

    # ------------------------------------------------------------------ state
    def save_state(self) -> bytes:
        return bytes(self.splitter.saveState().data())

    def restore_state(self, state) -> None:
        if state:
            self.splitter.restoreState(state)
