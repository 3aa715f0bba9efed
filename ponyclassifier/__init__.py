"""PonyClassifier: teach a computer to recognise your own pictures, offline."""

__version__ = "0.1.0"
