"""Live prediction and play mode: a real video file played by QtMultimedia stands in for the
webcam, a real (tiny) trained model answers on the worker thread, saved frames land in a real
project through its journaled import."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6.QtMultimedia", reason="QtMultimedia comes with PySide6-Addons")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtMultimedia import QMediaDevices  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from ponyclassifier.core.project import Project  # noqa: E402
from ponyclassifier.gui.predict.live import LivePrediction, LivePredictWidget  # noqa: E402
from ponyclassifier.gui.predict.play import BUTTON_HEIGHT, PlayWindow, percent  # noqa: E402
from tests.conftest import SHAPES, draw_shape, make_shapes_dataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("media_noise")  # the machine-noise filter (tests/gui/conftest.py)


@pytest.fixture(scope="module")
def model(trained_shapes):
    """A real scratch model on 32 px shapes: a few seconds on a CPU."""
    return trained_shapes(per_class=16, size=32, epochs=2).model


def make_shapes_video(path: Path, frames: int = 30, size=(160, 120)) -> Path:
    """An animated GIF (QtMultimedia's FFmpeg backend plays it like any video) cycling
    through the three shapes; every frame differs (noise), so none are merged."""
    rng = np.random.default_rng(3)
    w, h = size
    seq = []
    for i in range(frames):
        im = Image.new("RGB", size, (25, 25, 45))
        im.paste(draw_shape(SHAPES[(i // 10) % len(SHAPES)], rng, h), ((w - h) // 2, 0))
        seq.append(im)
    seq[0].save(path, save_all=True, append_images=seq[1:], duration=40, loop=0)
    return path


def striped(w: int = 64, h: int = 48) -> QImage:
    """Blue with a red stripe down the left quarter: mirroring moves the stripe."""
    img = QImage(w, h, QImage.Format.Format_RGB888)
    img.fill(QColor(0, 0, 255))
    for y in range(h):
        for x in range(w // 4):
            img.setPixelColor(x, y, QColor(255, 0, 0))
    return img


@pytest.fixture
def project(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2)
    p = Project(root)
    p.sync()
    yield p
    p.close()


@pytest.fixture
def live(qtbot):
    w = LivePredictWidget()
    qtbot.addWidget(w)
    w.resize(1000, 640)
    w.show()
    yield w
    w.shutdown()
    assert not w.worker_running


def _collect(w: LivePredictWidget) -> list[LivePrediction]:
    got: list[LivePrediction] = []
    w.prediction_made.connect(got.append)
    return got


def test_video_file_as_camera_gives_live_predictions(qtbot, tmp_path, live, model):
    video = make_shapes_video(tmp_path / "shapes.gif")
    live.set_model(model, "shapes")
    assert "shapes" in live.model_label.text() and live.threshold == pytest.approx(model.unsure_threshold, abs=0.01)
    got = _collect(live)
    shown = []
    live.frame_shown.connect(lambda: shown.append(1))
    live.use_video_file(video)
    assert live.source_combo.currentText() == "Video: shapes.gif" and live.running
    assert not live.mirror.isChecked()  # a recording is not a selfie
    qtbot.waitUntil(lambda: len(got) >= 6 and bool(shown), timeout=30000)

    for p in got:
        label, confidence, unsure, top = p  # unpacks as (label, confidence, unsure, top)
        assert label in model.classes and top[0] == (label, confidence)
        assert len(top) == 3 and [c for c, _ in top] != [] and set(c for c, _ in top) <= set(model.classes)
        assert all(a[1] >= b[1] for a, b in zip(top, top[1:])) and 0.0 <= confidence <= 1.0
        assert unsure == (confidence < live.threshold)
    last = live.last_prediction
    assert live.answer.text() == ("Not sure" if last.unsure else last.label)
    assert live.bars[0].name.toolTip() == last.label and live.bars[0].bar.value() == round(last.confidence * 1000)

    st = live.stats
    assert st.frames_predicted >= 6 and st.frames_dropped >= 0
    assert st.frames_seen >= st.frames_predicted + st.frames_dropped
    assert st.mean_latency_ms > 0 and st.p95_latency_ms > 0 and st.max_latency_ms >= st.p95_latency_ms
    assert st.mean_inference_ms > 0 and st.predictions_per_second > 0 and st.camera_fps > 0
    assert set(st.as_dict()) >= {"frames_seen", "frames_predicted", "frames_dropped", "mean_latency_ms",
                                 "predictions_per_second", "camera_fps"}
    live._show_rates()
    assert "answers/s" in live.rates.text() and "ms from picture to answer" in live.rates.text()
    assert live.view.image is not None

    live.stop()
    assert not live.running and live.start_button.text() == "Start"
    assert live.current_image is not None  # the last picture stays, to be saved
    assert live.worker_running  # the thread idles until shutdown()
    live.shutdown()
    assert not live.worker_running
    live.shutdown()  # twice is fine


def test_busy_model_drops_frames_instead_of_queueing(qtbot, live, model):
    """20 frames arrive while the first is with the model: one waits (the newest), the
    other 18 are dropped; exactly two get answers."""
    live.set_model(model, "shapes")
    got = _collect(live)
    frames = [QImage(48, 48, QImage.Format.Format_RGB888) for _ in range(20)]
    for i, f in enumerate(frames):
        f.fill(QColor(10 * i, 80, 200))
        live.feed_frame(f)  # no event processing in between: the first answer cannot arrive
    assert live.busy
    qtbot.waitUntil(lambda: not live.busy and len(got) == 2, timeout=20000)
    st = live.stats
    assert (st.frames_seen, st.frames_predicted, st.frames_dropped) == (20, 2, 18)
    # the picture on screen is the newest frame
    assert live.current_image.pixelColor(5, 5) == QColor(190, 80, 200)


def test_mirror_flips_the_frame(qtbot, live, model):
    live.set_model(model, "shapes")
    live.mirror.setChecked(False)
    live.feed_frame(striped())
    plain = live.current_image
    assert plain.pixelColor(2, 10) == QColor(255, 0, 0) and plain.pixelColor(61, 10) == QColor(0, 0, 255)
    live.mirror.setChecked(True)
    live.feed_frame(striped())
    mirrored = live.current_image
    assert mirrored.pixelColor(2, 10) == QColor(0, 0, 255) and mirrored.pixelColor(61, 10) == QColor(255, 0, 0)
    qtbot.waitUntil(lambda: not live.busy, timeout=20000)


def test_save_frame_into_the_answer_or_a_corrected_class(qtbot, live, model, project):
    assert not live.save_button.isEnabled() and "Open a project first" in live.save_button.toolTip()
    live.set_model(model, "shapes")
    live.set_project(project)
    assert [live.save_class.itemData(i) for i in range(live.save_class.count())] == [None, *project.classes()]
    live.mirror.setChecked(False)
    got = _collect(live)
    live.feed_frame(striped())
    qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=20000)
    answer = got[0].label
    assert live.save_class.itemText(0) == f"Its answer ({answer})"
    assert live.save_button.text() == f"Save picture as {answer}" and live.save_button.isEnabled()

    before = {r["relpath"] for r in project.store.images()}
    with qtbot.waitSignal(live.frame_saved, timeout=20000) as blocker:
        live.save_button.click()
    first = Path(blocker.args[0])
    assert first.parent == project.root / answer and first.suffix == ".png"
    px = np.asarray(Image.open(first))
    assert px.shape == (48, 64, 3) and tuple(px[10, 2]) == (255, 0, 0) and tuple(px[10, 61]) == (0, 0, 255)

    # the user says it is something else: the same picture goes into that class, as a new file
    other = next(c for c in project.classes() if c != answer)
    live.save_class.setCurrentIndex(live.save_class.findData(other))
    assert live.save_button.text() == f"Save picture as {other}"
    with qtbot.waitSignal(live.frame_saved, timeout=20000) as blocker:
        assert live.save_frame()
    second = Path(blocker.args[0])
    assert second.parent == project.root / other and second != first and first.exists()
    with qtbot.waitSignal(live.frame_saved, timeout=20000) as blocker:
        assert live.save_frame()  # same class, same second: a new name, nothing overwritten
    third = Path(blocker.args[0])
    assert third != second and second.exists() and third.exists()
    after = {r["relpath"] for r in project.store.images()}
    assert after - before == {project.rel(p) for p in (first, second, third)}
    assert "Saved" in live.save_note.text()
    project.undo()  # journaled like any import: undo takes the last one back
    assert not third.exists() and second.exists()


def test_save_refuses_clearly(qtbot, live, model, project):
    messages = []
    live.status_message.connect(messages.append)
    live.set_project(project)
    assert not live.save_frame()  # nothing on screen yet
    assert "no picture" in messages[-1].lower()
    live.set_model(dataclasses.replace(model, classes=["cat", "dog", "mouse"]), "animals")
    live.feed_frame(striped())
    qtbot.waitUntil(lambda: live.last_prediction is not None and not live.busy, timeout=20000)
    assert not live.save_frame()  # the answer is not a class of this project
    assert "not a class of this project" in messages[-1]
    live.set_project(project, busy=lambda: "The project is busy renaming a class.")
    assert not live.save_frame("circle") and messages[-1] == "The project is busy renaming a class."
    assert not any((project.root / c).exists() for c in ("cat", "dog", "mouse"))


def test_model_change_drops_stale_answers(qtbot, live, model):
    live.set_model(model, "shapes")
    got = _collect(live)
    live.feed_frame(striped())  # with the model now
    renamed = dataclasses.replace(model, classes=["red", "green", "blue"])
    live.set_model(renamed, "colours")  # before the first answer came back
    live.feed_frame(striped())
    qtbot.waitUntil(lambda: len(got) >= 1 and not live.busy, timeout=20000)
    assert all(p.label in renamed.classes for p in got)


def test_grad_cam_overlay_and_no_model(qtbot, live, model):
    live.feed_frame(striped())
    assert live.answer.text() == "No model" and not live.worker_running  # no model: no thread, no answers
    assert live.current_image is not None
    live.set_model(model, "shapes")
    live.cam_check.setChecked(True)
    got = _collect(live)
    live.feed_frame(striped())
    qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=20000)
    assert live.stats.heatmaps == 1
    layer = live.view._layer
    assert layer is not None and layer.hasAlphaChannel() and layer.width() == model.image_size
    live.cam_check.setChecked(False)
    assert live.view._layer is None


def test_play_mode_shows_the_answer_and_not_sure(qtbot, tmp_path, live, model):
    video = make_shapes_video(tmp_path / "shapes.gif")
    live.set_model(model, "shapes")
    got = _collect(live)
    live.threshold = 0.0  # never "not sure"
    play = live.open_play_mode(fullscreen=False)
    qtbot.waitExposed(play)
    assert play.answer_text == "Show me something!"
    live.use_video_file(video)
    qtbot.waitUntil(lambda: len(got) >= 3 and play.picture.image is not None, timeout=30000)
    assert play.label == live.last_prediction.label and play.answer_text == play.label and not play.unsure
    assert play.meter.text == f"{percent(live.last_prediction.confidence, sep='')} sure"
    assert play.camera_button.isVisible() and play.camera_button.text() == "Camera off"
    for b in (play.open_button, play.camera_button, play.leave_button):
        assert b.height() >= 64

    live.stop()
    assert play.camera_button.text() == "Camera on"
    live.threshold = 1.0  # above every confidence the model can give
    p = live.last_prediction
    assert p.unsure == (p.confidence < 1.0) and play.unsure == p.unsure
    if p.unsure:
        assert play.answer_text == "I'm not sure!" and p.label in play.phrase.text()

    with qtbot.waitSignal(play.closed):
        qtbot.keyClick(play, Qt.Key.Key_Escape)
    assert live.play_window is None


def test_not_sure_never_shows_the_threshold_itself(qtbot, live):
    """49.96 % under a 50 % threshold: rounding up would read "at 50 %, under the 50 % needed"."""
    assert percent(0.4996) == "49 %" and percent(0.5) == "50 %" and percent(0.999) == "99 %"
    assert percent(0.0996) == "9.9 %" and percent(0.0004) == "<0.1 %"
    live.threshold = 0.5
    live._show_answer(LivePrediction("circle", 0.4996, True, [("circle", 0.4996), ("square", 0.3)]))
    assert live.answer.text() == "Not sure"
    assert "at 49 %" in live.answer_detail.text() and "under the 50 % needed" in live.answer_detail.text()
    assert live.bars[0].bar.format() == "49 %"
    play = PlayWindow()
    qtbot.addWidget(play)
    play.set_threshold(0.5)
    play.show_prediction(None, "circle", 0.4996, True)
    assert play.meter.text == "49% sure" and "49%" in play.meter.toolTip() and "50%" in play.meter.toolTip()


def test_play_window_on_its_own(qtbot):
    """The Predict page drives it with a still picture and an answer."""
    play = PlayWindow()
    qtbot.addWidget(play)
    play.set_actions(next=True, open=True, camera=None)
    play.show()
    qtbot.waitExposed(play)
    assert not play.camera_button.isVisible() and play.next_button.isVisible()
    img = striped(200, 150)
    play.set_threshold(0.6)
    play.show_prediction(img, "Twilight Sparkle", 0.93, False)
    assert play.answer_text == "Twilight Sparkle" and play.phrase.text() == "I'm very sure!"
    assert play.picture.image is img and play.meter.text == "93% sure"
    play.show_prediction(None, "Rarity", 0.41, True)
    assert play.answer_text == "I'm not sure!" and "Rarity" in play.phrase.text() and play.unsure
    assert play.picture.image is img  # the picture stays
    assert play.answer.font().pixelSize() >= 36
    for b in (play.next_button, play.open_button, play.leave_button):
        assert b.height() >= BUTTON_HEIGHT >= 64
    with qtbot.waitSignal(play.next_requested):
        play.next_button.click()
    with qtbot.waitSignal(play.closed):
        play.leave_button.click()
    assert not play.isVisible()


def test_predict_a_picture_file_and_a_broken_one(qtbot, tmp_path, live, model):
    live.set_model(model, "shapes")
    got = _collect(live)
    live.feed_frame(striped())  # a camera frame first: its answer must not replace the picture's
    good = tmp_path / "circle.png"
    draw_shape("circle", np.random.default_rng(0), 64).save(good)
    live.predict_file(good)
    qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=20000)
    assert live.current_image.size().toTuple() == (64, 64) and got[0].label in model.classes
    assert live.stats.frames_predicted == 0  # the frame's answer was dropped; a still is not a frame
    play = live.open_play_mode(fullscreen=False)
    assert play.picture.image is live.current_image and play.label == got[0].label
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with qtbot.waitSignal(live.status_message, timeout=20000) as blocker:
        live.predict_file(bad)
    assert "notes.png" in blocker.args[0]
    assert len(got) == 1 and play.answer_text == "I can't open that picture."


def test_source_errors_reach_the_status_bar_as_plain_text(qtbot, live):
    """Entities are decoded, not left as "&quot;" or "&amp;" in the status bar; the play
    window gets the rich text, which it renders itself."""
    html_msg = "<b>Can't play this video:</b> &quot;Tom &amp; Jerry&quot;<br>try another"
    play = live.open_play_mode(fullscreen=False)
    with qtbot.waitSignal(live.status_message) as blocker:
        live.video.failed.emit(html_msg)
    assert blocker.args[0] == 'Can\'t play this video: "Tom & Jerry" try another'
    assert play.picture.message == html_msg


def test_a_big_photo_gets_the_same_answer_as_on_the_predict_page(qtbot, tmp_path, live, model):
    """A large JPEG goes through the same draft decode as Predict (not a full decode shrunk
    to the display size), so both pages give the same probabilities."""
    from ponyclassifier.core.predict import Predictor

    rng = np.random.default_rng(5)
    big = tmp_path / "big.jpg"
    noise = rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big, quality=90)
    live.set_model(model, "shapes")
    got = _collect(live)
    live.predict_file(big)
    qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=30000)
    expected = Predictor(model, device="cpu").predict_paths([big], top_k=len(model.classes))[0]
    assert got[0].label == expected.label
    assert dict(got[0].top) == pytest.approx(dict(expected.top[: len(got[0].top)]), abs=1e-5)


def test_no_camera_says_so(qtbot, live):
    if QMediaDevices.videoInputs():
        pytest.skip("this machine has a camera")
    assert live.source_combo.currentData() == "choose"
    live.start()
    assert not live.running and "No camera found" in live.view.message


def test_a_broken_video_is_reported(qtbot, tmp_path, live, model, media_noise):  # noqa: F811
    media_noise.append("Could not open media")  # Qt's own warning about the file; we show it too
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\0" * 1000)
    live.set_model(model, "shapes")
    with qtbot.waitSignal(live.status_message, timeout=20000) as blocker:
        live.use_video_file(bad)
    assert "Can't play" in blocker.args[0] and "Can't play" in live.view.message
    assert not live.running


def test_main_window_builds_the_camera_view_on_first_show_and_opens_play_mode(qtbot, tmp_path, model, make_window):
    """In the app, the live view is built when its tab is first shown, with the project and
    a copy of the Predict page's model; F11 opens play mode from anywhere."""
    path = tmp_path / "m.pony"
    model.save(path)
    data = make_shapes_dataset(tmp_path / "data", per_class=3, size=32)
    w = make_window()
    with qtbot.waitSignal(w.browser.listing_finished, timeout=30000):
        w.open_project(str(data))
    qtbot.waitUntil(lambda: w.browser.project is not None, timeout=30000)
    with qtbot.waitSignal(w.predict.model_loaded, timeout=60000):
        w.open_model_in(str(path), "Predict")
    assert w.live is None
    w.predict.tabs.setCurrentIndex(w.predict.live_tab_index)
    qtbot.waitUntil(lambda: w.live is not None, timeout=5000)
    assert w.live._model is not None and w.live._model.classes == model.classes
    assert w.live._project is w.browser.project
    w.set_place(0)
    w.act_play.trigger()
    assert w.place() == "Predict"
    play = w.live.play_window
    assert play is not None and play.isVisible()
    QTest.keyClick(play, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.live.play_window is None or not play.isVisible(), timeout=5000)
    w.close()


def test_live_host_follows_the_sessions(qtbot, tmp_path, model):
    """The host builds the camera view when first shown, gives it its own replica of Predict's
    model each time one is loaded, the session's project (with its busy reason), and makes it
    forget its frame when another project is opened."""
    from ponyclassifier.core.session import ModelSession, ProjectSession
    from ponyclassifier.gui.predict.live_host import LiveHost

    session, models = ProjectSession(), ModelSession()
    host = LiveHost(session, models)
    qtbot.addWidget(host)
    made = []
    host.created.connect(made.append)
    models.set_loaded("Predict", model, "shapes")
    assert host.widget is None and models.state("Predict").replicas == {}  # no copy for a tab nobody opened
    root = make_shapes_dataset(tmp_path / "proj", per_class=2)
    session.open(root)
    project = Project(root)
    assert session.attach(project)
    host.resize(1000, 640)
    host.show()
    live = host.widget
    try:
        assert live is not None and made == [live]
        assert live.model is models.replica("Predict", "live") and live.model is not model
        assert live.model.classes == model.classes and "shapes" in live.model_label.text()
        assert live._project is project
        session.busy_reason = lambda: "The project is busy renaming a class."
        live.mirror.setChecked(False)
        got = _collect(live)
        live.feed_frame(striped())
        qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=20000)
        assert not live.save_frame("circle") and "busy renaming" in live.save_note.text()

        renamed = dataclasses.replace(model, classes=["red", "green", "blue"])
        models.set_loaded("Predict", renamed, "colours")
        assert live.model is models.replica("Predict", "live") and live.model.classes == ["red", "green", "blue"]

        session.open(tmp_path / "other")  # another project: nothing of the last one stays
        assert live.current_image is None and live.last_prediction is None and live.answer.text() == ""
        assert live._project is None and not live.save_button.isEnabled()
    finally:
        host.shutdown()
    assert not live.worker_running
    assert len(session.opened) == 0 and len(models.loaded) == 0


