"""The training run's body without Qt: ``core.runs.fit_run`` with the ``EventForwarder``
callback the app hands its events over with, and the checkpoint that follows the one
best-epoch rule."""

from __future__ import annotations

import math

from ponyclassifier.core.callbacks import Callback, EventForwarder, ModelCheckpoint, epoch_score
from ponyclassifier.core.engine import TrainConfig, Trainer
from ponyclassifier.core.runs import fit_run, outcome_metrics
from ponyclassifier.core.trained import TrainedModel
from tests.conftest import make_shapes_dataset

CONFIG = dict(recipe="scratch", epochs=2, batch_size=8, lr=3e-3, augment=None, device="cpu", seed=0, refit=False,
              workers=1)


def test_fit_run_forwards_plain_events_and_saves_the_best_model(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", per_class=6, size=16)
    events: list[tuple[str, object]] = []
    forwarder = EventForwarder(lambda e, p: events.append((e, p)), batch_interval=0.0, yield_for=0.0)
    ckpt = ModelCheckpoint(tmp_path / "ckpt.pony", monitor=None)
    model_path = tmp_path / "run-7.pony"
    outcome, model = fit_run(Trainer(TrainConfig(**CONFIG)), str(data), callbacks=[forwarder, ckpt],
                             model_path=model_path, run_id=7, threads=1)
    assert outcome.status == "finished", outcome.error
    assert outcome.epochs_run == 2 and outcome.first_epoch == 1 and outcome.model_path == str(model_path)
    assert model is not None and next(model.network.parameters()).device.type == "cpu"
    assert TrainedModel.load(model_path).metrics["run_id"] == 7
    kinds = [e for e, _ in events]
    assert kinds.index("train_started") < kinds.index("epoch_started") < kinds.index("batches") < \
        kinds.index("epoch_finished")
    finished = [p for e, p in events if e == "epoch_finished"]
    assert [epoch for epoch, _ in finished] == [1, 2]
    for _, logs in finished:  # plain values only: they cross to another thread
        assert all(isinstance(v, (int, float, str, bool)) or v is None for v in logs.values())
    losses = [x for e, p in events if e == "batches" for x in p["batch_losses"]]
    assert len(losses) == forwarder.batches and all(math.isfinite(x) for x in losses)
    # the checkpoint kept the epoch the one rule calls best, which is the one the engine kept
    scores = [epoch_score(logs) for _, logs in finished]
    assert ckpt.saved_epochs[-1] == 1 + scores.index(max(scores)) == outcome.best_epoch
    assert outcome_metrics(outcome)["epochs_run"] == 2


class _StopAtOnce(Callback):
    def __init__(self, forwarder: EventForwarder):
        self.forwarder = forwarder

    def on_train_begin(self, logs):
        self.forwarder.request_stop()


def test_a_run_stopped_at_once_or_that_cannot_train_ends_with_an_outcome(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", per_class=6, size=16)
    forwarder = EventForwarder(lambda e, p: None)
    config = TrainConfig(**CONFIG | {"epochs": 5})
    outcome, model = fit_run(Trainer(config), str(data), callbacks=[forwarder, _StopAtOnce(forwarder)], epoch_offset=2)
    assert outcome.status == "stopped", outcome.error
    assert outcome.epochs_run == 0 and outcome.first_epoch == 3
    lonely = make_shapes_dataset(tmp_path / "lonely", per_class=4, size=16, classes=("circle",))
    outcome, model = fit_run(Trainer(TrainConfig(**CONFIG)), str(lonely))
    assert outcome.status == "failed" and "class" in outcome.error and model is None
    assert outcome.details is None  # an expected failure: no traceback for the user
    assert outcome_metrics(outcome)["error"] == outcome.error
