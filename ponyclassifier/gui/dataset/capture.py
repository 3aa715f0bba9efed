"""Webcam capture into a class, Teachable-Machine style: live preview, single shots and
bursts, saved into the project through :meth:`Project.import_files`.

Frames come from a camera (``QCamera`` in a ``QMediaCaptureSession``) or from a video file
standing in for one (``QMediaPlayer``, looped, for demos and tests); both feed one
``QVideoSink``. The sink's slot only keeps the newest frame; a ~30 Hz timer converts that
one to a QImage and shows it, so a slow machine drops frames instead of lagging behind.
Shots are written as PNG into a private temp folder and then imported, so they are
journaled, undoable and never overwrite a file; a burst becomes one import (one undo).
The PNG encoding, the writes and the import run on a worker (:func:`.workers.run_job`),
one save at a time; shots taken meanwhile wait their turn. While a save runs, closing
the dialog waits for it (a fraction of a second), so the project is never left half-done.
"""

from __future__ import annotations

import html
import os
import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPixmap,
    QShortcut,
)
from PySide6.QtMultimedia import QVideoFrame
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.project import class_name_problem
from .. import workers
from ..projects import import_images
from ..widgets.format import plain_text
from ..widgets.video_source import (
    NO_CAMERA,
    VideoSource,
    choose_video_file,
    fill_source_combo,
    remember_video_file,
)

__all__ = ["QtCaptureDialog"]

PREVIEW_FPS = 30
STRIP_THUMB = 72


