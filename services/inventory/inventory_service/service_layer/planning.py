"""Planning use cases: the forecast job, replenishment suggestions, ABC classes and KPIs.

Forecasts are cached in the ``forecasts`` table by a periodic job (one replica at a time, under
a transaction-scoped advisory lock); requests read the cache and today's stock, never fit models.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import Unprocessable

from ..adapters import tables as t
from ..domain import forecasting
from ..domain.planning import (
    AbcClass,
    AbcEntry,
    PlanningInputs,
    Suggestion,
    classify_abc,
    suggest,
)
from ..settings import InventorySettings

log = logging.getLogger("inventory.planning")

PLANNING_LOCK = zlib.crc32(b"ecomops-inventory-planning")


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    sku: str
    warehouse: str
    daily_demand: float
    lead_time_demand: float
    sigma_daily: float
    lead_time_days: int
    method: str
    history_days: int


def fit_series(
    key: tuple[str, str],
    history: dict[date, int],
    start: date,
    end: date,
    lead_time: int,
    settings: InventorySettings,
) -> SeriesPlan:
    """Fit one SKU/warehouse series (CPU-bound; runs in a worker thread)."""
    days = (end - start).days + 1
    y = [float(history.get(start + timedelta(days=i), 0)) for i in range(days)] if days > 0 else []
    horizon = max(settings.forecast_horizon_days, lead_time, 1)
    f = forecasting.forecast(y, horizon, settings.forecast_season_length)
    window = f.mean[: settings.forecast_horizon_days]
    daily = float(window.mean()) if window.size else 0.0
    ltd = float(f.mean[:lead_time].sum()) if lead_time > 0 else 0.0
    return SeriesPlan(key[0], key[1], daily, ltd, f.sigma, lead_time, f.method, len(y))


def fit_all(
    series: dict[tuple[str, str], dict[date, int]],
    leads: dict[str, int],
    today: date,
    settings: InventorySettings,
) -> list[SeriesPlan]:
    end = today - timedelta(days=1)  # whole days only
    floor = today - timedelta(days=settings.forecast_history_days)
    out = []
    for key, hist in series.items():
        first = min(hist) if hist else end
        start = max(first, floor)
        out.append(fit_series(key, hist, start, end, leads[key[0]], settings))
    return out


async def run_planning(uow: UnitOfWork, settings: InventorySettings, *, force: bool = False) -> int:
    """Recompute forecasts and reorder points for every stocked active SKU. Returns the number of
    series fitted (0 when another replica runs it, or the cache is fresh and not forced)."""
    now = utcnow()
    async with uow:
        s = uow.session
        if not await s.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(PLANNING_LOCK))):
            return 0
        if not force:
            last = await s.scalar(sa.select(sa.func.max(t.forecasts.c.computed_at)))
            if last is not None and now - last < timedelta(
                seconds=settings.planning_interval_seconds * 0.9
            ):
                return 0
        rows = (
            await s.execute(
                sa.select(t.stock.c.sku, t.stock.c.warehouse, t.skus.c.lead_time_days)
                .join(t.skus, t.skus.c.sku == t.stock.c.sku)
                .where(t.skus.c.status == "active")
            )
        ).all()
        series: dict[tuple[str, str], dict[date, int]] = {(r.sku, r.warehouse): {} for r in rows}
        leads = {
            r.sku: r.lead_time_days
            if r.lead_time_days is not None
            else settings.default_lead_time_days
            for r in rows
        }
        since = now.date() - timedelta(days=settings.forecast_history_days)
        hist = (
            await s.execute(sa.select(t.demand_daily).where(t.demand_daily.c.day >= since))
        ).all()
        for h in hist:
            key = (h.sku, h.warehouse)
            if key in series:
                series[key][h.day] = int(h.units)
        plans = await asyncio.to_thread(fit_all, series, leads, now.date(), settings)
        abc = await abc_classes(uow, settings)
        classes = {e.sku: e.abc_class for e in abc}
        levels = {
            (r.sku, r.warehouse): (int(r.on_hand), int(r.on_hand - r.reserved))
            for r in (await s.execute(sa.select(t.stock))).all()
        }
        thresholds: list[tuple[str, str, int, int]] = []
        for p in plans:
            stmt = pg_insert(t.forecasts).values(
                sku=p.sku,
                warehouse=p.warehouse,
                daily_demand=p.daily_demand,
                lead_time_demand=p.lead_time_demand,
                sigma_daily=p.sigma_daily,
                lead_time_days=p.lead_time_days,
                method=p.method,
                history_days=p.history_days,
                computed_at=now,
            )
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.forecasts.c.sku, t.forecasts.c.warehouse],
                    set_={
                        c: stmt.excluded[c]
                        for c in (
                            "daily_demand",
                            "lead_time_demand",
                            "sigma_daily",
                            "lead_time_days",
                            "method",
                            "history_days",
                            "computed_at",
                        )
                    },
                )
            )
            on_hand, available = levels.get((p.sku, p.warehouse), (0, 0))
            sug = _suggest(p, on_hand, available, classes.get(p.sku), settings)
            rop = sug.reorder_point if p.daily_demand > 0 else settings.default_reorder_point
            thresholds.append((p.sku, p.warehouse, rop, sug.suggested_order_quantity))
        await uow.commit()
        # Thresholds on the hot stock rows: one short transaction per row, so the planning run
        # never holds more than one stock row lock (no deadlock with reservations or the sweep,
        # no long wait for a flash sale).
        for sku, wh, rop, soq in sorted(thresholds):
            await s.execute(
                sa.update(t.stock)
                .where(
                    t.stock.c.sku == sku,
                    t.stock.c.warehouse == wh,
                    sa.or_(
                        t.stock.c.reorder_point != rop, t.stock.c.suggested_order_quantity != soq
                    ),
                )
                .values(reorder_point=rop, suggested_order_quantity=soq)
            )
            await uow.commit()
    log.info("planning: fitted %d series", len(plans))
    return len(plans)


def _suggest(
    p: SeriesPlan,
    on_hand: int,
    available: int,
    abc: AbcClass | None,
    settings: InventorySettings,
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
        ),
        service_level=settings.service_level,
        jit_cover_days=settings.jit_cover_days,
        standard_cover_days=settings.standard_cover_days,
        batch_cover_days=settings.batch_cover_days,
        ordering_cost=settings.ordering_cost_minor,
        holding_cost=settings.holding_cost_minor_per_unit_year,
    )


@dataclass(frozen=True, slots=True)
class SuggestionView:
    suggestion: Suggestion
    computed_at: datetime | None


async def replenishment_suggestions(
    uow: UnitOfWork,
    settings: InventorySettings,
    *,
    warehouse: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[SuggestionView]:
    async with uow:
        s = uow.session
        q = (
            sa.select(
                t.stock.c.sku,
                t.stock.c.warehouse,
                t.stock.c.on_hand,
                t.stock.c.reserved,
                t.skus.c.lead_time_days.label("sku_lead"),
                t.forecasts.c.daily_demand,
                t.forecasts.c.lead_time_demand,
                t.forecasts.c.sigma_daily,
                t.forecasts.c.lead_time_days,
                t.forecasts.c.method,
                t.forecasts.c.history_days,
                t.forecasts.c.computed_at,
            )
            .join(t.skus, t.skus.c.sku == t.stock.c.sku)
            .outerjoin(
                t.forecasts,
                sa.and_(
                    t.forecasts.c.sku == t.stock.c.sku,
                    t.forecasts.c.warehouse == t.stock.c.warehouse,
                ),
            )
            .where(t.skus.c.status == "active")
            .order_by(t.stock.c.sku, t.stock.c.warehouse)
            .limit(limit)
        )
        if warehouse:
            q = q.where(t.stock.c.warehouse == warehouse)
        if after is not None:
            q = q.where(sa.tuple_(t.stock.c.sku, t.stock.c.warehouse) > sa.tuple_(*after))
        rows = (await s.execute(q)).all()
        classes = {e.sku: e.abc_class for e in await abc_classes(uow, settings)}
    out = []
    for r in rows:
        lead = (
            r.lead_time_days
            if r.lead_time_days is not None
            else (r.sku_lead if r.sku_lead is not None else settings.default_lead_time_days)
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
            plan, int(r.on_hand), int(r.on_hand - r.reserved), classes.get(r.sku), settings
        )
        if r.computed_at is None:
            sug = _with_reason(
                sug, "no forecast yet (the planning job has not run for it); " + sug.reason
            )
        out.append(SuggestionView(sug, r.computed_at))
    return out


def _with_reason(s: Suggestion, reason: str) -> Suggestion:
    from dataclasses import replace

    return replace(s, reason=reason)


async def abc_classes(
    uow: UnitOfWork, settings: InventorySettings, currency: str | None = None
) -> list[AbcEntry]:
    """ABC over the window's revenue; active SKUs without revenue are C."""
    cur = currency or settings.abc_currency
    since = utcnow().date() - timedelta(days=settings.abc_window_days)
    async with uow:
        s = uow.session
        rows = (
            await s.execute(
                sa.select(t.revenue_daily.c.sku, sa.func.sum(t.revenue_daily.c.revenue_minor))
                .where(t.revenue_daily.c.currency == cur, t.revenue_daily.c.day >= since)
                .group_by(t.revenue_daily.c.sku)
            )
        ).all()
        revenue = {r[0]: int(r[1] or 0) for r in rows}
        active = (
            (await s.execute(sa.select(t.skus.c.sku).where(t.skus.c.status == "active")))
            .scalars()
            .all()
        )
    for sku in active:
        revenue.setdefault(sku, 0)
    return classify_abc(list(revenue.items()), settings.abc_a_threshold, settings.abc_b_threshold)


