"""Persistence of orders, carts and returns, and the read models (JSON views) of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import (
    Order,
    OrderLine,
    OrderStatus,
    Return,
    ReturnStatus,
    TimelineEntry,
    actor_role,
)
from .tables import cart_items, carts, order_timeline, orders, returns, shipments


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- orders ---------------------------------------------------------------------------------
class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._timeline_seen: dict[str, int] = {}

    async def add(self, order: Order, **columns: Any) -> None:
        await self.session.execute(
            sa.insert(orders).values(
                id=order.order_id,
                customer_id=order.customer_id,
                status=order.status.value,
                currency=order.currency,
                lines=[line.as_dict() for line in order.lines],
                subtotal_minor=order.subtotal_minor,
                discount_total_minor=order.discount_total_minor,
                total_minor=order.total_minor,
                placed_at=order.placed_at,
                updated_at=order.placed_at,
                payment_due_at=order.payment_due_at,
                review_deadline=order.review_deadline,
                refunded_minor=order.refunded_minor,
                **columns,
            )
        )
        self._timeline_seen[order.order_id] = 0
        await self._write_timeline(order)

    async def get_row(self, order_id: str, *, for_update: bool = False) -> Any | None:
        query = sa.select(orders).where(orders.c.id == order_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).first()

    async def get(self, order_id: str, *, for_update: bool = False) -> tuple[Order, Any] | None:
        row = await self.get_row(order_id, for_update=for_update)
        if row is None:
            return None
        return await self.hydrate(row), row

    async def hydrate(self, row: Any) -> Order:
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
        return order

    async def save(self, order: Order, *, at: datetime, **columns: Any) -> None:
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

    async def add_shipment(self, **values: Any) -> None:
        await self.session.execute(sa.insert(shipments).values(**values))

    async def lock_due(
        self, *, status: OrderStatus, column: sa.Column[Any], now: datetime, limit: int
    ) -> list[Any]:
        """Rows past their deadline, locked; replicas skip each other's rows."""
        query = (
            sa.select(orders)
            .where(orders.c.status == status.value, column.is_not(None), column <= now)
            .order_by(column)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(query)).all())


def order_view(row: Any, order: Order, ships: list[Any], *, staff: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "currency": order.currency,
        "lines": [line.as_dict() for line in order.lines],
        "subtotal_minor": order.subtotal_minor,
        "discount_total_minor": order.discount_total_minor,
        "total_minor": order.total_minor,
        "coupon_codes": list(row.coupon_codes),
        "shipping_address": dict(row.shipping_address),
        "payment_due_at": iso(order.payment_due_at),
        "placed_at": iso(order.placed_at),
        "payment": (
            {"payment_id": row.payment_id, "last4": row.payment_last4, "paid_at": iso(row.paid_at)}
            if row.payment_id
            else None
        ),
        "shipments": [
            {
                "shipment_id": s.id,
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "lines": list(s.lines),
                "shipped_at": iso(s.shipped_at),
            }
            for s in ships
        ],
        "timeline": [
            {
                "status": e.status,
                "at": iso(e.at),
                "actor": e.actor if staff else actor_role(e.actor),
                "note": e.note,
            }
            for e in order.timeline
        ],
        "refunded_minor": order.refunded_minor,
        "cancel_reason": row.cancel_reason,
        "quote_id": row.quote_id,
        "cart_id": row.cart_id,
        "delivered_at": iso(order.delivered_at),
        "risk": None,
    }
    if staff:
        view["risk"] = {
            "assessment_id": row.assessment_id,
            "decision": row.risk_decision,
            "reasons": list(row.risk_reasons),
        }
    return view


async def load_order_view(
    session: AsyncSession, repo: OrderRepository, order_id: str, *, staff: bool
) -> dict[str, Any] | None:
    loaded = await repo.get(order_id)
    if loaded is None:
        return None
    order, row = loaded
    ships = (
        await session.execute(
            sa.select(shipments)
            .where(shipments.c.order_id == order_id)
            .order_by(shipments.c.shipped_at, shipments.c.id)
        )
    ).all()
    return order_view(row, order, list(ships), staff=staff)


# --- carts ----------------------------------------------------------------------------------
async def add_cart(
    session: AsyncSession, *, cart_id: str, customer_id: str, currency: str, now: datetime
) -> None:
    await session.execute(
        sa.insert(carts).values(
            id=cart_id,
            customer_id=customer_id,
            currency=currency,
            status="open",
            created_at=now,
            updated_at=now,
        )
    )


async def get_cart(session: AsyncSession, cart_id: str, *, for_update: bool = False) -> Any | None:
    query = sa.select(carts).where(carts.c.id == cart_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def cart_lines(session: AsyncSession, cart_id: str) -> dict[str, int]:
    rows = await session.execute(
        sa.select(cart_items.c.sku, cart_items.c.quantity)
        .where(cart_items.c.cart_id == cart_id)
        .order_by(cart_items.c.sku)
    )
    return {r.sku: int(r.quantity) for r in rows}


async def set_cart_item(
    session: AsyncSession, *, cart_id: str, sku: str, quantity: int, now: datetime
) -> None:
    if quantity == 0:
        await session.execute(
            sa.delete(cart_items).where(cart_items.c.cart_id == cart_id, cart_items.c.sku == sku)
        )
    else:
        stmt = pg_insert(cart_items).values(cart_id=cart_id, sku=sku, quantity=quantity)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[cart_items.c.cart_id, cart_items.c.sku],
                set_={"quantity": quantity},
            )
        )
    await session.execute(sa.update(carts).where(carts.c.id == cart_id).values(updated_at=now))


# --- returns --------------------------------------------------------------------------------
def _return_from_row(row: Any) -> Return:
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


async def get_return(
    session: AsyncSession, return_id: str, *, for_update: bool = False
) -> tuple[Return, Any] | None:
    query = sa.select(returns).where(returns.c.id == return_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else (_return_from_row(row), row)


async def pending_return_units(session: AsyncSession, order_id: str) -> dict[str, int]:
    rows = await session.execute(
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


async def add_return(session: AsyncSession, rma: Return, currency: str) -> None:
    await session.execute(
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


async def save_return(session: AsyncSession, rma: Return, **columns: Any) -> None:
    await session.execute(
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


def return_view(rma: Return, currency: str) -> dict[str, Any]:
    return {
        "return_id": rma.return_id,
        "order_id": rma.order_id,
        "customer_id": rma.customer_id,
        "status": rma.status.value,
        "lines": [{"sku": k, "quantity": v} for k, v in rma.lines.items()],
        "reason": rma.reason,
        "requested_at": iso(rma.requested_at),
        "decided_at": iso(rma.decided_at),
        "received_at": iso(rma.received_at),
        "received_lines": rma.received_lines,
        "refunded_minor": rma.refunded_minor,
        "currency": currency,
    }
