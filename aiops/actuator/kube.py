"""The actuator's Kubernetes client: read one object, patch it (dry-run or for real). The only writer.

The same code drives the simulated cluster (its API server, through the kubeconfig `aiops sim serve` writes)
and a real cluster (any kubeconfig and context): the official `kubernetes` client, raw JSON in and out so
nothing is lost to model classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiops.actuator.recommendation import Target
from aiops.errors import ActuatorError, Conflict

Obj = dict[str, Any]
CAPI = ("cluster.x-k8s.io", "v1beta1", "machinedeployments")


class NotFound(ActuatorError):
    """The target object does not exist on the cluster."""


class Refused(ActuatorError):
    """The API server refused the change (400/403/415/422): its message says why."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass
class Answer:
    obj: Obj
    warnings: list[str] = field(default_factory=list)


class Cluster:
    """One cluster reached through a kubeconfig; `server` is its API URL."""

    def __init__(self, kubeconfig: Path, context: str | None = None, *, timeout_s: float = 30.0):
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = kubeconfig.expanduser()
        if not path.is_file():
            raise ActuatorError(f"kubeconfig {path} does not exist: start the simulated cluster with `aiops sim serve` "
                                "(it writes this file), or set AIOPS_KUBECONFIG to a real cluster's kubeconfig")
        try:
            self.api = config.new_client_from_config(config_file=str(path), context=context)
        except (ConfigException, ValueError, OSError) as exc:
            raise ActuatorError(f"kubeconfig {path} (context {context or 'current'}): {exc}") from None
        self.server = self.api.configuration.host
        self.timeout_s = timeout_s
        self._apps = client.AppsV1Api(self.api)
        self._hpa = client.AutoscalingV2Api(self.api)
        self._custom = client.CustomObjectsApi(self.api)
        self._version = client.VersionApi(self.api)

    def close(self) -> None:
        self.api.close()

    def version(self) -> str:
        return self._call(lambda **kw: self._version.get_code(**kw), "GET /version").obj.get("gitVersion", "?")

    # --- calls ----------------------------------------------------------------------------------------------------

    def _call(self, fn: Any, what: str) -> Answer:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(_preload_content=False, _request_timeout=self.timeout_s)
        except ApiException as exc:
            raise _api_error(exc, what, self.server) from None
        except HTTPError as exc:
            raise ActuatorError(f"cannot reach the cluster's API at {self.server} ({what}): {exc.__class__.__name__}."
                                " Is `aiops sim serve` running, or is the kubeconfig's server right?") from None
        raw = resp.data
        warnings = [w for w in (resp.headers.get("Warning") or "").split(", ") if w] if resp.headers else []
        return Answer(json.loads(raw) if raw else {}, [_warning_text(w) for w in warnings])

    def read(self, t: Target) -> Obj:
        what = f"GET {t}"
        if t.kind == "Deployment":
            return self._call(lambda **kw: self._apps.read_namespaced_deployment(t.name, t.namespace, **kw), what).obj
        if t.kind == "HorizontalPodAutoscaler":
            return self._call(lambda **kw: self._hpa.read_namespaced_horizontal_pod_autoscaler(
                t.name, t.namespace, **kw), what).obj
        return self._call(lambda **kw: self._custom.get_namespaced_custom_object(
            *CAPI[:2], t.namespace, CAPI[2], t.name, **kw), what).obj

    def read_deployment(self, namespace: str, name: str) -> Obj:
        return self._call(lambda **kw: self._apps.read_namespaced_deployment(name, namespace, **kw),
                          f"GET deployment/{name} -n {namespace}").obj

    def hpa_for(self, namespace: str, deployment: str) -> str | None:
        """The HPA (if any) whose scaleTargetRef is this deployment."""
        items = self._call(lambda **kw: self._hpa.list_namespaced_horizontal_pod_autoscaler(namespace, **kw),
                           f"LIST horizontalpodautoscalers -n {namespace}").obj.get("items", [])
        for h in items:
            ref = (h.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == "Deployment" and ref.get("name") == deployment:
                return h["metadata"]["name"]
        return None

    def list_pods(self) -> list[Obj]:
        """Every pod of the cluster (all namespaces)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        return self._call(lambda **kw: core.list_pod_for_all_namespaces(**kw), "LIST pods -A").obj.get("items", [])

    def list_nodes(self) -> list[Obj]:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        return self._call(lambda **kw: core.list_node(**kw), "LIST nodes").obj.get("items", [])

    def list_node_pools(self, namespace: str = "default") -> list[Obj]:
        """The node pools as Cluster API MachineDeployments in `namespace`."""
        return self._call(lambda **kw: self._custom.list_namespaced_custom_object(
            CAPI[0], CAPI[1], namespace, CAPI[2], **kw), f"LIST machinedeployments -n {namespace}").obj.get("items", [])

    def patch(self, t: Target, body: Obj, content_type: str, *, dry_run: bool) -> Answer:
        """PATCH the object; `dry_run` sends `dryRun=All` (the server validates and answers, and changes nothing)."""
        kw: dict[str, Any] = {"_content_type": content_type}
        if dry_run:
            kw["dry_run"] = "All"
        what = f"PATCH{' (dry run)' if dry_run else ''} {t}"
        if t.kind == "Deployment":
            return self._call(lambda **k: self._apps.patch_namespaced_deployment(
                t.name, t.namespace, body, **kw, **k), what)
        if t.kind == "HorizontalPodAutoscaler":
            return self._call(lambda **k: self._hpa.patch_namespaced_horizontal_pod_autoscaler(
                t.name, t.namespace, body, **kw, **k), what)
        return self._call(lambda **k: self._custom.patch_namespaced_custom_object(
            *CAPI[:2], t.namespace, CAPI[2], t.name, body, **kw, **k), what)


def _warning_text(w: str) -> str:
    # RFC 7234: 299 - "text"
    parts = w.split(" ", 2)
    return parts[2].strip().strip('"') if len(parts) == 3 and parts[0] == "299" else w


def _api_error(exc: Any, what: str, server: str) -> ActuatorError:
    try:
        msg = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        msg = exc.reason
    status = int(exc.status or 0)
    if status == 409:
        return Conflict(f"{what}: the object changed since it was read ({msg})")
    if status == 404:
        return NotFound(f"{what}: not found on {server} ({msg})")
    if status in (400, 403, 405, 415, 422):
        return Refused(f"{what}: the API server refused it ({status}: {msg})", status)
    return ActuatorError(f"{what}: the API server at {server} answered {status}: {msg}")
