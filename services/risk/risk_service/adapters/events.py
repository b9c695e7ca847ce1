"""Domain -> protobuf events (topic ecomops.risk.v1, keyed by order id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.risk.v1 import events_pb2


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def risk_assessed(
    row: Mapping[str, Any], reasons: Sequence[Mapping[str, Any]]
) -> events_pb2.RiskAssessed:
    return events_pb2.RiskAssessed(
        assessment_id=row["assessment_id"],
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        score=str(row["score"]),
        decision=row["decision"],
        reasons=[
            events_pb2.RiskReason(code=r["code"], detail=r["detail"], weight=str(r["weight"]))
            for r in reasons
        ],
        rules_version=int(row["rules_version"]),
        model_version=row["model_version"],
        amount_minor=int(row["amount_minor"]),
        currency=row["currency"],
        assessed_at=timestamp(row["assessed_at"]),
    )


def review_resolved(row: Mapping[str, Any]) -> events_pb2.RiskReviewResolved:
    return events_pb2.RiskReviewResolved(
        review_id=row["review_id"],
        order_id=row["order_id"],
        assessment_id=row["assessment_id"],
        decision=row["decision"],
        analyst=row["analyst"] or "",
        note=row["note"] or "",
        resolved_at=timestamp(row["resolved_at"]),
    )
