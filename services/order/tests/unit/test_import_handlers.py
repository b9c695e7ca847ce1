"""The history import through the bus on fakes: validation of the whole batch, idempotency per
order id, conflicts, dry runs, the OrderImported events and the KPIs counting imported orders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.errors import Forbidden, Unprocessable
from order_service.domain.history import ImportedLine, ImportedOrder
from order_service.domain.models import OrderStatus
from order_service.service_layer.imports import ImportOrders
from order_service.service_layer.kpis import GetOrderKpis
from order_service.service_layer.orders import GetOrder

from .handler_support import OPS, Harness, customer, harness


@pytest.fixture
def h(world: Any) -> Harness:
    return harness(world)


def order(h: Harness, oid: str, *, days_ago: int = 3, **over: Any) -> ImportedOrder:
    fields: dict[str, Any] = {
        "order_id": oid,
        "customer_id": "c-1",
        "currency": "EUR",
        "ordered_at": h.clock.now - timedelta(days=days_ago),
        "lines": (ImportedLine("A", 2, 500), ImportedLine("B", 1, 250)),
    }
    fields.update(over)
    return ImportedOrder(**fields)


async def test_imported_orders_are_delivered_history_with_one_event_each(h: Harness) -> None:
    result = await h.bus.handle(
        ImportOrders(orders=(order(h, "h-1"), order(h, "h-2")), import_id="run-1"), OPS
    )
    assert (result.imported, result.already_imported, result.conflicts) == (2, 0, [])
    record = h.uow.tables.orders["h-1"]
    assert record.order.status is OrderStatus.DELIVERED
    assert record.paid_at == record.order.placed_at == h.clock.now - timedelta(days=3)
    assert record.risk_decision == "imported" and record.payment_id is None
    view = await h.bus.handle(GetOrder(order_id="h-1"), OPS)
    assert view.status == "delivered" and view.total_minor == 1250
    events = h.uow.events_of(order_events.OrderImported)
    assert sorted(e.order_id for e in events) == ["h-1", "h-2"]
    assert events[0].total_minor == 1250 and events[0].import_id == "run-1"
    # No live-order event: nothing reserves stock, charges or asks risk.
    assert not h.uow.events_of(order_events.OrderPlaced)
    assert not h.uow.events_of(order_events.OrderPaid)


async def test_a_rerun_skips_what_is_stored_and_publishes_nothing_again(h: Harness) -> None:
    await h.bus.handle(ImportOrders(orders=(order(h, "h-1"),)), OPS)
    again = await h.bus.handle(ImportOrders(orders=(order(h, "h-1"), order(h, "h-3"))), OPS)
    assert (again.imported, again.already_imported) == (1, 1)
    assert sorted(e.order_id for e in h.uow.events_of(order_events.OrderImported)) == [
        "h-1",
        "h-3",
    ]


async def test_an_id_imported_with_other_facts_is_a_conflict_and_nothing_is_stored(
    h: Harness,
) -> None:
    await h.bus.handle(ImportOrders(orders=(order(h, "h-1"),)), OPS)
    clash = await h.bus.handle(
        ImportOrders(orders=(order(h, "h-1", customer_id="c-9"), order(h, "h-4"))), OPS
    )
    assert clash.imported == 0 and [c.order_id for c in clash.conflicts] == ["h-1"]
    assert "h-4" not in h.uow.tables.orders


async def test_a_dry_run_stores_nothing(h: Harness) -> None:
    dry = await h.bus.handle(ImportOrders(orders=(order(h, "h-5"),), dry_run=True), OPS)
    assert (dry.dry_run, dry.to_import, dry.imported) == (True, 1, 0)
    assert "h-5" not in h.uow.tables.orders
    assert not h.uow.events_of(order_events.OrderImported)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"currency": "eur"}, "currency"),
        ({"order_id": "has space"}, "order_id"),
        ({"lines": ()}, "lines"),
        ({"lines": (ImportedLine("A", 0, 1),)}, "quantity"),
        ({"lines": (ImportedLine("A", 1, -1),)}, "unit_price_minor"),
        ({"lines": (ImportedLine("A", 1, 1), ImportedLine("A", 2, 1))}, "sku"),
        ({"days_ago": -2}, "ordered_at"),
        ({"ordered_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))}, "ordered_at"),
    ],
)
async def test_one_bad_order_refuses_the_whole_batch(
    h: Harness, over: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unprocessable) as err:
        await h.bus.handle(ImportOrders(orders=(order(h, "ok-1"), order(h, "bad", **over))), OPS)
    assert err.value.extra["errors"][0]["order_index"] == 1
    assert err.value.extra["errors"][0]["field"] == field
    assert not h.uow.tables.orders


async def test_only_ops_import(h: Harness) -> None:
    with pytest.raises(Forbidden):
        await h.bus.handle(ImportOrders(orders=(order(h, "h-6"),)), customer("c-1"))


async def test_order_kpis_count_imported_history(h: Harness) -> None:
    await h.bus.handle(ImportOrders(orders=(order(h, "h-7"), order(h, "h-8", days_ago=5))), OPS)
    kpis = await h.bus.handle(GetOrderKpis(), OPS)
    assert (kpis.orders, kpis.paid_orders) == (2, 2)
    assert kpis.gmv[0].amount_minor == 2500
    assert kpis.repurchase_rate == "1.0000"
