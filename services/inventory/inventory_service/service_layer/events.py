"""Domain facts → the protobuf events inventory publishes (its outbox topic, named after the
package of ``ecomops/inventory/v1/events.proto``). Handlers record them with ``uow.add_event``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ecomops.inventory.v1 import events_pb2
from ecomops_platform.timestamps import to_timestamp

from ..domain.models import Allocation, LedgerEntry, Sku, StockLevel


def allocations_pb(allocs: Sequence[Allocation]) -> list[events_pb2.Allocation]:
    return [
        events_pb2.Allocation(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity) for a in allocs
    ]


def sku_upserted(sku: Sku) -> events_pb2.SkuUpserted:
    return events_pb2.SkuUpserted(
        sku=sku.sku,
        title=sku.title,
        category=sku.category,
        brand=sku.brand or "",
        status=sku.status.value,
        attributes=sku.attributes,
        lead_time_days=sku.lead_time_days or 0,
        updated_at=to_timestamp(sku.updated_at),
    )


def stock_adjusted(entry: LedgerEntry) -> events_pb2.StockAdjusted:
    return events_pb2.StockAdjusted(
        entry_id=entry.entry_id,
        sku=entry.sku,
        warehouse=entry.warehouse,
        delta=entry.delta,
        reason=entry.reason,
        reference=entry.reference or "",
        on_hand_after=entry.on_hand_after,
        occurred_at=to_timestamp(entry.occurred_at),
    )


def stock_reserved(
    reservation_id: str, allocs: Sequence[Allocation], expires_at: datetime
) -> events_pb2.StockReserved:
    return events_pb2.StockReserved(
        reservation_id=reservation_id,
        allocations=allocations_pb(allocs),
        expires_at=to_timestamp(expires_at),
    )


def stock_committed(
    reservation_id: str, allocs: Sequence[Allocation], at: datetime
) -> events_pb2.StockCommitted:
    return events_pb2.StockCommitted(
        reservation_id=reservation_id,
        allocations=allocations_pb(allocs),
        committed_at=to_timestamp(at),
    )


def stock_released(
    reservation_id: str, allocs: Sequence[Allocation], reason: str, at: datetime
) -> events_pb2.StockReleased:
    return events_pb2.StockReleased(
        reservation_id=reservation_id,
        allocations=allocations_pb(allocs),
        reason=reason,
        released_at=to_timestamp(at),
    )


def stock_level_changed(level: StockLevel, at: datetime) -> events_pb2.StockLevelChanged:
    return events_pb2.StockLevelChanged(
        sku=level.sku,
        available=level.available,
        on_hand=level.on_hand,
        reserved=level.reserved,
        occurred_at=to_timestamp(at),
    )


def low_stock(
    sku: str, warehouse: str, available: int, rop: int, suggested: int, at: datetime
) -> events_pb2.LowStock:
    return events_pb2.LowStock(
        sku=sku,
        warehouse=warehouse,
        available=available,
        reorder_point=rop,
        suggested_order_quantity=suggested,
        occurred_at=to_timestamp(at),
    )
