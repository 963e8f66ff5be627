"""The one input shape every model takes: a panel of series, checked once at the door.

A panel frame is long: a `series` column (any hashable id, kept as str), a `ts` column (datetimes; naive ones are
read as UTC) and one or more numeric value columns (`value` for a univariate series). Models never see the frame:
`to_panel` checks it and hands them a `Panel` of per-series NumPy arrays on one regular grid, with gaps either kept
as NaN (models that handle missing values) or interpolated (the others). Every refusal is a SchemaError that names
the input, the series, what was expected and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

KEY: tuple[str, str] = ("series", "ts")


@dataclass(frozen=True)
class Panel:
    """Checked series, sorted by id, each on the common grid `step` (or as sampled when `step` is None).

    `values[i]` has shape (len(index[i]), len(columns)), float64; NaN marks a gap only when the model handles
    missing values. `observed[i]` is False where the input had no value (a gap row or a NaN), before any filling.
    """

    ids: tuple[str, ...]
    columns: tuple[str, ...]
    step: pd.Timedelta | None
    index: tuple[pd.DatetimeIndex, ...]
    values: tuple[np.ndarray, ...]
    observed: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def univariate(self, i: int) -> np.ndarray:
        """Series i's first value column as a 1-d array."""
        return self.values[i][:, 0]

    def frame(self, i: int) -> pd.DataFrame:
        """Series i back as a panel frame (for models built on frame-based libraries)."""
        out = pd.DataFrame(self.values[i], columns=list(self.columns))
        out.insert(0, "ts", self.index[i])
        out.insert(0, "series", self.ids[i])
        return out


def value_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Every column of a panel frame except `series` and `ts`."""
    return tuple(c for c in frame.columns if c not in KEY)


def to_panel(
    frame: pd.DataFrame,
    *,
    name: str = "frame",
    columns: Sequence[str] | None = None,
    regular: bool = True,
    fill_missing: bool = True,
    min_history: int = 1,
    model: str = "model",
    step: pd.Timedelta | None = None,
) -> Panel:
    """Check `frame` and return it as a Panel.

    columns       value columns to use (default: every column but `series` and `ts`); each must be numeric.
    regular       put every series on one common step: the step is inferred (the most common spacing) unless
                  given; a timestamp off that grid is refused; missing grid rows become gaps.
    fill_missing  fill gaps by linear interpolation in time (ends by the nearest value); otherwise keep NaN.
    min_history   observed points each series needs (refused with the series named when it has fewer).
    model         the model's name, for messages.

    Raises SchemaError for: not a DataFrame, missing or non-numeric columns, missing or unparseable timestamps,
    duplicate (series, ts) rows, infinite values, an all-NaN series, too little history, irregular sampling.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{name}: expected a pandas DataFrame with columns series, ts, value; "
                          f"received {type(frame).__name__}")
    missing = [c for c in KEY if c not in frame.columns]
    cols = tuple(columns) if columns is not None else value_columns(frame)
    missing += [c for c in cols if c not in frame.columns]
    if missing or not cols:
        raise SchemaError(
            f"{name}: missing columns {missing or ['a value column']}; a panel has `series`, `ts` and value "
            f"column(s) (e.g. `value`); received {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise SchemaError(f"{name}: has no rows; {model} needs at least {min_history} observed point(s) per series")
    for c in cols:
        if not (pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])):
            raise SchemaError(f"{name}: value column {c!r} must be numeric, received dtype {frame[c].dtype}")
    try:
        ts = pd.to_datetime(frame["ts"], utc=True)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name}: column 'ts' cannot be read as datetimes: {exc}") from exc
    if ts.isna().any():
        raise SchemaError(f"{name}: column 'ts' has {int(ts.isna().sum())} missing timestamp(s)")
    if frame["series"].isna().any():
        raise SchemaError(f"{name}: column 'series' has {int(frame['series'].isna().sum())} missing id(s)")
    data = pd.DataFrame({"series": frame["series"].astype(str).to_numpy(), "ts": ts.to_numpy()})
    for c in cols:
        data[c] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
    vals = data[list(cols)].to_numpy()
    if np.isinf(vals).any():
        bad = data.loc[np.isinf(vals).any(axis=1), ["series", "ts"]].head(3).to_dict("records")
        raise SchemaError(f"{name}: infinite values are not allowed (first rows: {bad}); replace them with NaN")
    dup = data.duplicated(["series", "ts"])
    if dup.any():
        bad = data.loc[dup, ["series", "ts"]].head(3).to_dict("records")
        raise SchemaError(f"{name}: {int(dup.sum())} duplicate (series, ts) row(s), e.g. {bad}; aggregate first")
    data = data.sort_values(["series", "ts"], kind="stable")

    groups = [(str(k), g) for k, g in data.groupby("series", sort=True)]
    for sid, g in groups:
        obs = int(g[list(cols)].notna().any(axis=1).sum())
        if obs == 0:
            raise SchemaError(f"{name}: series {sid!r} has no observed values (all NaN); drop it or fill it")
        if obs < min_history:
            raise SchemaError(
                f"{name}: series {sid!r} has {obs} observed point(s); {model} needs at least {min_history}; "
                "give it a longer history or pick a model with a shorter min_history"
            )
    if regular:
        step = step if step is not None else _infer_step(data, name)
    ids, index, values, observed = [], [], [], []
    for sid, g in groups:
        idx = pd.DatetimeIndex(g["ts"])
        v = g[list(cols)].to_numpy(dtype=np.float64)
        if regular:
            idx, v = _on_grid(sid, idx, v, step, name)
        obs = ~np.isnan(v).all(axis=1)  # the row carried at least one value
        if fill_missing and np.isnan(v).any():
            v = _interpolate(idx, v, sid, cols, name)
        ids.append(sid)
        index.append(idx)
        values.append(v)
        observed.append(obs)
    return Panel(tuple(ids), cols, step if regular else None, tuple(index), tuple(values), tuple(observed))


