"""The command line: train / evaluate / predict / info / demo-data, headless.

Exit status: 0 success, 2 usage error, 1 failure with one clear line on stderr (the
traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _fraction(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {v}")
    return v


def _degrees(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of degrees, got {s!r}") from None
    if not 0 <= v <= 180:
        raise argparse.ArgumentTypeError(f"must be between 0 and 180 degrees, got {v}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not v > 0 or math.isinf(v):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {s}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ponyclassifier",
                                description="Teach a computer to recognise your own pictures, offline. "
                                            "Run without arguments to open the app.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a folder with one subfolder per class",
                       description="Train on DATA_DIR (one subfolder per class). When DATA_DIR is a project "
                                   "(opened in the app before), the run uses the project's split and test folder "
                                   "and is recorded in its runs, as in the app.")
    t.add_argument("data_dir", metavar="DATA_DIR")
    t.add_argument("--out", metavar="MODEL",
                   help="model file to write (.pony); for a project, default: the project's models folder")
    t.add_argument("--recipe", choices=["auto", "scratch", "transfer", "finetune"], default="auto",
                   help="scratch: a small CNN from nothing; transfer: a frozen pretrained network and a new head; "
                        "finetune: transfer, then its top blocks retrained (default: auto, as the app suggests: "
                        "transfer, or scratch for 5,000 or more small pictures)")
    auto = " (default: auto, chosen from the data; the choice and the reason are printed)"
    t.add_argument("--epochs", type=_positive_int, help="passes over the training images" + auto)
    t.add_argument("--batch-size", type=_positive_int, help="images per step" + auto)
    t.add_argument("--image-size", type=_positive_int, metavar="PX",
                   help="default: the images' typical size up to 150 px (scratch), 224 px (pretrained)")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate of the one-cycle schedule" + auto)
    t.add_argument("--val-split", type=_fraction, default=None, metavar="F",
                   help="share of each class set aside for validation" + auto)
    t.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="after the validation images chose the epochs, train the final model again on every "
                        "image" + auto)
    t.add_argument("--test-dir", metavar="DIR", help="an external test set, same class folders")
    t.add_argument("--augment", choices=["auto", "off", "mild", "strong"], default="auto",
                   help="data augmentation: auto (chosen from image size, epochs and recipe), off, mild, or strong "
                        "(the Keras ImageDataGenerator strengths below); the strength options override it")
    t.add_argument("--no-augment", action="store_true", help="turn data augmentation off (--augment off)")
    t.add_argument("--head", choices=["auto", "linear", "linear-smooth", "mlp-smooth"], default="auto",
                   help="transfer recipe's classifier head (default: auto, chosen by cross-validation on the "
                        "cached features)")
    g = t.add_argument_group("augmentation strengths (Keras ImageDataGenerator meanings; 0 turns one off)")
    g.add_argument("--no-flip", action="store_true",
                   help="never flip left-right (for digits, letters and anything whose mirror image is another "
                        "thing); auto flips colour photos only")
    g.add_argument("--rotation", type=_degrees, metavar="DEG", help="random rotation up to +/-DEG (default 20)")
    g.add_argument("--shift", type=_fraction, metavar="F",
                   help="random width and height shift up to F of the size (default 0.1)")
    g.add_argument("--shear", type=_degrees, metavar="DEG", help="random shear up to DEG (default 10)")
    g.add_argument("--zoom", type=_fraction, metavar="F", help="random zoom in/out by up to F (default 0.15)")
    g.add_argument("--brightness", type=_fraction, metavar="F", help="random brightness change up to F (default 0.15)")
    g.add_argument("--contrast", type=_fraction, metavar="F", help="random contrast change up to F (default 0.15)")
    t.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    t.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision on a CUDA GPU (bfloat16 where supported, else float16 with loss scaling; "
                        "default: on for CUDA, float32 elsewhere)")
    t.add_argument("--seed", type=int, default=0, help="same seed, same split and same start (default 0)")
    t.add_argument("--deterministic", action="store_true",
                   help="with --seed: the same model bit for bit on the same machine (slower on a GPU)")
    t.add_argument("--optimizer", choices=["adamw", "adam", "rmsprop", "sgd"], default="adamw")
    t.add_argument("--dropout", type=_fraction)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                   help="stop when validation loss has not improved for this many epochs")
    t.add_argument("--unsure-threshold", type=_fraction, metavar="P",
                   help="below this top probability, predictions say 'not sure'")
    t.add_argument("--overwrite", action="store_true", help="replace MODEL if it already exists")
    t.add_argument("--json", action="store_true", help="one JSON object per epoch, then a summary")
    t.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    e = sub.add_parser("evaluate", help="score a model on a class-folder dataset")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("data_dir", metavar="DATA_DIR")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    pr = sub.add_parser("predict", help="classify images (files or folders)")
    pr.add_argument("args", nargs="+", metavar="MODEL PATH", help="MODEL then PATH..., or PATH... with --imagenet")
    pr.add_argument("--imagenet", action="store_true", help="use the pretrained ImageNet classes (no model file)")
    pr.add_argument("--top-k", type=_positive_int, default=3, metavar="K")
    pr.add_argument("--unsure-threshold", type=_fraction, metavar="P")
    pr.add_argument("--device", default="auto")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    r = sub.add_parser("runs", help="list the training runs recorded in a project",
                       description="The runs of PROJECT_DIR, as the app's runs table lists them: id, recipe, "
                                   "started, status, epochs, validation accuracy and macro F1, external test "
                                   "macro F1, their difference (validation minus test) and the model file.")
    r.add_argument("project", metavar="PROJECT_DIR")
    r.add_argument("--json", action="store_true", help="print a JSON list of objects with those keys")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    i = sub.add_parser("info", help="describe a model file")
    i.add_argument("model", metavar="MODEL")
    i.add_argument("--json", action="store_true")
    i.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    d = sub.add_parser("demo-data", help="generate the built-in cartoon pony dataset")
    d.add_argument("dir", metavar="DIR")
    d.add_argument("--per-class", type=_positive_int, default=60, metavar="N")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", type=_positive_int, default=150, metavar="PX")
    d.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return p


# ------------------------------------------------------------------ progress output


def _fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _make_progress_callback(stream, json_mode: bool):
    from .core.callbacks import Callback

    class ProgressBar(Callback):
        """Progress bar with ETA on stderr; a readable epoch table (or JSON lines) on stdout."""

        def __init__(self) -> None:
            self.tty = stream.isatty()
            # Piped output gets a line at most every 5 s, and none for work shorter than that.
            self.last_draw = 0.0 if self.tty else time.perf_counter()
            self.epochs = 1
            self.t0 = time.perf_counter()
            self.epoch_times: list[float] = []
            self.epoch_start = self.t0
            self.epoch = 0

        def _draw(self, text: str, force: bool = False) -> None:
            now = time.perf_counter()
            if not (force and self.tty) and now - self.last_draw < (0.1 if self.tty else 5.0):
                return
            self.last_draw = now
            if self.tty:
                stream.write("\r" + text[:118].ljust(118))
            else:
                stream.write(text + "\n")
            stream.flush()

        def _end_line(self) -> None:
            if self.tty:
                stream.write("\r" + " " * 118 + "\r")
                stream.flush()

        def on_prepare_progress(self, stage, done, total):
            frac = done / max(total, 1)
            self._draw(f"{stage:<24} {_bar(frac)} {done}/{total}", force=done == total)
            if done == total:
                self._end_line()

        def on_message(self, text):
            self._end_line()
            stream.write(text + "\n")
            stream.flush()

        def on_train_begin(self, logs):
            self.epochs = logs.get("epochs", 1)
            self.t0 = time.perf_counter()
            if not json_mode:
                print(f"Training {logs.get('recipe')} on {logs.get('train_images')} images "
                      f"(validating on {logs.get('val_images')}), device: {logs.get('device')}")
                print(f"{'epoch':>5} {'phase':>8} {'train loss':>10} {'train acc':>9} {'val loss':>9} "
                      f"{'val acc':>8} {'img/s':>8} {'time':>7}", flush=True)

        def on_epoch_begin(self, epoch, logs):
            self.epoch = epoch
            self.epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs):
            elapsed = time.perf_counter() - self.epoch_start
            per_epoch = (sum(self.epoch_times) / len(self.epoch_times)) if self.epoch_times else None
            total_imgs = self.trainer._state["training"]["train_images"]
            frac = min(1.0, logs["seen"] / max(total_imgs, 1))
            if per_epoch is None:
                per_epoch = elapsed / max(frac, 1e-6)
            eta = per_epoch * (1 - frac) + per_epoch * (self.epochs - self.epoch)
            # every epoch's first batch is drawn, however fast the epochs go
            self._draw(f"epoch {self.epoch}/{self.epochs} {_bar(frac)} {int(frac * 100):3d}%  loss {logs['loss']:.3f}"
                       f"  acc {logs['accuracy']:.3f}  {logs['images_per_second']:.0f} img/s  ETA {_fmt_time(eta)}",
                       force=batch == 0)

        def on_epoch_end(self, epoch, logs):
            self.epoch_times.append(time.perf_counter() - self.epoch_start)
            self._end_line()
            if json_mode:
                keep = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second",
                        "seconds", "phase", "lr")
                print(json.dumps({k: _json_num(logs[k]) for k in keep if k in logs}), flush=True)
            else:
                print(f"{epoch:>5} {logs.get('phase', ''):>8} {logs['train_loss']:>10.4f} {logs['train_accuracy']:>9.3f} "
                      f"{logs['val_loss']:>9.4f} {logs['val_accuracy']:>8.3f} {logs['images_per_second']:>8.0f} "
                      f"{logs['seconds']:>6.1f}s", flush=True)

    return ProgressBar()


def _bar(frac: float, width: int = 24) -> str:
    n = int(round(frac * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ------------------------------------------------------------------------- commands


def _augment_config(a: argparse.Namespace):
    """The augmentation the train options ask for: "auto" (the policy's), None (off) or the
    strengths (--augment mild/strong as the base, single strengths on top)."""
    from .core.augment import AugmentConfig
    from .core.policy import MILD, STRONG

    strengths = {"rotation": a.rotation, "width_shift": a.shift, "height_shift": a.shift, "shear": a.shear,
                 "zoom": a.zoom, "brightness": a.brightness, "contrast": a.contrast}
    given = {k: v for k, v in strengths.items() if v is not None}
    mode = "off" if a.no_augment else a.augment
    if a.no_augment and a.augment not in ("auto", "off"):
        raise UsageError(f"--no-augment cannot be combined with --augment {a.augment}")
    if mode == "off":
        flags = [k for k, v in (("--no-flip", a.no_flip or None), ("--rotation", a.rotation), ("--shift", a.shift),
                                ("--shear", a.shear), ("--zoom", a.zoom), ("--brightness", a.brightness),
                                ("--contrast", a.contrast)) if v is not None]
        if flags:
            off = "--no-augment" if a.no_augment else "--augment off"
            raise UsageError(f"{off} turns augmentation off; it cannot be combined with {', '.join(flags)}")
        return None
    if mode == "auto" and not given:
        return "auto"  # --no-flip alone: the policy's choice, never flipped (TrainConfig.allow_flip)
    base = {"auto": AugmentConfig(), "mild": MILD, "strong": STRONG}[mode].to_dict()
    if mode != "auto":
        base["horizontal_flip"] = True
    cfg = AugmentConfig(**(base | given))
    if a.no_flip:
        cfg.horizontal_flip = False
    return None if cfg.is_identity else cfg


def cmd_train(a: argparse.Namespace) -> int:
    from .core import distributed

    world = distributed.init_from_env(a.device)
    try:
        return _train(a, world)
    finally:
        distributed.shutdown()


def _train(a: argparse.Namespace, world) -> int:
    from .core.runs import is_project

    if a.out is not None and Path(a.out).exists() and not a.overwrite:
        raise UsageError(f"{a.out}: already exists; choose another --out or pass --overwrite to replace it")
    if not Path(a.data_dir).is_dir():
        raise UsageError(f"{a.data_dir}: not a folder")
    if a.test_dir and not Path(a.test_dir).is_dir():
        raise UsageError(f"{a.test_dir}: test folder not found")
    _check_class_folder_names(a.data_dir)
    as_project = is_project(a.data_dir)  # a store is never made here: a folder becomes a project in the app
    if not as_project and a.out is None:
        raise UsageError(f"--out is needed: {a.data_dir} is not a project (open it in the app once to train it "
                         "as a project, with its runs recorded and its models kept in it)")
    if as_project and a.val_split is not None:
        raise UsageError(f"{a.data_dir} is a project: it trains on its own split (set in the app, Dataset > "
                         "Splits...), so --val-split cannot be used; leave it out, or train a copy of the folder")
    project = split = None
    if as_project:
        project, split = _open_project(a.data_dir, world)
    try:
        return _train_with(a, world, project, split)
    finally:
        if project is not None:
            project.close()


def _check_class_folder_names(data_dir: str) -> None:
    """Class folders whose names could not be saved in a model (control characters, names
    that are one name once Unicode-normalised): refused before any picture is read, rather
    than after a whole training when the model is saved."""
    from .core.folders import NotAFolderError, list_class_folders
    from .core.trained import class_name_problem, class_names_problem

    try:
        names = list_class_folders(data_dir)
    except (NotAFolderError, OSError):
        return  # the training says what is wrong with the folder itself
    for name in names:
        problem = class_name_problem(name)
        if problem:
            raise UsageError(f"{_safe_text(os.path.join(data_dir, name))}: {problem}; rename the folder")
    problem = class_names_problem(names) if names else None
    if problem and "appears twice" in problem:
        raise UsageError(f"{data_dir}: {problem}; rename one of the folders")


def _open_project(data_dir: str, world) -> tuple[Any, Any]:
    """The project (on the process that records) and its split (on every process): its new
    files synced and given a split first, as the app does when it opens the project."""
    from .core.project import Project, ProjectError
    from .core.runs import project_split
    from .core.store import StoreError

    project = split = error = None
    if world.is_main:
        try:
            project = Project(data_dir)
            if not project.read_only:
                project.sync()
                project.make_missing_splits()
            split = project_split(project.store)
        except (ProjectError, StoreError) as e:
            if project is not None:
                project.close()
            project, error = None, f"{data_dir}: the project cannot be opened: {e}"
    split, error = world.broadcast_object((split, error))  # every process fails together, none waits
    if error:
        raise UsageError(error)
    return project, split


def _train_with(a: argparse.Namespace, world, project, split) -> int:
    from .core.callbacks import Callback, EarlyStopping, ModelCheckpoint
    from .core.engine import TrainConfig, Trainer, TrainingStopped
    from .core.modelfile import cleanup_stale_temp_files
    from .core.runs import RunRecord, run_metrics, run_outcome

    main = world.is_main
    test_dir = a.test_dir
    if split is not None and test_dir is None and split.test_folder:
        test_dir = split.test_folder
        if not Path(test_dir).is_dir():
            raise UsageError(f"{test_dir}: the project's test folder is gone; choose another in the app "
                             "(Dataset > Splits...) or pass --test-dir")
        if main:
            sys.stderr.write(f"test folder: {test_dir} (the project's)\n")
    record = RunRecord(project.store if project is not None else None,
                       project.root if project is not None else Path(a.data_dir))
    recipe = a.recipe
    if recipe == "auto":
        from .core.engine import glance_dataset
        from .core.policy import default_recipe

        facts = glance_dataset(a.data_dir, "scratch")
        recipe, why = default_recipe(facts)
        if main and facts.classes >= 2:  # otherwise the scan below says what is wrong, in one line
            sys.stderr.write(f"recipe: auto: {recipe} ({why})\n")
    cfg = TrainConfig(recipe=recipe, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, optimizer=a.optimizer,
                      image_size=a.image_size, val_split=a.val_split, seed=a.seed,
                      augment=_augment_config(a), allow_flip=not a.no_flip, dropout=a.dropout,
                      weight_decay=a.weight_decay, early_stopping=a.early_stopping, device=a.device,
                      unsure_threshold=a.unsure_threshold, refit=a.refit, head=a.head, mixed_precision=a.amp,
                      deterministic=a.deterministic)
    trainer = Trainer(cfg, world)
    out = Path(a.out) if a.out is not None else None
    if main and project is not None:
        model_path = record.start(trainer.config, dataset=str(project.root), test_dir=test_dir, split=split,
                                  source="command line", processes=world.size)
        if out is None:
            out = model_path
        if record.error:
            sys.stderr.write(f"note: this run is not recorded in the project: {record.error}\n")
    out = world.broadcast_object(out)  # every process learns it (or that there is none) before any fails
    if out is None:
        raise UsageError(f"{a.data_dir}: --out is needed (the project cannot record this run: "
                         f"{record.error or 'see the first process'})")
    if main:
        out.parent.mkdir(parents=True, exist_ok=True)
        cleanup_stale_temp_files(out.parent)

    class _Epochs(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            record.add_epoch(epoch, logs)

    callbacks = [_make_progress_callback(sys.stderr, a.json), ModelCheckpoint(out, monitor=None),
                 _Epochs()] if main else []
    if a.early_stopping:
        callbacks.append(EarlyStopping("val_loss", patience=a.early_stopping))

    def on_sigint(signum, frame):  # first Ctrl-C: stop after this batch, keep the best model
        if trainer.should_stop:
            raise KeyboardInterrupt
        trainer.should_stop = True
        sys.stderr.write("\nStopping after this batch; the best model so far is kept. Ctrl-C again to abort.\n")

    old = signal.signal(signal.SIGINT, on_sigint)
    t0 = time.perf_counter()
    try:
        result = trainer.fit(a.data_dir, callbacks=callbacks, test_dir=test_dir, split=split)
    except BaseException as e:
        record.finish("stopped" if isinstance(e, TrainingStopped) else "failed",
                      seconds=time.perf_counter() - t0, model_path=None,
                      metrics={"error": str(e) or type(e).__name__, "epochs_run": 0})
        raise
    finally:
        signal.signal(signal.SIGINT, old)
    if result.epochs_run == 0:
        record.finish("stopped", seconds=result.seconds, model_path=None, metrics=run_metrics(result))
        raise RuntimeError("stopped before the first epoch finished; no model was written")
    if not main:
        return EXIT_OK
    if record.run_id is not None:
        result.model.metrics["run_id"] = record.run_id
    result.model.save(out)
    status, error = run_outcome(result, trainer.diverged)
    record.finish(status, seconds=result.seconds, model_path=str(out), metrics=run_metrics(result, error=error))
    if trainer.diverged:
        # the best model from before the divergence is kept, but the run did not do what was asked
        raise RuntimeError(f"{result.stop_reason} The best model before that (epoch {result.best_epoch}) "
                           f"was written to {out}.")
    best_val = max(result.history.get("val_accuracy", [float("nan")]), default=float("nan"))
    summary: dict[str, Any] = {
        "model": str(out), "recipe": recipe, "classes": result.model.classes,
        "best_val_accuracy": _json_num(best_val), "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "val_macro_f1": result.val_report.macro_f1 if result.val_report else None,
        "stopped": result.stopped, "stop_reason": result.stop_reason, "seconds": round(result.seconds, 2),
        "device": result.device, "image_size": result.model.image_size, "channels": result.model.channels,
        "refit_epochs": result.refit_epochs, "processes": world.size, "run_id": record.run_id,
        "train_images": result.model.training.get("train_images"),
        "val_images": result.model.training.get("val_images"),
        "plan": result.plan.to_dict() if result.plan else None,
        "head": (result.model.training.get("head_choice") or {}).get("choice"),
        "skipped_files": [s.to_dict() for s in result.skipped],
    }
    if result.test_report is not None:
        t = result.test_report
        summary["test"] = {"accuracy": t.accuracy, "macro_f1": t.macro_f1, "count": t.count,
                           "per_class": t.per_class, "confusion_matrix": t.confusion_matrix}
    if result.test_before_refit is not None:
        t = result.test_before_refit
        summary["test_before_refit"] = {"accuracy": t.accuracy, "macro_f1": t.macro_f1, "count": t.count}
    if a.json:
        print(json.dumps({"summary": summary}), flush=True)
    else:
        refit = (f", then refitted on all images for {result.refit_epochs} epochs" if result.refit_epochs else "")
        print(f"\nBest validation accuracy {best_val:.3f} at epoch {result.best_epoch}{refit}; "
              f"model written to {out}  ({result.seconds:.1f} s on {result.device})")
        if result.test_report is not None:
            print(f"External test set: accuracy {result.test_report.accuracy:.3f}, macro F1 "
                  f"{result.test_report.macro_f1:.3f} on {result.test_report.count} images "
                  f"(validation accuracy {best_val:.3f})")
        if result.skipped:
            print(f"{len(result.skipped)} file(s) skipped:")
            for s in result.skipped[:20]:
                print(f"  {s.path}: {s.reason}")
            if len(result.skipped) > 20:
                print(f"  ... and {len(result.skipped) - 20} more (see --json)")
    return EXIT_OK


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .core.engine import evaluate_model
    from .core.trained import TrainedModel

    if not Path(a.data_dir).is_dir():
        raise UsageError(f"{a.data_dir}: not a folder")
    model = TrainedModel.load(a.model)
    report, skipped = evaluate_model(model, a.data_dir, device=a.device)
    d = report.to_dict() | {"skipped_files": [s.to_dict() for s in skipped]}
    if a.json:
        print(json.dumps(d))
        return EXIT_OK
    print(f"Accuracy {report.accuracy:.3f}, macro F1 {report.macro_f1:.3f} on {report.count} images")
    w = max(len(c) for c in report.classes)
    print(f"{'class':<{w}} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for c in report.classes:
        m = report.per_class[c]
        print(f"{c:<{w}} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8}")
    print("Confusion matrix (rows: true class, columns: predicted):")
    for c, row in zip(report.classes, report.confusion_matrix):
        print(f"{c:<{w}} " + " ".join(f"{v:>5}" for v in row))
    for s in skipped:
        print(f"skipped {s.path}: {s.reason}")
    return EXIT_OK


def cmd_predict(a: argparse.Namespace) -> int:
    from .core.predict import Predictor
    from .core.trained import TrainedModel

    if a.imagenet:
        model, paths = TrainedModel.imagenet(), a.args
    else:
        if len(a.args) < 2:
            raise UsageError("predict needs MODEL and at least one PATH (or --imagenet PATH...)")
        model, paths = TrainedModel.load(a.args[0]), a.args[1:]
    missing = [p for p in paths if not os.path.exists(p)]
    predictor = Predictor(model, a.device, a.unsure_threshold)
    results = predictor.predict_paths([p for p in paths if p not in missing], top_k=a.top_k)
    from .core.predict import Prediction

    results += [Prediction(p, error="file not found") for p in missing]
    if a.json:
        print(json.dumps([r.to_dict() for r in results]))
    else:
        for r in results:
            path = _safe_text(str(r.path))
            if r.error:
                print(f"{path}: ERROR {_safe_text(str(r.error))}")
                continue
            label = _safe_text(str(r.label))
            verdict = f"not sure (best guess {label}, {r.confidence:.1%})" if r.unsure else f"{label} ({r.confidence:.1%})"
            others = ", ".join(f"{_safe_text(c)} {p:.1%}" for c, p in r.top[1:])
            print(f"{path}: {verdict}" + (f"   [{others}]" if others else ""))
    # a folder without pictures is a result of its own, saying why (core.predict.list_inputs)
    return EXIT_OK if any(r.error is None for r in results) else EXIT_FAIL


def cmd_info(a: argparse.Namespace) -> int:
    from .core.trained import TrainedModel

    s = TrainedModel.load(a.model).summary()
    if a.json:
        print(json.dumps(s))
        return EXIT_OK
    print(f"Model {_safe_text(str(s['path']))}")
    print(f"  recipe: {s['recipe']}, input {s['image_size']}x{s['image_size']} "
          f"{'grayscale' if s['channels'] == 1 else 'colour'}, {s['parameters']:,} parameters")
    names = ", ".join(_safe_text(c) for c in s["classes"][:20])
    print(f"  classes ({s['num_classes']}): {names}{' ...' if s['num_classes'] > 20 else ''}")
    print(f"  'not sure' below {s['unsure_threshold']:.0%} confidence; created {_safe_text(str(s['created']))}")
    m = s["metrics"]
    for key, what in (("validation", "validation"), ("test", "external test")):
        scores = m.get(key)
        if isinstance(scores, dict) and all(_is_number(scores.get(k)) for k in ("accuracy", "macro_f1")):
            print(f"  {what} accuracy {scores['accuracy']:.3f}, macro F1 {scores['macro_f1']:.3f}")
    return EXIT_OK


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def cmd_demo_data(a: argparse.Namespace) -> int:
    from .core.demo import generate_demo_dataset

    counts = generate_demo_dataset(a.dir, per_class=a.per_class, seed=a.seed, size=a.size)
    print(f"Demo dataset in {a.dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return EXIT_OK


def cmd_runs(a: argparse.Namespace) -> int:
    from .core.runs import RUN_COLUMNS, is_project, run_row
    from .core.store import ProjectStore

    if not Path(a.project).is_dir():
        raise UsageError(f"{a.project}: not a folder")
    if not is_project(a.project):
        raise UsageError(f"{a.project}: not a project (no runs recorded: open it in the app, or train it with "
                         "'ponyclassifier train')")
    store = ProjectStore(a.project, read_only=True)
    try:
        rows = [run_row(r) for r in store.runs()]
    finally:
        store.close()
    if a.json:
        print(json.dumps([{k: _json_num(v) for k, v in row.items()} for row in rows]))
        return EXIT_OK
    if not rows:
        print(f"No runs recorded in {a.project} yet.")
        return EXIT_OK

    def cell(k: str, v: Any) -> str:
        if v is None:
            return "-"
        if k == "difference":
            return f"{v:+.3f}"
        if isinstance(v, float):
            return f"{v:.3f}"
        return _safe_text(str(v))

    heads = {"id": "id", "recipe": "recipe", "started": "started", "status": "status", "epochs": "epochs",
             "val_accuracy": "val acc", "val_f1": "val F1", "test_f1": "test F1", "difference": "val-test",
             "model": "model"}
    table = [[heads[k] for k in RUN_COLUMNS]] + [[cell(k, row[k]) for k in RUN_COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(RUN_COLUMNS) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return EXIT_OK


def _safe_text(text: str) -> str:
    """Control characters (a name from a file we did not write) shown, not obeyed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "info": cmd_info,
            "demo-data": cmd_demo_data, "runs": cmd_runs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)  # exits 2 on usage errors
    if a.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[a.command](a)
    except UsageError as e:
        parser.exit(EXIT_USAGE, f"ponyclassifier {a.command}: error: {e}\n")
    except KeyboardInterrupt:
        sys.stderr.write("ponyclassifier: interrupted\n")
        return 130
    except Exception as e:
        if getattr(a, "debug", False):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
        who = f" (process {rank})" if rank != "0" else ""
        sys.stderr.write(f"ponyclassifier {a.command}{who}: error: {msg}\n")
        return EXIT_FAIL
    return EXIT_OK
