"""From the recorded pod counts to metrics and counters, vectorised over a block of steps and all workloads.

Per step t and workload, the engine records how many containers were Ready and how many were started (running,
Ready or not) at `t * step_s`. Every Ready container of a workload serves the same share of the demand and
uses the same CPU; a started container that is not Ready yet uses its idle CPU (it gets no traffic); a container
waiting (Pending, CrashLoopBackOff) uses nothing. The workload's recorded series are sums over its containers
of exactly what the per-pod snapshot shows (CPU counters, working sets), so that the exposition read back
through Prometheus gives the recorded series:

- cpu_usage = Ready x used + starting x idle; memory_working_set = started x working set + leaked bytes;
- cpu_throttled_ratio = throttled CFS periods / CFS periods over the started containers (CFS periods only
  under a CPU limit, 0 without);
- per-container counters: cumulative integrals per workload and class (`_cum_ready`, `_cum_start`), minus
  baselines taken at the step each container started and became Ready (`p_b_start`, `p_b_ready`).

Requests time out at `TIMEOUT_S`: the latency histogram and sum are those of the truncated latency, and the
requests that hit the timeout are counted (`_timed_out`, Istio's 504s). The request counters are accumulated on
a binary grid (`_on_grid`), so that their sums are exact: the exposition's served (200) counters, all requests
minus the timed-out ones, are then exact differences and never decrease (while counts stay below 2^33).
"""

from __future__ import annotations

import numpy as np

from aiops.sim.demand import TIMEOUT_S, latency_mean, latency_p99, latency_totals, throttled_ratio
from aiops.sim.pods import N_COUNTERS

CFS_PERIOD_S = 0.1
_GRID = float(2**20)  # request counters move in steps of 2^-20 requests (seconds for the latency sum)


def _on_grid(x: np.ndarray) -> np.ndarray:
    """`x` rounded to a multiple of 2^-20: sums and differences of such values are exact in float64."""
    return np.round(x * _GRID) / _GRID


