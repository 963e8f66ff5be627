"""Models found by name. Entries are `module:Class` strings, so listing the catalog imports nothing heavy:
Keras and Prophet load only when a model that needs them is created (STYLE.md 6).
"""

from __future__ import annotations

import importlib
from typing import Any

from aiops.errors import UnknownNameError

_ENTRIES: dict[str, str] = {
    # forecasters
    "naive": "models.forecasters.naive:Naive",
    "seasonal_naive": "models.forecasters.naive:SeasonalNaive",
    "arima": "models.forecasters.arima:Arima",
    "prophet": "models.forecasters.prophet:ProphetForecaster",
    "gbm": "models.forecasters.gbm:GradientBoosting",
    "lstm": "models.forecasters.lstm:Lstm",
    # detectors
    "robust_mad": "models.detectors.robust:RobustMad",
    "isolation_forest": "models.detectors.iforest:IsolationForestDetector",
    "autoencoder": "models.detectors.autoencoder:Autoencoder",
    "forecast_residual": "models.detectors.residual:ForecastResidual",
    "likelihood": "models.detectors.likelihood:Likelihood",
}


def register(name: str, target: str) -> None:
    """Add a model as `module:Class` (for plugins). A name is registered once."""
    if name in _ENTRIES and _ENTRIES[name] != target:
        raise ValueError(f"model name {name!r} is already registered for {_ENTRIES[name]}")
    if ":" not in target:
        raise ValueError(f"target: expected 'module:Class', received {target!r}")
    _ENTRIES[name] = target


def available(kind: str | None = None) -> list[str]:
    """Registered names, optionally only forecasters or detectors (this imports the model modules, not Keras)."""
    if kind is None:
        return sorted(_ENTRIES)
    if kind not in ("forecaster", "detector"):
        raise ValueError(f"kind: expected 'forecaster' or 'detector', received {kind!r}")
    return sorted(n for n in _ENTRIES if model_class(n).kind == kind)


def model_class(name: str) -> type:
    """The class registered under `name`; UnknownNameError listing the valid names otherwise."""
    try:
        target = _ENTRIES[name]
    except KeyError:
        raise UnknownNameError("model", name, list(_ENTRIES)) from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, **config: Any):
    """A new, unfitted model: `create("seasonal_naive", season_length=288)`."""
    return model_class(name)(**config)
