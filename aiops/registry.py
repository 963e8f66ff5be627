"""The MLflow lifecycle of our models: log a candidate, register it, promote it, load the champion.

One registered model per task and metric (e.g. `forecast-cpu`), holding a global model or a bundle of per-series
fits. Each training run logs the model's config and capabilities as params, its holdout metrics, the holdout it was
judged on (`holdout.json`, id as a tag), plots, and the model as a pyfunc (aiops/mlflow_model.py) with signature,
input example and pinned requirements. Aliases: `challenger` is the latest candidate evaluated, `champion` the one in
use; a challenger takes `champion` only when it beats it on the same holdout windows, and every decision is a run
in the `promotions` experiment with both scores.

The store comes from settings: SQLite under data_dir by default (artifacts beside it), or an MLflow server.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from aiops.errors import AiopsError

if TYPE_CHECKING:
    import matplotlib.figure
    import mlflow

    from aiops.settings import Settings
    from models.base import Model

CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTIONS_EXPERIMENT = "promotions"
DEFAULT_HORIZON = 12  # a forecaster's pyfunc horizon when neither predict_params nor the holdout gives one


class RegistryError(AiopsError):
    """A registered model, version or alias the caller asked for does not exist (the message lists what does)."""


@dataclass(frozen=True)
class LoggedModel:
    """What `log_candidate` logged: the run, and the registered version when one was created."""

    run_id: str
    registered_name: str | None
    version: str | None
    model_name: str
    metrics: dict[str, float]
    model_uri: str | None = None  # models:/<model id>, loadable with mlflow.pyfunc.load_model
    holdout_id: str | None = None


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version as our flows see it."""

    registered_name: str
    version: str
    run_id: str
    model_name: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    holdout_id: str | None


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of `promote`, with both scores on the same holdout and the reason."""

    registered_name: str
    challenger_version: str
    champion_version: str | None
    metric: str
    challenger_score: float
    champion_score: float | None
    promoted: bool
    reason: str
    holdout_id: str
    run_id: str | None = None  # the decision's run in the `promotions` experiment


# --- store access ---------------------------------------------------------------------------------------------
def client(settings: Settings) -> mlflow.MlflowClient:
    """An MlflowClient on the settings' tracking store, which is also the model registry."""
    import mlflow

    uri = settings.resolved_mlflow_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """The id of experiment `name`, created (with the settings' artifact location when the store is local) or
    restored if it was deleted."""
    from mlflow.exceptions import MlflowException

    if not name or not isinstance(name, str):
        raise ValueError(f"experiment: expected a non-empty name, received {name!r}")
    c = client(settings)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        root = settings.resolved_mlflow_artifacts
        # one folder per experiment under the local root, as MLflow's own default lays them out
        location = None if root is None else f"{root.rstrip('/')}/{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}"
        try:
            return c.create_experiment(name, artifact_location=location)
        except MlflowException:  # created meanwhile by a parallel training task
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    return exp.experiment_id


# --- logging ---------------------------------------------------------------------------------------------------
def make_holdout_id(holdout: dict) -> str:
    """The holdout's `id`, or a content hash of it (same windows and series -> same id)."""
    if holdout.get("id"):
        return str(holdout["id"])
    body = json.dumps({k: v for k, v in holdout.items() if k != "id"}, sort_keys=True, default=str)
    return "h-" + hashlib.sha256(body.encode()).hexdigest()[:16]