@dataclass(frozen=True, slots=True)
class Kpis:
    from_date: date
    to_date: date
    units_sold: int
    average_on_hand: float
    inventory_turnover: float
    stock_out_rate: float
    days_of_cover: float
    excess_stock_units: int
    sku_days: int
    stockout_sku_days: int


def parse_range(from_s: str | None, to_s: str | None) -> tuple[date, date]:
    try:
        to_d = date.fromisoformat(to_s) if to_s else utcnow().date()
        from_d = date.fromisoformat(from_s) if from_s else to_d - timedelta(days=29)
    except (ValueError, OverflowError):  # OverflowError: to=0001-01-01 minus 29 days
        raise Unprocessable("from and to must be dates (YYYY-MM-DD)", code="invalid-date") from None
    if from_d > to_d:
        raise Unprocessable("from must not be after to", code="invalid-date")
    if (to_d - from_d).days > 3660:
        raise Unprocessable("the range may span at most 10 years", code="invalid-date")
    return from_d, to_d


async def kpis(uow: UnitOfWork, settings: InventorySettings, from_d: date, to_d: date) -> Kpis:
    days = (to_d - from_d).days + 1
    async with uow:
        s = uow.session
        units = int(
            await s.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(t.demand_daily.c.units), 0)).where(
                    t.demand_daily.c.day.between(from_d, to_d)
                )
            )
            or 0
        )
        per_day = (
            await s.execute(
                sa.select(
                    t.stock_daily.c.day,
                    sa.func.sum(t.stock_daily.c.on_hand),
                    sa.func.count(),
                    sa.func.count().filter(t.stock_daily.c.stocked_out),
                )
                .where(t.stock_daily.c.day.between(from_d, to_d))
                .group_by(t.stock_daily.c.day)
            )
        ).all()
        current = (
            await s.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(t.stock.c.on_hand), 0),
                    sa.func.coalesce(sa.func.sum(t.stock.c.on_hand - t.stock.c.reserved), 0),
                )
            )
        ).one()
        excess_rows = (
            await s.execute(
                sa.select(
                    t.stock.c.sku,
                    t.stock.c.warehouse,
                    t.stock.c.on_hand,
                    t.stock.c.reserved,
                    t.forecasts.c.daily_demand,
                    t.forecasts.c.lead_time_demand,
                    t.forecasts.c.sigma_daily,
                    t.forecasts.c.lead_time_days,
                ).join(
                    t.forecasts,
                    sa.and_(
                        t.forecasts.c.sku == t.stock.c.sku,
                        t.forecasts.c.warehouse == t.stock.c.warehouse,
                    ),
                )
            )
        ).all()
        classes = {e.sku: e.abc_class for e in await abc_classes(uow, settings)}
    sku_days = sum(int(r[2]) for r in per_day)
    out_days = sum(int(r[3]) for r in per_day)
    avg_on_hand = sum(float(r[1]) for r in per_day) / len(per_day) if per_day else float(current[0])
    daily_sales = units / days
    excess = 0
    for r in excess_rows:
        plan = SeriesPlan(
            r.sku,
            r.warehouse,
            float(r.daily_demand),
            float(r.lead_time_demand),
            float(r.sigma_daily),
            int(r.lead_time_days),
            "",
            0,
        )
        sug = _suggest(
            plan, int(r.on_hand), int(r.on_hand - r.reserved), classes.get(r.sku), settings
        )
        cycle = math.ceil(plan.daily_demand * settings.standard_cover_days)
        excess += max(0, int(r.on_hand) - (sug.reorder_point + cycle))
    return Kpis(
        from_date=from_d,
        to_date=to_d,
        units_sold=units,
        average_on_hand=round(avg_on_hand, 2),
        inventory_turnover=round(units / avg_on_hand, 4) if avg_on_hand > 0 else 0.0,
        stock_out_rate=round(out_days / sku_days, 4) if sku_days else 0.0,
        days_of_cover=round(float(current[1]) / daily_sales, 1) if daily_sales > 0 else -1.0,
        excess_stock_units=excess,
        sku_days=sku_days,
        stockout_sku_days=out_days,
    )


