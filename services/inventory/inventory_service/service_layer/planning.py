"""Planning: the forecast job, replenishment suggestions, ABC classes, KPIs and the daily stock
snapshot.

Forecasts are cached in the ``forecasts`` table by a periodic job (a singleton ``Job``: one
replica at a time); requests read the cache and today's stock, never fit models.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import cast

import numpy as np

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Unprocessable

from ..domain import forecasting
from ..domain.planning import (
    AbcClass,
    AbcEntry,
    PlanningInputs,
    SeriesPlan,
    Suggestion,
    classify_abc,
    equivalent_daily_sigma,
    safety_stock_from_errors,
    suggest,
)
from ..settings import InventorySettings
from .ports import Ctx, InventoryUnitOfWork
from .stock import STAFF
from .views import AbcView, Kpis, SuggestionPage, SuggestionView

log = logging.getLogger("inventory.planning")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlanning(Command[int], roles=(Role.SERVICE,)):
    """Recompute forecasts and reorder points for every stocked active SKU (the periodic job;
    ``force`` also when the cache is fresh). Answers the number of series fitted."""

    force: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotLevels(Command[int], roles=(Role.SERVICE,)):
    """Today's row per SKU in the daily stock snapshots (the periodic job)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListReplenishmentSuggestions(Query[SuggestionPage], roles=STAFF):
    """Per SKU and warehouse: forecast daily demand, safety stock, reorder point, suggested
    order quantity, days of cover, ABC class and why."""

    warehouse: str | None = None
    after: tuple[str, str] | None = None
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAbcClassification(Query[AbcView], roles=STAFF):
    """ABC classes by revenue contribution over the configured window."""

    currency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetInventoryKpis(Query[Kpis], roles=STAFF):
    """Inventory turnover, stock-out rate, days of cover and excess stock over a date range
    (``YYYY-MM-DD``; default: the last 30 days)."""

    from_date: str | None = None
    to_date: str | None = None


# --- fitting (CPU-bound, in a worker thread) ------------------------------------------------------


def _daily_history(history: dict[date, int], start: date, end: date) -> list[float]:
    days = (end - start).days + 1
    return [float(history.get(start + timedelta(days=i), 0)) for i in range(max(days, 0))]


def plan_from_forecast(
    key: tuple[str, str],
    f: forecasting.Forecast,
    history_days: int,
    lead_time: int,
    settings: InventorySettings,
) -> SeriesPlan:
    """Cache row of one series. Safety stock comes from the forecaster's own errors over the
    last ``forecast_horizon_days`` (rolling origin): the service-level quantile of its lead-time
    errors, cached as the equivalent σ_d; with too few origins for a distribution, the RMSE of its
    one-day-ahead errors as σ_d (z · σ_d · √L). Never the spread of demand."""
    window = f.mean[: settings.forecast_horizon_days]
    daily = float(window.mean()) if window.size else 0.0
    ltd = float(f.mean[:lead_time].sum()) if lead_time > 0 else 0.0
    sigma = f.sigma
    if f.lead_time_errors.size and lead_time > 0:
        safety = safety_stock_from_errors(f.lead_time_errors, settings.service_level)
        sigma = equivalent_daily_sigma(safety, lead_time, settings.service_level)
    errors = tuple(float(e) for e in f.lead_time_errors) if lead_time > 0 else ()
    return SeriesPlan(key[0], key[1], daily, ltd, sigma, lead_time, f.method, history_days, errors)


def fit_series(
    key: tuple[str, str],
    history: dict[date, int],
    start: date,
    end: date,
    lead_time: int,
    settings: InventorySettings,
) -> SeriesPlan:
    """Fit one SKU/warehouse series (CPU-bound; runs in a worker thread)."""
    y = _daily_history(history, start, end)
    horizon = max(settings.forecast_horizon_days, lead_time, 1)
    f = forecasting.forecast(
        y,
        horizon,
        settings.forecast_season_length,
        lead_time=lead_time,
        error_window=settings.forecast_horizon_days,
    )
    return plan_from_forecast(key, f, len(y), lead_time, settings)


