"""Guards against a known-bad Qt binding: PySide6 6.12.0 drops a reference to ``True`` on
every signal emit, so the app aborts with "bool_dealloc" after a few hundred thumbnails."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(int)


def test_signal_emit_does_not_leak_bool_references(qapp):
    e = _Emitter()
    got = []
    e.fired.connect(got.append)
    before = sys.getrefcount(True)
    for i in range(200):
        e.fired.emit(i)
    assert len(got) == 200
    assert abs(sys.getrefcount(True) - before) < 20, "this PySide6 build corrupts refcounts; see pyproject.toml"
