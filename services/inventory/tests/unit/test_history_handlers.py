"""OrderImported on the in-memory unit of work: demand at the SKU's home warehouse and revenue on
the day ordered, no stock moved, no reservation; only the service itself may send it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecomops_platform.errors import Forbidden
from inventory_service.service_layer.fulfilment import PaidLine
from inventory_service.service_layer.history import RecordImportedSales

from .test_inventory_handlers import OPS, World

ORDERED = datetime(2026, 9, 14, 18, 30, tzinfo=UTC)


def imported(*lines: PaidLine) -> RecordImportedSales:
    return RecordImportedSales(order_id="h-1", lines=lines, currency="EUR", ordered_at=ORDERED)


async def test_imported_sales_join_demand_and_revenue_without_moving_stock() -> None:
    w = World()
    # "wh-a" comes first (same priority, code order) but holds nothing of sku-2; "wh-b" does.
    await w.shop({"wh-a": 5}, sku="sku-1")
    await w.shop({"wh-b": 7}, sku="sku-2")
    before = dict(w.uow.store.stock)
    await w.send(imported(PaidLine("sku-1", 2, 3000), PaidLine("sku-2", 3, 900)), w.bus.system)
    day = ORDERED.date()
    assert w.uow.store.demand == {("sku-1", "wh-a", day): 2, ("sku-2", "wh-b", day): 3}
    assert w.uow.store.revenue == {("sku-1", day, "EUR"): 3000, ("sku-2", day, "EUR"): 900}
    assert {k: (v.on_hand, v.reserved) for k, v in w.uow.store.stock.items()} == {
        k: (v.on_hand, v.reserved) for k, v in before.items()
    }
    assert not w.uow.store.reservations


async def test_a_sku_unknown_to_inventory_counts_at_the_first_warehouse() -> None:
    w = World()
    await w.shop({"wh-a": 1}, sku="sku-1")
    await w.send(imported(PaidLine("gone-9", 1, 500)), w.bus.system)
    assert w.uow.store.demand == {("gone-9", "wh-a", ORDERED.date()): 1}


async def test_without_any_warehouse_only_revenue_is_kept() -> None:
    w = World()
    await w.send(imported(PaidLine("sku-1", 1, 500)), w.bus.system)
    assert w.uow.store.demand == {} and sum(w.uow.store.revenue.values()) == 500


async def test_only_the_service_itself_records_imported_sales() -> None:
    with pytest.raises(Forbidden):
        await World().send(imported(PaidLine("sku-1", 1, 1)), OPS)
