"""Settings of the optimisers (pure pydantic: `aiops.settings` embeds them without loading numpy or pandas)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class PlannerConfig(BaseModel):
    """How the planner turns demand into replicas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantile: Literal["p50", "p90", "p99"] = Field("p90", description="forecast quantile provisioned for")
    headroom: float = Field(0.1, ge=0, le=5, description="extra capacity on top of the quantile, as a fraction")
    burst: float = Field(0.0, ge=0, le=10, description=(
        "square-root staffing: beta extra replicas per sqrt of the R replicas the demand needs (R + beta*sqrt(R)), "
        "for bursts within a forecast step that grow like the square root of the load (Poisson-like arrivals)"))
    lead: timedelta = Field(timedelta(minutes=5), description="pod start-up plus node provisioning")
    scale_in_hold: timedelta = Field(timedelta(minutes=15), description="observed demand window scale-in respects")
    hold_statistic: Literal["max", "mean"] = Field("max", description=(
        "what of the observed demand over scale_in_hold the plan never goes below: its peak, or its level (the "
        "mean, staffed like a forecast: with headroom and burst)"))
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(50, ge=1)
    max_model_age: timedelta = Field(timedelta(days=2), description="older champions fall back to reactive")
    max_recent_error: float = Field(
        0.5, gt=0, description="fall back to reactive when the recent relative error of the median exceeds this")

    @model_validator(mode="after")
    def _ordered(self) -> "PlannerConfig":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) above max_replicas ({self.max_replicas})")
        return self



