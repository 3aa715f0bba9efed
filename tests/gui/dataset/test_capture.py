"""Capture into a class: a real video file played by QtMultimedia stands in for the
webcam; shots and bursts land in the project through its journaled import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("PySide6.QtMultimedia", reason="QtMultimedia comes with PySide6-Addons")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtMultimedia import QMediaDevices, QVideoFrame  # noqa: E402

from ponyclassifier.core.project import Project  # noqa: E402
from ponyclassifier.gui.dataset.capture import QtCaptureDialog  # noqa: E402
from tests.conftest import make_shapes_dataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("media_noise")  # tests/gui/conftest.py


def make_video(path: Path, frames: int = 40, size=(160, 120)) -> Path:
    """A short animated GIF of a red square moving across a dark background: a video file
    that QtMultimedia's FFmpeg backend plays like any other."""
    w, h = size
    side = h // 4
    seq = []
    for i in range(frames):
        im = Image.new("RGB", size, (30, 30, 60))
        x = 5 + i * (w - side - 10) // frames
        y = (h - side) // 2
        ImageDraw.Draw(im).rectangle([x, y, x + side, y + side], fill=(250, 60, 40))
        seq.append(im)
    seq[0].save(path, save_all=True, append_images=seq[1:], duration=40, loop=0)
    return path


