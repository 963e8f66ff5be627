"""What a person reads about the models: training outcomes, champions, detected anomalies."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from aiops.settings import Settings

METRIC_NOTE = {"mase": "MASE on the holdout, lower is better; 1 = seasonal-naive's in-sample error",
               "average_precision": "average precision against incident labels, higher is better"}


def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=130)


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_training(outcomes: dict, console: Console | None = None) -> None:
    """One table per task: every candidate's holdout score, the registered best and the promotion decision."""
    c = console or _console()
    for name, o in outcomes.items():
        if o.get("skipped"):
            c.print(f"{name}: skipped: {o['skipped']}", soft_wrap=True)
            continue
        c.print(f"[bold]{name}[/bold]: candidates on holdout {o['holdout_id']} "
                f"({METRIC_NOTE.get(o['metric'], o['metric'])})", soft_wrap=True)
        t = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
        for col in ("model", o["metric"], "coverage p90" if o["metric"] == "mase" else "best F1", "fit s", "note"):
            t.add_column(col, justify="left" if col in ("model", "note") else "right")
        for cand in sorted(o["candidates"], key=lambda x: (x["score"] is None, x["score"] or 0),
                           reverse=o["metric"] != "mase"):
            m = cand["metrics"] or {}
            second = m.get("coverage_p90") if o["metric"] == "mase" else m.get("best_f1")
            note = ("registered v" + str(o["version"])) if cand["name"] == o["best"] and o["version"] else ""
            if cand["error"]:
                note = "failed: " + cand["error"][:80]
            t.add_row(cand["name"], _num(cand["score"]), _num(second), f"{cand['seconds']:.1f}", note)
        c.print(t)
        d = o.get("decision")
        if d:
            c.print(f"  {o['best']} v{d['challenger_version']}: "
                    + ("[green]promoted to champion[/green]" if d["promoted"] else "[yellow]not promoted[/yellow]")
                    + f" ({d['metric']} {_num(d['challenger_score'])} vs champion {_num(d['champion_score'])} "
                    f"on the same holdout): {d['reason']}", soft_wrap=True)


def print_detection(outcomes: dict, console: Console | None = None) -> None:
    c = console or _console()
    for name, o in outcomes.items():
        if o.get("skipped"):
            c.print(f"{name}: {o['skipped']}")
            continue
        c.print(f"{name}: {o['model']} v{o['version']} scored {o['points']:,} points from {str(o['scored_from'])[:16]}; "
                f"{o['anomalies']} anomalies")
        for e in o.get("events", [])[:8]:
            c.print(f"    {str(e.get('start'))[5:16]}..{str(e.get('end'))[11:16]}  {e.get('series')}  "
                    f"peak {e.get('peak_score', float('nan')):.4f}", soft_wrap=True)


def model_status(settings: Settings) -> dict:
    """Every registered model's champion and challenger, as plain data."""
    from aiops import registry
    from aiops.tasks import tasks

    out = {}
    for t in tasks(settings):
        row = {}
        for alias in ("champion", "challenger"):
            v = registry.get_alias(settings, t.name, alias)
            row[alias] = None if v is None else {"version": v.version, "model": v.model_name, "metrics": v.metrics,
                                                 "holdout_id": v.holdout_id, "run_id": v.run_id}
        out[t.name] = row
    return out


def print_models(settings: Settings, status: dict, console: Console | None = None) -> None:
    c = console or _console()
    t = Table(title=f"Registered models in {settings.resolved_mlflow_uri}", title_justify="left",
              box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("registered model", "champion", "score", "challenger", "score"):
        t.add_column(col)
    for name, row in status.items():
        cells = [name]
        for alias in ("champion", "challenger"):
            v = row[alias]
            metric = "mase" if name.startswith("forecast") else "average_precision"
            cells += ["-", "-"] if v is None else [f"{v['model']} v{v['version']}", _num(v["metrics"].get(metric))]
        t.add_row(*cells)
    c.print(t)
