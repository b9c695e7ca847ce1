"""Customers' RFM segments."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...service_layer.ports import SegmentRecord, StaleSegment
from ..tables import customer_segments


class SqlSegmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_customer(self, customer_id: str) -> None:
        """A transaction-scoped advisory lock per customer: two recomputations of one
        customer's segment (an order event and the periodic refresh) never interleave."""
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('rec-seg:' || :c))"), {"c": customer_id}
        )

    async def get(self, customer_id: str) -> SegmentRecord | None:
        row = (
            await self.session.execute(
                sa.select(customer_segments).where(customer_segments.c.customer_id == customer_id)
            )
        ).first()
        if row is None:
            return None
        return SegmentRecord(**row._mapping)

    async def save(self, record: SegmentRecord) -> None:
        values = dataclasses.asdict(record)
        stmt = pg_insert(customer_segments).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[customer_segments.c.customer_id],
                set_={k: v for k, v in values.items() if k != "customer_id"},
            )
        )

    async def share_spending_less(
        self, currency: str, monetary_minor: int, customer_id: str
    ) -> float:
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.count().filter(customer_segments.c.monetary_minor < monetary_minor),
                    sa.func.count(),
                ).where(
                    customer_segments.c.currency == currency,
                    customer_segments.c.customer_id != customer_id,
                )
            )
        ).one()
        below, total = int(row[0]), int(row[1])
        return below / total if total else 0.5

    async def claim_stale(
        self, before: datetime, limit: int, after: StaleSegment | None = None
    ) -> list[StaleSegment]:
        seg = customer_segments.c
        query = (
            sa.select(seg.computed_at, seg.customer_id)
            .where(seg.computed_at < before)
            .order_by(seg.computed_at, seg.customer_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if after is not None:
            query = query.where(
                sa.tuple_(seg.computed_at, seg.customer_id)
                > sa.tuple_(sa.literal(after.computed_at), sa.literal(after.customer_id))
            )
        rows = await self.session.execute(query)
        return [StaleSegment(r.computed_at, r.customer_id) for r in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(customer_segments.c.segment, sa.func.count()).group_by(
                customer_segments.c.segment
            )
        )
        return {r[0]: int(r[1]) for r in rows}