def regularize(frame: pd.DataFrame, step: pd.Timedelta | str, *, how: str = "mean") -> pd.DataFrame:
    """A panel frame resampled to `step` (buckets labelled by their left edge, anchored at the epoch).

    For irregular or jittery samples, before a model that needs regular sampling. Empty buckets are NaN rows.
    """
    step = pd.Timedelta(step)
    if step <= pd.Timedelta(0):
        raise ValueError(f"step: expected a positive duration, received {step}")
    if how not in ("mean", "last", "sum", "max"):
        raise ValueError(f"how: expected one of mean, last, sum, max; received {how!r}")
    cols = value_columns(frame)
    data = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True).dt.floor(step))
    out = data.groupby(["series", "ts"], sort=True)[list(cols)].agg(how)
    pieces = []
    for sid, g in out.groupby(level=0, sort=True):
        g = g.droplevel(0)
        full = pd.date_range(g.index.min(), g.index.max(), freq=step)
        g = g.reindex(full)
        g.index.name = "ts"
        pieces.append(g.reset_index().assign(series=sid))
    res = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=["series", "ts", *cols])
    return res[["series", "ts", *cols]]


def _infer_step(data: pd.DataFrame, name: str) -> pd.Timedelta:
    d = data.groupby("series", sort=False)["ts"].diff().dropna()
    if d.empty:
        raise SchemaError(f"{name}: cannot infer the sampling step: every series has a single point")
    return pd.Timedelta(d.mode().iloc[0])


def _on_grid(sid: str, idx: pd.DatetimeIndex, v: np.ndarray, step: pd.Timedelta, name: str):
    step_ns = step.value
    rel = idx.asi8 - idx.asi8[0]
    off = rel % step_ns
    if off.any():
        bad = idx[off != 0][:3]
        raise SchemaError(
            f"{name}: series {sid!r} is sampled irregularly: timestamps {[str(t) for t in bad]} are off the "
            f"{step} grid that starts at {idx[0]}; resample first with models.panel.regularize(frame, step=...)"
        )
    n = int(rel[-1] // step_ns) + 1
    if n == len(idx):
        return idx, v
    full = np.full((n, v.shape[1]), np.nan)
    full[rel // step_ns] = v
    return pd.date_range(idx[0], periods=n, freq=step), full


def fill(panel: Panel, *, name: str = "frame") -> Panel:
    """The panel with gaps interpolated (as `to_panel(fill_missing=True)` does), e.g. after prepending context."""
    values = tuple(_interpolate(panel.index[i], v, panel.ids[i], panel.columns, name) if np.isnan(v).any() else v
                   for i, v in enumerate(panel.values))
    return Panel(panel.ids, panel.columns, panel.step, panel.index, values, panel.observed)


def _interpolate(idx: pd.DatetimeIndex, v: np.ndarray, sid: str = "?", cols: Sequence[str] = (),
                 name: str = "frame") -> np.ndarray:
    x = idx.asi8.astype(np.float64)
    out = v.copy()
    for j in range(v.shape[1]):
        ok = ~np.isnan(v[:, j])
        if not ok.any():
            col = cols[j] if j < len(cols) else j
            raise SchemaError(
                f"{name}: series {sid!r} has no observed value of column {col!r}, so its gaps cannot be filled; "
                "drop the series or the column, or give a longer span"
            )
        out[:, j] = np.interp(x, x[ok], v[ok, j])  # ends take the nearest observed value
    return out
