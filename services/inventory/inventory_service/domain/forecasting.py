"""Demand forecasting shared by the planning job and ``ecomops inventory backtest``.

The forecaster is the median of three statsforecast models with automatic model choice:
AutoETS (exponential smoothing), AutoTheta (the theta family) and AutoCES (complex exponential
smoothing), each seasonal when the history covers two seasons. The choice comes from backtests
on 5,315 real series (M1, M3, tourism; docs/decisions.md "Forecasting demand"). Intermittent
series (most periods zero, typical of slow-moving SKUs) use Croston-SBA. Errors are measured with
sMAPE and MASE against seasonal naive.

Besides the point forecast, :func:`forecast` measures the forecaster's own errors over the last
``error_window`` periods by rolling origin: at every origin the fitted models are applied to the
history up to that origin (``forward``: same parameters, no refit) and their ``lead_time``-period
forecast is compared with what happened (an origin every ``ERROR_ORIGIN_STEP`` periods, the
latest first). Safety stock is a quantile of those lead-time errors
(``planning.safety_stock_from_errors``), not the spread of demand.

CPU-bound: callers run it off the event loop (``asyncio.to_thread``); :func:`forecast_many`
spreads many series over processes.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

log = logging.getLogger("inventory.forecasting")

INTERMITTENT_ZERO_SHARE = 0.5
MIN_HISTORY = 4
# The ensemble's members (statsforecast class names) and how their forecasts are combined.
ENSEMBLE = ("AutoETS", "AutoTheta", "AutoCES")
MIN_ERROR_ORIGINS = 8  # fewer rolling origins than this: no error distribution (see planning)
ERROR_ORIGIN_STEP = 2  # a rolling origin every second period of the error window


@dataclass(frozen=True, slots=True)
class Forecast:
    """``mean``: the point forecast. ``sigma``: std. deviation of the one-period-ahead forecast
    errors over the error window (0 when not measured). ``lead_time_errors``: actual minus
    forecast demand summed over the lead time, one per rolling origin (empty when not asked
    for or the history is too short). ``components``: each ensemble member's forecast."""

    mean: FloatArray
    sigma: float
    method: str
    lead_time_errors: FloatArray = field(default_factory=lambda: np.zeros(0))
    components: dict[str, FloatArray] = field(default_factory=dict)