class PrescaleSettings(BaseModel):
    """What pre-scaling plans for, and how (`AIOPS_PRESCALE__*` once hooked into Settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field("request_rate", description="demand metric; its champion is forecast-<metric>")
    namespaces: tuple[str, ...] = Field(("*",), description="namespaces (glob patterns) to plan for")
    workloads: tuple[str, ...] = Field(("*",), description="workload names (glob patterns) to plan for")
    horizon_steps: int = Field(12, ge=1, le=2016, description="forecast horizon in steps of train.step_seconds")
    every: timedelta = Field(timedelta(minutes=15), description="time between runs: each covers until the next")
    history_hours: float = Field(24.0, gt=0, le=24 * 60, description="stored history the capacity is fitted on")
    error_window_hours: float = Field(24.0, gt=0, le=24 * 14, description="recent error: origins this far back")
    error_every_hours: float = Field(1.0, gt=0, description="recent error: spacing of the forecast origins")
    default_target_utilization: float = Field(
        0.7, gt=0, le=1, description="CPU utilisation a pod is planned for when no HPA states one")
    min_fit_points: int = Field(12, ge=3, description="fewest usable rows for the capacity fit")
    # The median forecast staffed with square-root headroom, held at the observed level for half an hour: what the
    # planner chose on NASA-HTTP's validation week (benchmarks/scaling.py), where it halved the HPA's violations
    # on later weeks when under an HPA; the same 5-minute forecast step as `train.step_seconds`.
    planner: PlannerConfig = Field(default_factory=lambda: PlannerConfig(
        quantile="p50", headroom=0.0, burst=1.7, hold_statistic="mean", scale_in_hold=timedelta(minutes=30)))


class TuneSettings(BaseModel):
    """What the HPA tuner tunes, on how much replayed demand, and how hard it searches (`AIOPS_TUNE__*`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field("request_rate", description="demand metric replayed through the simulator")
    namespaces: tuple[str, ...] = Field(("*",), description="namespaces (glob patterns) whose HPAs are tuned")
    workloads: tuple[str, ...] = Field(("*",), description="workload names (glob patterns)")
    max_workloads: int = Field(4, ge=1, description="tune at most this many HPAs per run, the busiest first")
    history_days: float = Field(7.0, gt=0, le=90, description="stored demand replayed (the latest days)")
    warmup_hours: float = Field(6.0, ge=0, le=48, description="replayed first, not scored (settles every candidate)")
    budget: int = Field(160, ge=8, description="simulator evaluations per workload")
    population: int = Field(16, ge=4, multiple_of=4)
    seed: int = 0
    workers: int = Field(2, ge=1, le=64)
    cost: Literal["replica_hours", "core_hours", "node_cost"] = "replica_hours"
    rule: Literal["within_cost", "slo_budget"] = Field(
        "within_cost", description="within_cost: fewest violation minutes at no more cost than the current settings; "
        "slo_budget: the cheapest within slo_budget")
    slo_budget: float = Field(0.001, ge=0, le=1, description="share of replayed minutes allowed in violation")
    slo_latency_s: float = Field(0.5, gt=0, description="p99 latency objective the candidates are judged on")
    service_time_s: float = Field(0.05, gt=0, description="mean latency of a request on an idle pod (assumed)")
    startup_delay_s: float = Field(30.0, ge=0, description="pod start-up to Ready (assumed)")
    min_gain: float = Field(0.05, ge=0, le=1, description="propose only when the chosen point improves the current "
                            "settings' violation minutes or cost by at least this share")


class Prices(BaseModel):
    """Unit prices of allocated resources. The field names match `allocation_cost`'s keywords, so
    `opencost.allocation_cost(requests, usage, step=..., **prices.model_dump())` works."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_price_per_core_hour: float = Field(
        0.031611, gt=0, description="$ per core-hour; default: OpenCost configs/default.json (GCP us-central1)")
    memory_price_per_gib_hour: float = Field(
        0.004237, gt=0, description="$ per GiB-hour; default: OpenCost configs/default.json (GCP us-central1)")


class RightsizeConfig(BaseModel):
    """Settings of `aiops.optimize.rightsize.rightsize`; every field is a knob the caller may sweep (the CPU risk target is the dial)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_min_millicores: int = Field(10, ge=1, description="smallest CPU candidate, millicores")
    cpu_max_cores: float = Field(64.0, gt=0, description="largest CPU candidate (the largest node), cores")
    cpu_ratio: float = Field(1.02, ge=1.001, le=1.5, description="growth between CPU candidates (geometric grid)")
    memory_min_mib: int = Field(32, ge=8, description="smallest memory candidate, MiB")
    memory_max_gib: float = Field(256.0, gt=0, description="largest memory candidate (the largest node), GiB")
    memory_ratio: float = Field(1.02, ge=1.001, le=1.5, description="growth between memory candidates")
    cpu_risk: dict[str, float] = Field(
        default_factory=lambda: {"default": 0.05},
        description="class -> target share of intervals with CPU usage above the request, per workload, out of "
                    "sample; series without a class use 'default'")
    window: timedelta = Field(timedelta(days=14), description="recent history the CPU request is read from "
                              "(the backtest trains on windows of the same length)")
    horizon: timedelta = Field(timedelta(days=7), description="how long the recommendation will be used; the "
                               "backtest measures risk over this long after each split")
    n_splits: int = Field(6, ge=1, le=50, description="backtest splits spread over the history")
    prior_splits: float = Field(2.0, ge=0, description="weight, in splits, of the class's mean risk curve against "
                                "a workload's own backtest")
    min_points: int = Field(100, ge=1, description="samples needed to recommend, and per backtest train/test part")
    max_headroom: float = Field(3.0, ge=1, description="largest CPU candidate as a multiple of the history's peak")
    memory_quantile: float = Field(0.999, ge=0.5, le=1.0, description="memory request = this quantile of the "
                                   "history's memory samples x (1 + memory_margin + OOM bumps); 1 = the peak")
    memory_margin: float = Field(0.0, ge=0, description="margin on the memory request's quantile")
    memory_limit_margin: float = Field(0.5, ge=0, description="memory limit >= the history's peak x (1 + this + "
                                       "OOM bumps): the limit carries the safety, the request the cost")
    oom_margin_step: float = Field(0.2, ge=0, description="added to both memory margins per OOM kill of the series")
    memory_limit_ratio: float = Field(1.0, ge=1, description="memory limit >= request x this")
    cpu_limit_ratio: float | None = Field(None, ge=1, description="CPU limit / request; None = no limit (as KRR)")
    unmet_cpu_price_per_core_hour: float = Field(
        0.0, ge=0, description="price put on a core-hour of usage above the request (recent window); 0 = pure cost")
    budgets: dict[str, float] = Field(default_factory=dict, description="namespace -> max cost, $ per month")
    cpu_quota_cores: dict[str, float] = Field(default_factory=dict, description="namespace -> max requested cores")
    memory_quota_gib: dict[str, float] = Field(default_factory=dict, description="namespace -> max requested GiB")
    prices: Prices = Field(default_factory=Prices, description="unit prices (OpenCost default sheet)")
    time_limit_s: float = Field(30.0, gt=0, description="CBC time limit, seconds")
    gap: float = Field(1e-4, ge=0, lt=1, description="CBC relative optimality gap")

    @field_validator("cpu_risk")
    @classmethod
    def _targets(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: t for k, t in v.items() if not 0 < t < 1}
        if not v or bad:
            raise ValueError(f"cpu_risk: targets are shares in (0, 1), e.g. {{'default': 0.05}}; got {v}")
        return v

    @field_validator("budgets", "cpu_quota_cores", "memory_quota_gib")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: b for k, b in v.items() if not b >= 0}
        if bad:
            raise ValueError(f"limits must be >= 0 per namespace; got {bad}")
        return v


