"""The look-alikes panel on real photos: exact and near-duplicate pairs, delete/keep,
find similar, cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ponyclassifier.core.project import Project
from ponyclassifier.gui.dataset.similar import QtSimilarPanel

skdata = pytest.importorskip("skimage.data")


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


@pytest.fixture
def photo_project(tmp_path) -> Path:
    """Two classes of real photos with an identical copy, a re-saved copy and a resized JPEG."""
    root = tmp_path / "photos"
    (root / "animals").mkdir(parents=True)
    (root / "things").mkdir()
    cat = _photo("chelsea")
    cat.save(root / "animals" / "cat.png")
    cat.resize((cat.width * 2 // 3, cat.height * 2 // 3)).save(root / "animals" / "cat_small.jpg", quality=80)
    _photo("horse").save(root / "animals" / "horse.png")
    _photo("astronaut").save(root / "things" / "astronaut.png")
    _photo("coffee").save(root / "things" / "coffee.png")
    _photo("rocket").save(root / "things" / "rocket.png")
    (root / "things" / "rocket copy.png").write_bytes((root / "things" / "rocket.png").read_bytes())
    _photo("coffee").save(root / "animals" / "coffee_resaved.png", compress_level=1)  # same pixels
    (root / "things" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and ".ponyclassifier" not in p.parts)


def _panel(qtbot, gui_env) -> QtSimilarPanel:
    w = QtSimilarPanel(cache_dir=gui_env / "thumbs", thumb_size=96)
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    return w


def _pairs(w) -> set[tuple[frozenset, str]]:
    return {(frozenset((Path(p.a).name, Path(p.b).name)), p.kind) for p in w.visible_pairs()}


def test_scan_shows_exact_and_near_pairs_with_thumbnails(qtbot, gui_env, photo_project):
    w = _panel(qtbot, gui_env)
    with qtbot.waitSignal(w.scan_finished, timeout=60000) as blocker:
        w.scan(_files(photo_project))
    assert blocker.args == [2, 1]
    assert _pairs(w) == {(frozenset(("rocket.png", "rocket copy.png")), "same file"),
                         (frozenset(("coffee.png", "coffee_resaved.png")), "same pixels"),
                         (frozenset(("cat.png", "cat_small.jpg")), "near")}
    assert "1 file(s) could not be read" in w.status.text()
    rows = {frozenset((Path(r.pair.a).name, Path(r.pair.b).name)): r for r in w.rows}
    near = rows[frozenset(("cat.png", "cat_small.jpg"))]
    assert near.pair.similarity >= 0.95 and "% similar" in near.pair.caption
    assert "Identical files" in rows[frozenset(("rocket.png", "rocket copy.png"))].pair.caption
    # file names and sizes under each thumbnail; the thumbnails arrive from the worker pool
    texts = [t.text.text() for t in near.thumbs]
    assert any("cat.png" in s for s in texts) and all("KB" in s for s in texts)
    qtbot.waitUntil(lambda: all(t.image.pixmap() is not None and not t.image.pixmap().isNull()
                                for r in w.rows for t in r.thumbs), timeout=20000)
    assert not w.busy and not w.progress.isVisible()


def test_delete_goes_through_the_host_and_keep_both_hides_the_pair(qtbot, gui_env, photo_project):
    project = Project(photo_project)
    project.sync()
    w = _panel(qtbot, gui_env)

    def delete(paths):  # what the main window does
        project.delete(paths)
        w.forget_paths(paths)

    w.delete_requested.connect(delete)
    with qtbot.waitSignal(w.scan_finished, timeout=60000):
        w.scan(_files(photo_project))
    row = next(r for r in w.rows if r.pair.kind == "same file")
    doomed = row.pair.b
    with qtbot.waitSignal(w.delete_requested) as blocker:
        row.delete_b.click()
    assert blocker.args[0] == [doomed]
    assert not Path(doomed).exists()
    assert Path(doomed).name not in {Path(r["relpath"]).name for r in project.store.images()}
    assert all(doomed not in (p.a, p.b) for p in w.visible_pairs())
    assert doomed not in w.index.paths
    project.undo()
    assert Path(doomed).exists()

    near = next(r for r in w.rows if r.pair.kind == "near")
    with qtbot.waitSignal(w.pair_kept):
        near.keep.click()
    assert all(p.kind != "near" for p in w.visible_pairs())
    assert len(w.visible_pairs()) == 1
    project.close()


def test_find_similar_scans_first_and_puts_the_cat_first(qtbot, gui_env, photo_project, tmp_path):
    crop = tmp_path / "cat_face.png"
    _photo("chelsea").crop((100, 20, 300, 220)).save(crop)
    w = _panel(qtbot, gui_env)
    w.set_paths(_files(photo_project))
    with qtbot.waitSignal(w.similar_found, timeout=60000) as blocker:
        w.find_similar(crop, k=3)
    query, results = blocker.args
    assert query == str(crop)
    assert {Path(p).name for p, _ in results[:2]} == {"cat.png", "cat_small.jpg"}
    assert results[0][1] >= results[1][1] >= results[2][1]
    assert "Most similar to" in w.similar_title.text()
    # the strip: the query and three results, each with its similarity
    shown = [w.similar_row.itemAt(i).widget() for i in range(w.similar_row.count())]
    captions = [s.text.text() for s in shown if hasattr(s, "text")]
    assert len(captions) == 4 and sum("% similar" in c for c in captions) == 3
    # a second query reuses the index (no new scan)
    with qtbot.waitSignal(w.similar_found, timeout=20000) as blocker:
        w.find_similar(str(photo_project / "things" / "coffee.png"), k=1)
    assert Path(blocker.args[1][0][0]).name == "coffee_resaved.png"


def test_threshold_change_relists_near_pairs(qtbot, gui_env, photo_project):
    w = _panel(qtbot, gui_env)
    with qtbot.waitSignal(w.scan_finished, timeout=60000):
        w.scan(_files(photo_project))
    with qtbot.waitSignal(w.scan_finished, timeout=20000) as blocker:
        w.threshold.setValue(1.0)
    assert blocker.args == [2, 0]


def test_cancel_stops_the_scan(qtbot, gui_env, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(150):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    w = _panel(qtbot, gui_env)
    with qtbot.waitSignal(w.scan_cancelled, timeout=60000):
        w.scan(_files(folder), batch_size=4)
        qtbot.waitUntil(lambda: w.progress.value() > 0, timeout=20000)
        w.cancel_button.click()
    assert w.index is None and not w.busy and w.scan_button.isEnabled()