def fit_all(
    series: dict[tuple[str, str], dict[date, int]],
    leads: dict[str, int],
    today: date,
    settings: InventorySettings,
) -> list[SeriesPlan]:
    """Fit every series, over ``forecast_workers`` processes (0: one per core). A series whose
    fit fails is logged and left out (its previous cached forecast stays); the others go on."""
    end = today - timedelta(days=1)  # whole days only
    floor = today - timedelta(days=settings.forecast_history_days)
    requests = []
    for key, hist in series.items():
        first = min(hist) if hist else end
        y = np.asarray(_daily_history(hist, max(first, floor), end), dtype=np.float64)
        lead = leads[key[0]]
        horizon = max(settings.forecast_horizon_days, lead, 1)
        requests.append(forecasting.SeriesRequest(key, y, horizon, lead))
    workers = settings.forecast_workers or os.cpu_count() or 1
    results = forecasting.forecast_many(
        requests,
        settings.forecast_season_length,
        error_window=settings.forecast_horizon_days,
        workers=workers,
    )
    out = []
    for req, f in zip(requests, results, strict=True):
        key = cast(tuple[str, str], req.key)
        if isinstance(f, str):
            log.warning("planning: forecast of %s/%s failed: %s", key[0], key[1], f)
            continue
        out.append(plan_from_forecast(key, f, int(req.y.size), req.lead_time, settings))
    return out


def _suggest(
    p: SeriesPlan,
    on_hand: int,
    available: int,
    abc: AbcClass | None,
    settings: InventorySettings,
    on_order: int = 0,
) -> Suggestion:
    return suggest(
        PlanningInputs(
            sku=p.sku,
            warehouse=p.warehouse,
            on_hand=on_hand,
            available=available,
            daily_demand=p.daily_demand,
            lead_time_demand=p.lead_time_demand,
            sigma_daily=p.sigma_daily,
            lead_time_days=p.lead_time_days,
            abc=abc,
            lead_time_errors=p.lead_time_errors,
            on_order=on_order,
        ),
        service_level=settings.service_level,
        jit_cover_days=settings.jit_cover_days,
        standard_cover_days=settings.standard_cover_days,
        batch_cover_days=settings.batch_cover_days,
        ordering_cost=settings.ordering_cost_minor,
        holding_cost=settings.holding_cost_minor_per_unit_year,
    )


def parse_range(from_s: str | None, to_s: str | None, today: date) -> tuple[date, date]:
    try:
        to_d = date.fromisoformat(to_s) if to_s else today
        from_d = date.fromisoformat(from_s) if from_s else to_d - timedelta(days=29)
    except (ValueError, OverflowError):  # OverflowError: to=0001-01-01 minus 29 days
        raise Unprocessable("from and to must be dates (YYYY-MM-DD)", code="invalid-date") from None
    if from_d > to_d:
        raise Unprocessable("from must not be after to", code="invalid-date")
    if (to_d - from_d).days > 3660:
        raise Unprocessable("the range may span at most 10 years", code="invalid-date")
    return from_d, to_d


# --- handlers ------------------------------------------------------------------------------------


@handler
async def run_planning(cmd: RunPlanning, ctx: Ctx) -> int:
    settings = ctx.deps.settings
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        if not cmd.force:
            last = await uow.planning.last_forecast_at()
            if last is not None and now - last < timedelta(
                seconds=settings.planning_interval_seconds * 0.9
            ):
                return 0
        keys = await uow.planning.active_series()
        series: dict[tuple[str, str], dict[date, int]] = {(k.sku, k.warehouse): {} for k in keys}
        leads = {
            k.sku: k.lead_time_days
            if k.lead_time_days is not None
            else settings.default_lead_time_days
            for k in keys
        }
        since = now.date() - timedelta(days=settings.forecast_history_days)
        for d in await uow.planning.demand_since(since):
            if (d.sku, d.warehouse) in series:
                series[(d.sku, d.warehouse)][d.day] = d.units
        plans = await asyncio.to_thread(fit_all, series, leads, now.date(), settings)
        classes = {e.sku: e.abc_class for e in await _abc(uow, settings, None, now.date())}
        levels = await uow.planning.positions()
        thresholds: list[tuple[str, str, int, int]] = []
        for p in plans:
            await uow.planning.save_forecast(p, now)
            on_hand, available, on_order = levels.get((p.sku, p.warehouse), (0, 0, 0))
            sug = _suggest(p, on_hand, available, classes.get(p.sku), settings, on_order)
            rop = sug.reorder_point if p.daily_demand > 0 else settings.default_reorder_point
            thresholds.append((p.sku, p.warehouse, rop, sug.suggested_order_quantity))
        await uow.commit()
        # Thresholds on the hot stock rows: one short transaction per row, so the planning run
        # never holds more than one stock row lock (no deadlock with reservations or the sweep,
        # no long wait for a flash sale).
        for sku, wh, rop, soq in sorted(thresholds):
            await uow.planning.set_thresholds(sku, wh, rop, soq)
            await uow.commit()
    log.info("planning: fitted %d series", len(plans))
    return len(plans)


@handler
async def snapshot_levels(cmd: SnapshotLevels, ctx: Ctx) -> int:
    """Levels now; ``stocked_out`` keeps any zero seen today."""
    async with ctx.uow as uow:
        n = await uow.planning.snapshot_levels(ctx.deps.clock().date())
        await uow.commit()
    return n


