"""Kafka event handlers: decode, call one handler (inside the consumer's transaction)."""

from __future__ import annotations

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.events import Envelope
from ecomops_platform.runtime import Service

from ..adapters.events import PB_TO_BEHAVIOR
from ..domain.models import BehaviorEvent, InteractionKind, ModelParams
from ..service_layer import handlers

BEHAVIOR_TOPIC = "ecomops.behavior.v1"
ORDER_TOPIC = "ecomops.order.v1"
INVENTORY_TOPIC = "ecomops.inventory.v1"


class PoisonEvent(ValueError):
    """An event that can never be applied (it goes to the dead-letter topic after retries)."""


def register(service: Service, params: ModelParams) -> None:
    async def on_behavior(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, rec_events.BehaviorRecorded)
        if msg.type not in PB_TO_BEHAVIOR or not msg.sku:
            raise PoisonEvent(f"behaviour event {envelope.event_id} has no type or SKU")
        if not msg.customer_id and not msg.session_id:
            raise PoisonEvent(f"behaviour event {envelope.event_id} has no customer or session")
        kind = PB_TO_BEHAVIOR[msg.type]
        tz = utcnow().tzinfo
        event = BehaviorEvent(
            type=kind,
            sku=msg.sku,
            customer_id=msg.customer_id or None,
            session_id=msg.session_id or None,
            occurred_at=msg.occurred_at.ToDatetime(tzinfo=tz)
            if msg.HasField("occurred_at")
            else envelope.time,
        )
        await handlers.apply_behavior(
            uow, envelope.event_id, event, InteractionKind(kind.value), params, envelope.time
        )

    async def on_order_placed(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.OrderPlaced)
        await handlers.apply_order_placed(uow, msg)

    async def on_order_paid(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.OrderPaid)
        if not msg.order_id or not msg.customer_id:
            raise PoisonEvent(f"OrderPaid {envelope.event_id} has no order or customer id")
        await handlers.apply_order_paid(uow, envelope.event_id, msg, params, envelope.time)

    async def on_order_cancelled(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, order_events.OrderCancelled)
        await handlers.apply_order_cancelled(uow, msg, params)

    async def on_sku_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, inventory_events.SkuUpserted)
        await handlers.apply_sku_upserted(uow, msg)

    async def on_stock_level(uow: UnitOfWork, envelope: Envelope) -> None:
        msg = envelope.message
        assert isinstance(msg, inventory_events.StockLevelChanged)
        await handlers.apply_stock_level(uow, msg)

    # Behaviour has its own consumer group (ecomops-recommendation-behavior), so that a burst of
    # storefront traffic never delays orders and stock changes (ecomops-recommendation).
    service.subscribe(
        [BEHAVIOR_TOPIC],
        {"ecomops.recommendation.v1.BehaviorRecorded": on_behavior},
        name="behavior",
    )
    service.subscribe(
        [ORDER_TOPIC, INVENTORY_TOPIC],
        {
            "ecomops.order.v1.OrderPlaced": on_order_placed,
            "ecomops.order.v1.OrderPaid": on_order_paid,
            "ecomops.order.v1.OrderCancelled": on_order_cancelled,
            "ecomops.inventory.v1.SkuUpserted": on_sku_upserted,
            "ecomops.inventory.v1.StockLevelChanged": on_stock_level,
        },
    )
