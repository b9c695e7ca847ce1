"""Kafka event handlers: decode the event, call one handler (the inbox dedupes upstream)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.recommendation.v1 import events_pb2 as recommendation_events
from ecomops_platform.consumer import EventHandler
from ecomops_platform.db import UnitOfWork
from ecomops_platform.events import Envelope

from ..service_layer import handlers


def _at(stamp: Timestamp, envelope: Envelope) -> datetime:
    if stamp.seconds or stamp.nanos:
        return stamp.ToDatetime(tzinfo=UTC)
    return envelope.time


async def on_sku_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, inventory_events.SkuUpserted)
    await handlers.record_sku(
        uow,
        sku=msg.sku,
        title=msg.title,
        category=msg.category or None,
        status=msg.status or "active",
        at=_at(msg.updated_at, envelope),
    )


async def on_stock_level_changed(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, inventory_events.StockLevelChanged)
    await handlers.record_stock(
        uow,
        sku=msg.sku,
        available=msg.available,
        on_hand=msg.on_hand,
        reserved=msg.reserved,
        at=_at(msg.occurred_at, envelope),
    )


async def on_customer_segment_changed(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, recommendation_events.CustomerSegmentChanged)
    await handlers.record_segment(
        uow,
        customer_id=msg.customer_id,
        segment=msg.segment,
        churn_risk=msg.churn_risk,
        at=_at(msg.changed_at, envelope),
    )


async def on_order_placed(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPlaced)
    await handlers.confirm_order(uow, order_id=msg.order_id)


async def on_order_cancelled(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderCancelled)
    await handlers.release_redemption(
        uow, order_id=msg.order_id, reason=f"order_cancelled:{msg.reason or 'unknown'}"
    )


async def on_order_rejected(uow: UnitOfWork, envelope: Envelope) -> None:
    """A rejected order is never stored: anything redeemed for it goes back (usually nothing,
    since checkout redeems after the risk decision)."""
    msg = envelope.message
    assert isinstance(msg, order_events.OrderRejected)
    await handlers.release_redemption(uow, order_id=msg.order_id, reason="order_rejected")


async def on_order_paid(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPaid)
    paid_at = _at(msg.paid_at, envelope)
    await handlers.record_sales(
        uow,
        currency=msg.currency,
        day=paid_at.date(),
        lines=[(line.sku, line.quantity, line.total_minor) for line in msg.lines],
    )


HANDLERS: dict[str, EventHandler] = {
    "ecomops.inventory.v1.SkuUpserted": on_sku_upserted,
    "ecomops.inventory.v1.StockLevelChanged": on_stock_level_changed,
    "ecomops.recommendation.v1.CustomerSegmentChanged": on_customer_segment_changed,
    "ecomops.order.v1.OrderPlaced": on_order_placed,
    "ecomops.order.v1.OrderCancelled": on_order_cancelled,
    "ecomops.order.v1.OrderRejected": on_order_rejected,
    "ecomops.order.v1.OrderPaid": on_order_paid,
}
TOPICS = ["ecomops.inventory.v1", "ecomops.recommendation.v1", "ecomops.order.v1"]
