"""The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) algorithm, vectorised over workloads.

Follows pkg/controller/podautoscaler (horizontal.go, replica_calculator.go) and the HPA docs
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/):

1. Out-of-range replicas are clamped first: current > max -> max, current < min -> min (no behaviour applied).
2. Metric: mean CPU usage / request over ready pods; usageRatio = metric / target.
   desired = ceil(usageRatio * readyPods), unless |usageRatio - 1| <= tolerance (then no change). When scaling
   up with unready (or Pending) pods, those count as 0 % usage and the ratio is recomputed; if that flips the
   direction or falls within the tolerance, no change. No ready pod -> no metrics -> no change.
3. Stabilisation: the unstabilised recommendations of the last `scale_down.stabilization_window_s` bound the
   result from below (max), those of the last `scale_up.stabilization_window_s` from above (min).
4. Rate limits (behaviour policies): per policy, the replicas at the start of the period
   (current - added in the period + removed in the period) plus `value` Pods or `value` Percent; selectPolicy
   Max takes the largest change, Min the smallest, Disabled forbids scaling in that direction. Then min/max.

The real controller syncs every 15 s; the engine evaluates once per step when step_s >= 15 and every
ceil(15 / step_s) steps otherwise (`sync_every`).
"""

from __future__ import annotations

import math

import numpy as np

from aiops.sim.spec import HPAScalingRules, HPASpec

_SELECT = {"Max": 0, "Min": 1, "Disabled": 2}
_PODS, _PERCENT = 1, 2
MAX_POLICIES = 4
_IMAX, _IMIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min
_PENALTY = 2**40  # far beyond any replica count, far from int64 overflow
REASON_NONE, REASON_ABOVE, REASON_BELOW, REASON_OVER_MAX, REASON_UNDER_MIN = 0, 1, 2, 3, 4
_REASON_BY_SIGN = np.array([REASON_BELOW, REASON_NONE, REASON_ABOVE], np.int8)  # by sign(desired - current) + 1
REASON_TEXT = {
    REASON_ABOVE: "cpu resource utilization (percentage of request) above target",
    REASON_BELOW: "All metrics below target",
    REASON_OVER_MAX: "Current number of replicas above Spec.MaxReplicas",
    REASON_UNDER_MIN: "Current number of replicas below Spec.MinReplicas",
}


def sync_every(step_s: int) -> int:
    """Evaluate the HPA every this many steps (the controller's 15 s sync period)."""
    return max(1, math.ceil(15 / step_s))


