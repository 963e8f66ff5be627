"""The scheduler's and the cluster autoscaler's side of the engine: bind Pending pods to nodes, grow node pools
for pods that do not fit, drain and remove underused nodes (the node arithmetic is `aiops.sim.nodes`)."""

from __future__ import annotations

import numpy as np


class SchedulingMixin:
    """kube-scheduler (FIFO by creation) and cluster-autoscaler, over the engine's pod slots."""

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
        self._max_started = max(self._max_started, now)
        self.p_ready_at[pw, ps] = now + self._startup[pw]
        self._stale = True
        if not self._quiet:
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
        if first.any() and not self._quiet:
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
