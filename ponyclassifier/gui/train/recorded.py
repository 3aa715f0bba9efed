"""A recorded run evaluated again (Qt-free): what the Evaluation tab needs for a run of an
earlier session, whose stored metrics have no per-image predictions.

:func:`recorded_evaluation` says whether the run's model can be scored again on the
project's validation images (and on which, with which share and seed), or why not;
:func:`evaluate_recorded` is the worker body that does it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...core.engine import evaluate_split
from ...core.store import Run
from ...core.trained import TrainedModel

__all__ = ["RecordedEvaluation", "evaluate_recorded", "recorded_evaluation"]

NO_MODEL = ("This run has no model file (it was not saved, or was deleted), so the images behind each cell "
            "cannot be shown.")
REFITTED = ("This run's final model was trained again on every image, the validation images too, so scoring it "
            "on them now would flatter it. The scores shown are from before the refit; the images behind each "
            "cell are known only for runs of this session.")


@dataclass(frozen=True)
class RecordedEvaluation:
    """How to score a recorded run's model again: its file, the images, the share and seed."""

    model_path: str
    data_dir: str
    val_split: float
    seed: int
    val_paths: frozenset[str] | None  # the project's validation images (a run on the project's split)


def recorded_evaluation(run: Run, project_root: str | None,
                        project_val: frozenset[str] | None) -> RecordedEvaluation | str | None:
    """What to evaluate for ``run``, or a note saying why it cannot be (or None: nothing to
    do, no project open). ``project_val``: the project's validation images now."""
    m = run.metrics or {}
    path = run.model_path
    if not path or not os.path.exists(path):
        return NO_MODEL
    if m.get("refit_epochs"):
        return REFITTED
    data_dir = run.settings.get("dataset")
    if not data_dir or not os.path.isdir(data_dir):
        data_dir = project_root
    if data_dir is None:
        return None
    # the share the run really used: auto's choice, recorded with the run (older runs: as set)
    share = ((m.get("plan") or {}).get("validation share") or {}).get("value", run.settings.get("val_split"))
    # a run on the project's split is scored on the project's validation images (as they are now)
    val_paths = project_val if run.settings.get("split") else None
    return RecordedEvaluation(path, data_dir, float(0.2 if share is None else share),
                              int(run.settings.get("seed", 0)), val_paths)


def evaluate_recorded(state: Any, what: RecordedEvaluation) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """(report dict, per-image predictions, unreadable files skipped) -- worker thread."""
    model = TrainedModel.load(what.model_path)
    state.check()
    if model.training.get("refit"):  # it has seen the validation images: no honest re-score
        raise RuntimeError("this run's model was refitted on every image, the validation images too; "
                           "the scores shown are from before the refit")
    planned = ((model.training.get("plan") or {}).get("validation share") or {}).get("value")
    share = what.val_split if planned is None else float(planned)
    report, predictions, skipped = evaluate_split(model, what.data_dir, val_split=share, seed=what.seed,
                                                  val_paths=what.val_paths, progress=state.progress,
                                                  should_stop=lambda: state.cancelled)
    state.check()
    return report.to_dict(), predictions, len(skipped)
