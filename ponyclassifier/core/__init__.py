"""The Qt-free engine: datasets, recipes, training, evaluation, prediction, model files.

Nothing in this package may import PySide6, pyqtgraph or ``ponyclassifier.gui``;
``tests/core/test_no_qt.py`` enforces it.
"""
