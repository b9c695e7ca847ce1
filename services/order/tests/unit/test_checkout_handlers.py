"""Checkout through the bus on fakes: placed, rejected (kept, refused, replayed), cart
checkout, ownership, and the risk review's outcome."""

from __future__ import annotations

from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import StoredRefusal
from ecomops_platform.errors import Conflict, Forbidden, Unprocessable
from order_service.domain.models import OrderStatus
from order_service.service_layer.carts import CreateCart, SetCartItem
from order_service.service_layer.checkout import (
    REJECTED_DETAIL,
    CheckoutCart,
    OrderRejected,
    PlaceOrder,
    ResolveRiskReview,
    order_id_for,
)

from .handler_support import ADDRESS, OPS, SYSTEM, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


def place(**overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {
        "currency": "EUR",
        "lines": {"SKU-1": 2},
        "shipping_address": ADDRESS,
    }
    fields.update(overrides)
    return PlaceOrder(**fields)


async def test_an_approved_order_awaits_payment_and_is_published(h: Harness) -> None:
    ann = customer("ann")
    outcome = await h.bus.execute(place(), ann, idempotency_key="k1")
    view = outcome.result
    assert view.status == "awaiting_payment" and view.customer_id == "ann"
    assert view.total_minor == 2000 and view.risk is None  # customers do not see risk
    assert view.order_id == order_id_for(ann, "place_order", "k1")
    assert view.order_id in h.world.inventory.holds
    placed = h.uow.events_of(order_events.OrderPlaced)
    assert [e.order_id for e in placed] == [view.order_id]  # type: ignore[attr-defined]
    again = await h.bus.execute(place(), ann, idempotency_key="k1")
    assert again.replayed and again.result == view
    assert len(h.uow.tables.orders) == 1


async def test_a_rejected_order_is_kept_refused_and_refused_again(h: Harness) -> None:
    bad = customer("reject-me")
    with pytest.raises(OrderRejected) as first:
        await h.bus.handle(place(), bad, idempotency_key="k1")
    order_id = order_id_for(bad, "place_order", "k1")
    assert first.value.problem(instance="/v1/orders") == {
        "type": "https://ecomops.dev/problems/order-rejected",
        "title": "Order rejected",
        "status": 422,
        "detail": REJECTED_DETAIL,
        "order_id": order_id,
    }
    assert h.uow.tables.orders[order_id].order.status is OrderStatus.REJECTED
    assert len(h.uow.events_of(order_events.OrderRejected)) == 1
    assert h.world.inventory.holds == {}  # nothing held for a rejected order
    with pytest.raises(StoredRefusal) as again:
        await h.bus.handle(place(), bad, idempotency_key="k1")
    assert again.value.status == 422
    assert again.value.problem() == first.value.problem()
    assert len(h.uow.events_of(order_events.OrderRejected)) == 1


async def test_customers_order_for_themselves_only(h: Harness) -> None:
    with pytest.raises(Unprocessable) as err:
        await h.bus.handle(place(customer_id="bob"), customer("ann"), idempotency_key="k")
    assert err.value.code == "invalid-customer"
    partner = Caller("market", Role.PARTNER)
    view = await h.bus.handle(place(customer_id="bob"), partner, idempotency_key="k")
    assert view.customer_id == "bob"
    assert h.uow.tables.orders[view.order_id].placed_by == "partner:market"


async def test_a_failed_checkout_leaves_nothing_and_may_be_retried(h: Harness) -> None:
    h.world.inventory.fail.add("reserve_after")
    with pytest.raises(Exception):  # noqa: B017 - DependencyUnavailable
        await h.bus.handle(place(), customer(), idempotency_key="k")
    assert h.uow.tables.orders == {} and h.uow.events == []
    assert h.world.inventory.holds == {}  # compensated
    h.world.heal()
    view = await h.bus.handle(place(), customer(), idempotency_key="k")
    assert view.status == "awaiting_payment"


async def test_checkout_of_a_cart_closes_it(h: Harness) -> None:
    ann = customer()
    cart = await h.bus.handle(CreateCart(), ann, idempotency_key="c")
    await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="SKU-9", quantity=3), ann)
    order = await h.bus.handle(
        CheckoutCart(cart_id=cart.cart_id, shipping_address=ADDRESS), ann, idempotency_key="k"
    )
    assert order.cart_id == cart.cart_id and [line.sku for line in order.lines] == ["SKU-9"]
    stored = h.uow.tables.carts[cart.cart_id]
    assert (stored.status, stored.order_id) == ("checked_out", order.order_id)
    with pytest.raises(Conflict) as err:
        await h.bus.handle(
            CheckoutCart(cart_id=cart.cart_id, shipping_address=ADDRESS), ann, idempotency_key="k2"
        )
    assert err.value.code == "cart-closed"


async def test_a_review_verdict_continues_or_cancels(h: Harness) -> None:
    held = customer("review-1")
    first = await h.bus.handle(place(), held, idempotency_key="a")
    second = await h.bus.handle(place(), held, idempotency_key="b")
    assert first.status == second.status == "in_review"
    await h.bus.handle(ResolveRiskReview(order_id=first.order_id, decision="approve"), SYSTEM)
    await h.bus.handle(
        ResolveRiskReview(order_id=second.order_id, decision="reject", analyst="al"), SYSTEM
    )
    orders = h.uow.tables.orders
    assert orders[first.order_id].order.status is OrderStatus.AWAITING_PAYMENT
    assert orders[first.order_id].order.payment_due_at is not None
    assert orders[second.order_id].order.status is OrderStatus.CANCELLED
    cancelled = h.uow.events_of(order_events.OrderCancelled)
    assert [(e.order_id, e.reason) for e in cancelled] == [  # type: ignore[attr-defined]
        (second.order_id, "risk_rejected")
    ]
    # A verdict for an order no longer in review changes nothing.
    await h.bus.handle(ResolveRiskReview(order_id=second.order_id, decision="approve"), SYSTEM)
    assert orders[second.order_id].order.status is OrderStatus.CANCELLED
    third = await h.bus.handle(place(), held, idempotency_key="c")
    with pytest.raises(ValueError):  # a poison event: the consumer dead-letters it
        await h.bus.handle(ResolveRiskReview(order_id=third.order_id, decision="maybe"), SYSTEM)
    with pytest.raises(Forbidden):  # only the service itself (from the event) sends it
        await h.bus.handle(ResolveRiskReview(order_id=third.order_id, decision="approve"), OPS)
    assert h.uow.tables.orders[third.order_id].order.status is OrderStatus.IN_REVIEW
