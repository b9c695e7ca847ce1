"""Segments on fakes: reading them (who may), counting them, refreshing them as recency ages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden, NotFound
from recommendation_service.domain.models import ChurnRisk, SegmentName
from recommendation_service.service_layer.learning import (
    LearnFromPaidOrder,
    OrderLine,
    TakeBackCancelledOrder,
)
from recommendation_service.service_layer.segments import (
    GetCustomerSegment,
    ListSegmentCounts,
    RefreshCustomerSegment,
    RefreshStaleSegments,
)
from recommendation_service.service_layer.views import SegmentRefresh

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

OPS = Caller("ops-1", Role.OPS)


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


async def pay(
    bus: Bus, order_id: str, customer: str, *, days_ago: float, total: int = 1000
) -> None:
    await bus.handle(
        LearnFromPaidOrder(
            event_id=f"ev-{order_id}",
            order_id=order_id,
            customer_id=customer,
            currency="EUR",
            total_minor=total,
            paid_at=NOW - timedelta(days=days_ago),
            lines=(OrderLine("a", 1),),
            sent_at=NOW,
        ),
        bus.system,
    )


async def test_a_customer_reads_its_own_segment_staff_any(bus: Bus) -> None:
    await pay(bus, "o-1", "alice", days_ago=2, total=1234)
    mine = await bus.handle(GetCustomerSegment(customer_id="alice"), Caller("alice", Role.CUSTOMER))
    assert (mine.segment, mine.churn_risk, mine.recency_days) == (
        SegmentName.NEW,
        ChurnRisk.LOW,
        2,
    )
    assert (mine.monetary_minor, mine.currency, mine.computed_at) == (1234, "EUR", NOW)
    assert (await bus.handle(GetCustomerSegment(customer_id="alice"), OPS)) == mine
    with pytest.raises(NotFound, match="customer alice not found"):
        await bus.handle(GetCustomerSegment(customer_id="alice"), Caller("bob", Role.CUSTOMER))
    with pytest.raises(NotFound, match="no paid order yet"):
        await bus.handle(GetCustomerSegment(customer_id="carol"), OPS)
    with pytest.raises(Forbidden):
        await bus.handle(GetCustomerSegment(customer_id="alice"), Caller("p", Role.PARTNER))


async def test_counts_name_all_nine_segments_for_staff_only(bus: Bus) -> None:
    await pay(bus, "o-1", "alice", days_ago=1)
    await pay(bus, "o-2", "bob", days_ago=400)
    counts = await bus.handle(ListSegmentCounts(), OPS)
    assert [c.segment for c in counts.counts] == list(SegmentName)
    by_name = {c.segment: c.customers for c in counts.counts}
    assert by_name[SegmentName.NEW] == 1 and by_name[SegmentName.LOST] == 1
    assert counts.total == 2 and sum(by_name.values()) == 2
    with pytest.raises(Forbidden):
        await bus.handle(ListSegmentCounts(), Caller("alice", Role.CUSTOMER))


async def test_an_unchanged_segment_publishes_nothing_more(
    bus: Bus, uow: FakeRecommendationUnitOfWork
) -> None:
    await pay(bus, "o-1", "alice", days_ago=1)
    await bus.handle(RefreshCustomerSegment(customer_id="alice"), bus.system)
    assert len(uow.events_of(rec_events.CustomerSegmentChanged)) == 1
    assert await bus.handle(RefreshCustomerSegment(customer_id="nobody"), bus.system) is None
    assert "nobody" not in uow.state.segments


async def test_the_refresh_rescores_stale_segments_in_batches(
    uow: FakeRecommendationUnitOfWork,
) -> None:
    earlier = make_bus(uow, clock=lambda: NOW - timedelta(days=40))
    for n in range(5):
        # paid 35 days before "earlier": new customers then, recency 75 days now
        await pay(earlier, f"o-{n}", f"c-{n}", days_ago=75)
    await pay(earlier, "o-fresh", "fresh", days_ago=40)
    bus = make_bus(uow, segment_batch=2)
    await bus.handle(RefreshCustomerSegment(customer_id="fresh"), bus.system)
    commits = uow.commits
    assert await bus.handle(RefreshStaleSegments(), bus.system) == SegmentRefresh(5)
    assert uow.commits == commits + 3  # 2 + 2 + 1
    for n in range(5):
        seg = uow.state.segments[f"c-{n}"]
        assert (seg.computed_at, seg.recency_days, seg.segment) == (NOW, 75, "promising")
    moved = uow.events_of(rec_events.CustomerSegmentChanged)[-5:]
    assert {m.previous_segment for m in moved} == {"new"}  # type: ignore[attr-defined]
    # nothing stale any more
    assert await bus.handle(RefreshStaleSegments(), bus.system) == SegmentRefresh(0)


async def test_customers_without_a_paid_order_left_neither_stall_nor_starve_the_refresh(
    uow: FakeRecommendationUnitOfWork,
) -> None:
    earlier = make_bus(uow, clock=lambda: NOW - timedelta(days=40))
    for n in range(3):  # paid, then cancelled: their segment stays as it was, never re-scored
        await pay(earlier, f"z-{n}", f"zombie-{n}", days_ago=1)
        await earlier.handle(TakeBackCancelledOrder(order_id=f"z-{n}"), earlier.system)
    await pay(earlier, "o-1", "alice", days_ago=0.5)  # stale, behind the three
    bus = make_bus(uow, segment_batch=2)
    done = await asyncio.wait_for(bus.handle(RefreshStaleSegments(), bus.system), timeout=5)
    assert done == SegmentRefresh(4)
    assert uow.state.segments["alice"].computed_at == NOW
    assert uow.state.segments["zombie-0"].computed_at < NOW
