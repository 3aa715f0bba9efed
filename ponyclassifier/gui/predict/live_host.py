"""The Predict page's "Live camera" tab: the host of the live camera view.

The camera view (QtMultimedia) is built the first time the tab is shown, so starting the
app never loads the multimedia stack. The host is a view of the app's sessions: a project
opened makes the camera view forget its frame, the project attached is where "Teach it"
saves pictures (asking ``session.busy_reason`` first), and whenever Predict's model is
loaded (``models.loaded("Predict")``) the camera view gets ``models.replica("Predict",
"live")``: its own copy (the live thread's Grad-CAM hooks must never see the page's
passes), made only when the view exists, so a model loaded in Predict is not copied for
a camera tab nobody opens.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from ...core.session import ModelSession, ProjectSession

PLACE, LANE = "Predict", "live"


class LiveHost(QWidget):
    """``LiveHost(session, models, parent=None)``; ``widget`` (the LivePredictWidget once
    built), ``error`` (why it could not be), ``ensure()`` (build it now), ``created(widget)``,
    ``shutdown()``."""

    created = Signal(object)

    def __init__(self, session: ProjectSession | None = None, models: ModelSession | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session if session is not None else ProjectSession()
        self.models = models if models is not None else ModelSession()
        self.widget = None
        self.error: str | None = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self._note = QLabel("Starting the camera view…")
        self._note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._note.setWordWrap(True)
        lay.addWidget(self._note)
        self.session.opened.connect(self._on_session_opened)
        self.session.attached.connect(self._on_session_attached)
        self.session.closing.connect(self._on_session_closing)
        self.models.loaded.connect(self._on_models_loaded)

    def ensure(self):
        """The camera view, built now if it was not yet (None if QtMultimedia is missing)."""
        if self.widget is None and self.error is None:
            try:
                from .live import LivePredictWidget
            except ImportError as e:  # QtMultimedia or its system libraries are missing
                self.error = str(e)
                self._note.setText(f"The camera view is not available in this installation:\n{e}")
                return None
            self.widget = LivePredictWidget()
            self._note.hide()
            self.layout().addWidget(self.widget)
            self._give_project(self.session.project)
            if self.models.model(PLACE) is not None:
                self._give_model()
            self.created.emit(self.widget)
        return self.widget

    @property
    def _model(self) -> tuple:
        """(model, description) as Predict has it; the camera view has its own copy."""
        st = self.models.state(PLACE)
        return st.model, st.description

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure()

    def shutdown(self) -> None:
        for event, slot in ((self.session.opened, self._on_session_opened),
                            (self.session.attached, self._on_session_attached),
                            (self.session.closing, self._on_session_closing),
                            (self.models.loaded, self._on_models_loaded)):
            event.disconnect(slot)
        if self.widget is not None:
            self.widget.shutdown()

    # ------------------------------------------------------------------ the sessions
    def _busy(self) -> str | None:
        return self.session.busy_reason()  # read when saving: the browser may set it later

    def _give_project(self, project) -> None:
        if self.widget is not None:
            self.widget.set_project(project, busy=self._busy if project is not None else None)

    def _on_session_opened(self, root) -> None:
        if self.widget is not None:
            self.widget.forget_frame()  # nothing of the last project stays on screen
            self._give_project(None)

    def _on_session_attached(self, project) -> None:
        self._give_project(project)

    def _on_session_closing(self, project) -> None:
        """A save still writing to the project let go keeps it open until it is done."""
        w = self.widget
        if w is not None and w.saving_into is project:
            w.when_saved(self.session.defer_close(project))

    def _on_models_loaded(self, place: str) -> None:
        if place == PLACE and self.widget is not None:
            self._give_model()

    def _give_model(self) -> None:
        st = self.models.state(PLACE)
        self.widget.set_model(self.models.replica(PLACE, LANE), st.description)