def test_a_save_in_progress_keeps_the_project_open_until_it_is_done(qtbot, tmp_path, model):
    """The session lets the project go while a picture is being saved into it: the host keeps
    it open (session.defer_close) until the save is done, then it is closed."""
    from ponyclassifier.core.session import ModelSession, ProjectSession
    from ponyclassifier.gui.predict.live_host import LiveHost

    session, models = ProjectSession(), ModelSession()
    host = LiveHost(session, models)
    qtbot.addWidget(host)
    root = make_shapes_dataset(tmp_path / "proj", per_class=2)
    session.open(root)
    project = Project(root)
    assert session.attach(project)
    models.set_loaded("Predict", model, "shapes")
    live = host.ensure()
    closes = []
    real_close = project.close
    project.close = lambda: (closes.append(live.saving), real_close())
    try:
        live.mirror.setChecked(False)
        got = _collect(live)
        live.feed_frame(striped())
        qtbot.waitUntil(lambda: len(got) == 1 and not live.busy, timeout=20000)
        with qtbot.waitSignal(live.frame_saved, timeout=20000) as blocker:
            assert live.save_frame("circle") and live.saving_into is project
            session.close()
            assert closes == []  # still open: the save writes into it
        assert closes == [False] and Path(blocker.args[0]).parent == root / "circle"
    finally:
        host.shutdown()
