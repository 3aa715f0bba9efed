"""The Explain place, driven as a user would: real (tiny, CPU) models trained here, real
files, the real ImageNet network once. Every tab must produce its pictures at the right
sizes, follow the chosen layer and class, stop when asked, survive bad files and never
show a result computed for a model that is no longer loaded."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from ponyclassifier.core import explain as E
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.trained import TrainedModel
from ponyclassifier.gui.explain.page import GRID_BACKGROUND, ExplainPage, kernel_grid, maps_grid, parse_channels
from tests.conftest import make_shapes_dataset

T = 60000  # generous timeouts: the machine may be busy; nothing here measures speed


@pytest.fixture(scope="module")
def models(tmp_path_factory, trained_shapes):
    """Two small scratch models trained for real: three shapes at 32 px (the shared tiny
    model), two at 24 px."""
    shapes = trained_shapes(per_class=8, size=32, epochs=2)
    root = tmp_path_factory.mktemp("explain")
    cfg = dict(epochs=2, lr=3e-3, batch_size=16, augment=None, device="cpu")
    two = make_shapes_dataset(root / "two", per_class=8, size=24, seed=1, classes=("circle", "square"))
    Trainer(TrainConfig(**cfg, seed=1)).fit(two).model.save(root / "two.pony")
    samples = [(str(p), p.parent.name) for p in sorted(shapes.data.glob("*/*.png"))]
    return SimpleNamespace(root=root, data=shapes.data, a=shapes.path, b=root / "two.pony", samples=samples)


@pytest.fixture
def page(qtbot):
    p = ExplainPage()
    p.resize(1300, 850)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown()


def load(qtbot, page: ExplainPage, path) -> None:
    with qtbot.waitSignal(page.model_loaded, timeout=T):
        page.set_model_path(path)


def wait_prediction(qtbot, page: ExplainPage) -> None:
    qtbot.waitUntil(lambda: page.predicted is not None and page._pred_ctx == (page._model_key, page._image_key),
                    timeout=T)


def current(page: ExplainPage, view: str) -> bool:
    return page._done.get(view) is not None and page._done.get(view) == page._ctx(view)


def wait_saliency(qtbot, page: ExplainPage, target: int | None = None) -> None:
    def ready():
        if not all(current(page, v) for v in ("gradients", "cam", "occlusion")):
            return False
        if target is not None and any(page._heat_ctx[v][2] != target for v in page.heat):
            return False
        return set(page.overlays) == {"gradients", "cam", "occlusion"} and not page._overlay_lane.busy
    qtbot.waitUntil(ready, timeout=T)


def watch_results(page: ExplainPage) -> list[tuple[str, int, bool]]:
    """(view, model generation, fits) for every result shown: whether it fits the model
    loaded at that moment (a result of another model has another input size or layers)."""
    seen: list[tuple[str, int, bool]] = []

    def record(view: str) -> None:
        s = page.model.image_size
        if view in ("gradients", "cam", "occlusion"):
            seen.append((view, page._model_key, page.heat[view].shape == (s, s)))
        elif view == "maps":
            seen.append((view, page._model_key, page.maps.shape == page.current_layer.output_shape))
        elif view == "prediction":
            seen.append((view, page._model_key, page.probabilities.shape == (len(page.model.classes),)))
    page.result_shown.connect(record)
    return seen


def click_image_pixel(qtbot, view, x: int, y: int) -> None:
    r = view.image_rect()
    img = view.image()
    pos = QPoint(int(r.x() + (x + 0.5) * r.width() / img.width()), int(r.y() + (y + 0.5) * r.height() / img.height()))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)


# ---------------------------------------------------------------------------- helpers


def test_parse_channels():
    assert parse_channels("0-3, 7", 10) == [0, 1, 2, 3, 7]
    assert parse_channels(" 5 – 3 ;9", 10) == [3, 4, 5, 9]
    for bad, words in (("", "type"), ("x", "not a filter"), ("3-12", "does not exist"), ("0-99", "at most")):
        with pytest.raises(ValueError, match=words):
            parse_channels(bad, 10 if bad != "0-99" else 100)


def test_grids_count_and_enlarge():
    f = np.random.default_rng(0).random((10, 3, 3, 3)).astype(np.float32)
    grid, cols, scale = kernel_grid(f, cell=30, gap=3)
    assert scale == 10 and cols == 5
    assert grid.shape == (2 * 30 + 3 * 3, 5 * 30 + 6 * 3, 3)
    # nearest neighbour: each kernel pixel is a flat 10x10 block
    block = grid[3:13, 3:13]
    assert (block == block[0, 0]).all()
    maps = np.random.default_rng(1).random((7, 5, 6)).astype(np.float32)
    rgb, cols, pad = maps_grid(maps)
    assert cols == 4 and rgb.shape[:2] == (2 * 5 + pad, 4 * 6 + 3 * pad)
    assert (rgb[5:5 + pad] == GRID_BACKGROUND).all()  # the gap between rows
    assert (rgb[6:, 3 * (6 + pad):] == GRID_BACKGROUND).all()  # the empty eighth cell
    assert not (rgb[:5, :6] == GRID_BACKGROUND).all()


# ----------------------------------------------------------------------- a scratch model


def test_scratch_model_every_tab(qtbot, page, models):
    load(qtbot, page, models.a)
    model = page.model
    assert model.classes == ["circle", "square", "triangle"]
    assert "shapes.pony" in page.model_label.text() and "3 classes" in page.model_detail.text()
    page.set_project(str(models.data), models.samples)
    assert page.strip_model.rowCount() == len(models.samples)
    page.class_combo.setCurrentIndex(page.class_combo.findData("square"))
    assert page.strip_model.rowCount() == 8
    third = page.strip.visualRect(page.strip_model.index(2)).center()
    qtbot.mouseClick(page.strip.viewport(), Qt.MouseButton.LeftButton, pos=third)  # the third square
    qtbot.waitUntil(lambda: page.image_path == models.samples[10][0], timeout=T)
    wait_prediction(qtbot, page)
    assert page.image.shape == (32, 32, 3)
    assert page.probabilities.shape == (3,) and abs(page.probabilities.sum() - 1) < 1e-4
    assert page.pred_rows[0][0].text() == model.classes[page.predicted]
    assert "labelled" in page.image_name.text() and "square" in page.image_name.text()

    # the layer table is the core's summary of the convolutions
    layers = E.conv_layers(model)
    assert [page.layer_table.item(r, 0).text() for r in range(page.layer_table.rowCount())] == [i.name for i in layers]
    assert page.layer_table.item(0, 2).text() == "×".join(map(str, layers[0].output_shape))

    # Filters: the first layer's kernels, one cell per filter; the chosen layer by channel
    page.tabs.setCurrentIndex(page.TAB_FILTERS)
    qtbot.waitUntil(lambda: current(page, "first_filters") and current(page, "layer_filters"), timeout=T)
    assert page.first_filters.shape == (layers[0].out_channels, 3, 3, 3)
    assert page.first_view.image() is not None
    page.select_layer(1)
    qtbot.waitUntil(lambda: current(page, "layer_filters"), timeout=T)
    assert page.chosen_filters.shape[0] == layers[1].out_channels and page.chosen_filters.shape[-1] == 1
    assert page.in_channel.isEnabled() and "averaged" in page.layer_filters_caption.text()
    page.in_channel.setValue(5)
    qtbot.waitUntil(lambda: current(page, "layer_filters"), timeout=T)
    np.testing.assert_allclose(page.chosen_filters, E.layer_filters(TrainedModel.load(models.a), 1, in_channel=5))

    # Response maps: one per channel of the chosen layer; a new layer, new maps; click = large
    page.select_layer(0)
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    assert page.maps.shape == layers[0].output_shape
    assert f"{layers[0].out_channels} channels" in page.maps_title.text()
    page.select_layer(1)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    assert page.maps.shape == layers[1].output_shape
    cols, pad, h, w = page._maps_geometry
    grid = page.maps_view.image()
    assert (grid.width(), grid.height()) == (cols * w + (cols - 1) * pad,
                                              -(-layers[1].out_channels // cols) * (h + pad) - pad)
    target = 3 if page.selected_map != 3 else 4
    r, c = divmod(target, cols)
    with qtbot.waitSignal(page.result_shown, check_params_cb=lambda v: v == "map", timeout=T):
        click_image_pixel(qtbot, page.maps_view, c * (w + pad) + w // 2, r * (h + pad) + h // 2)
    assert page.selected_map == target and f"Channel {target} of" in page.map_caption.text()
    assert page.map_overlay.image().size() == page.preview.image().size()

    # Saliency: three maps for the predicted class, each laid over the photo at its size
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    wait_saliency(qtbot, page, page.predicted)
    for name in ("gradients", "cam", "occlusion"):
        assert page.overlays[name].shape == page.image.shape, name
        assert page.panels[name].view.image() is not None
        assert model.classes[page.predicted] in page.panels[name].title.text()
    before = {k: v.copy() for k, v in page.overlays.items()}
    page.opacity.setValue(90)
    qtbot.waitUntil(lambda: any(not np.array_equal(page.overlays[k], before[k]) for k in before), timeout=T)
    # another class: every map is recomputed for it
    other = (page.predicted + 1) % 3
    heat_before = {k: v.copy() for k, v in page.heat.items()}
    i = page.target_combo.findData(other)
    page.target_combo.setCurrentIndex(i)
    page.target_combo.activated.emit(i)
    wait_saliency(qtbot, page, other)
    assert all(page._heat_ctx[k][2] == other for k in ("gradients", "cam", "occlusion"))
    assert not np.array_equal(page.heat["gradients"], heat_before["gradients"])
    assert model.classes[other] in page.cam_panel.title.text()

    # What filters look for: one picture per chosen filter, arriving one by one
    page.tabs.setCurrentIndex(page.TAB_MAXIMIZE)
    page.select_layer(0)
    page.max_channels.setText("2-4")
    page.max_steps.setValue(8)
    shown = []
    page.result_shown.connect(lambda v: shown.append(v) if v == "pattern" else None)
    page.max_start.click()
    assert page.maximizing and not page.max_start.isEnabled()
    qtbot.waitUntil(lambda: not page.maximizing, timeout=T)
    assert sorted(page.patterns) == [2, 3, 4] and shown == ["pattern"] * 3
    size = page.max_size.value()
    assert all(p.shape == (size, size, 3) and p.dtype == np.uint8 for p in page.patterns.values())
    assert page.max_list.count() == 3 and "Done" in page.max_status.text()
    page.max_channels.setText("2-40")
    page.max_start.click()
    assert "does not exist" in page.max_status.text() and not page.maximizing

    # Kernels: the playground gets the chosen image
    page.tabs.setCurrentIndex(page.TAB_KERNELS)
    qtbot.waitUntil(lambda: page.kernels.result_image() is not None, timeout=T)
    assert page.kernels.result_image().shape[:2] == page.image.shape[:2]

    # Embedding map: the project's samples; a click there opens the image here too
    page.tabs.setCurrentIndex(page.TAB_EMBEDDING)
    with qtbot.waitSignal(page.embedding.map_ready, timeout=T):
        page.embedding.compute()
    points = page.embedding.points()
    assert len(points) == len(models.samples)
    k = next(i for i, pt in enumerate(points) if pt.path != page.image_path)
    with qtbot.waitSignal(page.open_image_requested, timeout=T) as blocker:
        page.embedding.activate(k)
    assert blocker.args == [points[k].path]
    qtbot.waitUntil(lambda: page.image_path == points[k].path, timeout=T)


# -------------------------------------------------------------------------- bad input


def test_bad_files_give_messages_and_the_page_stays_usable(qtbot, page, models, tmp_path):
    broken = tmp_path / "broken.pony"
    broken.write_bytes(b"this is not a model")
    with qtbot.waitSignal(page.model_failed, timeout=T) as blocker:
        page.set_model_path(broken)
    assert "broken.pony" in blocker.args[0] and "broken.pony" in page.banner.text
    assert page.model is None and "Open a model" in page.maps_view.message()

    load(qtbot, page, models.a)
    assert page.banner.isHidden()
    good = page.model
    page.set_project(str(models.data), models.samples)
    wait_prediction(qtbot, page)
    # a damaged copy of a good file: refused, the model in use stays
    truncated = tmp_path / "truncated.pony"
    truncated.write_bytes(Path(models.a).read_bytes()[:5000])
    with qtbot.waitSignal(page.model_failed, timeout=T) as blocker:
        page.set_model_path(truncated)
    assert "truncated.pony" in blocker.args[0] and "still in use" in blocker.args[0]
    assert page.model is good and "shapes.pony" in page.model_label.text()
    # a text file named .png: a message naming it, the picture shown stays
    shown = page.image_path
    fake = tmp_path / "notes.png"
    fake.write_text("just words")
    page.set_image_path(fake)
    qtbot.waitUntil(lambda: "notes.png" in page.banner.text, timeout=T)
    assert page.image_path == shown and page._requested_path is None
    # still usable: maps and saliency come for the good model and image
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    wait_saliency(qtbot, page)


# ---------------------------------------------------------------- switching models, Stop


def test_switching_model_mid_computation_never_shows_stale_results(qtbot, page, models):
    """Model a works on 32 px inputs, model b on 24 px: a result of a shown while b is
    loaded would have the wrong size for b's input and layers."""
    load(qtbot, page, models.a)
    seen = watch_results(page)
    page.set_project(str(models.data), models.samples)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    wait_prediction(qtbot, page)
    qtbot.waitUntil(lambda: "occlusion" in page._asked, timeout=T)
    # a long filter maximisation is running too
    page.max_steps.setValue(1000)
    page.max_channels.setText("0-7")
    page.start_maximize()
    assert page.maximizing
    with qtbot.waitSignal(page.model_loaded, timeout=T):
        page.set_model_path(models.b)  # while saliency and patterns are being computed for a
    gen_b = page._model_key
    assert page.model.classes == ["circle", "square"] and page.model.image_size == 24
    assert not page.maximizing and page.patterns == {} and page.max_start.isEnabled()
    wait_prediction(qtbot, page)
    assert page.probabilities.shape == (2,)
    assert page.target_combo.count() == 2 + 2  # "Predicted", a separator, the two classes
    wait_saliency(qtbot, page)
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    assert page.heat["cam"].shape == (24, 24) and page.overlays["cam"].shape == page.image.shape
    assert {v for v, g, _ in seen if g == gen_b} == {"prediction", "gradients", "cam", "occlusion", "maps"}
    bad = [(v, g) for v, g, fits in seen if not fits]
    assert not bad, f"results shown for a model no longer loaded: {bad}"


