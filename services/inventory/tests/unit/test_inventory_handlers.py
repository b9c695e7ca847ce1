"""The inventory handlers through the bus, on the in-memory unit of work (no PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecomops.inventory.v1 import events_pb2 as ev
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from inventory_service.bootstrap import SPEC
from inventory_service.domain.models import AdjustmentReason, Line, ReservationStatus, SkuStatus
from inventory_service.service_layer.catalog import GetSku, ListSkus, UpsertSku, UpsertWarehouse
from inventory_service.service_layer.fulfilment import (
    CommitOrderStock,
    PaidLine,
    ReleaseOrderStock,
    RestockReturn,
    ReturnedLine,
)
from inventory_service.service_layer.planning import (
    GetAbcClassification,
    GetInventoryKpis,
    ListReplenishmentSuggestions,
    SnapshotLevels,
)
from inventory_service.service_layer.ports import Deps
from inventory_service.service_layer.reservations import (
    CommitReservation,
    ExpireReservations,
    GetReservation,
    ReleaseReservation,
    ReserveStock,
)
from inventory_service.service_layer.stock import AdjustStock, GetAvailability, GetStock
from inventory_service.settings import InventorySettings

from .fakes import FakeInventoryUnitOfWork

OPS = Caller(subject="ops-1", role=Role.OPS)
SVC = Caller(subject="order", role=Role.SERVICE)
CUSTOMER = Caller(subject="c-1", role=Role.CUSTOMER)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, **settings: Any) -> None:
        self.uow = FakeInventoryUnitOfWork()
        self.clock = Clock()
        self.settings = InventorySettings(
            database_url="postgresql+asyncpg://unit:unit@localhost/unit", **settings
        )
        self.bus: MessageBus[Any, Deps] = MessageBus(
            service="inventory",
            uow=lambda: self.uow,
            deps=Deps(settings=self.settings, clock=self.clock),
            handlers=SPEC.handlers,
        )
        self.keys = 0

    async def send(self, message: Any, caller: Caller = OPS) -> Any:
        return await self.bus.handle(message, caller)

    async def adjust(self, sku: str, wh: str, delta: int) -> Any:
        self.keys += 1
        return await self.bus.handle(
            AdjustStock(sku=sku, warehouse=wh, delta=delta, reason=AdjustmentReason.RECEIPT),
            OPS,
            idempotency_key=f"k{self.keys}",
        )

    async def shop(self, stock: dict[str, int], sku: str = "sku-1") -> str:
        await self.send(UpsertSku(sku=sku, title="T", category="c", status=SkuStatus.ACTIVE))
        for priority, (wh, units) in enumerate(stock.items()):
            await self.send(UpsertWarehouse(code=wh, name=wh, region="eu", priority=priority))
            await self.adjust(sku, wh, units)
        return sku

    def level(self, sku: str, wh: str) -> tuple[int, int]:
        row = self.uow.store.stock[(sku, wh)]
        return row.on_hand, row.reserved


async def test_upsert_sku_creates_then_updates_and_publishes() -> None:
    w = World()
    first = await w.send(UpsertSku(sku="a-1", title="One", category="c", status=SkuStatus.ACTIVE))
    again = await w.send(
        UpsertSku(sku="a-1", title="Two", category="c", status=SkuStatus.DISCONTINUED)
    )
    assert (first.created, again.created) == (True, False)
    assert (await w.send(GetSku(sku="a-1"), CUSTOMER)).title == "Two"
    assert [e.title for e in w.uow.events_of(ev.SkuUpserted)] == ["One", "Two"]
    with pytest.raises(Forbidden):
        await w.send(UpsertSku(sku="a-2", title="x", category="c", status=SkuStatus.ACTIVE), SVC)
    with pytest.raises(NotFound):
        await w.send(GetSku(sku="missing"))
    with pytest.raises(Unprocessable):
        await w.send(UpsertSku(sku="bad id!", title="x", category="c", status=SkuStatus.ACTIVE))


async def test_list_skus_pages_by_id() -> None:
    w = World()
    for sku in ("b", "a", "c"):
        await w.send(UpsertSku(sku=sku, title=sku, category="c", status=SkuStatus.ACTIVE))
    page = await w.send(ListSkus(limit=2))
    assert ([x.sku for x in page.items], page.more) == (["a", "b"], True)
    rest = await w.send(ListSkus(limit=2, after="b"))
    assert ([x.sku for x in rest.items], rest.more) == (["c"], False)


async def test_adjustment_needs_a_key_replays_it_and_never_goes_below_reserved() -> None:
    w = World()
    sku = await w.shop({"wh-1": 5})
    with pytest.raises(BadRequest):
        await w.bus.handle(
            AdjustStock(sku=sku, warehouse="wh-1", delta=1, reason=AdjustmentReason.COUNT), OPS
        )
    cmd = AdjustStock(sku=sku, warehouse="wh-1", delta=3, reason=AdjustmentReason.COUNT)
    first = await w.bus.execute(cmd, OPS, idempotency_key="same")
    again = await w.bus.execute(cmd, OPS, idempotency_key="same")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.result == first.result and first.result.on_hand_after == 8
    assert w.level(sku, "wh-1") == (8, 0)
    await w.send(ReserveStock(reservation_id="r-1", lines=(Line(sku, 6),)), SVC)
    with pytest.raises(Conflict) as refused:
        await w.adjust(sku, "wh-1", -3)
    assert refused.value.code == "insufficient-stock"
    assert w.level(sku, "wh-1") == (8, 6)
    assert sum(e.delta for e in w.uow.store.ledger) == 8


async def test_reservation_is_all_or_nothing_and_idempotent_by_id() -> None:
    w = World()
    a = await w.shop({"wh-1": 3, "wh-2": 4}, sku="a")
    b = await w.shop({"wh-1": 1}, sku="b")
    with pytest.raises(Conflict) as short:
        await w.send(ReserveStock(reservation_id="r-1", lines=(Line(a, 2), Line(b, 2))), SVC)
    assert short.value.extra["shortages"] == [{"sku": b, "requested": 2, "available": 1}]
    assert "r-1" not in w.uow.store.reservations
    assert (w.level(a, "wh-1"), w.level(b, "wh-1")) == ((3, 0), (1, 0))

    held = await w.send(ReserveStock(reservation_id="r-2", lines=(Line(a, 5),)), SVC)
    assert held.created
    assert {(x.warehouse, x.quantity) for x in held.reservation.allocations} == {
        ("wh-1", 3),
        ("wh-2", 2),
    }
    assert w.level(a, "wh-1") == (3, 3) and w.level(a, "wh-2") == (4, 2)
    again = await w.send(ReserveStock(reservation_id="r-2", lines=(Line(a, 5),)), SVC)
    assert not again.created and w.level(a, "wh-2") == (4, 2)
    with pytest.raises(Conflict) as reused:
        await w.send(ReserveStock(reservation_id="r-2", lines=(Line(a, 1),)), SVC)
    assert reused.value.code == "reservation-id-reused"
    [reserved] = w.uow.events_of(ev.StockReserved)
    assert reserved.reservation_id == "r-2"


async def test_commit_ships_once_and_release_after_commit_is_refused() -> None:
    w = World()
    sku = await w.shop({"wh-1": 10})
    await w.send(ReserveStock(reservation_id="r-1", lines=(Line(sku, 4),)), SVC)
    done = await w.send(CommitReservation(reservation_id="r-1"), SVC)
    again = await w.send(CommitReservation(reservation_id="r-1"), SVC)
    assert done.status is again.status is ReservationStatus.COMMITTED
    assert w.level(sku, "wh-1") == (6, 0)
    assert [(e.delta, e.reason) for e in w.uow.store.ledger][-1] == (-4, "commit")
    assert len(w.uow.events_of(ev.StockCommitted)) == 1
    assert sum(w.uow.store.demand.values()) == 4
    with pytest.raises(Conflict):
        await w.send(ReleaseReservation(reservation_id="r-1"), SVC)
    with pytest.raises(NotFound):
        await w.send(GetReservation(reservation_id="r-1"), CUSTOMER)
    assert (await w.send(GetReservation(reservation_id="r-1"))).status is done.status


async def test_expired_holds_are_released_and_cannot_be_committed() -> None:
    w = World()
    sku = await w.shop({"wh-1": 5})
    await w.send(ReserveStock(reservation_id="r-1", lines=(Line(sku, 5),), ttl_seconds=60), SVC)
    assert await w.send(ExpireReservations(), w.bus.system) == 0
    w.clock.now += timedelta(seconds=61)
    with pytest.raises(Conflict) as late:
        await w.send(CommitReservation(reservation_id="r-1"), SVC)
    assert late.value.code == "reservation-expired"
    assert await w.send(ExpireReservations(), w.bus.system) == 1
    assert w.level(sku, "wh-1") == (5, 0)
    assert [e.reason for e in w.uow.events_of(ev.StockReleased)] == ["expired"]
    with pytest.raises(Forbidden):
        await w.send(ExpireReservations(), OPS)


async def test_order_events_commit_on_payment_and_restock_a_paid_cancellation_once() -> None:
    w = World()
    sku = await w.shop({"wh-1": 6})
    await w.send(ReserveStock(reservation_id="ord-1", lines=(Line(sku, 4),)), SVC)
    paid = CommitOrderStock(
        order_id="ord-1", lines=(PaidLine(sku, 4, 4000),), currency="EUR", paid_at=w.clock.now
    )
    await w.send(paid, w.bus.system)
    assert w.level(sku, "wh-1") == (2, 0)
    assert sum(w.uow.store.revenue.values()) == 4000
    for _ in range(2):
        await w.send(ReleaseOrderStock(order_id="ord-1", was_paid=True), w.bus.system)
    assert w.level(sku, "wh-1") == (6, 0)
    assert [e.reason for e in w.uow.store.ledger if e.delta > 0][-1] == "cancel"
    # A payment for an unknown hold is consumed (logged), not an error.
    await w.send(
        CommitOrderStock(order_id="nope", lines=(), currency="", paid_at=w.clock.now),
        w.bus.system,
    )


async def test_cancelling_a_held_order_releases_it() -> None:
    w = World()
    sku = await w.shop({"wh-1": 3})
    await w.send(ReserveStock(reservation_id="ord-2", lines=(Line(sku, 3),)), SVC)
    await w.send(ReleaseOrderStock(order_id="ord-2", was_paid=False), w.bus.system)
    assert w.level(sku, "wh-1") == (3, 0)
    assert w.uow.store.reservations["ord-2"].release_reason == "cancelled"


async def test_return_restocks_where_the_units_were_shipped_from_once() -> None:
    w = World()
    sku = await w.shop({"wh-1": 1, "wh-2": 2})
    await w.send(ReserveStock(reservation_id="ord-3", lines=(Line(sku, 3),)), SVC)
    await w.send(CommitReservation(reservation_id="ord-3"), SVC)
    assert (w.level(sku, "wh-1"), w.level(sku, "wh-2")) == ((0, 0), (0, 0))
    ret = RestockReturn(
        return_id="rma-1",
        order_id="ord-3",
        warehouse="",
        lines=(ReturnedLine(sku, 3, True), ReturnedLine("unknown", 1, True)),
    )
    entries = await w.send(ret, w.bus.system)
    assert sorted((e.warehouse, e.delta, e.reason) for e in entries) == [
        ("wh-1", 1, "return"),
        ("wh-2", 2, "return"),
    ]
    assert await w.send(ret, w.bus.system) == []
    assert (w.level(sku, "wh-1"), w.level(sku, "wh-2")) == ((1, 0), (2, 0))


async def test_availability_keeps_the_order_asked_and_hides_discontinued() -> None:
    w = World()
    a = await w.shop({"wh-1": 4}, sku="a")
    await w.send(UpsertSku(sku="d", title="d", category="c", status=SkuStatus.DISCONTINUED))
    found = await w.send(GetAvailability(skus=("zz", a, "d")), CUSTOMER)
    assert [(x.sku, x.available, x.status) for x in found] == [
        ("zz", 0, None),
        (a, 4, SkuStatus.ACTIVE),
        ("d", 0, SkuStatus.DISCONTINUED),
    ]
    assert (await w.send(GetStock(sku=a), CUSTOMER)).available == 4
    with pytest.raises(Unprocessable):
        await w.send(GetAvailability(skus=()))


async def test_planning_reads_abc_suggestions_and_kpis() -> None:
    w = World()
    big = await w.shop({"wh-1": 10}, sku="big")
    small = await w.shop({"wh-1": 10}, sku="small")
    for sku, revenue in ((big, 9000), (small, 1000)):
        await w.send(
            CommitOrderStock(
                order_id=f"o-{sku}",
                lines=(PaidLine(sku, 1, revenue),),
                currency="EUR",
                paid_at=w.clock.now - timedelta(days=1),
            ),
            w.bus.system,
        )
    abc = await w.send(GetAbcClassification())
    assert abc.currency == "EUR" and [(e.sku, e.abc_class.value) for e in abc.items] == [
        (big, "A"),  # 90% of the revenue
        (small, "B"),  # the next 10%: above the A threshold (80%), within B (95%)
    ]
    with pytest.raises(Forbidden):
        await w.send(GetAbcClassification(), CUSTOMER)
    page = await w.send(ListReplenishmentSuggestions(limit=1))
    assert page.more and page.items[0].suggestion.sku == big
    assert page.items[0].suggestion.reason.startswith("no forecast yet")
    assert page.items[0].computed_at is None
    assert await w.send(SnapshotLevels(), w.bus.system) == 2
    kpis = await w.send(GetInventoryKpis())
    assert (kpis.sku_days, kpis.stockout_sku_days, kpis.units_sold) == (2, 0, 0)
    assert kpis.to_date == w.clock.now.date()
    with pytest.raises(Unprocessable):
        await w.send(GetInventoryKpis(from_date="2026-02-02", to_date="2026-01-01"))
