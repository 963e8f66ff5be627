"""The store on real files: windows, watermarks, reads, quarantine, derived tables, summary."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError, UnknownNameError
from aiops.series import COLUMNS, SERIES_KEY
from aiops.store import Store

from .conftest import H6, T0, make_frame


def test_write_window_then_read_round_trips_canonical(store):
    frame = make_frame(("cpu_usage",))
    rec = store.write_window("simulator", "cpu_usage", T0, T0 + H6, frame)
    assert (rec.rows, rec.n_series) == (len(frame), 3)
    assert rec.min_ts == T0 and rec.max_ts == T0 + H6 - timedelta(minutes=1)
    path = store.data_dir / rec.file
    assert path.name == "simulator__20260105T000000Z.parquet"
    assert path.parent.name == "day=2026-01-05" and path.parent.parent.name == "metric=cpu_usage"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256

    out = store.read("cpu_usage")
    assert dict(out.dtypes.astype(str)) == {c: str(pd.Series(dtype=t).dtype) for c, t in COLUMNS.items()}
    expected = frame.sort_values([*SERIES_KEY, "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected)


def test_rewriting_a_window_replaces_it(store):
    first = make_frame(seed=1)
    second = make_frame(seed=2, workloads=2)
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, first)
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, first)  # same run again: no duplicates
    assert len(store.read()) == len(first)
    rec = store.write_window("simulator", "cpu_usage", T0, T0 + H6, second)
    out = store.read()
    assert len(out) == len(second) and np.allclose(np.sort(out["value"]), np.sort(second["value"]))
    wm = store.windows()
    assert len(wm) == 1 and wm.loc[0, "rows"] == len(second) and wm.loc[0, "sha256"] == rec.sha256
    assert len(list(store.raw_dir.rglob("*.parquet"))) == 1


def test_empty_window_is_recorded_and_distinct_from_a_missing_one(store):
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, make_frame().iloc[:0])
    assert store.has_window("simulator", "cpu_usage", T0)
    assert not store.has_window("simulator", "cpu_usage", T0 + H6)
    wm = store.windows("simulator", "cpu_usage")
    assert wm.loc[0, "rows"] == 0 and pd.isna(wm.loc[0, "min_ts"])
    assert store.read().empty
    # a re-run that now has data replaces the empty window
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, make_frame())
    assert len(store.read()) == 3 * 360


def test_missing_windows_shows_gaps(store):
    for i in (0, 1, 3, 5):  # 2 and 4 never written; 5 is empty (not missing)
        start = T0 + i * H6
        frame = make_frame(start=start) if i != 5 else make_frame().iloc[:0]
        store.write_window("simulator", "cpu_usage", start, start + H6, frame)
    gaps = store.missing_windows("simulator", "cpu_usage", T0, T0 + 8 * H6, H6)
    assert gaps == [(T0 + i * H6) for i in (2, 4, 6, 7)]
    assert store.missing_windows("prometheus", "cpu_usage", T0, T0 + 2 * H6, H6) == [T0, T0 + H6]
    assert store.missing_windows("simulator", "memory_request", T0, T0 + H6, H6) == [T0]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f.drop(columns=["unit"]), r"missing \['unit'\]"),
        (lambda f: f.assign(extra=1), r"unexpected \['extra'\]"),
        (lambda f: f.assign(metric="memory_request"), r"only rows of metric 'cpu_usage'; 1080 rows of \['memory_request'\]"),
        (lambda f: f.assign(ts=f["ts"] + H6), r"outside the window"),
        (lambda f: f.assign(value=["x"] * len(f)), r"column 'value'"),
    ],
)
def test_write_window_rejects_rows_that_do_not_belong(store, mutate, match):
    with pytest.raises(SchemaError, match=match):
        store.write_window("simulator", "cpu_usage", T0, T0 + H6, mutate(make_frame()))
    assert store.windows().empty and not list(store.raw_dir.rglob("*.parquet"))


def test_write_window_rejects_bad_names_and_windows(store):
    frame = make_frame().iloc[:0]
    with pytest.raises(UnknownNameError, match="unknown metric 'cpu'"):
        store.write_window("simulator", "cpu", T0, T0 + H6, frame)
    with pytest.raises(SchemaError, match="source 'a/b'"):
        store.write_window("a/b", "cpu_usage", T0, T0 + H6, frame)
    with pytest.raises(SchemaError, match="straddles two days"):
        store.write_window("simulator", "cpu_usage", T0 + 3 * H6, T0 + 5 * H6, frame)
    with pytest.raises(SchemaError, match="must be after start"):
        store.write_window("simulator", "cpu_usage", T0, T0, frame)


def _fill(store, days=3, metrics=("cpu_usage", "memory_request")):
    for d in range(days):
        for w in range(4):
            start = T0 + timedelta(days=d) + w * H6
            for m in metrics:
                store.write_window("simulator", m, start, start + H6, make_frame((m,), start=start, workloads=4))


def test_read_filters_by_metric_time_and_labels(store):
    _fill(store)
    t1, t2 = T0 + timedelta(hours=30), T0 + timedelta(hours=50)
    out = store.read(["memory_request"], t1, t2, namespace="ns1", workload=["w1", "w2", "w3"])
    assert set(out["metric"]) == {"memory_request"} and set(out["namespace"]) == {"ns1"}
    assert set(out["workload"]) == {"w1", "w3"}
    assert out["ts"].min() == t1 and out["ts"].max() == t2 - timedelta(minutes=1)
    assert len(out) == 2 * 20 * 60
    keys = out[[*SERIES_KEY, "ts"]].astype("object")
    assert keys.equals(keys.sort_values([*SERIES_KEY, "ts"]))  # sorted by series key then ts
    assert store.read("cpu_usage", cluster="elsewhere").empty
    assert list(store.read("cpu_usage", cluster="elsewhere").columns) == list(COLUMNS)


def test_read_prunes_partitions(store):
    _fill(store)
    # break every file outside metric=cpu_usage/day=2026-01-06: a read that opened them would fail
    for path in store.raw_dir.rglob("*.parquet"):
        if not ("metric=cpu_usage" in str(path) and "day=2026-01-06" in str(path)):
            path.write_bytes(b"not parquet")
    out = store.read("cpu_usage", T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert len(out) == 4 * 4 * 360
    with pytest.raises(Exception):
        store.read("cpu_usage")  # the unpruned read does open the broken files


def test_query_has_raw_and_watermarks_views(store):
    _fill(store, days=2)
    per_day = store.query("SELECT metric, day, count(*) AS n FROM raw GROUP BY ALL ORDER BY ALL")
    assert len(per_day) == 4 and set(per_day["n"]) == {4 * 4 * 360}
    wm = store.query("SELECT metric, sum(rows) AS rows FROM watermarks GROUP BY metric ORDER BY metric")
    assert wm["rows"].tolist() == [2 * 4 * 4 * 360] * 2


def test_quarantine_keeps_the_batch_and_read_never_returns_it(store):
    good = make_frame(seed=1)
    bad = make_frame(("memory_request",), seed=2).assign(value=-1.0)
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, good)
    path = store.quarantine(
        "simulator", "memory_request", T0, T0 + H6, bad, "validation failed", {"failures": ["value: below 0"]}
    )
    kept = pd.read_parquet(path)
    pd.testing.assert_frame_equal(kept, bad)
    q = store.quarantined()
    assert len(q) == 1
    row = q.iloc[0]
    assert (row["source"], row["metric"], row["rows"], row["reason"]) == (
        "simulator", "memory_request", len(bad), "validation failed"
    )
    assert row["start"] == T0 and row["end"] == T0 + H6 and row["path"] == str(path)
    meta = json.loads(next(store.quarantine_dir.rglob("*.meta.json")).read_text())
    assert meta["details"] == {"failures": ["value: below 0"]}
    assert store.read().equals(store.read("cpu_usage"))
    assert (store.read()["value"] >= 0).all() and store.query("SELECT count(*) AS n FROM raw")["n"][0] == len(good)
    assert not store.has_window("simulator", "memory_request", T0)

    # a batch pyarrow cannot store (mixed types) is kept as JSON; a second batch never overwrites the first
    weird = pd.DataFrame({"value": [1, "two", {"three": 3}], "ts": [T0, "nonsense", None]})
    p2 = store.quarantine("simulator", None, T0, T0 + H6, weird, "unreadable", {"error": ValueError("x")})
    assert p2.suffix == ".json" and len(json.loads(p2.read_text())) == 3
    assert len(store.quarantined()) == 2 and path.exists()


def test_derived_tables_partition_replace_and_upsert(store):
    feats = make_frame(start=T0 + timedelta(hours=20), steps=8 * 60)  # spans two days
    root = store.write_table("features/demand", feats)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["day=2026-01-05", "day=2026-01-06"]
    by = ["workload", "ts"]  # rows come back day by day, in the frame's order within a day
    pd.testing.assert_frame_equal(
        store.read_table("features/demand").sort_values(by, ignore_index=True), feats.sort_values(by, ignore_index=True)
    )
    day2 = store.read_table("features/demand", T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert len(day2) == 3 * 4 * 60 and (day2["ts"] >= T0 + timedelta(days=1)).all()

    # replace: only the partitions touched by the new frame change
    newer = feats[feats["ts"] >= T0 + timedelta(days=1)].assign(value=7.0)
    store.write_table("features/demand", newer)
    again = store.read_table("features/demand")
    assert len(again) == len(feats) and (again.loc[again["ts"] >= T0 + timedelta(days=1), "value"] == 7.0).all()

    # upsert by key: same keys replaced, new keys added
    labels = pd.DataFrame({"incident": ["a", "b"], "ts": [T0, T0], "kind": ["spike", "leak"]})
    store.write_table("labels/incidents", labels, key=["incident"])
    store.write_table(
        "labels/incidents", pd.DataFrame({"incident": ["b", "c"], "ts": [T0, T0], "kind": ["crash", "oom"]}),
        key=["incident"],
    )
    got = store.read_table("labels/incidents").sort_values("incident")
    assert got["kind"].tolist() == ["spike", "crash", "oom"]

    store.write_table("events/k8s", pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "reason": []}))
    assert store.read_table("events/k8s").empty and list(store.read_table("events/k8s").columns) == ["ts", "reason"]
    store.write_table("events", pd.DataFrame({"name": ["x"], "n": [1]}))
    assert store.read_table("events")["n"].tolist() == [1]
    assert store.tables() == ["events", "events/k8s", "features/demand", "labels/incidents"]
    with pytest.raises(UnknownNameError, match="unknown table 'features/nope'; known tables: events"):
        store.read_table("features/nope")
    with pytest.raises(SchemaError, match="table name 'raw/x'"):
        store.write_table("raw/x", labels)


def test_derived_tables_read_only_the_asked_columns_and_rows(store):
    feats = make_frame(start=T0 + timedelta(hours=20), steps=8 * 60)
    store.write_table("features/demand", feats)
    wanted = sorted(feats["workload"].unique())[:2]
    got = store.read_table("features/demand", T0 + timedelta(days=1), columns=["workload", "value"],
                           where={"workload": wanted})
    expect = feats[feats["workload"].isin(wanted) & (feats["ts"] >= T0 + timedelta(days=1))]
    assert list(got.columns) == ["workload", "value"] and len(got) == len(expect) > 0
    assert sorted(got["value"].tolist()) == sorted(expect["value"].tolist())
    assert store.read_table("features/demand", columns=["ts"], where={"workload": ["nope"]}).empty
    with pytest.raises(SchemaError, match="table 'features/demand': cannot select columns"):
        store.read_table("features/demand", columns=["no_such_column"])


def test_summary(store):
    _fill(store, days=1)
    store.write_window("simulator", "cpu_usage", T0 + timedelta(days=1), T0 + timedelta(days=1) + H6,
                       make_frame().iloc[:0])
    store.quarantine("simulator", "cpu_usage", T0, T0 + H6, make_frame(), "why", {})
    s = store.summary()
    assert s.series == 8 and s.rows == 2 * 4 * 4 * 360 and s.quarantined == 1
    assert s.first_ts == T0 and s.last_ts == T0 + timedelta(days=1) - timedelta(minutes=1)
    per = s.windows.set_index("metric")
    assert per.loc["cpu_usage", "windows"] == 5 and per.loc["cpu_usage", "empty_windows"] == 1
    assert s.bytes_on_disk > 0 and "8 series" in str(s)
    empty = Store(store.data_dir.parent / "empty").summary()
    assert (empty.series, empty.rows, empty.first_ts) == (0, 0, None)


_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    sys.path.insert(0, {root!r})
    from aiops.store import Store
    from tests.store.conftest import T0, H6, make_frame
    store = Store({data!r})
    offset = int(sys.argv[1])
    for i in range(offset, 40, 2):
        start = T0 + i * H6
        store.write_window("simulator", "cpu_usage", start, start + H6, make_frame(start=start, workloads=2))
    """
)


