"""QtLiveTraining: the Training tab: progress, live curves and the log of a run.

The run's signals only store numbers here; a 25 Hz timer pushes them into curves created
once (``setData``), so the plots never redraw per batch. What keeps the event loop under
100 ms while training (RELIABILITY case 24), measured with ``tests/gui/latency.py``: the
axes (their tick labels and grid were most of a repaint) get fixed ranges for the run,
move only when the data leaves them (:func:`range_top`), draw major grid lines only and
are cached as pixmaps; at most one plot is pushed per timer tick (widgets made dirty
together are painted in one go); the view is painted once while idle
and again before the run starts competing for the CPU (:meth:`release_after_paint`).

The "best" line marks the epoch the engine keeps, by the core's one rule
(:func:`~ponyclassifier.core.callbacks.epoch_score`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.callbacks import epoch_score
from ...core.runs import TrainingOutcome
from ..widgets.format import fmt_duration

__all__ = ["QtLiveTraining", "range_top"]

REDRAW_MS = 40  # 25 Hz: progress, labels and the per-epoch curves
BATCH_PLOT_S = 0.2
SMOOTHING = 0.9  # exponential moving average of the per-batch loss
COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "raw": (150, 150, 150, 110)}
STAGES = {"scan": "Reading images", "scan test set": "Reading the test images",
          "refit on all images": "Refitting on all images",
          "choosing the head": "Choosing the head (cross-validation)"}


def _nice_ceiling(v: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 times a power of ten that is at least ``v``."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(v))
    return next(m * base for m in (1, 1.5, 2, 3, 5, 7.5, 10) if m * base >= v * (1 - 1e-9))


def range_top(values, top: float) -> float:
    """The top of a [0, top] axis for ``values``: kept while they fit and fill more than a
    third of it, so the axis (and its tick labels) are re-laid only now and then."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return top or 1.0
    high = max(finite) * 1.05
    if top and top / 3 <= high <= top:
        return top
    return _nice_ceiling(high)


def _plot(title: str, left: str, bottom: str, legend_at_bottom: bool = False) -> pg.PlotWidget:
    p = pg.PlotWidget()
    p.setBackground("w")
    p.setTitle(title, color="#222", size="11pt")
    p.setLabel("left", left)
    p.setLabel("bottom", bottom)
    p.showGrid(x=True, y=True, alpha=0.25)
    # accuracy climbs to the top right: its legend goes bottom right, out of the way
    p.addLegend(offset=(-8, -8) if legend_at_bottom else (-8, 8))
    p.setClipToView(True)
    p.getAxis("left").enableAutoSIPrefix(False)
    p.setMinimumHeight(180)
    # Axes (tick labels and grid) and titles are re-drawn from a pixmap unless their
    # range changed: replaying their text on every repaint was most of its cost.
    for name in ("left", "bottom"):
        # grid lines at the labelled ticks only: the minor ones tripled the cost of
        # every axis repaint, and the plot reads as well without them
        p.getAxis(name).setStyle(maxTickLevel=0)
    for item in (p.getAxis("left"), p.getAxis("bottom"), p.getPlotItem().titleLabel, p.getPlotItem().legend):
        if item is not None:
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    p.setMouseEnabled(x=False, y=False)  # ranges are managed below; a drag would fight them
    p.hideButtons()
    return p


