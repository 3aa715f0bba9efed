"""Reliability tests for the .pony model file: hostile input, damage, mismatch, devices, atomicity."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponyclassifier.core import modelfile
from ponyclassifier.core.modelfile import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    MODEL_SUFFIX,
    ModelFileError,
    ModelHeader,
    cleanup_stale_temp_files,
    load_model_file,
    read_header,
    save_model_file,
)

REPO_ROOT = Path(modelfile.__file__).resolve().parents[2]


def small_tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "backbone.conv.weight": torch.randn(4, 3, 3, 3),
        "head.weight": torch.randn(3, 4),
        "head.bias": torch.randn(3),
    }


SMALL_SHAPES = {name: tuple(t.shape) for name, t in small_tensors().items()}


def write_good(path: Path) -> bytes:
    save_model_file(path, small_tensors(), {"classes": ["cat", "dog", "pony"]})
    return path.read_bytes()


def raw_file(header: dict, data: bytes = b"", header_len: int | None = None) -> bytes:
    """A hand-built safetensors file, so tests can state exactly what a hostile header says."""
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob) if header_len is None else header_len) + blob + data


def one_tensor(dtype, shape, offsets, data_len: int) -> bytes:
    return raw_file({**ours(), "w": {"dtype": dtype, "shape": shape, "data_offsets": offsets}}, b"\0" * data_len)


def ours(**overrides) -> dict:
    meta = {"ponyclassifier": "{}", "format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    meta.update(overrides)
    return {"__metadata__": meta}


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ponytmp"))


@pytest.fixture
def forbid_weight_loading(monkeypatch):
    """Any attempt to read tensor data fails the test: refusals must come from the header alone."""

    def fail(*args, **kwargs):
        pytest.fail("weights were read although the file should be refused from its header")

    for name in ("load", "load_file", "safe_open"):
        monkeypatch.setattr(safetensors.torch, name, fail, raising=False)
    monkeypatch.setattr(safetensors, "safe_open", fail)


# --------------------------------------------------------------------------- round trip


def test_round_trip_preserves_metadata_and_tensors_exactly(tmp_path):
    tensors = {
        "f32": torch.randn(5, 7),
        "f16": torch.randn(3, 2).half(),
        "i64": torch.arange(-5, 5, dtype=torch.int64) * (2**40),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(2.5),
    }
    metadata = {
        "classes": ["Café", "日本", "pony 🐴"],
        "recipe": {"lr": 1e-3, "epochs": 3, "augment": {"flip": True, "crop": [224, 224]}, "note": None},
    }
    path = tmp_path / f"model{MODEL_SUFFIX}"
    save_model_file(path, tensors, metadata)

    meta, loaded = load_model_file(path, expected={k: tuple(v.shape) for k, v in tensors.items()})
    assert {k: meta[k] for k in metadata} == metadata
    assert meta["format"] == FORMAT_NAME and meta["format_version"] == FORMAT_VERSION
    created = datetime.fromisoformat(meta["created"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=5)
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)

    header = read_header(path)
    assert isinstance(header, ModelHeader)
    assert header.metadata == meta
    assert header.tensors["f16"] == ("F16", (3, 2))
    assert header.tensors["i64"] == ("I64", (10,))
    assert header.tensors["scalar"] == ("F32", ())
    # It stays a plain safetensors file that other tools can read.
    assert torch.equal(safetensors.torch.load_file(path)["f32"], tensors["f32"])


def test_error_message_shape_and_picklable():
    err = ModelFileError("/x/m.pony", "damaged model file (test)")
    assert str(err) == "/x/m.pony: damaged model file (test)"
    assert (err.path, err.reason) == ("/x/m.pony", "damaged model file (test)")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.reason == err.reason


def test_file_whose_length_prefix_starts_with_pickle_byte_still_loads(tmp_path):
    # A length whose low byte is 0x80 must not be mistaken for a pickle's PROTO opcode.
    path = tmp_path / "m.pony"
    for pad in range(400):
        save_model_file(path, small_tensors(), {"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("could not produce a header length with low byte 0x80")
    meta, _ = load_model_file(path, expected=SMALL_SHAPES)
    assert len(meta["pad"]) == pad


# --------------------------------------------------------------------------- case 1: pickles


class Payload:
    """Unpickling this creates a directory: the proof that code ran."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _pickle_bytes(kind: str, target: Path, scratch: Path) -> bytes:
    if kind.startswith("protocol"):
        return pickle.dumps({"state_dict": Payload(target)}, protocol=int(kind[-1]))
    out = scratch / f"{kind}.pt"
    torch.save({"state_dict": Payload(target)}, out, _use_new_zipfile_serialization=(kind == "torch-zip"))
    return out.read_bytes()


