"""The gRPC servicer on fakes: decoding (limits, lengths, entries) and encoding of each answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops.recommendation.v1 import recommendation_service_pb2 as pb
from ecomops_platform.auth import Caller, Role, current_caller
from ecomops_platform.errors import Forbidden, NotFound, Unprocessable
from ecomops_platform.timestamps import to_timestamp
from recommendation_service.entrypoints.grpc import RecommendationServicer
from recommendation_service.service_layer.learning import (
    LearnFromPaidOrder,
    OrderLine,
    UpdateCatalogItem,
    UpdateStockLevel,
)

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

OPS = Caller("ops-1", Role.OPS)


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


@pytest.fixture
def servicer(bus: Bus) -> RecommendationServicer:
    return RecommendationServicer(bus)


def acting_as(caller: Caller) -> None:
    current_caller.set(caller)


@pytest.fixture(autouse=True)
def as_ops() -> Iterator[None]:
    token = current_caller.set(OPS)
    yield
    current_caller.reset(token)


async def shop(bus: Bus) -> None:
    for sku in ("a", "b", "c"):
        await bus.handle(
            UpdateCatalogItem(
                sku=sku, title=sku.upper(), category="k", brand="", status="", updated_at=NOW
            ),
            bus.system,
        )
        await bus.handle(UpdateStockLevel(sku=sku, available=1, occurred_at=NOW), bus.system)
    for n, skus in enumerate((("a", "b"), ("a", "c"), ("a", "b"))):
        await bus.handle(
            LearnFromPaidOrder(
                event_id=f"e{n}",
                order_id=f"o{n}",
                customer_id=f"c{n}",
                currency="EUR",
                total_minor=100 * (n + 1),
                paid_at=NOW - timedelta(days=1),
                lines=tuple(OrderLine(s, 1) for s in skus),
                sent_at=NOW,
            ),
            bus.system,
        )


async def test_limits_default_to_ten_and_stay_within_one_to_a_hundred(
    bus: Bus, servicer: RecommendationServicer
) -> None:
    await shop(bus)
    r = await servicer.GetBoughtTogether(pb.GetBoughtTogetherRequest(sku="a"), None)
    assert [i.sku for i in r.items] == ["b", "c"]
    assert r.items[0].reason == "often bought with A"
    r = await servicer.GetBoughtTogether(pb.GetBoughtTogetherRequest(sku="a", limit=1), None)
    assert [i.sku for i in r.items] == ["b"]
    for bad in (101, -1):
        with pytest.raises(Unprocessable) as err:
            await servicer.GetTrending(pb.GetTrendingRequest(limit=bad), None)
        assert err.value.code == "invalid-limit"


async def test_over_long_lookups_are_refused(servicer: RecommendationServicer) -> None:
    with pytest.raises(Unprocessable, match="sku: at most 128"):
        await servicer.GetSimilarItems(pb.GetSimilarItemsRequest(sku="x" * 129), None)
    with pytest.raises(Unprocessable, match="category: at most 200"):
        await servicer.GetTrending(pb.GetTrendingRequest(category="x" * 201), None)
    # checked before ownership: a customer asking about someone else with an over-long id
    acting_as(Caller("alice", Role.CUSTOMER))
    with pytest.raises(Unprocessable, match="customer_id"):
        await servicer.GetCustomerRecommendations(
            pb.GetCustomerRecommendationsRequest(customer_id="x" * 129), None
        )
    with pytest.raises(NotFound):
        await servicer.GetCustomerRecommendations(
            pb.GetCustomerRecommendationsRequest(customer_id="bob"), None
        )


async def test_a_batch_names_every_undecodable_entry(
    servicer: RecommendationServicer, uow: FakeRecommendationUnitOfWork
) -> None:
    good = pb.BehaviorEventInput(
        type=rec_events.BEHAVIOR_TYPE_VIEW,
        sku="a",
        session_id="s",
        occurred_at=to_timestamp(NOW),
    )
    no_type = pb.BehaviorEventInput(sku="a", session_id="s", occurred_at=to_timestamp(NOW))
    no_time = pb.BehaviorEventInput(type=good.type, sku="a", session_id="s")
    bad_time = pb.BehaviorEventInput(type=good.type, sku="a", session_id="s")
    bad_time.occurred_at.seconds = 10**12
    with pytest.raises(Unprocessable) as err:
        await servicer.RecordBehaviorEvents(
            pb.RecordBehaviorEventsRequest(events=[good, no_type, no_time, bad_time]), None
        )
    problem = err.value.problem()
    assert problem["invalid_indexes"] == [1, 2, 3]
    assert {(e["index"], e["field"]) for e in problem["errors"]} == {
        (1, "type"),
        (2, "occurred_at"),
        (3, "occurred_at"),
    }
    assert uow.events == []
    first = await servicer.RecordBehaviorEvents(
        pb.RecordBehaviorEventsRequest(events=[good], idempotency_key="k"), None
    )
    again = await servicer.RecordBehaviorEvents(
        pb.RecordBehaviorEventsRequest(events=[good], idempotency_key="k"), None
    )
    assert first.accepted == again.accepted == 1
    assert len(uow.events) == 1  # the retry was replayed


async def test_segments_and_counts_are_encoded_as_the_contract_says(
    bus: Bus, servicer: RecommendationServicer
) -> None:
    await shop(bus)
    seg = await servicer.GetCustomerSegment(pb.GetCustomerSegmentRequest(customer_id="c2"), None)
    assert (seg.customer_id, seg.frequency, seg.monetary_minor, seg.currency) == (
        "c2",
        1,
        300,
        "EUR",
    )
    assert seg.segment == pb.SEGMENT_NEW and seg.churn_risk == pb.CHURN_RISK_LOW
    assert seg.computed_at == to_timestamp(NOW)
    counts = await servicer.ListSegmentCounts(pb.ListSegmentCountsRequest(), None)
    assert len(counts.counts) == 9 and counts.total == 3
    assert {c.segment: c.customers for c in counts.counts}[pb.SEGMENT_NEW] == 3
    acting_as(Caller("c2", Role.CUSTOMER))
    with pytest.raises(Forbidden):
        await servicer.ListSegmentCounts(pb.ListSegmentCountsRequest(), None)


async def test_the_funnel_gives_rates_as_decimal_text(
    bus: Bus, servicer: RecommendationServicer
) -> None:
    await shop(bus)
    request = pb.GetFunnelRequest(to=to_timestamp(NOW))
    getattr(request, "from").CopyFrom(to_timestamp(NOW - timedelta(days=2)))
    r = await servicer.GetFunnel(request, None)
    assert (r.views, r.add_to_carts, r.orders, r.paid) == (0, 0, 0, 3)
    assert r.view_to_cart_rate == "" and r.order_to_paid_rate == ""  # nothing before: no rate
    assert getattr(r, "from") == to_timestamp(NOW - timedelta(days=2))
    assert r.to == to_timestamp(NOW)
    backwards = pb.GetFunnelRequest(to=to_timestamp(NOW - timedelta(days=3)))
    getattr(backwards, "from").CopyFrom(to_timestamp(NOW))
    with pytest.raises(Unprocessable, match="from must be before to"):
        await servicer.GetFunnel(backwards, None)


async def test_the_mode_chooses_buy_again_or_discovery(
    bus: Bus, servicer: RecommendationServicer
) -> None:
    await shop(bus)  # c0 bought a and b
    acting_as(Caller("c0", Role.CUSTOMER))
    default = await servicer.GetCustomerRecommendations(
        pb.GetCustomerRecommendationsRequest(customer_id="c0"), None
    )
    assert {i.sku for i in default.items[:2]} == {"a", "b"}
    assert default.items[0].reason == "you bought this before"
    new = await servicer.GetCustomerRecommendations(
        pb.GetCustomerRecommendationsRequest(
            customer_id="c0", mode=pb.RECOMMENDATION_MODE_DISCOVER
        ),
        None,
    )
    assert [i.sku for i in new.items] == ["c"]
    with pytest.raises(Unprocessable) as err:
        await servicer.GetCustomerRecommendations(
            pb.GetCustomerRecommendationsRequest(customer_id="c0", mode=7),  # type: ignore[arg-type]
            None,
        )
    assert err.value.code == "invalid-mode"
