"""The manual review queue, and the labels (chargebacks, analyst verdicts) fed back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..domain.models import LabelSource, LabelValue, ReviewDecision, ReviewStatus
from ..domain.review import ensure_open
from . import events
from .ports import Ctx
from .views import LabelView, ReviewPage, ReviewView

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListReviews(Query[ReviewPage], roles=OPS):
    """Review cases, oldest first."""

    status: ReviewStatus | None = None
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReview(Query[ReviewView], roles=OPS):
    review_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DecideReview(Command[ReviewView], roles=OPS):
    """Decide an open case (publishes RiskReviewResolved); 409 when decided or closed."""

    review_id: str
    decision: ReviewDecision
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateLabel(Command[LabelView], roles=(Role.OPS, Role.PARTNER), idempotent=True):
    """Record a label (chargeback or analyst verdict) for training and KPIs."""

    order_id: str
    label: LabelValue
    source: LabelSource
    amount_minor: int | None = None


@handler
async def list_reviews(query: ListReviews, ctx: Ctx) -> ReviewPage:
    size = check_limit(query.limit)
    position = decode_cursor(query.cursor)
    after = None
    if position:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    status = query.status.value if query.status else None
    async with ctx.uow:
        reviews = await ctx.uow.reviews.list(status, after, size + 1)
    more = len(reviews) > size
    reviews = reviews[:size]
    next_cursor = (
        encode_cursor({"t": reviews[-1].created_at.isoformat(), "id": reviews[-1].review_id})
        if more
        else None
    )
    return ReviewPage(tuple(reviews), next_cursor)


@handler
async def get_review(query: GetReview, ctx: Ctx) -> ReviewView:
    async with ctx.uow:
        review = await ctx.uow.reviews.get(query.review_id)
    if review is None:
        raise NotFound(f"review {query.review_id} not found")
    return review


@handler
async def decide_review(cmd: DecideReview, ctx: Ctx) -> ReviewView:
    uow = ctx.uow
    async with uow:
        now = ctx.deps.clock()
        resolved = await uow.reviews.resolve(
            cmd.review_id, cmd.decision.value, ctx.caller.subject, cmd.note, now
        )
        if resolved is None:
            current = await uow.reviews.get(cmd.review_id)
            if current is None:
                raise NotFound(f"review {cmd.review_id} not found")
            ensure_open(
                ReviewStatus(current.status), current.decision, cmd.review_id, current.close_reason
            )
            raise AssertionError("unreachable: an open case is always resolved")
        await uow.assessments.set_final_decision(resolved.assessment_id, cmd.decision.value)
        uow.add_event(events.review_resolved(resolved), key=resolved.order_id, occurred_at=now)
        await uow.commit()
    return resolved


@handler
async def create_label(cmd: CreateLabel, ctx: Ctx) -> LabelView:
    label = LabelView(
        label_id=str(uuid.uuid4()),
        order_id=cmd.order_id,
        label=cmd.label.value,
        source=cmd.source.value,
        amount_minor=cmd.amount_minor,
        created_by=ctx.caller.subject,
        created_at=ctx.deps.clock(),
    )
    async with ctx.uow:
        await ctx.uow.labels.add(label)
        await ctx.uow.commit()
    return label
