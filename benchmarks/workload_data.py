"""Real workload traces as panel frames (`series`, `ts`, value columns) for the forecasting benchmarks.

Data comes from `../shared/datasets` (passed in, never copied into the repository); see its README.md, sections 5
(Bitbrains GWA-T-12 "Rnd") and 6 (NASA-HTTP). Every file read is first checked against `MANIFEST.sha256`.

- `bitbrains(root, vms=range(1, 101))`: per VM, `cpu_usage_mhz` and `memory_usage_kb` on a regular 5-minute grid.
  Rows are sorted and de-duplicated by (vm_id, timestamp_s) (the archive has repeats and back-steps), averaged into
  5-minute buckets (left-labelled, anchored at the epoch), and gaps up to `max_gap` buckets are filled by linear
  interpolation; longer gaps stay NaN so an evaluation never scores invented values.
- `split_month(frame, "2013-09")`: the rows before that calendar month (UTC) and the rows in it.
- `nasa_http(root)`: request counts per 5 minutes; `train` is July 1995, `test` is August after the
  Hurricane-Erin outage (01/Aug 14:52:01 to 03/Aug 04:36:13 EDT, which is zeros in the file, not zero demand).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

BITBRAINS_FILES = ("rnd_2013-07.csv.gz", "rnd_2013-08.csv.gz", "rnd_2013-09.csv.gz")
NASA_FILE = "nasa_kennedy_requests_per_second.csv.gz"
STEP = pd.Timedelta(minutes=5)
# the August segment of the NASA file starts here (README section 6): July 28 13:32:25 -> August 1 is not in it
NASA_AUGUST_ROW = 2_381_544
NASA_AUGUST_START = pd.Timestamp("1995-08-01 00:00:01-04:00").tz_convert("UTC")
NASA_OUTAGE = (pd.Timestamp("1995-08-01 14:52:01-04:00").tz_convert("UTC"),
               pd.Timestamp("1995-08-03 04:36:13-04:00").tz_convert("UTC"))


def verify(root: str | Path, relpath: str) -> Path:
    """The path of `relpath` under the datasets `root`, after checking its SHA-256 against MANIFEST.sha256."""
    root = Path(root)
    manifest = root / "MANIFEST.sha256"
    if not manifest.is_file():
        raise FileNotFoundError(f"datasets root {root}: no MANIFEST.sha256; pass the shared datasets directory")
    expected = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        expected[name.removeprefix("./")] = digest
    if relpath not in expected:
        raise FileNotFoundError(f"{relpath}: not listed in {manifest}")
    path = root / relpath
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != expected[relpath]:
        raise ValueError(f"{path}: SHA-256 {h.hexdigest()} does not match the manifest ({expected[relpath]})")
    return path


def _fill_short_gaps(values: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """Linear interpolation inside NaN runs of at most `max_gap` rows; longer runs and the edges stay NaN."""
    out = values.copy()
    for c in out.columns:
        s = out[c]
        isna = s.isna().to_numpy()
        if not isna.any():
            continue
        run_id = np.cumsum(~isna)  # rows of one NaN run share the id of the observed row before them
        run_len = pd.Series(isna.astype(int)).groupby(run_id).transform("sum").to_numpy()
        filled = s.interpolate(method="linear", limit_area="inside")
        keep = isna & (run_len <= max_gap)
        out[c] = np.where(keep, filled.to_numpy(), s.to_numpy())
    return out


def _regular(frame: pd.DataFrame, cols: list[str], max_gap: int) -> pd.DataFrame:
    """Per series: mean per 5-minute bucket on a complete grid, short gaps interpolated."""
    frame = frame.assign(ts=frame["ts"].dt.floor(STEP))
    agg = frame.groupby(["series", "ts"], sort=True)[cols].mean()
    pieces = []
    for sid, g in agg.groupby(level=0, sort=False):
        g = g.droplevel(0)
        g = g.reindex(pd.date_range(g.index.min(), g.index.max(), freq=STEP))
        g = _fill_short_gaps(g, max_gap)
        g.index.name = "ts"
        pieces.append(g.reset_index().assign(series=sid))
    return pd.concat(pieces, ignore_index=True)[["series", "ts", *cols]]


def bitbrains(root: str | Path, vms: Iterable[int] = range(1, 101), *, max_gap: int = 6,
              columns: tuple[str, ...] = ("cpu_usage_mhz", "memory_usage_kb")) -> pd.DataFrame:
    """Bitbrains Rnd VMs July-September 2013 on a 5-minute grid: columns series ("vm<id>"), ts (UTC), `columns`.

    `max_gap`: longest run of empty 5-minute buckets filled by interpolation (default 6 = 30 minutes).
    """
    wanted = set(int(v) for v in vms)
    parts = []
    for name in BITBRAINS_FILES:
        path = verify(root, f"workload/bitbrains_rnd/{name}")
        df = pd.read_csv(path, usecols=["vm_id", "timestamp_s", *columns])
        parts.append(df[df["vm_id"].isin(wanted)])
    raw = pd.concat(parts, ignore_index=True)
    missing = sorted(wanted - set(raw["vm_id"].unique()))
    if missing:
        raise ValueError(f"vms: {missing[:10]} are not in the Bitbrains subset (VMs 1-100)")
    raw = raw.sort_values(["vm_id", "timestamp_s"], kind="stable").drop_duplicates(["vm_id", "timestamp_s"])
    raw["ts"] = pd.to_datetime(raw["timestamp_s"], unit="s", utc=True)
    raw["series"] = "vm" + raw["vm_id"].astype(str).str.zfill(3)
    return _regular(raw[["series", "ts", *columns]], list(columns), max_gap)


def split_month(frame: pd.DataFrame, month: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows before calendar `month` ("YYYY-MM", UTC), rows within it)."""
    start = pd.Timestamp(month + "-01", tz="UTC")
    end = start + pd.offsets.MonthBegin(1)
    ts = frame["ts"]
    return (frame[ts < start].reset_index(drop=True),
            frame[(ts >= start) & (ts < end)].reset_index(drop=True))


