"""What a person reads after a run: the demo's summary and `aiops status`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aiops.ingest import default_range
from aiops.metrics import METRICS
from aiops.settings import Settings
from aiops.store import Store

FEATURE_TABLES = ("demand", "utilisation", "series")


def _table_rows(path: Path) -> int:
    # row counts from the Parquet footers: no data is read
    files = path.rglob("*.parquet") if path.exists() else []
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def data_plane_status(settings: Settings) -> dict:
    """The state of the data plane as plain data (printed by `aiops status`, or as JSON/YAML)."""
    store = Store(settings.data_dir)
    s = store.summary()
    start, end = default_range(settings)
    windows = s.windows
    sources = sorted(set(windows["source"])) if len(windows) else [settings.source]
    gaps = []
    for source in sources:
        for metric in METRICS:
            for w in store.missing_windows(source, metric, start, end, settings.ingest.window):
                gaps.append({"source": source, "metric": metric, "window_start": pd.Timestamp(w).isoformat()})
    q = store.quarantined()
    if len(q):
        q = q.assign(path=[str(Path(p).resolve()) for p in q["path"]])
    return {
        "data_dir": str(settings.data_dir.resolve()),
        "source": settings.source,
        "range": {"start": start.isoformat(), "end": end.isoformat(), "window_hours": settings.ingest.window_hours},
        "series": s.series,
        "rows": s.rows,
        "first_ts": None if s.first_ts is None else pd.Timestamp(s.first_ts).isoformat(),
        "last_ts": None if s.last_ts is None else pd.Timestamp(s.last_ts).isoformat(),
        "windows": windows.to_dict(orient="records"),
        "missing_windows": gaps,
        "quarantined": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in q.to_dict(orient="records")
        ],
        "feature_tables": {t: _table_rows(settings.features_dir / t) for t in FEATURE_TABLES},
        "incident_labels": _table_rows(settings.data_dir / "labels" / "incidents"),
        "events": _table_rows(settings.data_dir / "events"),
        "bytes_on_disk": s.bytes_on_disk,
    }


def _console() -> Console:
    c = Console()
    # piped into a file or CI log, rich would wrap at 80 columns; these lines read better whole
    return c if c.is_terminal else Console(width=130)


def _windows_table(status: dict) -> Table:
    t = Table(title="Stored windows per metric", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("source", "metric", "windows", "empty", "rows", "first", "last"):
        t.add_column(col, justify="right" if col in ("windows", "empty", "rows") else "left")
    for w in status["windows"]:
        t.add_row(str(w["source"]), str(w["metric"]), f"{w['windows']:,}", f"{w.get('empty_windows', 0):,}",
                  f"{w['rows']:,}", str(w.get("first_ts", ""))[:16], str(w.get("last_ts", ""))[:16])
    return t


def print_status(settings: Settings, status: dict, console: Console | None = None) -> None:
    c = console or _console()
    c.print(f"[bold]Data plane[/bold] of {status['data_dir']} (source: {status['source']})")
    c.print(f"  {status['series']:,} series, {status['rows']:,} rows, "
            f"{status['first_ts'] or '-'} .. {status['last_ts'] or '-'}, {status['bytes_on_disk'] / 1e6:.1f} MB")
    if status["windows"]:
        c.print(_windows_table(status))
    gaps = status["missing_windows"]
    r = status["range"]
    c.print(f"  missing windows in {r['start'][:16]} .. {r['end'][:16]}: {len(gaps)}"
            + (" (re-run `aiops ingest` to fill them)" if gaps else ""))
    for g in gaps[:10]:
        c.print(f"    {g['source']} {g['metric']} {g['window_start'][:16]}")
    if len(gaps) > 10:
        c.print(f"    ... and {len(gaps) - 10} more")
    distinct = {(q.get("source"), q.get("metric"), str(q.get("start"))) for q in status["quarantined"]}
    c.print(f"  quarantined batches: {len(status['quarantined'])}"
            + (f" (for {len(distinct)} window(s); every rejected attempt is kept)" if distinct else ""))
    for q in status["quarantined"][:10]:
        c.print(f"    {q.get('source')} {q.get('metric') or '*'} {str(q.get('start'))[:16]}: {_short(q.get('reason'))}"
                f"\n      kept in {q.get('path')}", soft_wrap=True)
    ft = status["feature_tables"]
    c.print("  feature tables: " + ", ".join(f"{k} {v:,} rows" for k, v in ft.items()))
    c.print(f"  incident labels: {status['incident_labels']}, Kubernetes events: {status['events']:,}")


def print_demo_summary(settings: Settings, result: dict, *, elapsed_s: float, console: Console | None = None) -> None:
    c = console or _console()
    status = data_plane_status(settings)
    ing, feat = result["ingest"], result["features"]
    c.rule("[bold]aiops demo: summary")
    c.print(f"Simulated cluster [bold]{settings.cluster_name}[/bold]: {settings.sim.workloads} workloads in "
            f"{settings.sim.namespaces} namespaces, {settings.sim.days:g} days at {settings.sim.step_seconds}s steps, "
            f"seed {settings.sim.seed}")
    labels = Store(settings.data_dir).read_table("labels/incidents")
    if len(labels):
        c.print(f"Injected incidents ({len(labels)}; ground truth in data/labels/incidents):")
        for row in labels.sort_values("start").itertuples():
            c.print(f"  {pd.Timestamp(row.start):%m-%d %H:%M}..{pd.Timestamp(row.end):%H:%M}  {row.description}",
                    soft_wrap=True)
    c.print(f"Ingest ({ing['source']}): {ing['windows']} windows of {settings.ingest.window_hours:g} h × "
            f"{len(METRICS)} metrics — {ing['windows_stored']} stored now, {ing['windows_skipped']} already stored, "
            f"{ing.get('windows_quarantined', 0)} with quarantined batches; "
            f"{ing['rows']:,} rows this run")
    c.print(f"Store: {status['series']:,} series, {status['rows']:,} rows, {len(status['missing_windows'])} missing "
            f"windows, {status['events']:,} Kubernetes events")
    q = ing.get("quarantined") or []
    c.print(f"Quarantined batches: {len(status['quarantined'])}" + (" (this run: " + str(len(q)) + ")" if q else ""))
    for line in q[:5]:
        c.print(f"  {_short(line)}", soft_wrap=True)
    if q:
        c.print("  (kept with their validation results in data/quarantine/; `aiops status` lists them; the windows stay "
                "missing until a re-run gets clean data)", soft_wrap=True)
    c.print("Features: " + ", ".join(f"{k} {v:,} rows" for k, v in feat["tables"].items()))
    if result.get("train"):
        from aiops.summary_models import print_detection, print_training

        c.rule("Models: trained, judged on the holdout, registered in MLflow")
        print_training(result["train"], console=c)
        c.rule("Anomalies found by the champion detectors")
        print_detection(result.get("detect") or {}, console=c)
    if result.get("prescale"):
        print_prescale(result["prescale"], c)
    if result.get("tune"):
        print_tuning(result["tune"], c)
    if result.get("cost"):
        print_cost(result["cost"], c)
    c.print(f"Data: {status['data_dir']} ({status['bytes_on_disk'] / 1e6:.1f} MB): raw/ Parquet by metric and day, "
            "features/, labels/, events/, quarantine/, state/watermarks.sqlite, prefect/ (flow runs)")
    c.print(f"Done in {elapsed_s:.0f} s. Next:")
    for cmd, what in (("status", "the state of the data plane"),
                      ("models", "the champion and challenger of each task"),
                      ("ui mlflow", "runs, plots, registered models and aliases in the MLflow UI, http://127.0.0.1:5000"),
                      ("ui prefect", "these flow runs in the Prefect UI, http://127.0.0.1:4200"),
                      ("suggestions --all", "the recommendations (pre-scaling, tuning, right-sizing) and their state"),
                      ("sim serve", "the simulated cluster's Kubernetes API, for kubectl")):
        c.print(f"  .venv/bin/aiops {cmd:<11} {what}", soft_wrap=True)


def _outcomes(results: list[dict]) -> str:
    from collections import Counter

    n = Counter(r["outcome"] for r in results)
    return ", ".join(f"{k} {v}" for k, v in sorted(n.items())) or "nothing to change"


def print_prescale(out: dict, c: Console) -> None:
    """What would be pre-scaled and why (the prescale flow's result)."""
    c.rule("Pre-scaling: replicas planned ahead of the forecast demand, and why")
    for p in out["plans"]:
        what = "minReplicas" if p["kind"] == "HorizontalPodAutoscaler" else "replicas"
        change = "no change" if p["proposed"] is None else f"{what} {p['current']} -> {p['proposed']}"
        # escaped: model names like forecast-request_rate[naive] are not rich markup
        c.print(escape(f"  {p['namespace']}/{p['workload']} [{p['mode']}] {change}: {_short(p['reason'], 300)}"
                       + (f" ({p['note']})" if p["note"] else "")), soft_wrap=True)
    c.print(f"  through the actuator: {_outcomes(out['results'])}", soft_wrap=True)


def print_tuning(out: dict, c: Console) -> None:
    """The tuned HPA settings and their expected effect (the tune flow's result)."""
    c.rule("HPA tuning: NSGA-II in the simulator on each HPA's recorded demand")
    for w in out["workloads"]:
        name = f"{w['namespace']}/{w['workload']}"
        if w["status"] != "tuned":
            c.print(escape(f"  {name}: {w['reason']}"), soft_wrap=True)
            continue
        cur, new, b, a = w["current"], w["chosen"], w["before"], w["after"]
        c.print(f"  {name} (HPA {w['hpa']}, {w['evaluations']} candidates in {w['seconds']:.0f} s):", soft_wrap=True)
        c.print(escape(f"    now:    {_hpa_line(cur)}"), soft_wrap=True)
        c.print(escape(f"    tuned:  {_hpa_line(new)}"), soft_wrap=True)
        c.print(f"    expected on the last {w['days']:.1f} days replayed: SLO-violation minutes "
                f"{b['violation_minutes']:.0f} -> {a['violation_minutes']:.0f}, replica-hours "
                f"{b['replica_hours']:.0f} -> {a['replica_hours']:.0f}"
                + ("" if w["propose"] else " (not proposed: too small a gain)"), soft_wrap=True)
    c.print(f"  through the actuator: {_outcomes(out['results'])}; each search is in MLflow (experiment tune-hpa: "
            "Pareto plot and table)", soft_wrap=True)


def print_cost(out: dict, c: Console, top: int = 5) -> None:
    """The expected monthly saving of right-sizing and its risk (the cost flow's result)."""
    c.rule("Cost: right-sized requests (PuLP) and node pools, OpenCost prices")
    t, solve = out["totals"], out["solve"]
    done = [x for x in out["containers"] if x["status"] != "skipped"]
    pct = f" ({t['saving'] / t['cost_now']:.0%})" if t["cost_now"] else ""
    c.print(f"  {t['containers']} containers, usage {out['history'][0][:16]} .. {out['history'][1][:16]}: "
            f"${t['cost_now']:,.2f} -> ${t['cost_new']:,.2f} per month, saves ${t['saving']:,.2f}{pct}; "
            f"model {solve['status']} in {solve['seconds']:.2f} s", soft_wrap=True)
    risk_now = [x["cpu_risk_now"] for x in done if x["cpu_risk_now"] is not None]
    risk_new = [x["cpu_risk_expected"] for x in done if x["cpu_risk_expected"] is not None]
    if risk_now and risk_new:
        c.print(f"  risk: CPU usage above the request in {sum(risk_now) / len(risk_now):.1%} of intervals now "
                f"(mean over containers, worst {max(risk_now):.1%}); expected after {sum(risk_new) / len(risk_new):.1%} "
                f"(worst {max(risk_new):.1%}); memory limits stay above each container's peak plus a margin",
                soft_wrap=True)
    for x in sorted(done, key=lambda x: -abs(x["saving"] or 0))[:top]:
        r, p = x["recommended"], x["proposed"]
        cpu = f"CPU {_size(x['cpu_request'], 'cpu')} -> {_size(r.get('cpu_request'), 'cpu')}"
        mem = f"memory {_size(x['memory_request'], 'mem')} -> {_size(r.get('memory_request'), 'mem')}"
        c.print(escape(f"  {x['namespace']}/{x['workload']}: {cpu}, {mem}: ${x['cost_now']:.2f} -> "
                       f"${x['cost_new']:.2f}/month" + ("" if p else " (not proposed)")
                       + (f"; {x['note']}" if x["note"] else "")), soft_wrap=True)
    for pool in out.get("pools") or []:
        c.print(escape(f"  node pool {pool['name']}: {pool['reason']}"), soft_wrap=True)
    if out.get("mix"):
        c.print(escape(f"  cheapest node mix for the right-sized pods: {out['mix'].get('summary', '')}"),
                soft_wrap=True)
    c.print(f"  through the actuator: {_outcomes(out['results'])}", soft_wrap=True)


def _size(v: float | None, kind: str) -> str:
    if v is None:
        return "unset"
    return f"{v * 1000:.0f}m" if kind == "cpu" else f"{v / 2**20:.0f}Mi"


def _hpa_line(h: dict) -> str:
    return (f"{h['min_replicas']}-{h['max_replicas']} replicas at {h['target_cpu_utilization']:.0%} CPU of a "
            f"{h['cpu_request']:g}-core request; up: window {h['scale_up_window_s']} s, {h['scale_up_policies']}; "
            f"down: window {h['scale_down_window_s']} s, {h['scale_down_policies']}")
