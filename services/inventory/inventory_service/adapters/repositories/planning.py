"""Planning data: daily demand, revenue and stock snapshots, the forecast cache, and the reads
of suggestions, ABC and KPIs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import Allocation, StockLevel
from ...domain.planning import SeriesPlan
from ...service_layer.ports import (
    DemandDay,
    ForecastPosition,
    SeriesKey,
    StockDay,
    SuggestionRow,
)
from .. import tables as t
from .inbound import on_order_by_row

_FORECAST_FIELDS = (
    "daily_demand",
    "lead_time_demand",
    "sigma_daily",
    "lead_time_days",
    "method",
    "history_days",
    "computed_at",
)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class SqlPlanningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- what stock changes record --------------------------------------------------------------
    async def add_demand(self, allocations: Sequence[Allocation], day: date) -> None:
        dd = t.demand_daily
        for a in sorted(allocations, key=lambda x: (x.sku, x.warehouse)):
            stmt = pg_insert(dd).values(sku=a.sku, warehouse=a.warehouse, day=day, units=a.quantity)
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[dd.c.sku, dd.c.warehouse, dd.c.day],
                    set_={"units": dd.c.units + stmt.excluded.units},
                )
            )

    async def add_revenue(
        self, lines: Sequence[tuple[str, int, int]], currency: str, day: date
    ) -> None:
        rd = t.revenue_daily
        for sku, units, revenue in sorted(lines):
            stmt = pg_insert(rd).values(
                sku=sku, day=day, currency=currency, revenue_minor=revenue, units=units
            )
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[rd.c.sku, rd.c.day, rd.c.currency],
                    set_={
                        "revenue_minor": rd.c.revenue_minor + stmt.excluded.revenue_minor,
                        "units": rd.c.units + stmt.excluded.units,
                    },
                )
            )

    async def record_level(self, level: StockLevel, day: date, *, only_stockout: bool) -> None:
        """Keep today's row of the SKU: levels, and whether availability reached zero."""
        out = level.available <= 0
        if only_stockout and not out:
            return
        sd = t.stock_daily
        stmt = pg_insert(sd).values(
            sku=level.sku,
            day=day,
            on_hand=level.on_hand,
            available=level.available,
            stocked_out=out,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[sd.c.sku, sd.c.day],
                set_={
                    "on_hand": stmt.excluded.on_hand,
                    "available": stmt.excluded.available,
                    "stocked_out": sd.c.stocked_out | stmt.excluded.stocked_out,
                },
            )
        )

    async def snapshot_levels(self, day: date) -> int:
        src = (
            sa.select(
                t.stock.c.sku,
                sa.literal(day, sa.Date).label("day"),
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
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    # --- the forecast job ----------------------------------------------------------------------
    async def last_forecast_at(self) -> datetime | None:
        value: datetime | None = await self.session.scalar(
            sa.select(sa.func.max(t.forecasts.c.computed_at))
        )
        return value

    async def active_series(self) -> list[SeriesKey]:
        rows = (
            await self.session.execute(
                sa.select(t.stock.c.sku, t.stock.c.warehouse, t.skus.c.lead_time_days)
                .join(t.skus, t.skus.c.sku == t.stock.c.sku)
                .where(t.skus.c.status == "active")
            )
        ).all()
        return [SeriesKey(r.sku, r.warehouse, _opt_int(r.lead_time_days)) for r in rows]

    async def demand_since(self, since: date) -> list[DemandDay]:
        rows = (
            await self.session.execute(
                sa.select(t.demand_daily).where(t.demand_daily.c.day >= since)
            )
        ).all()
        return [DemandDay(r.sku, r.warehouse, r.day, int(r.units)) for r in rows]

    async def positions(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        pending = on_order_by_row()
        q = sa.select(
            t.stock.c.sku,
            t.stock.c.warehouse,
            t.stock.c.on_hand,
            t.stock.c.reserved,
            sa.func.coalesce(pending.c.on_order, 0).label("on_order"),
        ).outerjoin(
            pending,
            sa.and_(pending.c.sku == t.stock.c.sku, pending.c.warehouse == t.stock.c.warehouse),
        )
        rows = (await self.session.execute(q)).all()
        return {
            (r.sku, r.warehouse): (int(r.on_hand), int(r.on_hand - r.reserved), int(r.on_order))
            for r in rows
        }

    async def save_forecast(self, plan: SeriesPlan, now: datetime) -> None:
        stmt = pg_insert(t.forecasts).values(
            sku=plan.sku,
            warehouse=plan.warehouse,
            daily_demand=plan.daily_demand,
            lead_time_demand=plan.lead_time_demand,
            sigma_daily=plan.sigma_daily,
            lead_time_days=plan.lead_time_days,
            method=plan.method,
            history_days=plan.history_days,
            computed_at=now,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.forecasts.c.sku, t.forecasts.c.warehouse],
                set_={c: stmt.excluded[c] for c in _FORECAST_FIELDS},
            )
        )

    async def set_thresholds(
        self, sku: str, warehouse: str, reorder_point: int, suggested_order_quantity: int
    ) -> None:
        await self.session.execute(
            sa.update(t.stock)
            .where(
                t.stock.c.sku == sku,
                t.stock.c.warehouse == warehouse,
                sa.or_(
                    t.stock.c.reorder_point != reorder_point,
                    t.stock.c.suggested_order_quantity != suggested_order_quantity,
                ),
            )
            .values(reorder_point=reorder_point, suggested_order_quantity=suggested_order_quantity)
        )

    # --- reads ---------------------------------------------------------------------------------
    async def suggestion_rows(
        self, *, warehouse: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SuggestionRow]:
        f = t.forecasts
        pending = on_order_by_row()
        q = (
            sa.select(
                t.stock.c.sku,
                t.stock.c.warehouse,
                t.stock.c.on_hand,
                t.stock.c.reserved,
                sa.func.coalesce(pending.c.on_order, 0).label("on_order"),
                t.skus.c.lead_time_days.label("sku_lead"),
                f.c.daily_demand,
                f.c.lead_time_demand,
                f.c.sigma_daily,
                f.c.lead_time_days,
                f.c.method,
                f.c.history_days,
                f.c.computed_at,
            )
            .join(t.skus, t.skus.c.sku == t.stock.c.sku)
            .outerjoin(f, sa.and_(f.c.sku == t.stock.c.sku, f.c.warehouse == t.stock.c.warehouse))
            .outerjoin(
                pending,
                sa.and_(pending.c.sku == t.stock.c.sku, pending.c.warehouse == t.stock.c.warehouse),
            )
            .where(t.skus.c.status == "active")
            .order_by(t.stock.c.sku, t.stock.c.warehouse)
            .limit(limit)
        )
        if warehouse:
            q = q.where(t.stock.c.warehouse == warehouse)
        if after is not None:
            q = q.where(sa.tuple_(t.stock.c.sku, t.stock.c.warehouse) > sa.tuple_(*after))
        return [
            SuggestionRow(
                sku=r.sku,
                warehouse=r.warehouse,
                on_hand=int(r.on_hand),
                reserved=int(r.reserved),
                sku_lead_time_days=_opt_int(r.sku_lead),
                daily_demand=_opt_float(r.daily_demand),
                lead_time_demand=_opt_float(r.lead_time_demand),
                sigma_daily=_opt_float(r.sigma_daily),
                lead_time_days=_opt_int(r.lead_time_days),
                method=r.method,
                history_days=_opt_int(r.history_days),
                computed_at=r.computed_at,
                on_order=int(r.on_order),
            )
            for r in (await self.session.execute(q)).all()
        ]

    async def revenue_by_sku(self, currency: str, since: date) -> dict[str, int]:
        rd = t.revenue_daily
        rows = (
            await self.session.execute(
                sa.select(rd.c.sku, sa.func.sum(rd.c.revenue_minor))
                .where(rd.c.currency == currency, rd.c.day >= since)
                .group_by(rd.c.sku)
            )
        ).all()
        return {r[0]: int(r[1] or 0) for r in rows}

    async def active_skus(self) -> list[str]:
        result = await self.session.execute(
            sa.select(t.skus.c.sku).where(t.skus.c.status == "active")
        )
        return [str(sku) for sku in result.scalars().all()]

    async def units_sold(self, from_date: date, to_date: date) -> int:
        value = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(t.demand_daily.c.units), 0)).where(
                t.demand_daily.c.day.between(from_date, to_date)
            )
        )
        return int(value or 0)

    async def stock_days(self, from_date: date, to_date: date) -> list[StockDay]:
        sd = t.stock_daily
        rows = (
            await self.session.execute(
                sa.select(
                    sd.c.day,
                    sa.func.sum(sd.c.on_hand),
                    sa.func.count(),
                    sa.func.count().filter(sd.c.stocked_out),
                )
                .where(sd.c.day.between(from_date, to_date))
                .group_by(sd.c.day)
            )
        ).all()
        return [StockDay(r[0], float(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def current_totals(self) -> tuple[int, int]:
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(t.stock.c.on_hand), 0),
                    sa.func.coalesce(sa.func.sum(t.stock.c.on_hand - t.stock.c.reserved), 0),
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def forecast_positions(self) -> list[ForecastPosition]:
        f = t.forecasts
        rows = (
            await self.session.execute(
                sa.select(
                    t.stock.c.sku,
                    t.stock.c.warehouse,
                    t.stock.c.on_hand,
                    t.stock.c.reserved,
                    f.c.daily_demand,
                    f.c.lead_time_demand,
                    f.c.sigma_daily,
                    f.c.lead_time_days,
                ).join(f, sa.and_(f.c.sku == t.stock.c.sku, f.c.warehouse == t.stock.c.warehouse))
            )
        ).all()
        return [
            ForecastPosition(
                sku=r.sku,
                warehouse=r.warehouse,
                on_hand=int(r.on_hand),
                reserved=int(r.reserved),
                daily_demand=float(r.daily_demand),
                lead_time_demand=float(r.lead_time_demand),
                sigma_daily=float(r.sigma_daily),
                lead_time_days=int(r.lead_time_days),
            )
            for r in rows
        ]
