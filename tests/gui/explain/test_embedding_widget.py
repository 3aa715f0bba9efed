"""The dataset map with a real trained model: one dot per readable picture, a colour per
class, the mislabelled picture ringed as a misfit, hover and click, bad files, Stop, t-SNE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt, QThreadPool

from ponyclassifier.core import embedding as EM
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.preprocess import load_input
from ponyclassifier.gui.explain.embedding import EmbeddingMapWidget

from ...conftest import SHAPES, make_shapes_dataset


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory):
    """A small scratch CNN trained for real on circles, squares and triangles (~2 s)."""
    root = tmp_path_factory.mktemp("emb_train")
    data = make_shapes_dataset(root / "train", per_class=60, size=32)
    # One thread: on a busy shared CPU, two contending torch threads make this ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = Trainer(TrainConfig(epochs=15, lr=3e-3, batch_size=16, augment=None, device="cpu",
                                     seed=0)).fit(data)
    finally:
        torch.set_num_threads(threads)
    assert result.history["val_accuracy"][-1] >= 0.85, result.history
    return result.model


@pytest.fixture(scope="module")
def map_samples(tmp_path_factory):
    """Ten new pictures per class; one circle sits in the square folder (mislabelled)."""
    root = make_shapes_dataset(tmp_path_factory.mktemp("emb_map"), per_class=10, size=32, seed=7)
    paths, labels = [], []
    for c in SHAPES:
        for p in sorted((root / c).iterdir()):
            paths.append(str(p))
            labels.append(c)
    wrong = paths.index(str(root / "circle" / "circle_000.png"))
    labels[wrong] = "square"
    broken = root / "square" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    return paths, labels, paths[wrong], str(broken)


def make(qtbot) -> EmbeddingMapWidget:
    w = EmbeddingMapWidget()
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    return w


def build_map(qtbot, w: EmbeddingMapWidget, timeout: int = 60000) -> int:
    with qtbot.waitSignal(w.map_ready, timeout=timeout) as blocker:
        qtbot.mouseClick(w.make_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def view_pos(w: EmbeddingMapWidget, index: int) -> QPoint:
    return w.plot.mapFromScene(w.scene_pos_of(index))


def test_map_has_a_dot_per_picture_a_colour_per_class_and_the_misfit(qtbot, shapes_model, map_samples):
    paths, labels, wrong, broken = map_samples
    w = make(qtbot)
    assert not w.make_button.isEnabled() and "Load or train a model" in w.hint.text()
    w.set_model(shapes_model)
    w.set_samples(paths + [broken], labels + ["square"])
    assert w.make_button.isEnabled() and "31 pictures" in w.hint.text()
    assert build_map(qtbot, w) == 30
    assert not w.busy and not w.progress.isVisible() and not w.stop_button.isVisible()
    assert w.stack.currentWidget() is w.plot

    # one dot per readable picture, placed exactly where the core's features put it
    pts = w.points()
    assert [p.path for p in pts] == paths and [p.label for p in pts] == labels
    assert w.space() == "features" and w.projection() == "pca"  # the defaults
    expected = EM.project_2d(EM.embed_features(shapes_model, paths), "pca")
    np.testing.assert_allclose(np.array([[p.x, p.y] for p in pts]), expected, rtol=1e-4, atol=1e-4)

    # a scatter per class, each with its own colour and exactly its class's dots
    items = w.class_items()
    assert set(items) == set(SHAPES)
    colours = {c: item.opts["brush"].color().name() for c, item in items.items()}
    assert len(set(colours.values())) == 3
    for c, item in items.items():
        idx = item.data["data"]
        assert len(idx) == labels.count(c) and all(pts[i].label == c for i in idx)
        np.testing.assert_allclose(item.data["x"], [pts[i].x for i in idx])
    legend = [label.text for _sample, label in w.legend.items]
    assert "square (11)" in legend and "possible misfit" in legend

    # the circle labelled "square" is ringed and listed, most out of place first; the
    # neighbours are the core's, on unit-length features (cosine)
    misfits = w.misfit_paths()
    assert misfits and misfits[0] == wrong
    feats = EM.embed_features(shapes_model, paths)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert misfits == [paths[i] for i in EM.misfits(unit, labels, k=5)]
    assert w.own_share > 0.8 and not w.overlap_label.isVisibleTo(w)
    assert "of a picture's 5 nearest neighbours share its class" in w.status.text()
    assert len(misfits) <= 4  # the rest of the map is not flagged wholesale
    p = pts[paths.index(wrong)]
    assert p.misfit and p.neighbours_mostly == "circle" and p.disagreement > 0.5
    assert len(w.misfit_item.data) == len(misfits)
    assert f"{len(misfits)} possible misfit" in w.misfit_title.text()
    assert "labelled square, looks like circle" in w.misfit_list.item(0).text()

    # the bad file is left out and named
    assert [Path(b).name for b, _ in w.skipped()] == ["broken.png"]
    assert w.skipped_label.isVisibleTo(w) and "broken.png" in w.skipped_label.text()
    assert "1 left out" in w.status.text()


def test_hover_shows_the_picture_and_click_opens_it(qtbot, shapes_model, map_samples):
    paths, labels, wrong, _broken = map_samples
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths, labels)
    build_map(qtbot, w)
    i = paths.index(wrong)

    # hovering the dot: a card with the thumbnail, file name and class
    qtbot.mouseMove(w.plot.viewport(), view_pos(w, i))
    qtbot.waitUntil(lambda: w.card.isVisible() and w.card.path == wrong)
    assert "circle_000.png" in w.card.text.text() and "Class: square" in w.card.text.text()
    assert "Possible misfit" in w.card.text.text()
    qtbot.waitUntil(lambda: w.card.image.pixmap() is not None and not w.card.image.pixmap().isNull(), timeout=20000)

    # a real click on the dot emits its path
    j = paths.index(next(p for p in paths if p.endswith("triangle_004.png")))
    with qtbot.waitSignal(w.image_activated) as blocker:
        qtbot.mouseClick(w.plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pos(w, j))
    assert blocker.args == [paths[j]]
    assert len(w.selected_item.data) == 1

    # a click on empty space opens nothing; the card goes away there
    vb_rect = w.plot.mapFromScene(w.plot.getPlotItem().getViewBox().sceneBoundingRect()).boundingRect()
    xy = np.array([[view_pos(w, k).x(), view_pos(w, k).y()] for k in range(len(paths))])
    empty = next(QPoint(x, y) for x in range(vb_rect.left() + 5, vb_rect.right() - 5, 7)
                 for y in range(vb_rect.top() + 5, vb_rect.bottom() - 5, 7)
                 if np.min(np.hypot(xy[:, 0] - x, xy[:, 1] - y)) > 30)
    got = []
    w.image_activated.connect(got.append)
    qtbot.mouseMove(w.plot.viewport(), empty)
    qtbot.waitUntil(lambda: not w.card.isVisible())
    qtbot.mouseClick(w.plot.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    assert got == []

    # the misfit list: selecting shows the dot, activating opens the picture
    w.misfit_list.setCurrentRow(0)
    assert w.card.path == wrong
    with qtbot.waitSignal(w.image_activated) as blocker:
        w.misfit_list.itemActivated.emit(w.misfit_list.item(0))
    assert blocker.args == [wrong]


def test_tsne_and_relabelling_reuse_the_features(qtbot, shapes_model, map_samples):
    paths, labels, wrong, _broken = map_samples
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths, labels)
    build_map(qtbot, w)
    pca = np.array([[p.x, p.y] for p in w.points()])
    misfits = w.misfit_paths()
    progress = []
    w.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(w.map_ready, timeout=120000) as blocker:
        w.projection_combo.setCurrentIndex(w.projection_combo.findData("tsne"))
    assert blocker.args == [30]
    tsne = np.array([[p.x, p.y] for p in w.points()])
    assert tsne.shape == pca.shape and np.isfinite(tsne).all() and not np.allclose(tsne, pca)
    np.testing.assert_allclose(tsne, EM.project_2d(EM.embed_features(shapes_model, paths), "tsne", seed=0),
                               rtol=1e-3, atol=1e-3)
    assert w.misfit_paths() == misfits  # judged on the features, not on the flat map
    assert "t-SNE" in w.status.text()
    # Putting the circle back among the circles: redrawn at once (cached features), no longer a misfit.
    fixed = list(labels)
    fixed[paths.index(wrong)] = "circle"
    with qtbot.waitSignal(w.map_ready, timeout=120000):
        w.set_samples(paths, fixed)
    assert wrong not in w.misfit_paths()
    assert not any(v > 0 for v in progress)  # no picture was looked at again


def test_class_scores_view(qtbot, shapes_model, map_samples):
    paths, labels, wrong, _broken = map_samples
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths, labels)
    build_map(qtbot, w)
    with qtbot.waitSignal(w.map_ready, timeout=60000):
        w.space_combo.setCurrentIndex(w.space_combo.findData("scores"))
    # the dots sit where the model's class scores (the last layer's output) put them
    net = shapes_model.network
    batch = torch.stack([load_input(p, shapes_model.image_size, shapes_model.channels) for p in paths])
    with torch.no_grad():
        net.eval()
        scores = net(batch.float() / 255).numpy()
    np.testing.assert_allclose(np.array([[p.x, p.y] for p in w.points()]), EM.project_2d(scores, "pca"),
                               rtol=1e-3, atol=1e-3)
    assert w.misfit_paths()[0] == wrong
    assert w.misfit_paths() == [paths[i] for i in EM.misfits(scores, labels, k=5)]
    assert "class scores" in w.status.text()


def test_stop_and_carry_on(qtbot, shapes_model, tmp_path):
    root = make_shapes_dataset(tmp_path / "many", per_class=40, size=32, seed=3)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    labels = [Path(p).parent.name for p in paths]
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths, labels)
    ready = []
    w.map_ready.connect(ready.append)
    qtbot.mouseClick(w.make_button, Qt.MouseButton.LeftButton)
    assert w.busy and w.stop_button.isVisible()
    with qtbot.waitSignal(w.stopped):
        qtbot.mouseClick(w.stop_button, Qt.MouseButton.LeftButton)
    assert not w.busy and not w.stop_button.isVisible() and w.make_button.isEnabled()
    assert "Stopped" in w.hint.text() and w.stack.currentWidget() is w.hint
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30000)
    qtbot.wait(50)  # any late signal of the stopped job would arrive now
    assert ready == [] and w.points() == []
    # carrying on maps everything
    assert build_map(qtbot, w) == len(paths)
    # stopping a new view of a drawn map keeps the map that was there
    before = w.points()
    w.projection_combo.setCurrentIndex(w.projection_combo.findData("tsne"))
    assert w.busy
    with qtbot.waitSignal(w.stopped):
        qtbot.mouseClick(w.stop_button, Qt.MouseButton.LeftButton)
    assert w.points() == before and w.stack.currentWidget() is w.plot and w.projection() == "pca"
    assert "drawn before" in w.status.text()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=60000)
    qtbot.wait(50)
    assert ready == [len(paths)] and w.points() == before


def test_tsne_with_too_few_pictures_uses_pca(qtbot, shapes_model, map_samples):
    paths, labels, _wrong, _broken = map_samples
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths[:3], labels[:3])
    w.set_projection("tsne")
    assert build_map(qtbot, w) == 3
    assert "t-SNE needs at least 4 pictures" in w.status.text()


def test_a_new_model_drops_the_running_job_and_all_bad_files(qtbot, shapes_model, map_samples, tmp_path):
    paths, labels, _wrong, _broken = map_samples
    w = make(qtbot)
    w.set_model(shapes_model)
    w.set_samples(paths, labels)
    ready = []
    w.map_ready.connect(ready.append)
    qtbot.mouseClick(w.make_button, Qt.MouseButton.LeftButton)
    w.set_model(None)
    assert not w.busy and not w.make_button.isEnabled() and "Load or train a model" in w.hint.text()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30000)
    qtbot.wait(50)
    assert ready == []

    bad = [tmp_path / "a.png", tmp_path / "b.jpg"]
    bad[0].write_text("not a picture")
    w.set_model(shapes_model)
    w.set_samples([str(p) for p in bad], ["x", "y"])
    with qtbot.waitSignal(w.map_failed) as blocker:
        qtbot.mouseClick(w.make_button, Qt.MouseButton.LeftButton)
    assert "None of the pictures could be read" in blocker.args[0]
    assert {Path(p).name for p, _ in w.skipped()} == {"a.png", "b.jpg"}
    assert "file not found" in w.skipped_label.text()


def test_imagenet_model(qtbot, tmp_path):
    from PIL import Image

    from ponyclassifier.core.trained import TrainedModel

    skdata = pytest.importorskip("skimage.data")
    paths, labels = [], []
    for name in ("chelsea", "astronaut", "coffee", "rocket"):
        p = tmp_path / f"{name}.png"
        Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((96, 96)).save(p)
        paths.append(str(p))
        labels.append("photo")
    root = make_shapes_dataset(tmp_path / "shapes", per_class=2, size=48, seed=1)
    for p in sorted(root.rglob("*.png")):
        paths.append(str(p))
        labels.append("drawing")
    w = make(qtbot)
    w.set_model(TrainedModel.imagenet())
    w.set_samples(paths, labels)
    assert build_map(qtbot, w, timeout=120000) == len(paths)
    assert set(w.class_items()) == {"photo", "drawing"}
