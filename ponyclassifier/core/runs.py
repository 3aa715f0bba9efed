"""Runs belong to the project: the split a run trains on and the record it leaves.

* :func:`project_split` reads what the project says a run must use: the validation images
  of its split (Dataset ▸ Splits… in the app), the pictures its checks marked bad or
  duplicate (left out), the split's share and seed, and the external test folder. The
  engine takes it as ``Trainer.fit(split=...)``, so the split the app shows is the split
  trained on, from the app and from ``ponyclassifier train PROJECT``.
* :class:`RunRecord` is the run's row in the project store: started, one row per epoch,
  finished with the metrics the runs table, the CLI's ``runs`` and the evaluation view read.
  The app and the command line record through it, the same way.
* :func:`fit_run` is the body of a training run on a thread of its own (the app's
  training worker): ``Trainer.fit`` with the given callbacks, the final model saved, and
  every way it can end (finished, stopped, failed) as a :class:`TrainingOutcome` of plain
  values. Recording stays with the caller, on the thread that owns the store.

Qt-free; the store is used from the thread that opened it (the GUI thread, or the CLI's).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .store import STORE_DIR, ProjectStore, Run, StoreError, store_path

__all__ = ["ProjectSplit", "RunRecord", "TrainingOutcome", "fit_run", "models_dir", "project_split", "run_metrics", "run_outcome", "run_row",
           "is_project", "device_text", "RUN_COLUMNS"]

# what the store keeps of each evaluation report (validation and external test)
REPORT_KEYS = ("accuracy", "macro_f1", "count", "per_class", "confusion_matrix")
LEFT_OUT = ("bad", "duplicate")  # image statuses a run does not train or validate on


def models_dir(project_root: str | os.PathLike) -> Path:
    """Where the runs of a project keep their models."""
    return Path(project_root) / STORE_DIR / "models"


def is_project(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` has a project store (it was opened in the app or trained as a project)."""
    return store_path(folder).is_file()


@dataclass(frozen=True)
class ProjectSplit:
    """The project's word on which images a run validates on and which it leaves out.

    ``val`` and ``left_out`` are paths relative to the project root with "/" separators
    (as the store keeps them). A labelled image in neither set trains."""

    val: frozenset[str]
    left_out: frozenset[str] = frozenset()
    images: int = 0  # labelled images a run uses (train and validation)
    val_fraction: float | None = None  # the share and seed the split was made with (None: never made by hand)
    seed: int | None = None
    test_folder: str | None = None

    @property
    def share(self) -> float:
        """The share of the used images that validate."""
        return len(self.val) / self.images if self.images else 0.0

    def describe(self) -> str:
        if self.val_fraction is None:
            return "the project's split"
        return f"the project's split: {self.val_fraction:.0%} of each class, seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"val_fraction": self.val_fraction, "seed": self.seed, "val_images": len(self.val),
                "left_out": len(self.left_out), "test_folder": self.test_folder}


def project_split(store: ProjectStore) -> ProjectSplit:
    """The split recorded in ``store`` (read once; the rows are the truth, the settings
    only describe how they were made)."""
    import json  # noqa: PLC0415

    from .project import SPLIT_SETTINGS_KEY, TEST_FOLDER_KEY  # noqa: PLC0415

    val, left_out, used = set(), set(), 0
    for r in store.conn.execute("SELECT relpath, split, status FROM images WHERE class != ''"):
        if r["status"] in LEFT_OUT:
            left_out.add(r["relpath"])
            continue
        used += 1
        if r["split"] == "val":
            val.add(r["relpath"])
    try:
        settings = json.loads(store.meta(SPLIT_SETTINGS_KEY) or "null") or {}
    except (ValueError, RecursionError):
        settings = {}
    if not isinstance(settings, dict):  # a store someone else wrote
        settings = {}
    fraction, seed = settings.get("val_fraction"), settings.get("seed")
    return ProjectSplit(frozenset(val), frozenset(left_out), used,
                        float(fraction) if isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
                        and 0 < fraction < 1 else None,
                        int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None,
                        store.meta(TEST_FOLDER_KEY))


def _report(report: Any) -> dict[str, Any] | None:
    if report is None:
        return None
    d = report if isinstance(report, dict) else report.to_dict()
    return {k: d[k] for k in REPORT_KEYS if k in d}


def run_outcome(result: Any, diverged: bool) -> tuple[str, str | None]:
    """(status, error) of a run that trained at least one epoch: "stopped" when the user
    stopped it, "failed" with the cause when it diverged (the best model from before is
    kept), else "finished" (also after early stopping)."""
    if diverged:
        return "failed", f"{result.stop_reason} The best model before that (epoch {result.best_epoch}) was kept."
    return ("stopped" if result.stopped and result.stop_reason is None else "finished"), None