def _as_array(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


# --- ordering of periods ------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
_YEAR_QUARTER = re.compile(r"(\d{4})-?Q([1-4])", re.IGNORECASE)
_WEEK = re.compile(r"\d{4}-?W\d{2}", re.IGNORECASE)


class PeriodError(ValueError):
    """Periods of a series that cannot be put in order (unparseable, mixed kinds, repeated)."""


def period_key(value: str) -> tuple[str, float | datetime]:
    """How a ``period`` value sorts: ``("number", x)`` for numbers (1, 2, …, 10, 100),
    ``("time", t)`` for ISO 8601 dates and times (``2024-01-31``, ``2024-01-31T10:00``,
    ``2024-W05``, ``2024-01`` — a month) and quarters (``2024-Q1``). Raises ValueError."""
    s = value.strip()
    if _NUMBER.fullmatch(s):
        x = float(s)
        if math.isfinite(x):
            return ("number", x)
    if m := _YEAR_MONTH.fullmatch(s):
        return ("time", datetime(int(m[1]), int(m[2]), 1))  # noqa: DTZ001 - naive: calendar order
    if m := _YEAR_QUARTER.fullmatch(s):
        return ("time", datetime(int(m[1]), 3 * int(m[2]) - 2, 1))  # noqa: DTZ001
    try:
        if _WEEK.fullmatch(s):
            return ("time", datetime.combine(date.fromisoformat(s + "-1"), time()))
        if len(s) >= 8 and "T" not in s.upper() and " " not in s:
            d = date.fromisoformat(s)  # also 20240131 and 2024-W05-1
            return ("time", datetime.combine(d, time()))
        t = datetime.fromisoformat(s)
        if t.tzinfo is not None:
            t = t.astimezone(UTC).replace(tzinfo=None)
        return ("time", t)
    except ValueError:
        pass
    raise ValueError(f"{value!r} is neither a number nor an ISO 8601 date")


def order_periods(series_id: str, points: Iterable[tuple[str, float]]) -> list[float]:
    """The values of one series in period order: numbers numerically, dates chronologically.
    A value that is neither, a series mixing numbers and dates, or a period given twice raises
    :class:`PeriodError` naming the series and the value."""
    keyed: list[tuple[float | datetime, str, float]] = []
    kinds: dict[str, str] = {}
    for period, value in points:
        try:
            kind, key = period_key(period)
        except ValueError:
            raise PeriodError(
                f"series {series_id!r}: period {period!r} is neither a number nor an ISO 8601 "
                "date (YYYY-MM-DD, YYYY-MM, YYYY-Www, YYYY-Qn or a date-time)"
            ) from None
        kinds.setdefault(kind, period)
        if len(kinds) > 1:
            raise PeriodError(
                f"series {series_id!r} mixes numeric periods and dates "
                f"({kinds['number']!r} and {kinds['time']!r}); use one kind per series"
            )
        keyed.append((key, period, value))
    keyed.sort(key=lambda k: k[0])  # one kind per series: the keys compare
    for a, b in itertools.pairwise(keyed):
        if a[0] == b[0]:
            raise PeriodError(
                f"series {series_id!r}: period {b[1]!r} appears twice (also as {a[1]!r})"
            )
    return [v for _, _, v in keyed]


# --- models -------------------------------------------------------------------------------------


def seasonal_naive(y: Sequence[float] | FloatArray, horizon: int, season_length: int) -> FloatArray:
    """Repeat the last season (the last value when the history is shorter than a season)."""
    arr = _as_array(y)
    if arr.size == 0:
        return np.zeros(horizon)
    m = season_length if arr.size >= season_length else 1
    last = arr[-m:]
    reps = math.ceil(horizon / m)
    return np.tile(last, reps)[:horizon]


def theta(y: Sequence[float] | FloatArray, horizon: int, season_length: int) -> FloatArray:
    """The standard Theta method (Assimakopoulos & Nikolopoulos 2000; seasonally adjusted by
    classical multiplicative decomposition when a seasonality test passes): the published M3
    comparator, reported beside the forecaster by the backtest. Seasonal naive if it fails."""
    from statsforecast.models import Theta

    arr = _as_array(y)
    m = season_length if season_length > 1 and arr.size >= 2 * season_length else 1
    try:
        mean = np.asarray(Theta(season_length=m).fit(arr).predict(h=horizon)["mean"], np.float64)
    except Exception:  # noqa: BLE001 - a series the model cannot fit
        return seasonal_naive(arr, horizon, season_length)
    if not np.all(np.isfinite(mean)):
        return seasonal_naive(arr, horizon, season_length)
    return mean


def _members(m: int) -> list[tuple[str, Any]]:
    from statsforecast import models

    return [(name, getattr(models, name)(season_length=m)) for name in ENSEMBLE]


def _combine(forecasts: list[FloatArray]) -> FloatArray:
    return np.asarray(np.median(np.vstack(forecasts), axis=0), dtype=np.float64)


def forecast(
    y: Sequence[float] | FloatArray,
    horizon: int,
    season_length: int,
    *,
    lead_time: int = 0,
    error_window: int = 0,
) -> Forecast:
    """Point forecast for the next ``horizon`` periods. With ``lead_time`` > 0 and
    ``error_window`` > 0, also the rolling-origin forecast errors of the last ``error_window``
    periods: one-period errors (``sigma``) and ``lead_time``-period sums (``lead_time_errors``)."""
    arr = _as_array(y)
    if arr.size == 0:
        return Forecast(np.zeros(horizon), 0.0, "none")
    nonneg = float(np.min(arr)) >= 0
    if arr.size < MIN_HISTORY or float(np.max(np.abs(arr))) == 0.0:
        level = float(np.mean(arr))
        return _with_errors(arr, np.full(horizon, level), "mean", lead_time, error_window, None)
    zero_share = float(np.mean(arr == 0))
    if zero_share > INTERMITTENT_ZERO_SHARE and nonneg:
        from statsforecast.models import CrostonSBA

        def croston(history: FloatArray, h: int) -> FloatArray:
            return np.asarray(CrostonSBA().fit(history).predict(h=h)["mean"], dtype=np.float64)

        mean = croston(arr, horizon)
        mean = np.clip(mean, 0, None)
        return _with_errors(arr, mean, "croston_sba", lead_time, error_window, croston)
    m = season_length if season_length > 1 and arr.size >= 2 * season_length else 1
    fitted: list[tuple[str, Any]] = []
    components: dict[str, FloatArray] = {}
    for name, model in _members(m):
        try:
            with np.errstate(all="ignore"):
                model.fit(arr)
                fc = np.asarray(model.predict(h=horizon)["mean"], dtype=np.float64)
        except Exception:  # noqa: BLE001, S112 - a member that cannot fit this series is left out
            continue
        if fc.shape == (horizon,) and np.all(np.isfinite(fc)):
            fitted.append((name, model))
            components[name] = fc
    if not components:
        mean = seasonal_naive(arr, horizon, season_length)
        return _with_errors(arr, mean, "seasonal_naive(fallback)", lead_time, error_window, None)
    mean = _combine(list(components.values()))
    if nonneg:
        mean = np.clip(mean, 0.0, None)
    method = f"median({','.join(n.removeprefix('Auto').lower() for n in components)};m={m})"

    def forward(history: FloatArray, h: int) -> FloatArray:
        out = []
        for _, model in fitted:
            with np.errstate(all="ignore"):
                fc = np.asarray(model.forward(y=history, h=h)["mean"], dtype=np.float64)
            if np.all(np.isfinite(fc)):
                out.append(fc)
        if not out:
            raise ValueError("no member could forecast from this origin")
        return _combine(out)

    result = _with_errors(arr, mean, method, lead_time, error_window, forward)
    return Forecast(result.mean, result.sigma, method, result.lead_time_errors, components)


def _with_errors(
    arr: FloatArray,
    mean: FloatArray,
    method: str,
    lead_time: int,
    window: int,
    predict: Callable[[FloatArray, int], FloatArray] | None,
) -> Forecast:
    """Attach the rolling-origin errors of the last ``window`` periods. ``predict(history, h)``
    forecasts from an origin (None: the history's mean, the forecaster of short series)."""
    if lead_time <= 0 or window <= 0:
        return Forecast(mean, 0.0, method)
    nonneg = float(np.min(arr)) >= 0
    first = max(MIN_HISTORY, arr.size - window)
    one_step: list[float] = []
    lead: list[float] = []
    for t in range(arr.size - 1, first - 1, -ERROR_ORIGIN_STEP):
        history = arr[:t]
        h = min(lead_time, arr.size - t)
        try:
            fc = predict(history, h) if predict is not None else np.full(h, float(history.mean()))
        except Exception:  # noqa: BLE001, S112 - an origin the model cannot forecast from: skipped
            continue
        if nonneg:
            fc = np.clip(fc, 0.0, None)
        one_step.append(float(arr[t] - fc[0]))
        if h == lead_time:
            lead.append(float(np.sum(arr[t : t + h]) - np.sum(fc[:h])))
    sigma = float(np.sqrt(np.mean(np.square(one_step)))) if len(one_step) > 1 else 0.0
    lead.reverse()  # oldest origin first
    errors = np.asarray(lead, dtype=np.float64) if len(lead) >= MIN_ERROR_ORIGINS else np.zeros(0)
    return Forecast(mean, sigma, method, errors)


# --- many series at once ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    key: Hashable
    y: FloatArray
    horizon: int
    lead_time: int = 0


def _forecast_chunk(
    chunk: list[SeriesRequest], season_length: int, error_window: int
) -> list[Forecast | str]:
    out: list[Forecast | str] = []
    for r in chunk:
        try:
            out.append(
                forecast(
                    r.y, r.horizon, season_length, lead_time=r.lead_time, error_window=error_window
                )
            )
        except Exception as exc:  # noqa: BLE001 - one bad series never stops the others
            out.append(f"{type(exc).__name__}: {exc}")
    return out


def forecast_many(
    requests: Sequence[SeriesRequest],
    season_length: int,
    *,
    error_window: int = 0,
    workers: int = 1,
    chunk_size: int = 64,
) -> list[Forecast | str]:
    """:func:`forecast` for each request, in order; a series that fails gives its error message
    instead (the others go on). ``workers`` > 1 spreads chunks over that many processes (spawned:
    each imports statsforecast once); a pool that breaks falls back to this process."""
    if workers <= 1 or len(requests) <= chunk_size:
        return _forecast_chunk(list(requests), season_length, error_window)
    import multiprocessing

    chunks = [list(requests[i : i + chunk_size]) for i in range(0, len(requests), chunk_size)]
    results: list[list[Forecast | str] | None] = [None] * len(chunks)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_forecast_chunk, c, season_length, error_window) for c in chunks]
            for i, fut in enumerate(futures):
                try:
                    results[i] = fut.result()
                except Exception:  # noqa: BLE001 - a dead worker: redo that chunk here
                    log.warning("forecast worker failed; chunk %d redone in-process", i)
    except Exception:  # no pool at all (e.g. no semaphores): run in-process
        log.warning("forecast process pool unavailable; running in-process", exc_info=True)
    out: list[Forecast | str] = []
    for i, c in enumerate(chunks):
        got = results[i]
        out.extend(got if got is not None else _forecast_chunk(c, season_length, error_window))
    return out


