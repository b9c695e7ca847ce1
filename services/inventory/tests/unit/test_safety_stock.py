"""Safety stock from the forecaster's errors over the lead time (rolling origin), not from the
spread of demand."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from inventory_service.domain import forecasting as f
from inventory_service.domain import planning as pl
from inventory_service.service_layer.planning import fit_series
from inventory_service.settings import InventorySettings

LEVEL = Decimal("0.95")


def _settings() -> InventorySettings:
    return InventorySettings(database_url="postgresql+asyncpg://u:p@localhost/x")


def _history(values: np.ndarray, end: date) -> tuple[dict[date, int], date]:
    start = end - timedelta(days=len(values) - 1)
    return {start + timedelta(days=i): int(v) for i, v in enumerate(values)}, start


def _old_formula(values: np.ndarray, lead: int) -> int:
    """The formula before: z · std(recent demand, last 4 seasons or 28 days) · √L."""
    recent = values[-28:]
    return math.ceil(pl.z_score(LEVEL) * float(np.std(recent, ddof=1)) * math.sqrt(lead))


def test_error_quantile() -> None:
    errors = np.arange(-50.0, 51.0)  # -50..50: the 95% quantile is 45
    assert pl.safety_stock_from_errors(errors, LEVEL) == pytest.approx(45.0)
    assert pl.safety_stock_from_errors(errors, Decimal("0.5")) == pytest.approx(0.0)
    assert pl.safety_stock_from_errors(np.full(20, -3.0), LEVEL) == 0.0  # always over-forecast
    assert pl.safety_stock_from_errors([], LEVEL) == 0.0
    with pytest.raises(ValueError):
        pl.safety_stock_from_errors(errors, 1.0)
    sigma = pl.equivalent_daily_sigma(45.0, 9, LEVEL)
    assert pl.safety_stock(sigma, 9, LEVEL) == 45  # the cached σ gives the quantile back


def test_rolling_origin_lead_time_errors_are_actual_minus_forecast() -> None:
    rng = np.random.default_rng(3)
    y = np.where(rng.random(200) < 0.3, rng.integers(1, 6, 200), 0).astype(float)
    fc = f.forecast(y, 90, 7, lead_time=7, error_window=90)
    assert fc.method == "croston_sba"
    # origins every 2nd day back from the last, those whose lead time is fully observed
    origins = [t for t in range(len(y) - 1, len(y) - 91, -2) if t + 7 <= len(y)]
    assert fc.lead_time_errors.size == len(origins) == 42
    from statsforecast.models import CrostonSBA

    t = origins[-1]  # the oldest origin
    expected = y[t : t + 7].sum() - CrostonSBA().fit(y[:t]).predict(h=7)["mean"].sum()
    assert fc.lead_time_errors[0] == pytest.approx(expected)


def test_predictable_weekly_swings_need_little_safety_stock() -> None:
    # Demand swings 2..30 within the week, the same every week: the forecaster anticipates it.
    rng = np.random.default_rng(11)
    week = np.array([2, 2, 2, 2, 20, 30, 2], dtype=float)
    values = np.tile(week, 52) + rng.integers(0, 2, 364)
    end = date(2026, 6, 30)
    hist, start = _history(values, end)
    plan = fit_series(("sku", "wh"), hist, start, end, 7, _settings())
    new = pl.safety_stock(plan.sigma_daily, 7, LEVEL)
    old = _old_formula(values, 7)
    assert old > 40  # the spread of demand
    assert new < 10, (new, old)  # the forecaster's errors over 7 days are a few units


def test_lumpy_demand_safety_stock_covers_the_error_quantile() -> None:
    # Quiet, predictable demand with rare big orders: the old formula's normal σ of the last
    # 28 days (no big order in them) gives almost nothing; the error quantile over the last 90
    # days sees the lumps.
    values = np.full(365, 5.0)
    for day in range(270, 337, 11):  # big orders between 95 and 28 days before the end
        values[day] = 60.0
    end = date(2026, 6, 30)
    hist, start = _history(values, end)
    plan = fit_series(("sku", "wh"), hist, start, end, 7, _settings())
    new = pl.safety_stock(plan.sigma_daily, 7, LEVEL)
    assert _old_formula(values, 7) == 0
    fc = f.forecast(values, 90, 7, lead_time=7, error_window=90)
    assert new == math.ceil(pl.safety_stock_from_errors(fc.lead_time_errors, LEVEL) - 1e-9)
    assert new >= 30, new


def test_short_history_falls_back_to_one_step_error_rmse() -> None:
    values = np.array([4, 6, 5, 7, 5, 6, 4, 5, 6, 7], dtype=float)
    end = date(2026, 6, 30)
    hist, start = _history(values, end)
    plan = fit_series(("sku", "wh"), hist, start, end, 7, _settings())
    fc = f.forecast(values, 90, 7, lead_time=7, error_window=90)
    assert fc.lead_time_errors.size == 0  # 4 origins with a full lead time: too few
    assert plan.sigma_daily == pytest.approx(fc.sigma) and fc.sigma > 0


def test_a_fresh_plan_gives_the_error_quantile_at_any_service_level() -> None:
    # One fit, suggestions at several service levels (as the replay does): each uses the
    # quantile at its own level, not the configured level's quantile rescaled by z.
    rng = np.random.default_rng(5)
    values = rng.poisson(rng.choice([2.0, 12.0], 365, p=[0.8, 0.2])).astype(float)
    end = date(2026, 6, 30)
    hist, start = _history(values, end)
    plan = fit_series(("sku", "wh"), hist, start, end, 7, _settings())
    assert len(plan.lead_time_errors) >= f.MIN_ERROR_ORIGINS
    for level in (Decimal("0.8"), Decimal("0.95"), Decimal("0.99")):
        inputs = pl.PlanningInputs(
            "sku",
            "wh",
            0,
            0,
            plan.daily_demand,
            plan.lead_time_demand,
            plan.sigma_daily,
            7,
            None,
            plan.lead_time_errors,
        )
        sug = pl.suggest(
            inputs,
            service_level=level,
            jit_cover_days=7,
            standard_cover_days=30,
            batch_cover_days=60,
            ordering_cost=None,
            holding_cost=None,
        )
        q = pl.safety_stock_from_errors(plan.lead_time_errors, level)
        assert sug.safety_stock == math.ceil(q - 1e-9)
    # read back from the cache (no errors): the configured level's quantile through σ_d
    cached = pl.PlanningInputs(
        "sku", "wh", 0, 0, plan.daily_demand, plan.lead_time_demand, plan.sigma_daily, 7, None
    )
    ss = pl.safety_stock(cached.sigma_daily, 7, LEVEL)
    assert ss == math.ceil(pl.safety_stock_from_errors(plan.lead_time_errors, LEVEL) - 1e-9)
