"""Forecasting's ML core: features without leakage, the time-ordered split, metrics, intervals, serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlkube.api import trainer as trainer_api
from mlkube.ml import errors, experiment
from mlkube.ml.tasks import forecasting


def seasonal(months: int = 96, *, seed: int = 0, level: float = 100.0, series: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = np.arange(months)
    values = level + 0.5 * steps + 20 * np.sin(2 * np.pi * steps / 12) + rng.normal(0, 3, months)
    table = pd.DataFrame({"month": pd.date_range("2010-01-01", periods=months, freq="MS").strftime("%Y-%m-%d"), "sales": values})
    return table.assign(store=series) if series else table


def framing(table: pd.DataFrame, **changes) -> forecasting.Framing:
    settings = {"target": "sales", "time": "month", "series": None, "horizon": 12, "frequency": None, "features": []}
    return forecasting.framing_of(table, **{**settings, **changes})


def test_the_frequency_and_season_are_inferred_from_the_times():
    found = framing(seasonal())
    assert (found.frequency, found.season) == ("MS", 12)
    daily = pd.DataFrame({"month": pd.date_range("2020-01-01", periods=30, freq="D"), "sales": 1.0})
    assert framing(daily).season == 7


def test_irregular_times_without_a_frequency_are_refused_naming_the_field():
    table = pd.DataFrame({"month": ["2020-01-01", "2020-01-05", "2020-03-17", "2020-04-01"], "sales": [1, 2, 3, 4]})
    with pytest.raises(errors.DataError, match=r"problem\.frequency"):
        framing(table)


def test_a_lag_at_time_t_never_reads_the_value_at_t_or_later():
    lags = forecasting.Lags(12)
    y = np.random.default_rng(1).normal(size=60)
    positions = np.arange(lags.span, 60)
    before = lags.block(y, positions)
    for t in positions:
        changed = y.copy()
        changed[t:] += 1000.0  # the value at t and everything after it
        after = lags.block(changed, positions)
        at = np.flatnonzero(positions == t)[0]
        np.testing.assert_array_equal(after[: at + 1], before[: at + 1])


def test_lag_features_are_the_values_and_windows_before_the_position():
    lags = forecasting.Lags(12)
    y = np.arange(40, dtype=float)
    row = dict(zip(lags.names, lags.block(y, np.array([20]))[0]))
    assert row["lag_1"] == 19 and row["lag_12"] == 8 and row["lag_13"] == 7
    assert row["mean_3"] == pytest.approx(18.0) and row["mean_12"] == pytest.approx(np.mean(y[8:20]))


def test_a_repeated_time_keeps_its_last_row_and_a_missing_step_is_interpolated():
    table = pd.DataFrame({"month": ["2020-01-01", "2020-02-01", "2020-04-01", "2020-02-01"], "sales": [1.0, 2.0, 4.0, 5.0]})
    history = forecasting.histories(table, framing(table, frequency="MS"))[""]
    assert list(history.times.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    np.testing.assert_allclose(history.y, [1.0, 5.0, 4.5, 4.0])


def test_the_split_holds_out_the_last_horizon_and_validation_origins_are_earlier():
    table = seasonal(96)
    series = forecasting.histories(table, framing(table))
    train = {k: h.head(len(h.y) - 12) for k, h in series.items()}
    cuts = forecasting.cuts(train, horizon=12, folds=3, span=forecasting.Lags(12).span)
    assert cuts == [36, 24, 12]  # expanding windows: every fold forecasts 12 steps after its origin
    assert train[""].times[-1] < series[""].times[-12]


def test_too_short_a_history_for_the_horizon_is_refused_naming_the_horizon():
    table = seasonal(20)
    series = forecasting.histories(table, framing(table))
    with pytest.raises(errors.DataError, match=r"problem\.horizon"):
        forecasting.cuts(series, horizon=12, folds=3, span=13)


def test_metrics_match_their_definitions():
    actual, predicted = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    found = forecasting.metrics(actual, predicted, naive_mae=np.array([10.0, 10.0]))
    assert found["mae"] == pytest.approx(15.0) and found["rmse"] == pytest.approx(np.sqrt((100 + 400) / 2))
    assert found["mape"] == pytest.approx((0.1 + 0.1) / 2) and found["mase"] == pytest.approx(1.5)
    assert found["smape"] == pytest.approx((20 / 210 + 40 / 380) / 2)


def test_the_conformal_quantile_uses_the_finite_sample_rank():
    assert forecasting.conformal_quantile(np.arange(1, 11), 0.9) == 10.0  # ceil(11 * 0.9) = 10th of 10
    assert forecasting.conformal_quantile(np.arange(1, 101), 0.9) == 91.0  # ceil(101 * 0.9) = 91st of 100


def test_the_regression_beats_the_seasonal_naive_forecast_on_a_trending_series():
    table = seasonal(96)
    spec = framing(table)
    series = forecasting.histories(table, spec)
    train = {k: h.head(84) for k, h in series.items()}
    actual = series[""].y[84:]
    naive = forecasting.Forecaster(spec).fit(train).forecast(12)[""]
    ridge = forecasting.Forecaster(spec, "ridge", {"alpha": 1.0}).fit(train).forecast(12)[""]
    scale = np.full(12, 1.0)
    assert (
        forecasting.metrics(actual, ridge, naive_mae=scale)["mape"] < forecasting.metrics(actual, naive, naive_mae=scale)["mape"]
    )
    np.testing.assert_allclose(naive, series[""].y[72:84])  # the seasonal-naive forecast repeats the last season


def test_conformal_intervals_cover_about_their_level_of_unseen_futures():
    table = seasonal(240, seed=3)
    spec = framing(table, horizon=6)
    series = forecasting.histories(table, spec)
    fit_part = {k: h.head(120) for k, h in series.items()}
    span = forecasting.Lags(12).span
    validation = forecasting.cross_validate(
        spec, fit_part, algorithm="ridge", params={"alpha": 1.0}, cut_list=[60, 48, 36, 24, 12, 6], metric="mae", seed=0
    )
    assert span < 120
    covered = []
    for origin in range(120, 234, 6):  # 19 later origins, each forecasting 6 steps from a model of the data before it
        model = forecasting.Forecaster(spec, "ridge", {"alpha": 1.0}).fit({"": series[""].head(origin)})
        model.calibrate(validation.residuals)
        rows = pd.DataFrame({"month": series[""].times[origin : origin + 6].strftime("%Y-%m-%d")})
        bands = model.predict_interval(rows)
        actual = series[""].y[origin : origin + 6]
        covered.extend((actual >= bands["lower"]) & (actual <= bands["upper"]))
    assert 0.8 <= np.mean(covered) <= 1.0


def test_a_served_forecast_is_recursive_and_names_what_it_cannot_forecast():
    table = pd.concat([seasonal(72, series="a"), seasonal(72, seed=1, level=1000.0, series="b")], ignore_index=True)
    spec = framing(table, series="store")
    model = forecasting.Forecaster(spec, "linear_regression").fit(forecasting.histories(table, spec))
    model.calibrate(np.full(10, 0.05))
    steps = model.forecast(3)
    asked = pd.DataFrame({"month": ["2016-03-01", "2016-01-01"], "store": ["b", "a"]})
    answer = model.predict_interval(asked)
    assert answer["prediction"].tolist() == pytest.approx([steps["b"][2], steps["a"][0]])
    assert (answer["lower"] < answer["prediction"]).all() and (answer["prediction"] < answer["upper"]).all()
    assert answer["upper"][0] - answer["lower"][0] > 5 * (answer["upper"][1] - answer["lower"][1])  # per-series scale
    with pytest.raises(forecasting.RequestError, match="store: 'c' is not a series"):
        model.predict_interval(pd.DataFrame({"month": ["2016-01-01"], "store": ["c"]}))
    with pytest.raises(forecasting.RequestError, match="month: 2015-06-01 is not after the end"):
        model.predict_interval(pd.DataFrame({"month": ["2015-06-01"], "store": ["a"]}))
    with pytest.raises(forecasting.RequestError, match="not on the model's MS grid"):
        model.predict_interval(pd.DataFrame({"month": ["2016-01-15"], "store": ["a"]}))


def test_known_ahead_values_of_the_request_reach_the_forecast():
    table = seasonal(96).assign(promo=lambda t: (np.arange(len(t)) % 5 == 0).astype(float))
    table["sales"] += 50 * table["promo"]
    spec = framing(table, features=["promo"])
    model = forecasting.Forecaster(spec, "ridge", {"alpha": 0.1}).fit(forecasting.histories(table, spec))
    on = model.predict(pd.DataFrame({"month": ["2018-01-01"], "promo": [1.0]}))[0]
    off = model.predict(pd.DataFrame({"month": ["2018-01-01"], "promo": [0.0]}))[0]
    assert on - off > 30


def test_served_predictions_are_reduced_to_their_point_forecast():
    served = pd.Series([{"prediction": 4.5, "lower": 4.0, "upper": 5.0}, 3.0])
    assert forecasting.points(served).tolist() == [4.5, 3.0]


def test_a_run_refuses_what_forecasting_does_not_take_naming_the_field(tmp_path):
    table = seasonal(60)
    table.to_csv(tmp_path / "sales.csv", index=False)
    spec = {
        "project": {
            "name": "shop",
            "namespace": "ml",
            "goal": {"description": "stock the shelves", "type": "Process"},
            "problem": {"task": "forecasting", "target": "sales", "timeColumn": "month", "horizon": 6, "primaryMetric": "mape"},
        },
        "trainingJob": {"name": "shop-1", "namespace": "ml", "uid": "1", "trigger": "manual", "parentVersion": None},
        "data": {"uri": (tmp_path / "sales.csv").as_uri()},
        "output": {"uri": (tmp_path / "v1").as_uri()},
    }
    for change, message in (
        ({"preprocessing": {"scale": "minmax"}}, r"preprocessing\.scale: does not apply to forecasting"),
        ({"algorithms": [{"name": "random_forest"}]}, r"algorithms\[0\]\.name: random_forest is not a forecasting candidate"),
        ({"algorithms": [{"name": "ridge", "params": {"alpha": {"loguniform": [0.1, 1]}}}]}, r"params\.alpha: .* a grid"),
    ):
        with pytest.raises(errors.InvalidSpec, match=message):
            experiment.run(trainer_api.TrainerInput.model_validate({**spec, **change}))
    assert not (tmp_path / "v1").exists()
