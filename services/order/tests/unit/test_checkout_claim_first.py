"""Checkout claims its Idempotency-Key first (committed before the saga, no transaction open
across the calls to pricing, risk and inventory), then stores order, event and response in one
transaction. A crash between claim and store, a duplicate in flight, an attempt that outlived
its lease: one order or none, never two, never a stuck key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.bus import ClaimLost, StoredRefusal
from ecomops_platform.errors import AlreadyInProgress, Unprocessable
from ecomops_platform.ports import Lease, fingerprint
from order_service.service_layer.checkout import OrderRejected, PlaceOrder, order_id_for

from .handler_support import ADDRESS, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


def place(**overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {"currency": "EUR", "lines": {"SKU-1": 2}, "shipping_address": ADDRESS}
    fields.update(overrides)
    return PlaceOrder(**fields)


class Gate:
    """Holds inventory.reserve (after the hold is made) until opened, once."""

    def __init__(self, h: Harness) -> None:
        self.reached = asyncio.Event()
        self.open = asyncio.Event()
        self.armed = True
        inner: Callable[..., Awaitable[Any]] = h.world.inventory.reserve
        seen: dict[str, Any] = {}

        async def reserve(**kw: Any) -> Any:
            result = await inner(**kw)
            if self.armed:
                self.armed = False
                seen["in_transaction"] = h.uow._depth > 0
                seen["claim"] = dict(h.uow.idempotency.rows)
                self.reached.set()
                await self.open.wait()
            return result

        self.seen = seen
        h.world.inventory.reserve = reserve  # type: ignore[method-assign]


async def test_the_key_is_committed_before_the_saga_and_no_transaction_spans_it(
    h: Harness,
) -> None:
    gate = Gate(h)
    ann = customer("ann")
    task = asyncio.create_task(h.bus.handle(place(), ann, idempotency_key="k"))
    await gate.reached.wait()
    assert gate.seen["in_transaction"] is False
    [(_fp, status, _)] = gate.seen["claim"].values()
    assert status == 0  # claimed (committed), not completed
    assert h.uow.tables.orders == {}
    gate.open.set()
    view = await task
    assert list(h.uow.tables.orders) == [view.order_id]
    [(_, status, body)] = h.uow.idempotency.rows.values()
    assert status == 200 and body["order_id"] == view.order_id
    # claim + store: two short transactions
    assert h.uow.commits == 2


async def test_a_duplicate_in_flight_gets_409_and_the_first_answer_is_replayed(
    h: Harness,
) -> None:
    gate = Gate(h)
    ann = customer("ann")
    first = asyncio.create_task(h.bus.handle(place(), ann, idempotency_key="k"))
    await gate.reached.wait()
    with pytest.raises(AlreadyInProgress) as busy:
        await h.bus.handle(place(), ann, idempotency_key="k")
    assert busy.value.status == 409 and busy.value.headers.get("Retry-After")
    with pytest.raises(Unprocessable) as reused:  # another body, same key: 422 even in flight
        await h.bus.handle(place(lines={"SKU-2": 1}), ann, idempotency_key="k")
    assert reused.value.code == "idempotency-key-reused"
    gate.open.set()
    view = await first
    again = await h.bus.execute(place(), ann, idempotency_key="k")
    assert again.replayed and again.result == view
    assert len(h.uow.tables.orders) == 1 and len(h.world.inventory.holds) == 1


async def test_a_claim_left_by_a_crash_is_taken_over_once_its_lease_ran_out(h: Harness) -> None:
    """SIGKILL between claim and store: the claim is committed, the hold made under the order
    id derived from the key, nothing else. The retry gets 409 while the lease lives, then
    takes the claim over, finds the same hold and stores exactly one order."""
    ann = customer("ann")
    cmd = place(customer_id="ann")  # as the bus fills it in
    order_id = order_id_for(ann, "place_order", "k")
    async with h.uow:  # what the dead attempt left behind
        lease = await h.uow.idempotency.lease(
            caller="ann",
            operation="place_order",
            key="k",
            fingerprint=fingerprint("place_order", cmd.idempotency_payload()),
            seconds=30,
        )
        assert isinstance(lease, Lease)
        await h.uow.commit()
    await h.world.inventory.reserve(reservation_id=order_id, lines={"SKU-1": 2}, ttl_seconds=60)

    with pytest.raises(AlreadyInProgress):
        await h.bus.handle(cmd, ann, idempotency_key="k")
    h.uow.idempotency.expire_leases()
    view = await h.bus.handle(cmd, ann, idempotency_key="k")
    assert view.order_id == order_id and view.status == "awaiting_payment"
    assert list(h.uow.tables.orders) == [order_id]
    assert list(h.world.inventory.holds) == [order_id]  # the dead attempt's hold, reused
    assert len(h.uow.events_of(order_events.OrderPlaced)) == 1
    again = await h.bus.execute(cmd, ann, idempotency_key="k")
    assert again.replayed and again.result == view


async def test_an_attempt_that_outlived_its_lease_stores_nothing_and_keeps_the_hold(
    h: Harness,
) -> None:
    """The first attempt stalls past its lease, a retry takes over and stores the order; when
    the stalled attempt wakes up it loses its claim (409), stores nothing, and does not release
    the hold the order now stands on."""
    gate = Gate(h)
    ann = customer("ann")
    stalled = asyncio.create_task(h.bus.handle(place(), ann, idempotency_key="k"))
    await gate.reached.wait()
    h.uow.idempotency.expire_leases()
    view = await h.bus.handle(place(), ann, idempotency_key="k")
    gate.open.set()
    with pytest.raises(ClaimLost) as lost:
        await stalled
    assert lost.value.status == 409
    assert list(h.uow.tables.orders) == [view.order_id]
    assert list(h.world.inventory.holds) == [view.order_id]
    assert h.world.pricing.released == []
    assert len(h.uow.events_of(order_events.OrderPlaced)) == 1
    again = await h.bus.execute(place(), ann, idempotency_key="k")
    assert again.replayed and again.result == view


async def test_a_failure_without_effects_frees_the_key_at_once(h: Harness) -> None:
    h.world.risk.fail = True
    with pytest.raises(Exception):  # noqa: B017 - DependencyUnavailable
        await h.bus.handle(place(), customer(), idempotency_key="k")
    assert h.uow.idempotency.rows == {}  # released: no 409 for the retry
    h.world.heal()
    view = await h.bus.handle(place(), customer(), idempotency_key="k")
    assert view.status == "awaiting_payment"


async def test_a_cancelled_attempt_compensates_and_frees_the_key(h: Harness) -> None:
    gate = Gate(h)
    task = asyncio.create_task(h.bus.handle(place(), customer(), idempotency_key="k"))
    await gate.reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.world.inventory.holds == {} and h.uow.idempotency.rows == {}
    assert h.uow.tables.orders == {}
    view = await h.bus.handle(place(), customer(), idempotency_key="k")
    assert list(h.uow.tables.orders) == [view.order_id]


async def test_a_refusal_is_stored_with_the_rejected_order_and_replayed_identically(
    h: Harness,
) -> None:
    bad = customer("reject-me")
    with pytest.raises(OrderRejected) as first:
        await h.bus.handle(place(), bad, idempotency_key="k")
    assert h.uow.commits == 2  # claim, then order + event + refusal together
    with pytest.raises(StoredRefusal) as again:
        await h.bus.handle(place(), bad, idempotency_key="k")
    assert again.value.status == 422 and again.value.problem() == first.value.problem()
    assert len(h.uow.tables.orders) == 1
    assert len(h.uow.events_of(order_events.OrderRejected)) == 1
