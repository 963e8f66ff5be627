"""After training: log every candidate to MLflow, register the best, and let it take `champion` only if it wins.

Every judged candidate becomes a run in the task's experiment (config, holdout metrics, plots, the model as a
pyfunc); the best becomes a new version of the task's registered model with alias `challenger`. The current
champion is judged again on the same holdout windows, and `registry.promote` records the decision with both scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiops import registry
from aiops.settings import Settings
from aiops.tasks import Task
from aiops.training import PRIMARY, CandidateResult, Holdout, best_of, comparable, judge


@dataclass
class TaskOutcome:
    task: str
    holdout_id: str
    metric: str
    candidates: list[dict] = field(default_factory=list)  # name, score, metrics, error, seconds, run_id
    best: str | None = None
    version: str | None = None
    decision: dict | None = None
    champion: dict | None = None  # name, version, score after the decision

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def plots_for(task: Task, result: CandidateResult, panel: pd.DataFrame, holdout: Holdout) -> dict:
    """Forecast against actual with quantile bands and residuals; or scores against the labels."""
    from aiops import plots

    out = {}
    try:
        if task.kind == "forecast" and result.output is not None and len(result.output):
            sid = _busiest(result, panel)
            last = result.output["origin"].max()
            fc = result.output.loc[(result.output["origin"] == last) & (result.output["series"] == sid)]
            ts = pd.to_datetime(panel["ts"], utc=True)
            mine = panel.loc[panel["series"] == sid]
            hist = mine.loc[ts[mine.index] <= last].tail(3 * holdout.horizon + 288)
            actual = mine.loc[ts[mine.index] > last]
            out["forecast.png"] = plots.forecast_plot(hist, actual, fc, series=sid)
            allfc = result.output.loc[result.output["series"] == sid]
            out["residuals.png"] = plots.residual_plot(mine, allfc)
        elif task.kind == "detect" and result.output is not None and len(result.output):
            judged = result.output
            sid = judged.loc[judged["label"] == 1, "series"].iloc[0] if judged["label"].sum() else \
                judged.groupby("series")["score"].max().idxmax()
            mine = judged.loc[judged["series"] == sid]
            values = panel.loc[panel["series"] == sid].assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))
            values = values.loc[values["ts"] >= mine["ts"].min()]
            col = "value" if "value" in values.columns else [c for c in values.columns if c not in ("series", "ts")][0]
            labels = _windows(mine)
            out["scores.png"] = plots.scores_plot(values[["series", "ts", col]].rename(columns={col: "value"}),
                                                  mine[["series", "ts", "score"]], labels=labels, threshold=None)
    except Exception:  # noqa: BLE001 - a plot is never worth losing a trained model over
        import logging

        logging.getLogger(__name__).exception("plot for %s/%s failed", task.name, result.model_name)
    return out


def _busiest(result: CandidateResult, panel: pd.DataFrame) -> str:
    v = panel.groupby("series")[panel.columns[2]].mean()
    return str(v.idxmax())


def _windows(judged: pd.DataFrame) -> pd.DataFrame:
    lab = judged["label"].to_numpy()
    if not lab.any():
        return pd.DataFrame(columns=["series", "start", "end"])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lab, [0]])))
    ts = judged["ts"].to_numpy()
    sid = judged["series"].iloc[0]
    rows = [{"series": sid, "start": ts[a], "end": ts[min(b, len(ts) - 1)]} for a, b in zip(edges[::2], edges[1::2])]
    return pd.DataFrame(rows)


def input_example(model, panel: pd.DataFrame) -> pd.DataFrame:
    """A small real input for the model's signature: the tail of one series, long enough to predict or score."""
    n = max(model.context_steps, model.min_history, 2)
    complete = panel.dropna()  # rows with every value: a quarantined window leaves a metric missing for hours
    sid = complete["series"].iloc[-1] if len(complete) else panel["series"].iloc[0]
    return complete.loc[complete["series"] == sid].tail(n).reset_index(drop=True)


def log_and_promote(settings: Settings, task: Task, panel: pd.DataFrame, holdout: Holdout,
                    results: list[CandidateResult], labels: pd.Series | None = None) -> TaskOutcome:
    metric, lower = PRIMARY[task.kind]
    out = TaskOutcome(task.name, holdout.id, metric)
    best = best_of(task, results)
    if best is None and task.kind == "detect":
        # no labelled incident in the holdout (a real cluster): the robust baseline stands in, and can only
        # take `champion` when there is none
        best = next((r for r in results if r.ok and r.model_name == "robust_mad"), None)
    for r in results:
        entry = {"name": r.model_name, "score": r.metrics.get(metric), "metrics": r.metrics, "error": r.error,
                 "seconds": round(r.seconds, 2), "run_id": None}
        if r.ok:
            logged = registry.log_candidate(
                settings, r.model, experiment=task.experiment,
                registered_name=task.name if r is best else None, metrics=_finite(r.metrics),
                holdout={**holdout.to_dict(), "id": holdout.id}, input_example=input_example(r.model, panel),
                plots=plots_for(task, r, panel, holdout), params={"task": task.name, "fit_seconds": round(r.seconds, 2)},
                run_name=r.model_name,
                predict_params={"horizon": holdout.horizon} if task.kind == "forecast" else None)
            entry["run_id"] = logged.run_id
            if r is best:
                out.best, out.version = r.model_name, logged.version
        out.candidates.append(entry)
    if best is None or out.version is None:
        return out
    challenger_score, champion_score = best.metrics.get(metric, float("nan")), None
    current = registry.get_alias(settings, task.name, "champion")
    reason_extra = ""
    if current is not None:
        try:
            champ_model, _ = registry.load_model(settings, task.name, "champion")
            champ = judge(task, champ_model, panel, holdout, labels)
            challenger_score, champion_score = comparable(task, best, champ)
        except Exception as exc:  # noqa: BLE001 - a champion that cannot be judged cannot defend its place
            reason_extra = f"champion v{current.version} could not be judged on this holdout ({exc})"
            champion_score = math.inf if lower else -math.inf
    decision = registry.promote(settings, task.name, out.version, metric=metric,
                                challenger_score=float(challenger_score),
                                champion_score=None if champion_score is None else float(champion_score),
                                holdout_id=holdout.id, lower_is_better=lower,
                                min_improvement=settings.train.min_improvement)
    out.decision = {**decision.__dict__, "note": reason_extra} if reason_extra else dict(decision.__dict__)
    now = registry.get_alias(settings, task.name, "champion")
    if now is not None:
        score = challenger_score if decision.promoted else champion_score
        out.champion = {"name": now.model_name, "version": now.version, "score": score}
    return out


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
