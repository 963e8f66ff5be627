"""Tune a workload's HPA and CPU request by multi-objective search (DEAP NSGA-II) in the simulated cluster.

Each candidate is a full autoscaling/v2 HPA (target utilisation, min/max replicas, scale-up and scale-down
stabilisation windows and rate policies) plus the pod's CPU request. It is scored by replaying the workload's
recorded demand through the simulator (`aiops.optimize.whatif`) on two objectives, both minimised: SLO-violation
minutes and cost (replica-hours by default). NSGA-II keeps the Pareto front; one point is chosen by a stated rule:
the cheapest whose violation minutes are within the SLO budget (a share of the replayed minutes), else the one
with the fewest violations. Random search with the same budget and rule is here too, as the baseline a tuner must
beat.

Reproducible: the same demand, seed and budget give the same front (DEAP draws from the `random` module, seeded
here and restored after). A generation's candidates are evaluated together, split over `workers` processes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Literal

import numpy as np
from deap import base, creator, tools
from pydantic import BaseModel, ConfigDict, Field

from aiops.optimize.whatif import HPA, Outcome, WorkloadModel, evaluate
from aiops.sim.spec import HPAScalingPolicy, HPAScalingRules, HPASpec

GENES = ("target", "min_replicas", "max_replicas", "up_window", "up_percent", "up_pods", "up_period",
         "down_window", "down_percent", "down_period", "cpu_request")
Cost = Literal["replica_hours", "core_hours", "node_cost"]


class SearchSpace(BaseModel):
    """Ranges searched; `for_demand` sizes the replica ranges from the demand the tuner sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: tuple[float, float] = (0.3, 1.2)
    max_min_replicas: int = Field(10, ge=1, description="largest minReplicas tried")
    max_replicas: int = Field(40, ge=1, description="largest maxReplicas tried")
    min_max_replicas: int = Field(1, ge=1, description="smallest maxReplicas tried: the headroom an HPA keeps for "
                                  "surges the replayed demand did not have")
    up_window_s: tuple[int, int] = (0, 600)
    up_percent: tuple[int, int] = (10, 1000)
    up_pods: tuple[int, int] = (1, 20)
    up_period_s: tuple[int, int] = (15, 120)
    down_window_s: tuple[int, int] = (0, 1800)
    down_percent: tuple[int, int] = (5, 100)
    down_period_s: tuple[int, int] = (15, 600)
    cpu_request: tuple[float, float] = (0.1, 1.0)

    @classmethod
    def for_demand(cls, demand: np.ndarray, model: WorkloadModel, quiet: float = 0.05, **kw) -> "SearchSpace":
        """minReplicas up to what the quietest `quiet` share of the steps needs, maxReplicas up to twice what the
        peak needs (at least 4).

        A minReplicas above the quiet level pays all night for a daytime level, and fixes the replayed weeks'
        level into a setting that later weeks keep: on Bitbrains, whose September is quieter than its summer, a
        tuner free to raise minReplicas to 6-8 cost 1.6-1.8 times the default HPA's replica-hours on September.
        Following the level is the planner's job (pre-scaling moves minReplicas with the forecast)."""
        need = model.replicas_needed(np.asarray(demand, float))
        peak = int(need.max())
        low = int(np.quantile(need, quiet)) if need.size else 1
        return cls(max_min_replicas=max(1, low), max_replicas=max(4, 2 * peak), **kw)


class TunerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: int = Field(400, ge=2, description="simulator evaluations in all (the initial population included)")
    population: int = Field(40, ge=4, multiple_of=4, description="candidates per generation (NSGA-II's "
                            "crowded tournament pairs them in fours)")
    seed: int = 0
    workers: int = Field(2, ge=1, le=64, description="processes evaluating a generation")
    cost: Cost = "replica_hours"
    rule: Literal["within_cost", "slo_budget"] = Field(
        "within_cost", description="within_cost: the fewest violation minutes at no more cost than the baseline "
        "(the settings running now); slo_budget: the cheapest within the SLO budget")
    slo_budget: float = Field(0.001, ge=0, le=1, description="share of minutes the chosen point may violate the SLO")
    crossover: float = Field(0.9, ge=0, le=1)
    mutation: float = Field(0.3, ge=0, le=1, description="per-candidate probability of mutation")
    eta: float = Field(15.0, gt=0, description="SBX / polynomial-mutation crowding (larger: smaller steps)")


