"""Inbound orders: stock on its way to a warehouse."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.inbound import InboundOrder, InboundStatus
from .. import tables as t

_T = t.inbound_orders


def _inbound(row: Any) -> InboundOrder:
    return InboundOrder(
        inbound_id=row.inbound_id,
        sku=row.sku,
        warehouse=row.warehouse,
        quantity=int(row.quantity),
        received_quantity=int(row.received_quantity),
        status=InboundStatus(row.status),
        expected_on=row.expected_on,
        reference=row.reference,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def on_order_by_row() -> sa.Subquery:
    """Units still expected per (sku, warehouse), over open inbound orders."""
    return (
        sa.select(
            _T.c.sku,
            _T.c.warehouse,
            sa.func.sum(_T.c.quantity - _T.c.received_quantity).label("on_order"),
        )
        .where(_T.c.status == InboundStatus.OPEN.value)
        .group_by(_T.c.sku, _T.c.warehouse)
        .subquery("on_order")
    )


class SqlInboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, order: InboundOrder) -> None:
        await self.session.execute(
            sa.insert(_T).values(
                inbound_id=order.inbound_id,
                sku=order.sku,
                warehouse=order.warehouse,
                quantity=order.quantity,
                received_quantity=order.received_quantity,
                status=order.status.value,
                expected_on=order.expected_on,
                reference=order.reference,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )

    async def get(self, inbound_id: str, *, for_update: bool = False) -> InboundOrder | None:
        q = sa.select(_T).where(_T.c.inbound_id == inbound_id)
        if for_update:
            q = q.with_for_update()
        row = (await self.session.execute(q)).first()
        return None if row is None else _inbound(row)

    async def save(self, order: InboundOrder) -> None:
        await self.session.execute(
            sa.update(_T)
            .where(_T.c.inbound_id == order.inbound_id)
            .values(
                received_quantity=order.received_quantity,
                status=order.status.value,
                updated_at=order.updated_at,
            )
        )

    async def list(
        self,
        *,
        sku: str | None,
        warehouse: str | None,
        status: InboundStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[InboundOrder]:
        q = sa.select(_T).order_by(_T.c.created_at.desc(), _T.c.inbound_id.desc()).limit(limit)
        if sku:
            q = q.where(_T.c.sku == sku)
        if warehouse:
            q = q.where(_T.c.warehouse == warehouse)
        if status is not None:
            q = q.where(_T.c.status == status.value)
        if before is not None:
            q = q.where(sa.tuple_(_T.c.created_at, _T.c.inbound_id) < sa.tuple_(*before))
        return [_inbound(r) for r in (await self.session.execute(q)).all()]
