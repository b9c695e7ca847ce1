"""Competitor price observations (the latest per competitor wins)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.records import (
    CompetitorPriceRecord,
)
from .. import tables as t


class SqlCompetitorPrices:
    """Observed competitor prices and the lowest recent one per SKU."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, rec: CompetitorPriceRecord, now: datetime) -> bool:
        c = t.competitor_prices
        stmt = pg_insert(c).values(
            sku=rec.sku,
            competitor=rec.competitor,
            currency=rec.currency,
            price_minor=rec.price_minor,
            observed_at=rec.observed_at,
            recorded_by=rec.recorded_by,
            recorded_at=now,
        )
        row = (
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.c.sku, c.c.competitor, c.c.currency],
                    set_={
                        "price_minor": stmt.excluded.price_minor,
                        "observed_at": stmt.excluded.observed_at,
                        "recorded_by": stmt.excluded.recorded_by,
                        "recorded_at": stmt.excluded.recorded_at,
                    },
                    where=c.c.observed_at <= stmt.excluded.observed_at,
                ).returning(c.c.sku)
            )
        ).first()
        return row is not None

    async def lowest(self, skus: Sequence[str], since: datetime) -> dict[tuple[str, str], int]:
        c = t.competitor_prices
        rows = await self.session.execute(
            sa.select(c.c.sku, c.c.currency, sa.func.min(c.c.price_minor).label("low"))
            .where(c.c.sku.in_(list(skus)), c.c.observed_at >= since)
            .group_by(c.c.sku, c.c.currency)
        )
        return {(r.sku, r.currency): int(r.low) for r in rows}
