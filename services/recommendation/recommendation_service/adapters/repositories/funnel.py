"""The conversion funnel's counts (a KPI read over interactions and orders)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import InteractionKind
from ...service_layer.ports import FunnelCounts
from ..tables import catalog_items, interactions, order_lines, orders


class SqlFunnelQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self, start: datetime, end: datetime, category: str | None) -> FunnelCounts:
        def behaviour(kind: InteractionKind) -> sa.Select[Any]:
            q = sa.select(sa.func.count()).select_from(interactions)
            if category is not None:
                q = q.join(catalog_items, catalog_items.c.sku == interactions.c.sku).where(
                    catalog_items.c.category == category
                )
            return q.where(
                interactions.c.kind == kind.value,
                interactions.c.occurred_at >= start,
                interactions.c.occurred_at < end,
            )

        def order_count(column: sa.Column[Any]) -> sa.Select[Any]:
            q = sa.select(sa.func.count()).select_from(orders).where(column >= start, column < end)
            if category is not None:
                q = q.where(
                    sa.exists(
                        sa.select(1)
                        .select_from(
                            order_lines.join(
                                catalog_items, catalog_items.c.sku == order_lines.c.sku
                            )
                        )
                        .where(
                            order_lines.c.order_id == orders.c.order_id,
                            catalog_items.c.category == category,
                        )
                    )
                )
            return q

        session = self.session
        return FunnelCounts(
            views=int(await session.scalar(behaviour(InteractionKind.VIEW)) or 0),
            add_to_carts=int(await session.scalar(behaviour(InteractionKind.ADD_TO_CART)) or 0),
            orders=int(await session.scalar(order_count(orders.c.placed_at)) or 0),
            paid=int(await session.scalar(order_count(orders.c.paid_at)) or 0),
        )
