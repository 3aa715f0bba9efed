"""The application's state, once, without Qt: the open project and the models in use.

The GUI's places are views of these two objects. The main window creates one
:class:`ProjectSession` and one :class:`ModelSession`, hands them to every place in its
constructor, and changes them; the places listen to their events and never keep a copy
of what the session holds (the project's root, its store, its rows and counts, its
split and test folder, its runs). Training, evaluation, Explain and Predict read the
project's split, statuses and test folder through :meth:`ProjectSession.split`, which is
the one the Dataset place shows and edits: the split shown is the split trained on.

Events are plain callables (:class:`Event`), called synchronously in the order they
were connected. Sessions are changed on one thread (the GUI thread in the app); work on
other threads hands its result back first. A listener that raises does not stop the
others: the error is collected and raised once every listener has run.

``Project`` objects (core/project.py) are opened on a worker and handed to
:meth:`ProjectSession.attach`; everything else here is cheap and non-blocking except
:meth:`ProjectSession.split` and :meth:`ProjectSession.runs`, which read the store
(milliseconds; cached until the next change).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Event", "ModelSession", "ModelState", "ProjectSession", "Row"]


class Event:
    """A minimal signal: ``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._slots: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn not in self._slots:
            self._slots.append(fn)
        return fn

    def disconnect(self, fn: Callable[..., Any]) -> None:
        try:
            self._slots.remove(fn)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        errors = []
        for fn in list(self._slots):
            try:
                fn(*args)
            except Exception as e:  # every listener hears the event; the first error is raised after
                errors.append(e)
        if errors:
            raise errors[0]

    def __len__(self) -> int:
        return len(self._slots)


@dataclass(frozen=True)
class Row:
    """One picture of the project as listed: absolute path and class ("" = not sorted yet)."""

    path: str
    cls: str


