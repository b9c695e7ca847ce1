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
# Written for every stock and order event (driver statements: the consumers' hot path). An
# older level never overwrites a newer one.
_UPSERT_STOCK_SQL = """
INSERT INTO stock_levels (sku, available, on_hand, reserved, occurred_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, on_hand = EXCLUDED.on_hand,
    reserved = EXCLUDED.reserved, occurred_at = EXCLUDED.occurred_at
WHERE stock_levels.occurred_at <= EXCLUDED.occurred_at
"""
_ADD_SALES_SQL = """
INSERT INTO sales_daily (sku, currency, day, units, revenue_minor)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (sku, currency, day) DO UPDATE SET units = sales_daily.units + EXCLUDED.units,
    revenue_minor = sales_daily.revenue_minor + EXCLUDED.revenue_minor
"""


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
        conn = await driver(self.session)
        await conn.execute(_UPSERT_STOCK_SQL, sku, available, on_hand, reserved, at)

    async def add_sales(
        self, sku: str, currency: str, day: date, units: int, revenue_minor: int
    ) -> None:
        conn = await driver(self.session)
        await conn.execute(_ADD_SALES_SQL, sku, currency, day, units, revenue_minor)

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
