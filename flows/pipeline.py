"""The whole pipeline once, end to end: ingest, features, train and promote models, detect anomalies, then act:
pre-scale ahead of the forecast demand, tune the busiest HPAs and right-size requests and node pools, all through
the actuator.

On the embedded default (the simulator, no kubeconfig) the act steps talk to an in-process simulated API that
continues the ingested cluster (`aiops.sim.serve_local.local_api`); the actuator's mode decides whether anything
is applied (dry-run by default).
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.detect import DetectParams, detect
from flows.features import FeaturesParams, features
from flows.ingest import IngestParams, ingest
from flows.train import TrainParams, train


class PipelineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")
    force: bool = Field(False, description="re-ingest windows already stored")
    models: bool = Field(True, description="train, promote and detect after the data plane")
    act: bool = Field(True, description="after the models: pre-scale, tune and right-size through the actuator")


@flow(name="pipeline", log_prints=True)
def pipeline(params: PipelineParams = PipelineParams()) -> dict:
    ingested = ingest(IngestParams(config_file=params.config_file, force=params.force))
    built = features(FeaturesParams(config_file=params.config_file))
    out = {"ingest": ingested, "features": built}
    if params.models:
        out["train"] = train(TrainParams(config_file=params.config_file))
        out["detect"] = detect(DetectParams(config_file=params.config_file))
        if params.act:
            out.update(_act(params.config_file))
    return out


def _act(config_file: str | None) -> dict:
    from aiops.settings import load_settings
    from aiops.sim.serve_local import local_api
    from flows.cost import CostParams, cost
    from flows.prescale import PrescaleParams, prescale
    from flows.tune import TuneParams, tune

    with local_api(load_settings(config_file)) as s:
        kc = str(s.kubeconfig) if s.kubeconfig else None
        return {"prescale": prescale(PrescaleParams(config_file=config_file, kubeconfig=kc)),
                "tune": tune(TuneParams(config_file=config_file, kubeconfig=kc)),
                "cost": cost(CostParams(config_file=config_file, kubeconfig=kc))}
