"""Kafka events the order service consumes, each turned into a message for the bus."""

from __future__ import annotations

from collections.abc import Mapping

from ecomops.risk.v1 import events_pb2 as risk_events
from ecomops_platform.bus import MessageBus
from ecomops_platform.consumer import EventHandler
from ecomops_platform.events import Envelope
from ecomops_platform.spec import on_event
from ecomops_platform.topics import topic_of

from ..service_layer.checkout import ResolveRiskReview
from ..service_layer.ports import Deps, OrderUnitOfWork

RISK_TOPIC = topic_of(risk_events)


def _review_resolved(event: Envelope) -> ResolveRiskReview:
    message = event.message
    assert isinstance(message, risk_events.RiskReviewResolved)
    return ResolveRiskReview(
        order_id=message.order_id, decision=message.decision, analyst=message.analyst
    )


def handlers(bus: MessageBus[OrderUnitOfWork, Deps]) -> Mapping[str, EventHandler]:
    return {
        risk_events.RiskReviewResolved.DESCRIPTOR.full_name: on_event(bus, _review_resolved),
    }
