"""``claim_first`` commands on the in-memory unit of work: the key is leased and committed
before the handler runs, the response is stored with the handler's effects, a failure frees
the key, a live claim answers 409, an expired one is taken over, a lost claim stores nothing."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import (
    ClaimLost,
    Command,
    Context,
    MessageBus,
    Refused,
    StoredRefusal,
    handler,
    handlers_in,
)
from ecomops_platform.errors import AlreadyInProgress, Conflict, DependencyUnavailable
from ecomops_testing.fakes import FakeUnitOfWork


class ShipUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.shipped: dict[str, str] = {}
        super().__init__()

    def snapshot(self) -> Any:
        return (super().snapshot(), dict(self.shipped))

    def restore(self, state: Any) -> None:
        base, shipped = state
        super().restore(base)
        self.shipped = dict(shipped)


@dataclass
class Carrier:
    """The "other service": books a parcel per id (idempotent), may stall or fail."""

    booked: dict[str, int]
    gate: asyncio.Event | None = None
    fail: bool = False
    in_transaction: list[bool] | None = None


Ctx = Context[ShipUnitOfWork, Carrier]


@dataclass(frozen=True, slots=True, kw_only=True)
class Ship(Command[str], roles=(Role.OPS,), idempotent=True, claim_first=True):
    parcel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipLazily(Command[str], roles=(Role.OPS,), idempotent=True, claim_first=True):
    """A wrong handler: never stores its result."""

    parcel: str


@handler
async def ship(cmd: Ship, ctx: Ctx) -> str:
    carrier = ctx.deps
    if carrier.in_transaction is not None:
        carrier.in_transaction.append(ctx.uow._depth > 0)
    if carrier.fail:
        raise DependencyUnavailable("carrier down")
    booking = f"{cmd.parcel}:{ctx.idempotency_key}"
    carrier.booked[booking] = carrier.booked.get(booking, 0) + 1
    if carrier.gate is not None:
        await carrier.gate.wait()
    async with ctx.uow:
        if cmd.parcel == "refused":
            await ctx.store_refusal(Conflict("kept but refused", code="held"))
            ctx.uow.shipped[booking] = "held"
            await ctx.uow.commit()
            raise Refused(Conflict("kept but refused", code="held"))
        await ctx.store_result(booking)
        ctx.uow.shipped[booking] = "shipped"
        await ctx.uow.commit()
    return booking


@handler
async def ship_lazily(cmd: ShipLazily, ctx: Ctx) -> str:
    return cmd.parcel


OPS = Caller("ops-1", Role.OPS)


@pytest.fixture
def uow() -> ShipUnitOfWork:
    return ShipUnitOfWork()


@pytest.fixture
def carrier() -> Carrier:
    return Carrier(booked={})


@pytest.fixture
def bus(uow: ShipUnitOfWork, carrier: Carrier) -> MessageBus[ShipUnitOfWork, Carrier]:
    return MessageBus(
        service="ship",
        uow=lambda: uow,
        deps=carrier,
        handlers=handlers_in(sys.modules[__name__]),
        claim_lease=30.0,
    )


def test_claim_first_needs_idempotent() -> None:
    with pytest.raises(TypeError):

        class Bad(Command[None], roles=(Role.OPS,), claim_first=True):
            pass


async def test_claimed_committed_first_then_stored_with_the_effects(
    bus: Any, uow: ShipUnitOfWork, carrier: Carrier
) -> None:
    carrier.in_transaction = []
    first = await bus.execute(Ship(parcel="p"), OPS, idempotency_key="k")
    assert carrier.in_transaction == [False]  # the handler's remote call: no transaction open
    assert uow.commits == 2  # the claim, then effects + response
    again = await bus.execute(Ship(parcel="p"), OPS, idempotency_key="k")
    assert again.replayed and again.result == first.result
    assert carrier.booked == {"p:k": 1} and uow.shipped == {"p:k": "shipped"}


async def test_a_live_claim_is_409_an_expired_one_is_taken_over_and_the_loser_stores_nothing(
    bus: Any, uow: ShipUnitOfWork, carrier: Carrier
) -> None:
    carrier.gate = asyncio.Event()
    stalled = asyncio.create_task(bus.handle(Ship(parcel="p"), OPS, idempotency_key="k"))
    while not carrier.booked:
        await asyncio.sleep(0)
    with pytest.raises(AlreadyInProgress):
        await bus.handle(Ship(parcel="p"), OPS, idempotency_key="k")
    uow.idempotency.expire_leases()
    carrier.gate.set()  # (the retry must not stall)
    assert await bus.handle(Ship(parcel="p"), OPS, idempotency_key="k") == "p:k"
    with pytest.raises(ClaimLost):
        await stalled
    assert carrier.booked == {"p:k": 2}  # the same booking id twice: the carrier dedupes it
    assert uow.shipped == {"p:k": "shipped"}


async def test_a_failure_frees_the_key(bus: Any, uow: ShipUnitOfWork, carrier: Carrier) -> None:
    carrier.fail = True
    with pytest.raises(DependencyUnavailable):
        await bus.handle(Ship(parcel="p"), OPS, idempotency_key="k")
    assert uow.idempotency.rows == {}
    carrier.fail = False
    assert await bus.handle(Ship(parcel="p"), OPS, idempotency_key="k") == "p:k"


async def test_a_refusal_is_stored_with_its_effects_and_replayed(
    bus: Any, uow: ShipUnitOfWork
) -> None:
    with pytest.raises(Conflict) as first:
        await bus.handle(Ship(parcel="refused"), OPS, idempotency_key="k")
    assert uow.shipped == {"refused:k": "held"}
    with pytest.raises(StoredRefusal) as again:
        await bus.handle(Ship(parcel="refused"), OPS, idempotency_key="k")
    assert again.value.status == 409 and again.value.problem() == first.value.problem()


async def test_a_handler_that_stores_no_result_is_a_bug_and_frees_the_key(
    bus: Any, uow: ShipUnitOfWork
) -> None:
    with pytest.raises(RuntimeError):
        await bus.handle(ShipLazily(parcel="p"), OPS, idempotency_key="k")
    assert uow.idempotency.rows == {}


async def test_a_handler_is_bounded_by_half_its_lease(
    bus: Any, uow: ShipUnitOfWork, carrier: Carrier
) -> None:
    carrier.gate = asyncio.Event()  # never opened
    bus.claim_lease = 0.2
    with pytest.raises(DependencyUnavailable):
        await bus.handle(Ship(parcel="p"), OPS, idempotency_key="k")
    assert uow.idempotency.rows == {} and uow.shipped == {}