class HPABank:
    """HPA state and parameters for W workloads (rows without an HPA are inactive)."""

    def __init__(self, hpas: list[HPASpec | None], *, eval_interval_s: float):
        w = len(hpas)
        self.w = w
        self.dt = float(eval_interval_s)
        self.active = np.zeros(w, bool)
        self.minr = np.ones(w, np.int64)
        self.maxr = np.ones(w, np.int64)
        self.target = np.ones(w)
        self.tol = np.full(w, 0.1)
        self.win_up = np.zeros(w)
        self.win_down = np.zeros(w)
        self.pol = {d: (np.zeros((w, MAX_POLICIES), np.int8), np.zeros((w, MAX_POLICIES)), np.ones((w, MAX_POLICIES)))
                    for d in ("up", "down")}
        self.select = {d: np.zeros(w, np.int8) for d in ("up", "down")}
        # history rings, one row per evaluation: unstabilised recommendations (for the longest window, 3600 s)
        # and scale events (for the longest policy period, 1800 s)
        self.h = int(3600 // self.dt) + 2
        self.rec = np.zeros((self.h, w), np.int64)
        self.rec_t = np.full(self.h, -np.inf)
        self.hp = int(1800 // self.dt) + 2
        self.ev_up = np.zeros((self.hp, w), np.int64)
        self.ev_down = np.zeros((self.hp, w), np.int64)
        self.ev_t = np.full(self.hp, -np.inf)
        self.n_eval = 0
        self._desired = np.zeros(w, np.int64)
        self._util = np.full(w, np.nan)
        self._ready = np.zeros(w, np.int64)
        self._check_clamp = True
        self.last_now = -np.inf
        self.hist_from = np.full(w, -np.inf)
        self._no_reason = np.zeros(w, np.int8)
        self._no_reason.flags.writeable = False
        self._set_ring_rows(1)
        self._hist_max = -np.inf
        self._regular = 0
        self._any_up_window = False
        self._precompute_best()
        for i, h in enumerate(hpas):
            self.set(i, h)

    def set(self, i: int, hpa: HPASpec | None) -> None:
        """Install, replace (or with None remove) the HPA of workload `i`; its history is reset."""
        self.active[i] = hpa is not None
        self._check_clamp = True
        self.rec[:, i] = 0
        self.ev_up[:, i] = 0
        self.ev_down[:, i] = 0
        # recommendations recorded before this (re)install belong to the old HPA: ignore them
        self.hist_from[i] = self.last_now
        self._hist_max = float(self.hist_from.max())
        if hpa is None:
            return
        self.minr[i], self.maxr[i] = hpa.min_replicas, hpa.max_replicas
        self.target[i], self.tol[i] = hpa.target_cpu_utilization, hpa.tolerance
        self.win_up[i] = hpa.scale_up.stabilization_window_s
        self.win_down[i] = hpa.scale_down.stabilization_window_s
        for d, rules in (("up", hpa.scale_up), ("down", hpa.scale_down)):
            self._set_rules(d, i, rules)
        self._precompute_best()
        self._any_up_window = bool((self.win_up > 0).any())
        longest = max(float(self.win_up.max()), float(self.win_down.max()))
        self._set_ring_rows(min(self.h, int(np.ceil(longest / self.dt)) + 2))

    def _set_ring_rows(self, k: int) -> None:
        """Per ring slot, the k most recent ring rows (the stabilisation windows look no further back)."""
        self._rows = (np.arange(self.h)[:, None] - np.arange(k)[None, :]) % self.h
        self._longest = k * self.dt
        # row k of a regular ring is k * dt old: inside a window when k * dt < window
        age = (np.arange(k) * self.dt)[:, None]
        self._pen_down = np.where(age < self.win_down, 0, -_PENALTY)
        self._pen_up = np.where(age < self.win_up, 0, _PENALTY)

    def _set_rules(self, d: str, i: int, rules: HPAScalingRules) -> None:
        typ, val, per = self.pol[d]
        typ[i], val[i], per[i] = 0, 0, 1
        if len(rules.policies) > MAX_POLICIES:
            raise ValueError(f"at most {MAX_POLICIES} HPA policies per direction; got {len(rules.policies)}")
        for j, p in enumerate(rules.policies):
            typ[i, j] = _PODS if p.type == "Pods" else _PERCENT
            val[i, j], per[i, j] = p.value, p.period_s
        self.select[d][i] = _SELECT[rules.select_policy]

    def _period_change(self, rows: np.ndarray, cutoff: np.ndarray, ev: np.ndarray) -> np.ndarray:
        """Replicas changed (from ring `ev`, columns already selected) within each policy's period, (w, P);
        `rows` are the ring rows recent enough to matter (often none: a 15 s period is shorter than a step)."""
        if rows.size == 0:
            return np.zeros(cutoff.shape)
        inside = self.ev_t[rows, None, None] > cutoff[None, :, :]  # (rows, w, P)
        return (ev[:, :, None] * inside).sum(axis=0)

    def _limit(self, now: float, d: str, current: np.ndarray) -> np.ndarray:
        """The rate limit of direction `d` for every workload (currently `current` replicas)."""
        typ, val, per = self.pol[d]
        pods, pct, want_max, frozen, per_max = self._best[d]
        if not (self.ev_t > now - per_max).any():
            # no scaling within any period (often: a 15 s period is shorter than a step): every period starts at
            # the current replicas, so the best Pods and the best Percent policy decide (precomputed per row)
            cur = current.astype(float)
            a = cur + pods if d == "up" else cur - pods
            b = np.ceil(cur * pct) if d == "up" else np.floor(cur * pct)
            lim = np.where(want_max, np.fmax(a, b), np.fmin(a, b))
            return np.where(frozen, current, lim).astype(np.int64)  # Disabled (or no policy): no change
        cutoff = np.maximum(now - per, self.hist_from[:, None])
        rows = np.flatnonzero(self.ev_t > cutoff.min())
        sel = self.select[d]
        if rows.size == 0:
            cur = current.astype(float)
            a = cur + pods if d == "up" else cur - pods
            b = np.ceil(cur * pct) if d == "up" else np.floor(cur * pct)
            lim = np.where(want_max, np.fmax(a, b), np.fmin(a, b))
        else:
            added = self._period_change(rows, cutoff, self.ev_up[rows])
            removed = self._period_change(rows, cutoff, self.ev_down[rows])
            start = (current[:, None] - added + removed).astype(float)
            if d == "up":
                prop = np.where(typ == _PODS, start + val, np.ceil(start * (1 + val / 100.0)))
            else:
                prop = np.where(typ == _PODS, start - val, np.floor(start * (1 - val / 100.0)))
            has = typ > 0
            hi = np.where(has, prop, -np.inf).max(axis=1)
            lo = np.where(has, prop, np.inf).min(axis=1)
            lim = np.where(want_max, hi, lo)
        lim = np.where((sel == 2) | ~np.isfinite(lim), current, lim)  # Disabled: no change in this direction
        return lim.astype(np.int64)

    def _precompute_best(self) -> None:
        """Per direction and workload, the Pods value and Percent factor of the policy selectPolicy picks when
        all periods start at the current replicas (NaN when there is no policy of that type)."""
        self._best = {}
        for d in ("up", "down"):
            typ, val, _ = self.pol[d]
            sel = self.select[d]
            want_max = (sel == 0) if d == "up" else (sel == 1)
            # for scale-up a larger value is a larger change; for scale-down a larger value is a smaller result
            big = want_max if d == "up" else ~want_max
            pods_v = np.where(typ == _PODS, val, np.nan)
            pct_v = np.where(typ == _PERCENT, val, np.nan)
            pods = np.where(big, np.nanmax(np.where(np.isnan(pods_v), -np.inf, pods_v), axis=1),
                            np.nanmin(np.where(np.isnan(pods_v), np.inf, pods_v), axis=1))
            pct = np.where(big, np.max(np.where(np.isnan(pct_v), -np.inf, pct_v), axis=1),
                           np.min(np.where(np.isnan(pct_v), np.inf, pct_v), axis=1))
            pods = np.where(np.isfinite(pods), pods, np.nan)
            pct = np.where(np.isfinite(pct), pct, np.nan)
            factor = 1 + pct / 100.0 if d == "up" else 1 - pct / 100.0
            # scale up: Max -> largest proposal; Min -> smallest. Scale down: Max (largest change) -> smallest.
            frozen = (sel == 2) | (np.isnan(pods) & np.isnan(factor))
            self._best[d] = (pods, factor, want_max, frozen, float(self.pol[d][2].max()))

    def evaluate(self, now: float, current: np.ndarray, ready: np.ndarray, unready: np.ndarray,
                 util: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New spec.replicas for every workload (inactive rows keep `current`) and a reason code per row.

        `current` spec.replicas, `ready`/`unready` pod counts, `util` mean CPU usage / request of ready pods.
        One pass over all workloads (about thirty array ops, the engine's per-step hot spot); the rate limits are
        computed only when some workload's stabilised recommendation differs from its current replicas. When
        nothing changes, `current` itself is returned.
        """
        act = np.minimum(current, ready) > 0  # replicas 0: autoscaling disabled; no ready pod: no metrics
        act &= self.active
        ratio = util / self.target
        keep = np.abs(ratio - 1.0) <= self.tol
        keep |= ~act
        scaled = ratio * ready
        np.ceil(scaled, out=scaled)
        raw = np.where(keep, current, scaled).astype(np.int64)
        if unready.any():
            su = (unready > 0) & (ratio > 1.0) & act
            if su.any():  # scale-up with unready pods: they count as 0 % usage
                total = ready + unready
                new_ratio = ratio * ready / np.maximum(total, 1)
                alt = np.where((np.abs(new_ratio - 1.0) <= self.tol) | (new_ratio < 1.0), current,
                               np.ceil(new_ratio * total))
                raw = np.where(su, alt, raw).astype(np.int64)
        # k8s records the unstabilised recommendation each sync
        slot = self.n_eval % self.h
        self.rec[slot] = raw
        self.rec_t[slot] = now
        self.n_eval += 1
        es = slot % self.hp
        self._regular = self._regular + 1 if now - self.last_now == self.dt else 1
        self.last_now = now
        self._util, self._ready = util, ready  # for last_util (computed on demand)
        # stabilisation over the recent ring rows only (the longest window of any HPA)
        rows = self._rows[slot]
        rec = self.rec[rows]
        if self._regular >= len(rows) and self._hist_max <= now - self._longest:
            # the last rows were evaluated dt apart and belong to the current HPAs: row k is k * dt old, so
            # whether it is inside a window is fixed (a penalty pushes the rows outside out of the max / min)
            down_rec = np.maximum.reduce(rec + self._pen_down, axis=0)
            up_rec = np.minimum.reduce(rec + self._pen_up, axis=0) if self._any_up_window else None
        else:
            rec_t = self.rec_t[rows, None]
            cut_up, cut_down = now - self.win_up, now - self.win_down
            if self._hist_max > now - self._longest:  # an HPA (re)installed within the window: not its rows
                np.maximum(cut_up, self.hist_from, out=cut_up)
                np.maximum(cut_down, self.hist_from, out=cut_down)
            down_rec = np.where(rec_t > cut_down, rec, _IMIN).max(axis=0)
            up_rec = np.where(rec_t > cut_up, rec, _IMAX).min(axis=0) if self._any_up_window else None
        np.maximum(down_rec, raw, out=down_rec)
        if up_rec is not None:
            np.minimum(up_rec, raw, out=up_rec)
        else:  # no scale-up window (the default): the current recommendation alone
            up_rec = raw.copy()
        np.maximum(up_rec, current, out=up_rec)
        stab = np.minimum(up_rec, down_rec, out=up_rec)
        # min/max bound the result anyway; clamping here keeps a workload idling at minReplicas off the slow path
        np.maximum(stab, self.minr, out=stab)
        np.minimum(stab, self.maxr, out=stab)
        stab = np.where(act, stab, current)
        desired = current
        reason = self._no_reason
        clamp = None
        if self._check_clamp:
            self._check_clamp = False
            clamp = self.active & (current > 0) & ((current > self.maxr) | (current < self.minr))
            stab = np.where(clamp, current, stab)
        if (stab != current).any():
            desired = stab.copy()
            up = stab > current
            if up.any():
                hi = np.minimum(self.maxr, np.maximum(self._limit(now, "up", current), current))
                desired = np.where(up, np.minimum(stab, hi), desired)
            down = stab < current
            if down.any():
                lo = np.maximum(self.minr, np.minimum(self._limit(now, "down", current), current))
                desired = np.where(down, np.maximum(stab, lo), desired)
            reason = _REASON_BY_SIGN[np.sign(desired - current) + 1]
        if clamp is not None and clamp.any():
            desired = np.where(clamp, np.clip(current, self.minr, self.maxr), desired)
            reason = np.where(clamp & (current > self.maxr), REASON_OVER_MAX,
                              np.where(clamp, REASON_UNDER_MIN, reason)).astype(np.int8)
        # scale events of this sync (a ring longer than the longest period, so stale rows fall out by time)
        if desired is not current:
            change = desired - current
            self.ev_up[es] = np.maximum(change, 0)
            self.ev_down[es] = np.maximum(-change, 0)
            self.ev_t[es] = now
        else:
            self.ev_t[es] = -np.inf
        self._desired = desired
        return desired, reason

    @property
    def last_desired(self) -> np.ndarray:
        """desiredReplicas of the last sync (0 for rows without an HPA)."""
        return np.where(self.active, self._desired, 0)

    @property
    def last_util(self) -> np.ndarray:
        """Mean CPU utilisation of requests the HPA last saw (NaN without an HPA or ready pods)."""
        return np.where(self.active & (self._ready > 0), self._util, np.nan)