class QtCaptureDialog(QDialog):
    """Take pictures for a class of ``project`` (a :class:`~ponyclassifier.core.project.Project`).

    ``target_class``: the class picked at start (any name: a new one is created on the first
    shot). ``video_file``: a video to use instead of a camera (selected at start).
    ``images_captured(class, [paths])`` fires after each import with the new files' paths.
    """

    images_captured = Signal(str, list)
    capture_failed = Signal(str)
    frame_shown = Signal()  # a new preview frame was drawn

    def __init__(self, project, *, target_class: str | None = None, video_file: str | os.PathLike | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Capture images")
        self.project = project
        self._save_job: workers.Job | None = None
        self._save_queue: list[tuple[str, list[tuple[QImage, str]]]] = []  # (class, [(image, name)])
        self._close_result: int | None = None  # done() asked for while a save ran
        self._latest: QVideoFrame | None = None
        self._dirty = False
        self._last_image: QImage | None = None
        self.frames_received = 0
        self.saved: list[str] = []  # every file this dialog added to the project
        self._shot_no = 0
        self._burst_left = 0
        self._burst_files: list[tuple[QImage, str]] = []
        self._countdown = 0
        self._closed = False

        # media plumbing: one sink, fed by a camera session or a player
        self.video = VideoSource(self)
        self.sink = self.video.sink
        self.sink.videoFrameChanged.connect(self._on_sink_video_frame_changed)
        self.video.starting.connect(self._show_message)
        self.video.failed.connect(self._on_video_failed)
        self.video.devices.videoInputsChanged.connect(self._on_devices_video_inputs_changed)
        self._video_files: list[str] = [os.fspath(video_file)] if video_file else []

        # preview
        self.source_combo = QComboBox()
        self.source_combo.setMinimumWidth(260)
        self.source_combo.activated.connect(self._on_source_combo_activated)
        self.mirror = QCheckBox("Mirror")
        self.mirror.setChecked(video_file is None)  # a selfie view feels natural; a file does not
        self.mirror.setToolTip("Flip left–right, in the preview and in the saved pictures.")
        self.mirror.toggled.connect(lambda: self._set_dirty())
        self.preview = QLabel()
        self.preview.setMinimumSize(480, 360)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setObjectName("capturePreview")
        self.preview.setStyleSheet("QLabel#capturePreview { background: #202124; color: #e8eaed; "
                                   "border-radius: 6px; padding: 12px; }")
        top = QHBoxLayout()
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source_combo, 1)
        top.addWidget(self.mirror)
        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.preview, 1)

        # controls
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)
        self.class_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.class_combo.addItems(project.classes())
        self.class_combo.lineEdit().setPlaceholderText("class name")
        if target_class:
            i = self.class_combo.findText(target_class)
            if i >= 0:
                self.class_combo.setCurrentIndex(i)
            else:
                self.class_combo.setEditText(target_class)
        self.class_combo.setToolTip("Pictures go into this class. Type a new name to start a new class.")
        self.shot_button = QPushButton("Take photo")
        self.shot_button.setToolTip("Save the current frame (Space)")
        self.shot_button.clicked.connect(self.take_photo)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, activated=self.shot_button.click)
        self.burst_count = QSpinBox()
        self.burst_count.setRange(2, 500)
        self.burst_count.setValue(10)
        self.burst_interval = QSpinBox()
        self.burst_interval.setRange(30, 10000)
        self.burst_interval.setSingleStep(50)
        self.burst_interval.setValue(250)
        self.burst_interval.setSuffix(" ms")
        self.countdown_spin = QSpinBox()
        self.countdown_spin.setRange(0, 10)
        self.countdown_spin.setValue(3)
        self.countdown_spin.setSuffix(" s")
        self.countdown_spin.setToolTip("Time to get ready before the first picture of a burst.")
        self.burst_button = QPushButton("Start burst")
        self.burst_button.clicked.connect(self._on_burst_button_clicked)
        self.burst_progress = QProgressBar()
        self.burst_progress.setFormat("%v / %m")
        self.burst_progress.hide()
        burst_box = QGroupBox("Burst")
        bf = QFormLayout(burst_box)
        bf.addRow("Pictures", self.burst_count)
        bf.addRow("Every", self.burst_interval)
        bf.addRow("Countdown", self.countdown_spin)
        bf.addRow(self.burst_button)
        bf.addRow(self.burst_progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setMinimumWidth(220)
        right = QVBoxLayout()
        right.addWidget(QLabel("<b>Into class</b>"))
        right.addWidget(self.class_combo)
        right.addSpacing(8)
        right.addWidget(self.shot_button)
        right.addSpacing(8)
        right.addWidget(burst_box)
        right.addWidget(self.status)
        right.addStretch(1)
        right_w = QWidget()
        right_w.setLayout(right)
        right_w.setFixedWidth(260)

        # captured shots
        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setIconSize(QSize(STRIP_THUMB, STRIP_THUMB))
        self.strip.setFixedHeight(STRIP_THUMB + 24)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip_title = QLabel("Captured: none yet")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addWidget(right_w)
        lay = QVBoxLayout(self)
        lay.addLayout(body, 1)
        lay.addWidget(self.strip_title)
        lay.addWidget(self.strip)
        lay.addWidget(buttons)

        self._render_timer = QTimer(self, interval=1000 // PREVIEW_FPS)
        self._render_timer.timeout.connect(self._render)
        self._burst_timer = QTimer(self, singleShot=True)
        self._burst_timer.timeout.connect(self._burst_tick)
        self._set_can_capture(False)
        self._fill_sources()
        self._render_timer.start()
        self._start_selected()

    # ------------------------------------------------------------------ API
    @property
    def target_class(self) -> str:
        return self.class_combo.currentText().strip()

    @property
    def has_frame(self) -> bool:
        return self._latest is not None

    @property
    def bursting(self) -> bool:
        return self._burst_left > 0 or self._countdown > 0

    def use_video_file(self, path: str | os.PathLike) -> None:
        """Use a recording instead of a camera (added to the source list and selected)."""
        path = remember_video_file(self._video_files, path)
        self._fill_sources(select="file:" + path)
        self._start_selected()

    @property
    def saving(self) -> bool:
        """Pictures are being written into the project (on a worker)."""
        return self._save_job is not None or bool(self._save_queue)

    def take_photo(self) -> bool:
        """Save the frame on screen into the target class, on a worker; ``images_captured``
        follows with the new file's path. False (and ``capture_failed``) when no shot."""
        shot = self._grab()
        if shot is None:
            return False
        self._save(self.target_class, [shot])
        return True

    def start_burst(self, count: int | None = None, interval_ms: int | None = None,
                    countdown_s: int | None = None) -> None:
        if count is not None:
            self.burst_count.setValue(count)
        if interval_ms is not None:
            self.burst_interval.setValue(interval_ms)
        if countdown_s is not None:
            self.countdown_spin.setValue(countdown_s)
        if not self.has_frame or self.bursting or not self._check_class():
            return
        self._burst_files = []
        self._burst_left = self.burst_count.value()
        self._countdown = self.countdown_spin.value()
        self.burst_progress.setRange(0, self._burst_left)
        self.burst_progress.setValue(0)
        self.burst_progress.show()
        self.burst_button.setText("Stop burst")
        self.shot_button.setEnabled(False)
        self.class_combo.setEnabled(False)
        self._burst_timer.start(1000 if self._countdown else 0)
        self._set_dirty()

    def stop_burst(self) -> None:
        """Stop early; the pictures already taken are kept."""
        if self.bursting:
            self._burst_left = 0
            self._countdown = 0
            self._finish_burst()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._burst_timer.stop()
        self._render_timer.stop()
        self._stop_sources()

    def done(self, r: int) -> None:
        if self.bursting:
            self.stop_burst()
        if self.saving:  # finish writing first: the project must not be closed under the worker
            self._close_result = r
            self._set_can_capture(False)
            self.status.setText("Saving the last pictures…")
            return
        self.shutdown()
        super().done(r)

    # ---------------------------------------------------------------- sources
    def _fill_sources(self, select: str | None = None) -> None:
        # a video given on purpose wins over the default camera
        fill_source_combo(self.source_combo, self._video_files, select, prefer_video=True)

    def _on_devices_video_inputs_changed(self) -> None:
        before = self.source_combo.currentData()
        self._fill_sources()
        if self.source_combo.currentData() != before or (before or "").startswith("camera:") and self.video.camera is None:
            self._start_selected()

    def _on_source_combo_activated(self, index: int) -> None:
        if self.source_combo.itemData(index) == "choose":
            path = choose_video_file(self)
            if path:
                self.use_video_file(path)
            else:
                self._fill_sources()
            return
        self._start_selected()

    def _stop_sources(self) -> None:
        self.video.stop()

    def _start_selected(self) -> None:
        self._stop_sources()
        self._latest = None
        self._last_image = None
        self._set_can_capture(False)
        if not self.video.start(self.source_combo.currentData()):
            self._show_message(NO_CAMERA)

    def _on_video_failed(self, message_html: str) -> None:
        self._show_message(message_html)
        self.capture_failed.emit(plain_text(message_html, newline=" "))

    # ---------------------------------------------------------------- frames
    def _on_sink_video_frame_changed(self, frame: QVideoFrame) -> None:
        # Only remember it: converting every frame here is how previews fall behind.
        if self._closed or not frame.isValid():
            return
        self._latest = QVideoFrame(frame)
        self._dirty = True
        self.frames_received += 1

    def _set_dirty(self) -> None:
        self._dirty = True

    def _current_image(self) -> QImage | None:
        """The newest frame as an upright RGB QImage, mirrored if the preview is."""
        if self._latest is None:
            return None
        img = self._latest.toImage()
        if img.isNull():
            return None
        img = img.convertToFormat(QImage.Format.Format_RGB888)
        if self.mirror.isChecked():
            img = img.flipped(Qt.Orientation.Horizontal)
        return img

    def _render(self) -> None:
        if not self._dirty or self._latest is None:
            return
        self._dirty = False
        img = self._current_image()
        if img is None:
            return
        if self._last_image is None:
            self._set_can_capture(True)
            self.preview.setText("")
        self._last_image = img
        pm = QPixmap.fromImage(img).scaled(self.preview.contentsRect().size(), Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)
        if self._countdown > 0:
            p = QPainter(pm)
            p.fillRect(pm.rect(), QColor(0, 0, 0, 90))
            f = QFont(self.font())
            f.setPixelSize(max(24, pm.height() // 3))
            f.setBold(True)
            p.setFont(f)
            p.setPen(QColor("white"))
            p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, str(self._countdown))
            p.end()
        self.preview.setPixmap(pm)
        self.frame_shown.emit()

    def _show_message(self, html: str) -> None:
        self.preview.setPixmap(QPixmap())
        self.preview.setText(html)

    def _set_can_capture(self, on: bool) -> None:
        self.shot_button.setEnabled(on and not self.bursting)
        self.burst_button.setEnabled(on or self.bursting)

    # ---------------------------------------------------------------- saving
    def _check_class(self) -> bool:
        name = self.target_class
        if not name:
            self._error("Pick or type a class name first.")
            return False
        problem = class_name_problem(name)  # before any picture is taken, not after a whole burst
        if problem is not None:
            self._error(f"{name!r} is not a usable class name ({problem})")
            return False
        return True

    def _grab(self) -> tuple[QImage, str] | None:
        """The frame on screen and its file name (the PNG is written later, on a worker)."""
        if not self._check_class():
            return None
        img = self._current_image()
        if img is None:
            self._error("No picture from the camera yet.")
            return None
        self._shot_no += 1
        name = f"{self.target_class}-{time.strftime('%Y%m%d-%H%M%S')}-{self._shot_no:03d}.png"
        self._add_thumb(img, name)
        return img, name

    def _save(self, cls: str, shots: list[tuple[QImage, str]]) -> None:
        self._save_queue.append((cls, shots))
        self._start_save()

    def _start_save(self) -> None:
        if self._save_job is not None or not self._save_queue:
            return
        cls, shots = self._save_queue.pop(0)
        project = self.project

        def work(state):
            # the import picks new names for collisions in the class folder (never overwriting)
            return import_images(project, cls, shots)

        self._save_job = workers.run_job(
            work,
            on_finished=lambda result: self._on_save_finished(cls, result),
            on_failed=lambda message, tb: self._on_save_failed(cls, message))

    def _on_save_failed(self, cls: str, message: str) -> None:
        self._save_job = None
        # read-only project, bad class name, full disk: say so, keep running
        self._error(f"Could not add the pictures to {cls}: {message}")
        self._after_save()

    def _on_save_finished(self, cls: str, result) -> None:
        self._save_job = None
        op, failed = result
        if failed:
            self._error(f"Could not write {len(failed)} picture(s) (is the disk full?)")
        if op is not None:
            self._imported(cls, op)
        self._after_save()

    def _after_save(self) -> None:
        if self._save_queue:
            self._start_save()
        elif self._close_result is not None:
            r, self._close_result = self._close_result, None
            self.done(r)

    def _imported(self, cls: str, op) -> list[str]:
        added = [r.target for r in op.results if r.target]
        bad = [r for r in op.results if r.error]
        self.saved += added
        if cls not in [self.class_combo.itemText(i) for i in range(self.class_combo.count())]:
            self.class_combo.addItem(cls)
            self.class_combo.setCurrentIndex(self.class_combo.count() - 1)
        self._retarget_thumbs(op.results)
        msg = f"Saved {len(added)} picture(s) into <b>{html.escape(cls)}</b>."
        if bad:
            msg += f" {len(bad)} failed: {html.escape(bad[0].error)}"
        self.status.setText(msg)
        self.strip_title.setText(f"Captured: {len(self.saved)} picture(s) this session")
        if added:
            self.images_captured.emit(cls, added)
        return added

    def _error(self, text: str) -> None:
        self.status.setText(f"<span style='color:#b02a2a'>{html.escape(text)}</span>")
        self.capture_failed.emit(text)

    def _add_thumb(self, img: QImage, name: str) -> None:
        pm = QPixmap.fromImage(img.scaled(STRIP_THUMB, STRIP_THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        item = QListWidgetItem(QIcon(pm), "")
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setToolTip(name)
        self.strip.insertItem(0, item)
        while self.strip.count() > 200:  # the strip is a reminder, not an archive
            self.strip.takeItem(self.strip.count() - 1)

    def _retarget_thumbs(self, results) -> None:
        """Point each thumbnail at the file it became in the project (or mark it failed)."""
        by_name = {os.path.basename(r.source): r for r in results}
        for i in range(self.strip.count()):
            item = self.strip.item(i)
            r = by_name.get(item.data(Qt.ItemDataRole.UserRole))
            if r is None:
                continue
            item.setData(Qt.ItemDataRole.UserRole, r.target or "")
            item.setToolTip(r.target or f"not saved: {r.error}")

    # ----------------------------------------------------------------- burst
    def _on_burst_button_clicked(self) -> None:
        if self.bursting:
            self.stop_burst()
        else:
            self.start_burst()

    def _burst_tick(self) -> None:
        if self._countdown > 0:
            self._countdown -= 1
            self.status.setText(f"Get ready… {self._countdown}" if self._countdown else "Go!")
            self._set_dirty()
            self._burst_timer.start(1000 if self._countdown else 0)
            return
        if self._burst_left <= 0:
            return
        tmp = self._grab()
        if tmp is None:  # no frame or bad class: end here with what we have
            self._burst_left = 0
            self._finish_burst()
            return
        self._burst_files.append(tmp)
        self._burst_left -= 1
        self.burst_progress.setValue(len(self._burst_files))
        if self._burst_left > 0:
            self._burst_timer.start(self.burst_interval.value())
        else:
            self._finish_burst()

    def _finish_burst(self) -> None:
        self._burst_timer.stop()
        files, self._burst_files = self._burst_files, []
        self.burst_button.setText("Start burst")
        self.burst_progress.hide()
        self.class_combo.setEnabled(True)
        self._set_can_capture(self.has_frame)
        self._set_dirty()
        if files:
            self._save(self.target_class, files)
