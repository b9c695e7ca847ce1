"""Orders as the order service announced them: placed, paid, cancelled, with their lines."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...service_layer.ports import CancelledOrder, OrderFacts, PaidStats
from ..tables import order_lines, orders


class SqlOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_placed(self, order: OrderFacts) -> None:
        stmt = pg_insert(orders).values(
            order_id=order.order_id,
            customer_id=order.customer_id,
            currency=order.currency,
            total_minor=order.total_minor,
            placed_at=order.at,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[orders.c.order_id], set_={"placed_at": order.at}
            )
        )
        await self._record_lines(order.order_id, order.lines)

    async def record_paid(self, order: OrderFacts) -> bool:
        stmt = pg_insert(orders).values(
            order_id=order.order_id,
            customer_id=order.customer_id,
            currency=order.currency,
            total_minor=order.total_minor,
            paid_at=order.at,
        )
        result = await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[orders.c.order_id],
                set_={
                    "paid_at": order.at,
                    "total_minor": order.total_minor,
                    "currency": order.currency,
                },
                where=orders.c.paid_at.is_(None),
            ).returning(orders.c.order_id)
        )
        if result.first() is None:
            return False
        await self._record_lines(order.order_id, order.lines)
        return True

    async def cancel(self, order_id: str, at: datetime) -> CancelledOrder | None:
        row = (
            await self.session.execute(
                sa.update(orders)
                .where(orders.c.order_id == order_id, orders.c.cancelled_at.is_(None))
                .values(cancelled_at=at)
                .returning(orders.c.customer_id, orders.c.paid_at)
            )
        ).first()
        if row is None:
            return None
        lines = await self.session.execute(
            sa.select(order_lines.c.sku, order_lines.c.quantity).where(
                order_lines.c.order_id == order_id
            )
        )
        return CancelledOrder(row.customer_id, row.paid_at, {r.sku: int(r.quantity) for r in lines})

    async def purchased_skus(self, customer_id: str) -> set[str]:
        rows = await self.session.execute(
            sa.select(order_lines.c.sku)
            .join(orders, orders.c.order_id == order_lines.c.order_id)
            .where(orders.c.customer_id == customer_id, orders.c.paid_at.is_not(None))
            .distinct()
        )
        return {r.sku for r in rows}

    async def paid_stats(self, customer_id: str) -> PaidStats | None:
        """Paid orders of a customer in its main currency (the one it paid most often in)."""
        row = (
            await self.session.execute(
                sa.select(
                    orders.c.currency,
                    sa.func.count().label("n"),
                    sa.func.sum(orders.c.total_minor).label("m"),
                    sa.func.min(orders.c.paid_at).label("first"),
                    sa.func.max(orders.c.paid_at).label("last"),
                )
                .where(
                    orders.c.customer_id == customer_id,
                    orders.c.paid_at.is_not(None),
                    orders.c.cancelled_at.is_(None),
                )
                .group_by(orders.c.currency)
                .order_by(sa.desc("n"), sa.desc("m"))
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return PaidStats(row.currency, int(row.n), int(row.m), row.first, row.last)

    async def _record_lines(self, order_id: str, lines: Mapping[str, int]) -> None:
        if not lines:
            return
        stmt = pg_insert(order_lines)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[order_lines.c.order_id, order_lines.c.sku],
                set_={"quantity": stmt.excluded.quantity},
            ),
            [{"order_id": order_id, "sku": s, "quantity": q} for s, q in sorted(lines.items())],
        )
