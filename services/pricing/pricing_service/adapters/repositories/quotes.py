"""Quotes and the redemptions that bind them to orders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import attrs, driver

from ...domain.records import (
    CONFIRMED,
    REDEEMED,
    RELEASED,
    QuoteRecord,
    RedemptionRecord,
)
from .. import tables as t
from .rows import (
    lines_to_json,
    quote_from_row,
    redemption_from_row,
)

# The quote and checkout hot paths: asyncpg prepared statements on the unit of work's
# connection (``ecomops_platform.db.driver``).
_INSERT_SQL = """
INSERT INTO quotes (id, customer_id, currency, lines, subtotal_minor, discount_total_minor,
                    total_minor, coupon_codes, promotion_ids, created_at, expires_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::varchar[], $9::varchar[], $10, $11)
"""
_GET_SQL = "SELECT * FROM quotes WHERE id = $1"
_CONFIRM_SQL = (
    "UPDATE redemptions SET state = $4, confirmed_at = $2 WHERE order_id = $1 AND state = $3"
)
_GET_LOCKED_SQL = "SELECT * FROM quotes WHERE id = $1 FOR UPDATE"
_OF_ORDER_SQL = "SELECT id FROM quotes WHERE order_id = $1"
_BIND_SQL = "UPDATE quotes SET order_id = $2 WHERE id = $1 AND order_id IS NULL RETURNING id"
_INSERT_REDEMPTIONS_SQL = """
INSERT INTO redemptions (promotion_id, order_id, quote_id, customer_id, coupon_code, state,
                         redeemed_at)
SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[],
                     $6::varchar[], $7::timestamptz[])
"""


class SqlQuotes:
    """Stored quotes; binding one to an order is a conditional write."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, q: QuoteRecord) -> None:
        conn = await driver(self.session)
        await conn.execute(
            _INSERT_SQL,
            q.quote_id,
            q.customer_id,
            q.currency,
            json.dumps(lines_to_json(q.lines)),
            q.subtotal_minor,
            q.discount_total_minor,
            q.total_minor,
            list(q.coupon_codes),
            list(q.promotion_ids),
            q.created_at,
            q.expires_at,
        )

    async def get(self, quote_id: str, *, lock: bool = False) -> QuoteRecord | None:
        conn = await driver(self.session)
        row = await conn.fetchrow(_GET_LOCKED_SQL if lock else _GET_SQL, quote_id)
        return quote_from_row(attrs(row)) if row is not None else None

    async def quote_of_order(self, order_id: str) -> str | None:
        conn = await driver(self.session)
        value = await conn.fetchval(_OF_ORDER_SQL, order_id)
        return str(value) if value is not None else None

    async def bind(self, quote_id: str, order_id: str) -> bool:
        conn = await driver(self.session)
        return await conn.fetchval(_BIND_SQL, quote_id, order_id) is not None


class SqlRedemptions:
    """Redemptions: redeemed, confirmed by OrderPlaced, or released exactly once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, rows: Sequence[RedemptionRecord]) -> None:
        if rows:  # one statement for every row
            conn = await driver(self.session)
            await conn.execute(
                _INSERT_REDEMPTIONS_SQL,
                [r.promotion_id for r in rows],
                [r.order_id for r in rows],
                [r.quote_id for r in rows],
                [r.customer_id for r in rows],
                [r.coupon_code for r in rows],
                [r.state for r in rows],
                [r.redeemed_at for r in rows],
            )

    async def of_order(self, order_id: str) -> list[RedemptionRecord]:
        rows = await self.session.execute(
            sa.select(t.redemptions)
            .where(t.redemptions.c.order_id == order_id)
            .order_by(t.redemptions.c.promotion_id)
        )
        return [redemption_from_row(r) for r in rows]

    async def release(
        self, order_id: str, reason: str, now: datetime, *, only_unconfirmed: bool = False
    ) -> list[RedemptionRecord]:
        """Conditional transition to released; only the rows that changed are returned, so a
        use is given back exactly once whoever asks (RPC, OrderCancelled, the sweeper)."""
        r = t.redemptions
        states = [REDEEMED] if only_unconfirmed else [REDEEMED, CONFIRMED]
        rows = await self.session.execute(
            sa.update(r)
            .where(r.c.order_id == order_id, r.c.state.in_(states))
            .values(state=RELEASED, released_at=now, release_reason=reason[:100])
            .returning(*r.c)
        )
        return sorted((redemption_from_row(x) for x in rows), key=lambda x: x.promotion_id)

    async def confirm(self, order_id: str, now: datetime) -> int:
        conn = await driver(self.session)
        status = await conn.execute(_CONFIRM_SQL, order_id, now, REDEEMED, CONFIRMED)
        return int(status.split()[-1])  # "UPDATE <n>"

    async def unconfirmed_orders(self, cutoff: datetime, limit: int) -> list[str]:
        """Orders with redemptions never confirmed before ``cutoff`` (rows another transaction
        is changing right now are skipped)."""
        r = t.redemptions
        rows = await self.session.execute(
            sa.select(r.c.order_id)
            .where(r.c.state == REDEEMED, r.c.redeemed_at < cutoff)
            .order_by(r.c.redeemed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return sorted({x.order_id for x in rows})
