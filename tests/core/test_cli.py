"""The command line, run as a user runs it (a subprocess), with its exact JSON interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import make_shapes_dataset


def run(*args, check=None, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-m", "ponyclassifier", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def trained_cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_shapes_dataset(root / "data", per_class=12, size=32)
    (data / "square" / "notes.png").write_text("this is text, not a picture")
    test = make_shapes_dataset(root / "test", per_class=4, size=32, seed=7)
    model = root / "shapes.pony"
    r = run("train", data, "--out", model, "--recipe", "scratch", "--epochs", "3", "--batch-size", "8",
            "--test-dir", test, "--no-augment", "--device", "cpu", "--seed", "1", "--json", check=0)
    return root, data, test, model, r


def test_train_json_lines(trained_cli):
    root, data, test, model, r = trained_cli
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    epochs, summary = lines[:-1], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second",
                "seconds"} <= e.keys()
    s = summary["summary"]
    assert s["model"] == str(model) and model.exists()
    assert 0 <= s["best_val_accuracy"] <= 1
    assert s["skipped_files"] == [{"path": str(data / "square" / "notes.png"),
                                   "reason": s["skipped_files"][0]["reason"]}]
    assert "unsupported" in s["skipped_files"][0]["reason"]
    assert s["test"]["count"] == 12 and 0 <= s["test"]["accuracy"] <= 1 and "macro_f1" in s["test"]


def test_train_human_output_has_progress_bar_with_eta_and_table(tmp_path):
    """On a terminal: a live bar with ETA and images/s on stderr, an epoch table on stdout."""
    import pty

    data = make_shapes_dataset(tmp_path / "d", per_class=20, size=32)
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "ponyclassifier", "train", str(data), "--out",
                          str(tmp_path / "m.pony"), "--recipe", "scratch", "--epochs", "3", "--batch-size", "4",
                          "--device", "cpu"],
                         stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    out = p.stdout.read()
    assert p.wait(timeout=600) == 0
    err = b"".join(chunks).decode(errors="replace")
    assert "ETA" in err and "img/s" in err and "epoch 3/3" in err
    assert "val acc" in out and "Best validation accuracy" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3


def test_evaluate_json(trained_cli):
    root, data, test, model, _ = trained_cli
    r = run("evaluate", model, test, "--json", check=0)
    d = json.loads(r.stdout)
    assert {"accuracy", "macro_f1", "classes", "per_class", "confusion_matrix", "skipped_files"} <= d.keys()
    assert d["classes"] == ["circle", "square", "triangle"]
    assert set(d["per_class"]["circle"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, d["confusion_matrix"])) == 12


def test_predict_json_files_folders_and_errors(trained_cli):
    root, data, test, model, _ = trained_cli
    bad = data / "square" / "notes.png"
    r = run("predict", model, test / "circle", bad, "--top-k", "2", "--json", check=0)
    out = json.loads(r.stdout)
    assert len(out) == 5
    good = [o for o in out if "error" not in o]
    assert len(good) == 4
    for o in good:
        assert set(o) == {"path", "label", "confidence", "top", "unsure"} and len(o["top"]) == 2
    assert [o for o in out if "error" in o][0]["path"] == str(bad)


def test_predict_imagenet_needs_no_model(tmp_path):
    from PIL import Image
    from skimage import data as skdata

    Image.fromarray(skdata.chelsea()).save(tmp_path / "cat.jpg")
    r = run("predict", "--imagenet", tmp_path / "cat.jpg", "--top-k", "5", "--json", check=0)
    top = json.loads(r.stdout)[0]["top"]
    assert any("cat" in label for label, _ in top)


def test_info_json(trained_cli):
    root, data, test, model, _ = trained_cli
    d = json.loads(run("info", model, "--json", check=0).stdout)
    assert d["recipe"] == "scratch" and d["classes"] == ["circle", "square", "triangle"]
    assert d["image_size"] == 32 and d["parameters"] > 0 and "test" in d["metrics"]


def test_demo_data(tmp_path):
    run("demo-data", tmp_path / "ponies", "--per-class", "2", "--seed", "3", check=0)
    folders = sorted(p.name for p in (tmp_path / "ponies").iterdir())
    assert folders == ["Applejack", "Fluttershy", "Pinkie Pie", "Rainbow Dash", "Rarity", "Twilight Sparkle"]
    assert all(len(list((tmp_path / "ponies" / f).iterdir())) == 2 for f in folders)


def test_usage_errors_exit_2(tmp_path):
    assert run("train", tmp_path).returncode == 2  # missing --out
    assert run("train", tmp_path, "--out", "m.pony", "--epochs", "zero").returncode == 2
    assert run("predict", "only-a-model.pony").returncode == 2
    assert run("frobnicate").returncode == 2


def test_failures_exit_1_with_one_clear_line(tmp_path):
    fake = tmp_path / "model.pony"
    fake.write_bytes(b"\x80\x04K\x01.")  # a pickle
    r = run("info", fake)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(fake) in lines[0] and "Traceback" not in r.stderr
    r = run("--debug", "info", fake)
    assert r.returncode == 1 and "Traceback" in r.stderr

    one = make_shapes_dataset(tmp_path / "one", per_class=3, classes=("circle",))
    r = run("train", one, "--out", tmp_path / "x.pony")
    assert r.returncode == 1 and "only one class" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_existing_model_is_never_overwritten_without_asking(trained_cli, tmp_path):
    root, data, test, model, _ = trained_cli
    before = model.read_bytes()
    r = run("train", data, "--out", model, "--epochs", "1")
    assert r.returncode == 2 and "already exists" in r.stderr
    assert model.read_bytes() == before


def test_augmentation_strength_flags(tmp_path):
    """--no-flip and the strength options reach the training config stored in the model."""
    from ponyclassifier.core.trained import TrainedModel

    data = make_shapes_dataset(tmp_path / "data", per_class=4, size=24)
    model = tmp_path / "m.pony"
    run("train", data, "--out", model, "--recipe", "scratch", "--epochs", "1", "--device", "cpu", "--no-flip",
        "--rotation", "5",
        "--zoom", "0", "--shift", "0.05", "--json", check=0)
    aug = TrainedModel.load(model).training["augment"]
    assert aug["horizontal_flip"] is False and aug["rotation"] == 5 and aug["zoom"] == 0
    assert aug["width_shift"] == aug["height_shift"] == 0.05 and aug["shear"] == 10  # untouched: default
    r = run("train", data, "--out", tmp_path / "x.pony", "--no-augment", "--no-flip")
    assert r.returncode == 2 and "--no-augment" in r.stderr and "--no-flip" in r.stderr
    assert run("train", data, "--out", tmp_path / "x.pony", "--rotation", "400").returncode == 2
    assert not (tmp_path / "x.pony").exists()


def test_a_diverging_run_exits_1_with_the_cause_and_writes_no_model(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=6, size=24)
    model = tmp_path / "m.pony"
    r = run("train", data, "--out", model, "--recipe", "scratch", "--epochs", "2", "--lr", "1e30", "--device", "cpu")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ponyclassifier train: error: Training diverged in epoch 1")
    assert "learning rate (1e+30) is probably too high" in last
    assert not model.exists() and not list(tmp_path.glob("*.tmp*"))


def test_every_auto_choice_is_printed_with_its_reason(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=8, size=32)
    r = run("train", data, "--out", tmp_path / "m.pony", "--epochs", "1", "--device", "cpu", "--image-size", "32",
            "--json", check=0)
    said = r.stderr
    # no recipe given: the app's suggestion (a small set: the pretrained network)
    assert "recipe: auto: transfer (24 small pictures" in said
    for name in ("learning rate", "batch size", "augmentation", "validation share", "refit on all images"):
        assert f"{name}: auto: " in said, name
    assert "epochs: 1 (as set)" in said and "head: auto: " in said
    summary = json.loads(r.stdout.strip().splitlines()[-1])["summary"]
    assert summary["recipe"] == "transfer" and summary["plan"]["epochs"] == {"value": 1, "auto": False,
                                                                         "reason": "as set"}
    assert summary["plan"]["batch size"]["auto"] and summary["refit_epochs"] == 1 and summary["head"]
