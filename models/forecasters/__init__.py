"""Forecasters: fit(history) -> self, predict(horizon) -> quantiles (see models/base.py)."""
