"""Runs belong to the project: the engine trains on the project's split (its validation
images, its left-out pictures, its test folder), and `ponyclassifier train PROJECT` records
the run in the project's store, where `ponyclassifier runs` (and the app) list it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ponyclassifier.core.callbacks import epoch_score
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.project import Project
from ponyclassifier.core.runs import RUN_COLUMNS, ProjectSplit, models_dir, project_split
from ponyclassifier.core.store import ProjectStore

from ..conftest import make_shapes_dataset
from .test_cli import run


def _project(tmp_path: Path, fraction: float = 0.3, seed: int = 5) -> tuple[Path, Path]:
    root = make_shapes_dataset(tmp_path / "shapes", per_class=10, size=32)
    test = make_shapes_dataset(tmp_path / "elsewhere", per_class=3, size=32, seed=9)
    with Project(root) as p:
        p.sync()
        p.make_splits(fraction, seed)
        p.set_test_folder(test)
    return root, test


def _val_rows(root: Path) -> set[str]:
    with ProjectStore(root, read_only=True) as s:
        return {r["relpath"] for r in s.images() if r["split"] == "val"}


def test_the_engine_validates_on_exactly_the_projects_validation_images_and_leaves_out_bad_ones(tmp_path):
    root, _ = _project(tmp_path)
    with Project(root) as p:
        bad = sorted(r["relpath"] for r in p.store.images() if r["split"] == "train")[0]
        p.set_statuses({bad: ("bad", "marked by hand for the test")})
        split = project_split(p.store)
    val = _val_rows(root)
    assert split.val == frozenset(val) and split.left_out == {bad}
    assert (split.val_fraction, split.seed) == (0.3, 5) and split.images == 29
    assert len(val) == 9  # 30% of each of three classes of 10
    result = Trainer(TrainConfig(recipe="scratch", epochs=1, image_size=32, refit=False)).fit(root, split=split)
    validated = {Path(p["path"]).relative_to(root).as_posix() for p in result.val_predictions}
    assert validated == val
    assert result.model.training["val_images"] == 9 and result.model.training["train_images"] == 20
    d = result.plan.val_split
    assert not d.auto and d.value == np.float64(9 / 29) and "seed 5" in d.reason


def test_a_split_with_no_validation_images_trains_on_every_used_image(tmp_path):
    root = make_shapes_dataset(tmp_path / "shapes", per_class=4, size=32)
    split = ProjectSplit(frozenset(), frozenset(), 12)
    result = Trainer(TrainConfig(recipe="scratch", epochs=1, image_size=32)).fit(root, split=split)
    assert result.model.training["train_images"] == 12 and result.model.training["val_images"] == 0


def test_train_on_a_project_records_the_run_and_runs_lists_it(tmp_path):
    root, test = _project(tmp_path)
    r = run("train", root, "--recipe", "scratch", "--epochs", "2", "--image-size", "32", "--json", check=0)
    summary = json.loads(r.stdout.strip().splitlines()[-1])["summary"]
    # no --out: the model goes to the project's models folder, named by the run
    assert summary["run_id"] == 1 and summary["model"] == str(models_dir(root.resolve()) / "run-1.pony")
    assert Path(summary["model"]).is_file()
    assert summary["val_images"] == len(_val_rows(root)) == 9  # the project's split, not a new one
    assert summary["test"]["count"] == 9  # the project's test folder
    assert f"test folder: {test.resolve()} (the project's)" in r.stderr
    assert summary["plan"]["validation share"]["reason"] == "the project's split: 30% of each class, seed 5"

    with ProjectStore(root, read_only=True) as s:
        (recorded,) = s.runs()
        curves = s.run_curves(recorded.id)
    assert recorded.status == "finished" and recorded.recipe == "scratch"
    assert recorded.model_path == summary["model"]
    assert recorded.settings["source"] == "command line"
    assert recorded.settings["split"]["val_fraction"] == 0.3 and recorded.settings["test_dir"] == str(test.resolve())
    assert recorded.metrics["epochs_run"] == 2 and [c["epoch"] for c in curves] == [1, 2]
    assert recorded.val_accuracy is not None and recorded.test_f1 is not None

    listed = json.loads(run("runs", root, "--json", check=0).stdout)
    assert len(listed) == 1 and list(listed[0]) == list(RUN_COLUMNS)
    row = listed[0]
    assert (row["id"], row["recipe"], row["status"], row["epochs"], row["model"]) == \
        (1, "scratch", "finished", 2, summary["model"])
    assert row["val_f1"] == recorded.val_f1 and row["test_f1"] == recorded.test_f1
    assert row["difference"] == recorded.f1_gap
    text = run("runs", root, check=0).stdout.splitlines()
    assert text[0].split()[:5] == ["id", "recipe", "started", "status", "epochs"]
    assert text[1].split()[:2] == ["1", "scratch"] and text[1].endswith(summary["model"])

    # a second run with --out elsewhere is recorded too, with its own model path
    out = tmp_path / "second.pony"
    run("train", root, "--recipe", "scratch", "--epochs", "1", "--image-size", "32", "--out", out, check=0)
    listed = json.loads(run("runs", root, "--json", check=0).stdout)
    assert [r["id"] for r in listed] == [1, 2] and listed[1]["model"] == str(out)


def test_a_project_refuses_a_validation_share_of_its_own_and_runs_needs_a_project(tmp_path):
    root, _ = _project(tmp_path)
    r = run("train", root, "--recipe", "scratch", "--val-split", "0.5", "--out", tmp_path / "m.pony", check=2)
    assert "its own split" in r.stderr and not (tmp_path / "m.pony").exists()
    plain = make_shapes_dataset(tmp_path / "plain", per_class=2, size=32)
    r = run("runs", plain, check=2)
    assert "not a project" in r.stderr
    assert not (plain / ".ponyclassifier").exists()  # listing never creates a store


def test_a_failed_run_on_a_project_is_recorded_as_failed_with_its_cause(tmp_path):
    root, _ = _project(tmp_path)
    r = run("train", root, "--recipe", "scratch", "--epochs", "2", "--image-size", "32", "--lr", "1e30", check=1)
    with ProjectStore(root, read_only=True) as s:
        (recorded,) = s.runs()
    assert recorded.status == "failed" and "learning rate" in recorded.metrics["error"]
    assert "learning rate" in r.stderr


def test_the_best_epoch_rule_is_one_function_the_engine_and_the_panel_share(tmp_path):
    nan = math.nan
    better = epoch_score({"val_accuracy": 0.8, "val_loss": 0.5})
    assert better > epoch_score({"val_accuracy": 0.7, "val_loss": 0.1})  # accuracy first
    assert epoch_score({"val_accuracy": 0.8, "val_loss": 0.4}) > better  # then the lower loss among equals
    assert epoch_score({"val_accuracy": 0.8, "val_loss": nan}) < better
    # no validation images: the lowest training loss
    assert epoch_score({"val_accuracy": nan, "val_loss": nan, "train_loss": 0.3}) > \
        epoch_score({"val_accuracy": nan, "val_loss": nan, "train_loss": 0.6})
    assert epoch_score({"val_accuracy": nan, "train_loss": nan}) is None
    # the engine keeps the epoch the rule picks
    root = make_shapes_dataset(tmp_path / "shapes", per_class=6, size=32)
    r = Trainer(TrainConfig(recipe="scratch", epochs=3, image_size=32, refit=False)).fit(root)
    scores = [epoch_score({k: r.history[k][i] for k in ("val_accuracy", "val_loss", "train_loss")})
              for i in range(r.epochs_run)]
    assert r.best_epoch == 1 + max(range(len(scores)), key=lambda i: scores[i])
