"""The right-sizing tools people run today, implemented as their authors publish them, for a fair comparison.

`krr_simple` (robusta-dev/krr's `simple` strategy), `vpa_target` (the Kubernetes VPA recommender's target) and
`kubecost` (Kubecost's request sizing rule). Each takes a long usage frame (`series`, `ts` in UTC on a regular grid,
`cpu` in cores, `memory` in bytes, NaN = missing) and returns one row per series: `series`, `cpu_request`,
`cpu_limit`, `memory_request`, `memory_limit` (cores / bytes; a NaN limit means none, a NaN request means the tool
makes no recommendation) and `why`. Each docstring names the published parameters, where they come from, and
where we part from the original: all three read finer samples than our 5-minute grid (KRR 1.25-minute rates, the VPA
1-minute metrics-server samples, Kubecost 1-minute rates), so 5-minute averages smooth the peaks they see.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

USAGE_COLUMNS = ("series", "ts", "cpu", "memory")
OUTPUT_COLUMNS = ("series", "cpu_request", "cpu_limit", "memory_request", "memory_limit", "why")
CURRENT_COLUMNS = ("series", "cpu_request", "cpu_limit", "memory_request", "memory_limit")
MIB = 1024**2
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Usage:
    """A checked usage frame as arrays sorted by series then time; rows `start[i]:start[i+1]` are `names[i]`."""

    names: np.ndarray
    start: np.ndarray
    code: np.ndarray
    ts: np.ndarray  # int64 nanoseconds since the epoch, UTC
    cpu: np.ndarray
    memory: np.ndarray

    def within(self, now: pd.Timestamp | None, span: timedelta | str | None) -> tuple["Usage", str]:
        """The same rows with samples outside (now - span, now] set missing (series are kept), and a description."""
        end = int(self.ts.max()) if now is None else _utc(now).value
        keep = self.ts <= end
        desc = f"all samples up to {pd.Timestamp(end, tz='UTC'):%Y-%m-%d %H:%M}"
        if span is not None:
            width = _span(span, "history")
            keep &= self.ts > end - width.value
            desc = f"the {_fmt(width)} {desc[12:]}"
        cpu, memory = np.where(keep, self.cpu, np.nan), np.where(keep, self.memory, np.nan)
        return Usage(self.names, self.start, self.code, self.ts, cpu, memory), desc


def check_usage(usage: pd.DataFrame, name: str = "usage") -> Usage:
    """Validate a long usage frame and return it as sorted arrays; raise `SchemaError` naming what is wrong."""
    if not isinstance(usage, pd.DataFrame):
        raise SchemaError(f"{name}: expected a pandas DataFrame with columns {list(USAGE_COLUMNS)}, "
                          f"got {type(usage).__name__}")
    missing = [c for c in USAGE_COLUMNS if c not in usage.columns]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing}; it has {list(usage.columns)}. Expected one row per "
                          "series and timestamp with `series`, `ts` (UTC), `cpu` (cores) and `memory` (bytes)")
    if usage.empty:
        raise SchemaError(f"{name}: no rows; pass at least one sample per series to recommend from")
    for col, unit in (("cpu", "cores"), ("memory", "bytes")):
        if not pd.api.types.is_numeric_dtype(usage[col]) or pd.api.types.is_bool_dtype(usage[col]):
            raise SchemaError(f"{name}: column {col!r} is {usage[col].dtype}; expected numbers of {unit}")
    try:
        with warnings.catch_warnings():  # strings that are not dates: the error below says it better
            warnings.simplefilter("ignore", UserWarning)
            ts = pd.to_datetime(usage["ts"], utc=True)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{name}: column 'ts' is not timestamps ({exc}); pass UTC datetimes") from exc
    if ts.isna().any():
        raise SchemaError(f"{name}: {int(ts.isna().sum())} row(s) have no timestamp; drop them or fill `ts`")
    names, code = _factorize(usage["series"])
    tsn = pd.DatetimeIndex(ts).as_unit("ns").asi8
    cpu, memory = usage["cpu"].to_numpy(float), usage["memory"].to_numpy(float)
    for label, values in (("cpu", cpu), ("memory", memory)):
        bad = np.isinf(values) | (values < 0)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise SchemaError(f"{name}: column {label!r} has {rows.size} negative or infinite value(s), e.g. "
                              f"{values[rows[0]]} for series {names[code[rows[0]]]!r} at {ts.iloc[rows[0]]}; usage "
                              "must be >= 0 (use NaN for a missing sample)")
    if np.any(np.diff(code) < 0):  # group the rows of each series, keeping their order within the series
        order = np.argsort(code, kind="stable")
        code, tsn, cpu, memory = code[order], tsn[order], cpu[order], memory[order]
    step = np.diff(tsn)
    same = code[1:] == code[:-1]
    bad = np.flatnonzero(same & (step <= 0))
    if bad.size:
        i = bad[0]
        what = "a duplicate timestamp" if step[i] == 0 else "timestamps out of order"
        raise SchemaError(f"{name}: series {names[code[i]]!r} has {what} at {pd.Timestamp(tsn[i + 1], tz='UTC')} "
                          f"(after {pd.Timestamp(tsn[i], tz='UTC')}); each series needs strictly increasing `ts`: "
                          "sort by series and ts and drop duplicates")
    start = np.searchsorted(code, np.arange(len(names) + 1))
    return Usage(names, start, code, tsn, cpu, memory)


def krr_simple(usage: pd.DataFrame, *, history: timedelta | str = timedelta(days=14), cpu_percentile: float = 95,
               memory_buffer: float = 0.15, points_required: int = 100, min_cpu_millicores: int = 10,
               min_memory_mib: int = 100, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """KRR's `simple` strategy: CPU request = the `cpu_percentile` of CPU usage over `history`, no CPU limit;
    memory request = memory limit = peak memory over `history` x (1 + `memory_buffer`).

    Published parameters (robusta-dev/krr): `cpu_percentile` 95, `memory_buffer_percentage` 15 (our 0.15) and
    `points_required` 100 in `robusta_krr/strategies/simple.py` (SimpleStrategySettings); `history_duration` 336 h
    (14 days) and `timeframe_duration` 1.25 min in `robusta_krr/core/abstract/strategies.py`. The percentile is
    Prometheus' `quantile_over_time(round(p/100, 2), ...)` over the CPU rate (`core/integrations/prometheus/
    metrics/cpu.py`), i.e. linear interpolation between order statistics, as numpy's default; the peak is
    `max_over_time` of the working set (`metrics/memory.py`). Fewer than `points_required` samples in the window
    leaves that resource undefined ("Not enough data"; NaN here). KRR's runner (`robusta_krr/core/runner.py`,
    `_round_value`) then rounds CPU up to 1 m and memory up to 1 MiB, and raises them to `cpu_min_value` 10 m and
    `memory_min_value` 100 MiB (`robusta_krr/core/models/config.py`); we do the same.

    Deviations: 100 points are 100 of our samples (about 8 h at 5 minutes; about 2 h at KRR's 1.25-minute step).
    Not reproduced: the HPA skip (no HPA here; KRR's `allow_hpa` default would skip such workloads), the
    experimental OOM bump (`use_oomkill_data`, off by default), and the runner's exception that keeps a current
    request below the minimum.
    """
    if not 0 < cpu_percentile <= 100:
        raise SchemaError(f"cpu_percentile must be in (0, 100], got {cpu_percentile!r}")
    if memory_buffer < 0:
        raise SchemaError(f"memory_buffer must be a fraction >= 0 (0.15 = 15 %), got {memory_buffer!r}")
    u, span = check_usage(usage).within(now, history)
    q = round(cpu_percentile / 100, 2)  # as KRR formats it into the PromQL
    ncpu = np.add.reduceat(np.isfinite(u.cpu).astype(np.int64), u.start[:-1])
    nmem = np.add.reduceat(np.isfinite(u.memory).astype(np.int64), u.start[:-1])
    cpu = np.full(len(u.names), np.nan)
    for i, (a, b) in enumerate(zip(u.start[:-1], u.start[1:])):
        if ncpu[i] >= points_required:
            v = u.cpu[a:b]
            cpu[i] = np.quantile(v[np.isfinite(v)], q)
    peak = np.fmax.reduceat(u.memory, u.start[:-1])
    mem = np.where(nmem >= points_required, peak * (1 + memory_buffer), np.nan)
    cpu = np.maximum(np.ceil(cpu * 10**3) / 10**3, min_cpu_millicores / 1000)  # NaN stays NaN
    mem = np.maximum(np.ceil(mem * (1 / MIB)) / (1 / MIB), min_memory_mib * MIB)
    why = [
        f"KRR simple over {span}: "
        + (f"CPU p{100 * q:g} of {ncpu[i]} samples" if ncpu[i] >= points_required
           else f"CPU undefined: not enough data ({ncpu[i]} < {points_required} samples)")
        + (f"; memory peak {peak[i] / MIB:.1f} MiB +{memory_buffer:.0%}" if nmem[i] >= points_required
           else f"; memory undefined: not enough data ({nmem[i]} < {points_required} samples)")
        + f"; rounded up to 1m / 1Mi, at least {min_cpu_millicores}m / {min_memory_mib}Mi"
        for i in range(len(u.names))]
    return _frame(u.names, cpu, np.full(len(cpu), np.nan), mem, mem.copy(), why)


def kubecost(usage: pd.DataFrame, *, window: timedelta | str, cpu_target_utilization: float = 0.7,
             memory_target_utilization: float = 0.7, min_cpu_millicores: float = 10,
             min_memory_mib: float = 20, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Kubecost's container request sizing recommendation: the peak usage over `window` divided by the target
    utilisation, per resource; requests only (limits NaN).

    Published (kubecost/docs, `apis/apis-overview/api-request-right-sizing-v2.md`, `savings/requestSizingV2`):
    `algorithmCPU` / `algorithmRAM` default `max` (the maximum observed usage in `window`),
    `targetCPUUtilization` / `targetRAMUtilization` default 0.7 (request = base / target), `minRecCPUMillicores` 10,
    `minRecRAMBytes` 20 MiB (our `min_memory_mib` 20). `window` has no default there (a required parameter; the docs advise more than 2 days),
    so it has none here either. The UI's profiles set the target utilisation to 0.8 (Development), 0.65 (Production)
    or 0.5 (High Availability) (kubecost/docs, `cluster-right-sizing-recommendation-api.md`).

    Deviations: Kubecost's peak is of 1-minute rates; ours is the peak of 5-minute averages. The docs do not say
    how the result is rounded; we do not round.
    """
    for label, t in (("cpu_target_utilization", cpu_target_utilization),
                     ("memory_target_utilization", memory_target_utilization)):
        if not 0 < t <= 1:
            raise SchemaError(f"{label} must be in (0, 1] (0.7 = 70 % of the request used at peak), got {t!r}")
    u, span = check_usage(usage).within(now, window)
    peak_cpu = np.fmax.reduceat(u.cpu, u.start[:-1])
    peak_mem = np.fmax.reduceat(u.memory, u.start[:-1])
    cpu = np.fmax(peak_cpu / cpu_target_utilization, min_cpu_millicores / 1000)
    mem = np.fmax(peak_mem / memory_target_utilization, min_memory_mib * MIB)
    cpu[np.isnan(peak_cpu)], mem[np.isnan(peak_mem)] = np.nan, np.nan
    why = [
        f"Kubecost max over {span}: "
        + (f"CPU peak {peak_cpu[i]:.4g} cores / {cpu_target_utilization:g}" if np.isfinite(peak_cpu[i])
           else "CPU undefined: no samples")
        + (f"; memory peak {peak_mem[i] / MIB:.1f} MiB / {memory_target_utilization:g}" if np.isfinite(peak_mem[i])
           else "; memory undefined: no samples")
        + f"; at least {min_cpu_millicores:g}m / {min_memory_mib:g}Mi"
        for i in range(len(u.names))]
    nan = np.full(len(cpu), np.nan)
    return _frame(u.names, cpu, nan, mem, nan.copy(), why)


# The VPA recommender's histograms (vertical-pod-autoscaler/pkg/recommender/model/aggregations_config.go)
_VPA_RATIO = 1.05  # DefaultHistogramBucketSizeGrowth 0.05
_VPA_CPU = (0.01, 1000.0)  # first bucket size and max value, cores
_VPA_MEMORY = (1e7, 1e12)  # bytes
_VPA_MIN_WEIGHT = 0.1  # minSampleWeight


def vpa_target(usage: pd.DataFrame, *, current: pd.DataFrame | None = None, cpu_percentile: float = 0.9,
               memory_percentile: float = 0.9, margin: float = 0.15, half_life: timedelta = timedelta(hours=24),
               memory_interval: timedelta = timedelta(hours=24), min_cpu_millicores: float = 25,
               min_memory_mib: float = 250, history: timedelta | str | None = None,
               now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The VPA recommender's *target*: the `cpu_percentile` of a decaying histogram of CPU samples and the
    `memory_percentile` of a decaying histogram of per-interval memory peaks, plus a `margin`, at least the minimum
    resources. Limits keep the request:limit ratio of the `current` spec (columns `series`, `cpu_request`,
    `cpu_limit`, `memory_request`, `memory_limit`; NaN = unset), NaN where there is no current limit.

    Published (kubernetes/autoscaler, `vertical-pod-autoscaler/pkg/recommender/`): `logic/recommender.go` -
    target percentiles 0.9 (`--target-cpu-percentile`, `--target-memory-percentile`), margin 0.15
    (`--recommendation-margin-fraction`), pod minimum 25 mCPU and 250 MiB (`--pod-recommendation-min-cpu-millicores`,
    `--pod-recommendation-min-memory-mb`, bytes = MB x 1024 x 1024) shared by the pod's containers (one container
    per series here), CPU rounded up to `--round-cpu-millicores` 1; `model/aggregations_config.go` - buckets 5 %
    wider each (ratio 1.05), CPU first bucket 0.01 core up to 1000 cores, memory first bucket 1e7 bytes up to 1e12,
    half-life 24 h for both, memory aggregation interval 24 h, `minSampleWeight` 0.1;
    `model/aggregate_container_state.go` - a CPU sample weighs max(request in cores, 0.1), a memory peak 1;
    `model/container.go` - one peak per interval, the intervals counted from the container's first memory sample
    and each peak stamped at its interval's end; `util/decaying_histogram.go` - weight x 2^((t - ref) / half-life);
    `util/histogram.go` - the percentile is the end of the first bucket whose cumulative weight reaches p x total
    (the start of the last bucket if it is the last one); `model/types.go` - usage and results held as int64
    millicores and bytes (truncated). Limits: `pkg/utils/vpa/limit_and_request_scaling.go`
    (`GetProportionalLimit`): no current limit -> none; request unset -> limit = request; request 0 -> the limit is
    only raised to the request; request = limit -> limit = request; otherwise limit x new / old request.

    Reproduced quirk: a window whose first sample is 0 bytes keeps a peak of 0 (`container.go` only replaces a
    non-zero peak). Not reproduced: OOM events (no OOM data here; the VPA bumps memory by 20 % or 100 MiB after
    one), checkpoint round-off, the lower/upper bounds and their confidence multipliers (the target has none),
    and capping by the VPA object's min/max allowed. By default all history is used, decayed, as a long-running
    recommender would hold it (its Prometheus history provider instead loads 8 days at 1-hour resolution). The
    request weight is constant per series here, so it cancels out of the percentiles.
    """
    if not (0 < cpu_percentile <= 1 and 0 < memory_percentile <= 1):
        raise SchemaError(f"cpu_percentile and memory_percentile are fractions in (0, 1] (0.9 = p90), got "
                          f"{cpu_percentile!r} and {memory_percentile!r}")
    if margin < 0:
        raise SchemaError(f"margin must be a fraction >= 0 (0.15 = 15 %), got {margin!r}")
    u, span = check_usage(usage).within(now, history)
    cur = check_current(current, u.names)
    n = len(u.names)
    half = _span(half_life, "half_life").value
    ref = u.ts[u.start[1:] - 1]  # any per-series reference works: only relative weights matter
    # CPU: samples weighted by max(request, 0.1), decayed
    ok = np.isfinite(u.cpu)
    cores = np.floor(u.cpu[ok] * 1000) / 1000  # the VPA holds usage in whole millicores
    req = np.floor(np.nan_to_num(cur["cpu_request"], nan=0.0) * 1000) / 1000
    w = np.maximum(req, _VPA_MIN_WEIGHT)[u.code[ok]] * np.exp2((u.ts[ok] - ref[u.code[ok]]) / half)
    cpu_raw = _histogram_percentile(u.code[ok], cores, w, n, *_VPA_CPU, cpu_percentile)
    # memory: one peak per interval, weight 1, stamped at the interval end
    code, mts, peak = _memory_peaks(u, _span(memory_interval, "memory_interval").value)
    w = np.exp2((mts - ref[code]) / half)
    mem_raw = _histogram_percentile(code, np.floor(peak), w, n, *_VPA_MEMORY, memory_percentile)
    npeaks = np.bincount(code, minlength=n)
    # margin and minimum on int64 millicores / bytes, as model.ScaleResource truncates
    milli = np.trunc(cpu_raw * 1000)
    milli = np.maximum(milli + np.trunc(milli * margin), min_cpu_millicores)
    membytes = np.trunc(mem_raw)
    membytes = np.maximum(membytes + np.trunc(membytes * margin), np.trunc(min_memory_mib * MIB))
    cpu, mem = milli / 1000, membytes
    cpu_limit = _proportional_limit(cpu, cur["cpu_request"], cur["cpu_limit"], unit=1000)
    mem_limit = _proportional_limit(mem, cur["memory_request"], cur["memory_limit"], unit=1)
    ncpu = np.bincount(u.code[ok], minlength=n)
    per = _fmt(pd.Timedelta(memory_interval))
    why = [
        f"VPA target over {span}: "
        + (f"CPU p{100 * cpu_percentile:g} of the decaying histogram of {ncpu[i]} samples = "
           f"{cpu_raw[i]:.4g} cores" if ncpu[i] else "CPU undefined: no samples")
        + (f"; memory p{100 * memory_percentile:g} of {npeaks[i]} peaks (one per {per}) = "
           f"{mem_raw[i] / MIB:.1f} MiB" if npeaks[i] else "; memory undefined: no samples")
        + f"; +{margin:.0%} margin, at least {min_cpu_millicores:g}m / {min_memory_mib:g}Mi, half-life "
        + _fmt(pd.Timedelta(half_life))
        + ("" if current is not None else "; no current spec: no limits")
        for i in range(n)]
    return _frame(u.names, cpu, cpu_limit, mem, mem_limit, why)


def _histogram_percentile(code, values, weights, n, first, top, p):
    """Per series, the VPA histogram percentile (NaN for a series without samples): exponential buckets, the end
    of the first bucket whose cumulative weight reaches p x total, never past the last non-empty bucket."""
    nb = int(np.ceil(np.log(top * (_VPA_RATIO - 1) / first + 1) / np.log(_VPA_RATIO))) + 1
    with np.errstate(divide="ignore"):
        b = np.floor(np.log(values * (_VPA_RATIO - 1) / first + 1) / np.log(_VPA_RATIO))
    b = np.where(values < first, 0, np.minimum(b, nb - 1)).astype(np.int64)
    hist = np.bincount(code * nb + b, weights=weights, minlength=n * nb).reshape(n, nb)
    total = hist.sum(axis=1)
    reached = np.cumsum(hist, axis=1) >= (p * total)[:, None]
    last = nb - 1 - np.argmax(hist[:, ::-1] > 0, axis=1)
    idx = np.where(reached.any(axis=1), np.minimum(reached.argmax(axis=1), last), last)
    edge = np.where(idx < nb - 1, idx + 1, idx)
    value = np.where(edge == 0, 0.0, first * (_VPA_RATIO ** edge - 1) / (_VPA_RATIO - 1))
    return np.where(total > 0, value, np.nan)


def _memory_peaks(u: Usage, interval_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (series code, time stamp, peak) per memory aggregation interval with samples."""
    ok = np.flatnonzero(np.isfinite(u.memory))
    if ok.size == 0:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
    code, ts, mem = u.code[ok], u.ts[ok], u.memory[ok]
    first = np.r_[True, code[1:] != code[:-1]]
    t0 = np.maximum.accumulate(np.where(first, np.arange(code.size), 0))  # index of each series' first sample
    k = (ts - ts[t0]) // interval_ns
    head = np.flatnonzero(np.r_[True, (code[1:] != code[:-1]) | (k[1:] != k[:-1])])
    peak = np.maximum.reduceat(mem, head)
    peak = np.where(mem[head] == 0, 0.0, peak)  # container.go: a zero first peak is never replaced
    return code[head], ts[t0[head]] + (k[head] + 1) * interval_ns, peak


def _proportional_limit(new, old_request, old_limit, unit):
    """GetProportionalLimit, in whole milli-units (CPU, unit=1000) or bytes (memory, unit=1)."""
    req, lim, rec = np.round(old_request * unit), np.round(old_limit * unit), np.round(new * unit)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.floor(lim * rec / req)
    out = np.where(np.isnan(req) | (req == lim), rec, np.where(req == 0, np.maximum(lim, rec), scaled))
    out = np.where(np.isnan(lim) | (lim == 0) | (rec == 0), np.nan, out)
    return out / unit


def check_current(current: pd.DataFrame | None, names: np.ndarray) -> dict[str, np.ndarray]:
    """The `current` spec (columns `series`, `cpu_request`, `cpu_limit`, `memory_request`, `memory_limit`; NaN =
    unset) checked and aligned to `names`: column -> array in the order of `names`, NaN for series it lacks
    (all NaN when `current` is None). Raises `SchemaError` naming the problem."""
    nan = np.full(len(names), np.nan)
    if current is None:
        return {c: nan.copy() for c in CURRENT_COLUMNS[1:]}
    if not isinstance(current, pd.DataFrame):
        raise SchemaError(f"current: expected a DataFrame with columns {list(CURRENT_COLUMNS)}, "
                          f"got {type(current).__name__}")
    missing = [c for c in CURRENT_COLUMNS if c not in current.columns]
    if missing:
        raise SchemaError(f"current: missing column(s) {missing}; it has {list(current.columns)}. Use NaN for an "
                          "unset request or limit")
    dup = current["series"][current["series"].duplicated()]
    if len(dup):
        raise SchemaError(f"current: series {dup.iloc[0]!r} appears more than once; give one spec per series")
    out = {}
    for col in CURRENT_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(current[col]):
            raise SchemaError(f"current: column {col!r} is {current[col].dtype}; expected cores or bytes")
        values = current[col].to_numpy(float)
        if np.any(values < 0) or np.any(np.isinf(values)):
            raise SchemaError(f"current: column {col!r} has negative or infinite values; requests and limits "
                              "are >= 0 (NaN = unset)")
        out[col] = pd.Series(values, index=current["series"].to_numpy()).reindex(names).to_numpy(float)
    return out


def _frame(names, cpu, cpu_limit, mem, mem_limit, why) -> pd.DataFrame:
    return pd.DataFrame({"series": names, "cpu_request": cpu, "cpu_limit": cpu_limit, "memory_request": mem,
                         "memory_limit": mem_limit, "why": why}, columns=list(OUTPUT_COLUMNS))


def _factorize(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if series.isna().any():
        raise SchemaError(f"usage: {int(series.isna().sum())} row(s) have no series id; name every series")
    code, names = pd.factorize(series, sort=True)
    return np.asarray(names), code.astype(np.int64)


def _utc(t) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _span(value, name: str) -> pd.Timedelta:
    try:
        width = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{name} must be a duration such as timedelta(days=14) or '14D', got {value!r}") from exc
    if not width > pd.Timedelta(0):
        raise SchemaError(f"{name} must be a positive duration, got {value!r}")
    return width


def _fmt(width: pd.Timedelta) -> str:
    hours = width / pd.Timedelta(hours=1)
    if hours >= 24 and hours % 24 == 0:
        return "1 day" if hours == 24 else f"{hours / 24:g} days"
    return f"{hours:g} h"
