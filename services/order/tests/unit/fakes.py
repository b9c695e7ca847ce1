"""The order service's unit of work in memory: repositories as dicts behind the ports of
``service_layer/ports.py``, rolled back with the unit of work (see ecomops_testing.fakes)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ecomops_testing.fakes import FakeUnitOfWork
from order_service.domain.history import ImportedOrder
from order_service.domain.models import (
    Order,
    OrderLine,
    OrderStatus,
    Return,
    ReturnStatus,
    TimelineEntry,
)
from order_service.service_layer.ports import (
    CartRecord,
    CurrencyTotal,
    Deadline,
    KpiCounts,
    OrderRecord,
    PaymentRecord,
    Placement,
    ShipmentRecord,
    StoredImport,
)


@dataclass
class Tables:
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    shipments: list[ShipmentRecord] = field(default_factory=list)
    carts: dict[str, CartRecord] = field(default_factory=dict)
    cart_items: dict[str, dict[str, int]] = field(default_factory=dict)
    abandoned_at: dict[str, datetime] = field(default_factory=dict)
    returns: dict[str, tuple[Return, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


class FakeOrderRepository:
    def __init__(self, uow: FakeOrderUnitOfWork) -> None:
        self.uow = uow

    @property
    def t(self) -> Tables:
        return self.uow.tables

    async def add(self, order: Order, placement: Placement) -> None:
        assert order.order_id not in self.t.orders, "duplicate order id"
        self.t.orders[order.order_id] = OrderRecord(
            order=copy.deepcopy(order),
            coupon_codes=list(placement.coupon_codes),
            shipping_address=dict(placement.shipping_address),
            quote_id=placement.quote_id,
            assessment_id=placement.assessment_id,
            risk_decision=placement.risk_decision,
            risk_reasons=list(placement.risk_reasons),
            cart_id=placement.cart_id,
            placed_by=placement.placed_by,
            reservation_expires_at=placement.reservation_expires_at,
            payment_id=None,
            payment_last4=None,
            paid_at=None,
            cancel_reason=None,
        )

    async def get(self, order_id: str, *, for_update: bool = False) -> OrderRecord | None:
        record = self.t.orders.get(order_id)
        return None if record is None else copy.deepcopy(record)

    async def save(
        self,
        order: Order,
        *,
        at: datetime,
        payment: PaymentRecord | None = None,
        cancel_reason: str | None = None,
    ) -> None:
        record = self.t.orders[order.order_id]
        record.order = copy.deepcopy(order)
        if payment is not None:
            self.t.payments[order.order_id] = payment
            record.payment_id = payment.payment_id
            record.payment_last4 = payment.last4
            record.paid_at = payment.paid_at
        if cancel_reason is not None:
            record.cancel_reason = cancel_reason

    async def add_shipment(self, shipment: ShipmentRecord) -> None:
        self.t.shipments.append(shipment)

    async def shipments(self, order_id: str) -> list[ShipmentRecord]:
        return [s for s in self.t.shipments if s.order_id == order_id]

    async def lock_due(self, deadline: Deadline, *, now: datetime, limit: int) -> list[OrderRecord]:
        def due(o: Order) -> datetime | None:
            if deadline == "payment":
                return o.payment_due_at if o.status is OrderStatus.AWAITING_PAYMENT else None
            return o.review_deadline if o.status is OrderStatus.IN_REVIEW else None

        found = [r for r in self.t.orders.values() if (d := due(r.order)) is not None and d <= now]
        return [copy.deepcopy(r) for r in found[:limit]]

    async def page(
        self,
        *,
        customer_id: str | None,
        placed_by: str | None,
        status: OrderStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[str, datetime]]:
        rows = [
            (r.order.placed_at, r.order.order_id)
            for r in self.t.orders.values()
            if (customer_id is None or r.order.customer_id == customer_id)
            and (placed_by is None or r.placed_by == placed_by)
            and (status is None or r.order.status is status)
        ]
        rows.sort(reverse=True)
        if before is not None:
            rows = [row for row in rows if row < before]
        return [(oid, at) for at, oid in rows[:limit]]


class FakeCartRepository:
    def __init__(self, uow: FakeOrderUnitOfWork) -> None:
        self.uow = uow

    @property
    def t(self) -> Tables:
        return self.uow.tables

    async def add(self, cart: CartRecord) -> None:
        self.t.carts[cart.cart_id] = cart
        self.t.cart_items[cart.cart_id] = {}

    async def get(self, cart_id: str, *, for_update: bool = False) -> CartRecord | None:
        return self.t.carts.get(cart_id)

    async def lines(self, cart_id: str) -> dict[str, int]:
        return dict(sorted(self.t.cart_items.get(cart_id, {}).items()))

    async def set_item(self, cart_id: str, sku: str, quantity: int, *, now: datetime) -> None:
        items = self.t.cart_items.setdefault(cart_id, {})
        if quantity == 0:
            items.pop(sku, None)
        else:
            items[sku] = quantity
        self.t.carts[cart_id] = replace(self.t.carts[cart_id], updated_at=now)

    async def check_out(self, cart_id: str, *, order_id: str, at: datetime) -> None:
        self.t.carts[cart_id] = replace(
            self.t.carts[cart_id], status="checked_out", order_id=order_id, updated_at=at
        )

    async def lock_idle(self, *, cutoff: datetime, limit: int) -> list[CartRecord]:
        def idle(c: CartRecord) -> bool:
            seen = self.t.abandoned_at.get(c.cart_id)
            return (
                c.status == "open"
                and c.updated_at <= cutoff
                and (seen is None or seen < c.updated_at)
                and bool(self.t.cart_items.get(c.cart_id))
            )

        return sorted(filter(idle, self.t.carts.values()), key=lambda c: c.updated_at)[:limit]

    async def mark_abandoned(self, cart_id: str, *, at: datetime) -> None:
        self.t.abandoned_at[cart_id] = at


class FakeReturnRepository:
    def __init__(self, uow: FakeOrderUnitOfWork) -> None:
        self.uow = uow

    @property
    def t(self) -> Tables:
        return self.uow.tables

    async def add(self, rma: Return, *, currency: str) -> None:
        self.t.returns[rma.return_id] = (copy.deepcopy(rma), currency)

    async def get(self, return_id: str, *, for_update: bool = False) -> tuple[Return, str] | None:
        found = self.t.returns.get(return_id)
        return None if found is None else copy.deepcopy(found)

    async def pending_units(self, order_id: str) -> dict[str, int]:
        pending: dict[str, int] = {}
        for rma, _ in self.t.returns.values():
            if rma.order_id == order_id and rma.status in (
                ReturnStatus.REQUESTED,
                ReturnStatus.APPROVED,
            ):
                for sku, qty in rma.lines.items():
                    pending[sku] = pending.get(sku, 0) + qty
        return pending

    async def save(
        self, rma: Return, *, decision_note: str | None = None, refund_id: str | None = None
    ) -> None:
        currency = self.t.returns[rma.return_id][1]
        self.t.returns[rma.return_id] = (copy.deepcopy(rma), currency)
        if decision_note is not None:
            self.t.notes[rma.return_id] = decision_note


class FakeKpiReader:
    def __init__(self, uow: FakeOrderUnitOfWork) -> None:
        self.uow = uow

    async def counts(self, *, start: datetime, end: datetime) -> KpiCounts:
        t = self.uow.tables
        records = [r for r in t.orders.values() if start <= r.order.placed_at < end]
        placed = [r for r in records if r.order.status is not OrderStatus.REJECTED]
        paid = [r for r in records if r.paid_at is not None]
        per_currency: dict[str, list[int]] = {}
        per_customer: dict[str, int] = {}
        for r in paid:
            per_currency.setdefault(r.order.currency, []).append(r.order.total_minor)
            per_customer[r.order.customer_id] = per_customer.get(r.order.customer_id, 0) + 1
        paid_ids = {r.order.order_id for r in paid}
        returned = {
            rma.order_id
            for rma, _ in t.returns.values()
            if rma.order_id in paid_ids and rma.status is not ReturnStatus.REJECTED
        }
        carts = [
            c
            for c in t.carts.values()
            if start <= c.created_at < end
            and (c.status == "checked_out" or t.cart_items.get(c.cart_id))
        ]
        return KpiCounts(
            orders=len(placed),
            paid_orders=len(paid),
            cancelled=sum(1 for r in placed if r.order.status is OrderStatus.CANCELLED),
            paid_by_currency=[
                CurrencyTotal(currency=c, total_minor=sum(v), orders=len(v))
                for c, v in sorted(per_currency.items())
            ],
            buyers=len(per_customer),
            repeat_buyers=sum(1 for n in per_customer.values() if n >= 2),
            orders_with_returns=len(returned),
            carts=len(carts),
            abandoned_carts=sum(1 for c in carts if c.status == "open"),
        )


class FakeImportRepository:
    """Imported orders as delivered, paid records (risk_decision "imported")."""

    def __init__(self, uow: FakeOrderUnitOfWork) -> None:
        self.uow = uow

    async def existing(self, order_ids: list[str]) -> dict[str, StoredImport]:
        t = self.uow.tables
        return {
            i: StoredImport(
                order_id=i,
                customer_id=t.orders[i].order.customer_id,
                total_minor=t.orders[i].order.total_minor,
                placed_at=t.orders[i].order.placed_at,
                imported=t.orders[i].risk_decision == "imported",
            )
            for i in order_ids
            if i in t.orders
        }

    async def add(self, orders: list[ImportedOrder], *, actor: str, note: str) -> set[str]:
        added: set[str] = set()
        for o in orders:
            if o.order_id in self.uow.tables.orders:
                continue
            order = Order(
                order_id=o.order_id,
                customer_id=o.customer_id,
                status=OrderStatus.DELIVERED,
                currency=o.currency,
                lines=[
                    OrderLine(ln.sku, ln.quantity, ln.unit_price_minor, 0, ln.total_minor)
                    for ln in o.lines
                ],
                placed_at=o.ordered_at,
                delivered_at=o.ordered_at,
                timeline=[TimelineEntry("delivered", o.ordered_at, actor, note)],
            )
            self.uow.tables.orders[o.order_id] = OrderRecord(
                order=order,
                coupon_codes=[],
                shipping_address=dict.fromkeys(
                    ("name", "line1", "city", "postal_code", "country"), ""
                ),
                quote_id="",
                assessment_id="",
                risk_decision="imported",
                risk_reasons=[],
                cart_id=None,
                placed_by=actor,
                reservation_expires_at=None,
                payment_id=None,
                payment_last4=None,
                paid_at=o.ordered_at,
                cancel_reason=None,
            )
            added.add(o.order_id)
        return added


class FakeOrderUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.tables = Tables()
        super().__init__()
        self.orders = FakeOrderRepository(self)
        self.carts = FakeCartRepository(self)
        self.returns = FakeReturnRepository(self)
        self.kpis = FakeKpiReader(self)
        self.imports = FakeImportRepository(self)

    async def first_order_at(self, customer_id: str) -> datetime | None:
        placed = [
            r.order.placed_at
            for r in self.tables.orders.values()
            if r.order.customer_id == customer_id
        ]
        return min(placed, default=None)

    def snapshot(self) -> Any:
        return (super().snapshot(), copy.deepcopy(self.tables))

    def restore(self, state: Any) -> None:
        base, tables = state
        super().restore(base)
        self.tables = copy.deepcopy(tables)
