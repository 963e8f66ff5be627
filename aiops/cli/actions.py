"""The actuator's commands for SREs: suggestions, propose, apply, reject, rollback, audit, freeze (and its part
of `aiops status`).

Conventions of kubectl and KRR: `-o table|json|yaml`, messages on stderr, data on stdout, and exit codes that
scripts can rely on (README, Actuator section):
0 done; 1 failed (cluster unreachable, API error); 2 bad arguments, settings or unknown id; 3 forbidden by role;
4 blocked (guardrail, mode, state); 5 conflict (the object or recommendation changed: re-read and retry);
6 the audit chain does not verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from aiops.cli.common import EXIT_USAGE, ConfigOption, emit, settings_or_exit
from aiops.errors import ActuatorError, AiopsError, UnknownNameError

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table | json | yaml")]
IdArg = Annotated[int, typer.Argument(help="recommendation id (see `aiops suggestions`)", min=1)]


def _open(config: Path | None):
    from aiops.actuator.actuator import Actuator

    settings = settings_or_exit(config)
    try:
        return Actuator.open(settings)
    except (ActuatorError, ValueError, OSError) as exc:
        _die(exc)


def _die(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    if isinstance(exc, UnknownNameError):
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def _check_output(output: str) -> None:
    if output not in ("table", "json", "yaml"):
        typer.secho(f"unknown output {output!r}; known: table, json, yaml", fg="red", err=True)
        raise typer.Exit(EXIT_USAGE)


def _console():
    import sys

    from rich.console import Console

    # piped output is not wrapped to 80 columns (kubectl does not wrap either)
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and v and all(isinstance(p, dict) and "period_s" in p for p in v):
        from aiops.actuator.recommendation import HPAPolicy

        return "+".join(str(HPAPolicy(**p)) for p in v)  # HPA behavior policies, as "Pods 4/15s+Percent 100%/15s"
    return "-" if v is None else str(v)


def _change_text(rec_change: Any, before: dict | None = None) -> str:
    from aiops.actuator.changes import wanted

    def size(k: str, v: Any) -> str:
        # requests and limits as kubectl shows them: millicores and MiB
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k.startswith(("cpu_", "memory_")):
            return f"{v * 1000:.0f}m" if k.startswith("cpu_") else f"{v / 2**20:.0f}Mi"
        return _fmt(v)

    parts = []
    for k, v in wanted(rec_change).items():
        old = (before or {}).get(k)
        parts.append(f"{k} {size(k, old)}->{size(k, v)}" if before else f"{k}={size(k, v)}")
    return ", ".join(parts)


def _rec_dict(r: Any) -> dict[str, Any]:
    return r.model_dump(mode="json")


def _print_outcome(o: Any, output: str) -> None:
    if output != "table":
        emit(o.as_dict(), output)
        return
    c = _console()
    c.print(f"recommendation {o.recommendation}: [bold]{o.outcome}[/bold] (state {o.state})")
    if o.before is not None and o.after is not None:
        changed = {k: (o.before.get(k), v) for k, v in o.after.items() if o.before.get(k) != v}
        for k, (a, b) in changed.items():
            c.print(f"  {k}: {_fmt(a)} -> {_fmt(b)}")
    for w in o.warnings:
        c.print(f"  [yellow]warning:[/yellow] {w}")
    if o.diff:
        c.print(o.diff, markup=False, highlight=False)


def _outcome_of(config: Path | None, output: str, do: Any) -> None:
    """Open the actuator, `do(actuator)` one thing to one recommendation, print its outcome, exit by its kind."""
    _check_output(output)
    act = _open(config)
    try:
        _print_outcome(do(act), output)
    except AiopsError as exc:
        _die(exc)
    finally:
        act.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def suggestions(
        config: ConfigOption = None,
        all_: Annotated[bool, typer.Option("--all", "-A", help="every recommendation, not only the open ones")] = False,
        output: OutputOption = "table",
    ) -> None:
        """Open recommendations (pending, dry-run-ok, or being applied), with their reason and evidence."""
        from aiops.actuator.policy import Action
        from aiops.actuator.recommendation import OPEN_STATES, State

        _check_output(output)
        act = _open(config)
        try:
            act.authorize(Action.read)
            # applying ones too: a write under way, or one a crash left for the next command to settle
            recs = act.store.list(None if all_ else (*OPEN_STATES, State.applying))
        except AiopsError as exc:
            _die(exc)
        finally:
            act.close()
        if output != "table":
            emit([_rec_dict(r) for r in recs], output)
            return
        from rich import box
        from rich.table import Table

        t = Table(box=box.SIMPLE_HEAD, padding=(0, 1), title_justify="left",
                  title=f"{len(recs)} {'recommendations' if all_ else 'open recommendations'}")
        for col in ("ID", "STATE", "NAMESPACE", "OBJECT", "CHANGE", "REASON", "EVIDENCE", "AGE"):
            t.add_column(col, overflow="fold")
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc)
        for r in recs:
            ev = r.evidence
            evidence = ev.source + (f" {ev.model} v{ev.model_version}" if ev.model else "")
            obj = f"{r.target.kind.lower()}/{r.target.name}" + (f"[{r.target.container}]" if r.target.container
                                                                 and r.change.type == "resources" else "")
            state = r.state.value + (" (settled by the next apply or status)" if r.state is State.applying else "")
            t.add_row(str(r.id), state, r.target.namespace, obj, _change_text(r.change), r.reason,
                      evidence, _age(now - r.created_at))
        _console().print(t)

    @app.command()
    def propose(
        file: Annotated[Path, typer.Option("--filename", "-f", help="YAML or JSON: one proposal or a list of them",
                                           exists=True, dir_okay=False)],
        config: ConfigOption = None,
        output: OutputOption = "table",
    ) -> None:
        """Submit recommendations from a file (developer and above); resubmitting the same one is a no-op."""
        import yaml
        from pydantic import TypeAdapter, ValidationError

        from aiops.actuator.recommendation import Proposal

        _check_output(output)
        try:
            doc = yaml.safe_load(file.read_text())
            items = TypeAdapter(list[Proposal]).validate_python(doc if isinstance(doc, list) else [doc])
        except (yaml.YAMLError, ValidationError) as exc:
            typer.secho(f"error: {file}: not a valid proposal:\n{exc}", fg="red", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        act = _open(config)
        out = []
        try:
            for p in items:
                rec, created = act.propose(p)
                out.append({"id": rec.id, "created": created, "state": rec.state.value, "target": str(rec.target)})
        except AiopsError as exc:
            _die(exc)
        finally:
            act.close()
        if output == "table":
            for o in out:
                typer.echo(f"recommendation {o['id']} {'proposed' if o['created'] else 'already exists'}: "
                           f"{o['target']} ({o['state']})")
        else:
            emit(out, output)

    @app.command()
    def apply(
        rec_id: IdArg,
        config: ConfigOption = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="only dry-run on the server and show the diff")]
        = False,
        output: OutputOption = "table",
    ) -> None:
        """Check, dry-run and (in apply mode) apply one recommendation."""
        _outcome_of(config, output, lambda act: act.apply(rec_id, dry_run=dry_run))

    @app.command()
    def rollback(
        rec_id: IdArg,
        config: ConfigOption = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="only dry-run the rollback and show the diff")]
        = False,
        output: OutputOption = "table",
    ) -> None:
        """Undo an applied recommendation from its audit record."""
        _outcome_of(config, output, lambda act: act.rollback(rec_id, dry_run=dry_run))

    @app.command()
    def reject(
        rec_id: IdArg,
        config: ConfigOption = None,
        reason: Annotated[str, typer.Option("--reason", "-m", help="why (kept in the audit record)")] = "",
        output: OutputOption = "table",
    ) -> None:
        """Reject an open recommendation (operator and above)."""
        _outcome_of(config, output, lambda act: act.reject(rec_id, reason))

    @app.command()
    def audit(
        config: ConfigOption = None,
        recent: Annotated[Optional[int], typer.Option("--recent", help="only the last N records", min=1)] = None,
        verify: Annotated[bool, typer.Option("--verify", help="check the hash chain; exit 6 if it is broken")]
        = False,
        recommendation: Annotated[Optional[int], typer.Option("--id", help="only this recommendation's records")]
        = None,
        output: OutputOption = "table",
    ) -> None:
        """The audit trail of every decision; `--verify` checks that no record was edited, deleted or reordered."""
        from aiops.actuator.policy import Action

        _check_output(output)
        act = _open(config)
        try:
            act.authorize(Action.read)
            if verify:
                result = act.store.verify()
            else:
                rows = act.store.audit_records(recent=recent, recommendation_id=recommendation)
        except AiopsError as exc:
            _die(exc)
        finally:
            act.close()
        if verify:
            if output != "table":
                emit(result.as_dict(), output)
            elif result.ok:
                typer.echo(f"audit chain OK: {result.records} records, head {result.head_seq} {result.head_hash}")
            else:
                typer.secho(f"audit chain BROKEN ({len(result.problems)} problem(s)):", fg="red", err=True)
                for p in result.problems:
                    typer.secho(f"  {p}", fg="red", err=True)
            if not result.ok:
                raise typer.Exit(6)
            return
        if output != "table":
            emit(rows, output)
            return
        from rich import box
        from rich.table import Table

        t = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
        for col in ("SEQ", "TIME", "WHO", "ROLE", "ACTION", "ID", "OBJECT", "OUTCOME", "CHANGE", "WHY"):
            t.add_column(col, overflow="fold")
        for r in rows:
            change = ""
            if isinstance(r["before"], dict) and isinstance(r["after"], dict):
                change = ", ".join(f"{k} {_fmt(r['before'].get(k))}->{_fmt(v)}" for k, v in r["after"].items()
                                   if r["before"].get(k) != v)
            t.add_row(str(r["seq"]), r["time"][:19].replace("T", " "), r["actor"], r["role"], r["action"],
                      _fmt(r["recommendation_id"]), (r["object_key"] or "-").split("/", 1)[-1], r["outcome"],
                      change, r["reason"])
        _console().print(t)

    @app.command()
    def actuate(
        config: ConfigOption = None,
        source: Annotated[Optional[list[str]], typer.Option(help="only recommendations from this producer "
                                                                 "(repeatable)")] = None,
        dry_run: Annotated[Optional[bool], typer.Option("--dry-run/--apply", help="force a dry-run, or apply; "
                                                        "default: follow actuator.mode")] = None,
        output: OutputOption = "table",
    ) -> None:
        """Run the actuate flow: dry-run or apply every open recommendation (what automation does on schedule).
        Exit 0 when every one was handled, else the highest exit code among them."""
        from aiops.prefect_env import configure_prefect

        _check_output(output)
        settings = settings_or_exit(config)
        configure_prefect(settings)
        from flows.actuate import ActuateParams, actuate as flow  # the CLI starts flows in-process

        results = flow(ActuateParams(sources=source, dry_run=dry_run, config_file=str(config) if config else None))
        if output != "table":
            emit(results, output)
        else:
            for r in results:
                typer.echo(f"recommendation {r['id']} {r['target']}: {r['outcome']} ({r['state']})"
                           + ("" if r["exit_code"] == 0 else f": {r['reason']}"))
            if not results:
                typer.echo("no open recommendations")
        worst = max((r["exit_code"] for r in results), default=0)
        if worst:
            raise typer.Exit(worst)

    @app.command()
    def freeze(config: ConfigOption = None,
               reason: Annotated[str, typer.Option("--reason", "-m", help="why (shown to everyone refused)")] = "",
               off: Annotated[bool, typer.Option("--off", help="lift the freeze")] = False) -> None:
        """Stop every change (admin): a change freeze, e.g. during an incident; `--off` lifts it."""
        act = _open(config)
        try:
            rec = act.unfreeze(reason) if off else act.freeze(reason or "change freeze")
        except AiopsError as exc:
            _die(exc)
        finally:
            act.close()
        typer.echo(f"{rec['outcome']} ({rec['reason']}); audit record {rec['seq']}")


def actuator_status(settings: Any) -> dict[str, Any]:
    """The actuator's part of `aiops status`: who you are to it, its mode, target, store, counts, freeze and audit
    head. Never raises: what cannot be read is reported as such (status must work with no cluster running)."""
    from aiops.actuator.actuator import Actuator
    from aiops.actuator.recommendation import State

    cluster: dict[str, Any] = {"kubeconfig": str(settings.resolved_kubeconfig)}
    try:
        act = Actuator.open(settings)
    except (AiopsError, ValueError, OSError) as exc:
        return {"mode": settings.actuator.mode, "cluster": cluster, "error": str(exc)}
    try:
        try:
            cluster["server"] = act.cluster.server
            cluster["version"] = act.cluster.version()
            cluster["reachable"] = True
            recovered = [o.as_dict() for o in act.recover()]
        except ActuatorError as exc:
            cluster["reachable"], cluster["error"], recovered = False, str(exc), []
        counts = act.store.counts()
        seq, head = act.store.head()
        return {
            "user": act.caller.user, "role": act.caller.role.value, "role_from": act.caller.source,
            "mode": act.policy.mode, "cluster": cluster,
            "store": act.store.engine.url.render_as_string(hide_password=True),
            "recommendations": {s.value: counts.get(s.value, 0) for s in State},
            "frozen": act.store.frozen(),
            "audit_head": {"seq": seq, "hash": head},
            "recovered": recovered,
        }
    finally:
        act.close()


def print_actuator_status(info: dict[str, Any]) -> None:
    c = _console()
    c.print("[bold]Actuator[/bold]")
    cl = info["cluster"]
    where = cl.get("server", cl["kubeconfig"])
    reach = (f"reachable ({cl.get('version')})" if cl.get("reachable")
             else f"[red]not reachable[/red]: {cl.get('error', '')}")
    c.print(f"  cluster      {where}: {reach}")
    if "error" in info:
        c.print(f"  [red]error[/red]        {info['error']}")
        return
    c.print(f"  you          {info['user']}, role {info['role']} (from {info['role_from']})")
    c.print(f"  mode         {info['mode']}" + ("" if info["mode"] == "apply" else
                                                 "  (set AIOPS_ACTUATOR__MODE=apply to apply changes)"))
    c.print(f"  frozen       {info['frozen'] or 'no'}")
    c.print("  store        " + info["store"])
    c.print("  recommendations  " + ", ".join(f"{k} {v}" for k, v in info["recommendations"].items()))
    c.print(f"  audit head   record {info['audit_head']['seq']} {info['audit_head']['hash'][:16]}")
    for o in info["recovered"]:
        c.print(f"  recovered    recommendation {o['recommendation']}: {o['outcome']} ({o['reason']})")


def _age(delta: Any) -> str:
    s = int(delta.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s // n}{unit}"
    return f"{max(s, 0)}s"