@dataclass(frozen=True)
class Candidate:
    hpa: HPASpec
    cpu_request: float
    genome: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        h = self.hpa
        pol = lambda r: "+".join(f"{p.type} {p.value}/{p.period_s}s" for p in r.policies)  # noqa: E731
        return {"target_cpu_utilization": round(h.target_cpu_utilization, 3), "min_replicas": h.min_replicas,
                "max_replicas": h.max_replicas, "scale_up_window_s": h.scale_up.stabilization_window_s,
                "scale_up_policies": pol(h.scale_up), "scale_down_window_s": h.scale_down.stabilization_window_s,
                "scale_down_policies": pol(h.scale_down), "cpu_request": self.cpu_request}


@dataclass(frozen=True)
class Evaluated:
    candidate: Candidate
    outcome: Outcome

    def cost(self, kind: Cost) -> float:
        return float(getattr(self.outcome, kind))


@dataclass
class TuneResult:
    method: str
    evaluated: list[Evaluated]
    front: list[Evaluated]
    chosen: Evaluated
    rule: str
    default: Evaluated
    cost: Cost
    seconds: float
    sim_seconds: float
    generations: list[dict] = field(default_factory=list)

    @property
    def evaluations_per_s(self) -> float:
        return len(self.evaluated) / self.sim_seconds if self.sim_seconds else math.nan

    def table(self) -> list[dict]:
        """Every evaluated candidate: its settings, objectives and whether it is on the front / chosen."""
        front = {id(e) for e in self.front}
        return [{**e.candidate.as_dict(), **e.outcome.as_dict(), "on_front": id(e) in front,
                 "chosen": e is self.chosen} for e in self.evaluated]


def default_candidate(space: SearchSpace, model: WorkloadModel) -> Candidate:
    """What a user gets without tuning: minReplicas 1, the range's maxReplicas, 80 % CPU, Kubernetes behavior."""
    return Candidate(HPASpec(min_replicas=1, max_replicas=space.max_replicas, target_cpu_utilization=0.8),
                     model.cpu_request)


def decode(genome: list[float] | tuple[float, ...], space: SearchSpace) -> Candidate:
    """A genome of floats in [0, 1] (one per `GENES`) as HPA settings and a CPU request."""
    g = dict(zip(GENES, (min(1.0, max(0.0, float(x))) for x in genome)))
    lin = lambda lo_hi, x: lo_hi[0] + x * (lo_hi[1] - lo_hi[0])  # noqa: E731
    logr = lambda lo_hi, x: lo_hi[0] * (lo_hi[1] / lo_hi[0]) ** x  # noqa: E731
    step = lambda v, s: int(round(v / s) * s)  # noqa: E731
    minr = 1 + int(round(g["min_replicas"] * (space.max_min_replicas - 1)))
    lo_max = max(minr, min(space.min_max_replicas, space.max_replicas))
    maxr = lo_max + int(round(g["max_replicas"] * max(0, space.max_replicas - lo_max)))
    up = HPAScalingRules(
        stabilization_window_s=step(lin(space.up_window_s, g["up_window"]), 15),
        policies=(HPAScalingPolicy(type="Percent", value=max(1, int(round(logr(space.up_percent, g["up_percent"])))),
                                   period_s=max(15, step(lin(space.up_period_s, g["up_period"]), 15))),
                  HPAScalingPolicy(type="Pods", value=max(1, int(round(lin(space.up_pods, g["up_pods"])))),
                                   period_s=max(15, step(lin(space.up_period_s, g["up_period"]), 15)))),
        select_policy="Max")
    down = HPAScalingRules(
        stabilization_window_s=step(lin(space.down_window_s, g["down_window"]), 15),
        policies=(HPAScalingPolicy(type="Percent", value=max(1, int(round(lin(space.down_percent, g["down_percent"])))),
                                   period_s=max(15, step(lin(space.down_period_s, g["down_period"]), 15))),),
        select_policy="Max")
    hpa = HPASpec(min_replicas=minr, max_replicas=maxr, target_cpu_utilization=round(lin(space.target, g["target"]), 3),
                  scale_up=up, scale_down=down)
    # whole 10-millicore steps, inside the range (a rounded value may not leave it)
    lo, hi = space.cpu_request
    req = min(hi, max(lo, round(lin(space.cpu_request, g["cpu_request"]), 2)))
    return Candidate(hpa, round(req, 3), tuple(float(x) for x in genome))


