"""The copies of other services' facts pricing keeps: the SKU registry (inventory), stock
levels, customer segments (recommendation) and daily sales (order)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import driver

from ...domain.records import (
    SkuInfo,
)
from .. import tables as t
from ..read_cache import CATALOG, ReadCache

_SKUS_SQL = "SELECT sku, category, status FROM skus WHERE sku = ANY($1::varchar[])"


class SqlCatalog:
    """SKUs, stock, segments and sales, upserted from events (the newest fact wins)."""

    def __init__(self, session: AsyncSession, cache: ReadCache | None = None) -> None:
        self.session = session
        self.cache = cache or ReadCache(0)

    async def skus(self, skus: Sequence[str]) -> dict[str, SkuInfo]:
        # The quote's hot path: the short read cache, then an asyncpg prepared statement on the
        # unit of work's connection for what it does not hold.
        found, missing = self.cache.get(CATALOG, [("sku", s) for s in skus])
        out: dict[str, SkuInfo] = {key[1]: info for key, info in found.items()}
        if missing:
            generation = self.cache.generation(CATALOG)
            conn = await driver(self.session)
            rows = await conn.fetch(_SKUS_SQL, [key[1] for key in missing])
            read = {r["sku"]: SkuInfo(r["sku"], r["category"], r["status"]) for r in rows}
            self.cache.put(CATALOG, generation, {("sku", s): info for s, info in read.items()})
            out.update(read)
        return out

    async def skus_in_categories(self, categories: Sequence[str]) -> list[str]:
        rows = await self.session.execute(
            sa.select(t.skus.c.sku).where(t.skus.c.category.in_(list(categories)))
        )
        return [r.sku for r in rows]

    async def upsert_sku(
        self, sku: str, title: str, category: str | None, status: str, at: datetime
    ) -> None:
        self.cache.touched(self.session, CATALOG)
        stmt = pg_insert(t.skus).values(
            sku=sku, title=title, category=category, status=status, updated_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.skus.c.sku],
                set_={
                    "title": stmt.excluded.title,
                    "category": stmt.excluded.category,
                    "status": stmt.excluded.status,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=t.skus.c.updated_at <= stmt.excluded.updated_at,
            )
        )

    async def upsert_segment(
        self, customer_id: str, segment: str, churn_risk: str, at: datetime
    ) -> None:
        stmt = pg_insert(t.customer_segments).values(
            customer_id=customer_id, segment=segment, churn_risk=churn_risk, changed_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.customer_segments.c.customer_id],
                set_={
                    "segment": stmt.excluded.segment,
                    "churn_risk": stmt.excluded.churn_risk,
                    "changed_at": stmt.excluded.changed_at,
                },
                where=t.customer_segments.c.changed_at <= stmt.excluded.changed_at,
            )
        )

    async def segment_of(self, customer_id: str) -> str | None:
        value = await self.session.scalar(
            sa.select(t.customer_segments.c.segment).where(
                t.customer_segments.c.customer_id == customer_id
            )
        )
        return str(value) if value is not None else None

    async def upsert_stock(
        self, sku: str, available: int, on_hand: int, reserved: int, at: datetime
    ) -> None:
        stmt = pg_insert(t.stock_levels).values(
            sku=sku, available=available, on_hand=on_hand, reserved=reserved, occurred_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.stock_levels.c.sku],
                set_={
                    "available": stmt.excluded.available,
                    "on_hand": stmt.excluded.on_hand,
                    "reserved": stmt.excluded.reserved,
                    "occurred_at": stmt.excluded.occurred_at,
                },
                where=t.stock_levels.c.occurred_at <= stmt.excluded.occurred_at,
            )
        )

    async def add_sales(
        self, sku: str, currency: str, day: date, units: int, revenue_minor: int
    ) -> None:
        stmt = pg_insert(t.sales_daily).values(
            sku=sku, currency=currency, day=day, units=units, revenue_minor=revenue_minor
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.sales_daily.c.sku, t.sales_daily.c.currency, t.sales_daily.c.day],
                set_={
                    "units": t.sales_daily.c.units + stmt.excluded.units,
                    "revenue_minor": t.sales_daily.c.revenue_minor + stmt.excluded.revenue_minor,
                },
            )
        )

    async def stock_for(self, skus: Sequence[str]) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(t.stock_levels.c.sku, t.stock_levels.c.available).where(
                t.stock_levels.c.sku.in_(list(skus))
            )
        )
        return {r.sku: r.available for r in rows}

    async def units_sold(self, skus: Sequence[str], since: date) -> dict[tuple[str, str], int]:
        s = t.sales_daily
        rows = await self.session.execute(
            sa.select(s.c.sku, s.c.currency, sa.func.sum(s.c.units).label("units"))
            .where(s.c.sku.in_(list(skus)), s.c.day >= since)
            .group_by(s.c.sku, s.c.currency)
        )
        return {(r.sku, r.currency): int(r.units) for r in rows}
