"""The four detectors on seeded synthetic panels with injected anomalies (spikes, a level shift, a stuck value).

Every detector: one score per window row in [0, 1], NaN only where the input was NaN; anomalies rank above normal
points (ROC-AUC above a per-detector floor); causal (the future never changes a past score); same seed, same
scores; save/load through `Model.load` gives identical scores; clear errors for bad input.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aiops.errors import SchemaError, UnknownNameError
from models.base import Model
from models.catalog import create

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEASON = 24  # hourly data, daily season
N_HIST, N_WIN = 24 * 30, 24 * 20
MULTI = ("cpu", "mem", "rps")

# small configs keep the file fast; the autoencoder is tiny on purpose
CONFIGS = {
    "robust_mad": {},
    "isolation_forest": {},
    "autoencoder": {"window": 24, "hidden": 16, "latent": 4, "train_steps": 400, "batch_size": 64},
    "forecast_residual": {},
    "likelihood": {"history": 480},
}
# ROC-AUC floors over all labelled points of the window, measured uni / multi: robust_mad 0.93 / 0.93,
# isolation_forest 0.94 / 0.91, the tiny autoencoder 0.86 / 0.79 (0.93 / 0.91 with the default config),
# forecast_residual 0.91 / 0.89, likelihood 0.96 / 0.96
AUC_FLOOR = {"robust_mad": 0.88, "isolation_forest": 0.85, "autoencoder": 0.72, "forecast_residual": 0.85,
             "likelihood": 0.90}
DETECTORS = list(CONFIGS)


def make_panel(columns=("value",), n_series=3, seed=0):
    """History and window frames plus the window's labels (one bool per window row, in frame order).

    Each column: a daily sine at its own scale plus noise. Injected in the window of every series: three spikes
    (one column each), a level shift (its first 4 points labelled: after that it is the new normal) and a value
    stuck for a day while the daily pattern goes on (labelled from its 4th point, once it has drifted off).
    """
    rng = np.random.default_rng(seed)
    n = N_HIST + N_WIN
    t = np.arange(n)
    frames, labels = [], []
    for s in range(n_series):
        data, lab = {}, np.zeros(n, bool)
        for j, c in enumerate(columns):
            scale = 10.0 ** j
            data[c] = scale * (10 + 3 * np.sin(2 * np.pi * (t / SEASON + rng.random())) + rng.normal(0, 0.3, n))
        for p in N_HIST + rng.choice(np.arange(20, N_WIN - 20), 3, replace=False):
            c = columns[rng.integers(len(columns))]
            data[c][p] += 10.0 ** columns.index(c) * rng.choice([-1, 1]) * 3.0
            lab[p] = True
        c0, c1 = columns[0], columns[-1]
        shift = N_HIST + int(0.75 * N_WIN)
        data[c1][shift:] += 10.0 ** columns.index(c1) * 2.5
        lab[shift:shift + 4] = True
        stuck = N_HIST + int(0.4 * N_WIN)
        data[c0][stuck:stuck + SEASON] = data[c0][stuck]
        lab[stuck + 3:stuck + SEASON] = True
        ts = pd.date_range("2024-03-01", periods=n, freq="1h", tz="UTC")
        frames.append(pd.DataFrame({"series": f"s{s}", "ts": ts, **data}))
        labels.append(lab[N_HIST:])
    full = pd.concat(frames, ignore_index=True)
    hist = full.groupby("series").head(N_HIST).reset_index(drop=True)
    win = full.groupby("series").tail(N_WIN).reset_index(drop=True)
    return hist, win, np.concatenate(labels)


@pytest.fixture(scope="module")
def data():
    return {"uni": make_panel(), "multi": make_panel(MULTI)}


@pytest.fixture(scope="module")
def fitted(data):
    """Each detector fitted once per panel kind (the tests below only read them)."""
    return {(name, kind): create(name, **CONFIGS[name]).fit(data[kind][0]) for name in DETECTORS
            for kind in ("uni", "multi")}


@pytest.mark.parametrize("kind", ["uni", "multi"])
@pytest.mark.parametrize("name", DETECTORS)
def test_scores_one_per_row_in_unit_interval_nan_only_where_input_was(name, kind, data, fitted):
    model = fitted[name, kind]
    _, win, _ = data[kind]
    win = win.copy()
    holes = [7, 100, N_WIN + 50, 2 * N_WIN + 300]  # rows of the window frame with no value
    values = [c for c in win.columns if c not in ("series", "ts")]
    win.loc[holes, values] = np.nan
    if len(values) > 1:  # one metric missing: the row still has values, so it gets a score
        win.loc[[30, 31], values[0]] = np.nan
    out = model.score(win)
    assert list(out.columns) == ["series", "ts", "score"]
    assert len(out) == len(win)
    assert (out["series"].to_numpy() == win["series"].to_numpy()).all()
    assert (out["ts"].to_numpy() == win["ts"].to_numpy()).all()
    s = out["score"].to_numpy()
    assert np.flatnonzero(np.isnan(s)).tolist() == holes
    assert ((s[~np.isnan(s)] >= 0) & (s[~np.isnan(s)] <= 1)).all()


@pytest.mark.parametrize("kind", ["uni", "multi"])
@pytest.mark.parametrize("name", DETECTORS)
def test_anomalies_score_higher_than_normal_points(name, kind, data, fitted):
    _, win, labels = data[kind]
    s = fitted[name, kind].score(win)["score"].to_numpy()
    auc = roc_auc_score(labels, s)
    assert auc > AUC_FLOOR[name], f"{name} on the {kind} panel: ROC-AUC {auc:.3f}"
    spikes = labels & ~np.roll(labels, 1) & ~np.roll(labels, -1)  # the single labelled points
    spike_auc = roc_auc_score(spikes[spikes | ~labels], s[spikes | ~labels])
    assert spike_auc > 0.95, f"{name} on the {kind} panel: spikes against normal points, ROC-AUC {spike_auc:.3f}"


@pytest.mark.parametrize("kind", ["uni", "multi"])
@pytest.mark.parametrize("name", DETECTORS)
def test_causal_the_future_never_changes_a_past_score(name, kind, data, fitted):
    model = fitted[name, kind]
    _, win, _ = data[kind]
    k = 200
    whole = model.score(win)
    head = model.score(win.groupby("series").head(k))
    future_changed = win.copy()
    later = win.groupby("series").cumcount() >= k
    values = [c for c in win.columns if c not in ("series", "ts")]
    future_changed.loc[later, values] *= -5.0  # wild values from row k on
    changed = model.score(future_changed)
    first = (whole.groupby("series").cumcount() < k).to_numpy()
    np.testing.assert_allclose(head["score"].to_numpy(), whole["score"].to_numpy()[first], rtol=0, atol=1e-9)
    np.testing.assert_allclose(changed["score"].to_numpy()[first], whole["score"].to_numpy()[first], rtol=0,
                               atol=1e-9)
    assert not np.allclose(changed["score"].to_numpy()[~first], whole["score"].to_numpy()[~first])


@pytest.mark.parametrize("name", DETECTORS)
def test_same_seed_same_scores(name, data, fitted):
    hist, win, _ = data["uni"]
    again = create(name, **CONFIGS[name]).fit(hist).score(win)["score"].to_numpy()
    np.testing.assert_array_equal(again, fitted[name, "uni"].score(win)["score"].to_numpy())


@pytest.mark.parametrize("name", ["isolation_forest", "autoencoder"])
def test_the_seed_is_used(name, data, fitted):
    hist, win, _ = data["uni"]
    other = create(name, **{**CONFIGS[name], "seed": 7}).fit(hist).score(win)["score"].to_numpy()
    assert not np.array_equal(other, fitted[name, "uni"].score(win)["score"].to_numpy())


@pytest.mark.parametrize("name", DETECTORS)
def test_save_load_round_trip_gives_identical_scores(name, data, fitted, tmp_path):
    model = fitted[name, "multi"]
    _, win, _ = data["multi"]
    model.save(tmp_path / name)
    loaded = Model.load(tmp_path / name)
    assert type(loaded) is type(model) and loaded.config == model.config
    pd.testing.assert_frame_equal(loaded.score(win), model.score(win))


@pytest.mark.parametrize("name", DETECTORS)
def test_bad_input_gets_clear_errors(name, data, fitted):
    hist, win, _ = data["uni"]
    model = fitted[name, "uni"]
    all_nan = hist.assign(value=np.where(hist["series"] == "s1", np.nan, hist["value"]))
    with pytest.raises(SchemaError, match="'s1' has no observed values"):
        create(name, **CONFIGS[name]).fit(all_nan)
    short = hist.groupby("series").head(3)
    with pytest.raises(SchemaError, match="has 3 .*needs (at least|more than)"):
        create(name, **CONFIGS[name]).fit(short)
    with pytest.raises(SchemaError, match="were not in the fit"):
        model.score(win[win["series"] == "s0"].assign(series="new"))
    with pytest.raises(SchemaError, match="missing columns"):
        model.score(win.rename(columns={"value": "cpu"}))
    with pytest.raises(RuntimeError, match="call fit"):
        create(name, **CONFIGS[name]).score(win)
    with pytest.raises(ValueError, match="extra"):
        create(name, no_such_setting=1)


@pytest.mark.parametrize("name", ["robust_mad", "isolation_forest", "forecast_residual"])  # base behaviour
def test_columns_setting_picks_the_metrics_scored_together(name, data):
    hist, win, _ = data["multi"]
    model = create(name, **CONFIGS[name], columns=("cpu", "mem")).fit(hist)
    assert model.columns_ == ("cpu", "mem")
    out = model.score(win.drop(columns="rps"))
    assert len(out) == len(win)
    with pytest.raises(SchemaError, match="missing columns"):
        model.score(win.drop(columns="mem"))


def test_robust_mad_decides_seasonality_per_column():
    rng = np.random.default_rng(3)
    t = np.arange(24 * 20)
    frame = pd.DataFrame({"series": "a", "ts": pd.date_range("2024-01-01", periods=t.size, freq="1h", tz="UTC"),
                          "daily": 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.2, t.size),
                          "noise": rng.normal(0, 1, t.size)})
    model = create("robust_mad").fit(frame)
    assert model.seasonal_.tolist() == [[True, False]]
    assert model.context_steps >= 3 * 24  # the seasons it compares with travel with the model


def test_forecast_residual_fast_path_equals_rolling_origins_for_seasonal_naive(data):
    hist, win, _ = data["uni"]
    fast = create("forecast_residual").fit(hist).score(win)
    rolling = create("forecast_residual", origin_every=SEASON).fit(hist).score(win)  # h <= season: exact too
    pd.testing.assert_frame_equal(fast, rolling)


def test_forecast_residual_rolling_origins_match_one_step_and_stay_causal(data):
    hist, win, _ = data["uni"]
    hist, win = hist.groupby("series").tail(100), win.groupby("series").head(60)
    exact = create("forecast_residual", forecaster="naive").fit(hist).score(win)
    every_row = create("forecast_residual", forecaster="naive", origin_every=1).fit(hist).score(win)
    pd.testing.assert_frame_equal(every_row, exact)  # an origin at every row is the one-step-ahead forecast
    model = create("forecast_residual", forecaster="naive", origin_every=12).fit(hist)
    s = model.score(win)["score"].to_numpy()
    head = model.score(win.groupby("series").head(30))["score"].to_numpy()
    np.testing.assert_allclose(head, s[(win.groupby("series").cumcount() < 30).to_numpy()], atol=1e-12)
    assert not np.isnan(s).any() and not np.allclose(s, exact["score"].to_numpy())


def test_forecast_residual_refuses_bad_forecasters():
    with pytest.raises(UnknownNameError, match="known models"):
        create("forecast_residual", forecaster="no_such_model")
    with pytest.raises(ValueError, match="is a detector"):
        create("forecast_residual", forecaster="robust_mad")
    with pytest.raises(ValueError, match="must include spread_quantile"):
        create("forecast_residual", forecaster_config={"quantiles": (0.5, 0.99)})
    with pytest.raises(ValueError, match="not a valid seasonal_naive config"):
        create("forecast_residual", forecaster_config={"season_length": 0})


def test_pattern_novelty_is_the_nearest_earlier_window_within_history():
    from models.detectors._patterns import left_nn_distance

    rng = np.random.default_rng(5)
    x, m, hist = rng.normal(size=700), 6, 150
    got = left_nn_distance(x, m, hist)  # long enough to pass the exact recomputation every 512 rows
    for t in (2 * m - 1, 100, 511, 512, 699):  # t: the row a window ends at
        ends = np.arange(max(m - 1, t - m - hist + 1), t - m + 1)  # earlier windows, no overlap, within history
        want = min(np.sqrt(np.mean((x[e - m + 1:e + 1] - x[t - m + 1:t + 1]) ** 2)) for e in ends)
        assert abs(got[t] - want) < 1e-9, t
    assert np.isnan(got[: 2 * m - 1]).all()


def test_likelihood_surprise_and_hold_down():
    from models.detectors.likelihood import hold_down, surprise

    rng = np.random.default_rng(6)
    raw = rng.normal(size=3000)
    raw[2000] = 3.0
    s = surprise(raw, history=2000, min_periods=100)
    assert np.isnan(s[:100]).all() and abs(s[2000] - 2.87) < 0.15  # -log10 P(Z > 3) = 2.87
    np.testing.assert_array_equal(surprise(raw[:1500], 2000, 100), s[:1500])  # causal
    y = np.array([0.1, 0.9, 0.9, 0.5, 0.95, np.nan, 0.2, 0.9])
    np.testing.assert_allclose(hold_down(y, 3, 0.5), [0.1, 0.9, 0.45, 0.25, 0.95, np.nan, 0.1, 0.45])
    np.testing.assert_array_equal(hold_down(y, 0, 0.5), y)


def test_likelihood_scores_mean_the_same_on_every_scale_and_adapt_to_a_new_regime():
    rng = np.random.default_rng(8)
    n = 24 * 60
    t = np.arange(n)
    base = 10 + 3 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 0.3, n)
    base[24 * 35:] += rng.normal(0, 3.0, n - 24 * 35)  # a noisier regime from day 35 on
    ts = pd.date_range("2024-03-01", periods=n, freq="1h", tz="UTC")
    frame = pd.concat([pd.DataFrame({"series": s, "ts": ts, "value": k * base}) for s, k in (("a", 1), ("b", 1e4))])
    hist, win = frame[frame["ts"] < ts[24 * 20]], frame[frame["ts"] >= ts[24 * 20]]
    out = create("likelihood", history=24 * 10).fit(hist).score(win)
    a, b = (out.loc[out["series"] == s, "score"].to_numpy() for s in "ab")
    np.testing.assert_allclose(a, b, atol=1e-6)  # one threshold means the same on both series
    onset, late = a[24 * 15: 24 * 17], a[-24 * 10:]  # first two days of the new regime, and ten days into it
    high = 1 - 1e-8  # a surprise of 8: odds of one in 10^8 under the running distribution
    assert onset.max() > high and late.max() < onset.max() and (late > high).mean() < 0.02
    assert ((a >= 0) & (a < 1)).all()


def test_likelihood_config_errors_are_clear():
    with pytest.raises(UnknownNameError, match="known models"):
        create("likelihood", base="no_such_detector")
    with pytest.raises(ValueError, match="other than likelihood"):
        create("likelihood", base="likelihood")
    with pytest.raises(ValueError, match="other than likelihood"):
        create("likelihood", base="naive")
    with pytest.raises(ValueError, match="at least one channel"):
        create("likelihood", base=None, pattern_lengths=())
    with pytest.raises(ValueError, match="not a valid robust_mad config"):
        create("likelihood", base_config={"window": 1})
