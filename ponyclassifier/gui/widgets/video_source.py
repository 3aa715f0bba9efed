"""Where live frames come from: a camera, or a looped video file standing in for one.

Shared by the capture dialog (:mod:`.qt_capture`) and the live prediction view
(:mod:`.qt_live`). One ``QVideoSink`` is fed either by a ``QCamera`` in a
``QMediaCaptureSession`` or by a looped ``QMediaPlayer``; the widget connects to
``sink.videoFrameChanged`` and to :attr:`VideoSource.failed`, and lists the choices in a
combo box with :func:`fill_source_combo` (item data ``"camera:<id hex>"``,
``"file:<path>"`` or ``"choose"``).
"""

from __future__ import annotations

import html
import os
from typing import Sequence

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QMediaCaptureSession,
    QMediaDevices,
    QMediaPlayer,
    QVideoSink,
)
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

NO_CAMERA = ("<b>No camera found.</b><br><br>Connect a webcam (and allow PonyClassifier to use it), "
             "or choose <i>Video file…</i> above to use a recording instead.")
VIDEO_FILTER = "Videos (*.mp4 *.mov *.avi *.mkv *.webm *.gif);;All files (*)"


def choose_video_file(parent: QWidget | None) -> str | None:
    """Ask for a recording to use as a camera; None when the user cancels."""
    path, _ = QFileDialog.getOpenFileName(parent, "Video to use as a camera", "", VIDEO_FILTER)
    return path or None


def remember_video_file(video_files: list[str], path: str | os.PathLike) -> str:
    """Add ``path`` to the list of video files in use (once); returns it as a string."""
    path = os.fspath(path)
    if path not in video_files:
        video_files.append(path)
    return path


def camera_key(dev: QCameraDevice) -> str:
    return "camera:" + bytes(dev.id().data()).hex()


def fill_source_combo(combo: QComboBox, video_files: Sequence[str], select: str | None = None,
                      prefer_video: bool = False) -> None:
    """The cameras, the video files in use and "Video file…", keeping ``select`` (or the
    current choice) selected. ``prefer_video``: with nothing to keep, the newest video file
    given on purpose wins over the default camera."""
    current = select or combo.currentData()
    if current == "choose":
        current = None
    combo.blockSignals(True)
    combo.clear()
    for dev in QMediaDevices.videoInputs():
        combo.addItem(dev.description(), camera_key(dev))
    for f in video_files:
        combo.addItem(f"Video: {os.path.basename(f)}", "file:" + f)
    combo.addItem("Video file…", "choose")
    i = combo.findData(current) if current else -1
    if i < 0 and prefer_video and video_files:
        i = combo.findData("file:" + video_files[-1])
    combo.setCurrentIndex(max(i, 0))
    combo.blockSignals(False)


class VideoSource(QObject):
    """One camera or video file at a time, into :attr:`sink`."""

    starting = Signal(str)  # an HTML message to show while the source starts
    failed = Signal(str)  # an HTML message for the user: the camera stopped, the video cannot play

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.session = QMediaCaptureSession(self)
        self.session.setVideoSink(self.sink)
        self.camera: QCamera | None = None
        self.player = QMediaPlayer(self)
        self.player.setLoops(QMediaPlayer.Loops.Infinite)
        self.player.errorOccurred.connect(self._on_player_error_occurred)
        self.devices = QMediaDevices(self)  # its videoInputsChanged says when cameras come and go

    def start(self, data: str) -> bool:
        """Start ``"camera:<id hex>"`` or ``"file:<path>"`` (stopping what ran before); False
        when there is no such source. :attr:`starting` comes first, then frames or :attr:`failed`."""
        self.stop()
        kind, _, value = (data or "choose").partition(":")
        if kind == "camera":
            dev = next((d for d in QMediaDevices.videoInputs() if camera_key(d) == data), None)
            if dev is None:
                return False
            self._request_permission()
            self.camera = QCamera(dev, self)
            self.camera.errorOccurred.connect(self._on_camera_error_occurred)
            self.session.setCamera(self.camera)
            self.starting.emit(f"Starting {html.escape(dev.description())}…")
            self.camera.start()
            return True
        if kind == "file":
            self.player.setVideoOutput(self.sink)
            self.player.setSource(QUrl.fromLocalFile(value))
            self.starting.emit(f"Opening {html.escape(os.path.basename(value))}…")
            self.player.play()
            return True
        return False

    def stop(self) -> None:
        if self.camera is not None:
            self.camera.stop()
            self.session.setCamera(None)
            self.camera.deleteLater()
            self.camera = None
        self.player.stop()
        self.player.setVideoOutput(None)

    def _request_permission(self) -> None:
        """macOS and Windows ask the user once; elsewhere this is a no-op."""
        try:
            from PySide6.QtCore import QCameraPermission, QCoreApplication

            app = QCoreApplication.instance()
            perm = QCameraPermission()
            if app.checkPermission(perm) == Qt.PermissionStatus.Undetermined:
                app.requestPermission(perm, self, lambda *a: None)
        except (ImportError, AttributeError, TypeError):
            pass

    def _on_camera_error_occurred(self, error, message: str) -> None:
        self.failed.emit(f"<b>The camera stopped:</b> {html.escape(message or str(error))}")

    def _on_player_error_occurred(self, error, message: str) -> None:
        if error == QMediaPlayer.Error.NoError:
            return
        self.failed.emit(f"<b>Can't play this video:</b> {html.escape(message or str(error))}")
