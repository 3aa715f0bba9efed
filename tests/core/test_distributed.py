"""``torchrun --nproc_per_node=2 -m ponyclassifier train ...``: two CPU processes (gloo)
learn what one process learns, one model file is written, and only one process prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ponyclassifier.core.trained import TrainedModel

from ..conftest import make_shapes_dataset

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")


def train(args: list, *, processes: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "ponyclassifier", "train", *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "ponyclassifier", "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("ddp") / "shapes", per_class=14, size=32)


def test_two_processes_learn_what_one_process_learns(data, tmp_path):
    # transfer with a linear head and no dropout: the same steps on the same images give the
    # same weights (dropout masks would differ between one process and two)
    common = ["--recipe", "transfer", "--image-size", "32", "--epochs", "3", "--batch-size", "8", "--dropout", "0",
              "--head", "linear", "--device", "cpu", "--seed", "3", "--json"]
    two = train([data, "--out", tmp_path / "two.pony", *common], processes=2)
    assert two.returncode == 0, two.stderr[-3000:]
    one = train([data, "--out", tmp_path / "one.pony", *common], processes=1)
    assert one.returncode == 0, one.stderr[-3000:]
    # one process printed: three epoch lines and one summary, as one process does
    lines = json_lines(two.stdout)
    assert [l["epoch"] for l in lines if "epoch" in l] == [1, 2, 3] and sum("summary" in l for l in lines) == 1
    summary = lines[-1]["summary"]
    assert summary["processes"] == 2 and summary["refit_epochs"] >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.pony", "two.pony"]  # no temp files left
    a, b = TrainedModel.load(tmp_path / "two.pony"), TrainedModel.load(tmp_path / "one.pony")
    assert a.training["processes"] == 2 and b.training["processes"] == 1
    sa, sb = a.network.state_dict(), b.network.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k].float(), sb[k].float(), rtol=1e-4, atol=1e-5, msg=k)
    one_lines = [l for l in json_lines(one.stdout) if "epoch" in l]
    for x, y in zip((l for l in lines if "epoch" in l), one_lines):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        assert x["val_accuracy"] == pytest.approx(y["val_accuracy"])


def test_scratch_trains_under_torchrun_and_writes_one_valid_model(data, tmp_path):
    out = tmp_path / "scratch.pony"
    r = train([data, "--out", out, "--recipe", "scratch", "--epochs", "2", "--device", "cpu", "--json"], processes=2)
    assert r.returncode == 0, r.stderr[-3000:]
    model = TrainedModel.load(out)
    assert model.classes == ["circle", "square", "triangle"] and model.training["processes"] == 2
    assert sum("summary" in l for l in json_lines(r.stdout)) == 1


def test_a_diverging_run_fails_on_every_process_and_writes_nothing(data, tmp_path):
    out = tmp_path / "nan.pony"
    r = train([data, "--out", out, "--recipe", "scratch", "--epochs", "2", "--lr", "1e30", "--device", "cpu"],
              processes=2)
    assert r.returncode != 0
    assert "diverged in epoch 1" in r.stderr and "learning rate" in r.stderr
    assert not out.exists()
