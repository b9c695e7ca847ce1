"""Kafka subscriptions: each event becomes one message of the service layer, handled as the
service itself inside the consumer's transaction (which also records it in the inbox)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from google.protobuf.message import Message

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops_platform.bus import MessageBus
from ecomops_platform.consumer import EventHandler
from ecomops_platform.events import Envelope
from ecomops_platform.spec import Subscription, on_event
from ecomops_platform.timestamps import to_datetime
from ecomops_platform.topics import topic_of

from ..domain.models import BehaviorEvent
from ..service_layer.events import BEHAVIOR_TOPIC, PB_TO_BEHAVIOR
from ..service_layer.history import LearnFromImportedOrder
from ..service_layer.learning import (
    LearnFromBehavior,
    LearnFromPaidOrder,
    OrderLine,
    RecordPlacedOrder,
    TakeBackCancelledOrder,
    UpdateCatalogItem,
    UpdateStockLevel,
)
from ..service_layer.ports import Deps, RecommendationUnitOfWork

Bus = MessageBus[RecommendationUnitOfWork, Deps]

ORDER_TOPIC = topic_of(order_events)
INVENTORY_TOPIC = topic_of(inventory_events)


class PoisonEvent(ValueError):
    """An event that can never be applied (it goes to the dead-letter topic after retries)."""


def _time(message: Message, field: str) -> datetime | None:
    return to_datetime(getattr(message, field), field) if message.HasField(field) else None


def _lines(lines: Iterable[order_events.OrderLine]) -> tuple[OrderLine, ...]:
    return tuple(OrderLine(line.sku, int(line.quantity)) for line in lines)


def learn_from_behavior(envelope: Envelope) -> LearnFromBehavior:
    msg = envelope.message
    assert isinstance(msg, rec_events.BehaviorRecorded)
    if msg.type not in PB_TO_BEHAVIOR or not msg.sku:
        raise PoisonEvent(f"behaviour event {envelope.event_id} has no type or SKU")
    if not msg.customer_id and not msg.session_id:
        raise PoisonEvent(f"behaviour event {envelope.event_id} has no customer or session")
    event = BehaviorEvent(
        type=PB_TO_BEHAVIOR[msg.type],
        sku=msg.sku,
        customer_id=msg.customer_id or None,
        session_id=msg.session_id or None,
        occurred_at=_time(msg, "occurred_at") or envelope.time,
    )
    return LearnFromBehavior(event_id=envelope.event_id, event=event, sent_at=envelope.time)


def record_placed_order(envelope: Envelope) -> RecordPlacedOrder:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPlaced)
    return RecordPlacedOrder(
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        currency=msg.currency,
        total_minor=msg.total_minor,
        placed_at=_time(msg, "placed_at"),
        lines=_lines(msg.lines),
    )


def learn_from_paid_order(envelope: Envelope) -> LearnFromPaidOrder:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderPaid)
    if not msg.order_id or not msg.customer_id:
        raise PoisonEvent(f"OrderPaid {envelope.event_id} has no order or customer id")
    return LearnFromPaidOrder(
        event_id=envelope.event_id,
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        currency=msg.currency,
        total_minor=msg.total_minor,
        paid_at=_time(msg, "paid_at"),
        lines=_lines(msg.lines),
        sent_at=envelope.time,
    )


def learn_from_imported_order(envelope: Envelope) -> LearnFromImportedOrder:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderImported)
    if not msg.order_id or not msg.customer_id:
        raise PoisonEvent(f"OrderImported {envelope.event_id} has no order or customer id")
    return LearnFromImportedOrder(
        event_id=envelope.event_id,
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        currency=msg.currency,
        total_minor=msg.total_minor,
        ordered_at=_time(msg, "ordered_at") or envelope.time,
        lines=_lines(msg.lines),
        sent_at=envelope.time,
    )


def take_back_cancelled_order(envelope: Envelope) -> TakeBackCancelledOrder:
    msg = envelope.message
    assert isinstance(msg, order_events.OrderCancelled)
    return TakeBackCancelledOrder(order_id=msg.order_id)


def update_catalog_item(envelope: Envelope) -> UpdateCatalogItem:
    msg = envelope.message
    assert isinstance(msg, inventory_events.SkuUpserted)
    return UpdateCatalogItem(
        sku=msg.sku,
        title=msg.title,
        category=msg.category,
        brand=msg.brand,
        status=msg.status,
        updated_at=_time(msg, "updated_at"),
    )


def update_stock_level(envelope: Envelope) -> UpdateStockLevel:
    msg = envelope.message
    assert isinstance(msg, inventory_events.StockLevelChanged)
    return UpdateStockLevel(
        sku=msg.sku, available=msg.available, occurred_at=_time(msg, "occurred_at")
    )


def behavior_handlers(bus: Bus) -> Mapping[str, EventHandler]:
    return {rec_events.BehaviorRecorded.DESCRIPTOR.full_name: on_event(bus, learn_from_behavior)}


def domain_handlers(bus: Bus) -> Mapping[str, EventHandler]:
    return {
        order_events.OrderPlaced.DESCRIPTOR.full_name: on_event(bus, record_placed_order),
        order_events.OrderPaid.DESCRIPTOR.full_name: on_event(bus, learn_from_paid_order),
        order_events.OrderCancelled.DESCRIPTOR.full_name: on_event(bus, take_back_cancelled_order),
        order_events.OrderImported.DESCRIPTOR.full_name: on_event(bus, learn_from_imported_order),
        inventory_events.SkuUpserted.DESCRIPTOR.full_name: on_event(bus, update_catalog_item),
        inventory_events.StockLevelChanged.DESCRIPTOR.full_name: on_event(bus, update_stock_level),
    }


#: Behaviour has its own consumer group (ecomops-recommendation-behavior), so that a burst of
#: storefront traffic never delays orders and stock changes (ecomops-recommendation).
SUBSCRIPTIONS = (
    Subscription([BEHAVIOR_TOPIC], behavior_handlers, name="behavior"),
    Subscription([ORDER_TOPIC, INVENTORY_TOPIC], domain_handlers),
)
