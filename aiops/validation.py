"""Validation at the door: a great-expectations (1.x) suite over the canonical frame, run once per batch.

`validate_batch(frame, name=...)` runs one GX validation over the whole batch and returns a `ValidationReport`
whose `failures` name the offending input (column, count, metric, series, example values and timestamps) and
whose `bad_metrics` says which metrics had failing rows, so a caller that validates several metrics together can
quarantine only those.

What GX checks (it decides every verdict; pandas only prepares the batch):

* the exact canonical columns (`aiops.series.COLUMNS`); `ts` a tz-aware datetime column; `value` float64;
* no nulls in the series key, `unit`, `ts`; no NaN `value`;
* `value >= 0`, and `value <=` the ceiling of the metric's catalogue unit (`aiops.metrics`: ratio <= 1, ...);
* `unit` equal to the metric's catalogue unit; `metric` one of the catalogue's metrics;
* timestamps strictly increasing per series **in the order received** (out-of-order and repeated timestamps fail);
* no two rows with the same series key and `ts`.

GX has no per-row lookup or per-group expectation, so the batch handed to GX carries three helper columns computed
here: `__max__` (the catalogue ceiling of the row's metric) and `__unit__` (the metric's catalogue unit), compared
row-wise with `value`/`unit` by column-pair expectations; `__dt__`, the seconds since the previous row of the
same series in received order (+inf for a series' first row), expected > 0; and `__series__`, a lossless integer
encoding of the series key (equal ids <=> equal keys, nulls included), so that the compound uniqueness of
(series key, ts) is checked over two numeric columns instead of six string ones. For speed, the GX batch holds the
string columns as pandas categoricals (lossless: same values, nulls kept); GX's row filtering then moves integer
codes instead of strings. The caller's frame is never modified.

great_expectations is imported on first use (its import takes seconds); the suite is built once per process.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from aiops.metrics import METRICS, UNITS
from aiops.series import COLUMNS, SERIES_KEY

MAX_COL, UNIT_COL, DT_COL, SID_COL = "__max__", "__unit__", "__dt__", "__series__"
HELPERS = (MAX_COL, UNIT_COL, DT_COL, SID_COL)
_STRING_COLUMNS = tuple(c for c, t in COLUMNS.items() if t == "string")
_EXAMPLES = 3  # example rows per failure message
_RESULT_LIST_CAP = 20  # unexpected values/indices kept per expectation in the JSON-able result
_lock = threading.Lock()  # a GX context is not meant for concurrent use


@dataclass
class ValidationReport:
    """The outcome of validating one batch. `result` is the GX validation result as a JSON-able dict."""

    success: bool
    name: str
    rows: int
    failures: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)
    bad_metrics: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        head = f"{self.name}: {self.rows} rows, " + ("valid" if self.success else f"{len(self.failures)} failures")
        return "\n  ".join([head, *self.failures])


# ---- the suite ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _gx() -> tuple[Any, Any]:
    """(batch definition, suite), built once per process in an ephemeral context with logs and bars quiet."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    # GX fingerprints every in-memory batch by hashing all its rows (a batch marker aiops never reads) unless the
    # frame is larger than this threshold; that hash costs as much as several expectations, so it is turned off
    pandas_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_def = (
        context.data_sources.add_pandas("aiops_validation")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    E = gx.expectations
    suite = gx.ExpectationSuite(name="canonical_frame")

    def add(expectation: Any, label: str, text: str) -> None:
        expectation.meta = {"label": label, "text": text}
        suite.add_expectation(expectation)

    add(E.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, *HELPERS], exact_match=True), "columns", "")
    add(E.ExpectColumnValuesToBeOfType(column="ts", type_="Timestamp"), "ts", "a tz-aware datetime64[ns, UTC]")
    add(E.ExpectColumnValuesToBeOfType(column="value", type_="float64"), "value", "float64")
    for col in (*SERIES_KEY, "unit", "ts"):
        add(E.ExpectColumnValuesToNotBeNull(column=col), col, "null")
    add(E.ExpectColumnValuesToNotBeNull(column="value"), "value", "NaN or null")
    add(E.ExpectColumnValuesToBeBetween(column="value", min_value=0.0), "value", "below 0")
    add(
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=MAX_COL, column_B="value", or_equal=True, ignore_row_if="either_value_is_missing"
        ),
        "value", "above the maximum of the metric's unit",
    )
    add(
        E.ExpectColumnPairValuesToBeEqual(column_A="unit", column_B=UNIT_COL, ignore_row_if="either_value_is_missing"),
        "unit", "not the metric's catalogue unit",
    )
    add(E.ExpectColumnValuesToBeInSet(column="metric", value_set=sorted(METRICS)), "metric", "not in the catalogue")
    add(
        E.ExpectColumnValuesToBeBetween(column=DT_COL, min_value=0.0, strict_min=True),
        "ts", "not after the previous row of the same series (out of order or repeated)",
    )
    add(E.ExpectCompoundColumnsToBeUnique(column_list=[SID_COL, "ts"]), "key", "duplicate (series key, ts)")
    if any(u.min_value != 0.0 for u in UNITS.values()):  # the catalogue's floors are all 0 today
        raise NotImplementedError("a unit with a non-zero minimum needs a __min__ helper column")
    return batch_def, suite


