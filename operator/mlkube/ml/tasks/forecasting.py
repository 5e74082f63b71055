"""Forecasting: series, features without leakage, candidate models, recursive forecasts, intervals.

A table with a time column (and optionally a series column) becomes one regular series per
series id (`histories`): rows sorted by time, a repeated time keeps its last row (an actual
reported by feedback replaces the value it corrects), the grid is the project's frequency (or the
inferred one) and a missing step is interpolated. Every model sees the same features of position
``i`` of a series (`Forecaster.design`): lags ``y[i-l]``, rolling means and deviations of
``y[i-w:i]``, calendar fields of the time, the series code and the known-ahead columns. Lags and
rolling statistics read only positions before ``i``; that is what "without leakage" means and a
unit test holds it. Values are scaled per series (by the mean absolute value of its history), so
one model serves many series of different size.

Candidates (`CANDIDATES`): ``seasonal_naive`` (the value one season back: the baseline every
run reports), and regressions on the features (``linear_regression``, ``ridge``,
``hist_gradient_boosting``) that learn the correction to the seasonal-naive forecast. A
forecast more than one step ahead is recursive: each step's prediction becomes the next step's
lag. Prediction intervals are split-conformal: the absolute errors of the recursive forecasts
made during cross-validation (every step of every fold), their ``INTERVAL_LEVEL`` quantile with
the finite-sample correction, scaled back to each series.

The fitted `Forecaster` carries the tail of every series it needs to forecast from the end of its
history, so the model server needs nothing but the request: a time (and a series, and known-ahead
values). Must not: read files, know about Kubernetes or serving.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import compose, ensemble, linear_model, pipeline, preprocessing

from mlkube.ml import errors

INTERVAL_LEVEL = 0.9
MAX_STEPS_AHEAD = 1000
NAIVE = "seasonal_naive"
# name -> (estimator factory, default grid): regressors of the correction to the seasonal-naive forecast.
CANDIDATES: dict[str, tuple[Any, dict[str, list[Any]]]] = {
    NAIVE: (None, {}),
    "linear_regression": (linear_model.LinearRegression, {}),
    "ridge": (linear_model.Ridge, {"alpha": [0.1, 1.0, 10.0]}),
    "hist_gradient_boosting": (
        ensemble.HistGradientBoostingRegressor,
        {"max_iter": [100], "learning_rate": [0.05, 0.1], "max_depth": [3]},
    ),
}


class RequestError(ValueError):
    """A request the model cannot forecast (a time not after its history, an unknown series): the client's to fix."""


@dataclasses.dataclass(frozen=True)
class Framing:
    """What is forecast: the columns, the horizon, the frequency and its season length."""

    target: str
    time: str
    series: str | None
    horizon: int
    frequency: str
    season: int
    features: tuple[str, ...] = ()
    """Known-ahead numeric columns: a request names their values for the times it asks about."""


@dataclasses.dataclass
class History:
    """One regular series: its times, values and known-ahead values (rows aligned)."""

    times: pd.DatetimeIndex
    y: np.ndarray
    exog: np.ndarray

    def head(self, length: int) -> History:
        """The first ``length`` steps."""
        return History(self.times[:length], self.y[:length], self.exog[:length])


def framing_of(
    table: pd.DataFrame, *, target: str, time: str, series: str | None, horizon: int, frequency: str | None, features: list[str]
) -> Framing:
    """The framing of `table`; the frequency is inferred from the longest series when not given.
    Raises DataError naming the field to fix."""
    times = _times(table, time)
    if frequency is None:
        keys = table[series].astype(str) if series else pd.Series("", index=table.index)
        longest = keys.value_counts().index[0]
        frequency = pd.infer_freq(pd.DatetimeIndex(times[keys == longest].drop_duplicates().sort_values()))
        if frequency is None:
            raise errors.DataError(
                f"problem.frequency: cannot infer the frequency of {time!r} (irregular times); set it, e.g. MS, D or W-SUN"
            )
    try:
        step = pd.tseries.frequencies.to_offset(frequency)
    except ValueError as e:
        raise errors.DataError(f"problem.frequency: {frequency!r} is not a pandas offset alias such as MS, D or h") from e
    return Framing(target, time, series, horizon, frequency, season_of(step), tuple(features))