# --- error measures and the backtest ------------------------------------------------------------


def smape(actual: FloatArray, predicted: FloatArray) -> float:
    """Symmetric MAPE in percent (0..200); periods where both are zero count as 0."""
    denom = np.abs(actual) + np.abs(predicted)
    terms = np.where(
        denom == 0, 0.0, 2.0 * np.abs(actual - predicted) / np.where(denom == 0, 1, denom)
    )
    return float(100.0 * np.mean(terms))


def mase(train: FloatArray, actual: FloatArray, predicted: FloatArray, season_length: int) -> float:
    """Mean absolute scaled error: MAE over the in-sample seasonal naive MAE (NaN if that is 0)."""
    m = season_length if train.size > season_length else 1
    if train.size <= m:
        return float("nan")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(actual - predicted)) / scale)


@dataclass
class SeriesScore:
    series_id: str
    smape_model: float
    smape_naive: float
    mase_model: float
    mase_naive: float
    method: str
    forecast: FloatArray
    smape_theta: float = float("nan")
    mase_theta: float = float("nan")


@dataclass
class BacktestResult:
    horizon: int
    season_length: int
    series: list[SeriesScore] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def _mean(self, attr: str) -> float:
        values = [getattr(s, attr) for s in self.series]
        finite = [v for v in values if not math.isnan(v)]
        return float(np.mean(finite)) if finite else float("nan")

    def summary(self) -> dict[str, float | int]:
        wins_smape = sum(1 for s in self.series if s.smape_model < s.smape_naive)
        wins_mase = sum(
            1 for s in self.series if not math.isnan(s.mase_model) and s.mase_model < s.mase_naive
        )
        return {
            "series": len(self.series),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "smape_model": self._mean("smape_model"),
            "smape_naive": self._mean("smape_naive"),
            "smape_theta": self._mean("smape_theta"),
            "mase_model": self._mean("mase_model"),
            "mase_naive": self._mean("mase_naive"),
            "mase_theta": self._mean("mase_theta"),
            "model_better_smape": wins_smape,
            "model_better_mase": wins_mase,
        }