def log_candidate(
    settings: Settings,
    model: Model,
    *,
    experiment: str,
    registered_name: str | None,
    metrics: dict[str, float],
    holdout: dict,
    input_example: pd.DataFrame,
    plots: dict[str, matplotlib.figure.Figure] = {},  # noqa: B006 - read only
    params: dict | None = None,
    tags: dict | None = None,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    predict_params: dict | None = None,
) -> LoggedModel:
    """Log a fitted model as one MLflow run in `experiment`, and register it as a new version of
    `registered_name` (created if missing) unless that is None.

    The run holds params (config, capabilities, `params`), `metrics` (on the holdout), `holdout.json` (tag
    `holdout_id`), `plots` as plots/<name>.png, and the model as a pyfunc with signature (input `input_example`,
    output the model's answer on it, params e.g. `horizon`), input example and pinned pip requirements. Forecasters
    get a `horizon` param: `predict_params["horizon"]`, else `holdout["horizon"]`, else 12. The new version is
    tagged with the model name, holdout id and metrics.
    """
    import mlflow
    from mlflow.entities import Metric, Param

    from aiops.mlflow_model import log_pyfunc, model_params, param_value, using_store

    if not model.fitted:
        raise ValueError(f"model: {model.name} is not fitted; call fit() before log_candidate")
    if not isinstance(holdout, dict):
        raise ValueError(f"holdout: expected a JSON-able dict (windows, series, id), received {type(holdout).__name__}")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ValueError("input_example: expected a non-empty panel frame (series, ts, value...), e.g. the tail "
                         f"of the training history; received {type(input_example).__name__}")
    metrics = _check_metrics(metrics)
    hid = make_holdout_id(holdout)
    predict_params = dict(predict_params or {})
    if model.kind == "forecaster":
        predict_params.setdefault("horizon", int(holdout.get("horizon") or DEFAULT_HORIZON))

    exp_id = ensure_experiment(settings, experiment)
    c = client(settings)
    run_tags = {"model": model.name, "kind": model.kind, "holdout_id": hid, **(tags or {})}
    if registered_name:
        run_tags["registered_name"] = registered_name
    if parent_run_id:
        run_tags["mlflow.parentRunId"] = parent_run_id  # nests the run in the UI; the parent may be finished
    run = c.create_run(exp_id, run_name=run_name or model.name, tags={k: str(v) for k, v in run_tags.items()})
    run_id = run.info.run_id
    try:
        all_params = {**model_params(model), **{k: param_value(v) for k, v in (params or {}).items()}}
        c.log_batch(run_id, metrics=[Metric(k, v, _now_ms(), 0) for k, v in metrics.items()],
                    params=[Param(k, v) for k, v in all_params.items()])
        c.log_dict(run_id, {**holdout, "id": hid}, "holdout.json")
        for name, fig in plots.items():
            c.log_figure(run_id, fig, f"plots/{name}.png")
        with using_store(settings.resolved_mlflow_uri), mlflow.start_run(run_id=run_id, nested=True):
            info = log_pyfunc(model, input_example, predict_params)
    except BaseException:
        c.set_terminated(run_id, "FAILED")  # the run stays, with what was logged before the failure
        raise
    version = None
    if registered_name:
        _ensure_registered_model(c, registered_name, model.kind)
        # a local registry resolves the models:/ source through the process-wide tracking URI
        with using_store(settings.resolved_mlflow_uri):
            mv = c.create_model_version(
                registered_name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
                tags={"model": model.name, "holdout_id": hid,
                      **{f"metric.{k}": repr(v) for k, v in metrics.items()}},
                description=f"{model.name} from run {run_id}",
            )
        version = str(mv.version)
    return LoggedModel(run_id=run_id, registered_name=registered_name, version=version, model_name=model.name,
                       metrics=metrics, model_uri=info.model_uri, holdout_id=hid)


def _ensure_registered_model(c, name: str, kind: str) -> None:
    from mlflow.exceptions import MlflowException

    if _registered_model(c, name) is not None:
        return
    description = (
        f"aiops {kind} for task `{name}`: one model over all series (or a bundle of per-series fits). Each version "
        "is a candidate from a training run. Alias `champion` is the version in use; `challenger` the latest "
        "candidate, compared with the champion on the same holdout windows (runs in experiment `promotions`)."
    )
    try:
        c.create_registered_model(name, tags={"kind": kind}, description=description)
    except MlflowException as exc:  # a parallel training task created it first
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


# --- reading ---------------------------------------------------------------------------------------------------
def get_alias(settings: Settings, registered_name: str, alias: str) -> VersionInfo | None:
    """The version behind `alias` of `registered_name`, or None when the model or the alias does not exist."""
    c = client(settings)
    rm = _registered_model(c, registered_name)
    if rm is None or alias not in (rm.aliases or {}):
        return None
    return _version_info(c.get_model_version(registered_name, str(rm.aliases[alias])))


def load_model(settings: Settings, registered_name: str, alias: str = CHAMPION) -> tuple[Model, VersionInfo]:
    """The native model behind `alias` (through `mlflow.pyfunc.load_model`) and its version info.

    The version is resolved once and loaded by number, so the info always describes the loaded model even when
    the alias moves meanwhile. RegistryError, listing what exists, when there is no such model or alias.
    """
    from aiops.mlflow_model import load_native

    info = get_alias(settings, registered_name, alias)
    if info is None:
        raise RegistryError(_missing(settings, registered_name, alias))
    return load_native(settings.resolved_mlflow_uri, f"models:/{registered_name}/{info.version}"), info