def season_of(step: pd.DateOffset) -> int:
    """Steps in one season: 24 hourly, 7 daily, 52 weekly, 12 monthly, 4 quarterly, else 1."""
    start = pd.Timestamp("2001-01-01")
    days = ((start + step) - start) / pd.Timedelta(days=1)
    for limit, season in ((1 / 24 + 1e-9, 24), (1 + 1e-9, 7), (7 + 1e-9, 52), (31 + 1e-9, 12), (92 + 1e-9, 4)):
        if days <= limit:
            return season
    return 1


def histories(table: pd.DataFrame, framing: Framing) -> dict[str, History]:
    """One regular series per series id, oldest first (see the module docstring)."""
    frame = table.assign(__time__=_times(table, framing.time))
    frame["__key__"] = frame[framing.series].astype(str) if framing.series else ""
    frame = frame.dropna(subset=[framing.target]).sort_values(["__key__", "__time__"], kind="stable")
    frame = frame.drop_duplicates(["__key__", "__time__"], keep="last")
    found: dict[str, History] = {}
    for key, rows in frame.groupby("__key__", sort=True):
        grid = pd.date_range(rows["__time__"].iloc[0], rows["__time__"].iloc[-1], freq=framing.frequency)
        indexed = rows.set_index("__time__")
        off = indexed.index.difference(grid)
        if len(off):
            raise errors.DataError(
                f"{framing.time}: {off[0].date()} is not on the {framing.frequency} grid of series {key or framing.target!r}; "
                "fix the times or problem.frequency"
            )
        regular = indexed.reindex(grid)
        y = regular[framing.target].astype(float).interpolate(limit_direction="both").to_numpy()
        exog = (
            regular[list(framing.features)].astype(float).ffill().bfill().to_numpy()
            if framing.features
            else np.empty((len(grid), 0))
        )
        found[str(key)] = History(grid, y, exog)
    return found


