"""The whole pipeline once, end to end: ingest, features, train and promote models, detect anomalies.

(Later issues add the actions: pre-scaling, tuning, right-sizing.)
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


@flow(name="pipeline", log_prints=True)
def pipeline(params: PipelineParams = PipelineParams()) -> dict:
    ingested = ingest(IngestParams(config_file=params.config_file, force=params.force))
    built = features(FeaturesParams(config_file=params.config_file))
    out = {"ingest": ingested, "features": built}
    if params.models:
        out["train"] = train(TrainParams(config_file=params.config_file))
        out["detect"] = detect(DetectParams(config_file=params.config_file))
    return out
