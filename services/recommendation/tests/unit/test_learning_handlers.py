"""Learning from events on fakes: behaviour, paid and cancelled orders, catalogue and stock."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden
from recommendation_service.domain.models import (
    BASKET,
    SESSION,
    BehaviorEvent,
    BehaviorType,
    InteractionKind,
    ModelParams,
    scaled,
)
from recommendation_service.service_layer.learning import (
    LearnFromBehavior,
    LearnFromPaidOrder,
    OrderLine,
    RecordPlacedOrder,
    TakeBackCancelledOrder,
    UpdateCatalogItem,
    UpdateStockLevel,
)

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

PARAMS = ModelParams()


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


async def behave(
    bus: Bus,
    n: int,
    sku: str,
    kind: BehaviorType = BehaviorType.VIEW,
    *,
    actor: str = "s-1",
    minutes_ago: float = 1,
) -> None:
    event = BehaviorEvent(
        type=kind,
        sku=sku,
        customer_id=None,
        session_id=actor,
        occurred_at=NOW - timedelta(minutes=minutes_ago),
    )
    await bus.handle(LearnFromBehavior(event_id=f"e-{n}", event=event, sent_at=NOW), bus.system)


def paid(
    order_id: str,
    customer: str,
    skus: dict[str, int],
    *,
    total: int = 1000,
    days_ago: float = 1,
    event_id: str | None = None,
    currency: str = "EUR",
) -> LearnFromPaidOrder:
    return LearnFromPaidOrder(
        event_id=event_id or f"ev-{order_id}",
        order_id=order_id,
        customer_id=customer,
        currency=currency,
        total_minor=total,
        paid_at=NOW - timedelta(days=days_ago),
        lines=tuple(OrderLine(s, q) for s, q in skus.items()),
        sent_at=NOW,
    )


async def test_views_in_one_session_co_occur_once_per_item(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await behave(bus, 1, "a", minutes_ago=3)
    await behave(bus, 2, "b", minutes_ago=2)
    await behave(bus, 3, "a", minutes_ago=1)  # seen already in the window: no new pair
    s = uow.state
    assert set(s.pairs) == {(SESSION, "b", "a"), (SESSION, "a", "b")}
    assert s.counts[(SESSION, "a")] == pytest.approx(
        scaled(NOW - timedelta(minutes=3), PARAMS.rate)
    )
    assert s.popularity["a"] > s.popularity["b"] > 0  # popularity counts every view
    assert [i.kind for i in s.interactions] == [InteractionKind.VIEW] * 3
    assert [i.event_id for i in s.interactions] == ["e-1", "e-2", "e-3"]
    assert uow.commits == 3


async def test_removing_from_the_cart_teaches_no_co_occurrence(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await behave(bus, 1, "a")
    await behave(bus, 2, "b", BehaviorType.REMOVE_FROM_CART)
    assert (SESSION, "b") not in uow.state.counts
    assert uow.state.popularity["b"] == 0.0
    assert uow.state.interactions[-1].kind is InteractionKind.REMOVE_FROM_CART


async def test_a_paid_order_teaches_the_basket_and_scores_the_customer(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(paid("o-1", "alice", {"a": 1, "b": 2}, total=4200), bus.system)
    s = uow.state
    assert set(s.pairs) == {(BASKET, "a", "b"), (BASKET, "b", "a")}
    assert s.totals[BASKET] == pytest.approx(scaled(NOW - timedelta(days=1), PARAMS.rate))
    assert [(i.sku, i.quantity, i.kind, i.order_id) for i in s.interactions] == [
        ("a", 1, InteractionKind.PURCHASE, "o-1"),
        ("b", 2, InteractionKind.PURCHASE, "o-1"),
    ]
    segment = s.segments["alice"]
    assert (segment.frequency, segment.monetary_minor, segment.currency) == (1, 4200, "EUR")
    assert (segment.recency_days, segment.segment, segment.computed_at) == (1, "new", NOW)
    (changed,) = uow.events_of(rec_events.CustomerSegmentChanged)
    assert changed.segment == "new" and changed.previous_segment == ""  # type: ignore[attr-defined]
    assert uow.events[0].key == "alice"
    assert uow.locks == ["customer:alice"]


async def test_a_repeated_payment_changes_nothing(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(paid("o-1", "alice", {"a": 1, "b": 1}), bus.system)
    before = (dict(uow.state.pairs), len(uow.state.interactions), len(uow.events))
    await bus.handle(paid("o-1", "alice", {"a": 1, "b": 1}, event_id="another"), bus.system)
    assert (dict(uow.state.pairs), len(uow.state.interactions), len(uow.events)) == before


async def test_lines_of_one_sku_add_up_and_count_at_least_once(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    order = dataclasses.replace(
        paid("o-1", "alice", {}),
        lines=(OrderLine("a", 2), OrderLine("a", 1), OrderLine("b", 0), OrderLine("", 5)),
    )
    await bus.handle(order, bus.system)
    assert uow.state.orders["o-1"].lines == {"a": 3, "b": 1}


async def test_a_cancelled_paid_order_is_taken_back(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(paid("o-1", "alice", {"a": 1, "b": 1}, total=1000, days_ago=3), bus.system)
    await bus.handle(paid("o-2", "alice", {"a": 1, "c": 1}, total=500, days_ago=2), bus.system)
    assert uow.state.segments["alice"].frequency == 2
    await bus.handle(TakeBackCancelledOrder(order_id="o-1"), bus.system)
    s = uow.state
    assert set(s.pairs) == {(BASKET, "a", "c"), (BASKET, "c", "a")}  # a-b is gone
    assert (BASKET, "b") not in s.counts and "b" not in s.popularity
    assert s.counts[(BASKET, "a")] == pytest.approx(scaled(NOW - timedelta(days=2), PARAMS.rate))
    assert {i.order_id for i in s.interactions} == {"o-2"}
    assert (s.segments["alice"].frequency, s.segments["alice"].monetary_minor) == (1, 500)
    # a second cancellation (redelivered with another id) takes nothing back twice
    await bus.handle(TakeBackCancelledOrder(order_id="o-1"), bus.system)
    assert s.counts[(BASKET, "a")] == pytest.approx(scaled(NOW - timedelta(days=2), PARAMS.rate))


async def test_a_cancelled_unpaid_order_only_leaves_the_funnel(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await bus.handle(
        RecordPlacedOrder(
            order_id="o-9",
            customer_id="bob",
            currency="",
            total_minor=10,
            placed_at=None,
            lines=(OrderLine("a", 1),),
        ),
        bus.system,
    )
    order = uow.state.orders["o-9"]
    assert (order.currency, order.placed_at, order.lines) == ("XXX", NOW, {"a": 1})
    await bus.handle(TakeBackCancelledOrder(order_id="o-9"), bus.system)
    assert uow.state.orders["o-9"].cancelled_at == NOW
    assert uow.state.counts == {} and uow.state.segments == {}


async def test_catalogue_and_stock_keep_the_newest(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    new, old = NOW, NOW - timedelta(hours=1)
    item = UpdateCatalogItem(
        sku="a", title="Kettle", category="kitchen", brand="", status="", updated_at=new
    )
    await bus.handle(item, bus.system)
    stale = UpdateCatalogItem(
        sku="a", title="Old", category="x", brand="b", status="discontinued", updated_at=old
    )
    await bus.handle(stale, bus.system)
    await bus.handle(UpdateStockLevel(sku="a", available=4, occurred_at=new), bus.system)
    await bus.handle(UpdateStockLevel(sku="a", available=0, occurred_at=old), bus.system)
    row = uow.state.catalog["a"]
    assert (row.title, row.category, row.brand, row.status) == ("Kettle", "kitchen", None, "active")
    assert (row.available, row.eligible) == (4, True)
    # no time in the event: taken as now
    await bus.handle(UpdateStockLevel(sku="a", available=0, occurred_at=None), bus.system)
    assert uow.state.catalog["a"].available == 0


async def test_only_the_service_itself_applies_events(bus: Bus) -> None:
    with pytest.raises(Forbidden):
        await bus.handle(TakeBackCancelledOrder(order_id="o-1"), Caller("ops-1", Role.OPS))
