"""The OpenCost cost model on hand-computed allocations: max(request, usage), missing samples, idle cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiops.errors import SchemaError
from aiops.optimize.opencost import COST_COLUMNS, Prices, allocation_cost, idle_cost

GIB = 1024**3
T0 = pd.Timestamp("2026-03-01", tz="UTC")


def usage(series: str, cpu, memory, step="1h") -> pd.DataFrame:
    cpu = np.asarray(cpu, float)
    return pd.DataFrame({"series": series, "ts": T0 + pd.Timedelta(step) * np.arange(len(cpu)), "cpu": cpu,
                         "memory": np.asarray(memory, float)})


def requests(**by_series) -> pd.DataFrame:
    return pd.DataFrame([{"series": s, "cpu_request": c, "memory_request": m} for s, (c, m) in by_series.items()])


def test_each_interval_costs_the_larger_of_request_and_usage():
    # CPU: request 1 core, usage 0.5, 2.0, missing -> 1 + 2 + 1 = 4 core-hours at $1 = $4
    # memory: request 1 GiB, usage 2, 0.5, 1 GiB -> 2 + 1 + 1 = 4 GiB-hours at $0.5 = $2
    # (request only: 3 + 3 x 0.5 = 4.5; usage only: 2.5 + 3.5 x 0.5 = 4.25)
    cost = allocation_cost(requests(a=(1.0, GIB)), usage("a", [0.5, 2.0, np.nan], [2 * GIB, 0.5 * GIB, GIB]),
                           cpu_price_per_core_hour=1.0, memory_price_per_gib_hour=0.5, step="1h")
    assert list(cost.columns) == list(COST_COLUMNS)
    got = cost.set_index("series").loc["a"]
    assert got["hours"] == 3 and got["cpu_core_hours"] == 4 and got["memory_gib_hours"] == 4
    assert (got["cpu_cost"], got["memory_cost"], got["total_cost"]) == (4.0, 2.0, 6.0)


def test_the_step_sets_the_duration_of_each_sample():
    five = allocation_cost(requests(a=(2.0, 0.0)), usage("a", np.zeros(12), np.zeros(12), step="5min"),
                           cpu_price_per_core_hour=0.5, memory_price_per_gib_hour=1.0, step="5min")
    assert five["cpu_core_hours"].item() == pytest.approx(2.0)  # 12 x 5 min = 1 h at 2 cores
    assert five["total_cost"].item() == pytest.approx(1.0)


def test_no_request_costs_the_usage_and_a_series_without_usage_costs_nothing():
    cost = allocation_cost(requests(a=(np.nan, np.nan), b=(1.0, GIB)), usage("a", [0.25, 0.75], [GIB, 3 * GIB]),
                           cpu_price_per_core_hour=1.0, memory_price_per_gib_hour=1.0, step="1h").set_index("series")
    assert cost.loc["a", "cpu_cost"] == 1.0 and cost.loc["a", "memory_cost"] == 4.0
    assert cost.loc["b", "total_cost"] == 0.0 and cost.loc["b", "hours"] == 0.0


def test_default_prices_are_opencosts_and_fit_the_keywords():
    prices = Prices()
    assert (prices.cpu_price_per_core_hour, prices.memory_price_per_gib_hour) == (0.031611, 0.004237)
    cost = allocation_cost(requests(a=(1.0, GIB)), usage("a", [0.0], [0.0]), step="1h", **prices.model_dump())
    assert cost["total_cost"].item() == pytest.approx(0.031611 + 0.004237)
    with pytest.raises(ValidationError):
        Prices(cpu_price_per_core_hour=-1)
    with pytest.raises(ValidationError):
        Prices(gpu_price=1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 64), st.floats(0, 2**40)), min_size=1, max_size=30),
       st.floats(0, 64), st.floats(0, 2**40), st.floats(0.001, 1), st.floats(0.0001, 0.1))
def test_opencost_cost_is_at_least_the_request_cost_and_the_usage_cost(samples, cpu_req, mem_req, p_cpu, p_mem):
    cpu, mem = zip(*samples)
    cost = allocation_cost(requests(a=(cpu_req, mem_req)), usage("a", cpu, mem), cpu_price_per_core_hour=p_cpu,
                           memory_price_per_gib_hour=p_mem, step="1h")["total_cost"].item()
    hours = len(samples)
    request_only = hours * (cpu_req * p_cpu + mem_req / GIB * p_mem)
    usage_only = sum(cpu) * p_cpu + sum(mem) / GIB * p_mem
    assert cost >= request_only * (1 - 1e-12) and cost >= usage_only * (1 - 1e-12)
    assert cost <= request_only + usage_only + 1e-9


def test_idle_cost_is_assets_minus_workloads():
    # one node of 4 cores and 16 GiB for 10 h at $1/core-h and $0.5/GiB-h: assets $40 and $80;
    # workloads charged $10 and $20 -> idle $30 and $60, 75 % idle
    nodes = pd.DataFrame({"node": ["n1"], "cpu_cores": [4.0], "memory_bytes": [16.0 * GIB], "hours": [10.0]})
    alloc = pd.DataFrame({"series": ["a", "b"], "cpu_cost": [4.0, 6.0], "memory_cost": [5.0, 15.0]})
    idle = idle_cost(nodes, alloc, Prices(cpu_price_per_core_hour=1.0, memory_price_per_gib_hour=0.5))
    assert idle.loc["cpu"].tolist() == [40.0, 10.0, 30.0, 0.75]
    assert idle.loc["memory"].tolist() == [80.0, 20.0, 60.0, 0.75]
    assert idle.loc["total"].tolist() == [120.0, 30.0, 90.0, 0.75]


def test_idle_cost_from_allocation_cost_end_to_end():
    prices = Prices(cpu_price_per_core_hour=2.0, memory_price_per_gib_hour=1.0)
    alloc = allocation_cost(requests(a=(1.0, GIB)), usage("a", [0.5, 3.0], [GIB, GIB]), step="1h",
                            **prices.model_dump())  # CPU 1 + 3 core-h = $8, memory 2 GiB-h = $2
    nodes = pd.DataFrame({"node": ["n1"], "cpu_cores": [4.0], "memory_bytes": [4.0 * GIB], "hours": [2.0]})
    idle = idle_cost(nodes, alloc, prices)  # assets: 8 core-h = $16, 8 GiB-h = $8
    assert idle["idle_cost"].tolist() == [8.0, 6.0, 14.0]


def test_bad_input_is_refused_with_a_clear_error():
    u = usage("a", [0.5], [GIB])
    kw = dict(cpu_price_per_core_hour=1.0, memory_price_per_gib_hour=1.0, step="1h")
    with pytest.raises(SchemaError, match=r"requests: no row for series \['a'\]"):
        allocation_cost(requests(b=(1.0, GIB)), u, **kw)
    with pytest.raises(SchemaError, match=r"requests: missing column\(s\) \['memory_request'\]"):
        allocation_cost(pd.DataFrame({"series": ["a"], "cpu_request": [1.0]}), u, **kw)
    with pytest.raises(SchemaError, match="requests: column 'cpu_request' has negative"):
        allocation_cost(requests(a=(-1.0, GIB)), u, **kw)
    with pytest.raises(SchemaError, match="requests: series 'a' appears more than once"):
        allocation_cost(pd.concat([requests(a=(1.0, GIB))] * 2), u, **kw)
    with pytest.raises(SchemaError, match="usage: column 'cpu' has 1 negative"):
        allocation_cost(requests(a=(1.0, GIB)), usage("a", [-0.5], [GIB]), **kw)
    with pytest.raises(SchemaError, match="step must be a positive duration"):
        allocation_cost(requests(a=(1.0, GIB)), u, **{**kw, "step": "0s"})
    with pytest.raises(SchemaError, match="cpu_price_per_core_hour must be a price"):
        allocation_cost(requests(a=(1.0, GIB)), u, **{**kw, "cpu_price_per_core_hour": float("nan")})
    with pytest.raises(SchemaError, match=r"node_capacity: missing column\(s\) \['hours'\]"):
        idle_cost(pd.DataFrame({"node": ["n"], "cpu_cores": [1.0], "memory_bytes": [1.0]}),
                  pd.DataFrame({"cpu_cost": [1.0], "memory_cost": [1.0]}), Prices())
    with pytest.raises(SchemaError, match="prices: expected"):
        idle_cost(pd.DataFrame(columns=["node", "cpu_cores", "memory_bytes", "hours"]),
                  pd.DataFrame({"cpu_cost": [1.0], "memory_cost": [1.0]}), {"cpu": 1.0})