# ---- preparing the batch GX sees ----------------------------------------------------------------------------


def _categorical(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s
    try:
        return s.astype("category")
    except (TypeError, ValueError):  # unhashable cells: leave as is, GX still sees them
        return s


def _gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A new frame: the input's columns (string ones as categoricals) plus the helper columns."""
    cols: dict[str, pd.Series] = {}
    for col in frame.columns:
        s = frame[col].reset_index(drop=True)
        cols[col] = _categorical(s) if col in _STRING_COLUMNS else s
    out = pd.DataFrame(cols, copy=False)
    n = len(out)
    metric = out["metric"] if "metric" in out.columns else None
    if metric is not None and isinstance(metric.dtype, pd.CategoricalDtype):
        cats = metric.cat.categories
        maxes = np.array([METRICS[m].range[1] if m in METRICS else np.nan for m in cats] + [np.nan])
        codes = metric.cat.codes.to_numpy()
        out[MAX_COL] = maxes[codes]  # code -1 (null) picks the trailing NaN
        unit = out["unit"] if "unit" in out.columns else None
        if unit is not None and isinstance(unit.dtype, pd.CategoricalDtype):
            # categoricals compare only with the same categories: give both columns the union (lossless)
            union = unit.cat.categories.union(pd.Index(sorted(UNITS), dtype=unit.cat.categories.dtype))
            if not union.equals(unit.cat.categories):
                out["unit"] = unit.cat.set_categories(union)
            pos = {u: i for i, u in enumerate(union)}
            lookup = np.array([pos[METRICS[m].unit] if m in METRICS else -1 for m in cats] + [-1], dtype=np.int64)
            out[UNIT_COL] = pd.Categorical.from_codes(lookup[codes], dtype=out["unit"].dtype)
        else:
            units = np.array([METRICS[m].unit if m in METRICS else None for m in cats] + [None], dtype=object)
            out[UNIT_COL] = units[codes]
    else:
        out[MAX_COL] = np.full(n, np.nan)
        out[UNIT_COL] = pd.Series([None] * n, dtype="object")
    sid = _series_ids(out) if n and all(c in out.columns for c in SERIES_KEY) else None
    out[SID_COL] = sid if sid is not None else np.full(n, np.nan)
    out[DT_COL] = _seconds_since_previous(out, sid)
    return out


def _series_ids(out: pd.DataFrame) -> np.ndarray | None:
    """An integer per row, equal for rows of the same series (nulls included as a value)."""
    key = [out[c] for c in SERIES_KEY]
    sizes = [len(k.cat.categories) + 1 if isinstance(k.dtype, pd.CategoricalDtype) else 0 for k in key]
    if all(sizes) and float(np.prod(sizes, dtype=float)) < 2.0**62:
        ids = np.zeros(len(out), dtype=np.int64)
        for k, size in zip(key, sizes):  # mixed radix over the category codes (-1 = null -> 0)
            ids = ids * size + (k.cat.codes.to_numpy().astype(np.int64) + 1)
        return ids
    try:
        return out.groupby(list(SERIES_KEY), sort=False, observed=True, dropna=False).ngroup().to_numpy()
    except (TypeError, ValueError):
        return None


def _seconds_since_previous(out: pd.DataFrame, group: np.ndarray | None) -> np.ndarray:
    """Per row: seconds since the previous row of the same series in received order; NaN for a first row.

    NaN where it cannot be computed (a missing key column, a ts that is not a datetime): GX ignores missing values,
    and the column/type/null expectations report the cause.
    """
    n = len(out)
    if n == 0 or not all(c in out.columns for c in SERIES_KEY) or "ts" not in out.columns:
        return np.full(n, np.nan)
    ts = out["ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return np.full(n, np.nan)
    if group is None:
        return np.full(n, np.nan)
    t = ts.to_numpy(dtype="datetime64[ns]").view("i8").astype(np.float64)  # ns; exact below 2**53 ns (year 2255)
    t[ts.isna().to_numpy()] = np.nan
    # a hash-grouped diff keeps received order within each series and costs O(n), unlike sorting by series
    # a series' first row has no predecessor: NaN, which the expectation skips like any missing value
    return pd.Series(t).groupby(group, sort=False).diff().to_numpy() / 1e9


# ---- describing failures ------------------------------------------------------------------------------------


def _plain(v: Any) -> str:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is None or v is pd.NA or v is pd.NaT:
        return "null"
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


def _row_desc(frame: pd.DataFrame, i: int, *, show: str) -> str:
    """`row 12: -1.0 at 2026-01-01T00:03:00+00:00` (row = position in the batch as received)."""
    val = _plain(frame[show].iat[i]) if show in frame.columns else "?"
    ts = f" at {_plain(frame['ts'].iat[i])}" if "ts" in frame.columns and show != "ts" else ""
    return f"row {i}: {val}{ts}"


def _series_desc(frame: pd.DataFrame, idx: np.ndarray) -> str:
    cols = [c for c in ("namespace", "workload", "container") if c in frame.columns]
    if not cols:
        return ""
    keys = frame.iloc[idx[:200]][cols].astype("object").drop_duplicates().head(3)
    names = ["/".join(str(v) for v in r) for r in keys.itertuples(index=False)]
    return f" ({', '.join(names)}{', ...' if len(keys) < frame.iloc[idx][cols].drop_duplicates().shape[0] else ''})"


def _metrics_of(frame: pd.DataFrame, idx: np.ndarray | None = None) -> set[str]:
    if "metric" not in frame.columns:
        return set()
    s = frame["metric"] if idx is None else frame["metric"].iloc[idx]
    return {str(m) for m in pd.unique(s.dropna())}


def _exception(r: Any) -> str | None:
    """The first line of the error an expectation raised, or None (GX nests it per metric since 1.x)."""
    info = r.exception_info or {}
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for i in infos:
        if i.get("raised_exception"):
            lines = (i.get("exception_message") or "error").strip().splitlines()
            return lines[0] if lines else "error"
    return None


def _describe(r: Any, frame: pd.DataFrame) -> tuple[str, set[str]]:
    """(message, bad metrics) of one failed expectation result."""
    meta = r.expectation_config.meta or {}
    label, text = meta.get("label", r.expectation_config.type), meta.get("text", "")
    kind = r.expectation_config.type
    res = r.result or {}
    if error := _exception(r):
        return f"{label}: could not be checked ({kind}): {error}", _metrics_of(frame)
    if kind == "expect_table_columns_to_match_set":
        mism = (res.get("details") or {}).get("mismatched") or {}
        missing = [c for c in mism.get("missing", []) if c not in HELPERS]
        extra = [c for c in mism.get("unexpected", []) if c not in HELPERS]
        return (
            f"columns: expected {list(COLUMNS)}; missing {missing or 'none'}, unexpected {extra or 'none'}",
            _metrics_of(frame),
        )
    if kind == "expect_column_values_to_be_of_type":
        col = r.expectation_config.kwargs["column"]
        got = frame[col].dtype if col in frame.columns else "missing"
        return f"{col}: expected dtype {text}, got {got}", _metrics_of(frame)
    idx = np.asarray(res.get("unexpected_index_list") or [], dtype=np.int64)
    count = int(res.get("unexpected_count") or len(idx))
    if idx.size and isinstance(res["unexpected_index_list"][0], dict):  # not expected with a RangeIndex
        idx = np.asarray([d.get("index") for d in res["unexpected_index_list"]], dtype=np.int64)
    bad = _metrics_of(frame, idx) if idx.size else _metrics_of(frame)
    show = {"metric": "metric", "unit": "unit", "key": "value"}.get(label, "value" if label != "ts" else "ts")
    examples = "; ".join(_row_desc(frame, int(i), show=show) for i in idx[:_EXAMPLES])
    metrics = sorted(bad)
    where = f" for metric{'s' if len(metrics) > 1 else ''} {', '.join(metrics[:5])}" if metrics else ""
    if len(metrics) > 5:
        where += f" (+{len(metrics) - 5} more)"
    where += _series_desc(frame, idx) if idx.size else ""
    if label == "metric" and metrics:
        where = f": {', '.join(repr(m) for m in metrics[:5])}; known: {', '.join(sorted(METRICS))}"
    return f"{label}: {count} row{'' if count == 1 else 's'} {text}{where}; examples: {examples or 'n/a'}", bad


def _cap(d: Any) -> Any:
    """The GX result dict with its long per-row lists cut to _RESULT_LIST_CAP items (JSON stays small)."""
    if isinstance(d, dict):
        return {k: _cap(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_cap(v) for v in d[:_RESULT_LIST_CAP]]
    return d


# ---- the entry point ----------------------------------------------------------------------------------------


def validate_batch(frame: pd.DataFrame, *, name: str) -> ValidationReport:
    """Validate `frame` (a canonical long frame, one or more metrics) with the GX suite; never modifies it."""
    batch_def, suite = _gx()
    gx_frame = _gx_frame(frame)
    with _lock:
        batch = batch_def.get_batch(batch_parameters={"dataframe": gx_frame})
        # the common case, a valid batch, needs only the verdicts (about half the time of a full result);
        # a failing batch is validated again with every unexpected row, to describe it
        result = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
        if not result.success:
            result = batch.validate(
                suite, result_format={"result_format": "COMPLETE", "partial_unexpected_count": _RESULT_LIST_CAP}
            )
    failures: list[str] = []
    bad: set[str] = set()
    columns_wrong = list(frame.columns) != list(COLUMNS) and set(frame.columns) != set(COLUMNS)
    for r in result.results:
        if not r.success:
            if columns_wrong and "does not exist" in (_exception(r) or ""):
                continue  # a missing column: the columns failure already names it
            msg, metrics = _describe(r, frame.reset_index(drop=True))
            failures.append(msg)
            bad |= metrics
    return ValidationReport(
        success=bool(result.success),
        name=name,
        rows=len(frame),
        failures=failures,
        result=_cap(result.to_json_dict()),
        bad_metrics=bad,
    )
