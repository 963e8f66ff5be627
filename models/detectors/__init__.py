"""Detectors: fit(history) -> self, score(window) -> calibrated scores in [0, 1] (see models/base.py)."""
