"""Stock rows (conditional writes only) and the append-only stock ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import attrs, driver

from ...domain.models import (
    Allocation,
    Candidate,
    LedgerEntry,
    RowLevel,
    Sku,
    StockLevel,
    WarehouseStock,
)
from .. import tables as t
from .catalog import sku_of

_LEVEL_COLS = (
    t.stock.c.on_hand,
    t.stock.c.reserved,
    t.stock.c.reorder_point,
    t.stock.c.suggested_order_quantity,
)

# One round trip under the row lock: reserve the units if (and only if) that many are
# available, record the allocation, and read the SKU's other warehouses (this transaction's view).
_HOLD_AND_ALLOCATE = """
WITH upd AS (
    UPDATE stock SET reserved = reserved + $1, updated_at = $2
    WHERE sku = $3 AND warehouse = $4 AND on_hand - reserved >= $1
    RETURNING on_hand, reserved, reorder_point, suggested_order_quantity
), ins AS (
    INSERT INTO reservation_allocations (reservation_id, sku, warehouse, quantity)
    SELECT $5, $3, $4, $1 FROM upd
    ON CONFLICT (reservation_id, sku, warehouse)
    DO UPDATE SET quantity = reservation_allocations.quantity + EXCLUDED.quantity
)
SELECT upd.on_hand, upd.reserved, upd.reorder_point, upd.suggested_order_quantity,
       COALESCE((SELECT json_agg(json_build_array(warehouse, on_hand, reserved))
                 FROM stock WHERE sku = $3 AND warehouse <> $4), '[]'::json) AS others
FROM upd
"""
# The SKUs of a reservation with every warehouse row that could serve them (none: NULLs).
_SKUS_WITH_CANDIDATES = """
SELECT k.sku, k.title, k.category, k.brand, k.attributes, k.status, k.lead_time_days,
       k.created_at, k.updated_at, s.warehouse AS wh, s.on_hand - s.reserved AS available,
       w.region AS wh_region, w.priority AS wh_priority