# --- node mix (aiops.optimize.nodemix) ---------------------------------------------------------------------------

def gke_reserved_cpu(cores: float) -> float:
    """System-reserved CPU (cores) by GKE's published rule: 6 % of the first core, 1 % of the next, 0.5 % of the
    next 2, 0.25 % above 4 (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes)."""
    tiers, left, out = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025)), cores, 0.0
    for size, rate in tiers:
        part = min(left, size)
        out, left = out + part * rate, left - part
    return out


def gke_reserved_memory_gib(gib: float) -> float:
    """System-reserved memory (GiB) by GKE's rule: 255 MiB below 1 GiB, else 25 % of the first 4 GiB, 20 % of the
    next 4, 10 % of the next 8, 6 % of the next 112, 2 % above 128; plus the 100 MiB eviction threshold."""
    if gib < 1:
        return (255 + 100) / 1024
    tiers, left, out = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02)), gib, 0.0
    for size, rate in tiers:
        part = min(left, size)
        out, left = out + part * rate, left - part
    return out + 100 / 1024


class NodeType(BaseModel):
    """An instance type: capacity, price and what the kubelet keeps for the system (allocatable = capacity -
    reserved; the reserved amounts default to GKE's published rule, EKS reserves similar amounts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., min_length=1, description="instance type, e.g. m5.xlarge")
    cpu_cores: float = Field(..., gt=0, description="vCPUs of the instance")
    memory_gib: float = Field(..., gt=0, description="memory of the instance, GiB")
    price_per_hour: float = Field(..., ge=0, description="on-demand price, USD per hour")
    reserved_cpu_cores: float | None = Field(None, ge=0, description="system-reserved CPU; None = GKE's rule")
    reserved_memory_gib: float | None = Field(None, ge=0, description="system-reserved memory incl. the eviction "
                                              "threshold, GiB; None = GKE's rule")
    max_pods: int | None = Field(None, ge=1, description="pod slots of this type; None = the config's "
                                 "max_pods_per_node")
    max_nodes: int | None = Field(None, ge=0, description="most nodes of this type; None = no limit")

    @property
    def allocatable_cpu_cores(self) -> float:
        r = self.reserved_cpu_cores
        return self.cpu_cores - (gke_reserved_cpu(self.cpu_cores) if r is None else r)

    @property
    def allocatable_memory_gib(self) -> float:
        r = self.reserved_memory_gib
        return self.memory_gib - (gke_reserved_memory_gib(self.memory_gib) if r is None else r)

    @model_validator(mode="after")
    def _room_left(self) -> "NodeType":
        if self.allocatable_cpu_cores <= 0 or self.allocatable_memory_gib <= 0:
            raise ValueError(f"{self.name}: reserved CPU/memory leave nothing allocatable "
                             f"({self.allocatable_cpu_cores:g} cores, {self.allocatable_memory_gib:g} GiB)")
        return self


def _t(name: str, cpu: float, gib: float, price: float) -> NodeType:
    return NodeType(name=name, cpu_cores=cpu, memory_gib=gib, price_per_hour=price)


# AWS EC2 on-demand, US East (N. Virginia), Linux, USD per hour (aws.amazon.com/ec2/pricing/on-demand; the m5/c5/r5
# list prices have not changed since their launch in 2017-2018; the c5 ones also appear in the EC2 Auto Scaling
# user guide's instance-weights example). The first four are the simulator's INSTANCE_TYPES. Read 2026-11-25.
DEFAULT_CATALOG: tuple[NodeType, ...] = (
    _t("m5.large", 2, 8, 0.096), _t("m5.xlarge", 4, 16, 0.192), _t("c5.2xlarge", 8, 16, 0.34),
    _t("r5.xlarge", 4, 32, 0.252),
    _t("m5.2xlarge", 8, 32, 0.384), _t("m5.4xlarge", 16, 64, 0.768), _t("m5.8xlarge", 32, 128, 1.536),
    _t("c5.xlarge", 4, 8, 0.17), _t("c5.4xlarge", 16, 32, 0.68), _t("c5.9xlarge", 36, 72, 1.53),
    _t("r5.large", 2, 16, 0.126), _t("r5.2xlarge", 8, 64, 0.504), _t("r5.4xlarge", 16, 128, 1.008),
    _t("r5.8xlarge", 32, 256, 2.016),
)


class NodeMixConfig(BaseModel):
    """Settings of `pack`: the catalog the node mix is chosen from and how long CBC may search."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog: tuple[NodeType, ...] = Field(DEFAULT_CATALOG, description="instance types to choose from (AWS "
                                          "us-east-1 on-demand m5/c5/r5 by default)")
    max_pods_per_node: int = Field(110, ge=1, description="pod slots per node (the kubelet's default maxPods)")
    time_limit_s: float = Field(30.0, gt=0, description="wall-clock limit for the whole solve (FFD, column "
                                "generation and CBC), seconds")
    lp_share: float = Field(0.7, gt=0, le=0.85, description="share of the time limit column generation may use "
                            "(it stops earlier once the LP is solved); then the LP rounding (up to 0.1 of the limit) "
                            "and CBC (the rest)")
    gap: float = Field(0.01, ge=0, lt=1, description="relative optimality gap at which CBC stops")
    hours_per_month: float = Field(730.0, gt=0, description="hours in a month (OpenCost's 730)")

    @field_validator("catalog")
    @classmethod
    def _unique(cls, v: tuple[NodeType, ...]) -> tuple[NodeType, ...]:
        names = [t.name for t in v]
        if not v or len(set(names)) < len(names):
            raise ValueError(f"catalog: need at least one node type and unique names, got {names}")
        return v