@pytest.fixture
def project(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    p = Project(root)
    p.sync()
    yield p
    p.close()


def _dialog(qtbot, project, **kw) -> QtCaptureDialog:
    d = QtCaptureDialog(project, **kw)
    qtbot.addWidget(d)
    d.resize(900, 640)
    d.show()
    return d


def test_video_file_as_camera_single_shot_and_burst(qtbot, tmp_path, project):
    video = make_video(tmp_path / "square.gif")
    before = {r["relpath"] for r in project.store.images(cls="square")}
    d = _dialog(qtbot, project, target_class="square", video_file=video)
    assert d.source_combo.currentText() == "Video: square.gif"
    with qtbot.waitSignal(d.frame_shown, timeout=20000):
        pass
    assert d.shot_button.isEnabled() and not d.preview.pixmap().isNull()

    with qtbot.waitSignal(d.images_captured) as blocker:
        d.shot_button.click()
    cls, paths = blocker.args
    assert cls == "square" and len(paths) == 1
    shot = Path(paths[0])
    assert shot.parent == project.root / "square" and shot.suffix == ".png"
    with Image.open(shot) as im:
        assert im.size == (160, 120) and im.mode == "RGB"
        px = np.asarray(im)
    assert (px[..., 0] > 200).sum() > 200  # the red square is in the picture

    frames_before = d.frames_received
    with qtbot.waitSignal(d.images_captured, timeout=20000) as blocker:
        d.start_burst(count=3, interval_ms=120, countdown_s=0)
        assert d.bursting and not d.shot_button.isEnabled()
    burst = [Path(p) for p in blocker.args[1]]
    assert len(burst) == 3 and len(set(burst)) == 3
    assert d.frames_received > frames_before  # the video kept playing between shots
    assert not d.bursting and d.shot_button.isEnabled()
    # the square moves, so a burst is three different pictures
    assert len({Path(p).read_bytes() for p in burst}) == 3

    after = {r["relpath"] for r in project.store.images(cls="square")}
    new = {project.rel(p) for p in [shot, *burst]}
    assert after - before == new
    assert sorted(p.name for p in (project.root / "square").iterdir()) == sorted(
        [Path(r).name for r in after])
    assert d.strip.count() == 4
    assert d.strip.item(0).toolTip() in {str(p) for p in burst}
    # one undo step removes the whole burst
    project.undo()
    assert all(not p.exists() for p in burst) and shot.exists()


def test_pushed_frames_mirror_new_class_and_no_overwrite(qtbot, tmp_path, project):
    d = _dialog(qtbot, project, target_class="hands")
    img = QImage(64, 48, QImage.Format.Format_RGB888)
    img.fill(QColor(0, 0, 255))
    for y in range(48):
        for x in range(16):
            img.setPixelColor(x, y, QColor(255, 0, 0))  # red stripe on the left
    with qtbot.waitSignal(d.frame_shown, timeout=5000):
        d.sink.setVideoFrame(QVideoFrame(img))
    d.mirror.setChecked(False)
    with qtbot.waitSignal(d.images_captured) as blocker:
        assert d.take_photo()
    first = blocker.args[1]
    d.mirror.setChecked(True)
    with qtbot.waitSignal(d.images_captured) as blocker:
        assert d.take_photo()
    second = blocker.args[1]
    assert (project.root / "hands").is_dir() and "hands" in project.classes()
    assert len(first) == len(second) == 1 and first != second  # same second, same name: never overwritten
    a = np.asarray(Image.open(first[0]))
    b = np.asarray(Image.open(second[0]))
    assert tuple(a[10, 2]) == (255, 0, 0) and tuple(b[10, 2]) == (0, 0, 255)
    assert tuple(b[10, 61]) == (255, 0, 0)
    assert {project.rel(p) for p in first + second} <= {r["relpath"] for r in project.store.images(cls="hands")}


def test_bad_class_name_is_reported_and_nothing_saved(qtbot, project):
    d = _dialog(qtbot, project, target_class="a/b")
    img = QImage(32, 32, QImage.Format.Format_RGB888)
    img.fill(Qt.GlobalColor.green)
    with qtbot.waitSignal(d.frame_shown, timeout=5000):
        d.sink.setVideoFrame(QVideoFrame(img))
    with qtbot.waitSignal(d.capture_failed) as blocker:
        assert d.take_photo() is False
    assert "usable class name" in blocker.args[0]
    assert "usable class name" in d.status.text()
    assert not (project.root / "a").exists()


def test_no_camera_says_so(qtbot, project):
    if QMediaDevices.videoInputs():
        pytest.skip("this machine has a camera")
    d = _dialog(qtbot, project)
    assert "No camera found" in d.preview.text()
    assert not d.shot_button.isEnabled() and not d.burst_button.isEnabled()
    assert d.source_combo.currentData() == "choose"


def test_source_errors_are_reported_as_plain_text(qtbot, project):
    d = _dialog(qtbot, project)
    with qtbot.waitSignal(d.capture_failed) as blocker:
        d.video.failed.emit("<b>Can't play this video:</b> &quot;Tom &amp; Jerry&quot;")
    assert blocker.args[0] == 'Can\'t play this video: "Tom & Jerry"'


def test_a_broken_video_is_reported(qtbot, tmp_path, project, media_noise):
    media_noise.append("Could not open media")  # Qt's own warning about the file; we show it too
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\0" * 1000)
    d = QtCaptureDialog(project, video_file=bad)
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.capture_failed, timeout=20000):
        d.show()
    assert "Can't play" in d.preview.text()
    assert not d.shot_button.isEnabled()


def test_shots_are_saved_on_a_worker_and_closing_waits_for_them(qtbot, project):
    """Encoding and importing run off the GUI thread: take_photo returns before the file
    exists; shots taken meanwhile queue up, and closing the dialog waits for the save."""
    d = _dialog(qtbot, project, target_class="circle")
    img = QImage(640, 480, QImage.Format.Format_RGB888)
    img.fill(QColor(10, 200, 30))
    with qtbot.waitSignal(d.frame_shown, timeout=5000):
        d.sink.setVideoFrame(QVideoFrame(img))
    before = set((project.root / "circle").iterdir())
    got: list[str] = []
    d.images_captured.connect(lambda cls, paths: got.extend(paths))
    assert d.take_photo() and d.take_photo() and d.take_photo()
    assert d.saving
    with qtbot.waitSignal(d.finished, timeout=20000):
        d.reject()  # asked while saving: done once the pictures are in
    assert not d.saving and len(got) == 3 and len(set(got)) == 3
    assert set((project.root / "circle").iterdir()) - before == {Path(p) for p in got}
    assert {project.rel(p) for p in got} <= {r["relpath"] for r in project.store.images(cls="circle")}
