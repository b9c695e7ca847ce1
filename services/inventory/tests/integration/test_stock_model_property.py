"""Hypothesis state machine over the real handlers and PostgreSQL: whatever sequence of
adjustments, reservations, commits and releases runs, on_hand = available + reserved, nothing is
ever negative, the ledger sums to on_hand and reserved equals what held reservations hold."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import MessageBus
from ecomops_platform.db import Database
from ecomops_platform.errors import Conflict
from ecomops_testing import unique
from inventory_service.adapters import tables as t
from inventory_service.adapters.unit_of_work import SqlInventoryUnitOfWork
from inventory_service.bootstrap import SPEC
from inventory_service.domain.models import AdjustmentReason, Line, SkuStatus
from inventory_service.service_layer.catalog import UpsertSku, UpsertWarehouse
from inventory_service.service_layer.ports import Deps
from inventory_service.service_layer.reservations import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
)
from inventory_service.service_layer.stock import AdjustStock
from inventory_service.settings import InventorySettings

pytestmark = pytest.mark.integration


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.settings = InventorySettings(database_url=os.environ["INVENTORY_DATABASE_URL"])
        self.db = Database(self.settings.database_url, pool_size=2, max_overflow=0)
        self.sku = unique("prop")
        self.whs = [unique("pw"), unique("pw")]
        self.on_hand = {w: 0 for w in self.whs}
        self.reserved = {w: 0 for w in self.whs}
        self.held: dict[str, dict[str, int]] = {}
        self.closed: set[str] = set()
        self.bus: MessageBus[Any, Deps] = MessageBus(
            service="inventory",
            uow=lambda: SqlInventoryUnitOfWork(self.db, "inventory"),
            deps=Deps(settings=self.settings),
            handlers=SPEC.handlers,
        )
        self.ops = Caller(subject="ops-prop", role=Role.OPS)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def send(self, message: Any, **kwargs: Any) -> Any:
        return self.run(self.bus.handle(message, self.ops, **kwargs))

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    @initialize()
    def setup(self) -> None:
        self.send(UpsertSku(sku=self.sku, title="prop", category="prop", status=SkuStatus.ACTIVE))
        for i, w in enumerate(self.whs):
            self.send(UpsertWarehouse(code=w, name=w, region="r", priority=i))

    @rule(w=st.sampled_from([0, 1]), delta=st.integers(-8, 12).filter(lambda d: d != 0))
    def adjust(self, w: int, delta: int) -> None:
        wh = self.whs[w]
        ok = self.on_hand[wh] + delta >= self.reserved[wh]
        try:
            self.send(
                AdjustStock(
                    sku=self.sku, warehouse=wh, delta=delta, reason=AdjustmentReason.CORRECTION
                ),
                idempotency_key=unique("pk"),
            )
        except Conflict:
            assert not ok
            return
        assert ok
        self.on_hand[wh] += delta

    @rule(qty=st.integers(1, 15))
    def reserve(self, qty: int) -> None:
        available = sum(self.on_hand[w] - self.reserved[w] for w in self.whs)
        rid = unique("pr")
        try:
            reserved = self.send(ReserveStock(reservation_id=rid, lines=(Line(self.sku, qty),)))
            res, created = reserved.reservation, reserved.created
        except Conflict as exc:
            assert available < qty
            assert exc.extra["shortages"] == [
                {"sku": self.sku, "requested": qty, "available": available}
            ]
            return
        assert created and available >= qty
        self.held[rid] = {}
        for a in res.allocations:
            self.held[rid][a.warehouse] = a.quantity
            self.reserved[a.warehouse] += a.quantity

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        if not self.held:
            return
        rid = data.draw(st.sampled_from(sorted(self.held)))
        self.send(CommitReservation(reservation_id=rid))
        for wh, q in self.held.pop(rid).items():
            self.on_hand[wh] -= q
            self.reserved[wh] -= q
        self.closed.add(rid)
        again = self.send(CommitReservation(reservation_id=rid))  # idempotent
        assert again.status.value == "committed"

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.held:
            return
        rid = data.draw(st.sampled_from(sorted(self.held)))
        self.send(ReleaseReservation(reservation_id=rid))
        for wh, q in self.held.pop(rid).items():
            self.reserved[wh] -= q
        self.closed.add(rid)
        with pytest.raises(Conflict):
            self.send(CommitReservation(reservation_id=rid))

    @invariant()
    def database_agrees_and_invariants_hold(self) -> None:
        async def read() -> tuple[list[Any], int, int]:
            async with self.db.engine.connect() as conn:
                rows = (
                    await conn.execute(sa.select(t.stock).where(t.stock.c.sku == self.sku))
                ).all()
                ledger = await conn.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(t.ledger.c.delta), 0)).where(
                        t.ledger.c.sku == self.sku
                    )
                )
                held = await conn.scalar(
                    sa.select(
                        sa.func.coalesce(sa.func.sum(t.reservation_allocations.c.quantity), 0)
                    )
                    .join(t.reservations)
                    .where(
                        t.reservation_allocations.c.sku == self.sku,
                        t.reservations.c.status == "held",
                    )
                )
            return list(rows), int(ledger or 0), int(held or 0)

        rows, ledger, held = self.run(read())
        on_hand = sum(r.on_hand for r in rows)
        reserved = sum(r.reserved for r in rows)
        for r in rows:
            assert 0 <= r.reserved <= r.on_hand
            assert r.on_hand == self.on_hand[r.warehouse]
            assert r.reserved == self.reserved[r.warehouse]
        assert ledger == on_hand
        assert held == reserved
        assert on_hand - reserved >= 0


StockMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_stock_model_state_machine(inventory_db: str) -> None:
    StockMachine.TestCase().runTest()
