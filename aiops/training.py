"""Train the candidates of a task, judge them on one fixed holdout, register the best, promote it if it wins.

The work behind `flows/train.py`, usable from a notebook. The holdout is the last `train.holdout_hours` of the
task's panel: every candidate is fit on what comes before it and judged on the same windows (forecasters: rolling
origins every `train.origin_every_hours`, `train.horizon_steps` ahead, MASE; detectors: the holdout's points
against the incident labels, average precision). The current champion is judged again on the same windows before
the challenger may take its place, so the two scores compare like with like.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aiops.settings import Settings
from aiops.tasks import Task
from models.catalog import create, model_class
from models.evaluation import forecast as fm

PRIMARY = {"forecast": ("mase", True), "detect": ("average_precision", False)}  # metric, lower is better


@dataclass(frozen=True)
class Holdout:
    """The windows every candidate of one training run is judged on."""

    task: str
    fit_end: pd.Timestamp  # fit on rows with ts < fit_end
    end: pd.Timestamp  # last row judged
    step: pd.Timedelta
    horizon: int
    origins: tuple[pd.Timestamp, ...]  # forecasts: last timestamp of each history
    series: tuple[str, ...]

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"task": self.task, "fit_end": self.fit_end.isoformat(), "end": self.end.isoformat(),
                "step": self.step.isoformat(), "horizon": self.horizon,
                "origins": [o.isoformat() for o in self.origins], "series": list(self.series)}


@dataclass
class CandidateResult:
    task: str
    model_name: str
    model: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    per_series: pd.DataFrame | None = None  # forecasters: one row per series (for like-with-like comparisons)
    output: pd.DataFrame | None = None  # forecasts or scores on the holdout, for plots
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def primary(self, kind: str) -> float:
        return self.metrics.get(PRIMARY[kind][0], float("nan"))


def plan_holdout(task: Task, panel: pd.DataFrame, settings: Settings) -> Holdout:
    """The last `holdout_hours` of the panel, with rolling forecast origins inside it."""
    t = settings.train
    step = pd.Timedelta(seconds=t.step_seconds)
    ts = pd.to_datetime(panel["ts"], utc=True)
    end = ts.max()
    fit_end = (end - pd.Timedelta(hours=t.holdout_hours)).floor(step) + step
    if fit_end <= ts.min():
        raise ValueError(f"task {task.name}: the data ({ts.min()} .. {end}) is shorter than the holdout of "
                         f"{t.holdout_hours} h; ingest more history or lower train.holdout_hours")
    origins: tuple[pd.Timestamp, ...] = ()
    if task.kind == "forecast" and fit_end - ts.min() <= pd.Timedelta(days=1):
        # MASE is scaled by the in-sample error of the daily seasonal-naive forecast: it needs more than a day
        raise ValueError(f"task {task.name}: {fit_end - ts.min()} of history before the holdout; forecasters are "
                         "judged against the daily seasonal-naive forecast, which needs more than one day: ingest "
                         "more history or lower train.holdout_hours")
    if task.kind == "forecast":
        origins = tuple(fm.rolling_origins(fit_end, end, every=pd.Timedelta(hours=t.origin_every_hours),
                                           horizon=t.horizon_steps, step=step))
        if not origins:
            raise ValueError(f"task {task.name}: the holdout of {t.holdout_hours} h is shorter than the horizon of "
                             f"{t.horizon_steps} steps of {step}")
    return Holdout(task.name, fit_end, end, step, t.horizon_steps, origins,
                   tuple(sorted(panel["series"].astype(str).unique())))


def season_steps(step: pd.Timedelta) -> int:
    return max(int(pd.Timedelta(days=1) / step), 1)


def candidate_config(settings: Settings, name: str) -> dict:
    return dict(settings.train.model_configs.get(name, {}))


def usable(task: Task, name: str) -> str | None:
    """Why a candidate cannot take part in the task (None when it can)."""
    cls = model_class(name)
    if (cls.kind == "forecaster") != (task.kind == "forecast"):
        return f"{name} is a {cls.kind}, the task {task.name} needs a {task.kind}er"
    if task.multivariate and not cls.supports_multivariate:
        return f"{name} is univariate; {task.name} scores {len(task.metrics)} metrics together"
    return None


def train_candidate(task: Task, name: str, panel: pd.DataFrame, holdout: Holdout, settings: Settings,
                    labels: pd.Series | None = None) -> CandidateResult:
    """Fit candidate `name` before the holdout and judge it on the holdout. Failures become a result with an error
    (one bad candidate must not sink the others)."""
    t0 = time.perf_counter()
    res = CandidateResult(task.name, name)
    try:
        ts = pd.to_datetime(panel["ts"], utc=True)
        train = panel.loc[ts < holdout.fit_end]
        model = create(name, **candidate_config(settings, name)).fit(train)
        res.model = model
        _judge(res, task, model, panel, holdout, labels)
    except Exception as exc:  # noqa: BLE001 - reported per candidate, logged by the flow
        res.error = f"{type(exc).__name__}: {exc}"
    res.seconds = time.perf_counter() - t0
    return res


def judge(task: Task, model, panel: pd.DataFrame, holdout: Holdout, labels: pd.Series | None = None
          ) -> CandidateResult:
    """Judge an already fitted model (e.g. the current champion) on the holdout."""
    res = CandidateResult(task.name, model.name, model=model)
    _judge(res, task, model, panel, holdout, labels)
    return res


def _judge(res: CandidateResult, task: Task, model, panel, holdout: Holdout, labels) -> None:
    if task.kind == "forecast":
        res.per_series, res.output = evaluate_forecaster(model, panel, holdout)
        res.metrics = summarise_forecast(res.per_series)
    else:
        res.output, res.metrics = evaluate_detector(model, panel, holdout, labels)


def evaluate_forecaster(model, panel: pd.DataFrame, holdout: Holdout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-series metrics over every origin of the holdout, and the stacked forecasts."""
    ts = pd.to_datetime(panel["ts"], utc=True)
    panel = panel.assign(ts=ts)
    train = panel.loc[ts < holdout.fit_end]
    scale = fm.scales(train, season_steps(holdout.step))
    forecasts = []
    # only what the model reads (its context_steps): checking the whole span again at every origin was most of
    # the cost of judging the cheap models
    reach = holdout.step * max(model.context_steps, 2)
    for origin in holdout.origins:
        hist = panel.loc[(panel["ts"] <= origin) & (panel["ts"] > origin - reach)]
        fc = model.predict(holdout.horizon, history=hist)
        forecasts.append(fc.assign(origin=origin))
    stacked = pd.concat(forecasts, ignore_index=True)
    actual = panel.loc[panel["ts"] >= holdout.fit_end]
    per_series = fm.evaluate(stacked, actual, scale, horizon=holdout.horizon)
    return per_series, stacked


