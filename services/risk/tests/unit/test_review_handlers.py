"""The review queue, labels and what order events do, through the bus on fakes."""

from __future__ import annotations

from typing import Any

import pytest

from ecomops.risk.v1 import events_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import BadRequest, Conflict, NotFound, Unprocessable
from risk_service.domain.models import (
    Dimension,
    LabelSource,
    LabelValue,
    ReviewDecision,
    ReviewStatus,
)
from risk_service.service_layer.assessments import AssessOrder
from risk_service.service_layer.order_activity import (
    PruneVelocity,
    RecordOrderCancelled,
    RecordOrderPaid,
    RecordOrderPlaced,
)
from risk_service.service_layer.reviews import CreateLabel, DecideReview, GetReview, ListReviews

from .fakes import NOW, Clock, FakeRiskUnitOfWork, bus
from .test_assessment_handlers import OPS, ORDER_SERVICE, facts, review_rules

SYSTEM = Caller("ecomops-risk", Role.SERVICE)


async def _review(b: MessageBus[Any, Any], order_id: str = "o-1") -> str:
    """A new order sent to review (country mismatch); its review id."""
    await review_rules(b)
    result = await b.handle(
        AssessOrder(order=facts(order_id=order_id, billing_country="FR")), ORDER_SERVICE
    )
    assert result.assessment.review_id is not None
    return result.assessment.review_id


async def test_a_decision_resolves_the_case_once_and_publishes_it() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    review_id = await _review(b)
    decided = await b.handle(
        DecideReview(review_id=review_id, decision=ReviewDecision.REJECT, note="stolen card"), OPS
    )
    assert (decided.status, decided.decision, decided.analyst) == (
        "resolved",
        "reject",
        "analyst-1",
    )
    assert decided.resolved_at == NOW
    assert uow.assessments.rows[decided.assessment_id].final_decision == "reject"
    [event] = uow.events_of(events_pb2.RiskReviewResolved)
    assert isinstance(event, events_pb2.RiskReviewResolved)
    assert (event.review_id, event.decision, event.note) == (review_id, "reject", "stolen card")

    with pytest.raises(Conflict) as err:
        await b.handle(DecideReview(review_id=review_id, decision=ReviewDecision.APPROVE), OPS)
    assert err.value.code == "review-already-resolved"
    assert await b.handle(GetReview(review_id=review_id), OPS) == decided
    with pytest.raises(NotFound):
        await b.handle(DecideReview(review_id="nope", decision=ReviewDecision.APPROVE), OPS)


async def test_the_queue_pages_oldest_first_by_status() -> None:
    uow = FakeRiskUnitOfWork()
    clock = Clock()
    b = bus(uow, clock=clock)
    ids = []
    for i in range(3):
        ids.append(await _review(b, f"o-{i}"))
        clock.advance(1)
    first = await b.handle(ListReviews(status=ReviewStatus.OPEN, limit=2), OPS)
    assert [r.review_id for r in first.items] == ids[:2] and first.next_cursor
    rest = await b.handle(ListReviews(status=ReviewStatus.OPEN, cursor=first.next_cursor), OPS)
    assert [r.review_id for r in rest.items] == ids[2:] and rest.next_cursor is None
    with pytest.raises(Unprocessable):
        await b.handle(ListReviews(limit=0), OPS)


async def test_a_cancelled_order_closes_its_open_case_and_leaves_decided_ones() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    open_id = await _review(b, "o-open")
    decided_id = await _review(b, "o-decided")
    await b.handle(DecideReview(review_id=decided_id, decision=ReviewDecision.APPROVE), OPS)
    for order_id in ("o-open", "o-decided", "o-unknown"):
        await b.handle(
            RecordOrderCancelled(order_id=order_id, was_paid=False, reason="reservation_expired"),
            SYSTEM,
        )
    closed = uow.reviews.rows[open_id]
    assert (closed.status, closed.close_reason, closed.decision) == (
        "closed",
        "reservation_expired",
        None,
    )
    assert uow.reviews.rows[decided_id].status == "resolved"
    with pytest.raises(Conflict) as err:
        await b.handle(DecideReview(review_id=open_id, decision=ReviewDecision.APPROVE), OPS)
    assert err.value.code == "review-closed"


async def test_order_events_feed_velocity_and_history_and_refunds_leave_it() -> None:
    uow = FakeRiskUnitOfWork()
    clock = Clock()
    b = bus(uow, clock=clock)
    await b.handle(
        RecordOrderPlaced(order_id="o-1", customer_id="c-1", ip="192.0.2.9", placed_at=NOW),
        SYSTEM,
    )
    paid = RecordOrderPaid(
        order_id="o-1",
        customer_id="c-1",
        currency="EUR",
        amount_minor=1000,
        payment_fingerprint="fp-1",
        paid_at=NOW,
    )
    await b.handle(paid, SYSTEM)
    await b.handle(paid, SYSTEM)  # a redelivered event changes nothing
    assert set(uow.velocity.rows) == {
        (Dimension.CUSTOMER, "c-1", "o-1"),
        (Dimension.IP, "192.0.2.9", "o-1"),
        (Dimension.PAYMENT_FINGERPRINT, "fp-1", "o-1"),
    }
    history = await uow.payments.history("c-1", "EUR", "o-2")
    assert (history.paid_orders, history.max_amount_minor) == (1, 1000)
    await b.handle(RecordOrderCancelled(order_id="o-1", was_paid=True), SYSTEM)
    assert (await uow.payments.history("c-1", "EUR", "o-2")).paid_orders == 0
    # velocity past the retention is pruned
    clock.advance(31 * 86400)
    assert await b.handle(PruneVelocity(), SYSTEM) == 3
    assert uow.velocity.rows == {}
    with pytest.raises(Exception, match="role"):
        await b.handle(PruneVelocity(), OPS)


async def test_a_label_is_recorded_once_per_idempotency_key() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    partner = Caller("partner-psp", Role.PARTNER)
    label = CreateLabel(
        order_id="o-1", label=LabelValue.FRAUD, source=LabelSource.CHARGEBACK, amount_minor=500
    )
    first = await b.execute(label, partner, idempotency_key="k-1")
    again = await b.execute(label, partner, idempotency_key="k-1")
    assert not first.replayed and again.replayed and again.result == first.result
    assert first.result.created_by == "partner-psp" and first.result.amount_minor == 500
    assert len(uow.labels.rows) == 1
    with pytest.raises(Unprocessable):
        await b.execute(
            CreateLabel(order_id="o-2", label=LabelValue.FRAUD, source=LabelSource.ANALYST),
            partner,
            idempotency_key="k-1",
        )
    with pytest.raises(BadRequest):
        await b.execute(label, partner)
