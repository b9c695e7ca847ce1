"""Order events kept for the contact rate and as a stand-in for the order service: each event
becomes a command, handled by the bus in the consumer's unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.consumer import EventHandler
from ecomops_platform.events import Envelope
from ecomops_platform.spec import on_event
from ecomops_platform.timestamps import to_datetime
from ecomops_platform.topics import topic_of

from ..service_layer.order_activity import RecordOrderDelivered, RecordOrderPlaced
from ..service_layer.ports import Bus

TOPICS = (topic_of(order_events),)


def _at(stamp: Timestamp, name: str, event: Envelope) -> datetime:
    """The event's own time, else when it was published."""
    return to_datetime(stamp, name) if stamp.seconds else event.time


def order_placed(event: Envelope) -> RecordOrderPlaced:
    msg = event.message
    assert isinstance(msg, order_events.OrderPlaced)
    return RecordOrderPlaced(
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        total_minor=msg.total_minor,
        currency=msg.currency,
        placed_at=_at(msg.placed_at, "placed_at", event),
    )


def order_delivered(event: Envelope) -> RecordOrderDelivered:
    msg = event.message
    assert isinstance(msg, order_events.OrderDelivered)
    return RecordOrderDelivered(
        order_id=msg.order_id, delivered_at=_at(msg.delivered_at, "delivered_at", event)
    )


def handlers(bus: Bus) -> Mapping[str, EventHandler]:
    return {
        order_events.OrderPlaced.DESCRIPTOR.full_name: on_event(bus, order_placed),
        order_events.OrderDelivered.DESCRIPTOR.full_name: on_event(bus, order_delivered),
    }