def champions(settings: Settings) -> list[VersionInfo]:
    """Every registered model's champion, by registered name."""
    c = client(settings)
    out, token = [], None
    while True:
        page = c.search_registered_models(max_results=100, page_token=token, order_by=["name ASC"])
        for rm in page:
            if CHAMPION in (rm.aliases or {}):
                out.append(_version_info(c.get_model_version(rm.name, str(rm.aliases[CHAMPION]))))
        token = page.token
        if not token:
            return sorted(out, key=lambda v: v.registered_name)


def _registered_model(c, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _version_info(mv) -> VersionInfo:
    tags = mv.tags or {}
    metrics = {k[len("metric."):]: float(v) for k, v in tags.items() if k.startswith("metric.")}
    return VersionInfo(registered_name=mv.name, version=str(mv.version), run_id=mv.run_id or "",
                       model_name=tags.get("model", ""), aliases=tuple(sorted(mv.aliases or ())),
                       metrics=metrics, holdout_id=tags.get("holdout_id"))


def _missing(settings: Settings, name: str, alias: str) -> str:
    c = client(settings)
    rm = _registered_model(c, name)
    if rm is None:
        known = sorted(m.name for m in c.search_registered_models(max_results=1000))
        return (f"no registered model {name!r} in {settings.resolved_mlflow_uri}; registered models: "
                f"{', '.join(known) or 'none'}; train one first (the train flow registers its candidates)")
    versions = sorted((int(v.version) for v in c.search_model_versions(f"name='{name}'")))
    aliases = ", ".join(f"{a} -> v{v}" for a, v in sorted((rm.aliases or {}).items())) or "none"
    return (f"registered model {name!r} has no alias {alias!r}; aliases: {aliases}; versions: "
            f"{', '.join(map(str, versions)) or 'none'}; promote a version first (aiops.registry.promote)")


# --- promotion -------------------------------------------------------------------------------------------------
def promote(
    settings: Settings,
    registered_name: str,
    challenger_version: str,
    *,
    metric: str,
    challenger_score: float,
    champion_score: float | None,
    holdout_id: str,
    lower_is_better: bool = True,
    min_improvement: float = 0.0,
) -> PromotionDecision:
    """Compare a challenger with the current champion on the same holdout and move `champion` if it wins.

    Both scores MUST come from the same holdout windows: the caller re-evaluates the champion on the challenger's
    holdout (`holdout_id`, checked against the challenger version's tag). The challenger gets alias `challenger`;
    it takes `champion` when there is none, or when it is better by more than `min_improvement` (relative: 0.05 =
    5 % better). Equal scores keep the champion. The decision is a run in experiment `promotions` (params:
    registered_name, versions, metric, holdout_id; metrics: both scores; tags: decision, reason) and tags on both
    versions.
    """
    from mlflow.entities import Metric, Param, RunTag

    challenger_version = str(challenger_version)
    if min_improvement < 0:
        raise ValueError(f"min_improvement: expected a relative improvement >= 0, received {min_improvement}")
    c = client(settings)
    rm = _registered_model(c, registered_name)
    if rm is None:
        raise RegistryError(_missing(settings, registered_name, CHAMPION))
    challenger = _version_info(_get_version(c, settings, registered_name, challenger_version))
    if challenger.holdout_id is not None and challenger.holdout_id != holdout_id:
        raise ValueError(
            f"holdout_id: version {challenger_version} of {registered_name!r} was evaluated on holdout "
            f"{challenger.holdout_id!r}, received {holdout_id!r}; score the champion on the challenger's holdout"
        )
    champ = str(rm.aliases[CHAMPION]) if CHAMPION in (rm.aliases or {}) else None
    ch = _score("challenger_score", challenger_score)
    if champ is not None and champion_score is None:
        raise ValueError(f"champion_score: {registered_name!r} has champion v{champ}; evaluate it on holdout "
                         f"{holdout_id!r} and pass its {metric}")
    if champ is None and champion_score is not None:
        raise ValueError(f"champion_score: {registered_name!r} has no champion, received a score "
                         f"{champion_score}; pass None")
    cs = None if champion_score is None else _score("champion_score", champion_score)

    if champ is None:
        promoted, reason = True, f"no champion yet: v{challenger_version} becomes champion ({metric} {ch:.6g})"
    elif champ == challenger_version:
        promoted, reason = False, f"v{challenger_version} is already the champion"
    else:
        gain = _relative_gain(ch, cs, lower_is_better)
        better = "lower" if lower_is_better else "higher"
        promoted = gain > min_improvement
        verdict = "beats" if promoted else "does not beat"
        reason = (f"v{challenger_version} {verdict} champion v{champ} on holdout {holdout_id}: {metric} {ch:.6g} vs "
                  f"{cs:.6g} ({better} is better; relative gain {gain:+.2%}, needed > {min_improvement:.2%})")
    decision = "promoted" if promoted else "kept"

    exp_id = ensure_experiment(settings, PROMOTIONS_EXPERIMENT)
    tags = {"decision": decision, "reason": reason, "registered_name": registered_name,
            "mlflow.note.content": reason}
    run = c.create_run(exp_id, run_name=f"{registered_name} v{challenger_version} vs "
                                        f"{'v' + champ if champ else 'none'}", tags=tags)
    params = {"registered_name": registered_name, "challenger_version": challenger_version,
              "champion_version": champ or "none", "metric": metric, "holdout_id": holdout_id,
              "lower_is_better": str(lower_is_better), "min_improvement": str(min_improvement),
              "challenger_model": challenger.model_name}
    scores = {"challenger_score": ch, **({} if cs is None else {"champion_score": cs})}
    c.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()],
                metrics=[Metric(k, v, _now_ms(), 0) for k, v in scores.items() if math.isfinite(v)],
                tags=[RunTag(f"{k}_value", repr(v)) for k, v in scores.items()])  # exact, and inf survives
    c.set_terminated(run.info.run_id, "FINISHED")

    # the decision is recorded before any alias moves: a failure below leaves a record, never a silent change
    c.set_registered_model_alias(registered_name, CHALLENGER, challenger_version)
    if promoted:
        c.set_registered_model_alias(registered_name, CHAMPION, challenger_version)
    vtags = {"promotion.decision": decision, "promotion.run_id": run.info.run_id,
             "promotion.holdout_id": holdout_id, f"promotion.{metric}": repr(ch),
             "promotion.champion_version": champ or "none"}
    for k, v in vtags.items():
        c.set_model_version_tag(registered_name, challenger_version, k, v)
    if champ is not None and champ != challenger_version:
        for k, v in {"promotion.challenged_by": challenger_version, "promotion.challenge_decision": decision,
                     "promotion.challenge_run_id": run.info.run_id, "promotion.holdout_id": holdout_id,
                     f"promotion.{metric}": repr(cs)}.items():
            c.set_model_version_tag(registered_name, champ, k, v)
    return PromotionDecision(registered_name=registered_name, challenger_version=challenger_version,
                             champion_version=champ, metric=metric, challenger_score=ch, champion_score=cs,
                             promoted=promoted, reason=reason, holdout_id=holdout_id, run_id=run.info.run_id)


