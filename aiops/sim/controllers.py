"""The deployment and ReplicaSet controllers (scale, roll out, revisions), the HPA's writes, and incidents that
act on the cluster (disk pressure evictions, bad deploys and their rollback)."""

from __future__ import annotations

import numpy as np

from aiops.sim.hpa import REASON_TEXT
from aiops.sim.pods import RES_CPU_LIM, RES_CPU_REQ, RES_MEM_LIM, RES_MEM_REQ
from aiops.sim.spec import Resources


class ControllersMixin:
    """Deployment controller (RollingUpdate), ReplicaSet scale-down order, revisions, HPA rescale."""

    # --- templates and revisions --------------------------------------------------------------------------
    def _apply_template(self, i: int) -> None:
        _, r = self._templates[i][self.cur_tpl[i]]
        # the current template's resources per workload, for new pods (no limit: 0 in sums, memory inf for OOM)
        self._tpl_res[i, RES_CPU_REQ] = r.cpu_request
        self._tpl_res[i, RES_CPU_LIM] = r.cpu_limit or 0.0
        self._tpl_res[i, RES_MEM_REQ] = r.memory_request
        self._tpl_res[i, RES_MEM_LIM] = r.memory_limit or 0.0
        self._tpl_mem_lim[i] = r.memory_limit or np.inf
        self._cur_cpu_req[i] = r.cpu_request
        self._has_limit[i] = r.cpu_limit is not None
        # without a CPU limit a pod can use up to the node's cores (no CFS quota, no throttling)
        self._cap[i] = r.cpu_limit if r.cpu_limit is not None else self._node_cores[i]
        self._rec_dirty = True

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

    # --- incidents that act on the cluster ----------------------------------------------------------------
    def _do_actions(self, acts: list, now: float) -> None:
        for what, a in acts:
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
                    self._prev_tpl[a.index] = int(self.cur_tpl[a.w])
                    self._new_revision(a.w, image + "-rc1", res, now=now)
                    self._bad_tpl[a.w] = self.cur_tpl[a.w]
                    self._bad_mag[a.w] = a.magnitude
                    self._bad_any = True
                else:
                    prev = self._prev_tpl.pop(a.index, 0)
                    self._new_revision(a.w, *self._templates[a.w][prev], now=now)

    # --- HPA and scale writes -----------------------------------------------------------------------------
    def _hpa_rescale(self, desired: np.ndarray, reason: np.ndarray, now: float) -> None:
        changed = np.flatnonzero(desired != self.replicas)
        for i in changed.tolist():
            w = self.spec.workloads[i]
            self._event(w.namespace, "HorizontalPodAutoscaler", w.name, "SuccessfulRescale",
                        f"New size: {int(desired[i])}; reason: {REASON_TEXT.get(int(reason[i]), 'metrics changed')}", now)
        self._ensure_slots(int(np.ceil(desired[changed].max() * 1.25)) + 2)
        self._mark(changed)
        self.replicas = desired.astype(np.int64)
        self._rec_dirty = True

    def _set_replicas(self, i: int, r: int, source: str) -> None:
        self._ensure_slots(int(np.ceil(r * 1.25)) + 2)
        self.replicas[i] = r
        self._mark(i)
        self._rec_dirty = True

    def _mark(self, rows) -> None:
        """Workloads whose pods or spec changed: the deployment controller looks at them next."""
        self._dirty_rows[rows] = True
        self._dirty = True

    # --- deployment controller ----------------------------------------------------------------------------
    def _reconcile(self, now: float) -> None:
        """The deployment controller on the workloads that changed: scale the current ReplicaSet and roll
        old ones out (maxSurge 25 % rounded up, maxUnavailable 25 % rounded down, at least one of them > 0:
        the k8s RollingUpdate defaults)."""
        if self._stale:
            self._refresh(now)
        idx = np.flatnonzero(self._dirty_rows)
        alive, ready = self.p_alive[idx], self._ready[idx]
        cur = alive & (self.p_tpl[idx] == self.cur_tpl[idx, None])
        old = alive & ~cur
        n_new, n_old = cur.sum(axis=1), old.sum(axis=1)
        R = self.replicas[idx]
        rolling = n_old > 0
        down_new = np.maximum(n_new - R, 0)
        kill = None
        if rolling.any():
            r_new, r_old = (cur & ready).sum(axis=1), (old & ready).sum(axis=1)
            surge = -(-R // 4)
            unav = np.where((surge == 0) & (R // 4 == 0), 1, R // 4)
            up = np.where(rolling, np.clip(np.minimum(R + surge - n_new - n_old, R - n_new), 0, None),
                          np.maximum(R - n_new, 0))
            kill_old_ready = np.minimum(r_old, np.maximum(r_new + r_old - np.maximum(R - unav, 0), 0))
            kill = old & ~ready
            if kill_old_ready.any():
                kill |= self._pick(idx, old & ready, kill_old_ready)
        else:
            up = np.maximum(R - n_new, 0)
        if down_new.any():
            picked = self._pick(idx, cur, down_new)
            kill = picked if kill is None else kill | picked
        if kill is not None and kill.any():
            full = np.zeros_like(self.p_alive)
            full[idx] = kill
            self._scaled_down_events(full, now)
            self._delete(full, now, "Killing")
        if up.any():
            k = np.zeros(len(self.spec.workloads), np.int64)
            k[idx] = up
            self._create(k, now)
        self._dirty_rows[idx] = False
        if rolling.any():
            self._dirty_rows[idx[rolling]] = True
            self._dirty = True
        else:
            self._dirty = False

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
        if self._quiet:
            return
        wi, si = np.nonzero(kill)
        tpls = self.p_tpl[wi, si]
        for w, tpl in sorted(set(zip(wi.tolist(), tpls.tolist()))):
            gone = int(((wi == w) & (tpls == tpl)).sum())
            left = int((self.p_alive[w] & (self.p_tpl[w] == tpl)).sum()) - gone
            ws = self.spec.workloads[w]
            self._event(ws.namespace, "Deployment", ws.name, "ScalingReplicaSet",
                        f"Scaled down replica set {self.rs_name(w, tpl)} to {left} from {left + gone}", now)
