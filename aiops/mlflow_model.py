"""One of our models in and out of MLflow: the pyfunc wrapper, logging and loading it, the params that describe it
and its requirements. (aiops/registry.py builds the lifecycle on top: runs, versions, aliases, promotion.)

Any forecaster or detector sits behind `mlflow.pyfunc.load_model(uri).predict`. The model's artifact is the
directory `Model.save(dir)` writes (config as JSON, state in native formats), and the wrapper is logged as *model
code* (MLflow's models-from-code): the logged model holds a three-line script that builds `AiopsPyfunc`, not a
pickle (MLflow 3 refuses to unpickle by default, and a pickle would tie the model to one version of our classes).
Loading needs the `aiops` package importable, as for any custom pyfunc.

    loaded = mlflow.pyfunc.load_model("models:/forecast-cpu@champion")
    loaded.predict(history_frame, params={"horizon": 12})   # forecasters: series, ts, h, p50, p90, p99
    loaded.predict(window_frame)                            # detectors: series, ts, score
    native = unwrap(loaded)                                  # our own Forecaster / Detector

Timestamps through the pyfunc are UTC without a time zone (`ts` in and out): MLflow's schema enforcement refuses
tz-aware datetimes. The native model takes either and returns tz-aware UTC.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd

if TYPE_CHECKING:
    from models.base import Model

MODEL_ARTIFACT = "model"  # key of the saved model directory in context.artifacts
ARTIFACT_PATH = "model"  # name of the logged model
CODE_FILE = "aiops_pyfunc.py"
# what every saved model needs to load, pinned to the versions it was trained with
BASE_REQUIREMENTS = ("numpy", "pandas", "scikit-learn", "pydantic", "pyarrow")
# mlflow's fluent API (log_model, pyfunc.load_model) reads process-wide URIs: one caller at a time sets them
_STORE_LOCK = threading.RLock()
# The model code MLflow executes at load time (models-from-code). It only points at the installed class, so the
# behaviour lives in this module, under tests, and not in a snapshot copied into every logged model.
_CODE = '''"""aiops model as MLflow pyfunc: built from the installed aiops package (aiops/mlflow_model.py)."""
from mlflow.models import set_model

from aiops.mlflow_model import AiopsPyfunc

set_model(AiopsPyfunc())
'''


def write_code_file(directory: str | Path) -> Path:
    """Write the models-from-code script to `directory`; its path is `python_model=` for `log_model`."""
    path = Path(directory) / CODE_FILE
    path.write_text(_CODE)
    return path


class AiopsPyfunc(mlflow.pyfunc.PythonModel):
    """A saved aiops model behind the pyfunc interface.

    model_config (given to `log_model`): `kind` ("forecaster" or "detector") and, for forecasters, `horizon`,
    the default number of steps when `predict` gets no `horizon` param.
    """

    def __init__(self) -> None:
        self.native = None
        self.default_horizon: int | None = None

    def load_context(self, context) -> None:
        from models.base import Model

        self.native = Model.load(context.artifacts[MODEL_ARTIFACT])
        cfg = context.model_config or {}
        self.default_horizon = int(cfg["horizon"]) if cfg.get("horizon") is not None else None

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Forecasters: `predict(horizon, history=model_input)`; detectors: `score(model_input)`."""
        if self.native is None:
            raise RuntimeError("AiopsPyfunc.predict called before load_context")
        if self.native.kind == "forecaster":
            horizon = (params or {}).get("horizon") or self.default_horizon
            if horizon is None:
                raise ValueError(
                    f"params: {self.native.name} is a forecaster and needs a `horizon` (steps ahead); received "
                    f"{params!r}; call predict(frame, params={{'horizon': 12}})"
                )
            return naive_utc(self.native.predict(int(horizon), history=model_input))
        return naive_utc(self.native.score(model_input))


