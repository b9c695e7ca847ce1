"""Kafka consumers of order events: each event becomes one message, handled by the bus as the
service itself inside the consumer's unit of work (which also records the event in the inbox)."""

from __future__ import annotations

from collections.abc import Mapping

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.bus import MessageBus
from ecomops_platform.consumer import EventHandler
from ecomops_platform.events import Envelope
from ecomops_platform.spec import on_event
from ecomops_platform.timestamps import to_datetime

from ..service_layer.fulfilment import (
    CommitOrderStock,
    PaidLine,
    ReleaseOrderStock,
    RestockReturn,
    ReturnedLine,
)
from ..service_layer.history import RecordImportedSales
from ..service_layer.ports import Deps, InventoryUnitOfWork


def _order_paid(envelope: Envelope) -> CommitOrderStock:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPaid)
    return CommitOrderStock(
        order_id=msg.order_id,
        lines=tuple(PaidLine(ln.sku, ln.quantity, ln.total_minor) for ln in msg.lines),
        currency=msg.currency,
        paid_at=to_datetime(msg.paid_at, "paid_at") if msg.HasField("paid_at") else envelope.time,
    )


def _order_cancelled(envelope: Envelope) -> ReleaseOrderStock:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderCancelled)
    return ReleaseOrderStock(order_id=msg.order_id, was_paid=msg.was_paid)


def _return_received(envelope: Envelope) -> RestockReturn:
    msg = envelope.message
    assert isinstance(msg, order_events.ReturnReceived)
    return RestockReturn(
        return_id=msg.return_id,
        order_id=msg.order_id,
        warehouse=msg.warehouse,
        lines=tuple(ReturnedLine(ln.sku, ln.quantity, ln.resellable) for ln in msg.lines),
    )


def _order_imported(envelope: Envelope) -> RecordImportedSales:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderImported)
    return RecordImportedSales(
        order_id=msg.order_id,
        lines=tuple(PaidLine(ln.sku, ln.quantity, ln.total_minor) for ln in msg.lines),
        currency=msg.currency,
        ordered_at=(
            to_datetime(msg.ordered_at, "ordered_at")
            if msg.HasField("ordered_at")
            else envelope.time
        ),
    )


def handlers(bus: MessageBus[InventoryUnitOfWork, Deps]) -> Mapping[str, EventHandler]:
    return {
        order_events.OrderPaid.DESCRIPTOR.full_name: on_event(bus, _order_paid),
        order_events.OrderCancelled.DESCRIPTOR.full_name: on_event(bus, _order_cancelled),
        order_events.ReturnReceived.DESCRIPTOR.full_name: on_event(bus, _return_received),
        order_events.OrderImported.DESCRIPTOR.full_name: on_event(bus, _order_imported),
    }
