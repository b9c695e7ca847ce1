"""The order bus on the in-memory unit of work and the fake ports of ``tests/conftest.py``,
with a clock the tests move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import MessageBus
from order_service.bootstrap import SPEC
from order_service.service_layer.ports import Deps
from order_service.settings import OrderSettings

from .fakes import FakeOrderUnitOfWork

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical Way",
    "city": "London",
    "postal_code": "N1 1AA",
    "country": "GB",
}
OPS = Caller("ops-1", Role.OPS)
SYSTEM = Caller("ecomops-order", Role.SERVICE)


def customer(name: str = "ann") -> Caller:
    return Caller(name, Role.CUSTOMER)


@dataclass
class Clock:
    now: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Harness:
    bus: MessageBus[Any, Deps]
    uow: FakeOrderUnitOfWork
    clock: Clock
    world: Any


def harness(world: Any) -> Harness:
    uow = FakeOrderUnitOfWork()
    clock = Clock()
    settings = OrderSettings(database_url="postgresql+asyncpg://unused/unused")
    deps = Deps(settings=settings, ports=world.ports(), clock=clock)
    bus: MessageBus[Any, Deps] = MessageBus(
        service="order", uow=lambda: uow, deps=deps, handlers=SPEC.handlers
    )
    return Harness(bus, uow, clock, world)