class ProjectSession:
    """The open project: root, store (a core ``Project``), rows, counts, split, test folder, runs.

    Lifecycle: :meth:`open` (a root is chosen: views forget the last project and show
    "listing"), :meth:`set_rows` (the one walk of the folder listed it), :meth:`attach`
    (the store is open: labelling, training and runs work), :meth:`close`. ``opened`` is
    emitted with the new root (``None`` when closed), ``attached`` with the Project."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.project = None  # core.project.Project once attached
        self.rows: list[Row] = []
        self.classes: list[str] = []
        # the store's images as read on the worker that opened it (path -> [class, split, status,
        # reason]) and their per-class counts: there for the listeners of ``attached`` only
        self.entries: dict[str, list] = {}
        self.class_counts: dict | None = None
        self.busy_reason: Callable[[], str | None] = lambda: None
        self._split = None
        self._runs: list | None = None
        self._reader = None  # the session's own store connection while a project is attached
        self.opened = Event("opened")  # root or None: a new project is being opened (or none is open)
        self.attached = Event("attached")  # Project: its store is open
        self.rows_changed = Event("rows_changed")  # the listing or the classes changed
        self.counts_changed = Event("counts_changed")  # images, classes
        self.split_changed = Event("split_changed")  # the split, its settings, statuses or the test folder
        self.runs_changed = Event("runs_changed")  # a run was recorded, finished or deleted
        self.closing = Event("closing")  # Project: about to be let go (a listener may defer_close())
        self.closed = Event("closed")  # the project is no longer the session's
        self._holds: dict[int, int] = {}  # id(project) -> work still using it after it was let go

    # ------------------------------------------------------------------ lifecycle
    def open(self, root: str | os.PathLike) -> None:
        """A project folder was chosen: everything of the last one is forgotten."""
        self._release()
        self.root = os.fspath(root)
        self.opened.emit(self.root)

    def set_rows(self, rows: list[Row] | list[tuple[str, str]], classes: list[str] | None = None) -> None:
        self.rows = [r if isinstance(r, Row) else Row(*r) for r in rows]
        if classes is not None:
            self.classes = list(classes)
        else:
            self.classes = sorted({r.cls for r in self.rows if r.cls})
        self.rows_changed.emit()
        self.counts_changed.emit(*self.counts)

    def attach(self, project, entries: dict | None = None, class_counts: dict | None = None) -> bool:
        """The store of the current root is open (on a worker); labelling works from now.
        ``entries``: the store's images as read back on the worker (path -> [class, split,
        status, reason]) and ``class_counts`` their per-class counts. A project opened for a
        root that is no longer current is closed and False returned."""
        if self.root is None or os.path.realpath(str(project.root)) != os.path.realpath(self.root):
            project.close()  # opened for a project no longer current
            return False
        self.project = project
        self._open_reader()
        self.entries = entries if entries is not None else {}
        self.class_counts = class_counts
        self._split = None
        self._runs = None
        try:
            self.attached.emit(project)
        finally:
            # handed over, not kept: after this the store (split(), runs()) and the grid built
            # from them are the truth, and a stale copy here would only mislead
            self.entries, self.class_counts = {}, None
        self.split_changed.emit()
        self.runs_changed.emit()
        return True

    def close(self) -> None:
        self._release()
        self.root = None
        self.opened.emit(None)

    def release(self) -> None:
        """Let the project's store go (``closing``: work still writing to it defers the close)
        and keep the root and its listing (e.g. before the same folder is opened again)."""
        self._release(keep_rows=True)

    def _release(self, keep_rows: bool = False) -> None:
        had = self.root is not None
        project, self.project = self.project, None
        self._close_reader()
        if project is not None:
            self._holds.setdefault(id(project), 0)
            try:
                self.closing.emit(project)  # work still writing to it calls defer_close(project)
            finally:
                if self._holds.get(id(project)) == 0:
                    del self._holds[id(project)]
                    project.close()
        if not keep_rows:
            self.rows, self.classes = [], []
        self.entries, self.class_counts = {}, None
        self._split = None
        self._runs = None
        if had:
            self.closed.emit()

    def defer_close(self, project) -> Callable[[], None]:
        """Keep ``project`` open for work still running on it (an import, a camera save)
        after the session let it go; call the returned function when that work is done.
        The project is closed once the last such work has ended."""
        self._holds[id(project)] = self._holds.get(id(project), 0) + 1
        done_once = []

        def done() -> None:
            if done_once:
                return
            done_once.append(True)
            left = self._holds.get(id(project), 1) - 1
            if left <= 0:
                self._holds.pop(id(project), None)
                if project is not self.project:
                    project.close()
            else:
                self._holds[id(project)] = left

        return done

    # ------------------------------------------------------------------ reading
    @property
    def is_open(self) -> bool:
        return self.root is not None

    @property
    def store(self):
        """The project's store connection (the one its labelling work uses on workers)."""
        return self.project.store if self.project is not None else None

    @property
    def reader(self):
        """The session's own connection to the store, for reads on the session's thread
        (the split, the runs): the store's main connection is used by workers' transactions,
        whose half-done changes a read through it would see."""
        return self._reader if self._reader is not None else self.store

    def _open_reader(self) -> None:
        self._close_reader()
        store = self.project.store if self.project is not None else None
        sibling = getattr(store, "sibling", None)
        if sibling is not None and getattr(store, "conn", None) is not None:
            try:
                self._reader = sibling()
            except Exception:  # noqa: BLE001 (no second connection: read through the main one)
                self._reader = None

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    @property
    def read_only(self) -> bool:
        return bool(self.project is not None and self.project.read_only)

    @property
    def counts(self) -> tuple[int, int]:
        """(images, classes) as listed."""
        return len(self.rows), len(self.classes)

    def split(self):
        """The project's split (core.runs.ProjectSplit), read from the store once per change;
        ``None`` until the store is attached."""
        if self.project is None:
            return None
        if self._split is None:
            from .runs import project_split  # noqa: PLC0415

            self._split = project_split(self.reader)
        return self._split

    @property
    def test_folder(self) -> str | None:
        s = self.split()
        return s.test_folder if s is not None else None

    def runs(self) -> list:
        """The project's recorded runs, oldest first (as the store lists them)."""
        if self.project is None:
            return []
        if self._runs is None:
            self._runs = list(self.reader.runs())
        return self._runs

    # ------------------------------------------------------------------ changing
    def notify_split_changed(self) -> None:
        """The split, a status or the test folder changed in the store (a labelling action,
        Make Split, the test folder chosen): everybody reads it again."""
        self._split = None
        self.split_changed.emit()

    def notify_rows_changed(self, rows: list[Row] | list[tuple[str, str]] | None = None,
                            classes: list[str] | None = None) -> None:
        if rows is not None:
            self.set_rows(rows, classes)
            self.notify_split_changed()
            return
        if classes is not None:
            self.classes = list(classes)
        self.rows_changed.emit()
        self.counts_changed.emit(*self.counts)
        self.notify_split_changed()

    def notify_runs_changed(self) -> None:
        self._runs = None
        self.runs_changed.emit()

    def set_test_folder(self, folder: str | os.PathLike | None) -> None:
        self._require_store().set_test_folder(folder)
        self.notify_split_changed()

    def make_splits(self, val_fraction: float, seed: int) -> dict[str, int]:
        counts = self._require_store().make_splits(val_fraction, seed)
        self.notify_split_changed()
        return counts

    def _require_store(self):
        if self.project is None:
            raise RuntimeError("the project's store is not open yet")
        return self.project


