"""Domain facts -> protobuf events (topic ecomops.risk.v1, keyed by order id)."""

from __future__ import annotations

from ecomops.risk.v1 import events_pb2
from ecomops_platform.timestamps import optional_timestamp, to_timestamp

from .views import AssessmentView, ReviewView


def risk_assessed(view: AssessmentView) -> events_pb2.RiskAssessed:
    return events_pb2.RiskAssessed(
        assessment_id=view.assessment_id,
        order_id=view.order_id,
        customer_id=view.customer_id,
        score=view.score,
        decision=view.decision,
        reasons=[
            events_pb2.RiskReason(code=r.code, detail=r.detail, weight=r.weight)
            for r in view.reasons
        ],
        rules_version=view.rules_version,
        model_version=view.model_version,
        amount_minor=view.amount_minor,
        currency=view.currency,
        assessed_at=to_timestamp(view.assessed_at),
    )


def review_resolved(review: ReviewView) -> events_pb2.RiskReviewResolved:
    return events_pb2.RiskReviewResolved(
        review_id=review.review_id,
        order_id=review.order_id,
        assessment_id=review.assessment_id,
        decision=review.decision or "",
        analyst=review.analyst or "",
        note=review.note or "",
        resolved_at=optional_timestamp(review.resolved_at),
    )
