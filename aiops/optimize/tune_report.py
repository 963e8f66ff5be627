"""How a tuning run is shown: the Pareto front as a plot, every candidate as a table, one MLflow run per workload.

The plot draws every evaluated candidate (grey), the front (a step line), the current settings and the chosen
point, on SLO-violation minutes against cost, so an ML engineer reviewing the recommendation in the MLflow UI
sees what was traded and what was left. `front_plot` returns a matplotlib Figure (no pyplot), usable in a
notebook as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from aiops.optimize.tuner import TuneResult

if TYPE_CHECKING:  # pragma: no cover
    from aiops.optimize.tune import WorkloadTuning
    from aiops.settings import Settings

EXPERIMENT = "tune-hpa"


def front_plot(r: TuneResult, title: str = "") -> Figure:
    """Violation minutes against cost for every candidate, with the front, the baseline and the chosen point."""
    cost = r.cost.replace("_", "-")
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    xs = [e.cost(r.cost) for e in r.evaluated]
    ys = [e.outcome.violation_minutes for e in r.evaluated]
    ax.scatter(xs, ys, s=10, color="0.7", label=f"evaluated ({len(xs)})")
    fx = [e.cost(r.cost) for e in r.front]
    fy = [e.outcome.violation_minutes for e in r.front]
    ax.step(fx, fy, where="post", color="tab:blue", lw=1.5, label=f"Pareto front ({len(fx)})")
    ax.scatter(fx, fy, s=18, color="tab:blue")
    ax.scatter([r.default.cost(r.cost)], [r.default.outcome.violation_minutes], marker="s", s=60, color="tab:red",
               label="current settings", zorder=3)
    ax.scatter([r.chosen.cost(r.cost)], [r.chosen.outcome.violation_minutes], marker="*", s=180, color="tab:green",
               label="chosen", zorder=4)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel(cost)
    ax.set_ylabel("SLO-violation minutes (replayed)")
    ax.set_title(title or f"{r.method}: {len(r.evaluated)} candidates")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.005, f"chosen: {r.rule}", fontsize=7, color="0.3")
    return fig


def table(r: TuneResult) -> pd.DataFrame:
    """Every evaluated candidate: settings, objectives, on the front, chosen."""
    return pd.DataFrame(r.table())


def log_to_mlflow(settings: Settings, rows: list[WorkloadTuning], *, run_name: str | None = None) -> list[str]:
    """One MLflow run per tuned workload in experiment `tune-hpa`; returns the run ids."""
    from mlflow.entities import Metric, Param

    from aiops.mlflow_model import param_value
    from aiops.registry import _now_ms, client, ensure_experiment

    exp = ensure_experiment(settings, EXPERIMENT)
    c = client(settings)
    ids = []
    for w in rows:
        r = w.result
        if r is None:
            continue
        name = f"{w.namespace}/{w.workload}"
        run = c.create_run(exp, run_name=run_name or name,
                           tags={"workload": name, "hpa": w.hpa or "", "proposed": str(w.propose),
                                 "cluster": settings.cluster_name})
        rid = run.info.run_id
        try:
            params = {"method": r.method, "cost": r.cost, "rule": r.rule, "evaluations": len(r.evaluated),
                      "days_replayed": round(w.days, 2), **{f"chosen.{k}": v for k, v in w.chosen.items()},
                      **{f"current.{k}": v for k, v in w.current.items()},
                      **({f"assumed.{k}": v for k, v in w.model.model_dump().items()} if w.model else {})}
            metrics = {**{f"current_{k}": float(v) for k, v in w.before.items()},
                       **{f"chosen_{k}": float(v) for k, v in w.after.items()},
                       "front_size": float(len(r.front)), "seconds": r.seconds,
                       "evaluations_per_s": r.evaluations_per_s}
            c.log_batch(rid, metrics=[Metric(k, v, _now_ms(), 0) for k, v in metrics.items()],
                        params=[Param(k, str(param_value(v))[:6000]) for k, v in params.items()])
            for g in r.generations:
                c.log_metric(rid, "front_size_by_generation", float(g["front_size"]), step=int(g["generation"]))
            c.log_figure(rid, front_plot(r, f"{name}: {r.method}, {len(r.evaluated)} candidates"), "plots/pareto.png")
            c.log_table(rid, table(r), "pareto.json")
            c.set_terminated(rid, "FINISHED")
        except BaseException:
            c.set_terminated(rid, "FAILED")
            raise
        ids.append(rid)
    return ids
