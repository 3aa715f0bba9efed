"""A 20,000-image project in the real main window: does the event loop stay responsive?

The app is opened on a fresh 20,000-image class folder (no store, no thumbnail cache: the
first open, the hardest), exactly as File > Open Folder does it: the folder is listed on a
worker while a second worker creates and syncs the project store and gives every image a
split. The grid is then scrolled end to end, a class is picked and 500 pictures are
imported into it while scrolling goes on. A 10 ms timer on the GUI thread
(``tests/gui/latency.py``'s StallMeter) records every gap between its ticks.

Each trial runs in a fresh process, alternating two arms in the same run:

- ``first``: the whole sequence above, measured from the moment the folder is opened;
- ``settled``: the baseline: the same window and project, opened first and left to
  settle (unmeasured), then only the same scrolling and class pick, measured (thumbnails
  are decoded as they come into view, as in ``first``: the thumbnail cache starts empty
  in every trial). This is how smooth the grid is on this machine with no listing, store
  work or import going on.

Reported per arm (median over trials): time until the store is attached, first
thumbnail, and the event loop's longest, 99th and 95th percentile gap; and the ratios
first / settled: what opening, syncing and importing into 20,000 images add to the
event loop's gaps.

Usage (from the repository root)::

    python benchmarks/big_folder.py                 # 3 trials per arm
    python benchmarks/big_folder.py --repeats 5 --json

Working files go to ``bench-out/big_folder/`` (``--out``). Runs offscreen unless
QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("a", "b", "c", "d")


def make_folder(root: Path, n_files: int, n_import: int) -> None:
    from PIL import Image

    if (root / "ready").exists() and (root / "ready").read_text() == f"{n_files} {n_import}":
        return
    shutil.rmtree(root, ignore_errors=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, format="PNG")
    data = buf.getvalue()
    for c in CLASSES:
        (root / "project" / c).mkdir(parents=True)
        for i in range(n_files // len(CLASSES)):
            (root / "project" / c / f"{c}_{i:05d}.png").write_bytes(data)
    (root / "incoming").mkdir()
    for i in range(n_import):
        (root / "incoming" / f"new_{i:04d}.png").write_bytes(data)
    (root / "ready").write_text(f"{n_files} {n_import}")


def reset(root: Path) -> None:
    """Back to a first open: no store, no imported files."""
    from ponyclassifier.core.store import STORE_DIR

    shutil.rmtree(root / "project" / STORE_DIR, ignore_errors=True)
    for p in (root / "project").rglob("new_*"):
        p.unlink()
    os.sync()  # the kernel writes the folder out now, not during the measured open


def watch_stalls(meter, out: list[str], after_s: float = 0.08) -> None:
    """Where the GUI thread was when it had not ticked for ``after_s``: a daemon thread
    samples its Python stack (and its CPU time) every 10 ms into ``out``."""
    import threading
    import traceback

    gui = threading.get_ident()
    native = threading.get_native_id()

    def cpu_ms() -> float:
        try:
            f = open(f"/proc/self/task/{native}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return float("nan")

    def run() -> None:
        seen = None
        while True:
            time.sleep(0.01)
            last = meter._last
            late = time.perf_counter() - last
            if late > after_s and meter.timer.isActive():
                frame = sys._current_frames().get(gui)
                where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"
                                   for f in reversed(traceback.extract_stack(frame)[-6:])) if frame else "?"
                if seen != (last, where):
                    seen = (last, where)
                    out.append(f"{1000 * late:.0f} ms late (GUI thread CPU {cpu_ms():.0f} ms so far): {where}")

    threading.Thread(target=run, daemon=True).start()


def trial(root: Path, arm: str, stacks: bool = False) -> dict:
    n_files, n_import = map(int, (root / "ready").read_text().split())
    """One fresh process: the main window, open, scroll, import; the gaps."""
    import gc

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["PONYCLASSIFIER_DATA_DIR"] = str(root / f"appdata-{os.getpid()}")  # empty thumbnail cache
    sys.path.insert(0, str(REPO))
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ponyclassifier.gui.app import configure_application
    from tests.gui.latency import StallMeter

    app = QApplication([])
    configure_application(app)
    app.setOrganizationName("PonyClassifierBenchmark")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(root / f"settings-{os.getpid()}"))
    from ponyclassifier.gui.main_window import MainWindow

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(pred, timeout: float = 120) -> None:
        t = time.monotonic()
        while not pred():
            wait(10)
            if time.monotonic() - t > timeout:
                raise TimeoutError("the project did not open in time")

    project = root / "project"
    w = MainWindow()
    w.resize(1300, 850)
    w.show()
    wait(1500)  # the window's first paint and the lazily built places
    b = w.browser
    first_thumb: list[float] = []
    b.model.thumbnail_arrived.connect(lambda path: first_thumb or first_thumb.append(time.perf_counter()))
    if arm == "settled":  # open, sync and let it settle first, unmeasured
        w.open_project(project)
        wait_until(lambda: b.project is not None and not b.listing and not b.busy and b.model.file_count() == n_files)
        wait_until(lambda: not b.loader.busy)
        wait(500)
    gc.collect()
    gc.freeze()
    meter = StallMeter()
    stalls: list[str] = []
    if stacks:
        watch_stalls(meter, stalls)
    meter.start()
    t0 = time.perf_counter()
    if arm == "first":
        w.open_project(project)
        wait_until(lambda: b.project is not None and not b.listing and not b.busy and b.model.file_count() == n_files)
    attached = time.perf_counter() - t0
    for row in range(0, n_files, max(1, n_files // 20)):
        b.view.scrollTo(b.model.index(row))
        wait(15)
    b.select_class("a")
    wait(50)
    if arm == "first" and not b.import_files(sorted(str(p) for p in (root / "incoming").iterdir()), "a"):
        raise RuntimeError("the import did not start")
    for row in range(0, n_files // len(CLASSES), max(1, n_files // 40)):
        b.view.scrollTo(b.model.index(min(row, b.model.rowCount() - 1)))
        wait(15)
    wait_until(lambda: not b.busy and b.model.file_count() == n_files + (n_import if arm == "first" else 0))
    wait_until(lambda: not b.loader.busy)
    meter.stop()
    gaps = sorted(1000 * g for g in meter.gaps)
    out = {"arm": arm, "attached_s": attached,
           "first_thumbnail_ms": 1000 * (first_thumb[0] - t0) if first_thumb and first_thumb[0] >= t0 else None,
           "max_ms": gaps[-1], "p99_ms": meter.percentile_ms(99), "p95_ms": meter.percentile_ms(95),
           "ticks": len(gaps), "load": os.getloadavg()[0], "stalls": stalls}
    w.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="trials per arm (default 3)")
    ap.add_argument("--files", type=int, default=20_000, help="images in the project (default 20,000)")
    ap.add_argument("--import-files", type=int, default=500, help="pictures imported while scrolling (default 500)")
    ap.add_argument("--out", default=str(REPO / "bench-out" / "big_folder"))
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--stacks", action="store_true",
                    help="print where the GUI thread was during gaps over 80 ms (adds a sampling thread)")
    ap.add_argument("--trial", choices=["first", "settled"], help=argparse.SUPPRESS)  # one trial, in this process
    args = ap.parse_args(argv)
    root = Path(args.out)
    if args.trial:
        print("RESULT " + json.dumps(trial(root, args.trial, args.stacks)), flush=True)
        os._exit(0)  # skip interpreter teardown of Qt objects: nothing more to measure
    sys.path.insert(0, str(REPO))
    make_folder(root, args.files, args.import_files)
    results: list[dict] = []
    for i in range(args.repeats):
        for arm in (("first", "settled") if i % 2 == 0 else ("settled", "first")):
            reset(root)
            proc = subprocess.run([sys.executable, __file__, "--trial", arm, "--out", str(root),
                                   *(["--stacks"] if args.stacks else [])],
                                  capture_output=True, text=True, timeout=600)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"trial {arm} failed (exit {proc.returncode})")
            r = json.loads(line[len("RESULT "):])
            results.append(r)
            if not args.json:
                thumb = f"{r['first_thumbnail_ms']:.0f} ms" if r["first_thumbnail_ms"] is not None else "-"
                print(f"  {arm:7}  store attached {r['attached_s']:.2f} s, first thumbnail {thumb}; gaps max "
                      f"{r['max_ms']:.0f} / p99 {r['p99_ms']:.0f} / p95 {r['p95_ms']:.0f} ms over {r['ticks']} ticks "
                      f"(load {r['load']:.2f})", flush=True)
                for line in r["stalls"]:
                    print(f"           {line}")
    summary = {}
    for arm in ("first", "settled"):
        rs = [r for r in results if r["arm"] == arm]
        summary[arm] = {k: statistics.median(r[k] for r in rs) for k in ("max_ms", "p99_ms", "p95_ms")}
        summary[arm]["worst_max_ms"] = max(r["max_ms"] for r in rs)
    for k in ("attached_s", "first_thumbnail_ms"):
        summary["first"][k] = statistics.median(r[k] for r in results if r["arm"] == "first")
    ratios = {k: summary["first"][k] / summary["settled"][k] for k in ("max_ms", "p99_ms", "p95_ms")}
    if args.json:
        print(json.dumps({"files": args.files, "imported": args.import_files, "trials": results, "median": summary,
                          "first_over_settled": ratios, "cpus": os.cpu_count()}, indent=2))
        return 0
    f, b = summary["first"], summary["settled"]
    print(f"\n{args.files:,} images in the main window, {args.repeats} trial(s) per arm, {os.cpu_count()} CPUs")
    print(f"  first open, scrolling, {args.import_files} imported: median max gap {f['max_ms']:.0f} ms "
          f"(worst {f['worst_max_ms']:.0f}), p99 {f['p99_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms; store attached "
          f"{f['attached_s']:.2f} s, first thumbnail {f['first_thumbnail_ms']:.0f} ms")
    print(f"  settled, the same scrolling:   median max gap {b['max_ms']:.0f} ms (worst {b['worst_max_ms']:.0f}), "
          f"p99 {b['p99_ms']:.0f} ms, p95 {b['p95_ms']:.0f} ms")
    print(f"  first / settled: max gap x{ratios['max_ms']:.2f}, p99 x{ratios['p99_ms']:.2f}, p95 x{ratios['p95_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