def device_text(setting: str) -> str:
    """The device a run with this ``--device`` setting uses, as the runs table shows it (the
    setting itself when it names no usable device: the engine says why when it starts)."""
    from .devices import DeviceError, device_description, select_device  # noqa: PLC0415 (torch)

    try:
        return device_description(select_device(setting))
    except DeviceError:
        return setting


def run_metrics(result: Any, *, first_epoch: int = 1, error: str | None = None) -> dict[str, Any]:
    """What the store keeps of an engine ``TrainResult`` (plain values, so it may be built on
    the training thread and recorded on the thread that owns the store)."""
    metrics: dict[str, Any] = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                               "first_epoch": first_epoch,
                               "stop_reason": result.stop_reason,
                               "skipped_files": int(result.model.metrics.get("skipped_files", 0))
                               if result.model is not None else len(result.skipped)}
    if result.val_report is not None:
        metrics["validation"] = _report(result.val_report)
    if result.test_report is not None:
        metrics["test"] = _report(result.test_report)
    if result.test_before_refit is not None:
        metrics["test_before_refit"] = _report(result.test_before_refit)
    if result.plan is not None:
        metrics["plan"] = result.plan.to_dict()
    metrics["refit_epochs"] = result.refit_epochs
    metrics["batch_size_used"] = result.model.training.get("batch_size_used") if result.model is not None else None
    if error:
        metrics["error"] = error
    return metrics


@dataclass
class RunRecord:
    """One run's row in the project store. ``start`` inserts it (status "running"),
    ``add_epoch`` records each epoch's logs, ``finish`` the outcome. A store that cannot be
    written (read-only, full disk) never fails the training: ``error`` says why the run
    is not (fully) recorded."""

    store: ProjectStore | None
    project_root: Path
    run_id: int | None = None
    error: str | None = None
    finished: bool = field(default=False)

    def start(self, config: Any, *, dataset: str, test_dir: str | None, split: ProjectSplit | None,
              **extra: Any) -> Path | None:
        """Record the start of a run with the engine ``config`` (resolved) on ``dataset``;
        ``extra`` settings are kept with it. Returns the model path of the run (in the
        project's models folder), or None when the run cannot be recorded."""
        if self.store is None or self.store.read_only:
            if self.store is not None:
                self.error = self.store.message or "the project store is read-only; this run is not recorded"
            return None
        settings = config.to_dict() | {"dataset": dataset, "test_dir": test_dir,
                                       "split": split.to_dict() if split else None} | extra
        try:
            self.run_id = self.store.start_run(config.recipe, settings, device_text(config.device))
        except StoreError as e:
            self.error = str(e)
            return None
        folder = models_dir(self.project_root)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"run-{self.run_id}.pony"

    @property
    def active(self) -> bool:
        return self.run_id is not None and self.store is not None and self.store.conn is not None

    def add_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        if not self.active or self.finished:
            return
        try:
            self.store.add_epoch(self.run_id, epoch, logs)
        except StoreError as e:
            self.error = str(e)

    def finish(self, status: str, *, seconds: float, model_path: str | None, metrics: dict[str, Any]) -> None:
        """Record the outcome. A run stopped before its first epoch ended (the user stopped it,
        or quit, at once) taught nothing and has no model: it is removed, not listed as a
        "stopped, 0 epochs" run. A failed run stays, with its error, however short."""
        if not self.active or self.finished:
            return
        self.finished = True
        if status == "stopped" and not metrics.get("epochs_run"):
            try:
                self.store.delete_run(self.run_id)
            except StoreError as e:
                self.error = str(e)
            self.run_id = None
            return
        try:
            self.store.finish_run(self.run_id, status=status, seconds=round(seconds, 2), model_path=model_path,
                                  metrics=metrics)
        except StoreError as e:
            self.error = str(e)


@dataclass
class TrainingOutcome:
    """What a run ends with: plain values only (the network itself is handed over apart,
    on the CPU)."""

    status: str  # finished | stopped | failed
    run_id: int | None = None
    model_path: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    validation: dict[str, Any] | None = None  # metrics.Report.to_dict()
    test: dict[str, Any] | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)  # val images: path, true, predicted, confidence
    classes: list[str] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    first_epoch: int = 1
    stop_reason: str | None = None
    seconds: float = 0.0
    device: str = ""
    skipped: int = 0
    error: str | None = None
    details: str | None = None  # traceback of an unexpected failure
    plan: dict[str, Any] | None = None  # the settings the run used, auto or set, with the reasons
    test_before_refit: dict[str, Any] | None = None  # the external test report of the model before its refit
    batch_size_used: int | None = None
    refit_epochs: int = 0  # the final model was trained again on every image for this many epochs
    metrics: dict[str, Any] | None = None  # what the project store keeps of the run (run_metrics)


