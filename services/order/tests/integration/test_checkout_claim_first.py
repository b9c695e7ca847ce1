"""Checkout's short transactions against the real database (fake ports): the statements and
transactions of one checkout on the order database, no connection held across the calls to
other services, and a checkout killed between the claim of its Idempotency-Key and the store
of its order, then retried: exactly one order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import ClaimLost
from ecomops_platform.db import idempotency_table
from ecomops_platform.ports import Lease, fingerprint
from ecomops_platform.runtime import Service
from ecomops_testing import unique
from order_service.adapters.tables import orders
from order_service.service_layer.checkout import PlaceOrder, order_id_for

pytestmark = pytest.mark.integration


_INTROSPECTION = (
    "SELECT current_setting('jit')",
    "WITH RECURSIVE typeinfo_tree",
    "SELECT set_config('jit'",
)


class SqlTrace:
    """Statements and transactions on the order database, per asyncio task, whether they go
    through SQLAlchemy or straight to the driver (asyncpg's query logger sees both); and the
    connections each task holds (checked out of the pool) at any moment."""

    def __init__(self, service: Service) -> None:
        self.engine = service.db.engine.sync_engine
        self.statements: Counter[Any] = Counter()
        self.kinds: dict[Any, list[str]] = {}
        self.begins: Counter[Any] = Counter()
        self.held: Counter[Any] = Counter()
        self._loggers: dict[int, tuple[Any, Any]] = {}
        self._holders: dict[int, Any] = {}

    @staticmethod
    def _task() -> Any:
        try:
            return asyncio.current_task()
        except RuntimeError:
            return None

    def _logger_for(self, task: Any) -> Any:
        # asyncpg calls its query loggers later, from the event loop: the task is bound here.
        def logged(record: Any) -> None:
            words = record.query.replace(";", " ").split()
            if " ".join(words).startswith(_INTROSPECTION):
                return  # asyncpg's type lookups: once per connection and statement, then cached
            if words[0].upper() == "BEGIN":
                self.begins[task] += 1
            elif words[0].upper() not in ("COMMIT", "ROLLBACK"):
                self.statements[task] += 1
                self.kinds.setdefault(task, []).append(" ".join(words[:3]))

        return logged

    def _checkout(self, dbapi_connection: Any, *args: Any) -> None:
        task = self._task()
        self.held[task] += 1
        self._holders[id(dbapi_connection)] = task
        raw = dbapi_connection.driver_connection
        logged = self._logger_for(task)
        raw.add_query_logger(logged)
        self._loggers[id(dbapi_connection)] = (raw, logged)

    def _checkin(self, dbapi_connection: Any, *args: Any) -> None:
        attached = self._loggers.pop(id(dbapi_connection), None)
        if attached is not None:
            attached[0].remove_query_logger(attached[1])
        # Counted against the task that checked it out: the checkin may run in another task
        # (SQLAlchemy closes an AsyncConnection in a shielded task of its own).
        task = self._holders.pop(id(dbapi_connection), self._task())
        if self.held[task] > 0:
            self.held[task] -= 1

    @contextlib.contextmanager
    def on(self) -> Iterator[SqlTrace]:
        events = [
            (self.engine.pool, "checkout", self._checkout),
            (self.engine.pool, "checkin", self._checkin),
        ]
        for target, name, fn in events:
            sa.event.listen(target, name, fn)
        try:
            yield self
        finally:
            for target, name, fn in events:
                sa.event.remove(target, name, fn)
            for raw, logged in self._loggers.values():
                raw.remove_query_logger(logged)
            self._loggers.clear()


def place(customer_id: str, sku: str) -> PlaceOrder:
    return PlaceOrder(
        customer_id=customer_id,
        currency="EUR",
        lines={sku: 1},
        shipping_address={
            "name": "A",
            "line1": "1 St",
            "city": "X",
            "postal_code": "1",
            "country": "GB",
        },
    )


async def count_orders(service: Service, customer_id: str) -> int:
    async with service.db.sessions() as s:
        return int(
            await s.scalar(sa.select(sa.func.count()).where(orders.c.customer_id == customer_id))
            or 0
        )


@pytest.mark.parametrize("claim", [True, False], ids=["account-claim", "first-seen-lookup"])
async def test_one_checkout_is_one_short_transaction_and_holds_nothing_across_calls(
    order_service: Service, fake_world: Any, claim: bool
) -> None:
    trace = SqlTrace(order_service)
    held_during_calls: list[int] = []
    inventory = fake_world.inventory
    reserve = inventory.reserve

    async def spying_reserve(**kw: Any) -> Any:
        held_during_calls.append(trace.held[asyncio.current_task()])
        return await reserve(**kw)

    inventory.reserve = spying_reserve
    cid = unique("cust-budget")
    created = datetime(2025, 1, 1, tzinfo=UTC) if claim else None
    caller = Caller(cid, Role.CUSTOMER, account_created_at=created)
    try:
        with trace.on():
            task = asyncio.create_task(
                order_service.bus.handle(place(cid, unique("sku")), caller, idempotency_key="k")
            )
            view = await task
            await asyncio.sleep(0.05)  # asyncpg's query loggers run from the loop
    finally:
        inventory.reserve = reserve
    assert view.status == "awaiting_payment"
    assert held_during_calls == [0], "a pooled connection was held across a call to inventory"
    statements, begins = trace.statements[task], trace.begins[task]
    print(f"\norder DB per checkout: {statements} statements in {begins} transactions")
    for kind in trace.kinds[task]:
        print("   ", kind)
    # claim (1, committed by itself: no transaction) | response, order + timeline (one
    # statement), outbox (3, the one transaction); without the token's account_created_at
    # claim, one more read before the saga, also outside any transaction: the customer's
    # first order here (the account's age for risk).
    lookup = 0 if claim else 1
    assert begins == 1, trace.kinds[task]
    assert statements <= 4 + lookup, trace.kinds[task]
    assert sum(k.startswith("SELECT min(placed_at)") for k in trace.kinds[task]) == lookup


async def test_a_checkout_killed_between_claim_and_store_is_retried_to_one_order(
    order_service: Service, fake_world: Any, api: Any, place: Any, customer: Any
) -> None:
    """The state a SIGKILL between claim and store leaves: the claim committed, the hold made
    under the order id derived from the key, no order. The retry gets 409 while the claim's
    lease lives, then takes it over and stores exactly one order on the same hold."""
    cid, headers = customer()
    sku, key = unique("sku"), unique("k")
    lines = [{"sku": sku, "quantity": 1}]
    first = await place(headers, lines, key=key)  # to learn the fingerprint's payload shape
    assert first.status_code == 201
    order_id = order_id_for(Caller(cid, Role.CUSTOMER), "place_order", key)
    assert first.json()["order_id"] == order_id

    # A second key, left claimed by a "dead" attempt that made its hold.
    key = unique("k")
    order_id = order_id_for(Caller(cid, Role.CUSTOMER), "place_order", key)
    cmd = PlaceOrder(
        customer_id=cid,
        currency="EUR",
        lines={sku: 1},
        shipping_address=dict(first.json()["shipping_address"]),
    )
    async with order_service.uow() as uow:
        lease = await uow.idempotency.lease(
            caller=cid,
            operation="place_order",
            key=key,
            fingerprint=fingerprint("place_order", cmd.idempotency_payload()),
            seconds=60,
        )
        assert isinstance(lease, Lease) and not lease.took_over
        await uow.commit()
    await fake_world.inventory.reserve(reservation_id=order_id, lines={sku: 1}, ttl_seconds=600)

    lease_before = order_service.bus.claim_lease
    order_service.bus.claim_lease = 1.0
    try:
        busy = await place(headers, lines, key=key)
        # (the fixture's address is the one of the first order: same body, same fingerprint)
        assert busy.status_code == 409, busy.text
        assert busy.json()["type"].endswith("/request-in-progress")
        assert busy.headers.get("retry-after")
        await asyncio.sleep(1.2)
        retry = await place(headers, lines, key=key)
    finally:
        order_service.bus.claim_lease = lease_before
    assert retry.status_code == 201, retry.text
    assert retry.json()["order_id"] == order_id
    assert fake_world.inventory.holds[order_id] == {sku: 1}  # the dead attempt's hold, reused
    assert await count_orders(order_service, cid) == 2  # the first key's and this one
    replay = await place(headers, lines, key=key)
    assert replay.status_code == 201 and replay.json() == retry.json()
    assert replay.headers.get("idempotent-replayed") == "true"


async def test_a_stalled_attempt_taken_over_stores_nothing(
    order_service: Service, fake_world: Any
) -> None:
    """An attempt stalled past its lease (between claim and store), a retry that takes the key
    over and stores the order, then the stalled attempt wakes up: ClaimLost, one order."""
    cid = unique("cust-stall")
    caller = Caller(cid, Role.CUSTOMER)
    cmd = place(cid, unique("sku"))
    gate, reached = asyncio.Event(), asyncio.Event()
    inventory = fake_world.inventory
    reserve = inventory.reserve

    async def stalling_reserve(**kw: Any) -> Any:
        result = await reserve(**kw)
        if not reached.is_set():
            reached.set()
            await gate.wait()
        return result

    inventory.reserve = stalling_reserve
    lease_before = order_service.bus.claim_lease
    try:
        order_service.bus.claim_lease = 10.0
        stalled = asyncio.create_task(order_service.bus.handle(cmd, caller, idempotency_key="k"))
        await asyncio.wait_for(reached.wait(), 10)
        async with order_service.db.sessions() as s:  # the claim is committed, no order yet
            status = await s.scalar(
                sa.select(idempotency_table.c.status_code).where(
                    idempotency_table.c.caller == cid, idempotency_table.c.key == "k"
                )
            )
        assert status == 0
        assert await count_orders(order_service, cid) == 0
        order_service.bus.claim_lease = 0.2
        await asyncio.sleep(0.3)
        view = await order_service.bus.handle(cmd, caller, idempotency_key="k")
        gate.set()
        with pytest.raises(ClaimLost):
            await stalled
    finally:
        gate.set()
        inventory.reserve = reserve
        order_service.bus.claim_lease = lease_before
    assert await count_orders(order_service, cid) == 1
    assert view.order_id in inventory.holds  # not released by the stalled attempt


async def test_a_cancelled_checkout_frees_its_key_and_its_hold(
    order_service: Service, fake_world: Any
) -> None:
    cid = unique("cust-cancel")
    caller = Caller(cid, Role.CUSTOMER)
    cmd = place(cid, unique("sku"))
    order_id = order_id_for(caller, "place_order", "k")
    reached, gate = asyncio.Event(), asyncio.Event()
    inventory = fake_world.inventory
    reserve = inventory.reserve

    async def stalling_reserve(**kw: Any) -> Any:
        result = await reserve(**kw)
        reached.set()
        await gate.wait()
        return result

    inventory.reserve = stalling_reserve
    try:
        task = asyncio.create_task(order_service.bus.handle(cmd, caller, idempotency_key="k"))
        await asyncio.wait_for(reached.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        gate.set()
        inventory.reserve = reserve
    assert order_id not in inventory.holds
    view = await order_service.bus.handle(cmd, caller, idempotency_key="k")  # no 409
    assert view.order_id == order_id
    assert await count_orders(order_service, cid) == 1


async def test_concurrent_duplicates_get_409_and_make_one_order(
    order_service: Service, place: Any, customer: Any
) -> None:
    cid, headers = customer()
    sku, key = unique("sku"), unique("k")
    lines = [{"sku": sku, "quantity": 1}]
    answers = await asyncio.gather(*(place(headers, lines, key=key) for _ in range(8)))
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {201, 409} and codes[201] >= 1, codes
    for r in answers:
        if r.status_code == 409:
            assert r.json()["type"].endswith("/request-in-progress"), r.text
            assert r.headers.get("retry-after")
    ids = {r.json()["order_id"] for r in answers if r.status_code == 201}
    assert len(ids) == 1
    assert await count_orders(order_service, cid) == 1