def choose(evaluated: list[Evaluated], *, budget_minutes: float, cost: Cost, rule: str = "slo_budget",
           baseline: Evaluated | None = None) -> tuple[Evaluated, str]:
    """By `rule`: "within_cost", the fewest violation minutes at no more cost than `baseline` (then the cheapest);
    "slo_budget", the cheapest within the SLO budget, else the fewest violation minutes (then the cheapest)."""
    if rule == "within_cost":
        if baseline is None:
            raise ValueError("rule within_cost needs the baseline (the settings running now)")
        cap = baseline.cost(cost)
        ok = [e for e in evaluated if e.cost(cost) <= cap]
        best = min(ok, key=lambda e: (e.outcome.violation_minutes, e.cost(cost)))
        return best, (f"fewest SLO-violation minutes at no more {cost.replace('_', '-')} than the current settings "
                      f"({cap:.4g})")
    ok = [e for e in evaluated if e.outcome.violation_minutes <= budget_minutes]
    if ok:
        best = min(ok, key=lambda e: (e.cost(cost), e.outcome.violation_minutes))
        return best, (f"cheapest ({cost.replace('_', '-')}) with SLO-violation minutes <= {budget_minutes:g} "
                      "(the SLO budget)")
    best = min(evaluated, key=lambda e: (e.outcome.violation_minutes, e.cost(cost)))
    return best, (f"no candidate met the SLO budget of {budget_minutes:g} violation minutes: the one with the "
                  "fewest violations")


def pareto(evaluated: list[Evaluated], cost: Cost) -> list[Evaluated]:
    """The non-dominated points (both objectives minimised), sorted by cost."""
    pts = sorted(evaluated, key=lambda e: (e.cost(cost), e.outcome.violation_minutes))
    front, best_v = [], math.inf
    for e in pts:
        if e.outcome.violation_minutes < best_v:
            front.append(e)
            best_v = e.outcome.violation_minutes
    return front


class _Evaluator:
    """Evaluates batches of candidates on one demand, split over worker processes (kept for the whole search)."""

    def __init__(self, demand: np.ndarray, model: WorkloadModel, warmup: int, step_s: int, workers: int):
        self.args = (np.asarray(demand, float), model, warmup, step_s)
        self.workers = workers
        self.pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None)
        self.sim_seconds = 0.0

    def __call__(self, cands: list[Candidate]) -> list[Outcome]:
        t0 = time.perf_counter()
        k = self.workers if self.pool is not None and len(cands) >= 2 * self.workers else 1
        chunks = [cands[i::k] for i in range(k)]
        if k == 1:
            parts = [_run(self.args, chunks[0])]
        else:
            parts = list(self.pool.map(_run, [self.args] * k, chunks))
        out: list[Outcome | None] = [None] * len(cands)
        for i, part in enumerate(parts):
            out[i::k] = part
        self.sim_seconds += time.perf_counter() - t0
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _run(args: tuple, cands: list[Candidate]) -> list[Outcome]:
    demand, model, warmup, step_s = args
    return evaluate(demand, [HPA(c.hpa, c.cpu_request) for c in cands], model=model, warmup=warmup, step_s=step_s)


