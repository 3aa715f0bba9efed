"""The Predict place's worker bodies, without Qt: a request's chunks, the live inference
(pacing Grad-CAM, steadying, "not sure"), the live counters."""

from __future__ import annotations

import numpy as np
import pytest

from ponyclassifier.core.predict import Predictor
from ponyclassifier.gui.predict import jobs, live_infer
from ponyclassifier.gui.predict.live_stats import LiveCounter
from tests.conftest import draw_shape


@pytest.fixture(scope="module")
def model(trained_shapes):
    return trained_shapes(per_class=16, size=32, epochs=2).model


def test_predict_batches_chunks_cards_and_stops(model, tmp_path):
    rng = np.random.default_rng(1)
    files = []
    for i in range(7):
        p = tmp_path / f"p{i}.png"
        draw_shape(("circle", "square", "triangle")[i % 3], rng, 40).save(p)
        files.append(str(p))
    (tmp_path / "bad.png").write_text("no picture")
    loaded = jobs.LoadedModel(model, Predictor(model, device="cpu"), None)
    out = list(jobs.predict_batches(loaded, [str(tmp_path)], max_cards=3, max_chunk=4, cancelled=lambda: False))
    assert out[0] == ("total", 8)
    rows = [r for kind, value in out if kind == "rows" for r in value]
    assert [k for k, _ in out[1:]] == ["rows", "progress"] * 2 and out[-1] == ("progress", (8, 8))
    assert [r.source for r in rows] == sorted([*files, str(tmp_path / "bad.png")])
    expected = {p.path: p for p in loaded.predictor.predict_paths(files, top_k=3)}
    for i, r in enumerate(rows):
        if r.source.endswith("bad.png"):
            assert r.prediction.error and r.picture is None and r.input is None
            continue
        assert r.prediction.label == expected[r.source].label
        assert (r.picture is not None) == (r.input is not None) == (i < 3)  # cards keep the one decode
    stopped = list(jobs.predict_batches(loaded, files, 3, 4, cancelled=lambda: True))
    assert stopped == []


def test_live_inference_paces_grad_cam_and_steadies(model):
    engine = live_infer.LiveEngine(model)
    frame = np.asarray(draw_shape("circle", np.random.default_rng(2), 48))
    pacer = live_infer.CamPacer()
    first = live_infer.infer(engine, frame, want_cam=True, pacer=pacer)
    assert first.probs.shape == (3,) and abs(float(first.probs.sum()) - 1) < 1e-4
    assert first.heat is not None and pacer.next_at > 0
    second = live_infer.infer(engine, frame, want_cam=True, pacer=pacer)  # at once: too soon for another
    assert second.heat is None and second.probs is not None
    pacer.next_at = 0.0  # the heat map switched on again
    assert live_infer.infer(engine, frame, want_cam=True, pacer=pacer).heat is not None
    assert live_infer.infer(None, frame).probs is None  # no model: no answer

    a, b = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    s = live_infer.steadied(live_infer.steadied(None, a), b)
    assert s[0] == pytest.approx(1 - live_infer.STEADY_WEIGHT) and s[1] == pytest.approx(live_infer.STEADY_WEIGHT)
    ans = live_infer.answer(np.array([0.2, 0.5, 0.3], np.float32), ["a", "b", "c"], threshold=0.6)
    assert ans.label == "b" and ans.unsure and [c for c, _ in ans.top] == ["b", "c", "a"]
    assert not live_infer.answer(np.array([0.2, 0.6, 0.2]), ["a", "b", "c"], threshold=0.6).unsure


def test_live_counter():
    c = LiveCounter()
    for t in (1.0, 1.1, 1.2):
        c.frame(t)
    c.submitted(1.0)
    c.answered(1.3, 50.0, 10.0)
    c.dropped += 1
    st = c.stats
    assert (st.frames_seen, st.frames_predicted, st.frames_dropped) == (3, 1, 1)
    assert st.mean_latency_ms == 50.0 and st.mean_inference_ms == 10.0
    assert st.camera_fps == pytest.approx(10.0) and st.predictions_per_second == pytest.approx(1 / 0.3)
    assert "Stopped · 1 answers for 3 frames" in c.rates_text(running=False, with_model=True)


def test_the_worker_bodies_import_without_qt():
    import subprocess
    import sys

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('PySide6', 'pyqtgraph'):\n"
            "            raise ImportError('Qt is blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import ponyclassifier.gui.predict.jobs, ponyclassifier.gui.predict.live_infer\n"
            "import ponyclassifier.gui.predict.live_stats, ponyclassifier.gui.predict.teach\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
