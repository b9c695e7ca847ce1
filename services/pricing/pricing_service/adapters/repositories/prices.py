"""The price book: current prices and their append-only history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import attrs, driver

from ...domain.records import (
    PriceChangeRecord,
    PriceRecord,
)
from .. import tables as t
from ..read_cache import CATALOG, ReadCache
from .rows import (
    price_from_row,
)

_PRICES_FOR_SQL = "SELECT * FROM prices WHERE sku = ANY($1::varchar[]) AND currency = $2"


class SqlPrices:
    """Prices per SKU and currency, and every change."""

    def __init__(self, session: AsyncSession, cache: ReadCache | None = None) -> None:
        self.session = session
        self.cache = cache or ReadCache(0)

    async def price(self, sku: str, currency: str, *, lock: bool = False) -> PriceRecord | None:
        stmt = sa.select(t.prices).where(t.prices.c.sku == sku, t.prices.c.currency == currency)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return price_from_row(row) if row is not None else None

    async def prices_for(self, skus: Sequence[str], currency: str) -> dict[str, PriceRecord]:
        # The quote's hot path: the short read cache, then an asyncpg prepared statement on the
        # unit of work's connection for what it does not hold.
        found, missing = self.cache.get(CATALOG, [("price", s, currency) for s in skus])
        out: dict[str, PriceRecord] = {key[1]: price for key, price in found.items()}
        if missing:
            generation = self.cache.generation(CATALOG)
            conn = await driver(self.session)
            rows = await conn.fetch(_PRICES_FOR_SQL, [key[1] for key in missing], currency)
            read = {r["sku"]: price_from_row(attrs(r)) for r in rows}
            self.cache.put(
                CATALOG, generation, {("price", s, currency): p for s, p in read.items()}
            )
            out.update(read)
        return out

    async def all_prices_for(self, skus: Sequence[str]) -> list[PriceRecord]:
        rows = await self.session.execute(sa.select(t.prices).where(t.prices.c.sku.in_(list(skus))))
        return [price_from_row(r) for r in rows]

    async def all_priced_skus(self) -> list[str]:
        rows = await self.session.execute(sa.select(t.prices.c.sku).distinct())
        return [r.sku for r in rows]

    async def save_price(self, record: PriceRecord, previous_minor: int) -> None:
        self.cache.touched(self.session, CATALOG)
        values = {
            "sku": record.sku,
            "currency": record.currency,
            "list_price_minor": record.terms.list_price_minor,
            "unit_cost_minor": record.terms.unit_cost_minor,
            "commission_rate": record.terms.commission_rate,
            "marketing_cost_rate": record.terms.marketing_cost_rate,
            "gross_margin": record.gross_margin,
            "margin_floor": record.margin_floor,
            "below_floor": record.below_floor,
            "updated_by": record.updated_by,
            "reason": record.reason,
            "updated_at": record.updated_at,
        }
        stmt = pg_insert(t.prices).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.prices.c.sku, t.prices.c.currency],
                set_={k: v for k, v in values.items() if k not in ("sku", "currency")},
            )
        )
        await self.session.execute(
            sa.insert(t.price_history).values(
                sku=record.sku,
                currency=record.currency,
                list_price_minor=record.terms.list_price_minor,
                previous_price_minor=previous_minor,
                unit_cost_minor=record.terms.unit_cost_minor,
                commission_rate=record.terms.commission_rate,
                marketing_cost_rate=record.terms.marketing_cost_rate,
                gross_margin=record.gross_margin,
                below_floor=record.below_floor,
                changed_by=record.updated_by,
                reason=record.reason,
                changed_at=record.updated_at,
            )
        )

    async def history_page(
        self, sku: str, currency: str, limit: int, before_id: int | None
    ) -> list[tuple[int, PriceChangeRecord]]:
        h = t.price_history
        stmt = sa.select(h).where(h.c.sku == sku, h.c.currency == currency)
        if before_id is not None:
            stmt = stmt.where(h.c.id < before_id)
        rows = await self.session.execute(stmt.order_by(h.c.id.desc()).limit(limit))
        return [
            (
                r.id,
                PriceChangeRecord(
                    list_price_minor=r.list_price_minor,
                    previous_price_minor=r.previous_price_minor,
                    unit_cost_minor=r.unit_cost_minor,
                    commission_rate=Decimal(r.commission_rate),
                    marketing_cost_rate=Decimal(r.marketing_cost_rate),
                    gross_margin=Decimal(r.gross_margin),
                    below_floor=r.below_floor,
                    changed_by=r.changed_by,
                    reason=r.reason,
                    changed_at=r.changed_at,
                ),
            )
            for r in rows
        ]

    async def price_points_since(
        self, sku: str, currency: str, since: datetime
    ) -> list[tuple[datetime, int]]:
        """Changes inside the window plus the last one before it (the price in force then)."""
        h = t.price_history
        base = sa.select(h.c.changed_at, h.c.list_price_minor).where(
            h.c.sku == sku, h.c.currency == currency
        )
        inside = await self.session.execute(base.where(h.c.changed_at > since))
        before = (
            await self.session.execute(
                base.where(h.c.changed_at <= since).order_by(h.c.id.desc()).limit(1)
            )
        ).first()
        points = [(r.changed_at, r.list_price_minor) for r in inside]
        if before is not None:
            points.append((before.changed_at, before.list_price_minor))
        return points

    async def price_page(self, limit: int, after: tuple[str, str] | None) -> list[PriceRecord]:
        p = t.prices
        stmt = sa.select(p)
        if after is not None:
            stmt = stmt.where(sa.tuple_(p.c.sku, p.c.currency) > sa.tuple_(after[0], after[1]))
        rows = await self.session.execute(stmt.order_by(p.c.sku, p.c.currency).limit(limit))
        return [price_from_row(r) for r in rows]