def fit_run(trainer: Any, data_dir: str, *, callbacks: Sequence[Any] = (), test_dir: str | None = None,
            split: ProjectSplit | None = None, initial_model: Any = None, epoch_offset: int = 0,
            model_path: str | os.PathLike | None = None, run_id: int | None = None,
            threads: int | None = None, before: Callable[[], None] | None = None) -> tuple[TrainingOutcome, Any]:
    """Train (``trainer.fit``) and return ``(outcome, model)``; never raises for a run that
    cannot train (status "failed" with the error; ``details`` holds the traceback of an
    unexpected one). ``model`` is the final model on the CPU, or None.

    ``model_path``: the final best model is saved there (atomically, replacing what a
    checkpoint wrote meanwhile) with ``run_id`` in its metrics. ``threads``: torch's
    intra-op threads for the run (put back after). ``before`` is called first, on this
    thread (the app waits there until the view that shows the run has been painted)."""
    import torch  # noqa: PLC0415 (this module is read by the CLI's quick commands too)

    from .engine import TrainingError, TrainingStopped  # noqa: PLC0415

    first = epoch_offset + 1
    try:
        if before is not None:
            before()
        saved_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            result = trainer.fit(data_dir, callbacks=list(callbacks), test_dir=test_dir,
                                 initial_model=initial_model, initial_epoch=epoch_offset, split=split)
        finally:
            torch.set_num_threads(saved_threads)
    except TrainingStopped:  # stopped before anything was trained: a stop, not a failure
        return TrainingOutcome("stopped", run_id, first_epoch=first), None
    except Exception as e:  # reported to the caller, never lost on a worker thread
        expected = isinstance(e, (TrainingError, StoreError)) or type(e).__module__.startswith("ponyclassifier")
        return TrainingOutcome("failed", run_id, error=str(e) or type(e).__name__,
                               details=None if expected else traceback.format_exc()), None
    status, error = run_outcome(result, trainer.diverged)  # diverged: failed, the best model before is kept
    saved = None
    if result.epochs_run > 0 and model_path is not None:
        result.model.metrics["run_id"] = run_id
        result.model.save(model_path)  # atomic; replaces the checkpoint with the final best model
        saved = os.fspath(model_path)
    # the validation images' predictions by the model trained without them (a refitted
    # model has seen them): the engine's, not worked out again here
    predictions = list(result.val_predictions) if result.epochs_run > 0 else []
    result.model.network.to("cpu")  # what crosses to another thread lives on the CPU
    metrics = dict(result.model.metrics)
    outcome = TrainingOutcome(
        status, run_id, saved, {k: [float(v) if isinstance(v, (int, float)) else v for v in vs]
                                for k, vs in result.history.items()},
        result.val_report.to_dict() if result.val_report else None,
        result.test_report.to_dict() if result.test_report else None,
        predictions, list(result.model.classes), result.best_epoch, result.epochs_run, first,
        result.stop_reason, float(result.seconds), result.device, int(metrics.get("skipped_files", 0)),
        error=error, plan=result.plan.to_dict() if result.plan else None, refit_epochs=result.refit_epochs,
        test_before_refit=result.test_before_refit.to_dict() if result.test_before_refit else None,
        batch_size_used=result.model.training.get("batch_size_used"),
        metrics=run_metrics(result, first_epoch=first, error=error))
    return outcome, result.model


def outcome_metrics(outcome: TrainingOutcome) -> dict[str, Any]:
    """What :meth:`RunRecord.finish` keeps of an outcome (a failed run too)."""
    metrics = dict(outcome.metrics or {"epochs_run": outcome.epochs_run, "first_epoch": outcome.first_epoch})
    if outcome.error:
        metrics["error"] = outcome.error
    return metrics


# the columns of `ponyclassifier runs` (and the keys of its --json objects)
RUN_COLUMNS = ("id", "recipe", "started", "status", "epochs", "val_accuracy", "val_f1", "test_f1", "difference",
               "model")


def run_row(run: Run) -> dict[str, Any]:
    """One run as the ``runs`` command lists it."""
    m = run.metrics or {}
    return {"id": run.id, "recipe": run.recipe, "started": run.created, "status": run.status,
            "epochs": m.get("epochs_run"), "val_accuracy": run.val_accuracy, "val_f1": run.val_f1,
            "test_f1": run.test_f1, "difference": run.f1_gap, "model": run.model_path}
