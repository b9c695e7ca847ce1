"""The events pricing consumes, each turned into one message (the inbox dedupes upstream)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.recommendation.v1 import events_pb2 as recommendation_events
from ecomops_platform.bus import Message as BusMessage
from ecomops_platform.bus import MessageBus
from ecomops_platform.consumer import EventHandler
from ecomops_platform.events import Envelope
from ecomops_platform.spec import on_event
from ecomops_platform.timestamps import to_datetime
from ecomops_platform.topics import topic_of

from ..service_layer.promotions import ConfirmRedemptions
from ..service_layer.quotes import ReleaseRedemption
from ..service_layer.signals import RecordSales, RecordSegment, RecordSku, RecordStock, SoldLine

TOPICS = [topic_of(inventory_events), topic_of(recommendation_events), topic_of(order_events)]


def _at(stamp: Timestamp, envelope: Envelope) -> datetime:
    """The event's own time, or the envelope's when the producer left it unset."""
    if stamp.seconds or stamp.nanos:
        return to_datetime(stamp, "occurred_at")
    return envelope.time


def sku_upserted(e: Envelope) -> RecordSku:
    msg = e.message
    assert isinstance(msg, inventory_events.SkuUpserted)
    return RecordSku(
        sku=msg.sku,
        title=msg.title,
        category=msg.category or None,
        status=msg.status or "active",
        at=_at(msg.updated_at, e),
    )


def stock_level_changed(e: Envelope) -> RecordStock:
    msg = e.message
    assert isinstance(msg, inventory_events.StockLevelChanged)
    return RecordStock(
        sku=msg.sku,
        available=msg.available,
        on_hand=msg.on_hand,
        reserved=msg.reserved,
        at=_at(msg.occurred_at, e),
    )


def customer_segment_changed(e: Envelope) -> RecordSegment:
    msg = e.message
    assert isinstance(msg, recommendation_events.CustomerSegmentChanged)
    return RecordSegment(
        customer_id=msg.customer_id,
        segment=msg.segment,
        churn_risk=msg.churn_risk,
        at=_at(msg.changed_at, e),
    )


def order_placed(e: Envelope) -> ConfirmRedemptions:
    msg = e.message
    assert isinstance(msg, order_events.OrderPlaced)
    return ConfirmRedemptions(order_id=msg.order_id, coupon_codes=tuple(msg.coupon_codes))


def order_cancelled(e: Envelope) -> ReleaseRedemption:
    msg = e.message
    assert isinstance(msg, order_events.OrderCancelled)
    reason = f"order_cancelled:{msg.reason or 'unknown'}"
    return ReleaseRedemption(order_id=msg.order_id, reason=reason)


def order_rejected(e: Envelope) -> ReleaseRedemption:
    """A rejected order is never stored: anything redeemed for it goes back (usually nothing,
    since checkout redeems after the risk decision)."""
    msg = e.message
    assert isinstance(msg, order_events.OrderRejected)
    return ReleaseRedemption(order_id=msg.order_id, reason="order_rejected")


def order_paid(e: Envelope) -> RecordSales:
    msg = e.message
    assert isinstance(msg, order_events.OrderPaid)
    return RecordSales(
        currency=msg.currency,
        day=_at(msg.paid_at, e).date(),
        lines=tuple(SoldLine(x.sku, x.quantity, x.total_minor) for x in msg.lines),
    )


def handlers(bus: MessageBus[Any, Any]) -> Mapping[str, EventHandler]:
    events: dict[type[Message], Callable[[Envelope], BusMessage[Any]]] = {
        inventory_events.SkuUpserted: sku_upserted,
        inventory_events.StockLevelChanged: stock_level_changed,
        recommendation_events.CustomerSegmentChanged: customer_segment_changed,
        order_events.OrderPlaced: order_placed,
        order_events.OrderCancelled: order_cancelled,
        order_events.OrderRejected: order_rejected,
        order_events.OrderPaid: order_paid,
    }
    return {kind.DESCRIPTOR.full_name: on_event(bus, decode) for kind, decode in events.items()}
