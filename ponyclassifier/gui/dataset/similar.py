"""The look-alikes panel: exact and near-duplicate pairs side by side, and "find similar".

Shows a core :class:`~ponyclassifier.core.similar.FeatureIndex`. A scan (exact hashes,
then CNN features, then pairs) runs as one job on the worker pool with progress and
cancel; thumbnails come from :class:`workers.ThumbnailLoader`. The panel never deletes a
file itself: "Delete" emits ``delete_requested`` and the host, which owns the project,
deletes (undoably, to the trash) and then calls :meth:`QtSimilarPanel.forget_paths`.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QImage, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import workers
from ..widgets.format import human_size

__all__ = ["DuplicatePair", "QtSimilarPanel"]

MAX_PAIRS_SHOWN = 200  # rows are real widgets; more than this is not reviewable anyway


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    kind: str  # "same file", "same pixels" or "near"
    similarity: float

    @property
    def caption(self) -> str:
        if self.kind == "same file":
            return "Identical files"
        if self.kind == "same pixels":
            return "Same pixels, different files"
        return f"{self.similarity * 100:.1f} % similar"


def _scan_job(paths: list[str], threshold: float, batch_size: int):
    """Worker: exact groups, the feature index, and all pairs (exact pairs first)."""

    def run(state: workers.JobState):
        from ...core.similar import FeatureIndex, file_sha256, find_exact_duplicates

        n = len(paths)
        total = 2 * n  # hashing, then features: about the same count of decodes
        groups = find_exact_duplicates(paths, progress=lambda d, t: state.progress(d, total),
                                       should_stop=lambda: state.cancelled)
        state.check()
        pairs: list[DuplicatePair] = []
        same_group: set[frozenset] = set()
        for g in groups:
            first_hash = file_sha256(g[0])
            for other in g[1:]:
                kind = "same file" if file_sha256(other) == first_hash else "same pixels"
                pairs.append(DuplicatePair(g[0], other, kind, 1.0))
            same_group |= {frozenset((a, b)) for a in g for b in g if a != b}
        index = FeatureIndex.build(paths, progress=lambda d, t: state.progress(n + d, total),
                                   should_stop=lambda: state.cancelled, batch_size=batch_size)
        state.check()
        pairs += [DuplicatePair(a, b, "near", s) for a, b, s in index.near_duplicates(threshold)
                  if frozenset((a, b)) not in same_group]
        return index, pairs

    return run


def _near_job(index, threshold: float, exact: list[DuplicatePair]):
    def run(state: workers.JobState):
        skip = {frozenset((p.a, p.b)) for p in exact}
        exact_files = {}
        for p in exact:  # members of one exact group: a near pair between them is no news
            exact_files.setdefault(p.a, {p.a}).add(p.b)
        groups = {m: g for g in exact_files.values() for m in g}
        out = []
        for a, b, s in index.near_duplicates(threshold):
            if frozenset((a, b)) in skip or (a in groups and b in groups[a]):
                continue
            out.append(DuplicatePair(a, b, "near", s))
        return out

    return run


def _similar_job(index, query: str, k: int):
    def run(state: workers.JobState):
        return index.most_similar(query, k)

    return run


class _Thumb(QFrame):
    """A thumbnail with the file's name and size under it; a click emits ``clicked(path)``."""

    clicked = Signal(str)

    def __init__(self, path: str, size: int, caption: str | None = None, parent=None):
        super().__init__(parent)
        self.path = path
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image = QLabel()
        self.image.setFixedSize(QSize(size, size))
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("QLabel { background: rgba(128,128,128,0.12); border-radius: 4px; }")
        self.image.setText("…")
        self.image.setToolTip(path)
        try:
            size_text = human_size(os.stat(path).st_size)
        except OSError:
            size_text = "missing"
        bold = QFont(self.font())
        bold.setBold(True)
        name = html.escape(QFontMetrics(bold).elidedText(os.path.basename(path), Qt.TextElideMode.ElideMiddle, size))
        cls = html.escape(os.path.basename(os.path.dirname(path)))
        self.text = QLabel(f"<b>{name}</b><br><span style='color:gray'>{cls} · {size_text}</span>"
                           + (f"<br>{caption}" if caption else ""))
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setFixedWidth(size)
        self.text.setWordWrap(True)
        self.text.setToolTip(path)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.image)
        lay.addWidget(self.text)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_image(self, img: QImage) -> None:
        pm = QPixmap.fromImage(img)
        box = self.image.size()
        if pm.width() > box.width() or pm.height() > box.height():
            pm = pm.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(pm)

    def set_broken(self, reason: str) -> None:
        self.image.setText("can't read")
        self.image.setToolTip(f"{self.path}: {reason}")

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()  # so the release comes here too
        else:
            super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit(self.path)
        super().mouseReleaseEvent(event)


