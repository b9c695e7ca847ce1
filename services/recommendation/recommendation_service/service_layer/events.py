"""The service's events as protobuf (contracts in ``proto/ecomops/recommendation/v1``): the
behaviour types both ways, and the events it publishes, with their topics."""

from __future__ import annotations

from datetime import datetime

from ecomops.recommendation.v1 import events_pb2
from ecomops_platform.timestamps import to_timestamp
from ecomops_platform.topics import BEHAVIOR_TOPIC, topic_of

from ..domain.models import BehaviorEvent, BehaviorType, CustomerRfm

__all__ = ["BEHAVIOR_TOPIC", "SEGMENT_TOPIC"]

#: Where CustomerSegmentChanged goes (BehaviorRecorded has a topic of its own, BEHAVIOR_TOPIC:
#: storefront traffic is kept apart from the service's domain events).
SEGMENT_TOPIC = topic_of(events_pb2)

BEHAVIOR_TO_PB = {
    BehaviorType.VIEW: events_pb2.BEHAVIOR_TYPE_VIEW,
    BehaviorType.ADD_TO_CART: events_pb2.BEHAVIOR_TYPE_ADD_TO_CART,
    BehaviorType.REMOVE_FROM_CART: events_pb2.BEHAVIOR_TYPE_REMOVE_FROM_CART,
}
PB_TO_BEHAVIOR = {v: k for k, v in BEHAVIOR_TO_PB.items()}


def behavior_recorded(event: BehaviorEvent, received_at: datetime) -> events_pb2.BehaviorRecorded:
    return events_pb2.BehaviorRecorded(
        type=BEHAVIOR_TO_PB[event.type],
        sku=event.sku,
        customer_id=event.customer_id or "",
        session_id=event.session_id or "",
        occurred_at=to_timestamp(event.occurred_at),
        received_at=to_timestamp(received_at),
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
        changed_at=to_timestamp(changed_at),
    )
