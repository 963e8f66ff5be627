"""The whole data plane once, end to end: ingest then features (later issues add train, detect, act)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.features import FeaturesParams, features
from flows.ingest import IngestParams, ingest


class PipelineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")
    force: bool = Field(False, description="re-ingest windows already stored")


@flow(name="pipeline", log_prints=True)
def pipeline(params: PipelineParams = PipelineParams()) -> dict:
    ingested = ingest(IngestParams(config_file=params.config_file, force=params.force))
    built = features(FeaturesParams(config_file=params.config_file))
    return {"ingest": ingested, "features": built}