class Lags:
    """The lag and rolling-window features of a season length; computed from positions before ``i`` only."""

    def __init__(self, season: int):
        self.lags = tuple(sorted({1, 2, 3, season, season + 1})) if season > 1 else (1, 2, 3)
        self.windows = tuple(sorted({3, season})) if season >= 3 else (3,)
        self.span = max(max(self.lags), max(self.windows))
        self.seasonal = self.lags.index(season) if season > 1 else 0
        self.names = [f"lag_{n}" for n in self.lags] + [f"mean_{w}" for w in self.windows] + [f"std_{w}" for w in self.windows]

    def block(self, y: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Features of each position (rows) from ``y[:position]``; every position must be >= span."""
        positions = np.asarray(positions, dtype=int)
        sums = np.concatenate([[0.0], np.cumsum(y)])
        squares = np.concatenate([[0.0], np.cumsum(y * y)])
        columns = [y[positions - lag] for lag in self.lags]
        means, deviations = [], []
        for w in self.windows:
            mean = (sums[positions] - sums[positions - w]) / w
            square = (squares[positions] - squares[positions - w]) / w
            means.append(mean)
            deviations.append(np.sqrt(np.maximum(square - mean * mean, 0.0)))
        return np.column_stack(columns + means + deviations)


def calendar(times: pd.DatetimeIndex, season: int) -> dict[str, np.ndarray]:
    """Calendar fields that vary at this frequency: hour, day of week, month, quarter."""
    fields = {"hour": (24,), "dayofweek": (24, 7), "month": (24, 7, 52, 12), "quarter": (4,)}
    return {name: np.asarray(getattr(times, name), dtype=float) for name, seasons in fields.items() if season in seasons}


def metrics(actual: np.ndarray, predicted: np.ndarray, *, naive_mae: np.ndarray) -> dict[str, float]:
    """mape, smape (fractions), mase, rmse and mae; ``naive_mae`` is each point's series' in-sample
    seasonal-naive mae (the mase denominator). mape leaves out actual zeros."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    error = np.abs(actual - predicted)
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(predicted)
    found = {
        "mape": float(np.mean(error[nonzero] / np.abs(actual[nonzero]))) if nonzero.any() else float("nan"),
        "smape": float(np.mean(np.where(denominator > 0, 2 * error / np.where(denominator > 0, denominator, 1), 0.0))),
        "mase": float(np.mean(error / np.where(naive_mae > 0, naive_mae, np.nan))),
        "rmse": float(math.sqrt(np.mean(error**2))),
        "mae": float(np.mean(error)),
    }
    return {name: value for name, value in found.items() if np.isfinite(value)}


def naive_mae(history: History, season: int) -> float:
    """In-sample mae of the seasonal-naive forecast (one season back) over the series."""
    back = season if len(history.y) > season else 1
    return float(np.mean(np.abs(history.y[back:] - history.y[:-back]))) if len(history.y) > back else float("nan")


def points(predictions: pd.Series) -> pd.Series:
    """The point forecasts of served predictions (``{"prediction", "lower", "upper"}`` each; a number stays one)."""
    return predictions.map(lambda p: p.get("prediction") if isinstance(p, dict) else p).astype(float)


def conformal_quantile(residuals: np.ndarray, level: float = INTERVAL_LEVEL) -> float:
    """The split-conformal quantile of absolute residuals: rank ceil((n + 1) level) of n (the largest when beyond)."""
    values = np.sort(np.abs(np.asarray(residuals, float)))
    if not len(values):
        raise ValueError("conformal_quantile: no residuals")
    rank = min(len(values), math.ceil((len(values) + 1) * level))
    return float(values[rank - 1])


class Forecaster:
    """A fitted forecasting model with the history tail it forecasts from (see the module docstring).

    scikit-learn's contract: the constructor stores its parameters; `fit` learns ``scales_``,
    ``codes_``, ``estimator_`` and ``tails_`` and returns self; `calibrate` learns the interval's ``quantile_``.
    """

    def __init__(self, framing: Framing, algorithm: str = NAIVE, params: dict[str, Any] | None = None, *, seed: int = 0):
        self.framing = framing
        self.algorithm = algorithm
        self.params = params or {}
        self.seed = seed

    @property
    def lags(self) -> Lags:
        return Lags(self.framing.season)

    @property
    def steps(self) -> list[tuple[str, Any]]:
        """Named steps, as a scikit-learn Pipeline lists them (for the model card)."""
        return [("lags_calendar", self.lags), (self.algorithm, getattr(self, "estimator_", None))]

    def fit(self, series: dict[str, History]) -> Forecaster:
        """Learn from every position of every series that has a full lag window."""
        lags = self.lags
        short = [key for key, h in series.items() if len(h.y) <= lags.span]
        if short:
            raise errors.DataError(
                f"series {short[0] or self.framing.target!r} has {len(series[short[0]].y)} steps; forecasting with season "
                f"{self.framing.season} needs more than {lags.span} (lags up to {lags.span} steps back)"
            )
        self.quantile_ = 0.0
        self.codes_ = {key: float(i) for i, key in enumerate(sorted(series))}
        self.scales_ = {key: float(np.mean(np.abs(h.y))) or 1.0 for key, h in series.items()}
        self.estimator_ = None
        if self.algorithm != NAIVE:
            frames, targets = [], []
            for key, h in series.items():
                positions = np.arange(lags.span, len(h.y))
                X = self.design(key, h.y / self.scales_[key], positions, h.times[positions], h.exog[positions])
                frames.append(X)
                targets.append(h.y[positions] / self.scales_[key] - X[f"lag_{lags.lags[lags.seasonal]}"].to_numpy())
            self.estimator_ = self._estimator(frames[0].columns).fit(
                pd.concat(frames, ignore_index=True), np.concatenate(targets)
            )
        self.tails_ = self._tails(series)
        return self

    def calibrate(self, residuals: np.ndarray, level: float = INTERVAL_LEVEL) -> Forecaster:
        """Learn the interval half-width ``quantile_`` (scaled) from out-of-sample errors; returns self.
        Until then intervals are empty (lower = upper = the forecast)."""
        self.quantile_ = conformal_quantile(residuals, level)
        return self

    def with_history(self, series: dict[str, History]) -> Forecaster:
        """The same fitted model, forecasting from the end of `series` instead (every series it knows)."""
        other = copy.copy(self)
        other.tails_ = self._tails(series)
        return other

    def _tails(self, series: dict[str, History]) -> dict[str, History]:
        span = self.lags.span
        return {key: History(h.times[-span:], h.y[-span:] / self.scales_[key], h.exog[-span:]) for key, h in series.items()}

    def design(
        self, key: str, scaled: np.ndarray, positions: np.ndarray, times: pd.DatetimeIndex, exog: np.ndarray
    ) -> pd.DataFrame:
        """The feature rows of ``positions`` of the series ``key`` (``scaled``: its values divided by its scale)."""
        lags = self.lags
        columns = dict(zip(lags.names, lags.block(scaled, positions).T))
        columns.update(calendar(times, self.framing.season))
        if self.framing.series:
            columns["series"] = np.full(len(positions), self.codes_[key])
        columns.update({f"x_{name}": exog[:, i] for i, name in enumerate(self.framing.features)})
        return pd.DataFrame(columns)

    def forecast(self, steps: int, *, exog: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The next ``steps`` values of every series after the end of its history, recursively.
        ``exog``: per series, known-ahead values of those steps (rows); default the last known ones."""
        return {key: values * self.scales_[key] for key, values in self._scaled_forecast(self.tails_, steps, exog or {}).items()}

    def _scaled_forecast(self, tails: dict[str, History], steps: int, exog: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lags = self.lags
        keys = list(tails)
        values = {key: list(tails[key].y) for key in keys}
        future = {key: pd.date_range(tails[key].times[-1], periods=steps + 1, freq=self.framing.frequency)[1:] for key in keys}
        known = {key: exog.get(key, np.repeat(tails[key].exog[-1:], steps, axis=0)) for key in keys}
        for step in range(steps):
            frames = []
            for key in keys:
                y = np.asarray(values[key])
                frames.append(self.design(key, y, np.array([len(y)]), future[key][step : step + 1], known[key][step : step + 1]))
            X = pd.concat(frames, ignore_index=True)
            naive = X[f"lag_{lags.lags[lags.seasonal]}"].to_numpy()
            predicted = naive if self.estimator_ is None else naive + self.estimator_.predict(X)
            for key, value in zip(keys, predicted):
                values[key].append(float(value))
        return {key: np.asarray(values[key][len(tails[key].y) :]) for key in keys}

    def predict_interval(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``prediction``, ``lower`` and ``upper`` for each row of ``frame`` (the time column, the series
        column, the known-ahead columns). Raises ValueError naming the column of a row it cannot forecast (`RequestError`)."""
        framing = self.framing
        keys = frame[framing.series].astype(str).to_numpy() if framing.series else np.full(len(frame), "")
        times = _times(frame, framing.time, request=True)
        ahead = np.zeros(len(frame), dtype=int)
        for row, (key, time) in enumerate(zip(keys, times)):
            if key not in self.tails_:
                raise RequestError(
                    f"{framing.series}: {key!r} is not a series this model knows; known: {', '.join(sorted(self.tails_))}"
                )
            ahead[row] = self._steps_to(key, time)
        out = pd.DataFrame({"prediction": np.zeros(len(frame)), "lower": 0.0, "upper": 0.0})
        for key in dict.fromkeys(keys):
            rows = np.flatnonzero(keys == key)
            steps = int(ahead[rows].max())
            known = np.repeat(self.tails_[key].exog[-1:], steps, axis=0)
            for row in rows[np.argsort(ahead[rows], kind="stable")] if framing.features else ():
                # The request's known-ahead values, carried forward to the later steps it does not name.
                known[ahead[row] - 1 :] = frame.iloc[row][list(framing.features)].to_numpy(dtype=float)
            scaled = self._scaled_forecast({key: self.tails_[key]}, steps, {key: known})[key]
            point = scaled[ahead[rows] - 1] * self.scales_[key]
            margin = self.quantile_ * self.scales_[key]
            out.loc[rows, "prediction"] = point
            out.loc[rows, "lower"] = point - margin
            out.loc[rows, "upper"] = point + margin
        return out

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The point forecasts of `predict_interval`."""
        return self.predict_interval(frame)["prediction"].to_numpy()

    def _steps_to(self, key: str, time: pd.Timestamp) -> int:
        last = self.tails_[key].times[-1]
        name = self.framing.time
        if time <= last:
            raise RequestError(
                f"{name}: {time.date()} is not after the end of the model's history ({last.date()}); ask for a later time"
            )
        grid = pd.date_range(last, time, freq=self.framing.frequency)
        if len(grid) - 1 > MAX_STEPS_AHEAD:
            raise RequestError(
                f"{name}: {time.date()} is more than {MAX_STEPS_AHEAD} steps after the end of the history ({last.date()})"
            )
        if grid[-1] != time:
            raise RequestError(f"{name}: {time} is not on the model's {self.framing.frequency} grid (e.g. {grid[-1]})")
        return len(grid) - 1

    def _estimator(self, columns: pd.Index) -> Any:
        factory, _ = CANDIDATES[self.algorithm]
        settings = dict(self.params)
        if "random_state" in factory().get_params():
            settings.setdefault("random_state", self.seed)
        estimator = factory(**settings)
        if self.algorithm == "hist_gradient_boosting":
            return estimator
        # Linear models: one-hot calendar fields and the series code, standardise the rest.
        encoded = [c for c in columns if c in ("hour", "dayofweek", "month", "quarter", "series")]
        scaled = [c for c in columns if c not in encoded]
        transform = compose.ColumnTransformer(
            [
                ("onehot", preprocessing.OneHotEncoder(handle_unknown="ignore"), encoded),
                ("scale", preprocessing.StandardScaler(), scaled),
            ]
        )
        return pipeline.Pipeline([("features", transform), ("model", estimator)])


@dataclasses.dataclass(frozen=True)
class Validation:
    """A configuration's expanding-window cross-validation: the metric per fold and the scaled errors."""

    scores: list[float]
    residuals: np.ndarray
    """(actual - forecast) / series scale, every step of every fold and series."""


def cuts(series: dict[str, History], *, horizon: int, folds: int, span: int) -> list[int]:
    """Steps cut from the end of every series for each fold, oldest origin first (scikit-learn's
    TimeSeriesSplit over the shortest series, test_size = horizon); a fold leaving too little
    history to fit is left out. Raises DataError when none is left."""
    from sklearn import model_selection

    shortest = min(len(h.y) for h in series.values())
    found = []
    if shortest > horizon * 2:
        splitter = model_selection.TimeSeriesSplit(n_splits=max(2, min(folds, shortest // horizon - 1)), test_size=horizon)
        found = [shortest - int(test[0]) for _, test in splitter.split(np.arange(shortest))]
    found = [cut for cut in found if shortest - cut > span + 1]
    if not found:
        raise errors.DataError(
            f"problem.horizon: the shortest series has {shortest} steps, too few to validate forecasts {horizon} steps ahead "
            f"with lags up to {span} steps back; use a shorter horizon or more history"
        )
    return found


def cross_validate(
    framing: Framing,
    series: dict[str, History],
    *,
    algorithm: str,
    params: dict[str, Any],
    cut_list: list[int],
    metric: str,
    seed: int,
) -> Validation:
    """Fit on every series up to each fold's origin, forecast the next horizon recursively, score it."""
    scores, residuals = [], []
    for cut in cut_list:
        train = {key: h.head(len(h.y) - cut) for key, h in series.items()}
        model = Forecaster(framing, algorithm, params, seed=seed).fit(train)
        steps = min(cut, framing.horizon)
        exog = {key: h.exog[len(h.y) - cut : len(h.y) - cut + steps] for key, h in series.items()}
        predicted = model.forecast(steps, exog=exog)
        actual = {key: h.y[len(h.y) - cut : len(h.y) - cut + steps] for key, h in series.items()}
        scale = {key: np.full(steps, naive_mae(train[key], framing.season)) for key in series}
        found = metrics(
            np.concatenate(list(actual.values())),
            np.concatenate([predicted[k] for k in actual]),
            naive_mae=np.concatenate([scale[k] for k in actual]),
        )
        scores.append(found.get(metric, float("nan")))
        residuals.extend((actual[k] - predicted[k]) / model.scales_[k] for k in actual)
    return Validation(scores, np.concatenate(residuals))


def _times(table: pd.DataFrame, column: str, *, request: bool = False) -> pd.Series:
    """The column as timestamps (timezone-naive); raises DataError (ValueError for a request) naming it."""
    try:
        times = pd.to_datetime(table[column], utc=False)
    except (ValueError, TypeError) as e:
        problem = f"{column}: values are not dates or times ({e})"
        raise (RequestError(problem) if request else errors.DataError(f"problem.timeColumn: {problem}")) from e
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert(None)
    if times.isna().any():
        problem = f"{column}: {int(times.isna().sum())} row(s) have no time"
        raise RequestError(problem) if request else errors.DataError(f"problem.timeColumn: {problem}")
    return times
