"""The SQL behind the repository ports of ``service_layer/ports.py``: orders (with their
timeline and shipments), carts and returns. KPI reads are in ``kpis.py``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import driver

from ..domain.models import (
    Order,
    OrderLine,
    OrderStatus,
    Return,
    ReturnStatus,
    TimelineEntry,
)
from ..service_layer.ports import (
    CartRecord,
    Deadline,
    OrderRecord,
    PaymentRecord,
    Placement,
    ShipmentRecord,
)
from .tables import cart_items, carts, order_timeline, orders, returns, shipments

# The checkout's writes as one statement: the order row, then its timeline rows selected from
# it in their order (an empty timeline inserts the order alone: a data-modifying CTE always
# runs to completion).
_ADD_ORDER_SQL = """
WITH placed AS (
    INSERT INTO orders (id, customer_id, status, currency, lines, subtotal_minor,
                        discount_total_minor, total_minor, placed_at, updated_at, payment_due_at,
                        review_deadline, refunded_minor, coupon_codes, shipping_address, client,
                        quote_id, assessment_id, risk_decision, risk_reasons, cart_id, placed_by,
                        reservation_expires_at)
    VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $9, $10, $11, $12, $13::jsonb, $14::jsonb,
            $15::jsonb, $16, $17, $18, $19::jsonb, $20, $21, $22)
    RETURNING id
)
INSERT INTO order_timeline (order_id, status, at, actor, note)
SELECT placed.id, t.status, t.at, t.actor, t.note
FROM placed, unnest($23::varchar[], $24::timestamptz[], $25::varchar[], $26::varchar[])
    WITH ORDINALITY AS t(status, at, actor, note, n)
