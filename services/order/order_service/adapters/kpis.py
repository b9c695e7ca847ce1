"""The SQL of the order KPIs (counts over a period; the rates are the service layer's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import OrderStatus, ReturnStatus
from ..service_layer.ports import CurrencyTotal, KpiCounts
from .tables import cart_items, carts, orders, returns


class SqlKpiReader:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _count(self, query: sa.Select[Any]) -> int:
        return int(await self.session.scalar(query) or 0)

    async def counts(self, *, start: datetime, end: datetime) -> KpiCounts:
        in_period = sa.and_(orders.c.placed_at >= start, orders.c.placed_at < end)
        placed = sa.and_(in_period, orders.c.status != OrderStatus.REJECTED.value)
        paid = sa.and_(in_period, orders.c.paid_at.is_not(None))
        count = sa.select(sa.func.count())
        n_orders = await self._count(count.where(placed))
        n_paid = await self._count(count.where(paid))
        n_cancelled = await self._count(
            count.where(placed, orders.c.status == OrderStatus.CANCELLED.value)
        )
        gmv_rows = (
            await self.session.execute(
                sa.select(orders.c.currency, sa.func.sum(orders.c.total_minor), sa.func.count())
                .where(paid)
                .group_by(orders.c.currency)
                .order_by(orders.c.currency)
            )
        ).all()
        per_customer = (
            sa.select(orders.c.customer_id, sa.func.count().label("n"))
            .where(paid)
            .group_by(orders.c.customer_id)
            .subquery()
        )
        buyers = await self._count(sa.select(sa.func.count()).select_from(per_customer))
        repeat = await self._count(
            sa.select(sa.func.count()).select_from(per_customer).where(per_customer.c.n >= 2)
        )
        with_returns = await self._count(
            sa.select(sa.func.count(sa.distinct(returns.c.order_id)))
            .select_from(returns.join(orders, orders.c.id == returns.c.order_id))
            .where(paid, returns.c.status != ReturnStatus.REJECTED.value)
        )
        cart_period = sa.and_(carts.c.created_at >= start, carts.c.created_at < end)
        has_items = sa.or_(
            carts.c.status == "checked_out",
            sa.exists().where(cart_items.c.cart_id == carts.c.id),
        )
        n_carts = await self._count(count.where(cart_period, has_items))
        n_abandoned = await self._count(
            count.where(cart_period, has_items, carts.c.status == "open")
        )
        return KpiCounts(
            orders=n_orders,
            paid_orders=n_paid,
            cancelled=n_cancelled,
            paid_by_currency=[
                CurrencyTotal(currency=c, total_minor=int(total), orders=int(n))
                for c, total, n in gmv_rows
            ],
            buyers=buyers,
            repeat_buyers=repeat,
            orders_with_returns=with_returns,
            carts=n_carts,
            abandoned_carts=n_abandoned,
        )
