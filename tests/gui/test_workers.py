"""The one worker module: short jobs, the newest-wins lane, the dedicated thread, thumbnails."""

from __future__ import annotations

import threading

from PIL import Image

from ponyclassifier.gui import workers


def test_a_lane_calls_back_only_for_its_newest_job(qtbot):
    lane = workers.Lane()
    release = threading.Event()
    heard = []

    def slow(state):
        release.wait(10)
        return "old"

    lane.submit(slow, on_finished=heard.append, on_failed=lambda m, tb: heard.append(m))
    first = lane.job
    newest = lane.submit(lambda state: "new", on_finished=heard.append)
    assert first.cancelled and lane.job is newest
    qtbot.waitUntil(lambda: heard == ["new"], timeout=10000)
    release.set()  # the replaced job ends now, with a result nobody hears
    qtbot.waitUntil(lambda: first not in workers._live_jobs, timeout=10000)  # noqa: SLF001
    qtbot.wait(50)
    assert heard == ["new"] and not lane.busy


def test_the_lane_is_free_when_its_job_calls_back(qtbot):
    lane = workers.Lane()
    seen = []
    lane.submit(lambda state: 1, on_finished=lambda r: seen.append(lane.busy))
    qtbot.waitUntil(lambda: seen == [False], timeout=10000)


def test_a_result_already_on_its_way_is_dropped_when_the_lane_is_cancelled(qtbot):
    lane = workers.Lane()
    done = threading.Event()
    heard = []

    def quick(state):
        done.set()
        return 1

    lane.submit(quick, on_finished=heard.append, on_progress=lambda d, t: heard.append((d, t)))
    done.wait(10)
    lane.cancel()  # the job has returned; its finished signal is queued for the GUI thread
    qtbot.wait(200)
    assert heard == []


def test_the_dedicated_worker_runs_in_order_on_one_thread_and_keeps_only_the_newest_waiting(qtbot):
    w = workers.DedicatedWorker("test")
    gate = threading.Event()
    threads, heard = [], []

    def job(name, wait=False):
        def run(state):
            threads.append(threading.get_ident())
            if wait:
                gate.wait(10)
            return name
        return run

    w.submit(job("first", wait=True), on_finished=heard.append, replace_pending=True)
    for name in ("a", "b", "c"):  # frames arriving while the first is still read
        w.submit(job(name), on_finished=heard.append, replace_pending=True)
    assert w.busy and w.pending is not None
    gate.set()
    qtbot.waitUntil(lambda: heard == ["first", "c"] and not w.busy, timeout=10000)
    # a queue when asked for one: every job runs, in order, on the same thread
    for name in ("x", "y", "z"):
        w.submit(job(name), on_finished=heard.append)
    qtbot.waitUntil(lambda: heard[-3:] == ["x", "y", "z"], timeout=10000)
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()
    assert w.shutdown(5000)
    assert w.submit(job("late"), on_finished=heard.append) is None


def test_a_failure_on_the_dedicated_thread_reaches_the_gui_thread(qtbot):
    w = workers.DedicatedWorker("test")
    failed = []

    def boom(state):
        raise ValueError("no such picture")

    w.submit(boom, on_failed=lambda message, tb: failed.append((message, "ValueError" in tb)))
    qtbot.waitUntil(lambda: failed == [("no such picture", True)], timeout=10000)
    w.shutdown(5000)


def test_one_thumbnail_cache_holds_every_size(qtbot, tmp_path):
    src = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(src)
    cache = tmp_path / "cache"
    workers.thumbnail_service().set_cache_dir(cache)
    try:
        got = {}
        for size in (64, 128):
            loader = workers.ThumbnailLoader(size=size)
            assert loader.cache_dir == str(cache)
            with qtbot.waitSignal(loader.thumbnail_ready, timeout=10000) as sig:
                loader.request_thumbnail(str(src))
            got[size] = sig.args[1]
        assert max(got[64].width(), got[64].height()) == 64
        assert max(got[128].width(), got[128].height()) == 128
        assert len(list(cache.rglob("*.jpg"))) == 2  # one entry per size, in one cache
    finally:
        workers.thumbnail_service().set_cache_dir(None)
