"""Stored interactions: what visitors viewed, carted and bought (the model can be rebuilt from
them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import InteractionKind
from ...service_layer.personalised import HISTORY_LIMIT
from ...service_layer.ports import Interaction
from ..tables import interactions

#: Most SKUs of a session window, and most interactions of a customer's history.
SESSION_LIMIT = 200


def _interaction(row: Row[tuple[object, ...]]) -> Interaction:
    return Interaction(
        event_id=row.event_id,
        actor=row.actor,
        customer_id=row.customer_id,
        session_id=row.session_id,
        sku=row.sku,
        kind=InteractionKind(row.kind),
        quantity=int(row.quantity),
        order_id=row.order_id,
        occurred_at=row.occurred_at,
    )


class SqlInteractionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: Sequence[Interaction]) -> None:
        if not rows:
            return
        await self.session.execute(
            sa.insert(interactions),
            [
                {
                    "event_id": r.event_id,
                    "actor": r.actor,
                    "customer_id": r.customer_id,
                    "session_id": r.session_id,
                    "sku": r.sku,
                    "kind": r.kind.value,
                    "quantity": r.quantity,
                    "order_id": r.order_id,
                    "occurred_at": r.occurred_at,
                }
                for r in rows
            ],
        )

    async def recent_session_skus(self, actor: str, since: datetime, until: datetime) -> list[str]:
        rows = await self.session.execute(
            sa.select(interactions.c.sku, sa.func.max(interactions.c.occurred_at).label("last"))
            .where(
                interactions.c.actor == actor,
                interactions.c.kind.in_(
                    [InteractionKind.VIEW.value, InteractionKind.ADD_TO_CART.value]
                ),
                interactions.c.occurred_at >= since,
                interactions.c.occurred_at <= until,
            )
            .group_by(interactions.c.sku)
            .order_by(sa.desc("last"))
            .limit(SESSION_LIMIT)
        )
        return [r.sku for r in rows]

    async def customer_history(self, customer_id: str, since: datetime) -> list[Interaction]:
        rows = await self.session.execute(
            sa.select(interactions)
            .where(interactions.c.customer_id == customer_id, interactions.c.occurred_at >= since)
            .order_by(interactions.c.occurred_at.desc())
            .limit(HISTORY_LIMIT)
        )
        return [_interaction(r) for r in rows]

    async def all(self) -> list[Interaction]:
        rows = await self.session.execute(
            sa.select(interactions).order_by(interactions.c.occurred_at, interactions.c.id)
        )
        return [_interaction(r) for r in rows]

    async def forget_purchases(self, order_id: str) -> None:
        await self.session.execute(
            sa.delete(interactions).where(
                interactions.c.order_id == order_id,
                interactions.c.kind == InteractionKind.PURCHASE.value,
            )
        )
