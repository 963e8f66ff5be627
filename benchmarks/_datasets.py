"""The real labelled datasets the detection benchmarks read: NAB, SMD and JumpStarter, checked before use.

Every file is verified against the datasets' `MANIFEST.sha256` (sha256) the first time it is read in a process; a
missing entry or a mismatch stops the benchmark with a `DatasetError` naming the file, so a figure is never computed
from data that differs from the published snapshot. The datasets are never copied into the repository: benchmarks
take the directory as `--datasets` (default `../shared/datasets` beside the repository).
See the datasets' README.md, sections 1 (NAB), 2 (SMD), 4 (JumpStarter) and the addendum on NAB detector outputs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aiops.errors import AiopsError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"


class DatasetError(AiopsError):
    """A dataset file is missing, not in the manifest, or differs from it."""


class Datasets:
    """The datasets directory and its manifest; `path(rel)` returns a verified file."""

    def __init__(self, root: str | Path = DEFAULT_DATASETS):
        self.root = Path(root).resolve()
        manifest = self.root / "MANIFEST.sha256"
        if not manifest.is_file():
            raise DatasetError(f"datasets: {manifest} not found; pass --datasets DIR, the directory holding "
                               "MANIFEST.sha256 and anomaly/ (default: ../shared/datasets beside the repository)")
        self.expected: dict[str, str] = {}
        for line in manifest.read_text().splitlines():
            if line.strip():
                digest, rel = line.split(maxsplit=1)
                self.expected[rel.strip().removeprefix("./")] = digest.lower()
        self._verified: set[str] = set()

    def path(self, rel: str) -> Path:
        """The file at `rel` (relative to the root), after checking its sha256 against the manifest."""
        rel = rel.removeprefix("./")
        p = self.root / rel
        if rel in self._verified:
            return p
        if rel not in self.expected:
            raise DatasetError(f"datasets: {rel} is not listed in {self.root / 'MANIFEST.sha256'}; only files "
                               "of the published snapshot are used")
        if not p.is_file():
            raise DatasetError(f"datasets: {p} is listed in the manifest but missing; restore the snapshot")
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != self.expected[rel]:
            raise DatasetError(f"datasets: {p} has sha256 {h.hexdigest()}, the manifest expects "
                               f"{self.expected[rel]}; the file was changed, restore it from the snapshot")
        self._verified.add(rel)
        return p

    def listed(self, prefix: str) -> list[str]:
        """Manifest entries under `prefix`, sorted."""
        return sorted(r for r in self.expected if r.startswith(prefix))


# --- NAB ---------------------------------------------------------------------------------------------------------

NAB = "anomaly/nab"


@dataclass(frozen=True)
class NabFile:
    """One NAB data file: `name` is `<category>/<file>.csv`, `frame` has columns timestamp, value."""

    name: str
    frame: pd.DataFrame
    windows: list[list[str]]


def nab_files(ds: Datasets) -> list[NabFile]:
    """The 58 NAB data files with their label windows (labels/combined_windows.json), sorted by name."""
    windows = json.loads(ds.path(f"{NAB}/labels/combined_windows.json").read_text())
    out = []
    for name in sorted(windows):
        frame = pd.read_csv(ds.path(f"{NAB}/data/{name}"))
        if list(frame.columns) != ["timestamp", "value"]:
            raise DatasetError(f"datasets: {NAB}/data/{name} has columns {list(frame.columns)}, expected "
                               "timestamp, value")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        out.append(NabFile(name, frame, windows[name]))
    return out


def nab_labelled(files: list[NabFile]):
    """Each file's scoring layout (models.evaluation.nab.LabelledFile)."""
    from models.evaluation.nab import label_file_by_time

    return [label_file_by_time(f.name, f.frame["timestamp"], f.windows) for f in files]


def nab_profiles(ds: Datasets):
    """NAB's three scoring profiles from config/profiles.json."""
    from models.evaluation.nab import load_profiles

    return load_profiles(ds.path(f"{NAB}/config/profiles.json"))


def nab_json(ds: Datasets, rel: str) -> dict:
    """A NAB JSON file, e.g. results/final_results.json or config/thresholds.json."""
    return json.loads(ds.path(f"{NAB}/{rel}").read_text())


def nab_result_detectors(ds: Datasets) -> list[str]:
    """Detectors whose per-row outputs are in results/ (results/<detector>/<category>/<detector>_<file>)."""
    names = {r.split("/")[3] for r in ds.listed(f"{NAB}/results/") if r.count("/") >= 5}
    return sorted(names)