_KEEP = object()


@dataclass
class ModelState:
    """What one place shows: the model file wanted (``None``: the ImageNet network), the
    network once loaded, and its description."""

    path: str | None = None
    model: Any = None
    description: str = ""
    replicas: dict[str, Any] = field(default_factory=dict)
    loaded_path: Any = _KEEP  # the file ``model`` came from (None: ImageNet), once one is loaded


class ModelSession:
    """The models in use, per place ("Explain", "Predict", "Live"...).

    ``want(place, path)`` says which model file a place should show (the newest run's model
    when a project opens, or a file the user chose); the place loads it when it is first
    shown and gives it back with :meth:`set_loaded`. A lane that must not share a network
    with another (the live camera thread installs Grad-CAM hooks) asks for its own
    :meth:`replica`, made once per model and lane."""

    def __init__(self) -> None:
        self.places: dict[str, ModelState] = {}
        self.wanted = Event("wanted")  # place, path: a place should show this model
        self.loaded = Event("loaded")  # place: the place's model was loaded (or cleared)

    def state(self, place: str) -> ModelState:
        return self.places.setdefault(place, ModelState())

    def want(self, place: str, path: str | None) -> None:
        """``place`` should show the model file ``path`` (None: the ImageNet network). Said
        again for the model it shows already, nothing happens; for one whose load failed
        (or has not happened yet), it is asked for again."""
        st = self.state(place)
        if st.path == path and st.model is not None and st.loaded_path == path:
            return
        st.path = path
        self.wanted.emit(place, path)

    def set_loaded(self, place: str, model, description: str = "", path: Any = _KEEP) -> None:
        """``place`` now shows ``model`` (loaded from ``path``; None: the ImageNet network;
        left out: the path wanted stays as it is)."""
        st = self.state(place)
        st.model, st.description, st.replicas = model, description, {}
        if path is not _KEEP:
            st.path = path
        st.loaded_path = st.path if model is not None else _KEEP
        self.loaded.emit(place)

    def model(self, place: str):
        return self.state(place).model

    def replica(self, place: str, lane: str):
        """A private copy of ``place``'s model for ``lane`` (made once per model)."""
        st = self.state(place)
        if st.model is None:
            return None
        if lane not in st.replicas:
            st.replicas[lane] = copy.deepcopy(st.model)
        return st.replicas[lane]
