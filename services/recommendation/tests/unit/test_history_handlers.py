"""OrderImported on fakes: learnt as an order placed and paid when it was ordered (funnel order,
basket, purchases, spend, segment), once per order id."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden
from recommendation_service.domain.models import BASKET, InteractionKind, ModelParams, scaled
from recommendation_service.service_layer.history import LearnFromImportedOrder
from recommendation_service.service_layer.learning import OrderLine

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

PARAMS = ModelParams()


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


def imported(order_id: str, *, days_ago: float, event_id: str = "") -> LearnFromImportedOrder:
    return LearnFromImportedOrder(
        event_id=event_id or f"ev-{order_id}",
        order_id=order_id,
        customer_id="alice",
        currency="EUR",
        total_minor=3000,
        ordered_at=NOW - timedelta(days=days_ago),
        lines=(OrderLine("a", 1), OrderLine("b", 2)),
        sent_at=NOW,
    )


async def test_an_imported_order_is_learnt_as_placed_and_paid_when_it_was_ordered(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(imported("h-1", days_ago=40), bus.system)
    s = uow.state
    row = s.orders["h-1"]
    assert row.placed_at == row.paid_at == NOW - timedelta(days=40)
    assert set(s.pairs) == {(BASKET, "a", "b"), (BASKET, "b", "a")}
    assert s.totals[BASKET] == pytest.approx(scaled(NOW - timedelta(days=40), PARAMS.rate))
    assert [(i.sku, i.kind, i.occurred_at) for i in s.interactions] == [
        ("a", InteractionKind.PURCHASE, NOW - timedelta(days=40)),
        ("b", InteractionKind.PURCHASE, NOW - timedelta(days=40)),
    ]
    segment = s.segments["alice"]
    assert (segment.frequency, segment.monetary_minor, segment.recency_days) == (1, 3000, 40)


async def test_the_same_order_again_changes_nothing(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(imported("h-1", days_ago=10), bus.system)
    before = (dict(uow.state.pairs), len(uow.state.interactions), len(uow.events))
    await bus.handle(imported("h-1", days_ago=10, event_id="another"), bus.system)
    assert (dict(uow.state.pairs), len(uow.state.interactions), len(uow.events)) == before


async def test_only_the_service_itself_learns_imports(bus: Bus) -> None:
    with pytest.raises(Forbidden):
        await bus.handle(imported("h-2", days_ago=1), Caller("ops-1", Role.OPS))
