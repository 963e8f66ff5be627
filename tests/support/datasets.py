"""Where the shared real datasets are: `../shared/datasets` beside the repository, or AIOPS_DATASETS."""

from __future__ import annotations

import os
from pathlib import Path

DATASETS = Path(os.environ.get("AIOPS_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
NASA_HTTP = DATASETS / "workload" / "nasa_http" / "nasa_kennedy_requests_per_second.csv.gz"
