"""Demand forecasting shared by the planning job and ``ecomops inventory backtest``.

The forecaster is statsforecast's AutoETS (exponential smoothing with automatic model choice,
seasonal when the history covers two seasons), with Croston-SBA for intermittent series (most
periods zero, typical of slow-moving SKUs). Errors are measured with sMAPE and MASE against
seasonal naive. CPU-bound: callers run it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

INTERMITTENT_ZERO_SHARE = 0.5
MIN_HISTORY = 4


@dataclass(frozen=True, slots=True)
class Forecast:
    mean: FloatArray
    sigma: float
    method: str


def _as_array(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def seasonal_naive(y: Sequence[float] | FloatArray, horizon: int, season_length: int) -> FloatArray:
    """Repeat the last season (the last value when the history is shorter than a season)."""
    arr = _as_array(y)
    if arr.size == 0:
        return np.zeros(horizon)
    m = season_length if arr.size >= season_length else 1
    last = arr[-m:]
    reps = math.ceil(horizon / m)
    return np.tile(last, reps)[:horizon]


def forecast(y: Sequence[float] | FloatArray, horizon: int, season_length: int) -> Forecast:
    """Point forecast for the next ``horizon`` periods and the std. deviation of one-step errors."""
    arr = _as_array(y)
    if arr.size == 0:
        return Forecast(np.zeros(horizon), 0.0, "none")
    if arr.size < MIN_HISTORY or float(np.max(np.abs(arr))) == 0.0:
        level = float(np.mean(arr))
        sigma = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
        return Forecast(np.full(horizon, level), sigma, "mean")
    zero_share = float(np.mean(arr == 0))
    if zero_share > INTERMITTENT_ZERO_SHARE and float(np.min(arr)) >= 0:
        from statsforecast.models import CrostonSBA

        model: Any = CrostonSBA()
        method = "croston_sba"
    else:
        from statsforecast.models import AutoETS

        m = season_length if season_length > 1 and arr.size >= 2 * season_length else 1
        model = AutoETS(season_length=m)
        method = f"auto_ets(m={m})"
    mean: FloatArray
    try:
        fitted = model.fit(arr)
        mean = np.asarray(fitted.predict(h=horizon)["mean"], dtype=np.float64)
    except Exception:  # noqa: BLE001 - a series the model cannot fit falls back to seasonal naive
        mean = seasonal_naive(arr, horizon, season_length)
        method = "seasonal_naive(fallback)"
    if not np.all(np.isfinite(mean)):
        mean = seasonal_naive(arr, horizon, season_length)
        method = "seasonal_naive(fallback)"
    if float(np.min(arr)) >= 0:
        mean = np.clip(mean, 0.0, None)
    return Forecast(mean, _one_step_sigma(arr, season_length), method)


def _one_step_sigma(arr: FloatArray, season_length: int) -> float:
    """Spread of demand for safety stock: std. deviation of the history's recent part."""
    recent = arr[-max(season_length * 4, 28) :]
    return float(np.std(recent, ddof=1)) if recent.size > 1 else 0.0


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


@dataclass
class BacktestResult:
    horizon: int
    season_length: int
    series: list[SeriesScore] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

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
            "smape_model": self._mean("smape_model"),
            "smape_naive": self._mean("smape_naive"),
            "mase_model": self._mean("mase_model"),
            "mase_naive": self._mean("mase_naive"),
            "model_better_smape": wins_smape,
            "model_better_mase": wins_mase,
        }


def backtest(
    series: Iterable[tuple[str, Sequence[float]]], horizon: int, season_length: int
) -> BacktestResult:
    """Hold out the last ``horizon`` points of each series; score the forecaster and seasonal
    naive on them. Series with fewer than horizon + 2 points are skipped."""
    result = BacktestResult(horizon, season_length)
    for series_id, values in series:
        arr = _as_array(values)
        if arr.size < horizon + 2:
            result.skipped.append(series_id)
            continue
        train, test = arr[:-horizon], arr[-horizon:]
        model = forecast(train, horizon, season_length)
        naive = seasonal_naive(train, horizon, season_length)
        result.series.append(
            SeriesScore(
                series_id=series_id,
                smape_model=smape(test, model.mean),
                smape_naive=smape(test, naive),
                mase_model=mase(train, test, model.mean, season_length),
                mase_naive=mase(train, test, naive, season_length),
                method=model.method,
                forecast=model.mean,
            )
        )
    return result
