"""Behaviour ingestion on fakes: a batch is validated whole and published all or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Outcome
from ecomops_platform.errors import BadRequest, Unprocessable
from recommendation_service.domain.models import BehaviorEvent, BehaviorType, EntryError
from recommendation_service.service_layer.events import BEHAVIOR_TOPIC
from recommendation_service.service_layer.ingestion import (
    ANONYMOUS,
    RecordBehaviorEvents,
    RecordBehaviorEventsOnce,
)
from recommendation_service.service_layer.views import Accepted

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

OPS = Caller("ops-1", Role.OPS)
ALICE = Caller("alice", Role.CUSTOMER)


def view(
    sku: str = "s1", *, customer: str | None = None, session: str | None = "sess-1", **kw: object
) -> BehaviorEvent:
    values: dict[str, object] = {
        "type": BehaviorType.VIEW,
        "sku": sku,
        "customer_id": customer,
        "session_id": session,
        "occurred_at": NOW - timedelta(seconds=5),
    }
    values.update(kw)
    return BehaviorEvent(**values)  # type: ignore[arg-type]


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


async def test_a_batch_is_published_event_by_event_on_the_behaviour_topic(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    events = (
        view("a", session="s-1"),
        view("b", customer=None, session="s-1", type=BehaviorType.ADD_TO_CART),
        view("c", customer="alice", session=None),
    )
    result = await bus.handle(RecordBehaviorEvents(events=events), OPS)
    assert result == Accepted(3)
    assert [(e.topic, e.key) for e in uow.events] == [
        (BEHAVIOR_TOPIC, "s-1"),
        (BEHAVIOR_TOPIC, "s-1"),
        (BEHAVIOR_TOPIC, "alice"),
    ]
    published = uow.events_of(rec_events.BehaviorRecorded)
    assert [m.sku for m in published] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert published[1].type == rec_events.BEHAVIOR_TYPE_ADD_TO_CART  # type: ignore[attr-defined]
    assert published[0].received_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == NOW  # type: ignore[attr-defined]


async def test_every_bad_entry_is_named_and_nothing_is_published(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    events = (
        view("ok"),
        view("x", customer="someone"),  # anonymous callers may not claim a customer
        view("", session="s"),  # no SKU
        view("y", occurred_at=NOW + timedelta(hours=1)),  # in the future
        view("z", session=None),  # neither customer nor session
        view("old", occurred_at=NOW - timedelta(days=31)),
    )
    with pytest.raises(Unprocessable) as err:
        await bus.handle(RecordBehaviorEvents(events=events[:5], anonymous=True), ANONYMOUS)
    problem = err.value.problem()
    assert problem["invalid_indexes"] == [1, 2, 3, 4]
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [
        (1, "customer_id"),
        (2, "sku"),
        (3, "occurred_at"),
        (4, "session_id"),
    ]
    assert problem["errors"][0]["location"] == ["body", "events", "1", "customer_id"]
    assert err.value.code == "invalid-behavior-events"
    with pytest.raises(Unprocessable, match="older than 30 days"):
        await bus.handle(RecordBehaviorEvents(events=(events[5],)), OPS)
    assert uow.events == []


async def test_a_customer_records_only_its_own_events(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    with pytest.raises(Unprocessable) as err:
        await bus.handle(RecordBehaviorEvents(events=(view(customer="bob"),)), ALICE)
    assert err.value.problem()["errors"][0]["message"] == (
        "a customer may only record events for itself"
    )
    assert (await bus.handle(RecordBehaviorEvents(events=(view(customer="alice"),)), ALICE)) == (
        Accepted(1)
    )
    # staff send events for any customer
    assert (await bus.handle(RecordBehaviorEvents(events=(view(customer="bob"),)), OPS)) == (
        Accepted(1)
    )
    assert len(uow.events) == 2


async def test_batch_size_limits(bus: Bus) -> None:
    with pytest.raises(Unprocessable) as empty:
        await bus.handle(RecordBehaviorEvents(events=()), OPS)
    assert empty.value.code == "empty-batch"
    with pytest.raises(Unprocessable) as large:
        await bus.handle(RecordBehaviorEvents(events=(view(),) * 6), OPS)
    assert large.value.code == "batch-too-large"
    assert large.value.problem()["max_batch"] == 5


async def test_decoding_problems_are_reported_with_the_others(bus: Bus) -> None:
    with pytest.raises(Unprocessable) as err:
        await bus.handle(
            RecordBehaviorEvents(
                events=(view("a"), view("b", session=None)),
                decode_errors=(EntryError(0, "type", "type must be view, ..."),),
            ),
            OPS,
        )
    assert err.value.problem()["invalid_indexes"] == [0, 1]


async def test_with_a_key_a_retried_batch_is_recorded_once(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    batch = RecordBehaviorEventsOnce(events=(view("a"), view("b")))
    first = await bus.execute(batch, OPS, idempotency_key="k-1")
    again = await bus.execute(batch, OPS, idempotency_key="k-1")
    assert first == Outcome(Accepted(2), replayed=False)
    assert again == Outcome(Accepted(2), replayed=True)
    assert len(uow.events) == 2
    # the key is kept under the operation name REST and gRPC always used
    assert ("ops-1", "record_behavior_events", "k-1") in uow.idempotency.rows
    with pytest.raises(Unprocessable, match="different request body"):
        await bus.handle(RecordBehaviorEventsOnce(events=(view("c"),)), OPS, idempotency_key="k-1")
    # anonymous visitors share one key namespace
    await bus.handle(
        RecordBehaviorEventsOnce(events=(view("a"),), anonymous=True),
        ANONYMOUS,
        idempotency_key="k-1",
    )
    assert ("anonymous", "record_behavior_events", "k-1") in uow.idempotency.rows


async def test_a_refused_batch_with_a_key_leaves_the_key_free(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    with pytest.raises(Unprocessable):
        await bus.handle(
            RecordBehaviorEventsOnce(events=(view(session=None),)), OPS, idempotency_key="k-2"
        )
    assert uow.idempotency.rows == {}
    fixed = RecordBehaviorEventsOnce(events=(view(),))
    assert (await bus.execute(fixed, OPS, idempotency_key="k-2")).replayed is False


async def test_the_key_is_required_only_by_the_keyed_message(bus: Bus) -> None:
    with pytest.raises(BadRequest):
        await bus.handle(RecordBehaviorEventsOnce(events=(view(),)), OPS)
