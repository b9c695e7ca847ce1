"""Checkout tells risk every fraud signal it has: e-mail, billing country, the payment
method's fingerprint (from the provider's token, never card data) and when the account was
created (the token's claim, else the customer's first-seen time in order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Unprocessable
from order_service.service_layer.carts import CreateCart, SetCartItem
from order_service.service_layer.checkout import CheckoutCart, PlaceOrder

from .handler_support import ADDRESS, Harness, customer, harness

BILLING = {**ADDRESS, "country": "US"}


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


def place(**overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {"currency": "EUR", "lines": {"SKU-1": 2}, "shipping_address": ADDRESS}
    fields.update(overrides)
    return PlaceOrder(**fields)


async def test_every_signal_reaches_risk_and_the_token_only_as_a_fingerprint(h: Harness) -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ann = Caller("ann", Role.CUSTOMER, account_created_at=created)
    await h.bus.handle(
        place(email="ann@example.com", billing_address=BILLING, payment_token="tok_ok_visa"),
        ann,
        idempotency_key="k1",
    )
    (sent,) = h.world.risk.calls
    assert sent.email == "ann@example.com"
    assert (sent.billing_country, sent.shipping_country) == ("US", ADDRESS["country"])
    charge = await h.world.payments.charge(
        token="tok_ok_visa", amount_minor=1, currency="EUR", idempotency_key="x"
    )
    assert sent.payment_fingerprint == charge.fingerprint  # what OrderPaid later reports
    assert "tok_ok_visa" not in repr(sent)
    assert sent.account_created_at == created


async def test_without_a_claim_the_first_order_here_dates_the_account(h: Harness) -> None:
    bob = customer("bob")
    await h.bus.handle(place(), bob, idempotency_key="k1")
    assert h.world.risk.calls[0].account_created_at is None  # never seen before: unknown
    first = next(iter(h.uow.tables.orders.values())).order.placed_at
    h.clock.advance(days=3)
    await h.bus.handle(place(), bob, idempotency_key="k2")
    assert h.world.risk.calls[1].account_created_at == first
    assert (h.world.risk.calls[1].email, h.world.risk.calls[1].payment_fingerprint) == ("", "")


async def test_a_partner_ordering_for_a_customer_never_lends_its_own_claim(h: Harness) -> None:
    market = Caller("market", Role.PARTNER, account_created_at=datetime(2020, 1, 1, tzinfo=UTC))
    await h.bus.handle(place(customer_id="carol"), market, idempotency_key="k")
    assert h.world.risk.calls[0].account_created_at is None


async def test_a_cart_checkout_dates_a_new_customer_by_the_cart(h: Harness) -> None:
    dan = customer("dan")
    cart = await h.bus.handle(CreateCart(), dan, idempotency_key="c")
    await h.bus.handle(SetCartItem(cart_id=cart.cart_id, sku="SKU-9", quantity=1), dan)
    h.clock.advance(hours=2)
    await h.bus.handle(
        CheckoutCart(
            cart_id=cart.cart_id,
            shipping_address=ADDRESS,
            email="dan@example.com",
            billing_address=BILLING,
            payment_token="tok_ok_dan",
        ),
        dan,
        idempotency_key="k",
    )
    (sent,) = h.world.risk.calls
    assert sent.account_created_at == h.uow.tables.carts[cart.cart_id].created_at
    assert h.clock() - sent.account_created_at == timedelta(hours=2)
    assert (sent.email, sent.billing_country) == ("dan@example.com", "US")
    assert sent.payment_fingerprint.startswith("fp_")


async def test_an_unknown_payment_token_is_refused_before_anything_is_held(h: Harness) -> None:
    with pytest.raises(Unprocessable) as err:
        await h.bus.handle(place(payment_token="4111-not-a-token"), customer(), idempotency_key="k")
    assert err.value.code == "invalid-payment-token"
    assert h.world.risk.calls == [] and h.world.inventory.holds == {}
    assert h.uow.tables.orders == {}