def _get_version(c, settings: Settings, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        versions = sorted(int(v.version) for v in c.search_model_versions(f"name='{name}'"))
        raise RegistryError(f"registered model {name!r} has no version {version!r}; versions: "
                            f"{', '.join(map(str, versions)) or 'none'}") from None


def _relative_gain(challenger: float, champion: float, lower_is_better: bool) -> float:
    """How much better the challenger is, relative to the champion's score (> 0: better)."""
    diff = (champion - challenger) if lower_is_better else (challenger - champion)
    if diff == 0 or (math.isinf(challenger) and math.isinf(champion)):
        return 0.0
    if champion == 0 or math.isinf(champion):
        return math.copysign(math.inf, diff)
    return diff / abs(champion)


# --- helpers ---------------------------------------------------------------------------------------------------
def _score(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, received {v!r}") from None
    if math.isnan(f):
        raise ValueError(f"{name}: is NaN; a model that cannot be scored on the holdout cannot be compared")
    return f


def _check_metrics(metrics: dict[str, float]) -> dict[str, float]:
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(f"metrics: expected a non-empty dict of holdout metrics (e.g. {{'mase': 0.8}}), "
                         f"received {metrics!r}")
    out = {}
    for k, v in metrics.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"metrics: {k!r} must be a number, received {v!r}") from None
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)
