"""Smoke test of the benchmark (benchmarks/compare.py --quick --json).

Checks only that the benchmark runs end to end on tiny real data and reports its
numbers in the expected structure. It never asserts on speed ratios or accuracies:
those depend on the machine and on a 1-epoch toy run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benchmarks" / "compare.py"

pytest.importorskip("sklearn")
pytest.importorskip("skimage")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(COMPARE), "--quick", "--json", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_meta(quick_result):
    m = quick_result["meta"]
    assert m["quick"] is True
    for k in ("date", "torch", "cpu_count", "device"):
        assert k in m


def test_scratch_part_has_product_and_plain_rows(quick_result):
    parts = quick_result["scratch"]
    assert [p["dataset"]["name"] for p in parts] == ["digits", "faces"]
    for part in parts:
        assert part["dataset"]["train_images"] > 0 and part["dataset"]["test_images"] > 0
        assert [r["kind"] for r in part["rows"]] == ["product", "plain"]
        for r in part["rows"]:
            assert r["epochs"] == 1
            assert _number(r["images_per_second"]) and r["images_per_second"] > 0
            assert _number(r["test_accuracy"]) and 0 <= r["test_accuracy"] <= 1
            assert r["test_count"] == part["dataset"]["test_images"]
            assert _number(r["train_seconds"])
            assert isinstance(r["command"], list) and r["command"]
        product = part["rows"][0]
        # the defaults: the command sets the epochs (as the plain loop's) and nothing else of training
        assert not {"--no-augment", "--augment", "--lr", "--batch-size", "--val-split", "--refit",
                    "--image-size"} & set(product["command"])
        assert "train" in product["command"] and "--test-dir" in product["command"]
        c = part["comparison"]
        assert _number(c["images_per_second_ratio"]) and _number(c["test_accuracy_diff_points"])
        assert isinstance(c["meets_bar"], bool)


def test_transfer_part_compares_with_the_linear_baseline(quick_result):
    parts = quick_result["transfer"]
    assert [p["dataset"]["name"] for p in parts] == ["digits", "faces"]
    for part in parts:
        product, base = part["rows"]
        assert product["recipe"] == "transfer" and base["kind"] == "baseline"
        assert any("linear_baseline.py" in x for x in base["command"])
        for r in (product, base):
            assert _number(r["test_accuracy"]) and r["test_count"] == part["dataset"]["test_images"]
        for k in ("total_seconds", "prepare_seconds", "feature_seconds", "epoch_seconds", "evaluate_seconds"):
            assert _number(product[k]) and product[k] >= 0, k
        assert product["head"]
        c = part["comparison"]
        assert _number(c["test_accuracy_diff_points"]) and isinstance(c["meets_bar"], bool)
    table = subprocess.run([sys.executable, str(COMPARE), "--render", "-"], input=json.dumps(quick_result),
                           capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "digits" in table.stdout and "B transfer" in table.stdout


def test_datasets_are_deterministic_class_folders(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import data as bench_data
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    a = bench_data.write_dataset("digits", tmp_path / "a", quick=True)
    b = bench_data.write_dataset("digits", tmp_path / "b", quick=True)
    files_a = sorted(p.relative_to(a.train_dir.parent) for p in a.train_dir.parent.rglob("*.png"))
    files_b = sorted(p.relative_to(b.train_dir.parent) for p in b.train_dir.parent.rglob("*.png"))
    assert files_a == files_b and files_a
    assert all((a.train_dir.parent / f).read_bytes() == (b.train_dir.parent / f).read_bytes() for f in files_a)
    assert sorted(p.name for p in a.train_dir.iterdir()) == [str(i) for i in range(10)]
    assert a.test_dir.is_dir() and a.test_images > 0
