"""Inbound orders through the bus on the in-memory unit of work: units on order count in the
replenishment suggestions; receiving puts them on hand once; cancelling stops expecting them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ecomops.inventory.v1 import events_pb2 as ev
from ecomops_platform.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from inventory_service.domain.inbound import InboundStatus
from inventory_service.domain.models import SkuStatus
from inventory_service.domain.planning import PlanningInputs, SeriesPlan, suggest
from inventory_service.service_layer.catalog import UpsertSku
from inventory_service.service_layer.inbound import (
    CancelInboundOrder,
    GetInboundOrder,
    ListInboundOrders,
    PlaceInboundOrder,
    ReceiveInboundOrder,
    cursor_position,
    page_cursor,
)
from inventory_service.service_layer.planning import ListReplenishmentSuggestions

from .test_inventory_handlers import CUSTOMER, OPS, World


async def _place(w: World, sku: str, wh: str, quantity: int, **extra: str) -> str:
    w.keys += 1
    placed = await w.bus.handle(
        PlaceInboundOrder(sku=sku, warehouse=wh, quantity=quantity, **extra),
        OPS,
        idempotency_key=f"in{w.keys}",
    )
    return str(placed.inbound_id)


async def _receive(w: World, inbound_id: str, quantity: int) -> object:
    w.keys += 1
    return await w.bus.handle(
        ReceiveInboundOrder(inbound_id=inbound_id, quantity=quantity),
        OPS,
        idempotency_key=f"rc{w.keys}",
    )


def _inputs(available: int, on_order: int) -> PlanningInputs:
    return PlanningInputs(
        sku="s",
        warehouse="w",
        on_hand=available,
        available=available,
        daily_demand=10.0,
        lead_time_demand=70.0,
        sigma_daily=0.0,
        lead_time_days=7,
        abc=None,
        on_order=on_order,
    )


def _suggest(available: int, on_order: int) -> tuple[int, str]:
    s = suggest(
        _inputs(available, on_order),
        service_level=Decimal("0.95"),
        jit_cover_days=7,
        standard_cover_days=30,
        batch_cover_days=60,
        ordering_cost=None,
        holding_cost=None,
    )
    return s.suggested_order_quantity, s.reason


def test_units_on_order_count_in_the_position_compared_with_the_reorder_point() -> None:
    # reorder point 70 (no safety stock at sigma 0), one cycle of 30 days = 300 units
    assert _suggest(20, 0)[0] == 70 + 300 - 20
    qty, reason = _suggest(20, 30)
    assert qty == 70 + 300 - 50 and "on order 30" in reason
    # the purchase already placed lifts the position above the reorder point: no second order
    qty, reason = _suggest(20, 60)
    assert qty == 0 and "above the reorder point" in reason


async def test_suggestions_subtract_what_is_on_order_until_it_is_received() -> None:
    w = World()
    sku = await w.shop({"wh-1": 20})
    plan = SeriesPlan(sku, "wh-1", 10.0, 70.0, 0.0, 7, "test", 90)
    w.uow.store.forecasts[(sku, "wh-1")] = (plan, w.clock.now)

    async def suggestion() -> tuple[int, int]:
        page = await w.send(ListReplenishmentSuggestions(limit=10))
        s = page.items[0].suggestion
        return s.suggested_order_quantity, s.on_order

    # no revenue: class C, batch cover of 60 days; order up to 70 + 600
    top = 70 + 600
    assert await suggestion() == (top - 20, 0)
    inbound_id = await _place(w, sku, "wh-1", 40, expected_on="2026-11-09", reference="PO-1")
    assert await suggestion() == (top - 60, 40)
    await _receive(w, inbound_id, 30)
    # on hand 50, still 10 on order: a receipt leaves the position as it was
    assert await suggestion() == (top - 60, 10)
    assert w.level(sku, "wh-1") == (50, 0)
    await w.send(CancelInboundOrder(inbound_id=inbound_id))
    assert await suggestion() == (top - 50, 0)
    await _place(w, sku, "wh-1", 30)
    assert await suggestion() == (0, 30)  # position 80 is above the reorder point


async def test_a_receipt_goes_on_hand_once_with_its_ledger_entry_and_events() -> None:
    w = World()
    sku = await w.shop({"wh-1": 5})
    inbound_id = await _place(w, sku, "wh-1", 10)
    w.keys += 1
    receive = ReceiveInboundOrder(inbound_id=inbound_id, quantity=4)
    first = await w.bus.execute(receive, OPS, idempotency_key="same")
    again = await w.bus.execute(receive, OPS, idempotency_key="same")
    assert again.replayed and again.result.entry.entry_id == first.result.entry.entry_id
    assert w.level(sku, "wh-1") == (9, 0)
    receipt = first.result
    assert (receipt.entry.reason, receipt.entry.reference) == ("receipt", f"inbound:{inbound_id}")
    assert (receipt.inbound.received_quantity, receipt.inbound.on_order) == (4, 6)
    adjusted = w.uow.events_of(ev.StockAdjusted)
    assert [e.delta for e in adjusted][-1] == 4
    with pytest.raises(Conflict) as over:
        await _receive(w, inbound_id, 7)
    assert over.value.code == "over-receipt"
    assert w.level(sku, "wh-1") == (9, 0)
    done = await _receive(w, inbound_id, 6)
    assert done.inbound.status is InboundStatus.RECEIVED  # type: ignore[attr-defined]
    with pytest.raises(Conflict):
        await _receive(w, inbound_id, 1)
    with pytest.raises(Conflict):
        await w.send(CancelInboundOrder(inbound_id=inbound_id))
    assert w.level(sku, "wh-1") == (15, 0)


async def test_cancelling_keeps_what_arrived_and_is_repeatable() -> None:
    w = World()
    sku = await w.shop({"wh-1": 1})
    inbound_id = await _place(w, sku, "wh-1", 10)
    await _receive(w, inbound_id, 3)
    cancelled = await w.send(CancelInboundOrder(inbound_id=inbound_id))
    assert (cancelled.status, cancelled.received_quantity, cancelled.on_order) == (
        InboundStatus.CANCELLED,
        3,
        0,
    )
    assert await w.send(CancelInboundOrder(inbound_id=inbound_id)) == cancelled
    with pytest.raises(Conflict):
        await _receive(w, inbound_id, 1)
    assert w.level(sku, "wh-1") == (4, 0)
    with pytest.raises(NotFound):
        await w.send(CancelInboundOrder(inbound_id="in-missing"))


async def test_bad_inbound_orders_are_refused_and_write_nothing() -> None:
    w = World()
    sku = await w.shop({"wh-1": 1})
    bad: dict[str, Any]
    for bad in (
        {"sku": "nope", "warehouse": "wh-1", "quantity": 1},
        {"sku": sku, "warehouse": "nope", "quantity": 1},
        {"sku": sku, "warehouse": "wh-1", "quantity": 0},
        {"sku": sku, "warehouse": "wh-1", "quantity": 1, "expected_on": "2026-02-30"},
    ):
        with pytest.raises(Unprocessable):
            w.keys += 1
            await w.bus.handle(PlaceInboundOrder(**bad), OPS, idempotency_key=f"bad{w.keys}")
    with pytest.raises(BadRequest):  # no Idempotency-Key
        await w.send(PlaceInboundOrder(sku=sku, warehouse="wh-1", quantity=1))
    with pytest.raises(Forbidden):
        await w.bus.handle(
            PlaceInboundOrder(sku=sku, warehouse="wh-1", quantity=1), CUSTOMER, idempotency_key="c"
        )
    await w.send(UpsertSku(sku=sku, title="T", category="c", status=SkuStatus.DISCONTINUED))
    with pytest.raises(Unprocessable) as gone:
        await _place(w, sku, "wh-1", 1)
    assert gone.value.code == "discontinued-sku"
    assert w.uow.store.inbound == {}


async def test_inbound_orders_list_newest_first_by_filter_and_cursor() -> None:
    w = World()
    sku = await w.shop({"wh-1": 1, "wh-2": 1})
    ids = []
    for wh in ("wh-1", "wh-2", "wh-1"):
        w.clock.now += timedelta(minutes=1)
        ids.append(await _place(w, sku, wh, 5))
    await w.send(CancelInboundOrder(inbound_id=ids[0]))
    first = await w.send(ListInboundOrders(limit=2))
    assert [o.inbound_id for o in first.items] == [ids[2], ids[1]] and first.more
    rest = await w.send(ListInboundOrders(before=cursor_position(page_cursor(first)), limit=2))
    assert [o.inbound_id for o in rest.items] == [ids[0]] and not rest.more
    open_wh1 = await w.send(
        ListInboundOrders(warehouse="wh-1", status=InboundStatus.OPEN, limit=10)
    )
    assert [o.inbound_id for o in open_wh1.items] == [ids[2]]
    assert (await w.send(GetInboundOrder(inbound_id=ids[1]))).quantity == 5
    with pytest.raises(Unprocessable):
        cursor_position("eyJhdCI6ICJub3QgYSBkYXRlIiwgImlkIjogIngifQ")
