"""Every notebook runs top to bottom on data the flows' own functions produced (a small simulated cluster)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from aiops.featurize import build_features
from aiops.ingest import default_range, ingest_range
from aiops.settings import load_settings
from aiops.sources import make_source
from aiops.store import Store

pytestmark = [pytest.mark.integration]
NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
# what each notebook must show besides a plot (default: the series and the injected incidents)
EXPECTED = {"03_scaling.ipynb": ("violation_minutes", "HPA, 80 % CPU", "chosen:", "predictive: forecast-request_rate"),
            "04_cost.ipynb": ("held-out rows", "krr_simple", "vpa_target", "cpu_risk_mean", "/month", "gap")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("nbdata")
    settings = load_settings(data_dir=d, sim={"workloads": 6, "days": 2, "start": "2026-11-02T00:00:00Z"})
    source, store = make_source(settings), Store(d)
    start, end = default_range(settings)
    ingest_range(source, store, start, end, window=settings.ingest.window, step_s=60)
    store.write_table("labels/incidents", source.labels())
    build_features(store, step=timedelta(seconds=60))
    _train_and_detect(d)
    return d


def _train_and_detect(d):
    """What the train and detect flows do, through the same functions, with the fast candidates only."""
    from aiops.detection import detect
    from aiops.lifecycle import log_and_promote
    from aiops.tasks import incident_labels, load_panel, tasks
    from aiops.training import plan_holdout, train_candidate, usable

    settings = load_settings(data_dir=d, sim={"workloads": 6, "days": 2, "start": "2026-11-02T00:00:00Z"},
                             train={"forecasters": ["naive"], "detectors": ["isolation_forest"],
                                    "forecast_metrics": ["request_rate"], "detect_univariate": [],
                                    "holdout_hours": 6})
    store = Store(d)
    for t in tasks(settings):
        panel = load_panel(store, t, settings)
        labels = incident_labels(store, panel)
        holdout = plan_holdout(t, panel, settings)
        results = [train_candidate(t, n, panel, holdout, settings, labels) for n in t.candidates if not usable(t, n)]
        assert log_and_promote(settings, t, panel, holdout, results, labels).champion is not None
    assert all(not o.skipped for o in detect(settings))


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"), \
            f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, data_dir, monkeypatch):
    monkeypatch.setenv("AIOPS_DATA_DIR", str(data_dir))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(data_dir)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not drawn"
    text = " ".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    for want in EXPECTED.get(path.name, ("series", "memory_leak")):
        assert want in text, f"{path.name}: {want!r} not in its outputs"