class _PairRow(QFrame):
    def __init__(self, panel: "QtSimilarPanel", pair: DuplicatePair, size: int):
        super().__init__()
        self.pair = pair
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.thumbs = [_Thumb(pair.a, size), _Thumb(pair.b, size)]
        self.delete_a = QPushButton("Delete left")
        self.delete_b = QPushButton("Delete right")
        self.keep = QPushButton("Keep both")
        for b, tip in ((self.delete_a, pair.a), (self.delete_b, pair.b)):
            b.setToolTip(f"Move {os.path.basename(tip)} to the project's trash (undoable)")
        self.keep.setToolTip("Not a duplicate: hide this pair")
        self.delete_a.clicked.connect(lambda: panel.request_delete([pair.a]))
        self.delete_b.clicked.connect(lambda: panel.request_delete([pair.b]))
        self.keep.clicked.connect(lambda: panel.keep_both(pair))
        caption = QLabel(f"<b>{pair.caption}</b>")
        caption.setObjectName("pairCaption")
        colour = "#b02a2a" if pair.kind != "near" else "#a0662a"
        caption.setStyleSheet(f"QLabel#pairCaption {{ color: {colour}; }}")
        side = QVBoxLayout()
        side.addWidget(caption)
        side.addStretch(1)
        for b in (self.delete_a, self.delete_b, self.keep):
            side.addWidget(b)
        lay = QHBoxLayout(self)
        lay.addWidget(self.thumbs[0])
        lay.addWidget(self.thumbs[1])
        lay.addLayout(side)
        lay.addStretch(1)


