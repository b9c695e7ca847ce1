"""Quotes and the redemptions that bind them to orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

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


class SqlQuotes:
    """Stored quotes; binding one to an order is a conditional write."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, q: QuoteRecord) -> None:
        await self.session.execute(
            sa.insert(t.quotes).values(
                id=q.quote_id,
                customer_id=q.customer_id,
                currency=q.currency,
                lines=lines_to_json(q.lines),
                subtotal_minor=q.subtotal_minor,
                discount_total_minor=q.discount_total_minor,
                total_minor=q.total_minor,
                coupon_codes=q.coupon_codes,
                promotion_ids=q.promotion_ids,
                created_at=q.created_at,
                expires_at=q.expires_at,
            )
        )

    async def get(self, quote_id: str, *, lock: bool = False) -> QuoteRecord | None:
        stmt = sa.select(t.quotes).where(t.quotes.c.id == quote_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return quote_from_row(row) if row is not None else None

    async def quote_of_order(self, order_id: str) -> str | None:
        value = await self.session.scalar(
            sa.select(t.quotes.c.id).where(t.quotes.c.order_id == order_id)
        )
        return str(value) if value is not None else None

    async def bind(self, quote_id: str, order_id: str) -> bool:
        row = (
            await self.session.execute(
                sa.update(t.quotes)
                .where(t.quotes.c.id == quote_id, t.quotes.c.order_id.is_(None))
                .values(order_id=order_id)
                .returning(t.quotes.c.id)
            )
        ).first()
        return row is not None


class SqlRedemptions:
    """Redemptions: redeemed, confirmed by OrderPlaced, or released exactly once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, rows: Sequence[RedemptionRecord]) -> None:
        if rows:
            await self.session.execute(
                sa.insert(t.redemptions),
                [
                    {
                        "promotion_id": r.promotion_id,
                        "order_id": r.order_id,
                        "quote_id": r.quote_id,
                        "customer_id": r.customer_id,
                        "coupon_code": r.coupon_code,
                        "state": r.state,
                        "redeemed_at": r.redeemed_at,
                    }
                    for r in rows
                ],
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
        r = t.redemptions
        result = await self.session.execute(
            sa.update(r)
            .where(r.c.order_id == order_id, r.c.state == REDEEMED)
            .values(state=CONFIRMED, confirmed_at=now)
            .returning(r.c.promotion_id)
        )
        return len(result.all())

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