ORDER BY t.n
"""
FIRST_SEEN_SQL = (  # ix_orders_customer_placed
    "SELECT min(placed_at) FROM orders WHERE customer_id = $1"
)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class SqlOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        #: Timeline entries already stored per order (only new ones are written on save).
        self._timeline_seen: dict[str, int] = {}

    async def add(self, order: Order, placement: Placement) -> None:
        """The order and its timeline in one prepared statement (one round trip, no SQLAlchemy
        compilation: this is the checkout's hot path)."""
        conn = await driver(self.session)
        timeline = order.timeline
        await conn.execute(
            _ADD_ORDER_SQL,
            order.order_id,
            order.customer_id,
            order.status.value,
            order.currency,
            _json([line.as_dict() for line in order.lines]),
            order.subtotal_minor,
            order.discount_total_minor,
            order.total_minor,
            order.placed_at,
            order.payment_due_at,
            order.review_deadline,
            order.refunded_minor,
            _json(placement.coupon_codes),
            _json(placement.shipping_address),
            _json(placement.client),
            placement.quote_id,
            placement.assessment_id,
            placement.risk_decision,
            _json(placement.risk_reasons),
            placement.cart_id,
            placement.placed_by,
            placement.reservation_expires_at,
            [e.status for e in timeline],
            [e.at for e in timeline],
            [e.actor for e in timeline],
            [e.note[:500] for e in timeline],
        )
        self._timeline_seen[order.order_id] = len(timeline)

    async def get(self, order_id: str, *, for_update: bool = False) -> OrderRecord | None:
        query = sa.select(orders).where(orders.c.id == order_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else await self._record(row)

    async def _record(self, row: sa.Row[Any]) -> OrderRecord:
        entries = (
            await self.session.execute(
                sa.select(order_timeline)
                .where(order_timeline.c.order_id == row.id)
                .order_by(order_timeline.c.id)
            )
        ).all()
        order = Order(
            order_id=row.id,
            customer_id=row.customer_id,
            status=OrderStatus(row.status),
            currency=row.currency,
            lines=[OrderLine.from_dict(d) for d in row.lines],
            placed_at=row.placed_at,
            payment_due_at=row.payment_due_at,
            review_deadline=row.review_deadline,
            refunded_minor=row.refunded_minor,
            delivered_at=row.delivered_at,
            timeline=[TimelineEntry(e.status, e.at, e.actor, e.note) for e in entries],
        )
        self._timeline_seen[order.order_id] = len(order.timeline)
        return OrderRecord(
            order=order,
            coupon_codes=list(row.coupon_codes),
            shipping_address=dict(row.shipping_address),
            quote_id=row.quote_id,
            assessment_id=row.assessment_id,
            risk_decision=row.risk_decision,
            risk_reasons=list(row.risk_reasons),
            cart_id=row.cart_id,
            placed_by=row.placed_by,
            reservation_expires_at=row.reservation_expires_at,
            payment_id=row.payment_id,
            payment_last4=row.payment_last4,
            paid_at=row.paid_at,
            cancel_reason=row.cancel_reason,
        )

    async def save(
        self,
        order: Order,
        *,
        at: datetime,
        payment: PaymentRecord | None = None,
        cancel_reason: str | None = None,
    ) -> None:
        columns: dict[str, Any] = {}
        if payment is not None:
            columns.update(
                paid_at=payment.paid_at,
                payment_token=payment.token,
                payment_id=payment.payment_id,
                payment_last4=payment.last4,
                payment_fingerprint=payment.fingerprint,
            )
        if cancel_reason is not None:
            columns.update(cancel_reason=cancel_reason, cancelled_at=at)
        await self.session.execute(
            sa.update(orders)
            .where(orders.c.id == order.order_id)
            .values(
                status=order.status.value,
                lines=[line.as_dict() for line in order.lines],
                payment_due_at=order.payment_due_at,
                review_deadline=order.review_deadline,
                refunded_minor=order.refunded_minor,
                delivered_at=order.delivered_at,
                updated_at=at,
                **columns,
            )
        )
        await self._write_timeline(order)

    async def _write_timeline(self, order: Order) -> None:
        seen = self._timeline_seen.get(order.order_id, 0)
        new = order.timeline[seen:]
        if new:
            await self.session.execute(
                sa.insert(order_timeline),
                [
                    {
                        "order_id": order.order_id,
                        "status": e.status,
                        "at": e.at,
                        "actor": e.actor,
                        "note": e.note[:500],
                    }
                    for e in new
                ],
            )
        self._timeline_seen[order.order_id] = len(order.timeline)

    async def add_shipment(self, shipment: ShipmentRecord) -> None:
        await self.session.execute(
            sa.insert(shipments).values(
                id=shipment.shipment_id,
                order_id=shipment.order_id,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                lines=shipment.lines,
                shipped_at=shipment.shipped_at,
            )
        )

    async def shipments(self, order_id: str) -> list[ShipmentRecord]:
        rows = await self.session.execute(
            sa.select(shipments)
            .where(shipments.c.order_id == order_id)
            .order_by(shipments.c.shipped_at, shipments.c.id)
        )
        return [
            ShipmentRecord(
                shipment_id=r.id,
                order_id=r.order_id,
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                lines=list(r.lines),
                shipped_at=r.shipped_at,
            )
            for r in rows
        ]

    async def lock_due(self, deadline: Deadline, *, now: datetime, limit: int) -> list[OrderRecord]:
        status, column = (
            (OrderStatus.AWAITING_PAYMENT, orders.c.payment_due_at)
            if deadline == "payment"
            else (OrderStatus.IN_REVIEW, orders.c.review_deadline)
        )
        query = (
            sa.select(orders)
            .where(orders.c.status == status.value, column.is_not(None), column <= now)
            .order_by(column)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await self.session.execute(query)).all()
        return [await self._record(row) for row in rows]

    async def page(
        self,
        *,
        customer_id: str | None,
        placed_by: str | None,
        status: OrderStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[str, datetime]]:
        query = sa.select(orders.c.id, orders.c.placed_at)
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        if placed_by is not None:
            query = query.where(orders.c.placed_by == placed_by)
        if status is not None:
            query = query.where(orders.c.status == status.value)
        if before is not None:
            query = query.where(
                sa.tuple_(orders.c.placed_at, orders.c.id) < sa.tuple_(before[0], before[1])
            )
        query = query.order_by(orders.c.placed_at.desc(), orders.c.id.desc()).limit(limit)
        return [(r.id, r.placed_at) for r in (await self.session.execute(query)).all()]


def _cart(row: sa.Row[Any]) -> CartRecord:
    return CartRecord(
        cart_id=row.id,
        customer_id=row.customer_id,
        currency=row.currency,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        order_id=row.order_id,
    )


class SqlCartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, cart: CartRecord) -> None:
        await self.session.execute(
            sa.insert(carts).values(
                id=cart.cart_id,
                customer_id=cart.customer_id,
                currency=cart.currency,
                status=cart.status,
                created_at=cart.created_at,
                updated_at=cart.updated_at,
            )
        )

    async def get(self, cart_id: str, *, for_update: bool = False) -> CartRecord | None:
        query = sa.select(carts).where(carts.c.id == cart_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _cart(row)

    async def lines(self, cart_id: str) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(cart_items.c.sku, cart_items.c.quantity)
            .where(cart_items.c.cart_id == cart_id)
            .order_by(cart_items.c.sku)
        )
        return {r.sku: int(r.quantity) for r in rows}

    async def set_item(self, cart_id: str, sku: str, quantity: int, *, now: datetime) -> None:
        if quantity == 0:
            await self.session.execute(
                sa.delete(cart_items).where(
                    cart_items.c.cart_id == cart_id, cart_items.c.sku == sku
                )
            )
        else:
            stmt = pg_insert(cart_items).values(cart_id=cart_id, sku=sku, quantity=quantity)
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[cart_items.c.cart_id, cart_items.c.sku],
                    set_={"quantity": quantity},
                )
            )
        await self.session.execute(
            sa.update(carts).where(carts.c.id == cart_id).values(updated_at=now)
        )

    async def check_out(self, cart_id: str, *, order_id: str, at: datetime) -> None:
        await self.session.execute(
            sa.update(carts)
            .where(carts.c.id == cart_id)
            .values(status="checked_out", order_id=order_id, updated_at=at)
        )

    async def lock_idle(self, *, cutoff: datetime, limit: int) -> list[CartRecord]:
        has_items = sa.exists().where(cart_items.c.cart_id == carts.c.id)
        query = (
            sa.select(carts)
            .where(
                carts.c.status == "open",
                carts.c.updated_at <= cutoff,
                sa.or_(carts.c.abandoned_at.is_(None), carts.c.abandoned_at < carts.c.updated_at),
                has_items,
            )
            .order_by(carts.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_cart(row) for row in (await self.session.execute(query)).all()]

    async def mark_abandoned(self, cart_id: str, *, at: datetime) -> None:
        await self.session.execute(
            sa.update(carts).where(carts.c.id == cart_id).values(abandoned_at=at)
        )


def _return(row: sa.Row[Any]) -> Return:
    return Return(
        return_id=row.id,
        order_id=row.order_id,
        customer_id=row.customer_id,
        status=ReturnStatus(row.status),
        lines={d["sku"]: int(d["quantity"]) for d in row.lines},
        reason=row.reason,
        requested_at=row.requested_at,
        decided_at=row.decided_at,
        received_at=row.received_at,
        received_lines=list(row.received_lines),
        refunded_minor=row.refunded_minor,
    )


class SqlReturnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rma: Return, *, currency: str) -> None:
        await self.session.execute(
            sa.insert(returns).values(
                id=rma.return_id,
                order_id=rma.order_id,
                customer_id=rma.customer_id,
                status=rma.status.value,
                lines=[{"sku": k, "quantity": v} for k, v in rma.lines.items()],
                reason=rma.reason,
                currency=currency,
                requested_at=rma.requested_at,
                received_lines=[],
            )
        )

    async def get(self, return_id: str, *, for_update: bool = False) -> tuple[Return, str] | None:
        query = sa.select(returns).where(returns.c.id == return_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else (_return(row), str(row.currency))

    async def pending_units(self, order_id: str) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(returns.c.lines).where(
                returns.c.order_id == order_id,
                returns.c.status.in_([ReturnStatus.REQUESTED.value, ReturnStatus.APPROVED.value]),
            )
        )
        pending: dict[str, int] = {}
        for (lines,) in rows:
            for d in lines:
                pending[d["sku"]] = pending.get(d["sku"], 0) + int(d["quantity"])
        return pending

    async def save(
        self, rma: Return, *, decision_note: str | None = None, refund_id: str | None = None
    ) -> None:
        columns: dict[str, Any] = {}
        if decision_note is not None:
            columns["decision_note"] = decision_note
        if refund_id is not None:
            columns["refund_id"] = refund_id
        await self.session.execute(
            sa.update(returns)
            .where(returns.c.id == rma.return_id)
            .values(
                status=rma.status.value,
                decided_at=rma.decided_at,
                received_at=rma.received_at,
                received_lines=rma.received_lines,
                refunded_minor=rma.refunded_minor,
                **columns,
            )
        )