class QtSimilarPanel(QWidget):
    """Duplicates and look-alikes of a set of images.

    ``cache_dir``: the thumbnail cache folder (as for the dataset browser); ``thumb_size``:
    pixels per thumbnail. Call :meth:`scan` with the project's image paths, and
    :meth:`find_similar` with a selected image. Signals: ``scan_finished(exact, near)``
    pair counts, ``scan_failed(message)``, ``scan_cancelled()``,
    ``similar_found(query, [(path, similarity), ...])``, ``delete_requested([paths])``
    (wire it to ``Project.delete``, then call :meth:`forget_paths`) and
    ``pair_kept(a, b)``, ``image_clicked(path)`` (a thumbnail was clicked: show that file).
    """

    scan_finished = Signal(int, int)
    scan_failed = Signal(str)
    scan_cancelled = Signal()
    similar_found = Signal(str, list)
    delete_requested = Signal(list)
    pair_kept = Signal(str, str)
    image_clicked = Signal(str)

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, thumb_size: int = 150,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.loader = workers.ThumbnailLoader(size=max(thumb_size, 128), cache_dir=cache_dir, parent=self)
        self.loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        self.loader.thumbnail_failed.connect(self._on_loader_thumbnail_failed)
        self._thumbs: dict[str, list[_Thumb]] = {}
        self._images: dict[str, QImage] = {}  # thumbnails already decoded, by path
        self.paths: list[str] = []
        self.index = None  # FeatureIndex once a scan finished
        self.exact_pairs: list[DuplicatePair] = []
        self.near_pairs: list[DuplicatePair] = []
        self.kept: set[frozenset] = set()
        self._lane = workers.Lane()  # the scan (or threshold) job: a replaced or cancelled one never calls back
        self._similar_lane = workers.Lane()  # the "find similar" query: the newest one wins
        self._pending_similar: tuple[str, int] | None = None
        self._query: str | None = None

        self.heading = heading = QLabel("Duplicates and look-alikes")
        heading.setObjectName("paneHeading")
        self.scan_button = QPushButton("Find duplicates")
        self.scan_button.clicked.connect(lambda: self.scan(self.paths))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.80, 1.00)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setValue(0.95)
        self.threshold.setKeyboardTracking(False)
        self.threshold.setToolTip("How alike two pictures must be (cosine similarity of their pretrained "
                                  "network features) to be listed as near duplicates.")
        self.threshold.valueChanged.connect(self._on_threshold_changed)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 50)
        self.k_spin.setValue(8)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(heading)
        bar.addStretch(1)
        bar.addWidget(QLabel("Near-duplicate threshold"))
        bar.addWidget(self.threshold)
        bar.addWidget(self.progress)
        bar.addWidget(self.scan_button)
        bar.addWidget(self.cancel_button)

        # "find similar" strip
        self.similar_title = QLabel("Find similar: pick an image to see the most similar ones in the project.")
        self.similar_title.setWordWrap(True)
        self.similar_row = QHBoxLayout()
        self.similar_row.setSpacing(8)
        self.similar_row.addStretch(1)
        similar_w = QWidget()
        similar_w.setLayout(self.similar_row)
        self.similar_scroll = QScrollArea()
        self.similar_scroll.setWidget(similar_w)
        self.similar_scroll.setWidgetResizable(True)
        self.similar_scroll.setFixedHeight(thumb_size + 90)
        self.similar_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        sim_bar = QHBoxLayout()
        sim_bar.addWidget(self.similar_title, 1)
        sim_bar.addWidget(QLabel("Show"))
        sim_bar.addWidget(self.k_spin)

        # pairs
        self.pairs_title = QLabel("")
        self.pairs_title.setWordWrap(True)
        self.pairs_box = QVBoxLayout()
        self.pairs_box.setSpacing(6)
        self.pairs_box.addStretch(1)
        pairs_w = QWidget()
        pairs_w.setLayout(self.pairs_box)
        self.pairs_scroll = QScrollArea()
        self.pairs_scroll.setWidget(pairs_w)
        self.pairs_scroll.setWidgetResizable(True)
        self.rows: list[_PairRow] = []

        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.status)
        lay.addLayout(sim_bar)
        lay.addWidget(self.similar_scroll)
        lay.addWidget(self.pairs_title)
        lay.addWidget(self.pairs_scroll, 1)
        self._show_pairs()

    # ------------------------------------------------------------------ API
    def set_paths(self, paths: Sequence[str | os.PathLike]) -> None:
        """The images to search (a project's files); forgets an older index."""
        self.paths = [os.fspath(p) for p in paths]
        self.index = None

    def scan(self, paths: Sequence[str | os.PathLike] | None = None, batch_size: int = 32) -> None:
        """Hash every image, compute its features and list the pairs (on a worker)."""
        if paths is not None:
            self.set_paths(paths)
        self._lane.cancel()
        self.exact_pairs, self.near_pairs = [], []
        self._show_pairs()
        self._busy(True, f"Looking at {len(self.paths)} images…")
        self._lane.submit(_scan_job(list(self.paths), self.threshold.value(), batch_size),
                          on_finished=self._on_scan_finished, on_failed=self._on_scan_failed,
                          on_progress=self._on_scan_progress)

    def cancel(self) -> None:
        """Stop the scan (the Cancel button): it never calls back; the panel says so now."""
        if self._lane.busy:
            self._lane.cancel()
            self._on_scan_cancelled()

    def clear(self) -> None:
        """Forget everything (another project was opened): no paths, index, pairs or results."""
        self._cancel_job()
        self._busy(False, "")
        self._pending_similar = None
        self._query = None
        self.paths, self.index = [], None
        self.exact_pairs, self.near_pairs = [], []
        self.kept.clear()
        self._show_pairs()
        self._clear_similar()
        self.similar_title.setText("Find similar: pick an image to see the most similar ones in the project.")

    @property
    def busy(self) -> bool:
        return self._lane.busy

    def find_similar(self, path: str | os.PathLike, k: int | None = None) -> None:
        """Show the ``k`` images most like ``path`` (scanning first if there is no index)."""
        path = os.fspath(path)
        k = int(k or self.k_spin.value())
        self._query = path
        self._clear_similar()
        self.similar_title.setText(f"Most similar to <b>{os.path.basename(path)}</b>: searching…")
        if self.index is None:
            self._pending_similar = (path, k)
            if not self.busy:
                self.scan()
            return
        self._run_similar(path, k)

    def keep_both(self, pair: DuplicatePair) -> None:
        self.kept.add(frozenset((pair.a, pair.b)))
        self._show_pairs()
        self.pair_kept.emit(pair.a, pair.b)

    def request_delete(self, paths: list[str]) -> None:
        self.delete_requested.emit(list(paths))

    def forget_paths(self, paths: Sequence[str | os.PathLike]) -> None:
        """Drop deleted files from the pairs and results (the host calls this after deleting)."""
        gone = {os.fspath(p) for p in paths}
        self.paths = [p for p in self.paths if p not in gone]
        self.exact_pairs = [p for p in self.exact_pairs if p.a not in gone and p.b not in gone]
        self.near_pairs = [p for p in self.near_pairs if p.a not in gone and p.b not in gone]
        if self.index is not None and gone & set(self.index.paths):
            import torch

            keep = [i for i, p in enumerate(self.index.paths) if p not in gone]
            self.index = type(self.index)([self.index.paths[i] for i in keep],
                                          self.index.features[torch.tensor(keep, dtype=torch.long)]
                                          if keep else self.index.features[:0],
                                          self.index.skipped, self.index.complete, self.index.weights_path)
        self._show_pairs()
        if self._query in gone:
            self._clear_similar()
            self.similar_title.setText("Find similar: pick an image to see the most similar ones in the project.")

    def visible_pairs(self) -> list[DuplicatePair]:
        return [r.pair for r in self.rows]

    def shutdown(self) -> None:
        self._cancel_job()
        self.loader.close()

    # -------------------------------------------------------------- internals
    def _cancel_job(self) -> None:
        self._lane.cancel()
        self._similar_lane.cancel()

    def _busy(self, on: bool, text: str = "") -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.scan_button.setEnabled(not on)
        if on:
            self.progress.setRange(0, 0)
        self.status.setText(text)

    def _on_scan_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_scan_finished(self, result) -> None:
        self.index, pairs = result
        self.exact_pairs = [p for p in pairs if p.kind != "near"]
        self.near_pairs = [p for p in pairs if p.kind == "near"]
        skipped = self.index.skipped
        note = f" {len(skipped)} file(s) could not be read and were skipped." if skipped else ""
        self._busy(False, f"{len(self.index)} images compared.{note}")
        if skipped:
            self.status.setToolTip("\n".join(f"{os.path.basename(p)}: {r}" for p, r in skipped[:30]))
        self._show_pairs()
        self.scan_finished.emit(len(self.exact_pairs), len(self.near_pairs))
        if self._pending_similar is not None:
            path, k = self._pending_similar
            self._pending_similar = None
            self._run_similar(path, k)

    def _on_scan_failed(self, message: str, tb: str) -> None:
        self._pending_similar = None
        self._busy(False, f"<span style='color:#b02a2a'><b>Could not compare the images:</b> {message}</span>")
        self.scan_failed.emit(message)

    def _on_scan_cancelled(self) -> None:
        self._pending_similar = None
        self._busy(False, "Stopped.")
        self.scan_cancelled.emit()

    def _on_threshold_changed(self, value: float) -> None:
        if self.index is None or self.busy:
            return
        self._lane.submit(_near_job(self.index, value, self.exact_pairs),
                          on_finished=self._on_near_finished, on_failed=self._on_scan_failed)

    def _on_near_finished(self, near: list[DuplicatePair]) -> None:
        self.near_pairs = near
        self._show_pairs()
        self.scan_finished.emit(len(self.exact_pairs), len(self.near_pairs))

    def _run_similar(self, path: str, k: int) -> None:
        index = self.index
        self._similar_lane.submit(_similar_job(index, path, k),
                                  on_finished=lambda res, p=path: self._on_similar_finished(p, res),
                                  on_failed=lambda m, tb, p=path: self._on_similar_failed(p, m))

    def _on_similar_finished(self, query: str, results: list) -> None:
        if query != self._query:
            return
        self._clear_similar()
        self.similar_title.setText(f"Most similar to <b>{os.path.basename(query)}</b>")
        q = _Thumb(query, self.thumb_size, "<i>the query</i>")
        q.image.setStyleSheet("QLabel { background: rgba(128,128,128,0.12); border-radius: 4px;"
                              " border: 2px solid palette(highlight); }")
        self._add_similar(q)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        self.similar_row.insertWidget(self.similar_row.count() - 1, line)
        for path, sim in results:
            self._add_similar(_Thumb(path, self.thumb_size, f"{sim * 100:.1f} % similar"))
        self.similar_found.emit(query, list(results))

    def _on_similar_failed(self, query: str, message: str) -> None:
        if query == self._query:
            self.similar_title.setText(f"<span style='color:#b02a2a'><b>Can't search with "
                                       f"{os.path.basename(query)}:</b> {message}</span>")

    def _add_similar(self, t: _Thumb) -> None:
        self.similar_row.insertWidget(self.similar_row.count() - 1, t)
        self._want_thumb(t)

    def _clear_similar(self) -> None:
        while self.similar_row.count() > 1:
            item = self.similar_row.takeAt(0)
            w = item.widget()
            if w is not None:
                self._drop_thumbs(w)
                w.deleteLater()

    def _show_pairs(self) -> None:
        for r in self.rows:
            self.pairs_box.removeWidget(r)
            self._drop_thumbs(r)
            r.deleteLater()
        self.rows = []
        pairs = [p for p in self.exact_pairs + self.near_pairs if frozenset((p.a, p.b)) not in self.kept]
        for p in pairs[:MAX_PAIRS_SHOWN]:
            row = _PairRow(self, p, self.thumb_size)
            self.pairs_box.insertWidget(self.pairs_box.count() - 1, row)
            self.rows.append(row)
            for t in row.thumbs:
                self._want_thumb(t)
        n_exact = sum(1 for p in pairs if p.kind != "near")
        if self.index is None and not pairs:
            self.pairs_title.setText("")
        elif not pairs:
            self.pairs_title.setText("<b>No duplicates found.</b>")
        else:
            more = f" (showing the first {MAX_PAIRS_SHOWN})" if len(pairs) > MAX_PAIRS_SHOWN else ""
            self.pairs_title.setText(f"<b>{n_exact}</b> exact and <b>{len(pairs) - n_exact}</b> near-duplicate "
                                     f"pair(s){more}. Duplicates across training and test inflate the test score.")

    def _want_thumb(self, t: _Thumb) -> None:
        t.clicked.connect(self.image_clicked)
        if t.path in self._images:
            t.set_image(self._images[t.path])
            return
        self._thumbs.setdefault(t.path, []).append(t)
        self.loader.request_thumbnail(t.path)

    def _drop_thumbs(self, w: QWidget) -> None:
        for t in ([w] if isinstance(w, _Thumb) else []) + w.findChildren(_Thumb):
            lst = self._thumbs.get(t.path)
            if lst and t in lst:
                lst.remove(t)
                if not lst:
                    del self._thumbs[t.path]

    def _on_loader_thumbnail_ready(self, path: str, image: QImage) -> None:
        if len(self._images) > 2000:
            self._images.clear()
        self._images[path] = image
        for t in self._thumbs.pop(path, []):
            t.set_image(image)

    def _on_loader_thumbnail_failed(self, path: str, reason: str) -> None:
        for t in self._thumbs.pop(path, []):
            t.set_broken(reason)