def tune(demand: np.ndarray, *, model: WorkloadModel = WorkloadModel(), warmup: int = 1440, step_s: int = 60,
         cfg: TunerConfig = TunerConfig(), space: SearchSpace | None = None, method: Literal["nsga2", "random"] = "nsga2",
         baseline: Candidate | None = None, progress: Callable[[int, int], None] | None = None) -> TuneResult:
    """Search HPA settings and CPU request for `demand` (requests/s per step); `budget` evaluations in all.

    `baseline` (default: `default_candidate`, what a user gets untuned; pass the settings running now) is
    evaluated first, seeds the search, and is what the within_cost rule may not cost more than."""
    space = space or SearchSpace.for_demand(np.asarray(demand)[warmup:], model)
    t0 = time.perf_counter()
    state = random.getstate()
    random.seed(cfg.seed)
    ev = _Evaluator(demand, model, warmup, step_s, cfg.workers)
    try:
        default = baseline or default_candidate(space, model)
        evaluated: list[Evaluated] = []
        gens: list[dict] = []

        def run(cands: list[Candidate]) -> list[Evaluated]:
            got = [Evaluated(c, o) for c, o in zip(cands, ev(cands))]
            evaluated.extend(got)
            if progress:
                progress(len(evaluated), cfg.budget)
            return got

        if method == "random":
            _random(run, space, default, cfg)
        else:
            _nsga2(run, space, default, cfg, gens)
    finally:
        ev.close()
        random.setstate(state)
    minutes = evaluated[0].outcome.minutes
    base = next(e for e in evaluated if e.candidate is default)
    chosen, rule = choose(evaluated, budget_minutes=cfg.slo_budget * minutes, cost=cfg.cost, rule=cfg.rule,
                          baseline=base)
    return TuneResult(method, evaluated, pareto(evaluated, cfg.cost), chosen, rule, base, cfg.cost,
                      time.perf_counter() - t0, ev.sim_seconds, gens)


def _random(run: Callable, space: SearchSpace, default: Candidate, cfg: TunerConfig) -> None:
    """Uniform genomes (the default point first, as the tuner also starts from it), in batches of a population."""
    todo = [default] + [decode([random.random() for _ in GENES], space) for _ in range(cfg.budget - 1)]
    for i in range(0, len(todo), cfg.population):
        run(todo[i : i + cfg.population])


def _fitness_class():
    if not hasattr(creator, "AiopsTuneFitness"):
        creator.create("AiopsTuneFitness", base.Fitness, weights=(-1.0, -1.0))
        creator.create("AiopsTuneIndividual", list, fitness=creator.AiopsTuneFitness)
    return creator.AiopsTuneIndividual


def _nsga2(run: Callable, space: SearchSpace, default: Candidate, cfg: TunerConfig, gens: list[dict]) -> None:
    Ind = _fitness_class()
    n = len(GENES)
    mu = min(cfg.population, cfg.budget)

    def assess(pop: list) -> None:
        cands = [p.cand for p in pop]
        for p, e in zip(pop, run(cands)):
            p.fitness.values = (e.outcome.violation_minutes, e.cost(cfg.cost))

    pop = []
    for i in range(mu):
        ind = Ind([random.random() for _ in range(n)])
        ind.cand = default if i == 0 else decode(ind, space)
        if i == 0:
            ind[:] = _encode_default(space)
        pop.append(ind)
    assess(pop)
    pop = tools.selNSGA2(pop, mu)  # assigns the crowding distances selTournamentDCD needs
    spent = mu
    g = 0
    while spent < cfg.budget:
        lam = min(mu, cfg.budget - spent)
        parents = tools.selTournamentDCD(pop, len(pop))
        kids = [Ind(list(p)) for p in parents]
        while len(kids) < lam:
            kids.append(Ind(list(random.choice(pop))))
        kids = kids[:lam]
        for a, b in zip(kids[::2], kids[1::2]):
            if random.random() <= cfg.crossover:
                tools.cxSimulatedBinaryBounded(a, b, eta=cfg.eta, low=0.0, up=1.0)
        for k in kids:
            if random.random() <= cfg.mutation:
                tools.mutPolynomialBounded(k, eta=cfg.eta, low=0.0, up=1.0, indpb=1.0 / n)
            k.cand = decode(k, space)
        assess(kids)
        spent += len(kids)
        pop = tools.selNSGA2(pop + kids, mu)
        g += 1
        front = tools.sortNondominated(pop, len(pop), first_front_only=True)[0]
        gens.append({"generation": g, "evaluations": spent, "front_size": len(front),
                     "min_violation_minutes": min(p.fitness.values[0] for p in pop),
                     "min_cost": min(p.fitness.values[1] for p in pop)})


def _encode_default(space: SearchSpace) -> list[float]:
    """The genome closest to the default (used so its offspring start near it); its candidate stays exact."""
    t = (0.8 - space.target[0]) / (space.target[1] - space.target[0])
    return [min(1.0, max(0.0, t)), 0.0, 1.0, 0.0, 0.5, 0.2, 0.0, 1 / 6, 1.0, 0.0, 0.5]