def backtest(
    series: Iterable[tuple[str, Sequence[float]]],
    horizon: int,
    season_length: int,
    *,
    workers: int = 1,
    with_theta: bool = True,
) -> BacktestResult:
    """Hold out the last ``horizon`` points of each series; score the forecaster, seasonal naive
    and (``with_theta``) the standard Theta method on them. Series with fewer than horizon + 2
    points are skipped; a series the forecaster fails on is listed in ``failed``."""
    result = BacktestResult(horizon, season_length)
    kept: list[tuple[str, FloatArray, FloatArray]] = []
    for series_id, values in series:
        arr = _as_array(values)
        if arr.size < horizon + 2:
            result.skipped.append(series_id)
            continue
        kept.append((series_id, arr[:-horizon], arr[-horizon:]))
    requests = [SeriesRequest(sid, train, horizon) for sid, train, _ in kept]
    fitted = forecast_many(requests, season_length, workers=workers)
    for (series_id, train, test), model in zip(kept, fitted, strict=True):
        if isinstance(model, str):
            result.failed.append((series_id, model))
            continue
        naive = seasonal_naive(train, horizon, season_length)
        th = theta(train, horizon, season_length) if with_theta else None
        result.series.append(
            SeriesScore(
                series_id=series_id,
                smape_model=smape(test, model.mean),
                smape_naive=smape(test, naive),
                mase_model=mase(train, test, model.mean, season_length),
                mase_naive=mase(train, test, naive, season_length),
                method=model.method,
                forecast=model.mean,
                smape_theta=smape(test, th) if th is not None else float("nan"),
                mase_theta=mase(train, test, th, season_length) if th is not None else float("nan"),
            )
        )
    return result
