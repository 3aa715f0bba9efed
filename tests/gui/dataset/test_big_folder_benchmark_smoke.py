"""Smoke test of benchmarks/big_folder.py on a small folder: it runs both arms (first open,
settled baseline) in fresh processes through the real main window and reports its figures
in the expected structure.
Never asserts on the figures themselves (they depend on the machine)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_big_folder_benchmark_runs_both_arms(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "big_folder.py"), "--repeats", "1",
                           "--files", "200", "--import-files", "12", "--out", str(tmp_path), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["files"] == 200 and out["imported"] == 12
    assert sorted(t["arm"] for t in out["trials"]) == ["first", "settled"]
    for t in out["trials"]:
        keys = ("max_ms", "p99_ms", "p95_ms") + (("attached_s", "first_thumbnail_ms") if t["arm"] == "first" else ())
        for k in keys:
            assert math.isfinite(t[k]) and t[k] > 0, (k, t)
        assert t["max_ms"] >= t["p99_ms"] >= t["p95_ms"] and t["ticks"] > 5
    assert set(out["first_over_settled"]) == {"max_ms", "p99_ms", "p95_ms"}
    # every trial starts from the first-open state: the settled trial ran last, after a reset
    # removed the first trial's 12 imports, and it opened (made) the store again
    assert sum(1 for _ in (tmp_path / "project").rglob("*.png")) == 200
    assert (tmp_path / "project" / ".ponyclassifier").is_dir()
