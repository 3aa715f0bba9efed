"""A model file is checked before it is trusted: every metadata field, the shapes and dtypes
it implies against the tensors the file holds, the weights' values, and its class names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch

from ponyclassifier.core import models as M
from ponyclassifier.core import trained as T
from ponyclassifier.core.modelfile import ModelFileError
from ponyclassifier.core.trained import TrainedModel, class_name_problem, class_names_problem

from .model_files import good_parts, small_model, write_raw

REPO_ROOT = Path(T.__file__).resolve().parents[2]


_GUARD = {"armed": False}


@pytest.fixture
def no_weights_no_network(monkeypatch):
    """Refusals must come from the header alone: while a file is being loaded (by
    :func:`refused`), reading tensor data or building a network anywhere but on the meta
    device fails the test."""
    real_load, real_build = safetensors.torch.load, M.build_model

    def no_load(*args, **kwargs):
        if _GUARD["armed"]:
            raise AssertionError("tensor data was read before the metadata was checked")
        return real_load(*args, **kwargs)

    def meta_only(cfg):
        if _GUARD["armed"] and str(torch.get_default_device()) != "meta":
            raise AssertionError("a real network was built before the file was checked")
        return real_build(cfg)

    monkeypatch.setattr(safetensors.torch, "load", no_load)
    monkeypatch.setattr(M, "build_model", meta_only)
    yield
    _GUARD["armed"] = False


def refused(path) -> str:
    _GUARD["armed"] = True
    try:
        with pytest.raises(ModelFileError) as info:
            TrainedModel.load(path)
    finally:
        _GUARD["armed"] = False
    reason = info.value.reason
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    return reason


def mutated(tmp_path, change, name="m.pony"):
    meta, tensors = good_parts()
    change(meta, tensors)
    return write_raw(tmp_path / name, meta, tensors)


def test_a_good_file_loads_and_round_trips(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.pony")
    back = TrainedModel.load(tmp_path / "m.pony")
    assert back.classes == ["cat", "dog", "pony"] and back.image_size == 16 and back.channels == 3
    # and a hand-written file of the same parts too (the helper writes what a save writes)
    meta, tensors = good_parts(model)
    assert TrainedModel.load(write_raw(tmp_path / "raw.pony", meta, tensors)).classes == back.classes


def set_path(meta, dotted, value):
    *parents, last = dotted.split(".")
    for p in parents:
        meta = meta[p]
    meta[last] = value


def drop_path(meta, dotted):
    *parents, last = dotted.split(".")
    for p in parents:
        meta = meta[p]
    del meta[last]


MALFORMED = {
    # a string where a list is expected must not become a list of letters
    "classes as text": ("classes", "abc", "the class list is not a list"),
    "widths as text": ("architecture.widths", "32", "block widths are not a list"),
    "classes as object": ("classes", {"a": 1}, "the class list is not a list"),
    "class count as text": ("architecture.num_classes", "3", "class count is not a whole number"),
    "class count as fraction": ("architecture.num_classes", 3.0, "class count is not a whole number"),
    "class count true": ("architecture.num_classes", True, "class count is not a whole number"),
    "class count huge": ("architecture.num_classes", 10**30, "outside 1-10000"),
    "class count negative": ("architecture.num_classes", -3, "outside 1-10000"),
    "hidden huge": ("architecture.hidden", 10**9, "hidden layer size 1000000000 is outside"),
    "hidden null": ("architecture.hidden", None, "hidden layer size is not a whole number"),
    "width huge": ("architecture.widths", [10**6], "block width 1000000 is outside"),
    "too many blocks": ("architecture.widths", [4] * 1000, "block widths are not a list of 1-8"),
    "padding 7": ("architecture.padding", 7, "padding 7 is outside 0-1"),
    "order junk": ("architecture.order", ["x"], "unknown block order"),
    "type junk": ("architecture.type", "resnet9000", "unknown network type 'resnet9000'"),
    "type nested": ("architecture.type", {"a": [1, {"b": None}]}, "unknown network type an object"),
    "recipe junk": ("recipe", 7, "unknown recipe a whole number"),
    "recipe mismatch": ("recipe", "transfer", "recipe 'transfer' does not use a scratch_cnn network"),
    "architecture list": ("architecture", [1, 2], "architecture is not a JSON object"),
    "input text": ("input", "16", "input is not a JSON object"),
    "input size huge": ("input.image_size", 100_000, "input image size 100000 is outside 8-1024"),
    "input size disagrees": ("input.image_size", 512, "input image size 512 differs from the network's 16"),
    "channels disagree": ("input.channels", 1, "input channels 1 differ from the network's 3"),
    "channels 2": ("architecture.in_channels", 2, "input channels are 2"),
    "network size tiny": ("architecture.image_size", 2, "image size 2 is outside 8-1024"),
    "dropout NaN": ("architecture.dropout", float("nan"), "dropout nan is outside"),
    "dropout 1": ("architecture.dropout", 1, "dropout 1.0 is outside"),
    "threshold Inf": ("unsure_threshold", float("inf"), "'not sure' threshold inf is outside"),
    "threshold text": ("unsure_threshold", "0.5", "'not sure' threshold is not a number"),
    "training text": ("training", "abc", "training is not a JSON object"),
    "metrics list": ("metrics", [["validation", 1]], "metrics is not a JSON object"),
    "history values": ("history", {"loss": 3}, "history 'loss' is not a list"),
    "created number": ("created", 12, "creation time is not text"),
    "normalization junk": ("normalization", {"mean": "abc", "std": [1]}, "normalization mean is not a list"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_fields_are_refused_with_one_line_before_anything_is_built(tmp_path, case,
                                                                             no_weights_no_network):
    where, value, expected = MALFORMED[case]
    path = mutated(tmp_path, lambda meta, _: set_path(meta, where, value))
    reason = refused(path)
    assert reason.startswith("damaged model file (") and expected in reason, reason


@pytest.mark.parametrize("where", ["classes", "recipe", "architecture", "input", "input.image_size",
                                   "input.channels", "architecture.num_classes", "architecture.widths",
                                   "architecture.hidden", "architecture.dropout", "architecture.type"])
def test_missing_fields_are_named(tmp_path, where, no_weights_no_network):
    reason = refused(mutated(tmp_path, lambda meta, _: drop_path(meta, where)))
    assert "is missing" in reason or "unknown network type" in reason, reason
    assert where.split(".")[-1] in reason or where == "architecture.type"


def test_optional_fields_may_be_absent_and_extra_keys_are_ignored(tmp_path):
    def change(meta, _):
        for key in ("unsure_threshold", "training", "metrics", "history", "normalization", "app_version"):
            meta.pop(key, None)
        meta["something_new"] = {"from": ["a", "later", "version"]}
        meta["architecture"]["extra"] = 1
    model = TrainedModel.load(mutated(tmp_path, change))
    assert model.unsure_threshold == T.default_unsure_threshold(3) and model.training == {}


def test_class_count_that_disagrees_with_the_names_is_refused(tmp_path, no_weights_no_network):
    reason = refused(mutated(tmp_path, lambda meta, _: set_path(meta, "architecture.num_classes", 4)))
    assert reason == "damaged model file (3 class names but the network has 4 outputs)"


def test_a_huge_head_or_class_count_asked_for_by_a_small_file_is_refused_from_the_header(
        tmp_path, no_weights_no_network):
    # metadata consistent with itself (so only the file's real tensors can refuse it)
    def huge(meta, _):
        meta["classes"] = [f"c{i}" for i in range(T.MAX_CLASSES)]
        meta["architecture"].update(num_classes=T.MAX_CLASSES, hidden=T.MAX_SCRATCH_HIDDEN,
                                    widths=[T.MAX_SCRATCH_WIDTH] * 5, image_size=1024)
        meta["input"]["image_size"] = 1024
    path = mutated(tmp_path, huge)
    assert path.stat().st_size < 1_000_000
    reason = refused(path)
    assert reason.startswith("does not match the expected architecture: "), reason


def test_wrong_tensor_shapes_are_refused_before_weights_load(tmp_path, no_weights_no_network):
    def change(_, tensors):
        tensors["classifier.5.weight"] = torch.zeros(4, 128)
    reason = refused(mutated(tmp_path, change))
    assert reason == ("does not match the expected architecture: "
                      "classifier.5.weight has shape (4, 128), expected (3, 128)")


LOAD_PROBE = textwrap.dedent(r"""
    import json, resource, sys
    from ponyclassifier.core.modelfile import ModelFileError
    from ponyclassifier.core.trained import TrainedModel

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        TrainedModel.load(sys.argv[1])
        outcome = "loaded"
    except ModelFileError as e:
        outcome = e.reason
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "peak_growth_kib": after - before}))
""")


def huge_ask(tmp_path, kind: str) -> Path:
    if kind == "lite0":  # a real transfer model (about 14 MB) asking for a 4096-unit head and 10,000 classes
        arch = M.arch_config("transfer", 2, 32)
        meta, tensors = good_parts(TrainedModel(M.build_model(arch).eval(), ["a", "b"], "transfer", arch, 32))
        meta["architecture"].update(num_classes=10_000, head_hidden=4096)
    else:  # a small scratch model asking for a 0.4 GB scratch network (a 256x8x8 -> 4096 -> 10,000 head)
        meta, tensors = good_parts()
        meta["architecture"].update(num_classes=10_000, hidden=4096, widths=[256] * 4, image_size=160)
        meta["input"]["image_size"] = 160
    meta["classes"] = [f"c{i}" for i in range(10_000)]
    return write_raw(tmp_path / f"{kind}.pony", meta, tensors)


def load_in_child(path: Path, root: Path = REPO_ROOT) -> dict:
    """Load in a fresh process (its peak RSS counts only the load), with the code under ``root``."""
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(path)], capture_output=True, text=True,
                         timeout=600, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
@pytest.mark.parametrize("kind", ["scratch", "lite0"])
def test_a_file_asking_for_a_huge_network_is_refused_without_allocating_it(tmp_path, kind):
    # Before: the loader built the asked-for network first (0.45 GB of scratch network, or a
    # 1280x4096x10000 head) and only then compared it with the file.
    path = huge_ask(tmp_path, kind)
    assert path.stat().st_size < 20 * 2**20
    result = load_in_child(path)
    assert result["outcome"].startswith("does not match the expected architecture"), result
    # The file's own parts are a few MB; 64 MiB leaves room for allocator noise, not for the network.
    assert result["peak_growth_kib"] < 64 * 1024, result


NON_FINITE = {
    "nan": ("classifier.5.bias", float("nan")),
    "inf": ("classifier.2.weight", float("inf")),
    "-inf": ("features.1.weight", float("-inf")),
    "nan running mean": ("features.3.running_mean", float("nan")),
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_non_finite_weights_are_refused(tmp_path, case):
    name, value = NON_FINITE[case]

    def change(_, tensors):
        tensors[name].view(-1)[0] = value
    reason = refused(mutated(tmp_path, change))
    assert reason.startswith(f"the model's weights are not all finite numbers ({name})"), reason


def test_negative_batchnorm_variance_is_refused(tmp_path):
    def change(_, tensors):
        tensors["features.3.running_var"][5] = -0.25
    reason = refused(mutated(tmp_path, change))
    assert reason == ("damaged model file (features.3.running_var holds a negative variance; "
                      "the model cannot predict anything)")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.uint8])
def test_weights_in_the_wrong_dtype_are_refused_not_converted(tmp_path, dtype, no_weights_no_network):
    def change(_, tensors):
        tensors["classifier.5.weight"] = tensors["classifier.5.weight"].to(dtype)
    reason = refused(mutated(tmp_path, change))
    name = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int32: "I32",
            torch.uint8: "U8"}[dtype]
    assert reason == ("weights stored in the wrong number type (not converted): "
                      f"classifier.5.weight is stored as {name}, expected F32")


def test_integer_counter_in_the_wrong_dtype_is_refused(tmp_path, no_weights_no_network):
    def change(_, tensors):
        tensors["features.3.num_batches_tracked"] = tensors["features.3.num_batches_tracked"].float()
    assert "features.3.num_batches_tracked is stored as F32, expected I64" in refused(mutated(tmp_path, change))


def test_cli_refuses_a_diverged_model_with_one_line_and_exit_1(tmp_path):
    def change(_, tensors):
        tensors["classifier.5.bias"][0] = float("nan")
    path = mutated(tmp_path, change)
    picture = tmp_path / "p.png"
    from PIL import Image
    Image.new("RGB", (20, 20), (200, 10, 10)).save(picture)
    for args in (["predict", str(path), str(picture)], ["info", str(path)]):
        out = subprocess.run([sys.executable, "-m", "ponyclassifier", *args], capture_output=True, text=True,
                             timeout=600, cwd=REPO_ROOT)
        assert out.returncode == 1 and "nan%" not in out.stdout and out.stdout == ""
        assert out.stderr.count("\n") == 1 and "not all finite numbers" in out.stderr


# --------------------------------------------------------------------------- class names

BAD_NAMES = {
    "escape": "cat\x1b[2J",
    "carriage return": "dog\rpony",
    "newline": "dog\nfake.jpg: cat (99.0%)",
    "bell": "a\x07",
    "delete": "a\x7f",
    "c1 control": "a\x9b2J",
    "bidi override": "gpj.\u202eexe",
    "bidi isolate": "a\u2067b",
    "line separator": "a\u2028b",
    "surrogate": "bad\udcff",
    "empty": "",
    "spaces": "   ",
    "too long": "x" * 256,
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_class_names_are_refused_at_load(tmp_path, case, no_weights_no_network):
    name = BAD_NAMES[case]
    path = mutated(tmp_path, lambda meta, _: set_path(meta, "classes", ["cat", name, "pony"]))
    reason = refused(path)
    assert reason.startswith("damaged model file (") and ("class name" in reason), reason
    # the reason itself never carries the raw character
    assert reason.isprintable() and reason.isascii()


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_class_names_are_refused_at_save(tmp_path, case):
    model = small_model()
    model.classes = ["cat", BAD_NAMES[case], "pony"]
    with pytest.raises(ModelFileError) as info:
        model.save(tmp_path / "m.pony")
    assert info.value.reason.startswith("cannot save model: ")
    assert not list(tmp_path.iterdir())


def test_duplicate_class_names_are_refused_also_once_normalised(tmp_path, no_weights_no_network):
    assert class_names_problem(["a", "b", "a"]) == "class name 'a' appears twice"
    # "é" composed and decomposed print alike and are one folder name on macOS
    assert class_names_problem(["caf\u00e9", "cafe\u0301"]) == "class name 'cafe\\u0301' appears twice (as 'caf\\xe9')"
    path = mutated(tmp_path, lambda meta, _: set_path(meta, "classes", ["caf\u00e9", "dog", "cafe\u0301"]))
    assert "appears twice" in refused(path)


def test_good_class_names_pass(tmp_path):
    # case-only differences print differently and can be two folders where the data was made
    names = ["Cat", "cat", "pony 🐴", "naïve", "👩\u200d🔬 scientist", "日本語", "a-b_c.d"]
    assert class_names_problem(names) is None
    model = small_model(classes=names)
    model.save(tmp_path / "m.pony")
    assert TrainedModel.load(tmp_path / "m.pony").classes == names
    assert class_name_problem("tab\tname") is not None


def test_cli_train_refuses_a_class_folder_with_a_control_character_before_reading_pictures(tmp_path):
    data = tmp_path / "data"
    for name in ("cat", "dog\x1b[2J"):
        (data / name).mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "ponyclassifier", "train", str(data), "--out",
                          str(tmp_path / "m.pony")], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert out.returncode == 2, out.stderr
    assert "\x1b" not in out.stderr and out.stderr.count("\n") == 1
    assert "dog\\x1b[2J: class name 'dog\\x1b[2J' holds a control character (U+001B)" in out.stderr


def test_cli_info_shows_metrics_of_unknown_shape_without_failing(tmp_path):
    def change(meta, _):
        meta["metrics"] = {"validation": {"accuracy": "high", "macro_f1": None}, "test": [1, 2]}
    out = subprocess.run([sys.executable, "-m", "ponyclassifier", "info", str(mutated(tmp_path, change))],
                         capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert "classes (3): cat, dog, pony" in out.stdout and "accuracy" not in out.stdout


def test_cli_predict_on_an_empty_folder_says_why(tmp_path):
    small_model().save(tmp_path / "m.pony")
    empty, notes = tmp_path / "empty", tmp_path / "notes"
    empty.mkdir()
    notes.mkdir()
    (notes / "readme.txt").write_text("no pictures here")
    for folder, why in ((empty, "(it is empty)"), (notes, "(1 text or sidecar file")):
        out = subprocess.run([sys.executable, "-m", "ponyclassifier", "predict", str(tmp_path / "m.pony"),
                              str(folder)], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
        assert out.returncode == 1 and out.stderr == ""
        assert out.stdout.startswith(f"{folder}: ERROR no pictures found in this folder {why}"), out.stdout


def test_copying_a_model_file_checks_it_first(tmp_path):
    from ponyclassifier.core import export as X

    bad = mutated(tmp_path, lambda meta, _: set_path(meta, "classes", ["cat", "dog\x1b[2J", "pony"]), "bad.pony")
    with pytest.raises(X.ExportError) as info:
        X.copy_model_file(bad, tmp_path / "copy.pony")
    assert "holds a control character (U+001B)" in str(info.value) and not (tmp_path / "copy.pony").exists()
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.pony"
        os.mkfifo(fifo)
        with pytest.raises(X.ExportError, match="not a regular file"):
            X.copy_model_file(fifo, tmp_path / "copy.pony")  # refused at once, never blocks on the pipe
    small_model().save(tmp_path / "good.pony")
    assert TrainedModel.load(X.copy_model_file(tmp_path / "good.pony", tmp_path / "copy.pony")).classes == [
        "cat", "dog", "pony"]


def test_cli_predict_shows_control_characters_in_file_names_escaped(tmp_path):
    from PIL import Image

    small_model().save(tmp_path / "m.pony")
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(folder / "x.png")
    os.rename(folder / "x.png", folder / "fake\rcat (99%)\x1b[2J.png")
    out = subprocess.run([sys.executable, "-m", "ponyclassifier", "predict", str(tmp_path / "m.pony"), str(folder)],
                         capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout and out.stdout.count("\n") == 1
    assert "fake\\rcat (99%)\\x1b[2J.png: " in out.stdout
