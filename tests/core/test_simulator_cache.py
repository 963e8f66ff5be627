"""The simulator source keeps a bounded cache of simulated days and still answers every window identically."""

from datetime import timedelta

from aiops.settings import load_settings
from aiops.sources.simulator import CACHED_CHUNKS, SimulatorSource


def test_dropped_days_are_resimulated_identically_and_memory_stays_bounded():
    days = CACHED_CHUNKS + 4
    s = load_settings(sim={"workloads": 3, "days": days, "start": "2026-11-02T00:00:00Z", "scrape_glitches": 0})
    t0 = s.sim.resolved_start()
    a, b = SimulatorSource(s), SimulatorSource(s)
    late = (t0 + timedelta(days=days - 1), t0 + timedelta(days=days - 1, hours=6))
    early = (t0 + timedelta(days=1), t0 + timedelta(days=1, hours=6))
    a_late = a.fetch(*late, ["cpu_usage", "memory_working_set"], 60)
    assert sum(p is not None for p in a._parts) == CACHED_CHUNKS  # older days dropped
    a_early = a.fetch(*early, ["cpu_usage", "memory_working_set"], 60)  # forces a re-simulation
    b_early = b.fetch(*early, ["cpu_usage", "memory_working_set"], 60)
    b_late = b.fetch(*late, ["cpu_usage", "memory_working_set"], 60)
    assert len(a_late) == 3 * 2 * 360
    assert a_early.equals(b_early) and a_late.equals(b_late)
    assert a.events(t0, t0 + timedelta(days=days)).equals(b.events(t0, t0 + timedelta(days=days)))
    assert sum(p is not None for p in a._parts) <= days - 1