def panel(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """One value column of a loader's frame as a univariate panel frame (series, ts, value)."""
    return frame[["series", "ts", column]].rename(columns={column: "value"})


def nasa_http(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NASA-HTTP request counts per 5 minutes as (train, test) panel frames with series "nasa", column `value`.

    train: July 1995 (1995-07-01 04:00 to 1995-07-28 17:30 UTC, where the July log ends).
    test: August from the first whole 5-minute bucket after the outage to the end of the log.
    """
    path = verify(root, f"workload/nasa_http/{NASA_FILE}")
    raw = pd.read_csv(path)
    ts = pd.to_datetime(raw["unix_s"], unit="s", utc=True)
    counts = raw["requests"].astype(np.int64)
    july = pd.DataFrame({"ts": ts[:NASA_AUGUST_ROW], "requests": counts[:NASA_AUGUST_ROW]})
    aug = pd.DataFrame({"ts": ts[NASA_AUGUST_ROW:], "requests": counts[NASA_AUGUST_ROW:]})
    if aug["ts"].iloc[0] != NASA_AUGUST_START:
        raise ValueError(f"{path}: row {NASA_AUGUST_ROW} is {aug['ts'].iloc[0]}, expected {NASA_AUGUST_START}")

    def per_bucket(part: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
        part = part[part["ts"] >= start]
        b = part.assign(ts=part["ts"].dt.floor(STEP)).groupby("ts")["requests"].agg(["sum", "size"])
        # a partial bucket at either end (fewer seconds than 300) would read as a drop in demand
        b = b[b["size"] >= 290]
        return pd.DataFrame({"series": "nasa", "ts": b.index, "value": b["sum"].to_numpy(np.float64)})

    train = per_bucket(july, july["ts"].iloc[0].ceil(STEP))
    test = per_bucket(aug, NASA_OUTAGE[1].ceil(STEP))
    return train.reset_index(drop=True), test.reset_index(drop=True)
