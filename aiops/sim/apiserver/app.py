"""The HTTP face of the simulated cluster: Kubernetes REST paths, verbs, content negotiation (JSON or Table).

A Starlette app with one catch-all route, because Kubernetes paths are a small grammar
(`/api/v1[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]`, the same under `/apis/<group>/<version>`)
better parsed once than spelled as dozens of routes. Handlers are synchronous (they run in Starlette's thread
pool) and take the cluster lock only inside the store.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aiops.sim.apiserver import autoscaling
from aiops.sim.apiserver import discovery as disc
from aiops.sim.apiserver import nodepools as npl
from aiops.sim.apiserver import workloads as wl
from aiops.sim.apiserver import writes
from aiops.sim.apiserver.access import access_review
from aiops.sim.apiserver.errors import (
    PATCH_TYPES, ApiError, bad_request, invalid, method_not_allowed, not_found, unknown_path, unsupported_media_type,
)
from aiops.sim.apiserver.patch import apply_patch
from aiops.sim.apiserver.paths import Target, parse_resource_path, table_version
from aiops.sim.apiserver.protobuf import PROTOBUF, decode_access_review, decode_hpa_v1
from aiops.sim.apiserver.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from aiops.sim.apiserver.store import Store, View
from aiops.sim.apiserver.tables import table
from aiops.sim.apiserver.units import digest
from aiops.sim.apiserver.watch import watch_stream, watch_timeout

Obj = dict[str, Any]
log = logging.getLogger(__name__)
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def _status(err: ApiError) -> Response:
    return _Json(err.status(), status_code=err.code)


class KubeApp:
    """Request handling over a `Store`; `asgi` is the Starlette application."""

    def __init__(self, store: Store, *, server_address: str = "127.0.0.1:0"):
        self.store = store
        self.server_address = server_address
        self.shutdown = threading.Event()
        self.asgi = Starlette(routes=[Route("/{path:path}", self._endpoint,
                                            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])])

    # --- entry ------------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            return await run_in_threadpool(self.handle, request, body)
        except ApiError as err:
            return _status(err)
        except Exception as exc:  # a bug here must still answer as an apiserver does: a Status, logged once
            log.exception("%s %s failed", request.method, request.url.path)
            return _status(ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}",
                                    {"causes": [{"message": str(exc)}]}))

    def handle(self, request: Request, body: bytes) -> Response:
        segs = [s for s in request.url.path.split("/") if s]
        method = request.method
        if not segs:
            return _Json({"paths": ["/api", "/api/v1", "/apis", *[f"/apis/{g}" for g in disc.GROUPS],
                                    *[f"/apis/{g}/{v}" for g, vs in disc.GROUPS.items() for v in vs],
                                    "/healthz", "/livez", "/metrics", "/readyz", "/version"]})
        head = segs[0]
        if head in ("healthz", "livez", "readyz") and len(segs) == 1:
            return PlainTextResponse("ok")
        if head == "version" and len(segs) == 1:
            return _Json(disc.SERVER_VERSION)
        if head == "metrics" and len(segs) == 1:
            return self._metrics()
        if head == "api":
            if len(segs) == 1:
                return _Json(disc.api_versions(self.server_address))
            if segs[1] != "v1":
                raise unknown_path()
            return self._resource(request, method, "", "v1", segs[2:], body)
        if head == "apis":
            if len(segs) == 1:
                return _Json(disc.api_group_list())
            group = segs[1]
            if group not in disc.GROUPS:
                raise unknown_path()
            if len(segs) == 2:
                return _Json(disc.api_group(group))
            if segs[2] not in disc.GROUPS[group]:
                raise unknown_path()
            return self._resource(request, method, group, segs[2], segs[3:], body)
        raise unknown_path()  # includes /openapi/v2 and /openapi/v3: not served

    def _metrics(self) -> Response:
        try:
            from aiops.sim.exposition import render_metrics  # lazy: owned by the exposition module
        except ImportError:
            raise ApiError(404, "NotFound", "the /metrics exposition is not available (aiops.sim.exposition "
                                            "is missing)", {}) from None
        text = render_metrics(self.store.live.snapshot(), self.store.cluster)
        return Response(text, media_type=METRICS_CONTENT_TYPE,
                        headers={"Content-Type": METRICS_CONTENT_TYPE})

    # --- resources ---------------------------------------------------------------------------------------------

    def _resource(self, request: Request, method: str, group: str, version: str, rest: list[str],
                  body: bytes) -> Response:
        if not rest:
            if method not in ("GET", "HEAD"):
                raise method_not_allowed()
            return _Json(disc.resource_list(group, version))
        q = request.query_params
        watch = q.get("watch") in ("true", "1")
        if rest[0] == "watch":
            rest, watch = rest[1:], True
        t = parse_resource_path(group, version, rest)
        dry = self._dry_run(q.getlist("dryRun"))
        if method in ("GET", "HEAD"):
            if watch and t.sub is None:
                return self._watch(t, q)
            if t.name is None:
                return self._list(t, q, request.headers.get("accept", ""))
            return self._get(t, request.headers.get("accept", ""), q)
        if method in ("PATCH", "PUT"):
            if t.name is None:
                raise method_not_allowed(f"{method} needs an object name: {rt_label(t.rt)} collections cannot be "
                                         "patched or replaced")
            return self._write(t, method, request.headers.get("content-type", ""), body, dry)
        if method == "POST" and t.name is None:
            return self._create(t, request.headers.get("content-type", ""), body, dry)
        if method == "DELETE" and t.name is not None and t.sub is None:
            return self._delete(t, dry)
        raise method_not_allowed(self._not_allowed_message(t, method))

    @staticmethod
    def _not_allowed_message(t: Target, method: str) -> str:
        return (f"the simulated cluster does not allow {method} on {rt_label(t.rt)}"
                f"{'/' + t.sub if t.sub else ''}: its objects come from the simulation. Writable: "
                "deployments (patch, update), deployments/scale (patch, update), horizontalpodautoscalers "
                "(create, patch, update, delete), machinedeployments.cluster.x-k8s.io (patch, update)")

    @staticmethod
    def _dry_run(values: list[str]) -> bool:
        for v in values:
            if v != "All":
                raise bad_request(f'Invalid dryRun value "{v}": supported values: "All"')
        return bool(values)

    def _view_items(self, view: View, t: Target) -> list[Obj]:
        if not t.rt.backend:
            return []
        items = view.objects[t.rt.backend]
        if t.namespace is None or not t.rt.namespaced:
            keys = sorted(items)
        else:
            keys = sorted(k for k in items if k[0] == t.namespace)
        return [self._present(t.rt, items[k]) for k in keys]

    @staticmethod
    def _present(rt: disc.ResourceType, obj: Obj) -> Obj:
        if rt.backend == "hpa" and rt.version == "v1":
            return wl.hpa_to_v1(obj)
        return obj

    def _filtered(self, view: View, t: Target, q: Any) -> list[Obj]:
        lreqs = parse_label_selector(q.get("labelSelector"))
        freqs = parse_field_selector(q.get("fieldSelector"), t.rt.plural)
        return [obj for obj in self._view_items(view, t)
                if labels_match(lreqs, obj["metadata"].get("labels")) and fields_match(freqs, obj)]

    def _list(self, t: Target, q: Any, accept: str) -> Response:
        view = self.store.view()
        items = self._filtered(view, t, q)
        limit = q.get("limit")
        offset, cont = 0, ""
        if q.get("continue"):
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(q["continue"].encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                raise bad_request(f"continue key is not valid: {q['continue']!r}") from None
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise bad_request(f"limit must be an integer, got {limit!r}") from None
            if n > 0 and offset + n < len(items):
                cont = base64.urlsafe_b64encode(json.dumps({"offset": offset + n}).encode()).decode()
                items = items[offset:offset + n]
            else:
                items = items[offset:]
        else:
            items = items[offset:]
        rv = str(view.resource_version)
        tv = table_version(accept)
        if tv:
            return _Json(table(t.rt.backend, t.rt.plural, items, view.now, resource_version=rv,
                               include_object=q.get("includeObject", "Metadata"),
                               api_version=f"meta.k8s.io/{tv}", continue_token=cont))
        meta: Obj = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
        return _Json({"kind": t.rt.list_kind, "apiVersion": t.rt.group_version, "metadata": meta, "items": items})

    def _object(self, view: View, t: Target) -> Obj:
        ns = t.namespace if t.rt.namespaced else ""
        obj = view.get(t.rt.backend, ns or "", t.name or "") if t.rt.backend else None
        if obj is None:
            raise not_found(t.rt.plural, t.rt.group, t.name or "")
        if t.sub == "scale":
            return wl.scale(obj)
        return self._present(t.rt, obj)

    def _get(self, t: Target, accept: str, q: Any) -> Response:
        view = self.store.view()
        obj = self._object(view, t)
        tv = table_version(accept)
        if tv and t.sub is None:
            return _Json(table(t.rt.backend, t.rt.plural, [obj], view.now,
                               resource_version=obj["metadata"]["resourceVersion"],
                               include_object=q.get("includeObject", "Metadata"), api_version=f"meta.k8s.io/{tv}"))
        return _Json(obj)

    # --- writes ----------------------------------------------------------------------------------------------

    @staticmethod
    def _body(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding the request body as JSON: {exc}") from None

    def _write(self, t: Target, method: str, content_type: str, body: bytes, dry: bool) -> Response:
        rt = t.rt
        writable = (rt.backend in ("deployments", npl.BACKEND) and t.sub in (None, "scale")) or \
            (rt.backend == "hpa" and t.sub is None)
        if not writable:
            raise method_not_allowed(self._not_allowed_message(t, method))
        ct = content_type.split(";")[0].strip().lower()
        if method == "PATCH":
            if rt.backend == npl.BACKEND:  # a custom resource on a real cluster: no strategic merge patch
                npl.check_patch_type(ct)
            elif ct == "application/apply-patch+yaml" or ct == "application/apply-patch+cbor":
                raise unsupported_media_type(ct, PATCH_TYPES + (
                    "(server-side apply is not supported by the simulated cluster)",))
            if ct not in PATCH_TYPES:
                raise unsupported_media_type(ct)
        elif ct not in ("application/json", ""):
            raise unsupported_media_type(ct, ("application/json",))
        payload = self._body(body)
        store = self.store
        is_v1 = rt.backend == "hpa" and rt.version == "v1"
        with store.lock:
            view, cur = store.current(rt, t.namespace or "", t.name or "")
            if t.sub == "scale":
                cur = wl.scale(cur)
            base = wl.hpa_to_v1(cur) if is_v1 else cur
            new = apply_patch(ct, base, payload) if method == "PATCH" else payload
            if not isinstance(new, dict):
                raise bad_request(f"the body of a {method} must be a JSON object")
            store.check_precondition(rt, t.name or "", base, new)
            if rt.backend == npl.BACKEND:
                plan = npl.plan_scale(t.name or "", cur, new) if t.sub == "scale" else \
                    npl.plan_machinedeployment(store, view, t.name or "", cur, new, update=method == "PUT")
            elif rt.backend == "hpa":
                if rt.version == "v1":
                    writes.check_identity(new, t.name or "", t.namespace, "HorizontalPodAutoscaler", "autoscaling/v1")
                    new = autoscaling.hpa_v1_to_v2(new, cur)
                plan = autoscaling.plan_hpa(store, view, t.namespace or "", t.name or "", cur, new)
            else:
                w = view.workloads[(t.namespace or "", t.name or "")]
                if t.sub == "scale":
                    plan = writes.plan_scale(store, w, cur, new)
                else:
                    plan = writes.plan_deployment(store, w, cur, new)
            headers = _warnings(plan.warnings)
            if dry:
                return _Json(self._present(rt, plan.projected), headers=headers)
            self._commit(plan)
            view = store.view()
            return _Json(self._object(view, t), headers=headers)

    def _commit(self, plan: writes.Plan) -> None:
        if plan.overlay is not None:
            key, ov = plan.overlay
            self.store.overlays[key] = ov
        for action in plan.actions:
            action()
        self.store.live.touch()  # overlays may have changed even when the engine did not: re-materialise

    def _create(self, t: Target, content_type: str, body: bytes, dry: bool) -> Response:
        rt = t.rt
        if rt.backend == "accessreview":
            if content_type.split(";")[0].strip().lower() == PROTOBUF:
                return _Json(access_review(decode_access_review(body)), status_code=201)
            return _Json(access_review(self._body(body)), status_code=201)
        if rt.backend != "hpa" or t.namespace is None:
            raise method_not_allowed(self._not_allowed_message(t, "POST"))
        ct = content_type.split(";")[0].strip().lower()
        if ct == PROTOBUF and rt.version == "v1":  # kubectl autoscale
            new = decode_hpa_v1(body)
        elif ct not in ("application/json", ""):
            raise unsupported_media_type(ct, ("application/json",))
        else:
            new = self._body(body)
        if not isinstance(new, dict):
            raise bad_request("the body of a POST must be a JSON object")
        meta = new.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + digest(meta["generateName"], time.time_ns(), n=5)
            else:
                raise invalid("HorizontalPodAutoscaler", "autoscaling", "",
                                     [("metadata.name", "Required value: name or generateName is required")])
        name = meta["name"]
        store = self.store
        with store.lock:
            view = store.view()
            if view.get("namespaces", "", t.namespace) is None:
                raise not_found("namespaces", "", t.namespace)
            store.check_absent(rt, t.namespace, name)
            if rt.version == "v1":
                writes.check_identity(new, name, t.namespace, "HorizontalPodAutoscaler", "autoscaling/v1")
                new = autoscaling.hpa_v1_to_v2(new, None)
            plan = autoscaling.plan_hpa(store, view, t.namespace, name, None, copy.deepcopy(new))
            if dry:
                return _Json(self._present(rt, plan.projected), status_code=201)
            self._commit(plan)
            view = store.view()
            return _Json(self._object(view, Target(rt, t.namespace, name, None)), status_code=201)

    def _delete(self, t: Target, dry: bool) -> Response:
        rt = t.rt
        if rt.backend != "hpa":
            raise method_not_allowed(self._not_allowed_message(t, "DELETE"))
        store = self.store
        with store.lock:
            view, cur = store.current(rt, t.namespace or "", t.name or "")
            target = view.hpa_target[(t.namespace or "", t.name or "")]
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": t.name, "group": "autoscaling", "kind": rt.plural,
                                  "uid": cur["metadata"]["uid"]}}
            if not dry:
                store.live.set_hpa(t.namespace or "", target, None)
                store.note_hpa_deleted(t.namespace or "", target)
                store.overlays.pop(("hpa", t.namespace or "", t.name or ""), None)
            return _Json(status)

    # --- watch -----------------------------------------------------------------------------------------------

    def _watch(self, t: Target, q: Any) -> Response:
        lreqs = parse_label_selector(q.get("labelSelector"))
        freqs = parse_field_selector(q.get("fieldSelector"), t.rt.plural)

        def matching(view: View) -> list[Obj]:
            return [obj for obj in self._view_items(view, t)
                    if (t.name is None or obj["metadata"]["name"] == t.name)
                    and labels_match(lreqs, obj["metadata"].get("labels")) and fields_match(freqs, obj)]

        stream = watch_stream(self.store, matching, timeout_s=watch_timeout(q.get("timeoutSeconds")),
                              send_initial=q.get("resourceVersion") in (None, "", "0")
                              or q.get("sendInitialEvents") == "true", stop=self.shutdown)
        return StreamingResponse(stream, media_type="application/json")


def _warnings(messages: list[str]) -> dict[str, str]:
    """`Warning` response headers (RFC 7234 code 299), which kubectl prints and clients log."""
    if not messages:
        return {}
    return {"Warning": ", ".join('299 - "{}"'.format(m.replace('"', "'")) for m in messages)}


def rt_label(rt: disc.ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def create_app(store: Store, *, server_address: str = "127.0.0.1:0") -> KubeApp:
    return KubeApp(store, server_address=server_address)
