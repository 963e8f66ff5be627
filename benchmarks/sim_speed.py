"""Simulator speed: workloads x days at a step, median of repeats (the issue's target: 100 x 30 d x 60 s < 10 s).

    python benchmarks/sim_speed.py --workloads 100 --days 30 --step 60 --seed 0 --repeat 3

Prints wall-clock and process CPU seconds (time.process_time: the machine is shared, CPU time is the steadier
figure), workload-steps per second; appends a JSON line to benchmarks/out/sim_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiops.settings import SimSettings  # noqa: E402
from aiops.sim.engine import Engine  # noqa: E402
from aiops.sim.generate import build_cluster  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", type=int, default=100)
    p.add_argument("--namespaces", type=int, default=8)
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--step", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "sim_speed.json")
    a = p.parse_args(argv)
    sim = SimSettings(workloads=a.workloads, namespaces=min(a.namespaces, a.workloads), days=a.days,
                      step_seconds=a.step, seed=a.seed)
    spec = build_cluster(sim)
    steps = int(a.days * 86400 // a.step)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    times, cpu, events = [], [], 0
    for _ in range(a.repeat):
        t, c = time.perf_counter(), time.process_time()
        eng = Engine(spec, start=start, step_s=a.step, seed=a.seed)
        res = eng.run(steps)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)  # CPU time of this process: less sensitive to a busy machine
        events = len(res.events)
    sec = statistics.median(times)
    out = {"benchmark": "sim_speed", "workloads": a.workloads, "days": a.days, "step_s": a.step, "seed": a.seed,
           "steps": steps, "repeat": a.repeat, "seconds_median": round(sec, 3), "seconds_all": [round(x, 3) for x in times],
           "cpu_seconds_median": round(statistics.median(cpu), 3), "cpu_seconds_all": [round(x, 3) for x in cpu],
           "workload_steps_per_s": round(a.workloads * steps / sec), "events": events, "target_s": 10.0,
           "meets_target": sec < 10.0, "cpus": os.cpu_count(), "python": platform.python_version(),
           "load_avg_1m": round(os.getloadavg()[0], 2), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    print(f"{a.workloads} workloads x {a.days:g} days at {a.step}s = {steps} steps: median {sec:.2f} s "
          f"({out['workload_steps_per_s']:,} workload-steps/s; runs {', '.join(f'{x:.2f}' for x in times)} s; "
          f"CPU time median {out['cpu_seconds_median']:.2f} s (runs {', '.join(f'{x:.2f}' for x in cpu)} s); "
          f"load avg {out['load_avg_1m']})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
