"""Events to messages (entrypoints/consumers.py) on fakes: what each event does, and which ones
can never be applied (they go to the dead-letter topic)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf.message import Message
from prometheus_client import REGISTRY

from ecomops.inventory.v1 import events_pb2 as inv
from ecomops.order.v1 import events_pb2 as orders
from ecomops.recommendation.v1 import events_pb2 as rec
from ecomops_platform.errors import Unprocessable
from ecomops_platform.events import Envelope
from ecomops_platform.timestamps import to_timestamp
from recommendation_service.domain.models import BASKET, SESSION, InteractionKind
from recommendation_service.entrypoints.consumers import (
    INVENTORY_TOPIC,
    ORDER_TOPIC,
    SUBSCRIPTIONS,
    PoisonEvent,
    behavior_handlers,
    domain_handlers,
)
from recommendation_service.service_layer.events import BEHAVIOR_TOPIC

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

SENT = NOW - timedelta(seconds=2)


def envelope(message: Message, event_id: str = "ev-1") -> Envelope:
    return Envelope(
        event_id=event_id,
        event_type=message.DESCRIPTOR.full_name,
        source="ecomops/test",
        time=SENT,
        key=None,
        headers={},
        message=message,
        topic="t",
        partition=0,
        offset=0,
    )


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


async def deliver(
    bus: Bus, uow: FakeRecommendationUnitOfWork, message: Message, event_id: str = "ev-1"
) -> None:
    """As the consumer does: the handler runs in the consumer's open unit of work."""
    handlers = {**behavior_handlers(bus), **domain_handlers(bus)}
    async with uow:
        await handlers[message.DESCRIPTOR.full_name](uow, envelope(message, event_id))
        await uow.commit()


def test_behaviour_has_a_consumer_group_of_its_own() -> None:
    behaviour, domain = SUBSCRIPTIONS
    assert (list(behaviour.topics), behaviour.name) == ([BEHAVIOR_TOPIC], "behavior")
    assert list(domain.topics) == ["ecomops.order.v1", "ecomops.inventory.v1"]
    assert (ORDER_TOPIC, INVENTORY_TOPIC) == ("ecomops.order.v1", "ecomops.inventory.v1")


async def test_behaviour_events_are_learnt_with_their_own_time(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    at = NOW - timedelta(minutes=5)
    await deliver(
        bus,
        uow,
        rec.BehaviorRecorded(
            type=rec.BEHAVIOR_TYPE_VIEW, sku="a", session_id="s", occurred_at=to_timestamp(at)
        ),
        "e-1",
    )
    await deliver(
        bus,
        uow,
        rec.BehaviorRecorded(type=rec.BEHAVIOR_TYPE_ADD_TO_CART, sku="b", customer_id="alice"),
        "e-2",
    )
    first, second = uow.state.interactions
    assert (first.actor, first.kind, first.occurred_at, first.event_id) == (
        "s:s",
        InteractionKind.VIEW,
        at,
        "e-1",
    )
    # no occurred_at: the event's own time (CloudEvents time)
    assert (second.actor, second.kind, second.occurred_at) == (
        "c:alice",
        InteractionKind.ADD_TO_CART,
        SENT,
    )
    assert (SESSION, "a") in uow.state.counts


@pytest.mark.parametrize(
    "message",
    [
        rec.BehaviorRecorded(sku="a", session_id="s"),  # no type
        rec.BehaviorRecorded(type=rec.BEHAVIOR_TYPE_VIEW, session_id="s"),  # no SKU
        rec.BehaviorRecorded(type=rec.BEHAVIOR_TYPE_VIEW, sku="a"),  # nobody
        orders.OrderPaid(order_id="o-1", currency="EUR"),  # no customer
        orders.OrderPaid(customer_id="c", currency="EUR"),  # no order
    ],
)
async def test_events_that_can_never_be_applied_are_poison(
    bus: Bus, uow: FakeRecommendationUnitOfWork, message: Message
) -> None:
    with pytest.raises(PoisonEvent):
        await deliver(bus, uow, message)
    assert uow.state.interactions == [] and uow.state.orders == {}


async def test_an_out_of_range_time_is_refused_not_misread(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    message = inv.StockLevelChanged(sku="a", available=3)
    message.occurred_at.seconds = 10**12
    with pytest.raises(Unprocessable):
        await deliver(bus, uow, message)
    assert uow.state.catalog == {}


async def test_order_events_feed_the_funnel_the_baskets_and_the_catalogue(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    placed_at = to_timestamp(NOW - timedelta(hours=2))
    paid_at = to_timestamp(NOW - timedelta(hours=1))
    lines = [orders.OrderLine(sku="a", quantity=1), orders.OrderLine(sku="b", quantity=3)]
    await deliver(
        bus,
        uow,
        inv.SkuUpserted(sku="a", title="Kettle", category="kitchen", status="active"),
        "e-0",
    )
    await deliver(
        bus,
        uow,
        orders.OrderPlaced(
            order_id="o-1",
            customer_id="alice",
            currency="EUR",
            total_minor=900,
            lines=lines,
            placed_at=placed_at,
        ),
        "e-1",
    )
    await deliver(
        bus,
        uow,
        orders.OrderPaid(
            order_id="o-1",
            customer_id="alice",
            currency="EUR",
            total_minor=900,
            lines=lines,
            paid_at=paid_at,
        ),
        "e-2",
    )
    order = uow.state.orders["o-1"]
    assert (order.placed_at, order.paid_at, order.lines) == (
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=1),
        {"a": 1, "b": 3},
    )
    assert (BASKET, "a", "b") in uow.state.pairs
    assert uow.state.catalog["a"].title == "Kettle"
    assert uow.state.catalog["a"].updated_at == NOW  # no updated_at in the event: now
    assert uow.state.segments["alice"].monetary_minor == 900
    await deliver(bus, uow, orders.OrderCancelled(order_id="o-1", customer_id="alice"), "e-3")
    assert (BASKET, "a", "b") not in uow.state.pairs
    assert uow.state.orders["o-1"].cancelled_at == NOW


async def test_the_sent_time_feeds_the_freshness_metric(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await deliver(
        bus, uow, rec.BehaviorRecorded(type=rec.BEHAVIOR_TYPE_VIEW, sku="a", session_id="s")
    )
    lag = REGISTRY.get_sample_value("recommendation_model_lag_seconds", {"source": "behavior"})
    assert lag == pytest.approx(2.0)
