"""Device choice, mixed precision and determinism. There is no GPU here: where a test needs
a machine with GPUs, torch's own count of them is what it changes (nothing runs on them)."""

from __future__ import annotations

import pytest
import torch

from ponyclassifier.core import devices
from ponyclassifier.core.devices import DeviceError, Precision, select_device
from ponyclassifier.core.engine import TrainConfig, Trainer, TrainingError

from ..conftest import make_shapes_dataset


def test_cuda_n_is_checked_against_the_gpus_there_are(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU is available"):
            select_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r"cuda:3 was asked for, but this machine has 1 CUDA GPU \(cuda:0\)"):
        select_device("cuda:3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(DeviceError, match=r"has 4 CUDA GPUs \(cuda:0 to cuda:3\)"):
        select_device("cuda:4")
    assert select_device("cuda:2") == torch.device("cuda", 2)
    with pytest.raises(DeviceError, match="write cuda:N"):
        select_device("cuda:two")
    with pytest.raises(DeviceError, match="unknown device"):
        select_device("tpu")


def test_the_trainer_says_what_is_wrong_with_a_device(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=4, size=24)
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA GPU"):
            Trainer(TrainConfig(epochs=1, device="cuda:1")).fit(data)


def test_mixed_precision_is_for_cuda_and_says_so():
    cpu = Precision(torch.device("cpu"), True)
    assert not cpu.enabled and cpu.asked_but_unavailable and cpu.describe() == "float32"
    assert not Precision(torch.device("cpu"), None).asked_but_unavailable  # auto: no complaint
    off = Precision(torch.device("cpu"), False)
    assert not off.enabled and off.scaler is None


def test_deterministic_runs_give_the_same_model_bit_for_bit(tmp_path):
    data = make_shapes_dataset(tmp_path / "d", per_class=8, size=24)
    cfg = dict(epochs=2, device="cpu", seed=5, deterministic=True, augment="auto", refit=False)
    try:
        a = Trainer(TrainConfig(**cfg)).fit(data).model.network.state_dict()
        b = Trainer(TrainConfig(**cfg)).fit(data).model.network.state_dict()
    finally:
        devices.set_deterministic(False)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.are_deterministic_algorithms_enabled() is False  # put back for the rest of the process
