"""The per-process answer cache: bounded in time and in size, and checked after the caller."""

from __future__ import annotations

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import NotFound
from recommendation_service.service_layer.learning import UpdateStockLevel
from recommendation_service.service_layer.read_cache import ReadCache
from recommendation_service.service_layer.serving import GetCustomerRecommendations, GetTrending

from .fakes import NOW, FakeRecommendationUnitOfWork, make_bus
from .test_serving_handlers import item, skus, view


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_the_oldest_go_first() -> None:
    clock = Clock()
    cache: ReadCache[str] = ReadCache(2.0, max_entries=2, clock=clock)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    clock.now = 1.9
    assert cache.get("b") == "B"
    cache.put("c", "C")  # "a" is the oldest entry: evicted
    assert len(cache) == 2 and cache.get("a") is None
    clock.now = 2.0
    assert cache.get("b") is None  # expired
    assert cache.get("c") == "C"
    off: ReadCache[str] = ReadCache(0.0)
    assert off.put("a", "A") == "A" and off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError):
        ReadCache(-1.0)


async def test_answers_are_reused_until_they_expire() -> None:
    clock = Clock()
    bus = make_bus(FakeRecommendationUnitOfWork(), read_cache=ReadCache(2.0, clock=clock))
    ops = Caller("ops-1", Role.OPS)
    for n, sku in enumerate(("a", "b")):
        await item(bus, sku)
        await view(bus, n, sku, session="s-1")
    first = await bus.handle(GetTrending(limit=5), ops)
    assert set(skus(first.items)) == {"a", "b"}
    await bus.handle(UpdateStockLevel(sku="a", available=0, occurred_at=NOW), bus.system)
    assert await bus.handle(GetTrending(limit=5), ops) == first  # within the bound: cached
    clock.now = 2.5
    assert skus((await bus.handle(GetTrending(limit=5), ops)).items) == ["b"]


async def test_the_caller_is_checked_before_the_cache() -> None:
    bus = make_bus(FakeRecommendationUnitOfWork(), read_cache=ReadCache(60.0))
    await bus.handle(GetCustomerRecommendations(customer_id="alice"), Caller("ops", Role.OPS))
    with pytest.raises(NotFound):
        await bus.handle(
            GetCustomerRecommendations(customer_id="alice"), Caller("bob", Role.CUSTOMER)
        )
