"""Returns and KPIs through the bus on fakes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.errors import Forbidden, NotFound, Unprocessable
from order_service.domain.models import OrderStatus
from order_service.service_layer.checkout import PlaceOrder
from order_service.service_layer.fulfilment import ConfirmDelivery, CreateShipment
from order_service.service_layer.kpis import GetOrderKpis, rate
from order_service.service_layer.orders import CancelOrder
from order_service.service_layer.payments import PayOrder
from order_service.service_layer.returns import (
    ApproveReturn,
    GetReturn,
    ReceiveReturn,
    RejectReturn,
    RequestReturn,
)

from .handler_support import ADDRESS, OPS, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


async def delivered(h: Harness, who: Any, key: str = "k") -> str:
    order = await h.bus.handle(
        PlaceOrder(currency="EUR", lines={"A": 2, "B": 1}, shipping_address=ADDRESS),
        who,
        idempotency_key=key,
    )
    await h.bus.handle(
        PayOrder(order_id=order.order_id, payment_token="tok_ok"), who, idempotency_key=key
    )
    await h.bus.handle(
        CreateShipment(order_id=order.order_id, carrier="DHL", tracking_number="1"),
        OPS,
        idempotency_key=key,
    )
    await h.bus.handle(ConfirmDelivery(order_id=order.order_id), OPS)
    return order.order_id


async def test_a_return_is_requested_approved_received_and_refunded(h: Harness) -> None:
    ann = customer()
    order_id = await delivered(h, ann)
    request = RequestReturn(order_id=order_id, lines=[("A", 1)], reason="too big")
    asked = await h.bus.execute(request, ann, idempotency_key="r")
    assert (asked.result.status, asked.result.currency) == ("requested", "EUR")
    assert (await h.bus.execute(request, ann, idempotency_key="r")).replayed
    with pytest.raises(Unprocessable):  # more than was delivered, counting the open return
        await h.bus.handle(
            RequestReturn(order_id=order_id, lines=[("A", 2)], reason="x"),
            ann,
            idempotency_key="r2",
        )
    return_id = asked.result.return_id
    with pytest.raises(Forbidden):
        await h.bus.handle(ApproveReturn(return_id=return_id), ann)
    approved = await h.bus.handle(ApproveReturn(return_id=return_id), OPS)
    assert approved.status == "approved" and approved.decided_at is not None
    received = await h.bus.handle(
        ReceiveReturn(return_id=return_id, lines=[("A", 1, True)], warehouse="W1"), OPS
    )
    assert (received.status, received.refunded_minor) == ("received", 1000)
    assert [r.resellable for r in received.received_lines] == [True]
    (event,) = h.uow.events_of(order_events.ReturnReceived)
    assert (event.warehouse, event.refunded_minor) == ("W1", 1000)  # type: ignore[attr-defined]
    assert len(h.uow.events_of(order_events.OrderRefunded)) == 1
    assert h.uow.tables.orders[order_id].order.refunded_minor == 1000
    assert (await h.bus.handle(GetReturn(return_id=return_id), ann)).status == "received"
    with pytest.raises(NotFound):
        await h.bus.handle(GetReturn(return_id=return_id), customer("bob"))


async def test_a_rejected_return_keeps_the_note(h: Harness) -> None:
    ann = customer()
    order_id = await delivered(h, ann)
    asked = await h.bus.handle(
        RequestReturn(order_id=order_id, lines=[("B", 1)], reason="meh"), ann, idempotency_key="r"
    )
    rejected = await h.bus.handle(RejectReturn(return_id=asked.return_id, note="worn"), OPS)
    assert rejected.status == "rejected"
    assert h.uow.tables.notes[asked.return_id] == "worn"


async def test_kpis_count_orders_payments_and_carts(h: Harness) -> None:
    ann, bob = customer("ann"), customer("bob")
    await delivered(h, ann, key="a1")
    await delivered(h, ann, key="a2")
    await delivered(h, bob, key="b1")
    unpaid = await h.bus.handle(
        PlaceOrder(currency="EUR", lines={"A": 1}, shipping_address=ADDRESS),
        bob,
        idempotency_key="b2",
    )
    await h.bus.handle(CancelOrder(order_id=unpaid.order_id), bob)
    with pytest.raises(Unprocessable):
        await h.bus.handle(
            PlaceOrder(currency="EUR", lines={"A": 1}, shipping_address=ADDRESS),
            customer("reject-x"),
            idempotency_key="z",
        )
    assert any(r.order.status is OrderStatus.REJECTED for r in h.uow.tables.orders.values())
    kpis = await h.bus.handle(GetOrderKpis(end=h.clock.now + timedelta(seconds=1)), OPS)
    assert (kpis.orders, kpis.paid_orders) == (4, 3)  # the rejected order is not counted
    assert [(g.currency, g.amount_minor) for g in kpis.gmv] == [("EUR", 9000)]
    assert [a.amount_minor for a in kpis.average_order_value] == [3000]
    assert kpis.repurchase_rate == "0.5000"  # ann bought twice, bob once
    assert kpis.cancellation_rate == "0.2500"
    with pytest.raises(Unprocessable) as err:
        await h.bus.handle(GetOrderKpis(start=h.clock.now, end=h.clock.now), OPS)
    assert err.value.code == "invalid-period"
    with pytest.raises(Forbidden):
        await h.bus.handle(GetOrderKpis(), customer())


def test_rates_round_half_even_to_four_places() -> None:
    assert (rate(0, 0), rate(1, 3), rate(2, 3), rate(1, 8)) == (
        "0.0000",
        "0.3333",
        "0.6667",
        "0.1250",
    )
