"""Domain -> protobuf mapping of the events the service publishes."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.recommendation.v1 import events_pb2

from ..domain.models import BehaviorEvent, BehaviorType, CustomerRfm

BEHAVIOR_TOPIC = "ecomops.behavior.v1"
SEGMENT_TOPIC = "ecomops.recommendation.v1"

BEHAVIOR_TO_PB = {
    BehaviorType.VIEW: events_pb2.BEHAVIOR_TYPE_VIEW,
    BehaviorType.ADD_TO_CART: events_pb2.BEHAVIOR_TYPE_ADD_TO_CART,
    BehaviorType.REMOVE_FROM_CART: events_pb2.BEHAVIOR_TYPE_REMOVE_FROM_CART,
}
PB_TO_BEHAVIOR = {v: k for k, v in BEHAVIOR_TO_PB.items()}


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def behavior_recorded(event: BehaviorEvent, received_at: datetime) -> events_pb2.BehaviorRecorded:
    return events_pb2.BehaviorRecorded(
        type=BEHAVIOR_TO_PB[event.type],
        sku=event.sku,
        customer_id=event.customer_id or "",
        session_id=event.session_id or "",
        occurred_at=timestamp(event.occurred_at),
        received_at=timestamp(received_at),
    )


def segment_changed(
    rfm: CustomerRfm, previous: str | None, changed_at: datetime
) -> events_pb2.CustomerSegmentChanged:
    return events_pb2.CustomerSegmentChanged(
        customer_id=rfm.customer_id,
        segment=rfm.segment.value,
        previous_segment=previous or "",
        churn_risk=rfm.churn_risk.value,
        recency_days=rfm.recency_days,
        frequency=rfm.frequency,
        monetary_minor=rfm.monetary_minor,
        changed_at=timestamp(changed_at),
    )