def test_two_processes_record_watermarks_concurrently(tmp_path):
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    data = tmp_path / "data"
    Store(data)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=root, data=str(data)))
    procs = [subprocess.Popen([sys.executable, str(script), str(k)]) for k in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = Store(data)
    assert len(store.windows()) == 40
    assert store.missing_windows("simulator", "cpu_usage", T0, T0 + 40 * H6, H6) == []
    with sqlite3.connect(data / "state" / "watermarks.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(store.read()) == 40 * 2 * 360


def test_write_windows_writes_each_metric_of_a_window(store):
    frame = make_frame(("cpu_usage", "memory_request", "replicas"))
    recs = store.write_windows("simulator", T0, T0 + H6, frame, metrics=["cpu_usage", "memory_request", "replicas",
                                                                         "restarts"])
    assert [(r.metric, r.rows) for r in recs] == [
        ("cpu_usage", 1080), ("memory_request", 1080), ("replicas", 1080), ("restarts", 0)
    ]
    assert len(store.read()) == len(frame) and store.has_window("simulator", "restarts", T0)
    with pytest.raises(SchemaError, match=r"rows of metrics \['replicas'\] not in metrics"):
        store.write_windows("simulator", T0, T0 + H6, frame, metrics=["cpu_usage", "memory_request"])
    shuffled = frame.sample(frac=1.0, random_state=0)  # not grouped by metric: split by groupby
    store.write_windows("simulator", T0, T0 + H6, shuffled, max_workers=1)
    assert len(store.read()) == len(frame)
