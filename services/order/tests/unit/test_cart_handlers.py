"""Carts through the bus on fakes: create (idempotent), set lines (refused lines write
nothing), priced reads, ownership, and the abandonment job."""

from __future__ import annotations

from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.errors import NotFound, Unprocessable
from order_service.service_layer.carts import AbandonIdleCarts, CreateCart, GetCart, SetCartItem

from .handler_support import OPS, SYSTEM, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


async def test_a_cart_is_created_once_per_key(h: Harness) -> None:
    ann = customer()
    first = await h.bus.execute(CreateCart(currency="USD"), ann, idempotency_key="c1")
    again = await h.bus.execute(CreateCart(currency="USD"), ann, idempotency_key="c1")
    assert (first.result.currency, first.result.status, first.result.lines) == ("USD", "open", [])
    assert again.replayed and again.result == first.result
    assert list(h.uow.tables.carts) == [first.result.cart_id]
    default = await h.bus.handle(CreateCart(), ann, idempotency_key="c2")
    assert default.currency == "EUR"


async def test_lines_are_priced_with_availability(h: Harness) -> None:
    ann = customer()
    cart = await h.bus.handle(CreateCart(), ann, idempotency_key="c")
    h.world.pricing.prices["A"] = 250
    h.world.inventory.stock["B"] = 1
    await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="A", quantity=2), ann)
    view = await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="B", quantity=3), ann)
    by_sku = {line.sku: line for line in view.lines}
    assert (by_sku["A"].total_minor, by_sku["A"].available) == (500, True)
    assert (by_sku["B"].available, by_sku["B"].available_quantity) == (False, 1)
    assert view.total_minor == 500 + 3000 and view.quote_id is not None
    removed = await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="B", quantity=0), ann)
    assert [line.sku for line in removed.lines] == ["A"]


async def test_a_refused_line_writes_nothing(h: Harness) -> None:
    ann = customer()
    cart = await h.bus.handle(CreateCart(), ann, idempotency_key="c")
    with pytest.raises(Unprocessable) as err:
        await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="unknown-1", quantity=1), ann)
    assert err.value.code == "unknown-sku"
    with pytest.raises(Unprocessable):
        await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="A", quantity=1001), ann)
    assert h.uow.tables.cart_items[cart.cart_id] == {}


async def test_a_line_pricing_drops_later_is_shown_unsellable(h: Harness) -> None:
    ann = customer()
    cart = await h.bus.handle(CreateCart(), ann, idempotency_key="c")
    await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="A", quantity=1), ann)
    await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="B", quantity=1), ann)
    h.world.pricing.refused["B"] = "sku-discontinued"
    view = await h.bus.handle(GetCart(cart_id=cart.cart_id), ann)
    line_b = next(line for line in view.lines if line.sku == "B")
    assert (line_b.sellable, line_b.available, line_b.total_minor) == (False, False, 0)
    assert view.total_minor == 1000


async def test_other_customers_do_not_see_a_cart(h: Harness) -> None:
    cart = await h.bus.handle(CreateCart(), customer("ann"), idempotency_key="c")
    with pytest.raises(NotFound):
        await h.bus.handle(GetCart(cart_id=cart.cart_id), customer("bob"))
    assert (await h.bus.handle(GetCart(cart_id=cart.cart_id), OPS)).customer_id == "ann"


async def test_idle_carts_are_reported_once_per_idle_period(h: Harness) -> None:
    ann = customer()
    idle = await h.bus.handle(CreateCart(), ann, idempotency_key="c1")
    empty = await h.bus.handle(CreateCart(), ann, idempotency_key="c2")
    await h.bus.handle(SetCartItem(cart_id=idle.cart_id, sku="A", quantity=1), ann)
    assert await h.bus.handle(AbandonIdleCarts(), SYSTEM) == 0
    h.clock.advance(seconds=h.bus.deps.settings.cart_abandon_after + 1)
    assert await h.bus.handle(AbandonIdleCarts(), SYSTEM) == 1
    assert await h.bus.handle(AbandonIdleCarts(), SYSTEM) == 0  # once per idle period
    events = h.uow.events_of(order_events.CartAbandoned)
    assert [e.cart_id for e in events] == [idle.cart_id]  # type: ignore[attr-defined]
    assert empty.cart_id not in h.uow.tables.abandoned_at