class CostSettings(BaseModel):
    """What the cost optimizer right-sizes, from how much stored usage, and what it proposes (`AIOPS_COST__*`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespaces: tuple[str, ...] = Field(("*",), description="namespaces (glob patterns) whose containers are sized")
    workloads: tuple[str, ...] = Field(("*",), description="workload names (glob patterns)")
    history_days: float = Field(28.0, gt=0, le=90, description="stored usage the recommendation is read from")
    classes: dict[str, str] = Field(
        default_factory=dict, description="'namespace/workload' glob pattern -> workload class (a key of "
        "rightsize.cpu_risk); the first matching pattern wins, unmatched workloads are 'default'")
    rightsize: RightsizeConfig = Field(
        default_factory=RightsizeConfig, description="the right-sizing model: CPU risk target per class (the dial), "
        "memory rule, grids, namespace budgets and quotas, prices")
    min_saving_per_month: float = Field(
        1.0, ge=0, description="propose a container's change only if it moves its monthly cost by at least this "
        "many dollars (a raise for risk is always proposed)")
    pool_label: str = Field("eks.amazonaws.com/nodegroup", min_length=1,
                            description="node label naming a node's pool (GKE: cloud.google.com/gke-nodepool)")
    pool_namespace: str = Field("default", description="namespace of the node pools' MachineDeployments")
    node_headroom: int = Field(1, ge=0, le=10, description="nodes added to a pool's packed maximum")
    nodes: NodeMixConfig = Field(default_factory=NodeMixConfig, description="node mix: the instance catalog "
                                 "(capacities and prices) and the solver's time limit and gap")