def nab_result_scores(ds: Datasets, detector: str, files: list[NabFile]) -> list[np.ndarray]:
    """A published detector's anomaly_score column for each file, row-aligned with the data file."""
    out = []
    for f in files:
        cat, base = f.name.split("/")
        rel = f"{NAB}/results/{detector}/{cat}/{detector}_{base}"
        rel = rel + ".gz" if rel + ".gz" in ds.expected else rel
        r = pd.read_csv(ds.path(rel))
        if len(r) != len(f.frame) or "anomaly_score" not in r.columns:
            raise DatasetError(f"datasets: {rel} has {len(r)} rows and columns {list(r.columns)}; expected "
                               f"{len(f.frame)} rows with an anomaly_score column")
        if not (pd.to_datetime(r["timestamp"]).to_numpy() == f.frame["timestamp"].to_numpy()).all():
            raise DatasetError(f"datasets: {rel} timestamps do not match {NAB}/data/{f.name} row by row")
        out.append(r["anomaly_score"].to_numpy(dtype=np.float64))
    return out


def nab_published_file_scores(ds: Datasets, detector: str, profile: str) -> pd.DataFrame | None:
    """NAB's per-file scores for a detector and profile (File, Threshold, Score, TP, TN, FP, FN), if published."""
    rel = f"{NAB}/results/{detector}/{detector}_{profile}_scores.csv"
    rel = rel + ".gz" if rel + ".gz" in ds.expected else rel
    if rel not in ds.expected:
        return None
    frame = pd.read_csv(ds.path(rel))
    return frame[frame["File"].notna()].reset_index(drop=True)  # the last row is NAB's "Totals"


# --- SMD and JumpStarter -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """One machine or service: unlabelled train matrix, test matrix and the test's 0/1 point labels."""

    name: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray


def _matrix(ds: Datasets, rel: str) -> np.ndarray:
    # the publishers' values are float32 (SMD was written from float32 pickles); models compute in float64
    return pd.read_csv(ds.path(rel), header=None, dtype=np.float32).to_numpy(dtype=np.float64)


def _labels(ds: Datasets, rel: str, n: int) -> np.ndarray:
    y = pd.read_csv(ds.path(rel), header=None).iloc[:, 0].to_numpy()
    if len(y) != n or not np.isin(y, (0, 1)).all():
        raise DatasetError(f"datasets: {rel} should hold {n} labels of 0/1, received {len(y)} values "
                           f"{sorted(set(np.unique(y).tolist()))[:5]}")
    return y.astype(np.int8)


def _entities(ds: Datasets, base: str, train_ext: str, label_ext: str, limit: int | None) -> list[Entity]:
    names = [r[len(f"{base}/test/"):-len(train_ext)] for r in ds.listed(f"{base}/test/") if r.endswith(train_ext)]
    names.sort(key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])
    if not names:
        raise DatasetError(f"datasets: no test files under {base}/test/ in the manifest")
    out = []
    for name in names[:limit]:
        train = _matrix(ds, f"{base}/train/{name}{train_ext}")
        test = _matrix(ds, f"{base}/test/{name}{train_ext}")
        if train.shape[1] != test.shape[1]:
            raise DatasetError(f"datasets: {base} {name}: train has {train.shape[1]} columns, test "
                               f"{test.shape[1]}")
        out.append(Entity(name, train, test, _labels(ds, f"{base}/test_label/{name}{label_ext}", len(test))))
    return out


def smd(ds: Datasets, limit: int | None = None) -> list[Entity]:
    """SMD's 8 machines (38 metrics, min-max normalised by the publisher, 1-min rows); the first `limit` only."""
    return _entities(ds, "anomaly/smd", ".csv.gz", ".txt", limit)


def jumpstarter(ds: Datasets, dataset: str, limit: int | None = None) -> list[Entity]:
    """JumpStarter Dataset2 or Dataset3: 30 services, 19 raw (unnormalised) metrics, 5-min rows; the first `limit`."""
    if dataset not in ("Dataset2", "Dataset3"):
        raise ValueError(f"dataset: expected 'Dataset2' or 'Dataset3', received {dataset!r}")
    return _entities(ds, f"anomaly/jumpstarter/{dataset}", ".csv.gz", ".csv", limit)
