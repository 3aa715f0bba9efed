"""The augmentation preview: variants come from the training augmenter on a worker; the
controls change them; zero strengths give identical copies."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ponyclassifier.core.augment import AugmentConfig
from ponyclassifier.gui.dataset.augment_preview import STRENGTHS, QtAugmentPreview
from tests.conftest import draw_shape


def _image(tmp_path):
    rng = np.random.default_rng(3)
    p = tmp_path / "triangle.png"
    draw_shape("triangle", rng, size=96).save(p)
    return p


def _preview(qtbot, **kw) -> QtAugmentPreview:
    w = QtAugmentPreview(count=kw.pop("count", 6), image_size=64, tile=64, **kw)
    qtbot.addWidget(w)
    w.show()
    return w


def _bytes(images) -> list[bytes]:
    out = []
    for img in images:
        ptr = img.constBits()
        out.append(bytes(ptr)[: img.sizeInBytes()])
    return out


def _show(qtbot, w, path):
    with qtbot.waitSignal(w.variants_ready, timeout=20000) as blocker:
        w.set_image(path)
    return blocker.args[0]


def test_every_config_field_has_a_control(qtbot):
    w = _preview(qtbot)
    names = set(AugmentConfig().to_dict())
    assert {s.name for s in STRENGTHS} | {"horizontal_flip"} == names
    assert w.config() == AugmentConfig()
    cfg = AugmentConfig(rotation=35, width_shift=0.2, height_shift=0.05, shear=0, zoom=0.3,
                        horizontal_flip=False, brightness=0.4, contrast=0.1)
    w.set_config(cfg)
    assert w.config() == cfg


def test_zero_strengths_give_identical_copies_of_the_training_input(qtbot, tmp_path):
    path = _image(tmp_path)
    w = _preview(qtbot, config=AugmentConfig(0, 0, 0, 0, 0, False, 0, 0))
    assert _show(qtbot, w, path) == 6
    imgs = _bytes(w.variant_images())
    assert len(set(imgs)) == 1
    # the same pixels as the training preprocessing (squashed to the training size)
    want = np.asarray(Image.open(path).convert("RGB").resize((64, 64), Image.BILINEAR, reducing_gap=3.0))
    got = w.variant_images()[0]
    assert (got.width(), got.height()) == (64, 64)
    arr = np.frombuffer(imgs[0], np.uint8).reshape(64, got.bytesPerLine())[:, : 64 * 3].reshape(64, 64, 3)
    assert np.array_equal(arr, want)


def test_strengths_change_the_variants_and_reshuffle_draws_new_ones(qtbot, tmp_path):
    path = _image(tmp_path)
    w = _preview(qtbot)
    w.set_all_off()
    _show(qtbot, w, path)
    identical = _bytes(w.variant_images())
    assert len(set(identical)) == 1

    with qtbot.waitSignal(w.variants_ready, timeout=20000):
        w.spins["rotation"].setValue(40)  # debounced refresh
    rotated = _bytes(w.variant_images())
    assert len(set(rotated)) == len(rotated)  # every variant different
    assert identical[0] not in rotated
    assert w.config().rotation == 40

    with qtbot.waitSignal(w.variants_ready, timeout=20000):
        w.refresh()  # same seed, same strengths: the same variants
    assert _bytes(w.variant_images()) == rotated
    with qtbot.waitSignal(w.variants_ready, timeout=20000):
        w.reshuffle()
    assert _bytes(w.variant_images()) != rotated

    with qtbot.waitSignal(w.config_changed, timeout=2000) as changed:
        w.spins["brightness"].setValue(50)
    assert changed.args[0]["brightness"] == 0.5
    qtbot.waitUntil(lambda: not w.busy and not w._debounce.isActive(), timeout=20000)


def test_a_broken_file_shows_the_reason(qtbot, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    w = _preview(qtbot)
    with qtbot.waitSignal(w.variants_failed, timeout=20000) as blocker:
        w.set_image(bad)
    assert "unsupported" in blocker.args[0]
    assert "Can't augment" in w.status.text()
    assert w.variant_images() == []
