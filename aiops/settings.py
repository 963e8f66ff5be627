"""The one typed settings object of aiops, read from the environment and an optional file.

Built once at the entry point (CLI, flow, notebook) and passed down: nothing reads the environment at import
time. Environment variables are `AIOPS_<FIELD>`, nested with `__` (`AIOPS_SIM__SEED=7`). The optional file is
TOML or YAML, named by `AIOPS_CONFIG` or `--config`. A bad value fails here, naming the field and what was
expected.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from aiops.errors import SettingsError

ENV_PREFIX = "AIOPS_"
CONFIG_ENV = "AIOPS_CONFIG"


class SimSettings(BaseModel):
    """The simulated cluster of the embedded default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workloads: int = Field(12, ge=1, le=5000, description="number of workloads (deployments) to simulate")
    namespaces: int = Field(3, ge=1, le=200, description="number of namespaces the workloads are spread over")
    days: float = Field(4.0, gt=0, le=400, description="days of history the simulator produces")
    step_seconds: int = Field(60, ge=1, le=3600, description="simulation step in seconds")
    seed: int = Field(7, ge=0, description="seed: the same seed gives the same cluster and the same data")
    start: datetime | None = Field(
        None, description="first simulated instant (UTC); default: midnight UTC `days` days before today"
    )
    incidents: bool = Field(True, description="inject incidents (spike, leak, crash loop, ...) with labels")
    scrape_glitches: int = Field(
        1, ge=0, le=1000,
        description="exporter glitches to inject: one series' samples sent twice in one window, as a retried "
        "scrape does; validation quarantines those batches (the demo shows it)",
    )
    replay_trace: Path | None = Field(
        None, description="CSV(.gz) trace whose second column drives the first workload's demand (replay mode)"
    )

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return v

    def resolved_start(self, now: datetime | None = None) -> datetime:
        if self.start is not None:
            return self.start.astimezone(timezone.utc)
        now = now or datetime.now(timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=int(-(-self.days // 1)))


class IngestSettings(BaseModel):
    """How ingestion cuts time into windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_hours: float = Field(6.0, gt=0, le=24 * 7, description="length of one ingest window in hours")
    step_seconds: int = Field(60, ge=1, le=3600, description="resolution of ingested series in seconds")
    workers: int = Field(2, ge=1, le=32, description="batches of windows processed at once (validation overlaps writing)")
    batch_windows: int = Field(
        4, ge=1, le=96, description="consecutive windows validated together (a validation's cost is mostly per run)"
    )
    lookback_hours: float = Field(
        24.0, gt=0, le=24 * 400, description="live sources: how far back a run looks for windows not yet stored"
    )

    @field_validator("window_hours")
    @classmethod
    def _divides_day(cls, v: float) -> float:
        # windows must tile days so that a window never straddles two day partitions
        if v <= 24 and (24 / v) != int(24 / v):
            raise ValueError("must divide 24 hours evenly (e.g. 1, 2, 3, 4, 6, 8, 12, 24)")
        if v > 24 and v % 24:
            raise ValueError("above 24 hours must be a whole number of days")
        return v

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)


class TrainSettings(BaseModel):
    """What the train and detect flows learn, how they are judged, and which candidates compete."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step_seconds: int = Field(300, ge=1, le=3600, description="models see series resampled to this step")
    forecast_metrics: tuple[str, ...] = Field(
        ("request_rate", "cpu_usage"), description="one forecasting task (registered model forecast-<metric>) each")
    forecasters: tuple[str, ...] = Field(
        ("naive", "seasonal_naive", "arima", "prophet", "gbm", "lstm"),
        description="candidate forecasters (catalog names); seasonal_naive is always trained as the baseline")
    horizon_steps: int = Field(12, ge=1, le=2016, description="forecast horizon judged on the holdout, in steps")
    detect_metrics: tuple[str, ...] = Field(
        ("request_rate", "latency_p99", "cpu_usage", "memory_working_set", "restarts"),
        description="metrics the multivariate detector (detect-workload) scores together per workload")
    detect_univariate: tuple[str, ...] = Field(
        ("latency_p99",), description="one univariate detection task (detect-<metric>) each")
    detectors: tuple[str, ...] = Field(
        ("robust_mad", "isolation_forest", "autoencoder", "forecast_residual", "likelihood"),
        description="candidate detectors (catalog names); robust_mad is always trained as the baseline")
    holdout_hours: float = Field(12.0, gt=0, description="the last hours of data, kept out of fitting, to judge on")
    origin_every_hours: float = Field(1.0, gt=0, description="spacing of forecast origins in the holdout")
    threshold: float = Field(
        0.999, gt=0, lt=1, description="calibrated score above which a point is an anomaly (the post-step)")
    min_improvement: float = Field(
        0.0, ge=0, lt=1, description="relative gain a challenger needs over the champion to take its place")
    model_configs: dict[str, dict] = Field(
        default_factory=lambda: {"gbm": {"max_horizon": 24, "num_boost_round": 150, "origins_per_series": 120},
                                 "lstm": {"max_horizon": 24},
                                 # a week of past scores (not a month): the detect flow reads that much context
                                 "likelihood": {"history": 2016}},
        description="config overrides per candidate (the defaults of each model suit months of history; these "
        "suit the demo's days)")
    workers: int = Field(2, ge=1, le=32, description="candidates trained at once")


from aiops.actuator.policy import ActuatorSettings  # noqa: E402  (pure pydantic, no client imports)
from aiops.optimize.config import CostSettings, PrescaleSettings, TuneSettings  # noqa: E402  (pure pydantic)


class Settings(BaseSettings):
    """Every switch of aiops. Field descriptions double as help text."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    data_dir: Path = Field(Path("data"), description="where ingested data, features and local state live")
    cluster_name: str = Field(
        "sim", min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="the `cluster` label of every series (a DNS label)",
    )
    source: Literal["simulator", "prometheus"] = Field("simulator", description="where metrics are read from")
    prometheus_url: AnyHttpUrl = Field("http://127.0.0.1:9090", description="Prometheus base URL")
    prometheus_timeout_s: float = Field(30.0, gt=0, le=600, description="timeout of one Prometheus query")
    kubeconfig: Path | None = Field(None, description="kubeconfig file; default: the simulator's own")
    kube_context: str | None = Field(None, description="kubeconfig context; default: the file's current one")
    prefect_api_url: AnyHttpUrl | None = Field(
        None, description="Prefect server API URL; unset: embedded Prefect on SQLite under data_dir"
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; unset: SQLite under data_dir (sqlite:///<data_dir>/mlflow.db)"
    )
    mlflow_artifact_root: str | None = Field(
        None, description="where a local MLflow store keeps model artifacts (path or URI); unset: mlruns/ beside "
        "data_dir. Ignored with an MLflow server, which stores artifacts itself (--artifacts-destination)"
    )
    sim: SimSettings = Field(default_factory=SimSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    actuator: ActuatorSettings = Field(default_factory=ActuatorSettings)
    prescale: PrescaleSettings = Field(default_factory=PrescaleSettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)
    cost: CostSettings = Field(default_factory=CostSettings)

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.expanduser().is_file():
            raise ValueError(f"file {v} does not exist")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # precedence: explicit arguments, then environment, then the config file
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        cfg = _config_file.get()
        if cfg is not None:
            reader = TomlConfigSettingsSource if cfg.suffix == ".toml" else YamlConfigSettingsSource
            sources.append(reader(settings_cls, cfg))
        return tuple(sources)

    # derived locations, so every module agrees on where things live
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def resolved_actuator_db(self) -> str:
        url = self.actuator.database_url
        return url.get_secret_value() if url is not None else f"sqlite:///{(self.state_dir / 'actuator.db').resolve()}"

    @property
    def resolved_kubeconfig(self) -> Path:
        """The kubeconfig the actuator uses: `kubeconfig`, else the one `aiops sim serve` writes."""
        return self.kubeconfig.expanduser() if self.kubeconfig is not None else self.state_dir / "kubeconfig"

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def resolved_mlflow_artifacts(self) -> str | None:
        """Artifact location for new experiments: None when a tracking server owns the artifacts."""
        if self.mlflow_tracking_uri and self.mlflow_tracking_uri.startswith(("http://", "https://")):
            return None
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        return (self.data_dir.resolve().parent / "mlruns").as_uri()


class _ConfigFile:
    """The config file chosen for the current `load` call (pydantic-settings asks for sources on a classmethod)."""

    path: Path | None = None

    def get(self) -> Path | None:
        return self.path


_config_file = _ConfigFile()


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from overrides, the environment (`AIOPS_*`) and an optional TOML/YAML file.

    Raises SettingsError naming each bad field, the value given and what was expected.
    """
    cfg = config_file or os.environ.get(CONFIG_ENV) or None
    path = Path(cfg).expanduser() if cfg else None
    if path is not None:
        if not path.is_file():
            raise SettingsError(f"config file {path}: does not exist (set by --config or {CONFIG_ENV})")
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise SettingsError(f"config file {path}: expected a .toml, .yaml or .yml file, got {path.suffix!r}")
    _config_file.path = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path)) from None
    finally:
        _config_file.path = None


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        field = ".".join(loc)
        env = ENV_PREFIX + "__".join(p.upper() for p in loc)
        given = err.get("input")
        given_s = "" if isinstance(given, dict) else f", got {given!r}"
        lines.append(f"  {field} (env {env}): {err['msg']}{given_s}")
    if path is not None:
        lines.append(f"  (settings file: {path})")
    return "\n".join(lines)