FROM skus AS k
LEFT JOIN stock AS s ON s.sku = k.sku
LEFT JOIN warehouses AS w ON w.code = s.warehouse
WHERE k.sku = ANY($1::varchar[])
"""
# Hot paths (every reservation runs these) are prepared driver statements
# (``ecomops_platform.db.driver``): no SQLAlchemy compilation or result processing.


def _row(row: Any) -> RowLevel:
    return RowLevel(
        int(row.on_hand),
        int(row.reserved),
        int(row.reorder_point),
        int(row.suggested_order_quantity),
    )


class SqlStockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def candidates(self, skus: Sequence[str]) -> dict[str, list[Candidate]]:
        rows = (
            await self.session.execute(
                sa.select(
                    t.stock.c.sku,
                    t.stock.c.warehouse,
                    (t.stock.c.on_hand - t.stock.c.reserved).label("available"),
                    t.warehouses.c.region,
                    t.warehouses.c.priority,
                )
                .join(t.warehouses, t.warehouses.c.code == t.stock.c.warehouse)
                .where(t.stock.c.sku.in_(list(skus)))
            )
        ).all()
        out: dict[str, list[Candidate]] = {s: [] for s in skus}
        for r in rows:
            out[r.sku].append(Candidate(r.warehouse, int(r.available), r.region, int(r.priority)))
        return out

    async def skus_with_candidates(
        self, skus: Sequence[str]
    ) -> tuple[dict[str, Sku], dict[str, list[Candidate]]]:
        conn = await driver(self.session)
        rows = [attrs(r) for r in await conn.fetch(_SKUS_WITH_CANDIDATES, list(skus))]
        found: dict[str, Sku] = {}
        pools: dict[str, list[Candidate]] = {s: [] for s in skus}
        for r in rows:
            found.setdefault(r.sku, sku_of(r))
            if r.wh is not None:
                pools[r.sku].append(
                    Candidate(r.wh, int(r.available), r.wh_region, int(r.wh_priority))
                )
        return found, pools

    async def hold_and_allocate(
        self, reservation_id: str, alloc: Allocation, now: datetime
    ) -> tuple[RowLevel, StockLevel] | None:
        conn = await driver(self.session)
        record = await conn.fetchrow(
            _HOLD_AND_ALLOCATE, alloc.quantity, now, alloc.sku, alloc.warehouse, reservation_id
        )
        row = None if record is None else attrs(record)
        if row is None:
            return None
        level = _row(row)
        whs = [WarehouseStock(alloc.warehouse, level.on_hand, level.reserved)]
        whs += [WarehouseStock(str(w), int(o), int(r)) for w, o, r in row.others]
        return level, StockLevel(alloc.sku, sorted(whs, key=lambda x: x.warehouse))

    async def unhold(self, alloc: Allocation, now: datetime) -> None:
        result = await self.session.execute(
            sa.update(t.stock)
            .where(
                t.stock.c.sku == alloc.sku,
                t.stock.c.warehouse == alloc.warehouse,
                t.stock.c.reserved >= alloc.quantity,
            )
            .values(reserved=t.stock.c.reserved - alloc.quantity, updated_at=now)
            .returning(t.stock.c.sku)
        )
        if result.first() is None:
            raise RuntimeError(
                f"stock row of {alloc} holds less than the allocation; invariant broken"
            )

    async def ship(self, alloc: Allocation, now: datetime) -> int:
        row = (
            await self.session.execute(
                sa.update(t.stock)
                .where(
                    t.stock.c.sku == alloc.sku,
                    t.stock.c.warehouse == alloc.warehouse,
                    t.stock.c.reserved >= alloc.quantity,
                )
                .values(
                    on_hand=t.stock.c.on_hand - alloc.quantity,
                    reserved=t.stock.c.reserved - alloc.quantity,
                    updated_at=now,
                )
                .returning(t.stock.c.on_hand)
            )
        ).first()
        if row is None:
            raise RuntimeError(
                f"stock row of {alloc} holds less than the allocation; invariant broken"
            )
        return int(row.on_hand)

    async def adjust(self, sku: str, warehouse: str, delta: int, now: datetime) -> RowLevel | None:
        if delta > 0:
            ins = pg_insert(t.stock).values(
                sku=sku, warehouse=warehouse, on_hand=delta, reserved=0, updated_at=now
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[t.stock.c.sku, t.stock.c.warehouse],
                set_={"on_hand": t.stock.c.on_hand + delta, "updated_at": now},
            ).returning(*_LEVEL_COLS)
            return _row((await self.session.execute(stmt)).one())
        found = (
            await self.session.execute(
                sa.update(t.stock)
                .where(
                    t.stock.c.sku == sku,
                    t.stock.c.warehouse == warehouse,
                    t.stock.c.on_hand + delta >= t.stock.c.reserved,
                )
                .values(on_hand=t.stock.c.on_hand + delta, updated_at=now)
                .returning(*_LEVEL_COLS)
            )
        ).first()
        return _row(found) if found is not None else None

    async def row(self, sku: str, warehouse: str) -> tuple[int, int]:
        row = (
            await self.session.execute(
                sa.select(t.stock.c.on_hand, t.stock.c.reserved).where(
                    t.stock.c.sku == sku, t.stock.c.warehouse == warehouse
                )
            )
        ).first()
        return (int(row.on_hand), int(row.reserved)) if row else (0, 0)

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        rows = (
            await self.session.execute(
                sa.select(t.stock)
                .where(t.stock.c.sku.in_(list(skus)))
                .order_by(t.stock.c.sku, t.stock.c.warehouse)
            )
        ).all()
        out = {s: StockLevel(s, []) for s in skus}
        for r in rows:
            out[r.sku].warehouses.append(
                WarehouseStock(r.warehouse, int(r.on_hand), int(r.reserved))
            )
        return out

    async def add_ledger_entry(
        self,
        *,
        sku: str,
        warehouse: str,
        delta: int,
        reason: str,
        reference: str | None,
        on_hand_after: int,
        now: datetime,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            entry_id=str(uuid.uuid4()),
            sku=sku,
            warehouse=warehouse,
            delta=delta,
            reason=reason,
            reference=reference,
            on_hand_after=on_hand_after,
            occurred_at=now,
        )
        await self.session.execute(
            sa.insert(t.ledger).values(
                entry_id=uuid.UUID(entry.entry_id),
                sku=sku,
                warehouse=warehouse,
                delta=delta,
                reason=reason,
                reference=reference,
                on_hand_after=on_hand_after,
                occurred_at=now,
            )
        )
        return entry

    async def ledger(
        self, sku: str, before_id: int | None, limit: int
    ) -> list[tuple[int, LedgerEntry]]:
        q = (
            sa.select(t.ledger)
            .where(t.ledger.c.sku == sku)
            .order_by(t.ledger.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            q = q.where(t.ledger.c.id < before_id)
        rows = (await self.session.execute(q)).all()
        return [
            (
                int(r.id),
                LedgerEntry(
                    entry_id=str(r.entry_id),
                    sku=r.sku,
                    warehouse=r.warehouse,
                    delta=int(r.delta),
                    reason=r.reason,
                    reference=r.reference,
                    on_hand_after=int(r.on_hand_after),
                    occurred_at=r.occurred_at,
                ),
            )
            for r in rows
        ]
