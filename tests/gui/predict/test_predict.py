"""The Predict place with a real trained model and real files: drop, batch, bad files,
threshold, CSV, clipboard, Grad-CAM, ImageNet mode, stop, stale results, bad model files."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QLabel

from ponyclassifier.core import explain
from ponyclassifier.core.predict import Predictor
from ponyclassifier.core.preprocess import load_input
from ponyclassifier.core.trained import TrainedModel
from ponyclassifier.gui.predict.page import (
    CAM_OPACITY,
    CSV_COLUMNS,
    IMAGENET_TEXT,
    PASTED_NAME,
    PredictPage,
    percent_1dp,
    qimage_to_pil,
)
from tests.conftest import draw_shape, make_shapes_dataset

WAIT = 60000


@pytest.fixture(scope="module")
def shapes_model(trained_shapes):
    return trained_shapes(per_class=16, size=32, epochs=3).path


@pytest.fixture(scope="module")
def core_predictor(shapes_model):
    return Predictor(TrainedModel.load(shapes_model), device="cpu")


@pytest.fixture
def make_page(qtbot):
    pages = []

    def make(model_path=None, show=True, wait=True) -> PredictPage:
        page = PredictPage()
        qtbot.addWidget(page)
        pages.append(page)
        page.resize(1100, 760)
        if wait:
            with qtbot.waitSignal(page.model_loaded, timeout=WAIT):
                page.set_model_path(model_path)
        if show:
            page.show()
        return page

    yield make
    for page in pages:
        page.shutdown()


@pytest.fixture
def page(make_page, shapes_model):
    return make_page(shapes_model)


def shape_files(folder: Path, n: int, seed: int = 1, size: int = 32, ext: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = ("circle", "square", "triangle")[i % 3]
        p = folder / f"img_{i:02d}_{shape}{ext}"
        draw_shape(shape, rng, size).save(p)
        out.append(p)
    return out


def predict(qtbot, page: PredictPage, action) -> int:
    with qtbot.waitSignal(page.predictions_finished, timeout=WAIT) as blocker:
        action()
    assert not page.busy
    return blocker.args[0]


def drop(page: PredictPage, mime: QMimeData) -> tuple[bool, bool]:
    """A real drag enter and drop, delivered the way Qt delivers them; (entered, dropped)."""
    pos = page.rect().center()
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    enter = QDragEnterEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, enter)
    ev = QDropEvent(QPointF(pos), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, ev)
    return enter.isAccepted(), ev.isAccepted()


def assert_matches_core(result, expected, k: int | None = None) -> None:
    assert result.error is None and expected.error is None
    assert result.label == expected.label
    assert result.confidence == pytest.approx(expected.confidence, abs=1e-4)
    n = k or len(expected.top)
    assert [c for c, _ in result.top[:n]] == [c for c, _ in expected.top[:n]]
    assert [p for _, p in result.top[:n]] == pytest.approx([p for _, p in expected.top[:n]], abs=1e-4)


def table_text(page: PredictPage) -> list[list[str]]:
    m = page.table_view.model()
    return [[m.index(r, c).data() for c in range(m.columnCount())] for r in range(m.rowCount())]


# ---------------------------------------------------------------------------------- tests


def test_dropped_files_get_cards_matching_the_core_predictor(qtbot, page, tmp_path, core_predictor, shapes_model):
    files = shape_files(tmp_path / "in", 3)
    big = tmp_path / "in" / "big_circle.jpg"  # another size and format: the same preprocessing applies
    draw_shape("circle", np.random.default_rng(9), 96).save(big, quality=92)
    files.append(big)
    assert page.threshold == pytest.approx(TrainedModel.load(shapes_model).unsure_threshold, abs=0.005)
    assert "shapes.pony" in page.model_label.text() and "circle" in page.model_label.text()

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    with qtbot.waitSignal(page.predictions_finished, timeout=WAIT):
        entered, dropped = drop(page, mime)
    assert entered and dropped
    expected = core_predictor.predict_paths(files, top_k=10)
    assert [r.source for r in page.results] == [str(f) for f in files]
    for r, e in zip(page.results, expected):
        assert_matches_core(r, e)

    # each card shows the picture, the verdict and the top 3 guesses
    assert len(page.cards) == 4 and page.pictures_stack.currentIndex() == 1
    for r in page.results:
        card = page.cards[r.index]
        assert not card.image.pixmap().isNull()
        assert r.label in card.verdict.text()
        shown = [(b.name, b.p) for b in card.bars if not b.isHidden()]
        assert shown == [(c, pytest.approx(p)) for c, p in r.top[:3]]
        assert ("Not sure" in card.verdict.text()) == (r.confidence < page.threshold)
    # the table has the same results
    rows = table_text(page)
    assert [row[0] for row in rows] == [f.name for f in files]
    assert [row[1] for row in rows] == [e.label for e in expected]
    assert rows[0][4].count("%") == 3

    # fewer guesses: cards and table change, the model does not run again
    page.topk_spin.setValue(2)
    assert page._predict_job is None
    assert all(sum(not b.isHidden() for b in page.cards[r.index].bars) == 2 for r in page.results)
    assert all(row[4].count("%") == 2 for row in table_text(page))

    # a remote URL is not something we can classify: the drag is refused
    remote = QMimeData()
    remote.setUrls([QUrl("https://example.com/cat.jpg")])
    assert drop(page, remote) == (False, False)
    assert len(page.results) == 4


def test_a_folder_without_pictures_and_a_name_that_is_not_utf8_each_get_a_row_saying_why(qtbot, page, tmp_path):
    """What the listing leaves out is not silently dropped: the table says why (the core's
    list_inputs, as the command line prints it)."""
    import os

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a picture")
    mixed = tmp_path / "mixed"
    good = shape_files(mixed, 2)
    bad = os.path.join(os.fsencode(mixed), b"\xff\xfe.png")
    with open(bad, "wb") as f:
        f.write(good[0].read_bytes())
    n = predict(qtbot, page, lambda: page.predict_paths([empty, mixed]))
    assert n == 4 == len(page.results)
    errors = {r.source: r.error for r in page.results if r.error}
    assert "no pictures found in this folder" in errors[str(empty)]
    (shown, reason), = [(s, e) for s, e in errors.items() if s != str(empty)]
    assert "\\xff\\xfe.png" in shown and "not valid UTF-8" in reason
    assert sum(1 for r in page.results if r.error is None) == 2
    card = page.show_card(0)  # the folder's card says there was nothing to look at, not "cannot read"
    assert "Nothing to look at in this folder" in card.verdict.text() and "no pictures" in card.image.text()


def test_folder_batch_with_bad_files_table_cards_and_double_click(qtbot, page, tmp_path, core_predictor):
    folder = tmp_path / "batch"
    good = shape_files(folder / "sub", 13)
    (folder / "broken.png").write_text("this is not a picture")
    jpeg = folder / "cut.jpg"
    draw_shape("square", np.random.default_rng(3), 64).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])  # truncated
    (folder / "notes.txt").write_text("sidecar files are skipped")
    page.chunk_size = 4
    page.max_cards = 6

    n = predict(qtbot, page, lambda: page.predict_paths([folder]))
    assert n == 15 == len(page.results) == page.table_view.model().rowCount()
    by_name = {Path(r.source).name: r for r in page.results}
    assert set(by_name) == {"broken.png", "cut.jpg", *(g.name for g in good)}
    assert "unsupported" in by_name["broken.png"].error
    assert "damaged" in by_name["cut.jpg"].error or "truncated" in by_name["cut.jpg"].error
    for g, e in zip(good, core_predictor.predict_paths(good, top_k=10)):
        assert_matches_core(by_name[g.name], e)
    rows = {row[0]: row for row in table_text(page)}
    assert rows["broken.png"][5] == by_name["broken.png"].error and rows["broken.png"][1] == ""
    assert rows["cut.jpg"][5] == by_name["cut.jpg"].error
    assert "2 could not be read" in page.summary_label.text()
    assert "2 files could not be read" in page.last_message

    # only the first cards are made; a note says where the rest are
    assert len(page.cards) == 6 and not page.cards_note.isHidden() and "15" in page.cards_note.text()
    broken_card = page.cards[by_name["broken.png"].index]
    assert "Could not read" in broken_card.verdict.text() and "unsupported" in broken_card.verdict.text()

    # sort by confidence, then double-click the last row (a result without a card yet)
    page.tabs.setCurrentIndex(1)
    page.table_view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    confidences = [r.confidence for r in page.table_rows_in_view() if r.error is None]
    assert confidences == sorted(confidences, reverse=True)
    view = page.table_view
    row = next(i for i, r in enumerate(page.table_rows_in_view()) if r.index >= 6 and r.error is None)
    target = page.table_rows_in_view()[row]
    qtbot.waitUntil(lambda: view.isVisible() and view.viewport().height() > 100, timeout=5000)
    view.scrollTo(view.model().index(row, 0))
    rect = view.visualRect(view.model().index(row, 0))
    assert view.viewport().rect().contains(rect.center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # a double click's first press
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.tabs.currentIndex() == 0
    card = page.cards[target.index]
    assert card.property("current") is True and len(page.cards) == 7
    qtbot.waitUntil(lambda: card.image.pixmap() is not None and not card.image.pixmap().isNull(), timeout=WAIT)


def test_threshold_slider_relabels_without_running_the_model(qtbot, page, tmp_path):
    files = shape_files(tmp_path / "t", 6, seed=4)
    predict(qtbot, page, lambda: page.predict_paths(files))
    results = list(page.results)
    r = min(results, key=lambda r: r.confidence)
    assert r.confidence < 0.99, "the tiny model should not be certain of everything"
    card = page.cards[r.index]
    row = [i for i, x in enumerate(page.table_rows_in_view()) if x is r][0]

    page.threshold_slider.setValue(math.floor(r.confidence * 100) + 1)  # just above its confidence
    assert page.is_unsure(r) and "Not sure" in card.verdict.text()
    assert f"best guess: {r.label}" in card.verdict.text()
    assert table_text(page)[row][3] == "yes"
    assert card.bars[0].kind == "unsure"
    assert "not sure" in page.summary_label.text()

    page.threshold_slider.setValue(math.floor(r.confidence * 100))  # at or below it
    assert not page.is_unsure(r) and "Not sure" not in card.verdict.text()
    assert table_text(page)[row][3] == "no" and card.bars[0].kind == "best"
    assert page.threshold_value.text() == f"{math.floor(r.confidence * 100)} %"

    page.threshold_slider.setValue(0)
    assert not any(page.is_unsure(x) for x in results)
    assert page.results == results and page._predict_job is None  # relabelled, not recomputed


def test_csv_export_matches_the_table(qtbot, page, tmp_path):
    folder = tmp_path / "csv"
    shape_files(folder / "Ünïcode naïve", 5)
    (folder / "bad.gif").write_bytes(b"GIF89a not really")
    predict(qtbot, page, lambda: page.predict_paths([folder]))
    page.threshold_slider.setValue(90)
    page.table_view.sortByColumn(2, Qt.SortOrder.AscendingOrder)

    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()
    out.write_text("old content")  # replaced whole, never appended to
    assert page.export_csv(out)
    with open(out, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(CSV_COLUMNS)
    shown = table_text(page)
    in_view = page.table_rows_in_view()
    assert len(rows) - 1 == len(shown) == 6
    for csv_row, table_row, r in zip(rows[1:], shown, in_view):
        assert csv_row[0] == r.source and Path(csv_row[0]).name == table_row[0]
        assert csv_row[1] == table_row[1] and csv_row[3:] == table_row[3:]
        if r.error:
            assert csv_row[2] == "" and csv_row[5] == r.error
        else:
            assert float(csv_row[2]) == pytest.approx(r.confidence, abs=1e-6)
            assert percent_1dp(r.confidence) == table_row[2]
            assert csv_row[3] == ("yes" if r.confidence < 0.9 else "no")
    assert sorted(os.listdir(out.parent)) == ["predictions.csv"]  # no temp file left behind

    # a folder that does not exist: a clear message, nothing written
    assert not page.export_csv(tmp_path / "missing" / "p.csv")
    assert "Could not export" in page.last_message and "missing" in page.last_message


def test_paste_from_clipboard(qtbot, page, core_predictor):
    pil = draw_shape("triangle", np.random.default_rng(7), 40)
    qimg = QImage(pil.tobytes(), 40, 40, 120, QImage.Format.Format_RGB888).copy()
    assert np.array_equal(np.asarray(qimage_to_pil(qimg)), np.asarray(pil))
    QGuiApplication.clipboard().setImage(qimg)
    page.activateWindow()
    qtbot.waitUntil(lambda: page.isActiveWindow() and page.hasFocus(), timeout=5000)  # the page takes focus
    predict(qtbot, page, lambda: qtbot.keyClick(page, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier))
    assert len(page.results) == 1
    r = page.results[0]
    assert r.source == PASTED_NAME and r.name == PASTED_NAME and r.pasted is not None
    assert_matches_core(r, core_predictor.predict_image(pil, top_k=10))
    assert page.cards[0].name.text() == PASTED_NAME and table_text(page)[0][0] == PASTED_NAME

    QGuiApplication.clipboard().setText("just some words")
    assert not page.paste()
    assert "no picture" in page.last_message
    assert page.results == [r]  # what was shown stays


def test_grad_cam_toggle_overlay_cached_and_global(qtbot, page, tmp_path, shapes_model):
    files = shape_files(tmp_path / "cam", 2, seed=11)
    wide = tmp_path / "cam" / "wide.png"
    draw_shape("square", np.random.default_rng(2), 32).resize((80, 60)).save(wide)
    files.append(wide)
    predict(qtbot, page, lambda: page.predict_paths(files))
    r = next(x for x in page.results if x.source == str(wide))
    card = page.cards[r.index]
    before = card.image.pixmap().toImage()

    with qtbot.waitSignal(page.grad_cam_ready, timeout=WAIT) as blocker:
        card.cam_button.click()
    assert blocker.args == [r.index]
    assert (r.cam.width(), r.cam.height()) == (80, 60)  # the overlay is the picture's size
    assert not card.cam_note.isHidden() and card.image.pixmap().toImage() != before

    # it is the core's Grad-CAM for the predicted class, on the prediction's input, painted over the picture
    model = TrainedModel.load(shapes_model)
    heat = explain.grad_cam(model, load_input(wide, model.image_size, model.channels),
                            target=model.classes.index(r.label))
    expected = explain.overlay(np.asarray(Image.open(wide).convert("RGB")), heat, opacity=CAM_OPACITY,
                               weight_by_heat=True)
    got = np.asarray(qimage_to_pil(r.cam))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1

    # off shows the picture again; on again uses the cached overlay (no new job)
    card.cam_button.click()
    assert card.image.pixmap().toImage() == before and not not card.cam_note.isHidden()
    cached = r.cam
    card.cam_button.click()
    assert page._cam_job is None and r.cam is cached

    # the global switch turns it on for every card
    others = [x.index for x in page.results if x is not r]
    with qtbot.waitSignals([page.grad_cam_ready] * len(others), timeout=WAIT):
        page.cam_all_check.setChecked(True)
    assert all(page.results[i].cam is not None and page.cards[i].cam_on for i in others)
    page.cam_all_check.setChecked(False)
    assert not any(c.cam_on for c in page.cards.values())


def test_imagenet_mode_after_a_bad_model_file_labels_a_cat(qtbot, make_page, tmp_path):
    skdata = pytest.importorskip("skimage.data")
    bad = tmp_path / "broken.pony"
    bad.write_bytes(b"\x00" * 64)
    page = make_page(wait=False, show=False)
    with qtbot.waitSignal(page.model_failed, timeout=WAIT) as failed:
        with qtbot.waitSignal(page.model_loaded, timeout=WAIT) as loaded:  # falls back to ImageNet
            page.set_model_path(bad)
            page.show()
    assert "broken.pony" in failed.args[0]
    assert "ImageNet" in loaded.args[0] and page.loaded.imagenet
    text = page.model_label.text()
    assert IMAGENET_TEXT in text and "Could not open the model" in text and "broken.pony" in text
    assert page.threshold == pytest.approx(page.loaded.model.unsure_threshold)

    cat = tmp_path / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(cat)
    page.topk_spin.setValue(5)
    predict(qtbot, page, lambda: page.predict_paths([cat]))
    r = page.results[0]
    shown = [b.name for b in page.cards[0].bars if not b.isHidden()]
    assert len(shown) == 5 and shown == [c for c, _ in r.top[:5]]
    assert any("cat" in c for c in shown), shown


def test_bad_model_file_keeps_the_current_model(qtbot, page, tmp_path, shapes_model):
    files = shape_files(tmp_path / "m", 2)
    predict(qtbot, page, lambda: page.predict_paths(files))
    before = [(r.label, r.confidence) for r in page.results]
    current = page.loaded
    evil = tmp_path / "evil.pony"
    import pickle

    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    messages: list[str] = []
    page.status_message.connect(messages.append)
    with qtbot.waitSignal(page.model_failed, timeout=WAIT) as failed:
        page.set_model_path(evil)
        assert page.model_loading and "Loading model… (evil.pony)" in page.model_label.text()
    assert messages[0].startswith("Loading model…") and "Could not open the model" in messages[-1]
    assert "evil.pony" in failed.args[0] and "pickle" in failed.args[0]
    assert page.loaded is current and "Still using shapes.pony" in page.model_label.text()
    assert [(r.label, r.confidence) for r in page.results] == before

    # choosing a model again re-runs what is shown with it
    with qtbot.waitSignal(page.predictions_finished, timeout=WAIT):
        with qtbot.waitSignal(page.model_loaded, timeout=WAIT):
            page.set_model_path(shapes_model)
    assert page.loaded is not current and "Could not open" not in page.model_label.text()
    assert [(r.label, pytest.approx(r.confidence, abs=1e-5)) for r in page.results] == before


def test_stop_a_batch_and_a_newer_request_drops_stale_results(qtbot, page, tmp_path):
    files = shape_files(tmp_path / "many", 30)
    page.chunk_size = 5
    lock = page.loaded.lock
    lock.acquire()  # the network is busy (as with a Grad-CAM job): the batch waits at its first chunk
    try:
        page.predict_paths(files)
        qtbot.waitUntil(lambda: page.progress.maximum() == 30, timeout=WAIT)
        assert page.stop_button.isVisible() and page.progress.isVisible()
        with qtbot.waitSignal(page.predictions_finished, timeout=WAIT):
            qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
            lock.release()
    finally:
        if lock.locked():
            lock.release()
    assert page.results == [] and not page.stop_button.isVisible()
    assert "Stopped after 0 of 30" in page.summary_label.text()

    # a newer request replaces one still running: only its results are shown
    lock.acquire()
    try:
        page.predict_paths(files)
        qtbot.waitUntil(lambda: page.progress.maximum() == 30, timeout=WAIT)
        with qtbot.waitSignal(page.predictions_finished, timeout=WAIT):
            page.predict_paths(files[:2])
            lock.release()
    finally:
        if lock.locked():
            lock.release()
    assert [r.source for r in page.results] == [str(f) for f in files[:2]]
    qtbot.wait(200)  # any late signal of the first job would arrive now
    assert len(page.results) == 2 and page.table_view.model().rowCount() == 2

    page.clear()
    assert page.results == [] and page.pictures_stack.currentIndex() == 0


def test_live_area_is_hidden_until_the_main_window_fills_it(page, tmp_path):
    from ponyclassifier.core.project import Project

    assert page.tabs.tabText(page.live_tab_index) == "Live camera"
    assert not page.tabs.isTabVisible(page.live_tab_index)
    root = make_shapes_dataset(tmp_path / "proj", per_class=1)
    page.session.open(root)
    project = Project(root)
    page.session.attach(project)
    assert page.project is project
    assert page._last_dir() == str(project.root)  # the file dialogs start in the project
    live = QLabel("camera")
    page.set_live_widget(live)
    assert page.tabs.isTabVisible(page.live_tab_index) and live.parent() is page.live_area
    page.session.close()  # the live host saves frames into the session's project (test_live_host_follows_the_sessions)
    assert page.project is None and page._last_dir() == ""
    with pytest.raises(Exception):
        project.store.meta("x")  # the session closed it


def test_a_picture_is_decoded_once_for_its_prediction_card_and_grad_cam(qtbot, page, tmp_path, monkeypatch,
                                                                        core_predictor):
    """The core decoder, counted: one added picture is decoded once for its answer, its card
    picture and its Grad-CAM (each module that took the decoder by name gets the counter)."""
    import sys

    from ponyclassifier.core import images

    original = images.decode_image
    decoded: list[str] = []

    def counting(source, *args, **kwargs):
        decoded.append(os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<data>")
        return original(source, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("ponyclassifier") and getattr(module, "decode_image", None) is original:
            monkeypatch.setattr(module, "decode_image", counting)

    png = shape_files(tmp_path / "once", 1, seed=21)[0]
    jpeg = tmp_path / "once" / "big.jpg"
    draw_shape("circle", np.random.default_rng(8), 96).save(jpeg, quality=92)
    predict(qtbot, page, lambda: page.predict_paths([png, jpeg]))
    assert [r.source for r in page.results] == [str(png), str(jpeg)]
    with qtbot.waitSignals([page.grad_cam_ready] * 2, timeout=WAIT):
        page.cam_all_check.setChecked(True)
    assert all(r.cam is not None and not page.cards[r.index].image.pixmap().isNull() for r in page.results)
    assert sorted(decoded) == sorted([str(png), str(jpeg)])
    # and the one decode is the core's: the answers are the core predictor's
    for r, e in zip(page.results, core_predictor.predict_paths([png, jpeg], top_k=10)):
        assert_matches_core(r, e)


def test_the_page_follows_the_sessions(qtbot, tmp_path, shapes_model):
    """A model the session wants is loaded when the page is shown and handed back to the
    session; a project opened forgets every result shown."""
    from ponyclassifier.core.session import ModelSession, ProjectSession

    session, models = ProjectSession(), ModelSession()
    page = PredictPage(session, models)
    qtbot.addWidget(page)
    try:
        models.want("Predict", str(shapes_model))
        assert not page.model_loading and page.loaded is None  # nothing loads for a page nobody opened
        with qtbot.waitSignal(page.model_loaded, timeout=WAIT) as loaded:
            page.show()
        assert page.loaded.path == str(shapes_model)
        assert models.model("Predict") is page.loaded.model and models.state("Predict").description == loaded.args[0]
        assert models.state("Predict").path == str(shapes_model)

        files = shape_files(tmp_path / "s", 2)
        predict(qtbot, page, lambda: page.predict_paths(files))
        assert len(page.results) == 2 and page.cards
        session.open(tmp_path / "another project")
        assert page.results == [] and page.cards == {} and page.table_view.model().rowCount() == 0
        assert page.pictures_stack.currentIndex() == 0

        # a model asked for while the page is shown loads at once
        other = tmp_path / "other.pony"
        other.write_bytes(Path(shapes_model).read_bytes())
        with qtbot.waitSignal(page.model_loaded, timeout=WAIT):
            models.want("Predict", str(other))
            assert page.model_loading
        assert models.state("Predict").path == str(other) and models.model("Predict") is page.loaded.model
        page.shutdown()
        assert len(session.opened) == 0 and len(models.wanted) == 0
    finally:
        page.shutdown()
