"""RFM customer segments: recomputed on every paid or cancelled order and periodically (recency
ages), read by customers (their own), ops and other services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound

from ..domain.models import ChurnRisk, CustomerRfm, SegmentName, compute_rfm
from . import events as pb
from .metrics import segment_refresh_last_batch
from .ports import Ctx, RecommendationUnitOfWork, SegmentRecord, StaleSegment
from .views import CustomerSegment, SegmentCount, SegmentCounts, SegmentRefresh

STAFF = (Role.OPS, Role.SERVICE)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCustomerSegment(Query[CustomerSegment], roles=(Role.CUSTOMER, *STAFF)):
    """RFM scores, segment and churn risk of a customer (a customer: only its own)."""

    customer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSegmentCounts(Query[SegmentCounts], roles=STAFF):
    """Customers per segment, all nine."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshCustomerSegment(Command[None], roles=(Role.SERVICE,)):
    """Recompute one customer's segment now."""

    customer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshStaleSegments(Command[SegmentRefresh], roles=(Role.SERVICE,)):
    """Re-score the customers whose segment is older than the refresh interval (the periodic
    job), batch after batch until none is left."""


async def refresh_segment(
    uow: RecommendationUnitOfWork, customer_id: str, now: datetime
) -> CustomerRfm | None:
    """Recompute one customer's RFM in the open unit of work; publish CustomerSegmentChanged
    only when the segment moved. None before the customer's first paid order."""
    await uow.segments.lock_customer(customer_id)
    stats = await uow.orders.paid_stats(customer_id)
    if stats is None:
        return None
    share = await uow.segments.share_spending_less(
        stats.currency, stats.monetary_minor, customer_id
    )
    rfm = compute_rfm(
        customer_id,
        last_paid_at=stats.last_paid_at,
        first_paid_at=stats.first_paid_at,
        frequency=stats.frequency,
        monetary_minor=stats.monetary_minor,
        currency=stats.currency,
        share_below=share,
        now=now,
    )
    previous = await uow.segments.get(customer_id)
    await uow.segments.save(
        SegmentRecord(
            customer_id=customer_id,
            recency_days=rfm.recency_days,
            frequency=rfm.frequency,
            monetary_minor=rfm.monetary_minor,
            currency=rfm.currency,
            r_score=rfm.r_score,
            f_score=rfm.f_score,
            m_score=rfm.m_score,
            segment=rfm.segment.value,
            churn_risk=rfm.churn_risk.value,
            computed_at=now,
        )
    )
    previous_segment = previous.segment if previous is not None else None
    if previous_segment != rfm.segment.value:
        uow.add_event(
            pb.segment_changed(rfm, previous_segment, now),
            key=customer_id,
            topic=pb.SEGMENT_TOPIC,
        )
    return rfm


@handler
async def refresh_customer_segment(cmd: RefreshCustomerSegment, ctx: Ctx) -> None:
    async with ctx.uow:
        await refresh_segment(ctx.uow, cmd.customer_id, ctx.deps.clock())
        await ctx.uow.commit()


@handler
async def refresh_stale_segments(cmd: RefreshStaleSegments, ctx: Ctx) -> SegmentRefresh:
    """One transaction per batch; rows are claimed with SKIP LOCKED, so that replicas running
    the job at the same time share the work. The walk goes forward from the last segment seen:
    a segment left as it was (its customer has no paid order left) is passed, not claimed
    again and again."""
    batch = ctx.deps.segment_batch
    total = 0
    cursor: StaleSegment | None = None
    while True:
        async with ctx.uow:
            now = ctx.deps.clock()
            stale = await ctx.uow.segments.claim_stale(
                now - ctx.deps.segment_max_age, batch, after=cursor
            )
            for segment in stale:
                await refresh_segment(ctx.uow, segment.customer_id, now)
            await ctx.uow.commit()
        segment_refresh_last_batch.set(len(stale))
        total += len(stale)
        if len(stale) < batch:
            return SegmentRefresh(total)
        cursor = stale[-1]


def segment_view(record: SegmentRecord) -> CustomerSegment:
    return CustomerSegment(
        customer_id=record.customer_id,
        recency_days=record.recency_days,
        frequency=record.frequency,
        monetary_minor=record.monetary_minor,
        currency=record.currency,
        r_score=record.r_score,
        f_score=record.f_score,
        m_score=record.m_score,
        segment=SegmentName(record.segment),
        churn_risk=ChurnRisk(record.churn_risk),
        computed_at=record.computed_at,
    )


@handler
async def get_customer_segment(query: GetCustomerSegment, ctx: Ctx) -> CustomerSegment:
    ctx.ensure_visible(query.customer_id, "customer", query.customer_id)
    async with ctx.uow:
        record = await ctx.uow.segments.get(query.customer_id)
    if record is None:
        raise NotFound(f"customer {query.customer_id} has no paid order yet, so no segment")
    return segment_view(record)


@handler
async def list_segment_counts(query: ListSegmentCounts, ctx: Ctx) -> SegmentCounts:
    async with ctx.uow:
        stored = await ctx.uow.segments.counts()
    counts = tuple(SegmentCount(s, stored.get(s.value, 0)) for s in SegmentName)
    return SegmentCounts(counts, sum(c.customers for c in counts))