PICKLE_KINDS = [f"protocol{p}" for p in range(pickle.HIGHEST_PROTOCOL + 1)] + ["torch-zip", "torch-legacy"]


@pytest.mark.parametrize("kind", PICKLE_KINDS)
def test_pickle_payload_is_refused_and_never_runs(tmp_path, monkeypatch, kind):
    # Control: the same payload really does execute when unpickled.
    control = tmp_path / "control-sentinel"
    control_file = tmp_path / "control.bin"
    control_file.write_bytes(_pickle_bytes(kind, control, tmp_path))
    if kind.startswith("torch"):
        torch.load(control_file, weights_only=False)
    else:
        pickle.loads(control_file.read_bytes())
    assert control.exists(), "payload is not live; the test would prove nothing"

    sentinel = tmp_path / "sentinel"
    path = tmp_path / f"downloaded{MODEL_SUFFIX}"
    path.write_bytes(_pickle_bytes(kind, sentinel, tmp_path))

    def no_unpickling(*args, **kwargs):
        pytest.fail("the model loader tried to unpickle")

    with monkeypatch.context() as m:
        for name in ("load", "loads", "Unpickler"):
            m.setattr(pickle, name, no_unpickling)
        m.setattr(torch, "load", no_unpickling)
        for call in (read_header, load_model_file):
            with pytest.raises(ModelFileError) as info:
                call(path)
            assert info.value.reason == (
                "this is a pickle/PyTorch checkpoint, not a PonyClassifier model; "
                "it was not opened (pickles can run code)"
            )
    assert not sentinel.exists()


# --------------------------------------------------------------------------- case 2: damage


