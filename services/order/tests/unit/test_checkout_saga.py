"""The checkout saga's orchestration with fakes of pricing, risk, inventory and of the store:
every branch, and compensation checked at every step (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomops_platform.errors import DependencyUnavailable, ServiceError
from order_service.domain.models import OrderStatus
from order_service.service_layer.ports import OutOfStock, SoldOutMemory
from order_service.service_layer.saga import CheckoutInput, SagaOutcome, run_checkout_saga
from order_service.settings import OrderSettings

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = OrderSettings(database_url="postgresql+asyncpg://unused/db")


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.stored: list[SagaOutcome] = []

    async def __call__(self, outcome: SagaOutcome) -> None:
        if self.fail:
            raise RuntimeError("database went away")
        self.stored.append(outcome)


def data(coupons: tuple[str, ...] = (), **lines: int) -> CheckoutInput:
    return CheckoutInput(
        currency="EUR",
        lines=lines or {"sku-a": 2},
        shipping_address={"country": "FR"},
        coupon_codes=list(coupons),
        client={"ip": "203.0.113.1", "device_id": "d1"},
    )


async def run(world, store, customer="cust-1", order_id="o-1", checkout=None, cfg=SETTINGS):
    return await run_checkout_saga(
        world.ports(),
        cfg,
        now=NOW,
        order_id=order_id,
        customer_id=customer,
        actor=f"customer:{customer}",
        data=checkout or data(),
        store=store,
    )


async def test_approve_holds_and_stores_awaiting_payment(world) -> None:
    store = Store()
    outcome = await run(world, store, checkout=data(("SAVE10",)))
    order = outcome.order
    assert store.stored == [outcome] and order.status is OrderStatus.AWAITING_PAYMENT
    assert world.inventory.holds == {"o-1": {"sku-a": 2}}
    assert world.inventory.ttl["o-1"] == SETTINGS.reservation_ttl_seconds
    assert world.pricing.redeemed == {"o-1": outcome.quote.quote_id}
    assert order.total_minor == 1800 and order.discount_total_minor == 200
    assert order.payment_due_at == NOW + timedelta(seconds=SETTINGS.payment_timeout)
    assert outcome.reservation_expires_at is not None
    assert order.payment_due_at <= outcome.reservation_expires_at
    assert world.risk.calls[0].amount_minor == 1800  # risk scores the quoted total


async def test_review_holds_longer_and_stores_in_review(world) -> None:
    store = Store()
    outcome = await run(world, store, customer="cust-review")
    assert outcome.order.status is OrderStatus.IN_REVIEW
    assert outcome.order.payment_due_at is None and outcome.order.review_deadline is not None
    assert world.inventory.ttl["o-1"] == SETTINGS.review_reservation_ttl_seconds
    assert outcome.reservation_expires_at is not None
    assert (
        outcome.order.review_deadline + timedelta(seconds=SETTINGS.payment_timeout)
        <= outcome.reservation_expires_at
    )


async def test_reject_stores_rejected_and_holds_nothing(world) -> None:
    store = Store()
    outcome = await run(world, store, customer="cust-reject", checkout=data(("SAVE10",)))
    assert outcome.order.status is OrderStatus.REJECTED
    assert store.stored == [outcome]
    assert world.inventory.holds == {} and world.pricing.redeemed == {}
    assert outcome.assessment.reasons  # kept for ops


async def test_out_of_stock_holds_and_stores_nothing(world) -> None:
    world.inventory.stock["sku-a"] = 1
    store = Store()
    with pytest.raises(OutOfStock) as info:
        await run(world, store)
    assert info.value.status == 409
    assert info.value.shortages == [{"sku": "sku-a", "requested": 2, "available": 1}]
    assert store.stored == [] and world.inventory.holds == {}


async def test_a_sku_found_short_is_refused_next_time_without_a_quote_or_an_assessment(
    world,
) -> None:
    """The flash sale after its last unit: inventory's availability refuses the next checkouts
    for the SKU (the same 409 and shortages), with no quote, no assessment and nothing held."""
    world.inventory.stock["sku-a"] = 1
    with pytest.raises(OutOfStock):
        await run(world, Store())
    quotes, assessments = world.pricing.quotes, len(world.risk.calls)
    for attempt in range(3):
        with pytest.raises(OutOfStock) as info:
            await run(world, Store(), order_id=f"o-{attempt + 2}")
        assert info.value.status == 409
        assert info.value.shortages == [{"sku": "sku-a", "requested": 2, "available": 1}]
    assert world.pricing.quotes == quotes and len(world.risk.calls) == assessments
    assert world.inventory.holds == {}
    # One unit fewer is still enough for a one-unit order: it goes through, quoted and assessed.
    store = Store()
    await run(world, store, order_id="o-small", checkout=data(**{"sku-a": 1}))
    assert store.stored and world.inventory.holds == {"o-small": {"sku-a": 1}}
    assert world.pricing.quotes == quotes + 1


async def test_stock_that_comes_back_lets_the_next_checkout_through(world) -> None:
    world.inventory.stock["sku-a"] = 1
    with pytest.raises(OutOfStock):
        await run(world, Store())
    world.inventory.stock["sku-a"] = 10  # a delivery, or a released hold
    store = Store()
    outcome = await run(world, store, order_id="o-2")
    assert store.stored == [outcome] and world.inventory.holds == {"o-2": {"sku-a": 2}}
    assert world.sold_out.suspects(["sku-a"], 0.0) == []  # forgotten


async def test_inventory_down_when_asked_for_availability_is_503_and_holds_nothing(
    world,
) -> None:
    world.inventory.stock["sku-a"] = 1
    with pytest.raises(OutOfStock):
        await run(world, Store())
    world.inventory.fail.add("availability")
    with pytest.raises(DependencyUnavailable):
        await run(world, Store(), order_id="o-2")
    assert world.inventory.holds == {} and world.pricing.redeemed == {}


def test_the_sold_out_memory_lasts_its_window_and_is_refreshed() -> None:
    memory = SoldOutMemory(seconds=10)
    memory.remember(["a", "b"], now=100.0)
    assert memory.suspects(["a", "c"], now=109.9) == ["a"]
    assert memory.suspects(["a", "b"], now=110.0) == []
    memory.remember(["a"], now=105.0)
    assert memory.suspects(["a", "b"], now=114.0) == ["a"]
    memory.forget(["a"])
    assert memory.suspects(["a"], now=106.0) == []
    off = SoldOutMemory(seconds=0)
    off.remember(["a"], now=1.0)
    assert off.suspects(["a"], now=1.0) == []


@pytest.mark.parametrize(
    "down",
    [
        "pricing.create_quote",
        "risk",
        "inventory.reserve_before",
        "inventory.reserve_after",
        "pricing.redeem_quote",
    ],
)
async def test_dependency_down_is_503_and_leaves_nothing_held(world, down: str) -> None:
    name, _, step = down.partition(".")
    if name == "risk":
        world.risk.fail = True
    elif name == "pricing":
        world.pricing.fail.add(step)
    else:
        world.inventory.fail.add(step)
    store = Store()
    with pytest.raises(DependencyUnavailable) as info:
        await run(world, store, checkout=data(("SAVE10",)))
    assert info.value.status == 503 and info.value.headers["Retry-After"]
    assert store.stored == []
    assert world.inventory.holds == {}
    assert world.pricing.redeemed == {}
    if down == "pricing.redeem_quote":
        assert world.pricing.released == ["o-1"]


async def test_store_failure_releases_hold_and_redemption(world) -> None:
    with pytest.raises(RuntimeError):
        await run(world, Store(fail=True), checkout=data(("SAVE10",)))
    assert world.inventory.holds == {}
    assert world.pricing.redeemed == {} and world.pricing.released == ["o-1"]


async def test_failed_compensation_keeps_the_original_error(world) -> None:
    world.pricing.fail.update({"redeem_quote", "release_redemption"})
    world.inventory.fail.add("release")
    with pytest.raises(DependencyUnavailable):
        await run(world, Store(), checkout=data(("SAVE10",)))
    assert "o-1" in world.inventory.holds  # left to expire by its TTL


async def test_invalid_coupon_is_the_callers_error_and_nothing_is_held(world) -> None:
    with pytest.raises(ServiceError) as info:
        await run(world, Store(), checkout=data(("BOGUS",)))
    assert info.value.status == 422 and world.inventory.holds == {}


class CappedInventory:
    """Inventory that grants at most ``cap`` seconds, whatever is asked."""

    def __init__(self, inner, cap: int) -> None:
        self.inner, self.cap = inner, cap

    async def reserve(self, *, reservation_id, lines, ttl_seconds):
        await self.inner.reserve(
            reservation_id=reservation_id, lines=lines, ttl_seconds=ttl_seconds
        )
        return NOW + timedelta(seconds=min(ttl_seconds, self.cap))

    async def release(self, *, reservation_id):
        await self.inner.release(reservation_id=reservation_id)

    async def availability(self, skus):
        return await self.inner.availability(skus)


@settings(max_examples=60, deadline=None)
@given(
    cap=st.integers(1, 10_000),
    timeout=st.integers(1, 5_000),
    margin=st.integers(0, 900),
    customer=st.sampled_from(["cust-1", "cust-review"]),
)
async def test_payment_never_due_after_the_hold_expires(
    world_factory, cap: int, timeout: int, margin: int, customer: str
) -> None:
    """Whatever inventory grants, an approved order is never payable after its hold expires,
    and a review order's deadline leaves the whole payment window inside the hold (or is now)."""
    world = world_factory()
    world.inventory = CappedInventory(world.inventory, cap)
    cfg = OrderSettings(
        database_url="postgresql+asyncpg://unused/db",
        payment_timeout=timeout,
        reservation_margin=margin,
    )
    outcome = await run(world, Store(), customer=customer, cfg=cfg)
    expires = outcome.reservation_expires_at
    assert expires is not None
    order = outcome.order
    if order.status is OrderStatus.AWAITING_PAYMENT:
        assert order.payment_due_at is not None and NOW <= order.payment_due_at <= expires
    else:
        assert order.review_deadline is not None and order.review_deadline >= NOW
        if order.review_deadline > NOW:
            assert order.review_deadline + timedelta(seconds=timeout) <= expires
