"""Kafka consumers of order events (topic ``ecomops.order.v1``): decode, call one handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.db import UnitOfWork
from ecomops_platform.events import Envelope

from ..service_layer import fulfilment
from ..settings import InventorySettings

Handler = Callable[[UnitOfWork, Envelope], Awaitable[None]]


def build_handlers(settings: InventorySettings) -> dict[str, Handler]:
    async def on_order_paid(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.OrderPaid)
        paid_at = (
            msg.paid_at.ToDatetime(tzinfo=envelope.time.tzinfo)
            if msg.HasField("paid_at")
            else envelope.time
        )
        await fulfilment.on_order_paid(
            uow,
            msg.order_id,
            [(ln.sku, ln.quantity, ln.total_minor) for ln in msg.lines],
            msg.currency,
            paid_at,
        )

    async def on_order_cancelled(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.OrderCancelled)
        await fulfilment.on_order_cancelled(uow, msg.order_id, msg.was_paid)

    async def on_return_received(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.ReturnReceived)
        await fulfilment.on_return_received(
            uow,
            settings,
            msg.return_id,
            msg.order_id,
            msg.warehouse,
            [(ln.sku, ln.quantity, ln.resellable) for ln in msg.lines],
        )

    return {
        order_events.OrderPaid.DESCRIPTOR.full_name: on_order_paid,
        order_events.OrderCancelled.DESCRIPTOR.full_name: on_order_cancelled,
        order_events.ReturnReceived.DESCRIPTOR.full_name: on_return_received,
    }