async def snapshot_levels(uow: UnitOfWork) -> int:
    """Today's row per SKU in stock_daily (levels now; stocked_out keeps any zero seen today)."""
    today = utcnow().date()
    async with uow:
        src = (
            sa.select(
                t.stock.c.sku,
                sa.literal(today, sa.Date).label("day"),
                sa.func.sum(t.stock.c.on_hand).label("on_hand"),
                sa.func.sum(t.stock.c.on_hand - t.stock.c.reserved).label("available"),
                (sa.func.sum(t.stock.c.on_hand - t.stock.c.reserved) <= 0).label("stocked_out"),
            )
            .join(t.skus, t.skus.c.sku == t.stock.c.sku)
            .where(t.skus.c.status == "active")
            .group_by(t.stock.c.sku)
        )
        stmt = pg_insert(t.stock_daily).from_select(
            ["sku", "day", "on_hand", "available", "stocked_out"], src
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.stock_daily.c.sku, t.stock_daily.c.day],
            set_={
                "on_hand": stmt.excluded.on_hand,
                "available": stmt.excluded.available,
                "stocked_out": t.stock_daily.c.stocked_out | stmt.excluded.stocked_out,
            },
        )
        result = await uow.session.execute(stmt)
        await uow.commit()
    return int(getattr(result, "rowcount", 0) or 0)