def _damaged_cases(good: bytes) -> dict[str, tuple[bytes, str]]:
    header_len = struct.unpack("<Q", good[:8])[0]
    return {
        "empty": (b"", "empty file, not a PonyClassifier model"),
        "three-bytes": (b"abc", "damaged model file (header length"),
        "truncated-half": (good[: len(good) // 2], "damaged model file"),
        "truncated-in-header": (good[:40], "damaged model file (header length"),
        "truncated-one-byte": (good[:-1], "damaged model file (size does not match its header)"),
        "padded-one-byte": (good + b"\0", "damaged model file (size does not match its header)"),
        "padded-4k": (good + os.urandom(4096), "damaged model file (size does not match its header)"),
        "huge-header-length": (b"\xff" * 8 + good[8:], "damaged model file (header length"),
        "header-length-past-eof": (struct.pack("<Q", 2**20) + good[8:], "damaged model file (header length"),
        "garbage-header": (struct.pack("<Q", 16) + b"{not json at all" + good[8 + header_len:],
                           "damaged model file (header is not valid JSON)"),
        "invalid-utf8": (struct.pack("<Q", 8) + b"{\xff\xfe\xfd}   ", "damaged model file (header is not valid JSON)"),
        "json-array": (struct.pack("<Q", 8) + b"[1, 2]  ", "damaged model file (header is not valid JSON)"),
        "deep-nesting": (struct.pack("<Q", 200_006) + b'{"a":' + b"[" * 200_001,
                         "damaged model file (header is not valid JSON)"),
        "not-ours": (safetensors.torch.save({"w": torch.ones(2)}),
                     "not a PonyClassifier model file (no PonyClassifier metadata)"),
        "other-metadata": (safetensors.torch.save({"w": torch.ones(2)}, metadata={"format": "pt"}),
                           "not a PonyClassifier model file (no PonyClassifier metadata)"),
        "metadata-not-json": (raw_file(ours(ponyclassifier="{oops")), "damaged model file (PonyClassifier metadata"),
        "metadata-not-object": (raw_file(ours(ponyclassifier="[1]")), "damaged model file (PonyClassifier metadata"),
        "version-not-number": (raw_file(ours(format_version="one")), "damaged model file (format version"),
        "unknown-dtype": (one_tensor("F128", [1], [0, 16], 16), "unknown dtype"),
        "unhashable-dtype": (one_tensor(["F32"], [1], [0, 4], 4), "unknown dtype"),
        "negative-shape": (one_tensor("F32", [-1], [0, 4], 4), "invalid shape"),
        "bool-shape": (one_tensor("F32", [True], [0, 4], 4), "invalid shape"),
        "float-offsets": (one_tensor("F32", [1], [0, 4.0], 4), "invalid data offsets"),
        "reversed-offsets": (one_tensor("U8", [0], [4, 0], 4), "data offsets"),
        "huge-shape": (one_tensor("F32", [2**40, 2**40], [0, 4], 4), "data offsets that do not fit its shape"),
        "overlapping": (raw_file({**ours(),
                                  "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                                 b"\0" * 12), "overlaps or has gaps"),
        "entry-not-object": (raw_file({**ours(), "w": 5}), "has no description"),
    }


def test_damaged_files_are_refused_with_reason(tmp_path):
    good = write_good(tmp_path / "good.pony")
    for name, (content, reason) in _damaged_cases(good).items():
        path = tmp_path / f"{name}.pony"
        path.write_bytes(content)
        for call in (read_header, load_model_file):
            with pytest.raises(ModelFileError) as info:
                call(path)
            assert reason in info.value.reason, (name, info.value.reason)


def test_header_length_over_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.pony"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", MAX_HEADER_BYTES + 8) + b"{")
        f.truncate(MAX_HEADER_BYTES + 4096)  # sparse: the length is otherwise plausible
    with pytest.raises(ModelFileError, match=r"damaged model file \(header length"):
        read_header(path)


def test_not_a_regular_file_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read model file"):
        read_header(tmp_path / "missing.pony")
    with pytest.raises(ModelFileError):
        load_model_file(tmp_path)
    if hasattr(os, "mkfifo"):  # opening a FIFO for reading would block forever without O_NONBLOCK
        fifo = tmp_path / "fifo.pony"
        os.mkfifo(fifo)
        with pytest.raises(ModelFileError, match="not a regular file"):
            load_model_file(fifo)


_GOOD_SMALL = None


def _good_small() -> bytes:
    global _GOOD_SMALL
    if _GOOD_SMALL is None:
        with tempfile.TemporaryDirectory() as folder:
            _GOOD_SMALL = write_good(Path(folder) / "m.pony")
    return _GOOD_SMALL


@settings(max_examples=400, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), max_size=6),
    cut=st.none() | st.integers(min_value=0),
    tail=st.binary(max_size=32),
)
def test_corrupted_files_load_or_raise_model_file_error_only(flips, cut, tail):
    data = bytearray(_good_small())
    for position, xor in flips:
        data[position % len(data)] ^= xor
    if cut is not None:
        del data[cut % (len(data) + 1):]
    data += tail
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.pony"
        path.write_bytes(bytes(data))
        try:
            header = read_header(path)
        except ModelFileError:
            header = None
        try:
            meta, tensors = load_model_file(path)
        except ModelFileError:
            return
        assert header is not None and meta == header.metadata
        assert {k: tuple(v.shape) for k, v in tensors.items()} == {k: s for k, (_, s) in header.tensors.items()}


# --------------------------------------------------------------------------- case 3: mismatch


def test_wrong_class_count_is_refused_before_weights_load(tmp_path, forbid_weight_loading):
    path = tmp_path / "m.pony"
    save_model_file(path, small_tensors(), {"classes": ["a", "b", "c"]})
    expected = dict(SMALL_SHAPES, **{"head.weight": (5, 4), "head.bias": (5,)})
    with pytest.raises(ModelFileError) as info:
        load_model_file(path, expected=expected)
    assert info.value.reason == (
        "does not match the expected architecture: "
        "head.weight has shape (3, 4), expected (5, 4); head.bias has shape (3,), expected (5,)"
    )


def test_wrong_architecture_lists_first_differences(tmp_path, forbid_weight_loading):
    path = tmp_path / "m.pony"
    save_model_file(path, small_tensors(), {})
    expected = {"stem.weight": (8, 3, 3, 3), "blocks.0.weight": (8, 8), "head.weight": (3, 4), "head.bias": (5,)}
    with pytest.raises(ModelFileError) as info:
        load_model_file(path, expected=expected)
    reason = info.value.reason
    assert reason.startswith("does not match the expected architecture: missing stem.weight; missing blocks.0.weight")
    assert reason.endswith("; head.bias has shape (3,), expected (5,); and 1 more")  # the unexpected backbone


def test_newer_format_version_is_refused_before_weights_load(tmp_path, forbid_weight_loading):
    path = tmp_path / "future.pony"
    future = json.dumps({"classes": ["a"], "format_version": 2})
    path.write_bytes(raw_file({**ours(ponyclassifier=future, format_version="2"),
                               "w": {"dtype": "Q4_FANCY", "shape": [1], "data_offsets": [0, 1]}}, b"\0"))
    for call in (read_header, load_model_file):
        with pytest.raises(ModelFileError) as info:
            call(path)
        assert info.value.reason == (
            "made by a newer PonyClassifier (model format 2, this version reads up to 1); please update"
        )


def test_matching_architecture_loads(tmp_path):
    path = tmp_path / "m.pony"
    save_model_file(path, small_tensors(), {})
    _, tensors = load_model_file(path, expected=SMALL_SHAPES)
    assert torch.equal(tensors["head.bias"], small_tensors()["head.bias"])


# --------------------------------------------------------------------------- case 4: devices, odd tensors


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("source_device", DEVICES)
def test_odd_tensors_save_and_load_on_cpu(tmp_path, source_device):
    base = torch.randn(6, 8, device=source_device)
    param = torch.nn.Parameter(torch.randn(4, 4, device=source_device))
    tensors = {
        "param": param,  # requires_grad
        "transposed": base.t(),  # non-contiguous
        "slice": base[1:4, ::2],  # strided view into a larger storage
        "expanded": torch.randn(1, 3, device=source_device).expand(5, 3),  # stride 0
        "tied.a": base,  # two names, one storage: safetensors alone refuses this
        "tied.b": base,
    }
    path = tmp_path / "m.pony"
    save_model_file(path, tensors, {"trained_on": source_device})
    _, loaded = load_model_file(path, device="cpu")
    for name, tensor in tensors.items():
        out = loaded[name]
        assert out.device.type == "cpu" and out.is_contiguous() and not out.requires_grad
        assert torch.equal(out, tensor.detach().cpu())
    if source_device != "cpu":
        _, on_gpu = load_model_file(path, device=source_device)
        assert on_gpu["param"].device.type == source_device


def test_unusable_device_is_a_model_file_error(tmp_path):
    path = tmp_path / "m.pony"
    write_good(path)
    with pytest.raises(ModelFileError, match="cannot load model onto device"):
        load_model_file(path, device="no-such-device")


def test_unserialisable_metadata_is_refused_and_old_file_kept(tmp_path):
    path = tmp_path / "m.pony"
    before = write_good(path)
    with pytest.raises(ModelFileError, match="metadata is not JSON-serialisable"):
        save_model_file(path, small_tensors(), {"when": datetime.now()})
    assert path.read_bytes() == before and not temp_files(tmp_path)


# --------------------------------------------------------------------------- case 5: atomicity


def _fail_replace(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)


def _fail_write_halfway(monkeypatch):
    real_write = os.write
    calls = []

    def write(fd, data):
        calls.append(fd)
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)