@contextmanager
def using_store(uri: str) -> Iterator[None]:
    """Point mlflow's process-wide tracking and registry URIs at `uri` (what log_model and pyfunc.load_model
    read), and put them back after. One caller at a time: threads of a flow share the process."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    with _STORE_LOCK:
        saved_env = {k: os.environ.get(k) for k in keys}
        saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
        saved_registry = getattr(registry_utils, "_registry_uri", None)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # progress bars would flood the flow logs
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)
            registry_utils._registry_uri = saved_registry  # set_registry_uri(None) would not clear it
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def load_native(uri: str, model_uri: str) -> Model:
    """Load `model_uri` (e.g. models:/forecast-cpu/3) from the store at `uri` through mlflow.pyfunc.load_model
    and return our native model."""
    # our models read their files eagerly, so the downloaded copy can go: a scheduled flow loading the champion
    # every few minutes would otherwise fill the temp directory
    with using_store(uri), tempfile.TemporaryDirectory(prefix="aiops-load-") as tmp:
        return unwrap(mlflow.pyfunc.load_model(model_uri, dst_path=tmp))


def log_pyfunc(model: Model, input_example: pd.DataFrame, predict_params: dict[str, Any] | None = None):
    """Log fitted `model` as pyfunc `model` into the active run (the caller sets the tracking URI); returns
    MLflow's ModelInfo.

    The artifact is `model.save(dir)`; the signature is inferred from `input_example` and the model's answer on
    it, with `predict_params` (forecasters: `horizon`, also the default horizon of `predict`); requirements are
    pinned (`pip_requirements`), so MLflow does not spend seconds inferring them.
    """
    from mlflow.models import infer_signature

    example = naive_utc(input_example)
    params = dict(predict_params or {})
    if model.kind == "forecaster":
        if "horizon" not in params:
            raise ValueError(f"predict_params: a forecaster needs a default `horizon` (steps ahead), received "
                             f"{predict_params!r}; pass e.g. {{'horizon': 12}}")
        output = naive_utc(model.predict(int(params["horizon"]), history=example))
    else:
        output = naive_utc(model.score(example))
    with warnings.catch_warnings():  # the integer-column hint is about missing values, which `h` never has
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, output, params=params or None)
    with tempfile.TemporaryDirectory(prefix="aiops-model-") as tmp:
        saved = model.save(Path(tmp) / "model")
        return mlflow.pyfunc.log_model(
            name=ARTIFACT_PATH, python_model=str(write_code_file(tmp)), artifacts={MODEL_ARTIFACT: str(saved)},
            model_config={"kind": model.kind, "horizon": params.get("horizon")}, signature=signature,
            input_example=example, pip_requirements=pip_requirements(model),
        )


def naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its `ts` column as UTC datetimes without a time zone (what MLflow schemas accept)."""
    if "ts" not in frame.columns:
        return frame
    ts = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None)
    return frame.assign(ts=ts)


def unwrap(loaded) -> Any:
    """Our native Forecaster or Detector inside a model returned by `mlflow.pyfunc.load_model`."""
    inner = loaded.unwrap_python_model() if hasattr(loaded, "unwrap_python_model") else loaded
    native = getattr(inner, "native", None)
    if native is None:
        raise TypeError(
            f"loaded model: expected an aiops pyfunc model (AiopsPyfunc), received {type(inner).__name__}; "
            "was it logged by aiops.registry.log_candidate?"
        )
    return native


def pip_requirements(model: Model) -> list[str]:
    """Pinned requirements of a saved model: the installed versions of the base stack, then `model.requires`."""
    reqs = []
    for dist in BASE_REQUIREMENTS:
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            reqs.append(dist)
    return reqs + [r for r in model.requires if r not in reqs]


def model_params(model: Model) -> dict[str, str]:
    """The params every candidate run logs: model name, kind, capabilities and flattened config."""
    params: dict[str, Any] = {
        "model": model.name, "kind": model.kind, "supports_multivariate": model.supports_multivariate,
        "needs_regular_sampling": model.needs_regular_sampling, "handles_missing": model.handles_missing,
        "global_model": model.global_model, "requires": ",".join(model.requires) or "-",
        "min_history": model.min_history, "context_steps": model.context_steps,
    }
    if model.fitted:
        params["n_series"] = len(model.ids_)
        params["columns"] = ",".join(model.columns_)
        params["step"] = "irregular" if model.step_ is None else str(model.step_)
    params.update(_flatten(model.config.model_dump(mode="json"), "config."))
    return {k: param_value(v) for k, v in params.items()}


def _flatten(d: dict, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def param_value(v: Any) -> str:
    """A param as MLflow stores it: lists and dicts as JSON, None as `none`."""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str)
    return "none" if v is None else str(v)