@handler
async def list_replenishment_suggestions(
    query: ListReplenishmentSuggestions, ctx: Ctx
) -> SuggestionPage:
    settings = ctx.deps.settings
    async with ctx.uow as uow:
        rows = await uow.planning.suggestion_rows(
            warehouse=query.warehouse, after=query.after, limit=query.limit + 1
        )
        abc = await _abc(uow, settings, None, ctx.deps.clock().date())
    classes = {e.sku: e.abc_class for e in abc}
    out = []
    for r in rows:
        lead = (
            r.lead_time_days
            if r.lead_time_days is not None
            else (
                r.sku_lead_time_days
                if r.sku_lead_time_days is not None
                else settings.default_lead_time_days
            )
        )
        plan = SeriesPlan(
            r.sku,
            r.warehouse,
            float(r.daily_demand or 0.0),
            float(r.lead_time_demand or 0.0),
            float(r.sigma_daily or 0.0),
            int(lead),
            r.method or "none",
            int(r.history_days or 0),
        )
        sug = _suggest(
            plan, r.on_hand, r.on_hand - r.reserved, classes.get(r.sku), settings, r.on_order
        )
        if r.computed_at is None:
            sug = replace(
                sug, reason="no forecast yet (the planning job has not run for it); " + sug.reason
            )
        out.append(SuggestionView(sug, r.computed_at))
    return SuggestionPage(out[: query.limit], more=len(out) > query.limit)


@handler
async def get_abc_classification(query: GetAbcClassification, ctx: Ctx) -> AbcView:
    settings = ctx.deps.settings
    currency = query.currency or settings.abc_currency
    async with ctx.uow as uow:
        items = await _abc(uow, settings, currency, ctx.deps.clock().date())
    return AbcView(
        currency=currency,
        window_days=settings.abc_window_days,
        a_threshold=settings.abc_a_threshold,
        b_threshold=settings.abc_b_threshold,
        items=items,
    )


async def _abc(
    uow: InventoryUnitOfWork, settings: InventorySettings, currency: str | None, today: date
) -> list[AbcEntry]:
    """ABC over the window's revenue; active SKUs without revenue are C."""
    since = today - timedelta(days=settings.abc_window_days)
    async with uow:
        revenue = await uow.planning.revenue_by_sku(currency or settings.abc_currency, since)
        active = await uow.planning.active_skus()
    for sku in active:
        revenue.setdefault(sku, 0)
    return classify_abc(list(revenue.items()), settings.abc_a_threshold, settings.abc_b_threshold)


@handler
async def get_inventory_kpis(query: GetInventoryKpis, ctx: Ctx) -> Kpis:
    settings = ctx.deps.settings
    today = ctx.deps.clock().date()
    from_d, to_d = parse_range(query.from_date, query.to_date, today)
    days = (to_d - from_d).days + 1
    async with ctx.uow as uow:
        units = await uow.planning.units_sold(from_d, to_d)
        per_day = await uow.planning.stock_days(from_d, to_d)
        current_on_hand, current_available = await uow.planning.current_totals()
        positions = await uow.planning.forecast_positions()
        classes = {e.sku: e.abc_class for e in await _abc(uow, settings, None, today)}
    sku_days = sum(d.sku_days for d in per_day)
    out_days = sum(d.stockout_sku_days for d in per_day)
    avg_on_hand = (
        sum(d.on_hand for d in per_day) / len(per_day) if per_day else float(current_on_hand)
    )
    daily_sales = units / days
    excess = 0
    for r in positions:
        plan = SeriesPlan(
            r.sku,
            r.warehouse,
            r.daily_demand,
            r.lead_time_demand,
            r.sigma_daily,
            r.lead_time_days,
            "",
            0,
        )
        sug = _suggest(plan, r.on_hand, r.on_hand - r.reserved, classes.get(r.sku), settings)
        cycle = math.ceil(plan.daily_demand * settings.standard_cover_days)
        excess += max(0, r.on_hand - (sug.reorder_point + cycle))
    return Kpis(
        from_date=from_d,
        to_date=to_d,
        units_sold=units,
        average_on_hand=round(avg_on_hand, 2),
        inventory_turnover=round(units / avg_on_hand, 4) if avg_on_hand > 0 else 0.0,
        stock_out_rate=round(out_days / sku_days, 4) if sku_days else 0.0,
        days_of_cover=(
            round(float(current_available) / daily_sales, 1) if daily_sales > 0 else -1.0
        ),
        excess_stock_units=excess,
        sku_days=sku_days,
        stockout_sku_days=out_days,
    )
