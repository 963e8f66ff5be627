"""Kubernetes events as a frame, read with the official client (list only: this module never writes).

Columns: cluster, namespace, kind, name, reason, message, type, ts (UTC). `kind`/`name` are the involved object's;
`ts` is when the event last happened (`lastTimestamp`, else `eventTime`, `firstTimestamp`, then the object's
creation time), and `[start, end)` filters on it. An event the API has aggregated (`count` > 1) is one row.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from aiops.errors import SourceError
from aiops.sources.base import utc

EVENT_COLUMNS: dict[str, str] = {
    "cluster": "string", "namespace": "string", "kind": "string", "name": "string", "reason": "string",
    "message": "string", "type": "string", "ts": "datetime64[ns, UTC]",
}
PAGE = 500


def events_frame(rows: list[dict]) -> pd.DataFrame:
    """A frame with exactly EVENT_COLUMNS from row dicts, sorted by time."""
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame = frame.astype({c: t for c, t in EVENT_COLUMNS.items() if c != "ts"})
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype(EVENT_COLUMNS["ts"])
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def list_events(kubeconfig: str | None, context: str | None, start: datetime, end: datetime, *,
                cluster: str, timeout_s: float = 30.0) -> pd.DataFrame:
    """Events of all namespaces in `[start, end)` from the API server of `kubeconfig` (None: $KUBECONFIG or
    ~/.kube/config) and `context` (None: its current context)."""
    import yaml
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    start, end = utc(start, name="start"), utc(end, name="end")
    where = f"kubernetes (kubeconfig {kubeconfig or 'default'}, context {context or 'current'})"
    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
    except (ConfigException, OSError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise SourceError(f"{where}: cannot load the kubeconfig: {exc}; set AIOPS_KUBECONFIG / AIOPS_KUBE_CONTEXT"
                          ) from None
    host = api_client.configuration.host
    rows: list[dict] = []
    try:
        api = client.CoreV1Api(api_client)
        token: str | None = None
        while True:
            page = api.list_event_for_all_namespaces(limit=PAGE, _continue=token, _request_timeout=timeout_s)
            for ev in page.items or []:
                ts = ev.last_timestamp or ev.event_time or ev.first_timestamp or ev.metadata.creation_timestamp
                if ts is None:
                    continue
                ts = utc(ts)
                if not start <= ts < end:
                    continue
                obj = ev.involved_object
                rows.append({
                    "cluster": cluster, "namespace": obj.namespace or ev.metadata.namespace or "",
                    "kind": obj.kind or "", "name": obj.name or "", "reason": ev.reason or "",
                    "message": ev.message or "", "type": ev.type or "Normal", "ts": ts,
                })
            token = page.metadata._continue if page.metadata is not None else None
            if not token:
                break
    except ApiException as exc:
        raise SourceError(f"{where}: listing events at {host} failed: HTTP {exc.status} {exc.reason}"
                          f"{': ' + str(exc.body)[:200] if exc.body else ''}") from None
    except HTTPError as exc:
        raise SourceError(f"{where}: API server at {host} not reachable ({exc}); is it running (`aiops sim "
                          "serve`)? set AIOPS_KUBECONFIG") from None
    finally:
        api_client.close()
    return events_frame(rows)


def fetch_events(settings, start: datetime, end: datetime) -> pd.DataFrame:
    """Kubernetes events in `[start, end)` for `settings` (see `aiops.sources.fetch_events`)."""
    if settings.kubeconfig is None and settings.source == "simulator":
        from aiops.sources.simulator import SimulatorSource

        src = SimulatorSource(settings)
        try:
            return src.events(start, end)
        finally:
            src.close()
    if settings.kubeconfig is not None:
        kubeconfig: str | None = str(settings.kubeconfig.expanduser())
    else:  # the simulator's own (`aiops sim serve` writes it there), else $KUBECONFIG or ~/.kube/config
        own = settings.state_dir / "kubeconfig"
        kubeconfig = str(own) if own.is_file() else None
    return list_events(kubeconfig, settings.kube_context, start, end, cluster=settings.cluster_name,
                       timeout_s=settings.prometheus_timeout_s)
