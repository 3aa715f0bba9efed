"""QtTrainingPanel: choose a recipe, set it up, watch it train, see how it did.

Left: the settings (:class:`~.settings.QtTrainingSettings`: recipe, hyperparameters, what
Auto chooses, augmentation, device, the project's split and test folder, Start / Stop /
Resume). Right, in tabs: the model summary (:class:`~.summary.QtModelSummary`, worked out
off the GUI thread whenever the recipe or size changes, before any training), the live
curves with progress and a log (:class:`~.live.QtLiveTraining`), the evaluation of the
last run or of any run picked in the runs table (:class:`~.evaluation.QtEvaluation`; a run
from an earlier session is evaluated again from its model file on a worker, to know the
images behind each confusion-matrix cell) and the project's runs (:class:`~.runs.QtRuns`).

The panel is a view of a :class:`~ponyclassifier.core.session.ProjectSession`: it keeps no
copy of the project's root, store, split or runs. Its own connection to the store
(``session.store.sibling()``, opened when a project is attached, closed when it is let
go) records the runs. Training runs on the panel's training worker
(:class:`~.thread.TrainingRun` on a :class:`~ponyclassifier.gui.workers.DedicatedWorker`);
the summary and the evaluation of a recorded run each have a newest-wins
:class:`~ponyclassifier.gui.workers.Lane`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from ...core.callbacks import EarlyStopping
from ...core.engine import TrainConfig, TrainingError
from ...core.policy import DataFacts, default_recipe
from ...core.runs import ProjectSplit, project_split
from ...core.session import ProjectSession
from ...core.store import ProjectStore, StoreError
from ...core.summary import ModelSummary
from ..widgets.format import RECIPE_LABELS
from ..workers import DedicatedWorker, Job, Lane
from .evaluation import QtEvaluation
from .live import QtLiveTraining
from .recorded import evaluate_recorded, recorded_evaluation
from .runs import QtRuns
from .settings import FIELDS, QtTrainingSettings, device_choices
from .summary import QtModelSummary, work_out_summary
from .thread import TrainingOutcome, TrainingRun

__all__ = ["QtTrainingPanel", "RECIPE_LABELS", "device_choices"]

RECIPE_META_KEY = "train_recipe"  # the project store remembers the recipe last chosen for the project
LIVE_FIELDS = ("progress", "status_label", "log", "curves", "best_line", "loss_plot", "acc_plot", "batch_plot")


class QtTrainingPanel(QWidget):
    training_started = Signal(int)  # run id in the store (-1: not recorded)
    splits_requested = Signal()  # the user wants to see or change the project's split and test folder
    training_finished = Signal(object)  # TrainingOutcome
    model_saved = Signal(str)  # the run's model file, once training ended with a model
    relabel_requested = Signal(str, str)  # from the evaluation gallery: path, new class
    open_model_requested = Signal(str, str)  # from the runs table: model file, "Explain" or "Predict"
    evaluation_ready = Signal(int)  # a recorded run's model was evaluated and is shown (run id)

    def __init__(self, session: ProjectSession | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession()
        self.run: TrainingRun | None = None
        self.last_outcome: TrainingOutcome | None = None
        self.summary: ModelSummary | None = None
        self._last_config: TrainConfig | None = None
        self._planned_total = 1
        self._facts: dict[str, DataFacts] = {}  # project root -> a glance at its data (for the Auto box)
        self._recipe_touched = False  # a recipe was chosen (or suggested) since the project opened
        self._user_chose = False  # ...by the user: the project's remembered recipe does not replace it
        self._suggesting = False
        self._facts_stale = False
        self._run_results: dict[int, tuple[dict, list]] = {}  # run id -> (validation report, per-image predictions)
        self._record_store: ProjectStore | None = None  # this panel's own connection: it records the runs
        self._summary_lane = Lane()
        self._eval_lane = Lane()
        self._training_worker = DedicatedWorker("training", self)
        self.extra_callbacks: list = []  # core Callbacks added to every run (tests, plugins)
        self._build()
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(250)
        self._summary_timer.timeout.connect(self._compute_summary)
        self.form.apply_recipe_defaults("scratch")
        self._update_buttons()
        self._warmed_up = False
        self._events = ((self.session.opened, self._on_session_opened),
                        (self.session.closing, self._on_session_closing),
                        (self.session.attached, self._on_session_attached),
                        (self.session.split_changed, self._on_session_split_changed),
                        (self.session.counts_changed, self._on_session_counts_changed))
        for event, slot in self._events:
            event.connect(slot)
        if self.session.is_open:  # joined a session that already has a project
            self._on_session_opened(self.session.root)
            if self.session.project is not None:
                self._on_session_attached(self.session.project)

    # =============================================================== building
    def _build(self) -> None:
        self.form = QtTrainingSettings()
        for name in FIELDS:  # panel.epochs is the form's epochs box
            setattr(self, name, getattr(self.form, name))
        f = self.form
        f.recipe_combo.currentIndexChanged.connect(self._on_recipe_combo_changed)
        f.recipe_combo.activated.connect(self._on_recipe_combo_activated)
        f.splits_button.clicked.connect(self.splits_requested)
        f.summary_inputs_changed.connect(self._schedule_summary)
        f.plan_inputs_changed.connect(self._update_plan)
        f.start_button.clicked.connect(self.start_training)
        f.stop_button.clicked.connect(self.stop_training)
        f.resume_button.clicked.connect(self.resume_training)

        self.summary_view = QtModelSummary()
        self.summary_title = self.summary_view.summary_title
        self.summary_table = self.summary_view.summary_table
        self.summary_totals = self.summary_view.summary_totals
        self.live = QtLiveTraining()
        for name in LIVE_FIELDS:
            setattr(self, name, getattr(self.live, name))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary_view, "Model")
        self.tabs.addTab(self.live, "Training")
        self.evaluation = QtEvaluation()
        self.evaluation.relabel_requested.connect(self.relabel_requested)
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.runs_view = QtRuns(self.session, writer=lambda: self._record_store)
        self.runs_view.run_activated.connect(self._on_runs_view_run_activated)
        self.runs_view.run_deleted.connect(self._on_runs_view_run_deleted)
        self.runs_view.open_model_requested.connect(self.open_model_requested)
        self.tabs.addTab(self.runs_view, "Runs")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.form)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)

    # the live numbers are the Training tab's (replaced, not only changed, for each run)
    @property
    def series(self) -> dict[str, list[float]]:
        return self.live.series

    @property
    def batch_raw(self) -> list[float]:
        return self.live.batch_raw

    @property
    def batch_x(self) -> list[float]:
        return self.live.batch_x

    @property
    def root(self) -> Path | None:
        """The open project's folder (the session's)."""
        return Path(self.session.root) if self.session.root is not None else None

    @property
    def store(self) -> ProjectStore | None:
        """The open project's store (the session's); runs are recorded through the panel's own connection."""
        return self.session.store

    @property
    def _eval_job(self) -> Job | None:
        return self._eval_lane.job

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._facts_stale:
            self._facts_stale = False
            self._schedule_summary()
        if not self._warmed_up:
            self._warmed_up = True
            QTimer.singleShot(0, self, self._warm_up)  # dropped if the panel is gone by then

    def _warm_up(self) -> None:
        # The first paint of the plots lays out their axes, loads fonts and fills caches;
        # done once while idle, not when a training starts and competes with it.
        if self.tabs.currentIndex() != 1 and self.isVisible():
            self.live.grab()

    # ================================================================ session
    def _on_session_opened(self, root: str | None) -> None:
        """Another project (or none): nothing of the last one stays on screen."""
        self._end_run()
        self._close_record_store()
        self._summary_lane.cancel()  # a summary still being worked out is for the old project
        if root is not None:
            self._facts.pop(os.fspath(root), None)  # the folder may have changed since it was last open
        self.form.set_recipe_note(None)
        self._recipe_touched = self._user_chose = False  # until the project's remembered choice is read
        self._cancel_evaluation()
        self._run_results.clear()
        self.evaluation.clear()
        self.last_outcome = None
        self._clear_live()
        self._on_session_split_changed()
        self._schedule_summary()
        self._update_buttons()

    def _on_session_closing(self, project) -> None:
        self._end_run()  # recorded through the panel's connection, which goes with the project
        self._close_record_store()

    def _on_session_attached(self, project) -> None:
        self._close_record_store()
        try:
            self._record_store = project.store.sibling()
        except (StoreError, sqlite3.Error, OSError) as e:
            self._log(f"Runs of this project cannot be recorded: {e}")
        remembered = self._remembered_recipe()
        if remembered is not None and not self._user_chose and not self.is_training:
            self._set_recipe(remembered)
            self.form.set_recipe_note("Your last choice for this project.")
            self._recipe_touched = True  # the project's remembered choice stands: no suggestion replaces it
        self._update_buttons()

    def _on_session_split_changed(self) -> None:
        """Show the project's split and test folder as the project has them now."""
        self.form.show_split(self._split(), self.session.root is not None)
        self._update_plan()

    def _on_session_counts_changed(self, images: int = 0, classes: int = 0) -> None:
        """The project's images or classes changed: the Auto box and the recipe suggestion
        follow the data as it is now."""
        if self.session.root is None:
            return
        self._facts.pop(os.fspath(self.session.root), None)
        if self.isVisible():
            self._schedule_summary()
        else:  # looked at again when the panel is shown, not on every import batch
            self._facts_stale = True

    def _split(self, quiet: bool = False) -> ProjectSplit | None:
        try:
            return self.session.split()
        except (StoreError, sqlite3.Error) as e:
            if not quiet:
                self._log(f"Cannot read the project's split: {e}")
            return None

    def _current_split(self) -> ProjectSplit | None:
        """The split as the store has it this moment (read afresh for a run); when it is not
        the one the session holds, the session is told, so every view shows what is trained on."""
        store = self.session.reader
        if store is None or store.conn is None:
            return None
        try:
            split = project_split(store)
        except (StoreError, sqlite3.Error) as e:
            self._log(f"Cannot read the project's split: {e}")
            return None
        if split != self._split(quiet=True):
            self.session.notify_split_changed()
        return split

    def _close_record_store(self) -> None:
        store, self._record_store = self._record_store, None
        if store is not None:
            store.close()

    # ================================================================ public
    def recipe(self) -> str:
        return self.form.recipe()

    def choose_recipe(self, recipe: str) -> None:
        """Pick ``recipe`` as the user does: it stands for this project (no suggestion replaces it)."""
        self._set_recipe(recipe)
        self._recipe_touched = self._user_chose = True
        self.form.set_recipe_note(None)  # the suggestion no longer describes what is chosen

    def config(self) -> TrainConfig:
        """The settings on screen as a TrainConfig ("Auto" is None: the policy decides)."""
        return self.form.config()

    def set_augment_config(self, d: dict | None) -> None:
        """Show the augmentation strengths set in the Dataset place (``AugmentConfig.to_dict()``)."""
        self.form.set_augment_config(d)

    @property
    def is_training(self) -> bool:
        return self.run is not None and self.run.running

    def start_training(self) -> TrainingRun | None:
        if self.is_training:
            return None
        if self.root is None:
            self._log("Open a project first.")
            return None
        if self.session.project is None:  # listed, store still opening: its split and run record are not there yet
            self._log("The project is still opening; training can start once it is open.")
            return None
        self.live.reset()
        self.log.clear()
        self._recipe_touched = self._user_chose = True  # the recipe trained with stands now
        run = self._launch(self.config())
        if run is not None:
            self._remember_recipe()
        return run

    def stop_training(self) -> None:
        if self.is_training:
            self.run.stop()
            self._log("Stopping after this batch; the best model so far is kept…")
            self.stop_button.setEnabled(False)

    def can_resume(self) -> bool:
        o = self.last_outcome
        if self.is_training or o is None or o.status != "stopped" or not o.model_path or self._last_config is None:
            return False
        done = o.first_epoch - 1 + o.epochs_run
        planned = self._last_config.epochs or self._planned_total
        return done < planned and os.path.exists(o.model_path)  # stopped in its refit: nothing left to resume

    def resume_training(self) -> TrainingRun | None:
        if not self.can_resume():
            return None
        o, cfg = self.last_outcome, self._last_config
        done = o.first_epoch - 1 + o.epochs_run
        planned = max(cfg.epochs or self._planned_total or 1, done + 1)
        resumed = TrainConfig(**{**cfg.__dict__, "epochs": planned})
        self._log(f"Resuming run {o.run_id} from its saved model: epochs {done + 1}–{planned}.")
        return self._launch(resumed, resume_model=o.model_path, epoch_offset=done, resumed_from=o.run_id,
                            planned_total=planned)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop a running training and wait for it (for the window's closeEvent): it is
        recorded, the panel's connection to the store closed and the training worker ended."""
        self._summary_timer.stop()
        self._summary_lane.cancel()
        self._cancel_evaluation()
        self.evaluation.close_loader()
        ok = self._end_run(timeout_ms)
        self._close_record_store()
        if ok:
            ok = self._training_worker.shutdown(timeout_ms)
        for event, slot in self._events:
            event.disconnect(slot)
        self.runs_view.detach()
        return ok

    def _end_run(self, timeout_ms: int = 30000) -> bool:
        """Stop the run still going, and wait until it is recorded."""
        ok = True
        if self.run is not None:
            self.run.stop()
            ok = self.run.wait(timeout_ms)
            self.live.redraw_timer.stop()
        return ok

    # ============================================================== training
    def _launch(self, cfg: TrainConfig, *, resume_model: str | None = None, epoch_offset: int = 0,
                resumed_from: int | None = None, planned_total: int | None = None) -> TrainingRun | None:
        split = self._current_split()  # what the project says now is what this run uses
        # (a store that lists no images yet, never synced with its folder, has no split to give)
        split = split if split is not None and split.images else None
        test_dir = split.test_folder if split is not None else None
        if test_dir and not os.path.isdir(test_dir):
            self._log(f"The project's test folder {test_dir} does not exist; choose another in Splits….")
            return None
        extra = [EarlyStopping("val_loss", patience=cfg.early_stopping)] if cfg.early_stopping else []
        extra += list(self.extra_callbacks)
        try:
            run = TrainingRun(cfg, self.root, store=self._record_store, project_root=self.root, test_dir=test_dir,
                              split=split, resume_model=resume_model, epoch_offset=epoch_offset,
                              resumed_from=resumed_from, extra_callbacks=extra, worker=self._training_worker,
                              parent=self)
        except TrainingError as e:
            self._log(f"Cannot start: {e}")
            return None
        self.run = run
        self._planned_total = planned_total or (run.config.epochs or 1)
        self._last_config = cfg if resume_model is None else self._last_config
        live = self.live
        run.prepare_progressed.connect(live.on_prepare_progressed)
        run.train_started.connect(self._on_run_train_started)
        run.epoch_started.connect(live.on_epoch_started)
        run.batches_finished.connect(live.on_batches_finished)
        run.epoch_finished.connect(live.on_epoch_finished)
        run.message_logged.connect(self._log)
        run.finished.connect(self._on_run_finished)
        live.begin(self._planned_total, epoch_offset, RECIPE_LABELS[cfg.recipe].lower())
        # the training tab is painted (its first paint is the costliest) before the run
        # starts competing with the GUI thread
        self.tabs.setCurrentIndex(1)
        run.start(hold=self.isVisible())
        if self.isVisible():
            live.release_after_paint(run.release)
        if run.store_error:
            self._log(f"Note: {run.store_error}")
        self._update_buttons()
        self.training_started.emit(run.run_id if run.run_id is not None else -1)
        return run

    def _clear_live(self) -> None:
        """The Live tab as before any run: empty curves, no best epoch, no log, no progress."""
        if self.is_training:
            return
        self.live.clear(self.root is not None)
        self._update_buttons()

    @Slot(dict)
    def _on_run_train_started(self, logs: dict) -> None:
        self.live.on_train_started(logs)
        self._planned_total = self.live.planned_total  # the run's own count (auto: the policy's)

    @Slot(object)
    def _on_run_finished(self, outcome: TrainingOutcome) -> None:
        run_root = self.run.project_root if self.run is not None else None
        if run_root is not None and (self.session.root is None or
                                     os.path.realpath(run_root) != os.path.realpath(self.session.root)):
            # a run of a project let go that took longer to end than the switch waited: it is
            # recorded in its own project; nothing of it shows or is offered here
            self._update_buttons()
            self.training_finished.emit(outcome)
            return
        self.live.show_outcome(outcome)
        self.last_outcome = outcome
        if outcome.status != "failed" and outcome.validation:
            self._cancel_evaluation()
            if outcome.run_id is not None and outcome.predictions:
                self._run_results[outcome.run_id] = (outcome.validation, list(outcome.predictions))
            self.evaluation.set_results(outcome.classes, outcome.validation, outcome.test, outcome.predictions,
                                        heading=None if outcome.run_id is None else
                                        f"Run {outcome.run_id} ({self.run.config.recipe if self.run else ''})")
        if self.run is not None and self.run.store_error:
            self._log(f"Note: {self.run.store_error}")
        self.session.notify_runs_changed()  # the runs table (and every view of the runs) follows
        self._update_buttons()
        if outcome.model_path:
            self.model_saved.emit(outcome.model_path)
        self.training_finished.emit(outcome)

    # =============================================================== summary
    def _schedule_summary(self, *args) -> None:
        self._summary_timer.start()

    @Slot()
    def _compute_summary(self) -> None:
        root, classes = self.session.root, len(self.session.classes)
        if root is None or classes < 1:
            self.summary_view.show_nothing()
            return
        recipe, size, dropout = self.recipe(), self.image_size.value() or None, float(self.dropout.value())
        cached = self._facts.get(root)
        self.summary_view.show_working()
        self._summary_lane.submit(
            lambda state: (root, *work_out_summary(state, root, cached, recipe, classes, size, dropout)),
            on_finished=self._on_summary_finished, on_failed=lambda m, d: self.summary_view.show_failed(m))

    def _on_summary_finished(self, result) -> None:
        root, facts, summary = result
        self._facts[root] = facts
        if root != self.session.root:  # the project changed (or closed) meanwhile
            return
        size = self.form.image_size_for(facts)
        if not self._recipe_touched and not self.is_training and facts.images > 0 and facts.classes >= 2:
            suggested, why = default_recipe(facts)
            self._recipe_touched = True
            self.form.set_recipe_note(f"Suggested for this project: {why}.")
            if suggested != self.recipe():
                self._suggesting = True
                try:
                    self._set_recipe(suggested)  # computes the summary again, for that recipe
                finally:
                    self._suggesting = False
                self._log(f"Recipe: {RECIPE_LABELS[suggested]} suggested for this project ({why}).")
                return
        self.summary = summary
        self._update_plan()
        self.summary_view.show_summary(summary, self.recipe(), len(self.session.classes), size)

    # ================================================================ recipe
    def _set_recipe(self, recipe: str) -> None:
        self.form.set_recipe(recipe)

    @Slot(int)
    def _on_recipe_combo_changed(self, index: int) -> None:
        if self._suggesting:  # a suggestion changes what depends on the recipe, not the user's settings
            self.form.apply_recipe_fields(self.recipe())
            return
        self._recipe_touched = True  # chosen since the project opened: no suggestion overrides it
        self.form.apply_recipe_defaults(self.recipe())

    @Slot(int)
    def _on_recipe_combo_activated(self, index: int) -> None:
        self._recipe_touched = self._user_chose = True  # the user's choice: kept, and remembered for this project
        self.form.set_recipe_note(None)
        self._remember_recipe()

    def _remembered_recipe(self) -> str | None:
        store = self._record_store
        if store is None or store.conn is None:
            return None
        try:
            value = store.meta(RECIPE_META_KEY)
        except (StoreError, sqlite3.Error):
            return None
        return value if value in RECIPE_LABELS else None

    def _remember_recipe(self) -> None:
        store = self._record_store
        if store is None or store.read_only or store.conn is None:
            return
        try:
            store.set_meta(RECIPE_META_KEY, self.recipe())
        except (StoreError, sqlite3.Error):
            pass  # a note is not worth an error: the next project open suggests a recipe again

    def _update_plan(self, *args) -> None:
        """Show what Auto will choose for this project, with the reasons."""
        root = self.session.root
        facts = self._facts.get(os.fspath(root)) if root is not None else None
        if root is not None and facts is None and self.session.rows and len(self.session.classes) < 2:
            # listed, with nothing for Auto to look at (a flat folder of photos): say what it needs
            self.form.show_plan_needs_classes()
            return
        self.form.show_plan(root is not None, facts, self._split(quiet=True) if facts is not None else None)

    # ============================================================ evaluation
    def _on_runs_view_run_activated(self, run_id: int) -> None:
        if self.runs_view.run(run_id) is not None:
            self.show_run_evaluation(run_id)
            self.tabs.setCurrentWidget(self.evaluation)

    def _on_runs_view_run_deleted(self, run_id: int) -> None:
        self._run_results.pop(run_id, None)

    def show_run_evaluation(self, run_id: int) -> Job | None:
        """Show a recorded run in the Evaluation tab. Its stored scores show at once; when
        the per-image predictions behind the confusion matrix are not at hand (a run from
        an earlier session), its model file is evaluated on the project's validation split
        on a worker, and the view is filled again with that result (the job, or None)."""
        run = self.runs_view.run(run_id)
        if run is None:
            return None
        self._cancel_evaluation()
        m = run.metrics or {}
        heading = f"Run {run_id} ({run.recipe})"
        cached = self._run_results.get(run_id)
        if cached is not None:
            report, predictions = cached
            self.evaluation.set_results(report.get("classes", []), report, m.get("test"), predictions,
                                        heading=heading)
            return None
        val = m.get("validation")
        self.evaluation.set_results(list((val or {}).get("per_class", {}).keys()), val, m.get("test"), None,
                                    heading=heading)
        split = self._split() if run.settings.get("split") else None
        what = recorded_evaluation(run, self.session.root, split.val if split is not None else None)
        if isinstance(what, str):
            self.evaluation.set_cell_note(what)
            return None
        if what is None:
            return None
        test, project = m.get("test"), self.session.project

        def finished(result) -> None:
            report, predictions, skipped = result
            if self.session.project is project:  # kept for the next time, unless the project changed meanwhile
                self._run_results[run_id] = (report, predictions)
            self.evaluation.set_results(report["classes"], report, test, predictions,
                                        heading=f"{heading}, evaluated now on {report['count']} validation images"
                                        + (f" ({skipped} unreadable skipped)" if skipped else ""))
            self.evaluation_ready.emit(run_id)

        def failed(message: str, details: str) -> None:
            self.evaluation.set_cell_note(f"Could not evaluate run {run_id}'s model: {message}")

        def progressed(done: int, total: int) -> None:
            self.evaluation.set_cell_note(f"Evaluating run {run_id}'s model on the validation images to find "
                                          f"the images behind each cell… {done} / {total}")

        self.evaluation.set_cell_note(f"Evaluating run {run_id}'s model on the validation images to find the "
                                      "images behind each cell…")
        return self._eval_lane.submit(lambda state: evaluate_recorded(state, what), on_finished=finished,
                                      on_failed=failed, on_progress=progressed)

    def _cancel_evaluation(self) -> None:
        self._eval_lane.cancel()  # the evaluation asked for before never calls back

    def _update_buttons(self) -> None:
        # a run trains on the project's split and is recorded in its store: both need the store open
        self.form.set_busy(self.is_training, self.session.project is not None, self.can_resume())

    def _log(self, text: str) -> None:
        self.live.write(text)