@pytest.fixture(scope="module")
def cat_png(tmp_path_factory):
    skdata = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(path)
    return path


def test_imagenet_depthwise_filters_gradcam_stop_and_switch(qtbot, page, cat_png, models):
    load(qtbot, page, None)
    model = page.model
    assert len(model.classes) == 1000 and "ImageNet" in page.model_label.text()
    page.set_image_path(cat_png)
    wait_prediction(qtbot, page)
    assert "cat" in model.classes[page.predicted]
    assert page.image.shape == (300, 451, 3)

    # a depthwise layer: one 3x3 kernel per channel, no input-channel choice
    dw = next(i for i, info in enumerate(page.layers) if info.kind == "depthwise")
    page.tabs.setCurrentIndex(page.TAB_FILTERS)
    page.select_layer(dw)
    qtbot.waitUntil(lambda: current(page, "layer_filters") and current(page, "first_filters"), timeout=T)
    info = page.layers[dw]
    assert page.chosen_filters.shape == (info.out_channels, *info.kernel_size, 1)
    assert not page.in_channel.isEnabled() and "one kernel per channel" in page.layer_filters_caption.text()
    assert page.first_filters.shape == (32, 3, 3, 3)

    # Grad-CAM on the default layer (the head), at the photo's size; Stop the occlusion
    assert page.cam_combo.currentData() == E.default_cam_layer(model).module_path
    stopped: list[int] = []

    def stop_on_first_progress(value: int) -> None:
        if value > 0 and not stopped:
            stopped.append(value)
            page.occlusion_panel.stop_button.click()
    page.occlusion_panel.progress.valueChanged.connect(stop_on_first_progress)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    qtbot.waitUntil(lambda: current(page, "cam") and "cam" in page.overlays, timeout=T)
    assert page.overlays["cam"].shape == page.image.shape
    cam = page.heat["cam"]
    assert cam.shape == (224, 224) and cam.max() == pytest.approx(1.0)
    qtbot.waitUntil(lambda: bool(stopped) and not page._lanes["occlusion"].busy, timeout=T)
    assert "occlusion" not in page.heat and "occlusion" not in page._asked
    assert page.occlusion_panel.view.message() == "Stopped." and page.occlusion_panel.run_button.isVisible()
    assert page.occlusion_panel.progress.isHidden()

    # Stop the filter maximisation: the patterns made so far stay, nothing else comes
    page.tabs.setCurrentIndex(page.TAB_MAXIMIZE)
    page.max_channels.setText("0-7")
    page.max_steps.setValue(400)
    page.max_size.setValue(64)
    max_stopped: list[int] = []

    def stop_maximize(value: int) -> None:
        if value > 0 and not max_stopped:
            max_stopped.append(value)
            page.max_stop.click()
    page.max_progress.valueChanged.connect(stop_maximize)
    page.max_start.click()
    qtbot.waitUntil(lambda: bool(max_stopped) and not page._lanes["maximize"].busy, timeout=T)
    assert not page.maximizing and page.max_start.isEnabled() and not page.max_stop.isEnabled()
    assert len(page.patterns) < 8 and page.max_list.count() == len(page.patterns)
    assert "Stopped" in page.max_status.text()

    # Switch to a small model while the big one is still busy with maps and saliency: the
    # ImageNet results still on their way must never be shown for the new model.
    seen = watch_results(page)
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    page.select_layer(len(page.layers) - 1)
    qtbot.waitUntil(lambda: "maps" in page._asked, timeout=T)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    page.smooth_box.setChecked(True)
    page.set_target(int(np.argsort(-page.probabilities)[1]))
    assert {"gradients", "cam"} <= set(page._asked)
    with qtbot.waitSignal(page.model_loaded, timeout=T):
        page.set_model_path(models.a)
    gen_a = page._model_key
    page.set_image_path(cat_png)
    qtbot.waitUntil(lambda: page._ctx("cam") is not None and page._ctx("cam")[0] == gen_a, timeout=T)
    wait_saliency(qtbot, page)
    assert page.heat["cam"].shape == (32, 32) and page.overlays["cam"].shape == (300, 451, 3)
    bad = [(v, g) for v, g, fits in seen if not fits]
    assert not bad, f"results shown for a model no longer loaded: {bad}"


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A fine-tuned EfficientNet-Lite0 (head, then blocks 11-15), small and quick: 64 px."""
    root = tmp_path_factory.mktemp("explain-ft")
    data = make_shapes_dataset(root / "shapes", per_class=6, size=64)
    result = Trainer(TrainConfig(recipe="finetune", epochs=2, image_size=64, batch_size=8, augment=None,
                                 device="cpu")).fit(data)
    path = root / "ft.pony"
    result.model.save(path)
    return path, [(str(p), p.parent.name) for p in sorted(data.glob("*/*.png"))]


def test_finetuned_model_saliency_and_maps(qtbot, page, finetuned):
    """Explain works for a fine-tuned model too: prediction, the three saliency maps at the
    image's size, and response maps of a fine-tuned block's depthwise layer."""
    path, samples = finetuned
    load(qtbot, page, path)
    assert page.model.recipe == "finetune" and page.model.classes == ["circle", "square", "triangle"]
    page.set_project(str(path.parent), samples)
    page.set_image_path(samples[0][0])
    wait_prediction(qtbot, page)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    wait_saliency(qtbot, page)
    h, w = page.image.shape[:2]
    for name in ("gradients", "cam", "occlusion"):
        assert page.heat[name].shape == (h, w)
    top = next(i for i, info in enumerate(page.layers) if info.module_path.startswith("_blocks.15._depthwise"))
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    page.select_layer(top)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    assert page.maps.shape[0] == page.layers[top].out_channels


# ------------------------------------------------------------------ decoding, sessions


def count_decodes(monkeypatch) -> list[str]:
    """Every call of the core's one decoder, wherever it was imported from: the paths decoded."""
    import sys

    from ponyclassifier.core import images

    original = images.decode_image
    seen: list[str] = []

    def counting(source, *args, **kwargs):
        seen.append(str(source))
        return original(source, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("ponyclassifier") and getattr(module, "decode_image", None) is original:
            monkeypatch.setattr(module, "decode_image", counting)
    return seen


def test_choosing_an_image_decodes_it_once(qtbot, page, models, monkeypatch):
    """One decode feeds the preview, the prediction, the saliency and response maps and the
    kernel playground."""
    load(qtbot, page, models.a)
    seen = count_decodes(monkeypatch)
    path = models.samples[5][0]
    page.set_image_path(path)
    wait_prediction(qtbot, page)
    page.tabs.setCurrentIndex(page.TAB_SALIENCY)
    wait_saliency(qtbot, page)
    page.tabs.setCurrentIndex(page.TAB_MAPS)
    qtbot.waitUntil(lambda: current(page, "maps"), timeout=T)
    page.tabs.setCurrentIndex(page.TAB_KERNELS)
    qtbot.waitUntil(lambda: page.kernels.result_image() is not None, timeout=T)
    assert page.image_path == path and page.preview.image() is not None
    assert seen.count(path) == 1, seen
    # the input is the shared preprocessing's, byte for byte
    from ponyclassifier.core.preprocess import load_input

    assert (page._input == load_input(path, page.model.image_size, page.model.channels)).all()


def test_the_sessions_drive_the_page(qtbot, models):
    """The image list comes from the project session's rows with a class, refilled when the
    page is shown; the model from the model session, loaded when shown and handed back."""
    from ponyclassifier.core.session import ModelSession, ProjectSession

    session, sessions_models = ProjectSession(), ModelSession()
    loaded = []
    sessions_models.loaded.connect(loaded.append)
    page = ExplainPage(session, sessions_models)
    qtbot.addWidget(page)
    page.resize(1300, 850)
    try:
        session.open(str(models.data))
        rows = list(reversed(models.samples)) + [(str(models.data / "loose.png"), "")]
        session.set_rows(rows)
        sessions_models.want("Explain", str(models.a))
        assert page.samples == [] and page.model is None and not page.busy  # hidden: nothing read or loaded
        with qtbot.waitSignal(page.model_loaded, timeout=T):
            page.show()
        assert page.samples == sorted(models.samples)  # only rows with a class, by path
        assert loaded == ["Explain"] and sessions_models.model("Explain") is page.model
        assert sessions_models.state("Explain").path == str(models.a)
        wait_prediction(qtbot, page)
        assert page.image_path == sorted(models.samples)[0][0]
        # labelling changed while hidden: the list follows when shown again
        page.hide()
        session.notify_rows_changed(models.samples[:4])
        assert len(page.samples) == len(models.samples)
        page.show()
        assert page.samples == sorted(models.samples[:4])
        # another project: the picture of the last one is forgotten
        session.open(str(models.root))
        assert page.image is None and page.image_path is None and page.samples == []
        assert page.preview.message() == "Choose an image above"
        # the ImageNet network wanted: loaded at once while shown, the session knows it
        with qtbot.waitSignal(page.model_loaded, timeout=T):
            sessions_models.want("Explain", None)
        assert page.model.recipe == "imagenet" and sessions_models.state("Explain").path is None
    finally:
        page.shutdown()
