"""The OpenCost specification's cost model: what each container costs over a window, and the cluster's idle cost.

Source: the OpenCost Specification v0.1 (opencost/opencost, `spec/opencost-specv01.md`, also at opencost.io/docs).
- Workload costs: "Workload Costs should be understood as max(request, usage) when Assets have Resource Allocation
  Costs, e.g. CPU or GPU", measured at container level; for memory "the greater of requested resources and memory
  in use". A resource allocation cost is Amount x Duration x HourlyRate.
- Idle costs: "Cluster Idle Cost = (Cluster Asset Costs - Workload Costs)" and "Idle % = Idle Cost / Resource
  Allocation Costs", where a node's CPU (RAM) asset cost is its cores (GB) x hours running x the hourly price.

Prices are arguments. `Prices` defaults to OpenCost's own default pricing sheet (opencost/opencost,
`configs/default.json`, "Default prices based on GCP us-central1": CPU 0.031611 $/core-hour, RAM 0.004237 $/GiB-hour),
the rates OpenCost uses when it knows no provider price; the docs give no AWS per-core / per-GiB split.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from aiops.errors import SchemaError
from aiops.optimize.config import Prices  # noqa: F401  (settings embed it; re-exported here)
from aiops.optimize.rightsize_baselines import check_usage

GIB = 1024**3
REQUEST_COLUMNS = ("series", "cpu_request", "memory_request")
NODE_COLUMNS = ("node", "cpu_cores", "memory_bytes", "hours")
COST_COLUMNS = ("series", "hours", "cpu_core_hours", "memory_gib_hours", "cpu_cost", "memory_cost", "total_cost")


def allocation_cost(requests: pd.DataFrame, usage: pd.DataFrame, *, cpu_price_per_core_hour: float,
                    memory_price_per_gib_hour: float, step: timedelta | str) -> pd.DataFrame:
    """Per series, the OpenCost workload cost over the samples of `usage`: the sum over intervals of
    max(request, usage) x `step` x unit price, for CPU (core-hours) and memory (GiB-hours).

    `requests` has one row per series with `series`, `cpu_request` (cores) and `memory_request` (bytes); NaN means
    no request (Kubernetes schedules it as 0), so that interval costs its usage. `usage` is the long usage frame
    (`series`, `ts`, `cpu`, `memory`); each row stands for one interval of length `step`. A missing usage sample
    (NaN) is charged its request: the allocation is held whether or not the sample was scraped. Returns `series`,
    `hours` (intervals x step), `cpu_core_hours`, `memory_gib_hours`, `cpu_cost`, `memory_cost` and `total_cost`,
    one row per series of `requests` (a series without usage rows costs 0).
    """
    for label, price in (("cpu_price_per_core_hour", cpu_price_per_core_hour),
                         ("memory_price_per_gib_hour", memory_price_per_gib_hour)):
        if isinstance(price, bool) or not isinstance(price, (int, float, np.number)) or not 0 <= price < np.inf:
            raise SchemaError(f"{label} must be a price >= 0 in $ per unit-hour, got {price!r}")
    hours = _hours(step)
    u = check_usage(usage, "usage")
    req = _check_requests(requests)
    missing = sorted(set(u.names) - set(req.index))
    if missing:
        raise SchemaError(f"requests: no row for series {missing[:5]}{' ...' if len(missing) > 5 else ''} found in "
                          "usage; give every series its cpu_request and memory_request (NaN = none)")
    cpu_req = req["cpu_request"].reindex(u.names).to_numpy(float)[u.code]
    mem_req = req["memory_request"].reindex(u.names).to_numpy(float)[u.code]
    # fmax: the larger of request and usage, the request alone when the usage sample is missing
    cpu_alloc = np.fmax(np.nan_to_num(cpu_req, nan=0.0), u.cpu)
    mem_alloc = np.fmax(np.nan_to_num(mem_req, nan=0.0), u.memory)
    seg = u.start[:-1]
    out = pd.DataFrame({
        "hours": np.diff(u.start) * hours,
        "cpu_core_hours": np.add.reduceat(cpu_alloc, seg) * hours,
        "memory_gib_hours": np.add.reduceat(mem_alloc, seg) / GIB * hours,
    }, index=pd.Index(u.names, name="series"))
    out = out.reindex(req.index.union(out.index), fill_value=0.0)
    out["cpu_cost"] = out["cpu_core_hours"] * cpu_price_per_core_hour
    out["memory_cost"] = out["memory_gib_hours"] * memory_price_per_gib_hour
    out["total_cost"] = out["cpu_cost"] + out["memory_cost"]
    return out.rename_axis("series").reset_index()[list(COST_COLUMNS)]


def idle_cost(node_capacity: pd.DataFrame, allocations: pd.DataFrame, prices: Prices) -> pd.DataFrame:
    """The cluster's idle cost as the OpenCost spec defines it: asset costs minus workload costs, per resource.

    `node_capacity` has one row per node with `node`, `cpu_cores`, `memory_bytes` (the average capacity over the
    window) and `hours` (how long the node ran in it); its asset cost is cores (GiB) x hours x `prices`.
    `allocations` is `allocation_cost`'s result over the same window (its `cpu_cost` and `memory_cost` columns).
    Returns rows `cpu`, `memory`, `total` with `asset_cost`, `workload_cost`, `idle_cost` and `idle_fraction`
    (idle / asset cost). A negative idle cost means the workloads were charged more than the nodes hold: the
    allocations do not fit the capacity given (or cover a different window).
    """
    if not isinstance(prices, Prices):
        raise SchemaError(f"prices: expected aiops.optimize.opencost.Prices, got {type(prices).__name__}")
    _columns(node_capacity, "node_capacity", NODE_COLUMNS, "node capacities in cores and bytes and hours run")
    _columns(allocations, "allocations", ("cpu_cost", "memory_cost"), "the result of allocation_cost")
    for col in NODE_COLUMNS[1:]:
        _non_negative(node_capacity[col], "node_capacity", col, allow_nan=False)
    for col in ("cpu_cost", "memory_cost"):
        _non_negative(allocations[col], "allocations", col, allow_nan=False)
    hours = node_capacity["hours"].to_numpy(float)
    asset = np.array([
        float(np.sum(node_capacity["cpu_cores"].to_numpy(float) * hours)) * prices.cpu_price_per_core_hour,
        float(np.sum(node_capacity["memory_bytes"].to_numpy(float) / GIB * hours)) * prices.memory_price_per_gib_hour,
    ])
    workload = np.array([float(allocations["cpu_cost"].sum()), float(allocations["memory_cost"].sum())])
    asset, workload = np.r_[asset, asset.sum()], np.r_[workload, workload.sum()]
    idle = asset - workload
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(asset > 0, idle / asset, np.nan)
    return pd.DataFrame({"asset_cost": asset, "workload_cost": workload, "idle_cost": idle,
                         "idle_fraction": fraction}, index=pd.Index(["cpu", "memory", "total"], name="resource"))


def _check_requests(requests: pd.DataFrame) -> pd.DataFrame:
    _columns(requests, "requests", REQUEST_COLUMNS, "one row per series, cores and bytes, NaN = no request")
    dup = requests["series"][requests["series"].duplicated()]
    if len(dup):
        raise SchemaError(f"requests: series {dup.iloc[0]!r} appears more than once; give one request per series")
    for col in REQUEST_COLUMNS[1:]:
        _non_negative(requests[col], "requests", col)
    return requests.set_index("series")[list(REQUEST_COLUMNS[1:])].astype(float)


def _columns(frame, name: str, columns, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{name}: expected a DataFrame with columns {list(columns)} ({what}), "
                          f"got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing}; it has {list(frame.columns)}; expected {what}")


def _non_negative(values: pd.Series, name: str, col: str, allow_nan: bool = True) -> None:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise SchemaError(f"{name}: column {col!r} is {values.dtype}; expected numbers")
    v = values.to_numpy(float)
    if not allow_nan and np.isnan(v).any():
        raise SchemaError(f"{name}: column {col!r} has {int(np.isnan(v).sum())} missing value(s); fill them")
    if np.any(v < 0) or np.any(np.isinf(v)):
        raise SchemaError(f"{name}: column {col!r} has negative or infinite values (e.g. "
                          f"{v[(v < 0) | np.isinf(v)][0]}); expected finite values >= 0")


def _hours(step) -> float:
    try:
        width = pd.Timedelta(step)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"step must be the sampling interval, e.g. timedelta(minutes=5) or '5min', "
                          f"got {step!r}") from exc
    if not width > pd.Timedelta(0):
        raise SchemaError(f"step must be a positive duration, got {step!r}")
    return width / pd.Timedelta(hours=1)
