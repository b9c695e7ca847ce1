"""Paying, shipping, delivering, cancelling, reading and expiring orders through the bus on
fakes."""

from __future__ import annotations

from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Conflict, NotFound, PaymentRequired
from order_service.domain.models import OrderStatus
from order_service.service_layer.checkout import PlaceOrder
from order_service.service_layer.fulfilment import ConfirmDelivery, CreateShipment
from order_service.service_layer.orders import CancelOrder, GetOrder, ListOrders
from order_service.service_layer.payments import ExpireUnpaidOrders, PayOrder
from order_service.service_layer.views import OrderView

from .handler_support import ADDRESS, OPS, SYSTEM, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


async def placed(h: Harness, who: Caller, key: str = "k", **lines: int) -> OrderView:
    command = PlaceOrder(currency="EUR", lines=lines or {"A": 2, "B": 1}, shipping_address=ADDRESS)
    return await h.bus.handle(command, who, idempotency_key=key)


async def test_pay_ship_deliver(h: Harness) -> None:
    ann = customer()
    order = await placed(h, ann)
    pay = PayOrder(order_id=order.order_id, payment_token="tok_ok_visa")
    paid = await h.bus.execute(pay, ann, idempotency_key="p1")
    assert paid.result.status == "paid" and paid.result.payment is not None
    assert paid.result.payment.last4 == "4242"
    assert (await h.bus.execute(pay, ann, idempotency_key="p1")).replayed
    assert len(h.uow.events_of(order_events.OrderPaid)) == 1
    assert h.uow.tables.payments[order.order_id].token == "tok_ok_visa"

    carrier = Caller("dhl", Role.PARTNER)
    partial = await h.bus.handle(
        CreateShipment(
            order_id=order.order_id, lines=[("A", 1)], carrier="DHL", tracking_number="1"
        ),
        carrier,
        idempotency_key="s1",
    )
    assert partial.status == "partially_shipped" and len(partial.shipments) == 1
    rest = await h.bus.handle(
        CreateShipment(order_id=order.order_id, carrier="DHL", tracking_number="2"),
        carrier,
        idempotency_key="s2",
    )
    assert rest.status == "shipped"
    assert [[(line.sku, line.quantity) for line in s.lines] for s in rest.shipments] == [
        [("A", 1)],
        [("A", 1), ("B", 1)],
    ]
    shipped = h.uow.events_of(order_events.OrderShipped)
    assert [e.complete for e in shipped] == [False, True]  # type: ignore[attr-defined]
    delivered = await h.bus.handle(ConfirmDelivery(order_id=order.order_id), carrier)
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    # The carrier's id is not shown to the customer, only its role.
    seen = await h.bus.handle(GetOrder(order_id=order.order_id), ann)
    assert {e.actor for e in seen.timeline} <= {"customer", "partner"}


async def test_a_declined_payment_leaves_the_order_payable(h: Harness) -> None:
    ann = customer()
    order = await placed(h, ann)
    with pytest.raises(PaymentRequired):
        await h.bus.handle(
            PayOrder(order_id=order.order_id, payment_token="tok_declined"),
            ann,
            idempotency_key="p",
        )
    assert h.uow.tables.orders[order.order_id].order.status is OrderStatus.AWAITING_PAYMENT
    assert h.uow.events_of(order_events.OrderPaid) == []
    # The same key may be used again, per order: errors are not stored.
    paid = await h.bus.handle(
        PayOrder(order_id=order.order_id, payment_token="tok_ok"), ann, idempotency_key="p"
    )
    assert paid.status == "paid"


async def test_the_same_payment_key_pays_two_orders(h: Harness) -> None:
    ann = customer()
    one = await placed(h, ann, key="k1")
    two = await placed(h, ann, key="k2")
    for order in (one, two):
        view = await h.bus.handle(
            PayOrder(order_id=order.order_id, payment_token="tok_ok"), ann, idempotency_key="pay"
        )
        assert view.status == "paid"


async def test_a_paid_order_cancelled_is_refunded(h: Harness) -> None:
    ann = customer()
    order = await placed(h, ann)
    await h.bus.handle(
        PayOrder(order_id=order.order_id, payment_token="tok_ok"), ann, idempotency_key="p"
    )
    cancelled = await h.bus.handle(CancelOrder(order_id=order.order_id, reason="oops"), ann)
    assert (cancelled.status, cancelled.refunded_minor) == ("cancelled", order.total_minor)
    assert cancelled.cancel_reason == "oops"
    (event,) = h.uow.events_of(order_events.OrderCancelled)
    assert (event.reason, event.was_paid) == ("customer", True)  # type: ignore[attr-defined]
    assert len(h.uow.events_of(order_events.OrderRefunded)) == 1
    with pytest.raises(Conflict):
        await h.bus.handle(CancelOrder(order_id=order.order_id), OPS)


async def test_orders_are_visible_to_their_owner_only(h: Harness) -> None:
    ann, bob = customer("ann"), customer("bob")
    order = await placed(h, ann)
    with pytest.raises(NotFound):
        await h.bus.handle(GetOrder(order_id=order.order_id), bob)
    with pytest.raises(NotFound):
        await h.bus.handle(CancelOrder(order_id=order.order_id), bob)
    staff_view = await h.bus.handle(GetOrder(order_id=order.order_id), OPS)
    assert staff_view.risk is not None and staff_view.risk.decision == "approve"


async def test_list_orders_pages_newest_first(h: Harness) -> None:
    ann = customer()
    ids = []
    for i in range(3):
        ids.append((await placed(h, ann, key=f"k{i}")).order_id)
        h.clock.advance(seconds=1)
    await placed(h, customer("bob"), key="other")
    first = await h.bus.handle(ListOrders(limit=2), ann)
    assert [o.order_id for o in first.items] == ids[::-1][:2] and first.next_cursor
    second = await h.bus.handle(ListOrders(limit=2, cursor=first.next_cursor), ann)
    assert [o.order_id for o in second.items] == [ids[0]] and second.next_cursor is None
    assert len((await h.bus.handle(ListOrders(), OPS)).items) == 4


async def test_unpaid_orders_expire(h: Harness) -> None:
    ann = customer()
    unpaid = await placed(h, ann, key="a")
    paid = await placed(h, ann, key="b")
    await h.bus.handle(
        PayOrder(order_id=paid.order_id, payment_token="tok_ok"), ann, idempotency_key="p"
    )
    assert await h.bus.handle(ExpireUnpaidOrders(), SYSTEM) == 0
    h.clock.advance(seconds=h.bus.deps.settings.payment_timeout + 1)
    assert await h.bus.handle(ExpireUnpaidOrders(), SYSTEM) == 1
    orders = h.uow.tables.orders
    assert orders[unpaid.order_id].order.status is OrderStatus.CANCELLED
    assert orders[paid.order_id].order.status is OrderStatus.PAID
    (event,) = h.uow.events_of(order_events.OrderCancelled)
    assert event.reason == "payment_timeout"  # type: ignore[attr-defined]
