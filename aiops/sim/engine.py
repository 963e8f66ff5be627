"""The simulated cluster's engine: Deployments -> ReplicaSets -> Pods on nodes, HPA, autoscaler, incidents.

Time is discrete (`step_s`). State is arrays over workloads (W) and pod slots (W x S): the per-step loop runs
over time only and touches per-pod arrays only when something happens (pods created, killed, becoming ready).
Everything that is a pure function of the recorded pod counts (CPU usage, throttling, memory, latency,
histograms, counters) is derived after the loop for a whole block of steps at once (`_derive`).

Conventions: the state recorded for step t is the cluster at `start + t * step_s`, after that instant's
controllers acted (so a pod created at t with a 30 s start-up counts as ready from step t+1 at 60 s steps).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np

from aiops.sim.demand import TIMEOUT_S, DemandModel, histogram_sum, latency_mean, latency_p99, throttled_ratio
from aiops.sim.hpa import REASON_TEXT, HPABank, sync_every
from aiops.sim.incidents import IncidentPlan
from aiops.sim.nodes import NodeBank
from aiops.sim.spec import ClusterSpec, HPASpec, Resources
from aiops.sim.state import IncidentLabel, SimEvent, SimResult, Snapshot

BLOCK_STEPS = 2048  # steps advanced between two derivations (bounds the memory of the recorded counts)
_STREAM_NODES, _STREAM_PODS = 2, 3


class Engine:
    """A simulated Kubernetes cluster, deterministic for (spec, start, step_s, seed)."""

    def __init__(self, spec: ClusterSpec, *, start: datetime, step_s: int = 60, seed: int = 0,
                 max_pods_per_workload: int | None = None):
        if step_s < 1:
            raise ValueError(f"step_s must be >= 1 second; got {step_s}")
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self.spec = spec
        self.start = start.astimezone(timezone.utc)
        self.step_s = int(step_s)
        self.seed = int(seed)
        self.t = 0
        self.events: list[SimEvent] = []
        self._plan = IncidentPlan(spec, start=self.start, step_s=self.step_s)
        self.labels: list[IncidentLabel] = list(self._plan.labels)
        self._demand = DemandModel(spec.workloads, start=self.start, step_s=self.step_s, seed=self.seed)
        self.nodes = NodeBank(spec, np.random.default_rng([self.seed, _STREAM_NODES]))
        self._hpa_every = sync_every(self.step_s)
        self.hpa = HPABank([w.hpa for w in spec.workloads], eval_interval_s=self.step_s * self._hpa_every)
        self._init_pods(max_pods_per_workload, np.random.default_rng([self.seed, _STREAM_PODS]))

    # --- time ---------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The simulated instant of the next step to run (UTC)."""
        return self.start + timedelta(seconds=self.t * self.step_s)

    def step(self, n: int = 1) -> None:
        """Advance `n` steps (state, counters and events; no series kept)."""
        done = 0
        while done < n:
            k = min(BLOCK_STEPS, n - done)
            self._derive(self._advance(k), keep=False)
            done += k

    def run(self, steps: int, *, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Advance `steps` steps and return every metric of `aiops.metrics.METRICS` per workload, (steps, W)."""
        from aiops.metrics import METRICS

        t_first, ev0, w = self.t, len(self.events), len(self.spec.workloads)
        arrays = {m: np.zeros((steps, w)) for m in METRICS}
        slo = np.zeros((steps, w), bool)
        counts = np.zeros((steps, len(self.spec.node_pools)), np.int64)
        done = 0
        while done < steps:
            k = min(BLOCK_STEPS, steps - done)
            rec = self._advance(k)
            out = self._derive(rec, keep=True)
            for m in METRICS:
                arrays[m][done : done + k] = out[m]
            slo[done : done + k] = out["slo_violation"]
            counts[done : done + k] = rec["nodes"]
            done += k
            if progress is not None:
                progress(done, steps)
        secs = (np.arange(t_first, t_first + steps, dtype=np.int64) * self.step_s).astype("timedelta64[s]")
        times = (np.datetime64(self.start.replace(tzinfo=None), "ns") + secs).astype("datetime64[ns]")
        span_end = self.start + timedelta(seconds=self.t * self.step_s)
        span_start = self.start + timedelta(seconds=t_first * self.step_s)
        wl = self.spec.workloads
        return SimResult(
            cluster=self.spec.name, times=times,
            namespaces=tuple(x.namespace for x in wl), workloads=tuple(x.name for x in wl),
            containers=tuple(x.container for x in wl), arrays=arrays,
            node_counts={p.name: counts[:, i] for i, p in enumerate(self.spec.node_pools)},
            cost_per_hour=counts @ self._pool_price, slo_violation=slo,
            labels=[lb for lb in self.labels if lb.start < span_end and lb.end > span_start],
            events=self.events[ev0:],
        )

    # --- writes (what the API server calls) ---------------------------------------------------------------
    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set spec.replicas; ignored while an HPA controls the workload (its next sync would overwrite it)."""
        i = self.spec.workload_index(namespace, name)
        if replicas < 0:
            raise ValueError(f"replicas of {namespace}/{name} must be >= 0; got {replicas}")
        if self.hpa.active[i]:
            return
        self._set_replicas(i, int(replicas), source="scale")

    def set_hpa(self, namespace: str, name: str, hpa: HPASpec | None) -> None:
        """Create, replace or (None) delete the workload's HPA."""
        i = self.spec.workload_index(namespace, name)
        self.hpa.set(i, hpa)
        if hpa is not None:
            self._ensure_slots(int(np.ceil(hpa.max_replicas * 1.25)) + 2)
        self._hpas[i] = hpa

    def set_resources(self, namespace: str, name: str, resources: Resources) -> None:
        """Change the pod template's resources: a new revision and ReplicaSet, rolled out."""
        i = self.spec.workload_index(namespace, name)
        image, _ = self._templates[i][self.revision[i] - 1]
        self._new_revision(i, image, resources)

    def set_image(self, namespace: str, name: str, image: str) -> None:
        """Change the container image: a new revision and ReplicaSet, rolled out."""
        i = self.spec.workload_index(namespace, name)
        _, res = self._templates[i][self.revision[i] - 1]
        self._new_revision(i, image, res)

    def snapshot(self) -> Snapshot:
        """The cluster at `now`: workloads, pods (with names), nodes and counters."""
        from aiops.sim.frames import build_snapshot

        return build_snapshot(self)


    # --- set-up -------------------------------------------------------------------------------------------
    def _init_pods(self, max_pods: int | None, rng: np.random.Generator) -> None:
        wl = self.spec.workloads
        w = len(wl)
        self._rng_pods = rng
        self._rs_cache: dict[tuple[int, int], str] = {}
        self._hpas: list[HPASpec | None] = [x.hpa for x in wl]
        # distinct pod templates per workload (image, resources); a rollback to an old template reuses its
        # ReplicaSet, as k8s does (the ReplicaSet name is the template's hash)
        self._templates: list[list[tuple[str, Resources]]] = [[(x.image, x.resources)] for x in wl]
        self.cur_tpl = np.zeros(w, np.int64)
        self.revision = np.ones(w, np.int64)
        self.pool_of = np.array([self.nodes.pool_index[x.node_pool] for x in wl], np.int64)
        types = {t.name: t for t in self.spec.instance_types}
        self._pool_price = np.array([types[p.instance_type].price_per_hour for p in self.spec.node_pools])
        pool_cores = np.array([types[p.instance_type].cpu_cores for p in self.spec.node_pools])
        self._node_cores = pool_cores[self.pool_of] if w else np.zeros(0)
        self._cpr = np.array([x.cpu_per_request for x in wl])
        self._idle = np.array([x.cpu_idle for x in wl])
        self._mem_base = np.array([x.memory_base for x in wl])
        self._mem_rps = np.array([x.memory_per_rps for x in wl])
        self._service = np.array([x.service_time_s for x in wl])
        self._slo = np.array([x.slo_latency_s for x in wl])
        self._startup = np.array([x.startup_delay_s for x in wl])
        self._cur_cpu_req = np.zeros(w)
        self._cap = np.zeros(w)
        self._has_limit = np.zeros(w, bool)
        self._tpl_res = {f: np.zeros(w) for f in ("cpu_req", "cpu_lim", "mem_req", "mem_lim")}
        for i in range(w):
            self._apply_template(i)
        reps = []
        for x in wl:
            r = x.replicas
            if x.hpa is not None and r > 0:
                r = min(max(r, x.hpa.min_replicas), x.hpa.max_replicas)
            reps.append(r)
        self.replicas = np.array(reps, np.int64)
        top = [max(x.replicas, x.hpa.max_replicas if x.hpa else 0) for x in wl] or [1]
        s = max_pods or max(int(np.ceil(max(top) * 1.25)) + 2, 4)
        self.S = 0
        self._slots_alloc(w, s)
        self._bad_tpl = np.full(w, -1, np.int64)
        self._bad_mag = np.ones(w)
        self._bad_any = False
        self._leak_any = False
        self._dp_node: dict[int, int] = {}
        # the autoscaler scans every 10 s; its 10-min unneeded timer makes a 2-min check granularity harmless
        self._ca_every = max(1, int(np.ceil(120 / self.step_s)))
        # cumulative per-workload counters (workload level) and per-ready-pod integrals (for pod counters)
        from aiops.sim.state import LATENCY_BUCKETS_S

        self._requests_total = np.zeros(w)
        self._lat_sum = np.zeros(w)
        self._buckets = np.zeros((w, len(LATENCY_BUCKETS_S) + 1))
        self._c_cpu, self._c_per, self._c_thr = np.zeros(w), np.zeros(w), np.zeros(w)
        self.n_alive = np.zeros(w, np.int64)
        self.n_ready = np.zeros(w, np.int64)
        self._last: dict[str, np.ndarray] = {"request_rate": np.zeros(w), "latency_p99": np.zeros(w),
                                             "rps_pod": np.zeros(w), "cpu_pod": np.zeros(w)}
        self._dirty = False
        self._dirty_rows = np.zeros(w, bool)
        self._stale = True
        self._n_pending = 0
        self._next_ready = np.inf
        self._initial = True
        self._create(self.replicas.copy(), 0.0)
        self._schedule(0.0)
        # the pods of the initial state have been running for an hour
        placed = self.p_alive & (self.p_node >= 0)
        self.p_ready_at[placed] = -3600.0 + self._startup[np.nonzero(placed)[0]]
        self.p_started[placed] = -3600.0
        self.p_created[self.p_alive] = -3600.0
        self._initial = False
        self._refresh(0.0)

    _SLOTS = {"alive": (bool, False), "tpl": (np.int64, 0), "node": (np.int64, -1), "created": (float, 0.0),
              "ready_at": (float, np.inf), "started": (float, 0.0), "restarts": (np.int64, 0),
              "backoff": (np.int64, 0), "reason": (np.int8, 0), "waiting": (np.int8, 0), "pod_id": (np.int64, 0),
              "cpu_req": (float, 0.0), "cpu_lim": (float, 0.0), "mem_req": (float, 0.0),
              "mem_lim": (float, np.inf), "leaked": (float, 0.0), "crash_u": (float, 1.0),
              "b_cpu": (float, 0.0), "b_per": (float, 0.0), "b_thr": (float, 0.0), "fs_sent": (bool, False)}

    def _slots_alloc(self, w: int, s: int) -> None:
        """(Re)allocate the W x S pod-slot arrays (`p_*`), keeping existing pods."""
        old = self.S
        for f, (dt, fill) in self._SLOTS.items():
            a = np.full((w, s), fill, dtype=dt)
            if old:
                a[:, :old] = getattr(self, "p_" + f)
            setattr(self, "p_" + f, a)
        self.S = s

    def _ensure_slots(self, s: int) -> None:
        if s > self.S:
            self._slots_alloc(len(self.spec.workloads), max(s, 2 * self.S))
            self._stale = True

    def _apply_template(self, i: int) -> None:
        _, r = self._templates[i][self.cur_tpl[i]]
        # the current template's resources per workload, for new pods (no limit: cpu 0 in sums, memory inf)
        self._tpl_res["cpu_req"][i] = r.cpu_request
        self._tpl_res["cpu_lim"][i] = r.cpu_limit or 0.0
        self._tpl_res["mem_req"][i] = r.memory_request
        self._tpl_res["mem_lim"][i] = r.memory_limit or np.inf
        self._cur_cpu_req[i] = r.cpu_request
        self._has_limit[i] = r.cpu_limit is not None
        # without a CPU limit a pod can use up to the node's cores (no CFS quota, no throttling)
        self._cap[i] = r.cpu_limit if r.cpu_limit is not None else self._node_cores[i]

    # --- names --------------------------------------------------------------------------------------------
    def rs_name(self, i: int, tpl: int) -> str:
        """ReplicaSet name `<deployment>-<pod-template-hash>` of template `tpl` of workload i."""
        got = self._rs_cache.get((i, tpl))
        if got is None:
            w = self.spec.workloads[i]
            image, res = self._templates[i][tpl]
            got = f"{w.name}-{_hash10(w.namespace, w.name, w.container, image, res.model_dump_json())}"
            self._rs_cache[(i, tpl)] = got
        return got

    def pod_name(self, i: int, s: int) -> str:
        return f"{self.rs_name(i, int(self.p_tpl[i, s]))}-{_suffix(int(self.p_pod_id[i, s]))}"

    def _event(self, ns: str, kind: str, name: str, reason: str, message: str, now: float, warn: bool = False) -> None:
        if self._initial:
            return
        self.events.append(SimEvent(self.start + timedelta(seconds=now), ns, kind, name, reason, message,
                                    "Warning" if warn else "Normal"))

    # --- the time loop ------------------------------------------------------------------------------------
    def _advance(self, n: int) -> dict:
        """Run `n` steps; return the per-step counts `_derive` turns into metrics."""
        t0, w, st = self.t, len(self.spec.workloads), self.step_s
        plan = self._plan
        d = self._demand.rps(t0, n)
        spike = plan.dense("traffic_spike", t0, n)
        if spike is not None:
            d *= spike
        leak = plan.dense("memory_leak", t0, n)
        crash = plan.dense("crash_loop", t0, n)
        steal = plan.dense("noisy_neighbour", t0, n)
        i32 = np.int32
        rec = {"t0": t0, "n": n, "d": d, "ready": np.zeros((n, w), i32), "run": np.zeros((n, w), i32),
               "replicas": np.zeros((n, w), i32), "restarts": np.zeros((n, w), i32),
               "ooms": np.zeros((n, w), i32), "cap": np.zeros((n, w)), "cpu_req": np.zeros((n, w)),
               "cpu_lim": np.zeros((n, w)), "mem_req": np.zeros((n, w)), "mem_lim": np.zeros((n, w)),
               "leak": None, "bad": None, "nodes": np.zeros((n, len(self.spec.node_pools)), np.int64)}
        hpa_on = bool(self.hpa.active.any())
        for i in range(n):
            T = t0 + i
            now = float(T * st)
            acts = plan.actions.get(T)
            if acts:
                self._do_actions(acts, now)
            if self._stale or now >= self._next_ready:
                self._refresh(now)
            cap = self._cap if steal is None else self._cap * (1.0 - steal[i])
            rps_pod = d[i] / np.maximum(self.n_ready, 1)
            if leak is not None and leak[i].any():
                self.p_leaked += (leak[i] * st)[:, None] * self._run
                self._leak_any = True
            mem_pod = self._mem_base + self._mem_rps * rps_pod
            worst = mem_pod + self.p_leaked.max(axis=1) if self._leak_any else mem_pod
            if (worst > self._mem_lim_min).any():
                self._oom(now, mem_pod, rec["restarts"][i], rec["ooms"][i])
            if crash is not None and crash[i].any():
                self._crash(now, crash[i], rec["restarts"][i])
            if hpa_on and T % self._hpa_every == 0:
                if self._stale:
                    self._refresh(now)
                util = np.minimum(rps_pod * self._cpr + self._idle, cap) / self._cur_cpu_req
                desired, reason = self.hpa.evaluate(now, self.replicas, self.n_ready, self.n_alive - self.n_ready, util)
                if (desired != self.replicas).any():
                    self._hpa_rescale(desired, reason, now)
            if T % self._ca_every == 0:  # before the deployment controller, which replaces drained pods at once
                self._ca_scale_down(now)
            if self._dirty:
                self._reconcile(now)
            if self._n_pending:
                self._schedule(now)
            if self._stale:
                self._refresh(now)
            rec["ready"][i] = self.n_ready
            rec["run"][i] = self.n_run
            rec["replicas"][i] = self.replicas
            rec["cap"][i] = cap
            rec["cpu_req"][i] = self._sum_cpu_req
            rec["cpu_lim"][i] = self._sum_cpu_lim
            rec["mem_req"][i] = self._sum_mem_req
            rec["mem_lim"][i] = self._sum_mem_lim
            rec["nodes"][i] = self._node_counts
            if self._leak_any:
                if rec["leak"] is None:
                    rec["leak"] = np.zeros((n, w))
                rec["leak"][i] = (self.p_leaked * self._run).sum(axis=1)
            if self._bad_any:
                if rec["bad"] is None:
                    rec["bad"] = np.zeros((n, w))
                bad = self._ready & (self.p_tpl == self._bad_tpl[:, None])
                rec["bad"][i] = bad.sum(axis=1) / np.maximum(self.n_ready, 1)
        self.t += n
        return rec

    def _refresh(self, now: float) -> None:
        """Recount pods after a change or when a starting pod becomes ready (sums only when pods changed)."""
        a = self.p_alive
        if self._stale:
            run = a & (self.p_node >= 0)
            self._run = run
            self.n_run = run.sum(axis=1)
            self.n_alive = a.sum(axis=1)
            self._sum_cpu_req = (self.p_cpu_req * a).sum(axis=1)
            self._sum_cpu_lim = (self.p_cpu_lim * a).sum(axis=1)
            self._sum_mem_req = (self.p_mem_req * a).sum(axis=1)
            self._sum_mem_lim = np.where(a & np.isfinite(self.p_mem_lim), self.p_mem_lim, 0.0).sum(axis=1)
            self._n_pending = int(self.n_alive.sum() - self.n_run.sum())
            self._node_counts = self.nodes.count()
        run = self._run
        ready = run & (self.p_ready_at <= now)
        self._ready = ready
        self.n_ready = ready.sum(axis=1)
        starting = self.p_ready_at[run & ~ready]
        self._next_ready = float(starting.min()) if starting.size else np.inf
        self._mem_lim_min = np.where(ready, self.p_mem_lim, np.inf).min(axis=1)
        self._stale = False

    def _provisional_baseline(self, wi: np.ndarray, si: np.ndarray) -> None:
        # a new container's counters start at the current per-pod integrals; `_derive` sets the exact value
        # (the integral at the step it became ready)
        self.p_b_cpu[wi, si] = self._c_cpu[wi]
        self.p_b_per[wi, si] = self._c_per[wi]
        self.p_b_thr[wi, si] = self._c_thr[wi]

    # --- kubelet: container failures ----------------------------------------------------------------------
    def _oom(self, now: float, mem_pod: np.ndarray, restarts: np.ndarray, ooms: np.ndarray) -> None:
        mem = mem_pod[:, None] + self.p_leaked
        kill = self._ready & (mem > self.p_mem_lim)
        if kill.any():
            c = self._terminate(kill, now, 1)
            restarts += c
            ooms += c

    def _crash(self, now: float, frac: np.ndarray, restarts: np.ndarray) -> None:
        kill = self._ready & (self.p_crash_u < frac[:, None])
        if kill.any():
            restarts += self._terminate(kill, now, 2)

    def _terminate(self, kill: np.ndarray, now: float, code: int) -> np.ndarray:
        """Containers in `kill` exit (1 OOMKilled, 2 Error): restart after the CrashLoopBackOff delay."""
        wi, si = np.nonzero(kill)
        # the kubelet resets the back-off after a container ran 10 min without failing
        ran_long = now - self.p_started[wi, si] >= 600.0
        n_prev = np.where(ran_long, 0, self.p_backoff[wi, si])
        delay = np.minimum(10.0 * 2.0 ** n_prev, 300.0)  # 10 s, 20 s, 40 s ... capped at 5 min
        self.p_backoff[wi, si] = n_prev + 1
        self.p_restarts[wi, si] += 1
        self.p_started[wi, si] = now + delay
        self.p_ready_at[wi, si] = now + delay + self._startup[wi]
        self.p_reason[wi, si] = code
        self.p_waiting[wi, si] = 2
        self.p_leaked[wi, si] = 0.0
        self._provisional_baseline(wi, si)
        self._stale = True
        if not self._initial:
            for w, s, dl in zip(wi.tolist(), si.tolist(), delay.tolist()):
                ws, pod = self.spec.workloads[w], self.pod_name(w, s)
                if code == 1:
                    node = self.nodes.name(int(self.p_node[w, s]))
                    self._event("default", "Node", node, "OOMKilling",
                                f"Memory cgroup out of memory: Killed process ({ws.container}) in pod {ws.namespace}/{pod}",
                                now, warn=True)
                self._event(ws.namespace, "Pod", pod, "BackOff",
                            f"Back-off {dl:g}s restarting failed container {ws.container} in pod {pod}", now, warn=True)
        return np.bincount(wi, minlength=len(self.spec.workloads)).astype(np.int32)

    # --- controllers --------------------------------------------------------------------------------------
    def _hpa_rescale(self, desired: np.ndarray, reason: np.ndarray, now: float) -> None:
        for i in np.flatnonzero(desired != self.replicas).tolist():
            w = self.spec.workloads[i]
            self._event(w.namespace, "HorizontalPodAutoscaler", w.name, "SuccessfulRescale",
                        f"New size: {int(desired[i])}; reason: {REASON_TEXT.get(int(reason[i]), 'metrics changed')}", now)
        self._ensure_slots(int(np.ceil(desired.max() * 1.25)) + 2)
        self._mark(desired != self.replicas)
        self.replicas = desired.astype(np.int64)

    def _set_replicas(self, i: int, r: int, source: str) -> None:
        self._ensure_slots(int(np.ceil(r * 1.25)) + 2)
        self.replicas[i] = r
        self._mark(i)

    def _reconcile(self, now: float) -> None:
        """The deployment controller on the workloads that changed: scale the current ReplicaSet and roll
        old ones out (maxSurge 25 % rounded up, maxUnavailable 25 % rounded down, at least one of them > 0:
        the k8s RollingUpdate defaults)."""
        if self._stale:
            self._refresh(now)
        idx = np.flatnonzero(self._dirty_rows)
        alive, tpl, ready = self.p_alive[idx], self.p_tpl[idx], self._ready[idx]
        cur = alive & (tpl == self.cur_tpl[idx, None])
        old = alive & ~cur
        n_new, n_old = cur.sum(axis=1), old.sum(axis=1)
        r_new, r_old = (cur & ready).sum(axis=1), (old & ready).sum(axis=1)
        R = self.replicas[idx]
        surge = -(-R // 4)
        unav = np.where((surge == 0) & (R // 4 == 0), 1, R // 4)
        rolling = n_old > 0
        up = np.where(rolling, np.clip(np.minimum(R + surge - n_new - n_old, R - n_new), 0, None),
                      np.maximum(R - n_new, 0))
        down_new = np.maximum(n_new - R, 0)
        kill_old_ready = np.minimum(r_old, np.maximum(r_new + r_old - np.maximum(R - unav, 0), 0))
        kill = old & ~ready
        if kill_old_ready.any():
            kill |= self._pick(idx, old & ready, kill_old_ready)
        if down_new.any():
            kill |= self._pick(idx, cur, down_new)
        if kill.any():
            full = np.zeros_like(self.p_alive)
            full[idx] = kill
            self._scaled_down_events(full, now)
            self._delete(full, now, "Killing")
        if up.any():
            k = np.zeros(len(self.spec.workloads), np.int64)
            k[idx] = up
            self._create(k, now)
        self._dirty_rows[:] = False
        self._dirty_rows[idx[rolling]] = True
        self._dirty = bool(rolling.any())

    def _mark(self, rows) -> None:
        """Workloads whose pods or spec changed: the deployment controller looks at them next."""
        self._dirty_rows[rows] = True
        self._dirty = True

    def _pick(self, idx: np.ndarray, cand: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Per workload of `idx`, the k pods (of `cand`) the ReplicaSet controller deletes first: unscheduled,
        then not ready, then the most recently created (controller.ActivePods ordering)."""
        now = self.t * self.step_s
        key = self.p_created[idx] + 1e12 * ~(self.p_ready_at[idx] <= now) + 2e12 * (self.p_node[idx] < 0)
        key = np.where(cand, key, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
        rr, cc = np.nonzero(np.arange(self.S) < k[:, None])  # the first k of each row's order
        out = np.zeros_like(cand)
        out[rr, order[rr, cc]] = True
        return out & cand

    def _scaled_down_events(self, kill: np.ndarray, now: float) -> None:
        if self._initial:
            return
        wi, si = np.nonzero(kill)
        pairs = sorted(set(zip(wi.tolist(), self.p_tpl[wi, si].tolist())))
        for w, tpl in pairs:
            left = int((self.p_alive[w] & (self.p_tpl[w] == tpl)).sum() - ((wi == w) & (self.p_tpl[wi, si] == tpl)).sum())
            ws = self.spec.workloads[w]
            self._event(ws.namespace, "Deployment", ws.name, "ScalingReplicaSet",
                        f"Scaled down replica set {self.rs_name(w, tpl)} to {left} from {left + int(((wi == w) & (self.p_tpl[wi, si] == tpl)).sum())}", now)

    def _create(self, k: np.ndarray, now: float) -> None:
        """Create k[w] new pods of each workload's current template (Pending until scheduled)."""
        self._ensure_slots(int((self.p_alive.sum(axis=1) + k).max()))
        rows = np.flatnonzero(k)
        free = ~self.p_alive[rows]
        sub, si = np.nonzero(free & (np.cumsum(free, axis=1) <= k[rows, None]))
        wi = rows[sub]
        tpl = self.cur_tpl[wi]
        self.p_alive[wi, si] = True
        self.p_tpl[wi, si] = tpl
        self.p_node[wi, si] = -1
        self.p_created[wi, si] = now
        self.p_ready_at[wi, si] = np.inf
        self.p_started[wi, si] = now
        self.p_restarts[wi, si] = 0
        self.p_backoff[wi, si] = 0
        self.p_reason[wi, si] = 0
        self.p_waiting[wi, si] = 1
        self.p_leaked[wi, si] = 0.0
        self.p_fs_sent[wi, si] = False
        self._provisional_baseline(wi, si)
        self.p_pod_id[wi, si] = self._rng_pods.integers(0, 27**5, size=len(wi))
        self.p_crash_u[wi, si] = self._rng_pods.random(len(wi))
        for f in ("cpu_req", "cpu_lim", "mem_req", "mem_lim"):
            getattr(self, "p_" + f)[wi, si] = self._tpl_res[f][wi]
        self._stale = True
        if not self._initial:
            for w in np.flatnonzero(k).tolist():
                ws, t = self.spec.workloads[w], int(self.cur_tpl[w])
                n = int((self.p_alive[w] & (self.p_tpl[w] == t)).sum())
                self._event(ws.namespace, "Deployment", ws.name, "ScalingReplicaSet",
                            f"Scaled up replica set {self.rs_name(w, t)} to {n}", now)

    def _delete(self, kill: np.ndarray, now: float, reason: str, message: str = "") -> None:
        """Pods in `kill` are deleted (scale-down, eviction, drain): free their node resources."""
        wi, si = np.nonzero(kill)
        if not self._initial:
            for w, s in zip(wi.tolist(), si.tolist()):
                ws = self.spec.workloads[w]
                if reason == "Killing":
                    msg = f"Stopping container {ws.container}"
                else:
                    msg = message
                self._event(ws.namespace, "Pod", self.pod_name(w, s), reason, msg, now, warn=reason == "Evicted")
        self.nodes.release(self.p_node[wi, si], self.p_cpu_req[wi, si], self.p_mem_req[wi, si])
        self.p_alive[wi, si] = False
        self.p_node[wi, si] = -1
        self.p_ready_at[wi, si] = np.inf
        self.p_leaked[wi, si] = 0.0
        self._mark(wi)
        self._stale = True

    # --- scheduler and cluster autoscaler -----------------------------------------------------------------
    def _schedule(self, now: float) -> None:
        pend = self.p_alive & (self.p_node < 0)
        wi, si = np.nonzero(pend)
        if len(wi) == 0:
            self._n_pending = 0
            return
        order = np.argsort(self.p_created[wi, si], kind="stable")  # the scheduling queue is FIFO by creation
        wi, si = wi[order], si[order]
        pool = self.pool_of[wi]
        cpu, mem = self.p_cpu_req[wi, si], self.p_mem_req[wi, si]
        node = self.nodes.schedule(pool, cpu, mem, now)
        ok = node >= 0
        pw, ps = wi[ok], si[ok]
        self.p_node[pw, ps] = node[ok]
        self.p_started[pw, ps] = now
        self.p_ready_at[pw, ps] = now + self._startup[pw]
        self._stale = True
        if not self._initial:
            for w, s, j in zip(pw.tolist(), ps.tolist(), node[ok].tolist()):
                ws, pod = self.spec.workloads[w], self.pod_name(w, s)
                image = self._templates[w][int(self.p_tpl[w, s])][0]
                self._event(ws.namespace, "Pod", pod, "Scheduled",
                            f"Successfully assigned {ws.namespace}/{pod} to {self.nodes.name(j)}", now)
                self._event(ws.namespace, "Pod", pod, "Pulled",
                            f'Container image "{image}" already present on machine', now)
                self._event(ws.namespace, "Pod", pod, "Started", f"Started container {ws.container}", now)
        if ok.all():
            self._n_pending = 0
            return
        fw, fs = wi[~ok], si[~ok]
        first = ~self.p_fs_sent[fw, fs]
        if first.any() and not self._initial:
            total = int(self.nodes.alive.sum())
            for w, s in zip(fw[first].tolist(), fs[first].tolist()):
                ws = self.spec.workloads[w]
                self._event(ws.namespace, "Pod", self.pod_name(w, s), "FailedScheduling",
                            f"0/{total} nodes are available: Insufficient cpu or memory in node pool {ws.node_pool}.",
                            now, warn=True)
        self.p_fs_sent[fw, fs] = True
        n_pools = len(self.spec.node_pools)
        p_cpu = np.bincount(pool[~ok], weights=cpu[~ok], minlength=n_pools)
        p_mem = np.bincount(pool[~ok], weights=mem[~ok], minlength=n_pools)
        grown = self.nodes.scale_up(p_cpu, p_mem, now)
        for p, a, b in grown:
            name = self.spec.node_pools[p].name
            k = int(np.flatnonzero(pool[~ok] == p)[0])
            w, s = int(fw[k]), int(fs[k])
            self._event(self.spec.workloads[w].namespace, "Pod", self.pod_name(w, s), "TriggeredScaleUp",
                        f"pod triggered scale-up: [{{{name} {a}->{b} (max: {self.spec.node_pools[p].max_nodes})}}]", now)
        if grown:
            self._node_counts = self.nodes.count()
            self._stale = True
        # pods wait for new nodes: look again when the earliest provisioning node is Ready
        coming = self.nodes.ready_at[self.nodes.alive & (self.nodes.ready_at > now)]
        self._n_pending = int((~ok).sum())
        if coming.size:
            self._next_ready = min(self._next_ready, float(coming.min()))

    def _ca_scale_down(self, now: float) -> None:
        rm = self.nodes.scale_down(now)
        if len(rm) == 0:
            return
        drain = self.p_alive & np.isin(self.p_node, rm)
        names = [self.nodes.name(int(j)) for j in rm]
        if drain.any():
            self._delete(drain, now, "Killing")
        self.nodes.remove(rm)
        for nm in names:
            self._event("default", "Node", nm, "ScaleDown", "node removed by cluster autoscaler", now)
        self._node_counts = self.nodes.count()
        self._stale = True

    # --- incidents and revisions --------------------------------------------------------------------------
    def _do_actions(self, acts: list, now: float) -> None:
        for what, a in acts:
            ws = self.spec.workloads[a.w]
            if a.kind == "disk_pressure":
                if what == "start":
                    on = np.flatnonzero(self.p_alive[a.w] & (self.p_node[a.w] >= 0))
                    if on.size == 0:
                        continue
                    j = int(self.p_node[a.w, on[0]])
                    self._dp_node[a.index] = j
                    self.nodes.disk_pressure[j] = True
                    node = self.nodes.name(j)
                    self._event("default", "Node", node, "NodeHasDiskPressure",
                                f"Node {node} status is now: NodeHasDiskPressure", now)
                    there = self.p_alive & (self.p_node == j)
                    k = int(np.ceil(a.magnitude * there.sum()))
                    ev = there & (np.cumsum(there.ravel()).reshape(there.shape) <= k)
                    self._delete(ev, now, "Evicted",
                                 "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 4%.")
                elif a.index in self._dp_node:
                    j = self._dp_node.pop(a.index)
                    self.nodes.disk_pressure[j] = False
                    node = self.nodes.name(j)
                    self._event("default", "Node", node, "NodeHasNoDiskPressure",
                                f"Node {node} status is now: NodeHasNoDiskPressure", now)
            elif a.kind == "bad_deploy":
                image, res = self._templates[a.w][self.cur_tpl[a.w]]
                if what == "start":
                    self._prev_tpl = getattr(self, "_prev_tpl", {})
                    self._prev_tpl[a.index] = int(self.cur_tpl[a.w])
                    self._new_revision(a.w, image + "-rc1", res, now=now)
                    self._bad_tpl[a.w] = self.cur_tpl[a.w]
                    self._bad_mag[a.w] = a.magnitude
                    self._bad_any = True
                else:
                    prev = self._prev_tpl.pop(a.index, 0)
                    self._new_revision(a.w, *self._templates[a.w][prev], now=now)

    def _new_revision(self, i: int, image: str, resources: Resources, now: float | None = None) -> None:
        tpls = self._templates[i]
        if (image, resources) in tpls:  # same template: the old ReplicaSet is reused (rollback)
            t = tpls.index((image, resources))
        else:
            tpls.append((image, resources))
            t = len(tpls) - 1
        if t == self.cur_tpl[i]:
            return
        self.cur_tpl[i] = t
        self.revision[i] += 1
        self._apply_template(i)
        self._ensure_slots(int(np.ceil(self.replicas[i] * 1.25)) + 2 + int(self.n_alive[i]))
        self._mark(i)

    # --- from pod counts to metrics and counters ----------------------------------------------------------
    def _derive(self, rec: dict, *, keep: bool) -> dict:
        """Metrics of the recorded steps (vectorised over steps and workloads) and the cumulative counters."""
        n, t0, st, d = rec["n"], rec["t0"], self.step_s, rec["d"]
        ready = rec["ready"].astype(float)
        run = rec["run"].astype(float)
        cap = rec["cap"]
        rps_pod = d / np.maximum(ready, 1.0)
        need = rps_pod * self._cpr + self._idle
        used = np.minimum(need, cap)
        has_lim = rec["cpu_lim"] > 0
        thr = np.where(has_lim & (ready > 0), throttled_ratio(need, cap), 0.0)
        # requests a pod can serve per second with the CPU it gets, for the M/M/1 utilisation
        rho = rps_pod * self._cpr / np.maximum(cap - self._idle, 1e-9)
        service = self._service if rec["bad"] is None else self._service * (1.0 + rec["bad"] * (self._bad_mag - 1.0))
        mean = np.where(ready > 0, latency_mean(service, rho), TIMEOUT_S)  # no ready pod: every request times out
        p99 = latency_p99(mean)
        mem = run * (self._mem_base + self._mem_rps * rps_pod)
        if rec["leak"] is not None:
            mem = mem + rec["leak"]
        # counters: requests, latency histogram (cumulative buckets), per-pod CPU and CFS integrals
        req = d * st
        self._requests_total += req.sum(axis=0)
        self._lat_sum += (req * mean).sum(axis=0)
        for c in range(0, n, 512):
            self._buckets += histogram_sum(req[c : c + 512], mean[c : c + 512])
        periods = np.where(has_lim, st / 0.1, 0.0)  # CFS period 100 ms
        cums = []
        for per_step, total in ((used * st, self._c_cpu), (periods, self._c_per), (periods * thr, self._c_thr)):
            cum = np.zeros((n + 1, len(total)))
            np.cumsum(per_step, axis=0, out=cum[1:])
            cums.append((cum, total))
        # pods that became ready in this span take the per-pod integrals at that step as their baseline
        r = np.ceil(self.p_ready_at / st)
        fix = self.p_alive & (self.p_node >= 0) & (r >= t0) & (r < t0 + n)
        if fix.any():
            wi, si = np.nonzero(fix)
            k = (r[wi, si] - t0).astype(np.int64)
            for (cum, total), base in zip(cums, (self.p_b_cpu, self.p_b_per, self.p_b_thr)):
                base[wi, si] = total[wi] + cum[k, wi]
        for cum, total in cums:
            total += cum[-1]
        self._last = {"request_rate": d[-1].copy(), "latency_p99": p99[-1].copy(), "rps_pod": rps_pod[-1].copy(),
                      "cpu_pod": used[-1].copy(), "mem_pod": (self._mem_base + self._mem_rps * rps_pod[-1]),
                      "thr": thr[-1].copy(), "latency_mean": mean[-1].copy()}
        if not keep:
            return {}
        return {
            "cpu_usage": ready * used + (run - ready) * self._idle,
            "cpu_request": rec["cpu_req"], "cpu_limit": rec["cpu_lim"], "cpu_throttled_ratio": thr,
            "memory_working_set": mem, "memory_request": rec["mem_req"], "memory_limit": rec["mem_lim"],
            "replicas": rec["replicas"].astype(float), "replicas_available": ready,
            "restarts": rec["restarts"].astype(float), "oom_kills": rec["ooms"].astype(float),
            "request_rate": d, "latency_p99": p99, "slo_violation": p99 > self._slo,
        }


def simulate(spec: ClusterSpec, *, start: datetime, steps: int, step_s: int = 60, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Run a fresh engine for `steps` steps and return its result."""
    return Engine(spec, start=start, step_s=step_s, seed=seed).run(steps, progress=progress)


_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet (no vowels, no 0/1/3)


def _suffix(x: int) -> str:
    out = []
    for _ in range(5):
        x, r = divmod(x, 27)
        out.append(_ALNUM[r])
    return "".join(out)


def _hash10(*parts: str) -> str:
    h = int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")
    out = []
    for _ in range(10):
        h, r = divmod(h, 27)
        out.append(_ALNUM[r])
    return "".join(out)
