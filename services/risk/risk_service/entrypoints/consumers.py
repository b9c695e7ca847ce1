"""Order events feeding velocity counters and the customers' amount history."""

from __future__ import annotations

from datetime import UTC

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.consumer import EventHandler
from ecomops_platform.db import UnitOfWork
from ecomops_platform.events import Envelope

from ..domain.models import Dimension
from ..service_layer import handlers


async def on_order_placed(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPlaced)
    keys = {Dimension.CUSTOMER: msg.customer_id}
    if msg.client.device_id:
        keys[Dimension.DEVICE] = msg.client.device_id
    if msg.client.ip:
        keys[Dimension.IP] = msg.client.ip
    at = msg.placed_at.ToDatetime(tzinfo=UTC) if msg.placed_at.seconds else envelope.time
    await handlers.record_order_activity(uow, msg.order_id, keys, at)


async def on_order_paid(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPaid)
    at = msg.paid_at.ToDatetime(tzinfo=UTC) if msg.paid_at.seconds else envelope.time
    if msg.payment_fingerprint:
        await handlers.record_order_activity(
            uow,
            msg.order_id,
            {
                Dimension.PAYMENT_FINGERPRINT: msg.payment_fingerprint,
                Dimension.CUSTOMER: msg.customer_id,
            },
            at,
        )
    await handlers.record_paid_order(
        uow,
        {
            "order_id": msg.order_id,
            "customer_id": msg.customer_id,
            "currency": msg.currency,
            "amount_minor": msg.total_minor,
            "payment_fingerprint": msg.payment_fingerprint or None,
            "paid_at": at,
        },
    )


async def on_order_cancelled(uow: UnitOfWork, envelope: Envelope) -> None:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderCancelled)
    await handlers.record_cancelled_order(uow, msg.order_id, msg.was_paid, msg.reason)


HANDLERS: dict[str, EventHandler] = {
    "ecomops.order.v1.OrderPlaced": on_order_placed,
    "ecomops.order.v1.OrderPaid": on_order_paid,
    "ecomops.order.v1.OrderCancelled": on_order_cancelled,
}