class QtLiveTraining(QWidget):
    """Progress bar, status line, loss/accuracy/batch-loss plots and the log of one run."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.progress.setTextVisible(True)
        self.status_label = QLabel("Press Start training.")
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setWordWrap(True)  # a finished run's summary is long at 1280 px

        self.loss_plot = _plot("Loss per epoch", "loss", "epoch")
        self.acc_plot = _plot("Accuracy per epoch", "accuracy", "epoch", legend_at_bottom=True)
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.batch_plot = _plot("Training loss per batch", "loss", "batch")
        pen = lambda c, w=2: pg.mkPen(c, width=w)  # noqa: E731
        sym = lambda c, s: {"symbol": s, "symbolSize": 6, "symbolBrush": c}  # noqa: E731
        self.curves = {
            "train_loss": self.loss_plot.plot([], [], pen=pen(COLOURS["train"]), name="training",
                                              **sym(COLOURS["train"], "o")),
            "val_loss": self.loss_plot.plot([], [], pen=pen(COLOURS["val"]), name="validation",
                                            **sym(COLOURS["val"], "s")),
            "train_accuracy": self.acc_plot.plot([], [], pen=pen(COLOURS["train"]), name="training",
                                                 **sym(COLOURS["train"], "o")),
            "val_accuracy": self.acc_plot.plot([], [], pen=pen(COLOURS["val"]), name="validation",
                                               **sym(COLOURS["val"], "s")),
            "batch_raw": self.batch_plot.plot([], [], pen=pen(COLOURS["raw"], 1), name="each batch"),
            "batch_smooth": self.batch_plot.plot([], [], pen=pen(COLOURS["train"]), name="smoothed"),
        }
        self.curves["batch_raw"].setDownsampling(auto=True, method="mean")
        self.curves["batch_smooth"].setDownsampling(auto=True, method="mean")
        self.best_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#2e7d32", style=Qt.PenStyle.DashLine),
                                         label="best", labelOpts={"position": 0.45, "color": "#2e7d32"})
        self.best_line.setVisible(False)
        self.acc_plot.addItem(self.best_line)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace", 9))
        self.log.setPlaceholderText("What happens during training is written here.")

        plots = QWidget()
        g = QGridLayout(plots)
        g.setContentsMargins(0, 0, 0, 0)
        g.addWidget(self.loss_plot, 0, 0)
        g.addWidget(self.acc_plot, 0, 1)
        g.addWidget(self.batch_plot, 1, 0, 1, 2)
        g.setRowStretch(0, 3)
        g.setRowStretch(1, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(plots)
        split.addWidget(self.log)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        v = QVBoxLayout(self)
        v.addWidget(self.progress)
        v.addWidget(self.status_label)
        v.addWidget(split, 1)

        self._release: Callable[[], None] | None = None
        self.reset()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self.batch_plot.viewport().installEventFilter(self)

    # ================================================================ state
    def reset(self) -> None:
        """Forget the numbers of the last run (the curves follow at the next push)."""
        self.series: dict[str, list[float]] = {k: [] for k in
                                               ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")}
        self.batch_x: list[float] = []
        self.batch_raw: list[float] = []
        self.batch_smooth: list[float] = []
        self._ema: float | None = None
        self._dirty = self._loss_dirty = self._acc_dirty = self._batches_dirty = True
        self._loss_top = self._batch_top = 0.0
        self._batch_xmax = 0
        self._progress: dict[str, Any] = {}
        self.best_epoch: int | None = None
        self._best_score: tuple[float, float] | None = None
        self._t_train: float | None = None
        self._batch_pushed = 0.0
        self._train_images = 0
        self._epoch_done = self._epoch_offset = 0
        self.planned_total = 1

    def clear(self, project_open: bool) -> None:
        """As before any run: empty curves, no best epoch, no log, no progress."""
        self.reset()
        self.log.clear()
        self.best_line.setVisible(False)
        self.push_plots()
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.status_label.setText("Press Start training." if project_open else "Open a project first.")

    def write(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def begin(self, planned_total: int, epoch_offset: int, what: str) -> None:
        """A run was started: fixed epoch range, progress at 0, the redraw timer on."""
        self.planned_total = planned_total
        self.set_epoch_range()
        self._t_train = None
        self._epoch_done = self._epoch_offset = epoch_offset
        self.progress.setValue(0)
        self.progress.setFormat("Reading images…")
        self.status_label.setText(f"Preparing {what}…")
        self.redraw_timer.start()

    def release_after_paint(self, release: Callable[[], None]) -> None:
        """Call ``release`` once this view has been painted (or at the next redraw tick if
        it is not shown): its first paint is the costliest, and comes before the run
        starts competing with the GUI thread."""
        self._release = release
        self.batch_plot.viewport().update()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and obj is self.batch_plot.viewport() and self._release:
            # the training view is being painted now: the run starts once this paint is done
            QTimer.singleShot(0, self._release)
            self._release = None
        return False

    # ======================================================== run's signals
    @Slot(str, int, int)
    def on_prepare_progressed(self, stage: str, done: int, total: int) -> None:
        what = STAGES.get(stage, f"Computing {stage}")
        self.progress.setFormat(f"{what}: {done} / {total}")
        self.progress.setValue(int(1000 * done / max(total, 1)))

    @Slot(dict)
    def on_train_started(self, logs: dict) -> None:
        self._t_train = time.perf_counter()
        self._train_images = logs.get("train_images", 0)
        planned = int(logs.get("epochs", self.planned_total))  # the run's own count (auto: the policy's)
        if planned != self.planned_total:
            self.planned_total = planned
            self.set_epoch_range()
        # the batch plot's x axis: every batch this run plans, fixed
        per_epoch = math.ceil(self._train_images / max(1, int(logs.get("batch_size") or 32)))
        epochs = int(logs.get("epochs", 1)) - int(logs.get("first_epoch", 1)) + 1
        self._batch_xmax = max(10, len(self.batch_x) + max(1, epochs) * per_epoch)
        self.batch_plot.setXRange(0, self._batch_xmax, padding=0)
        self.write(f"Training {logs.get('recipe')} on {logs.get('device')}: {logs.get('train_images')} training and "
                   f"{logs.get('val_images')} validation images, epochs {logs.get('first_epoch')}–"
                   f"{logs.get('epochs')}.")
        self.progress.setValue(0)

    @Slot(int, dict)
    def on_epoch_started(self, epoch: int, logs: dict) -> None:
        self._progress = {"epoch": epoch, "seen": 0,
                          "images_per_second": self._progress.get("images_per_second", 0.0)}
        self._dirty = True

    @Slot(dict)
    def on_batches_finished(self, info: dict) -> None:
        for loss in info["batch_losses"]:
            if not math.isfinite(loss):
                continue
            self._ema = loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            self.batch_x.append(len(self.batch_x) + 1)
            self.batch_raw.append(loss)
            self.batch_smooth.append(self._ema)
        self._progress = info
        self._dirty = self._batches_dirty = True

    @Slot(int, dict)
    def on_epoch_finished(self, epoch: int, logs: dict) -> None:
        s = self.series
        s["epoch"].append(epoch)
        for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            v = logs.get(k)
            s[k].append(float(v) if v is not None else math.nan)
        self._epoch_done = epoch
        score = epoch_score(logs)  # the engine's rule, so the line marks the model it keeps
        if score is not None and (self._best_score is None or score > self._best_score):
            self._best_score, self.best_epoch = score, epoch
        self._progress = {"epoch": epoch, "seen": self._train_images, "train_images": self._train_images,
                          "images_per_second": logs.get("images_per_second", 0.0)}
        self._dirty = self._loss_dirty = self._acc_dirty = True
        val = ""
        if logs.get("val_loss") is not None and math.isfinite(logs["val_loss"]):
            val = f" · val loss {logs['val_loss']:.4f}, val acc {100 * logs['val_accuracy']:.1f}%"
        self.write(f"Epoch {epoch}/{self.planned_total}: loss {logs.get('train_loss', math.nan):.4f}, "
                   f"acc {100 * logs.get('train_accuracy', math.nan):.1f}%{val} · {logs.get('seconds', 0):.1f} s, "
                   f"{logs.get('images_per_second', 0):,.0f} img/s")

    def show_outcome(self, outcome: TrainingOutcome) -> None:
        """The run ended: the last points, the best line on the model kept, the verdict."""
        self.redraw_timer.stop()
        if outcome.best_epoch is not None:
            self.best_epoch = outcome.best_epoch  # the model kept; the line shows it
        self.push_plots()
        if outcome.status == "failed":
            self.write(f"Training failed: {outcome.error}")
            if outcome.details:
                self.write(outcome.details)
            self.progress.setFormat("Failed")
            self.status_label.setText(f"<span style='color:#b00020'>{outcome.error}</span>")
            return
        v = outcome.validation or {}
        verdict = "Stopped" if outcome.status == "stopped" else "Finished"
        if outcome.stop_reason:
            self.write(f"Stopped: {outcome.stop_reason}")
        text = (f"{verdict} after {outcome.epochs_run} epoch{'s' if outcome.epochs_run != 1 else ''} in "
                f"{fmt_duration(outcome.seconds)}")
        if outcome.best_epoch is not None:
            text += f"; best epoch {outcome.best_epoch}"
        if outcome.refit_epochs:
            text += " (then refitted on all images)"
        if v:
            text += f": validation accuracy {100 * v['accuracy']:.1f}%, macro F1 {v['macro_f1']:.3f}"
        if outcome.test:
            text += f"; external test F1 {outcome.test['macro_f1']:.3f}"
        self.write(text + ".")
        if outcome.model_path:
            self.write(f"Model saved to {outcome.model_path}")
        if outcome.skipped:
            self.write(f"{outcome.skipped} unreadable file(s) were skipped.")
        self.progress.setValue(1000 if outcome.status == "finished" else self.progress.value())
        self.progress.setFormat(verdict)
        self.status_label.setText(text + ("" if not outcome.model_path else
                                          " &nbsp;— see <b>Evaluation</b> for the mistakes"))

    # ================================================================ redraw
    @Slot()
    def _on_redraw_timer_timeout(self) -> None:
        # Only what changed is pushed, and at most one plot per tick: every repaint costs
        # GUI-thread time that the training thread competes for (the GIL), and widgets
        # made dirty in the same tick are all painted in one go (one long stall).
        if self._release is not None:  # the batch plot was not painted (hidden): go on
            self._release()
            self._release = None
        now = time.perf_counter()
        if self._loss_dirty:
            self._push_loss()
        elif self._acc_dirty:
            self._push_accuracy()
        elif self._batches_dirty and now - self._batch_pushed >= BATCH_PLOT_S:
            # a loss curve is live enough at 5 Hz
            self._push_batches(now)
        self._update_progress()

    def push_plots(self) -> None:
        self._dirty = True
        self._push_loss()
        self._push_accuracy()
        self._push_batches(time.perf_counter())
        self._update_progress()

    def _push_loss(self) -> None:
        self._loss_dirty = False
        s = self.series
        for k in ("train_loss", "val_loss"):
            self.curves[k].setData(s["epoch"], s[k])
        top = range_top(s["train_loss"] + s["val_loss"], self._loss_top)
        if top != self._loss_top:
            self._loss_top = top
            self.loss_plot.setYRange(0, top, padding=0)

    def _push_accuracy(self) -> None:
        self._acc_dirty = False
        s = self.series
        for k in ("train_accuracy", "val_accuracy"):
            self.curves[k].setData(s["epoch"], s[k])
        if self.best_epoch is not None:
            self.best_line.setValue(self.best_epoch)
            self.best_line.setVisible(True)

    def _push_batches(self, now: float) -> None:
        self._batches_dirty = False
        self._batch_pushed = now
        n = len(self.batch_x)
        if n > self._batch_xmax:  # more batches than planned (a halved batch size)
            self._batch_xmax = max(10, math.ceil(1.25 * n))
            self.batch_plot.setXRange(0, self._batch_xmax, padding=0)
        self.curves["batch_raw"].setData(self.batch_x, self.batch_raw)
        self.curves["batch_smooth"].setData(self.batch_x, self.batch_smooth)
        top = range_top(self.batch_raw[-400:], self._batch_top)
        if top != self._batch_top:
            self._batch_top = top
            self.batch_plot.setYRange(0, top, padding=0)

    def set_epoch_range(self) -> None:
        """Whole epochs on the x axis, fixed for the run (a moving range re-lays the axes)."""
        n = max(1, self.planned_total)
        step = max(1, math.ceil(n / 10))  # whole epochs, never 1.5
        for plot in (self.loss_plot, self.acc_plot):
            plot.setXRange(0.5, n + 0.5, padding=0)
            plot.getAxis("bottom").setTickSpacing(step, step)

    def _update_progress(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        p = self._progress
        if not p or self._t_train is None:
            return
        total = max(1, self.planned_total - self._epoch_offset)
        within = p.get("seen", 0) / max(1, p.get("train_images") or self._train_images or 1)
        epochs_before = max(0, p.get("epoch", 1) - 1 - self._epoch_offset)
        if p.get("epoch", 0) == self._epoch_done:
            epochs_before, within = self._epoch_done - self._epoch_offset, 0.0
        frac = min(1.0, (epochs_before + min(within, 1.0)) / total)
        self.progress.setValue(int(1000 * frac))
        elapsed = time.perf_counter() - self._t_train
        eta = elapsed * (1 - frac) / frac if frac > 0.02 else math.nan
        self.progress.setFormat(f"Epoch {max(p.get('epoch', 1), 1)} of {self.planned_total} · {100 * frac:.0f}%")
        self.status_label.setText(
            f"<b>Epoch {p.get('epoch', '')}</b> &nbsp; batch loss {p.get('loss', math.nan):.4f} &nbsp; "
            f"accuracy {100 * p.get('accuracy', math.nan):.1f}% &nbsp; "
            f"{p.get('images_per_second', 0):,.0f} images/s &nbsp; elapsed {fmt_duration(elapsed)} &nbsp; "
            f"<b>ETA {fmt_duration(eta)}</b>" if "loss" in p else
            f"<b>Epoch {p.get('epoch', '')}</b> &nbsp; {p.get('images_per_second', 0):,.0f} images/s &nbsp; "
            f"elapsed {fmt_duration(elapsed)} &nbsp; <b>ETA {fmt_duration(eta)}</b>")