def _fail_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("failure", [_fail_replace, _fail_write_halfway, _fail_fsync])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failure):
    path = tmp_path / "m.pony"
    before = write_good(path)
    bigger = {name: t * 2 for name, t in small_tensors().items()}
    with monkeypatch.context() as m:
        failure(m)
        with pytest.raises(ModelFileError) as info:
            save_model_file(path, bigger, {"classes": ["x"]})
    assert info.value.reason.startswith("cannot write model file: ")
    if failure is not _fail_fsync:
        assert "disk full" in info.value.reason
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pony"]
    load_model_file(path, expected=SMALL_SHAPES)


def test_interrupt_during_save_removes_temp_and_propagates(tmp_path, monkeypatch):
    path = tmp_path / "m.pony"
    before = write_good(path)

    def write(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(KeyboardInterrupt):
        save_model_file(path, small_tensors(), {})
    monkeypatch.undo()
    assert path.read_bytes() == before and not temp_files(tmp_path)


KILLED_SAVER = r"""
import os, sys, time, torch
from ponyclassifier.core import modelfile

real_write = os.write
def throttled_write(fd, data):
    # Throttled so that the parent's SIGKILL reliably lands mid-write even on a fast disk.
    time.sleep(0.1)
    return real_write(fd, data)
os.write = throttled_write

tensors = {f"layer{i}.weight": torch.full((1024, 1024), float(i)) for i in range(50)}  # 200 MiB
modelfile.save_model_file(sys.argv[1], tensors, {"classes": ["big"]})
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_keeps_old_file_and_cleanup_removes_only_our_temp(tmp_path):
    path = tmp_path / "m.pony"
    before = write_good(path)
    unrelated = ["notes.ponytmp", ".m.pony.txt", ".m.pony.NOTHEX0000000000.ponytmp", "photo.jpg"]
    for name in unrelated:
        (tmp_path / name).write_bytes(b"keep me")

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not cleanup_candidates(tmp_path):
            if child.poll() is not None:
                pytest.fail(f"saver exited before writing: {child.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "saver never started writing"
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    assert path.read_bytes() == before
    meta, _ = load_model_file(path, expected=SMALL_SHAPES)
    assert meta["classes"] == ["cat", "dog", "pony"]

    stray = cleanup_candidates(tmp_path)
    assert len(stray) == 1 and stray[0].stat().st_size < 200 * 2**20  # really cut off mid-write
    assert cleanup_stale_temp_files(tmp_path, min_age_s=3600) == []  # too fresh: might be a live save
    assert cleanup_stale_temp_files(tmp_path) == stray
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(unrelated + ["m.pony"])
    assert cleanup_stale_temp_files(tmp_path) == []


def cleanup_candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(".m.pony.*.ponytmp") if "NOTHEX" not in p.name)


def test_cleanup_skips_directories_and_missing_folders(tmp_path):
    (tmp_path / ".m.pony.0123456789abcdef.ponytmp").mkdir()
    assert cleanup_stale_temp_files(tmp_path) == []
    assert cleanup_stale_temp_files(tmp_path / "nope") == []


def test_unwritable_destination_simulated_by_parent_being_a_file(tmp_path):
    # We run as root, where chmod cannot make a folder read-only; a parent that is a file
    # fails the same os.open call that a read-only folder would.
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(ModelFileError, match="cannot write model file"):
        save_model_file(blocker / "m.pony", small_tensors(), {})
    assert blocker.read_bytes() == b"not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_read_only_folder_simulated_by_permission_error(tmp_path, monkeypatch):
    path = tmp_path / "m.pony"
    before = write_good(path)
    real_open = os.open

    def deny_temp(file, flags, *args, **kwargs):
        if str(file).endswith(".ponytmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny_temp)
    with pytest.raises(ModelFileError, match="cannot write model file: Permission denied"):
        save_model_file(path, small_tensors(), {})
    monkeypatch.undo()
    assert path.read_bytes() == before and not temp_files(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_with_chmod_when_not_root(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "m.pony"
    before = write_good(path)
    folder.chmod(0o555)
    try:
        with pytest.raises(ModelFileError, match="cannot write model file"):
            save_model_file(path, small_tensors(), {})
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before and not temp_files(folder)


def test_destination_that_is_a_folder_is_refused_and_cleaned_up(tmp_path):
    (tmp_path / "m.pony").mkdir()
    with pytest.raises(ModelFileError, match="cannot write model file"):
        save_model_file(tmp_path / "m.pony", small_tensors(), {})
    assert not temp_files(tmp_path)
