"""The SQL of the history import: imported orders are rows of ``orders`` (status delivered,
paid and delivered at the time they were placed, ``risk_decision`` "imported", no quote, no
assessment, no payment reference) with one timeline entry."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.history import ImportedOrder
from ..domain.models import OrderStatus
from ..service_layer.ports import StoredImport
from .tables import order_timeline, orders

#: The ``risk_decision`` of an imported order: it never met the risk service.
IMPORTED = "imported"
#: The history file has no addresses: the order view shows empty fields.
NO_ADDRESS = {"name": "", "line1": "", "city": "", "postal_code": "", "country": ""}
#: Rows per INSERT (PostgreSQL takes at most 32767 bind parameters per statement).
_CHUNK = 500


_INSERT = (
    pg_insert(orders).on_conflict_do_nothing(index_elements=[orders.c.id]).returning(orders.c.id)
)


class SqlImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing(self, order_ids: list[str]) -> dict[str, StoredImport]:
        if not order_ids:
            return {}
        rows = await self.session.execute(
            sa.select(
                orders.c.id,
                orders.c.customer_id,
                orders.c.total_minor,
                orders.c.placed_at,
                orders.c.risk_decision,
            ).where(orders.c.id.in_(order_ids))
        )
        return {
            r.id: StoredImport(
                order_id=r.id,
                customer_id=r.customer_id,
                total_minor=int(r.total_minor),
                placed_at=r.placed_at,
                imported=r.risk_decision == IMPORTED,
            )
            for r in rows
        }

    async def add(self, batch: list[ImportedOrder], *, actor: str, note: str) -> set[str]:
        added: set[str] = set()
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start : start + _CHUNK]
            values: list[dict[str, Any]] = [_row(o, actor) for o in chunk]
            # executemany of one cached statement (SQLAlchemy batches it into multi-row
            # INSERTs itself): compiling a fresh 500-row VALUES statement per batch costs more
            # than the insert.
            result = await self.session.execute(_INSERT, values)
            now_added = {str(r.id) for r in result}
            added |= now_added
            timeline = [
                {
                    "order_id": o.order_id,
                    "status": OrderStatus.DELIVERED.value,
                    "at": o.ordered_at,
                    "actor": actor,
                    "note": note[:500],
                }
                for o in chunk
                if o.order_id in now_added
            ]
            if timeline:
                await self.session.execute(sa.insert(order_timeline), timeline)
        return added


def _row(order: ImportedOrder, actor: str) -> dict[str, Any]:
    total = order.total_minor
    return {
        "id": order.order_id,
        "customer_id": order.customer_id,
        "status": OrderStatus.DELIVERED.value,
        "currency": order.currency,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "discount_minor": 0,
                "total_minor": line.total_minor,
                "shipped_quantity": line.quantity,
                "returned_quantity": 0,
            }
            for line in order.lines
        ],
        "subtotal_minor": total,
        "discount_total_minor": 0,
        "total_minor": total,
        "coupon_codes": [],
        "shipping_address": NO_ADDRESS,
        "client": {},
        "quote_id": "",
        "assessment_id": "",
        "risk_decision": IMPORTED,
        "risk_reasons": [],
        "cart_id": None,
        "placed_at": order.ordered_at,
        "updated_at": order.ordered_at,
        "paid_at": order.ordered_at,
        "delivered_at": order.ordered_at,
        "placed_by": actor,
        "refunded_minor": 0,
    }