class DeriveMixin:
    """Metrics of recorded steps, cumulative counters, and per-container counters for the snapshot."""

    def _derive(self, rec: dict, *, out: dict | None = None) -> None:
        """Metrics of the recorded steps and the cumulative counters; with `out` (metric -> (n, W) array to
        fill), also the recorded series."""
        n, t0, st, d = rec["n"], rec["t0"], self.step_s, rec["d"]
        ready = rec["ready"].astype(float)
        started = rec["started"].astype(float)
        starting = started - ready
        cap = rec["cap"]
        rps_pod = d / np.maximum(ready, 1.0)
        need = rps_pod * self._cpr
        need += self._idle
        used = np.minimum(need, cap)
        idle = np.minimum(self._idle, cap)
        has_lim = rec["cpu_lim"] > 0
        thr_ready = np.where(has_lim & (ready > 0), throttled_ratio(need, cap), 0.0)
        thr_idle = np.where(has_lim, throttled_ratio(self._idle, cap), 0.0)
        # requests a pod can serve per second with the CPU it gets, for the M/M/1 utilisation
        rho = rps_pod * self._cpr / np.maximum(cap - self._idle, 1e-9)
        service = self._service if rec["bad"] is None else self._service * (1.0 + rec["bad"] * (self._bad_mag - 1.0))
        mean = np.where(ready > 0, latency_mean(service, rho), np.inf)  # no Ready pod: every request times out
        p99 = latency_p99(mean)
        mem_pod = self._mem_rps * rps_pod
        mem_pod += self._mem_base
        # counters: requests, latency histogram and sum, timeouts
        req = d * st
        for c in range(0, n, 512):
            buckets, served_sum, timed_out = (_on_grid(x) for x in latency_totals(req[c : c + 512], mean[c : c + 512]))
            self._requests_total += buckets[:, -1]
            self._buckets += buckets
            self._lat_sum += served_sum + TIMEOUT_S * timed_out
            self._timed_out += timed_out
        # per-container integrals per class: (counter, n + 1, W), row k = before step t0 + k
        periods = np.where(has_lim, st / CFS_PERIOD_S, 0.0)
        cum_r = np.empty((N_COUNTERS, n + 1, len(self._idle)))
        cum_s = np.empty_like(cum_r)
        cum_r[:, 0] = self._cum_ready.T
        cum_s[:, 0] = self._cum_start.T
        for j, (r_step, s_step) in enumerate(((used * st, idle * st), (periods, None),
                                              (periods * thr_ready, periods * thr_idle))):
            np.cumsum(r_step, axis=0, out=cum_r[j, 1:])
            if s_step is None:  # both classes elapse the same CFS periods
                np.add(cum_r[j, 1:], cum_s[j, 0], out=cum_s[j, 1:])
            else:
                np.cumsum(s_step, axis=0, out=cum_s[j, 1:])
                cum_s[j, 1:] += cum_s[j, 0]
            cum_r[j, 1:] += cum_r[j, 0]
        self._set_baselines(t0, n, cum_r, cum_s)
        self._cum_ready = cum_r[:, -1].T.copy()
        self._cum_start = cum_s[:, -1].T.copy()
        self._last = {"request_rate": d[-1].copy(), "latency_p99": p99[-1].copy(), "cpu_pod": used[-1].copy(),
                      "cpu_idle": idle[-1].copy(), "mem_pod": mem_pod[-1].copy()}
        if out is None:
            return
        np.multiply(ready, used, out=out["cpu_usage"])
        out["cpu_usage"] += starting * idle
        with np.errstate(invalid="ignore", divide="ignore"):
            thr = (ready * thr_ready + starting * thr_idle) / started
        out["cpu_throttled_ratio"][:] = np.where(has_lim & (started > 0), thr, 0.0)
        np.multiply(started, mem_pod, out=out["memory_working_set"])
        if rec["leak"] is not None:
            out["memory_working_set"] += rec["leak"]
        out["latency_p99"][:] = p99
        out["slo_violation"][:] = p99 > self._slo
        out["replicas_available"][:] = ready
        out["request_rate"][:] = d
        for m, r in (("cpu_request", "cpu_req"), ("cpu_limit", "cpu_lim"), ("memory_request", "mem_req"),
                     ("memory_limit", "mem_lim"), ("replicas", "replicas"), ("restarts", "restarts"),
                     ("oom_kills", "ooms")):
            out[m][:] = rec[r]

    def _set_baselines(self, t0: int, n: int, cum_r: np.ndarray, cum_s: np.ndarray) -> None:
        """Containers that started, or became Ready, in steps [t0, t0 + n) take the workload's integrals at that
        step (`cum_*[counter, step - t0, workload]`) as their baselines (a container's class is decided at each
        step's instant, as in the record)."""
        st = self.step_s
        run = self.p_alive & (self.p_node >= 0)
        k_start = np.ceil(self.p_started / st)  # first step at which the container counts as started
        m = run & (k_start >= t0) & (k_start < t0 + n)
        if m.any():
            wi, si = np.nonzero(m)
            self.p_b_start[wi, si] = cum_s[:, (k_start[wi, si] - t0).astype(np.int64), wi].T
        k_ready = np.ceil(self.p_ready_at / st)
        m = run & (k_ready >= t0) & (k_ready < t0 + n)
        if m.any():
            wi, si = np.nonzero(m)
            k = (k_ready[wi, si] - t0).astype(np.int64)
            # what the container accrued while starting, carried into the Ready class
            self.p_b_ready[wi, si] = (cum_r[:, k, wi] - cum_s[:, k, wi]).T + self.p_b_start[wi, si]

    def pod_view(self) -> dict[str, np.ndarray]:
        """Every pod slot as the snapshot shows it: the classification recorded for the last step (after its
        controllers acted), counters integrated up to `now`. Masks `scheduled`, `started`, `ready` (W x S) and
        `counters` (W x S x 3: CPU seconds, CFS periods, CFS throttled periods)."""
        view_s = float(max(self.t - 1, 0) * self.step_s)
        sched = self.p_alive & (self.p_node >= 0)
        started = sched & (self.p_started <= view_s)
        ready = started & (self.p_ready_at <= view_s)
        counters = np.where(ready[..., None], self._cum_ready[:, None, :] - self.p_b_ready,
                            np.where(started[..., None], self._cum_start[:, None, :] - self.p_b_start, 0.0))
        # float round-off of integrals minus baselines must not show as a tiny negative counter
        np.maximum(counters, 0.0, out=counters)
        return {"scheduled": sched, "started": started, "ready": ready, "counters": counters}