def summarise_forecast(per_series: pd.DataFrame) -> dict[str, float]:
    finite = per_series.replace([np.inf, -np.inf], np.nan)
    out = {"mase": float(finite["mase"].mean()), "mase_median": float(finite["mase"].median()),
           "smape": float(finite["smape"].mean()), "series": float(len(per_series))}
    for c in per_series.columns:
        if c.startswith(("pinball_", "coverage_")):
            out[c] = float(finite[c].mean())
    return out


def evaluate_detector(model, panel: pd.DataFrame, holdout: Holdout, labels: pd.Series | None
                      ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Scores on the holdout (with the fit's tail as causal context) and their agreement with the labels."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from models.thresholds import best_f1

    ts = pd.to_datetime(panel["ts"], utc=True)
    context = holdout.fit_end - holdout.step * max(model.context_steps, 1)
    window = panel.loc[ts >= context]
    scores = model.score(window)
    scores = scores.assign(ts=pd.to_datetime(scores["ts"], utc=True))
    lab = (labels if labels is not None else pd.Series(0, index=panel.index)).rename("label")
    judged = panel.loc[ts >= holdout.fit_end, ["series", "ts"]].assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))
    judged = judged.join(lab).merge(scores, on=["series", "ts"], how="left")
    ok = judged["score"].notna()
    y, s = judged.loc[ok, "label"].to_numpy(), judged.loc[ok, "score"].to_numpy()
    metrics: dict[str, float] = {"points": float(ok.sum()), "labelled_points": float(y.sum()),
                                 "alarm_rate": float((s > 0.999).mean()) if len(s) else float("nan")}
    if 0 < y.sum() < len(y):
        metrics["average_precision"] = float(average_precision_score(y, s))
        metrics["roc_auc"] = float(roc_auc_score(y, s))
        bf = best_f1(s, y)
        metrics["best_f1"] = float(bf.f1)
        metrics["best_threshold"] = float(bf.threshold)
    return judged, metrics


def best_of(task: Task, results: list[CandidateResult]) -> CandidateResult | None:
    """The candidate with the best primary metric on the holdout; None when none could be judged."""
    metric, lower = PRIMARY[task.kind]
    judged = [r for r in results if r.ok and np.isfinite(r.metrics.get(metric, np.nan))]
    if not judged:
        return None
    return sorted(judged, key=lambda r: r.metrics[metric] if lower else -r.metrics[metric])[0]


def comparable(task: Task, challenger: CandidateResult, champion: CandidateResult) -> tuple[float, float]:
    """Both primary scores on the same windows: for forecasts, over the series both could forecast."""
    metric, _ = PRIMARY[task.kind]
    if task.kind == "forecast" and challenger.per_series is not None and champion.per_series is not None:
        common = sorted(set(challenger.per_series["series"]) & set(champion.per_series["series"]))
        a = challenger.per_series.set_index("series").loc[common, "mase"].replace([np.inf], np.nan).mean()
        b = champion.per_series.set_index("series").loc[common, "mase"].replace([np.inf], np.nan).mean()
        return float(a), float(b)
    return challenger.metrics.get(metric, float("nan")), champion.metrics.get(metric, float("nan"))
