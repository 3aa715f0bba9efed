"""Kept only so that ``from tests.gui.test_capture import media_noise`` (tests/gui/test_live.py)
still works: the capture tests moved to tests/gui/dataset/test_capture.py. Remove once
test_live imports from there."""

from tests.gui.dataset.test_capture import make_video, media_noise  # noqa: F401 (re-exported; media_noise is autouse)
