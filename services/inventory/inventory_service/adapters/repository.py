"""SQL of the inventory service. Every stock change is one conditional statement: the row lock
PostgreSQL takes for the UPDATE serialises concurrent writers on a (SKU, warehouse) row, and
the WHERE clause re-checked after the lock decides, so there is no read-then-write window."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import (
    Allocation,
    Candidate,
    LedgerEntry,
    Line,
    Reservation,
    ReservationStatus,
    Sku,
    SkuStatus,
    StockLevel,
    Warehouse,
    WarehouseStock,
)
from . import tables as t

# --- SKUs and warehouses ------------------------------------------------------------------------


def _sku(row: Any) -> Sku:
    return Sku(
        sku=row.sku,
        title=row.title,
        category=row.category,
        brand=row.brand,
        attributes=dict(row.attributes or {}),
        status=SkuStatus(row.status),
        lead_time_days=row.lead_time_days,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def upsert_sku(
    session: AsyncSession, values: dict[str, Any], now: datetime
) -> tuple[Sku, bool]:
    ins = pg_insert(t.skus).values(**values, created_at=now, updated_at=now)
    stmt = ins.on_conflict_do_update(
        index_elements=[t.skus.c.sku],
        set_={k: ins.excluded[k] for k in (*values.keys(), "updated_at") if k != "sku"},
    ).returning(*t.skus.c, sa.literal_column("(xmax = 0)").label("created"))
    row = (await session.execute(stmt)).one()
    return _sku(row), bool(row.created)


async def get_sku(session: AsyncSession, sku: str) -> Sku | None:
    row = (await session.execute(sa.select(t.skus).where(t.skus.c.sku == sku))).first()
    return _sku(row) if row else None


async def get_skus(session: AsyncSession, skus: Sequence[str]) -> dict[str, Sku]:
    rows = (await session.execute(sa.select(t.skus).where(t.skus.c.sku.in_(list(skus))))).all()
    return {r.sku: _sku(r) for r in rows}


async def list_skus(
    session: AsyncSession,
    *,
    category: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Sku]:
    q = sa.select(t.skus).order_by(t.skus.c.sku).limit(limit)
    if category:
        q = q.where(t.skus.c.category == category)
    if status:
        q = q.where(t.skus.c.status == status)
    if after is not None:
        q = q.where(t.skus.c.sku > after)
    return [_sku(r) for r in (await session.execute(q)).all()]


def _warehouse(row: Any) -> Warehouse:
    return Warehouse(code=row.code, name=row.name, region=row.region, priority=row.priority)


async def upsert_warehouse(
    session: AsyncSession, values: dict[str, Any], now: datetime
) -> tuple[Warehouse, bool]:
    ins = pg_insert(t.warehouses).values(**values, created_at=now, updated_at=now)
    stmt = ins.on_conflict_do_update(
        index_elements=[t.warehouses.c.code],
        set_={k: ins.excluded[k] for k in (*values.keys(), "updated_at") if k != "code"},
    ).returning(*t.warehouses.c, sa.literal_column("(xmax = 0)").label("created"))
    row = (await session.execute(stmt)).one()
    return _warehouse(row), bool(row.created)


async def get_warehouse(session: AsyncSession, code: str) -> Warehouse | None:
    row = (
        await session.execute(sa.select(t.warehouses).where(t.warehouses.c.code == code))
    ).first()
    return _warehouse(row) if row else None


async def list_warehouses(session: AsyncSession) -> list[Warehouse]:
    rows = (
        await session.execute(
            sa.select(t.warehouses).order_by(t.warehouses.c.priority, t.warehouses.c.code)
        )
    ).all()
    return [_warehouse(r) for r in rows]


# --- stock ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowLevel:
    """A (SKU, warehouse) stock row after a write, with its planning thresholds."""

    on_hand: int
    reserved: int
    reorder_point: int
    suggested_order_quantity: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


_LEVEL_COLS = (
    t.stock.c.on_hand,
    t.stock.c.reserved,
    t.stock.c.reorder_point,
    t.stock.c.suggested_order_quantity,
)


def _row(row: Any) -> RowLevel:
    return RowLevel(
        int(row.on_hand),
        int(row.reserved),
        int(row.reorder_point),
        int(row.suggested_order_quantity),
    )


async def candidates(session: AsyncSession, skus: Sequence[str]) -> dict[str, list[Candidate]]:
    rows = (
        await session.execute(
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


async def hold(session: AsyncSession, alloc: Allocation, now: datetime) -> RowLevel | None:
    """Reserve units if (and only if) that many are available: (on_hand, reserved, rop) after."""
    row = (
        await session.execute(
            sa.update(t.stock)
            .where(
                t.stock.c.sku == alloc.sku,
                t.stock.c.warehouse == alloc.warehouse,
                t.stock.c.on_hand - t.stock.c.reserved >= alloc.quantity,
            )
            .values(reserved=t.stock.c.reserved + alloc.quantity, updated_at=now)
            .returning(*_LEVEL_COLS)
        )
    ).first()
    return _row(row) if row else None


async def skus_with_candidates(
    session: AsyncSession, skus: Sequence[str]
) -> tuple[dict[str, Sku], dict[str, list[Candidate]]]:
    """The SKUs and where they are stocked, in one round trip (the reservation hot path)."""
    rows = (
        await session.execute(
            sa.select(
                t.skus,
                t.stock.c.warehouse.label("wh"),
                (t.stock.c.on_hand - t.stock.c.reserved).label("available"),
                t.warehouses.c.region.label("wh_region"),
                t.warehouses.c.priority.label("wh_priority"),
            )
            .select_from(
                t.skus.outerjoin(t.stock, t.stock.c.sku == t.skus.c.sku).outerjoin(
                    t.warehouses, t.warehouses.c.code == t.stock.c.warehouse
                )
            )
            .where(t.skus.c.sku.in_(list(skus)))
        )
    ).all()
    found: dict[str, Sku] = {}
    pools: dict[str, list[Candidate]] = {s: [] for s in skus}
    for r in rows:
        found.setdefault(r.sku, _sku(r))
        if r.wh is not None:
            pools[r.sku].append(Candidate(r.wh, int(r.available), r.wh_region, int(r.wh_priority)))
    return found, pools


async def hold_and_allocate(
    session: AsyncSession, reservation_id: str, alloc: Allocation, now: datetime
) -> tuple[RowLevel, StockLevel] | None:
    """One round trip under the row lock: reserve the units if (and only if) that many are
    available, record the allocation, and read the SKU's totals over all warehouses (this
    transaction's view). None when the units were not available."""
    stmt = sa.text(
        """
        WITH upd AS (
            UPDATE stock SET reserved = reserved + :q, updated_at = :now
            WHERE sku = :sku AND warehouse = :wh AND on_hand - reserved >= :q
            RETURNING on_hand, reserved, reorder_point, suggested_order_quantity
        ), ins AS (
            INSERT INTO reservation_allocations (reservation_id, sku, warehouse, quantity)
            SELECT :rid, :sku, :wh, :q FROM upd
            ON CONFLICT (reservation_id, sku, warehouse)
            DO UPDATE SET quantity = reservation_allocations.quantity + EXCLUDED.quantity
        )
        SELECT upd.on_hand, upd.reserved, upd.reorder_point, upd.suggested_order_quantity,
               COALESCE((SELECT json_agg(json_build_array(warehouse, on_hand, reserved))
                         FROM stock WHERE sku = :sku AND warehouse <> :wh), '[]'::json) AS others
        FROM upd
        """
    )
    row = (
        await session.execute(
            stmt,
            {
                "q": alloc.quantity,
                "now": now,
                "sku": alloc.sku,
                "wh": alloc.warehouse,
                "rid": reservation_id,
            },
        )
    ).first()
    if row is None:
        return None
    level = _row(row)
    whs = [WarehouseStock(alloc.warehouse, level.on_hand, level.reserved)]
    whs += [WarehouseStock(str(w), int(o), int(r)) for w, o, r in row.others]
    return level, StockLevel(alloc.sku, sorted(whs, key=lambda x: x.warehouse))


async def unhold(session: AsyncSession, alloc: Allocation, now: datetime) -> None:
    result = await session.execute(
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
        raise RuntimeError(f"stock row of {alloc} holds less than the allocation; invariant broken")


async def ship(session: AsyncSession, alloc: Allocation, now: datetime) -> int:
    """Held units leave: on_hand and reserved both drop. Returns on_hand after."""
    row = (
        await session.execute(
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
        raise RuntimeError(f"stock row of {alloc} holds less than the allocation; invariant broken")
    return int(row.on_hand)


async def adjust(
    session: AsyncSession, sku: str, warehouse: str, delta: int, now: datetime
) -> RowLevel | None:
    """Change on-hand unless it would drop below the reserved units; (on_hand, reserved, rop)."""
    if delta > 0:
        ins = pg_insert(t.stock).values(
            sku=sku, warehouse=warehouse, on_hand=delta, reserved=0, updated_at=now
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[t.stock.c.sku, t.stock.c.warehouse],
            set_={"on_hand": t.stock.c.on_hand + delta, "updated_at": now},
        ).returning(*_LEVEL_COLS)
        return _row((await session.execute(stmt)).one())
    found = (
        await session.execute(
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


async def stock_row(session: AsyncSession, sku: str, warehouse: str) -> tuple[int, int]:
    row = (
        await session.execute(
            sa.select(t.stock.c.on_hand, t.stock.c.reserved).where(
                t.stock.c.sku == sku, t.stock.c.warehouse == warehouse
            )
        )
    ).first()
    return (int(row.on_hand), int(row.reserved)) if row else (0, 0)


async def stock_levels(session: AsyncSession, skus: Sequence[str]) -> dict[str, StockLevel]:
    rows = (
        await session.execute(
            sa.select(t.stock)
            .where(t.stock.c.sku.in_(list(skus)))
            .order_by(t.stock.c.sku, t.stock.c.warehouse)
        )
    ).all()
    out = {s: StockLevel(s, []) for s in skus}
    for r in rows:
        out[r.sku].warehouses.append(WarehouseStock(r.warehouse, int(r.on_hand), int(r.reserved)))
    return out


async def insert_ledger(
    session: AsyncSession,
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
    await session.execute(
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


async def list_ledger(
    session: AsyncSession, sku: str, before_id: int | None, limit: int
) -> list[tuple[int, LedgerEntry]]:
    q = sa.select(t.ledger).where(t.ledger.c.sku == sku).order_by(t.ledger.c.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(t.ledger.c.id < before_id)
    rows = (await session.execute(q)).all()
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


# --- reservations ------------------------------------------------------------------------------


async def insert_reservation(session: AsyncSession, r: Reservation) -> bool:
    """Insert a held reservation; False when the id exists (a concurrent insert of the same id
    waits for the first transaction and then sees the conflict)."""
    result = await session.execute(
        pg_insert(t.reservations)
        .values(
            reservation_id=r.reservation_id,
            status=r.status.value,
            region=r.region,
            lines=[{"sku": ln.sku, "quantity": ln.quantity} for ln in r.lines],
            expires_at=r.expires_at,
            created_at=r.created_at,
        )
        .on_conflict_do_nothing()
        .returning(t.reservations.c.reservation_id)
    )
    return result.first() is not None


def _reservation(row: Any, allocs: list[Allocation]) -> Reservation:
    return Reservation(
        reservation_id=row.reservation_id,
        status=ReservationStatus(row.status),
        expires_at=row.expires_at,
        lines=[Line(x["sku"], int(x["quantity"])) for x in row.lines],
        allocations=allocs,
        region=row.region,
        created_at=row.created_at,
        closed_at=row.closed_at,
        release_reason=row.release_reason,
    )


async def allocations_of(session: AsyncSession, reservation_id: str) -> list[Allocation]:
    rows = (
        await session.execute(
            sa.select(t.reservation_allocations)
            .where(t.reservation_allocations.c.reservation_id == reservation_id)
            .order_by(t.reservation_allocations.c.sku, t.reservation_allocations.c.warehouse)
        )
    ).all()
    return [Allocation(r.sku, r.warehouse, int(r.quantity)) for r in rows]


async def get_reservation(session: AsyncSession, reservation_id: str) -> Reservation | None:
    row = (
        await session.execute(
            sa.select(t.reservations).where(t.reservations.c.reservation_id == reservation_id)
        )
    ).first()
    if row is None:
        return None
    return _reservation(row, await allocations_of(session, reservation_id))


async def close_reservation(
    session: AsyncSession,
    reservation_id: str,
    status: ReservationStatus,
    now: datetime,
    *,
    release_reason: str | None = None,
    require_unexpired: bool = False,
) -> Reservation | None:
    """Move a held reservation to ``status`` (conditional on it being held; for commits also on
    it not being past its expiry). None when it was not in that state."""
    cond = [t.reservations.c.reservation_id == reservation_id, t.reservations.c.status == "held"]
    if require_unexpired:
        cond.append(t.reservations.c.expires_at > now)
    row = (
        await session.execute(
            sa.update(t.reservations)
            .where(*cond)
            .values(status=status.value, closed_at=now, release_reason=release_reason)
            .returning(*t.reservations.c)
        )
    ).first()
    if row is None:
        return None
    return _reservation(row, await allocations_of(session, reservation_id))


async def mark_restocked(session: AsyncSession, reservation_id: str, now: datetime) -> bool:
    result = await session.execute(
        sa.update(t.reservations)
        .where(
            t.reservations.c.reservation_id == reservation_id,
            t.reservations.c.status == "committed",
            t.reservations.c.restocked_at.is_(None),
        )
        .values(restocked_at=now)
        .returning(t.reservations.c.reservation_id)
    )
    return result.first() is not None


async def lock_expired(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Held reservations past their expiry, locked; rows other replicas hold are skipped."""
    rows = (
        await session.execute(
            sa.select(t.reservations.c.reservation_id)
            .where(t.reservations.c.status == "held", t.reservations.c.expires_at <= now)
            .order_by(t.reservations.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    return [r.reservation_id for r in rows]


# --- planning data -----------------------------------------------------------------------------


async def add_demand(session: AsyncSession, allocs: Sequence[Allocation], day: date) -> None:
    for a in sorted(allocs, key=lambda x: (x.sku, x.warehouse)):
        stmt = pg_insert(t.demand_daily).values(
            sku=a.sku, warehouse=a.warehouse, day=day, units=a.quantity
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    t.demand_daily.c.sku,
                    t.demand_daily.c.warehouse,
                    t.demand_daily.c.day,
                ],
                set_={"units": t.demand_daily.c.units + stmt.excluded.units},
            )
        )


async def add_revenue(
    session: AsyncSession, lines: Sequence[tuple[str, int, int]], currency: str, day: date
) -> None:
    for sku, units, revenue in sorted(lines):
        stmt = pg_insert(t.revenue_daily).values(
            sku=sku, day=day, currency=currency, revenue_minor=revenue, units=units
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    t.revenue_daily.c.sku,
                    t.revenue_daily.c.day,
                    t.revenue_daily.c.currency,
                ],
                set_={
                    "revenue_minor": t.revenue_daily.c.revenue_minor + stmt.excluded.revenue_minor,
                    "units": t.revenue_daily.c.units + stmt.excluded.units,
                },
            )
        )


async def record_level(
    session: AsyncSession, level: StockLevel, day: date, *, only_stockout: bool
) -> None:
    """Keep today's row of the SKU: levels, and whether availability reached zero."""
    out = level.available <= 0
    if only_stockout and not out:
        return
    stmt = pg_insert(t.stock_daily).values(
        sku=level.sku, day=day, on_hand=level.on_hand, available=level.available, stocked_out=out
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.stock_daily.c.sku, t.stock_daily.c.day],
            set_={
                "on_hand": stmt.excluded.on_hand,
                "available": stmt.excluded.available,
                "stocked_out": t.stock_daily.c.stocked_out | stmt.excluded.stocked_out,
            },
        )
    )


# --- returns ------------------------------------------------------------------------------------


async def lock_reservation_status(session: AsyncSession, reservation_id: str) -> str | None:
    """The reservation's status, its row locked: returns of one order are applied one at a time."""
    row = (
        await session.execute(
            sa.select(t.reservations.c.status)
            .where(t.reservations.c.reservation_id == reservation_id)
            .with_for_update()
        )
    ).first()
    return str(row.status) if row else None


async def return_restocked(session: AsyncSession, return_id: str) -> bool:
    row = (
        await session.execute(
            sa.select(t.return_restocks.c.return_id)
            .where(t.return_restocks.c.return_id == return_id)
            .limit(1)
        )
    ).first()
    return row is not None


async def returned_by_order(session: AsyncSession, order_id: str) -> dict[tuple[str, str], int]:
    """Units earlier returns of the order put back, per (SKU, warehouse)."""
    rows = (
        await session.execute(
            sa.select(
                t.return_restocks.c.sku,
                t.return_restocks.c.warehouse,
                sa.func.sum(t.return_restocks.c.quantity).label("units"),
            )
            .where(t.return_restocks.c.order_id == order_id)
            .group_by(t.return_restocks.c.sku, t.return_restocks.c.warehouse)
        )
    ).all()
    return {(r.sku, r.warehouse): int(r.units) for r in rows}


async def warehouse_preference(session: AsyncSession) -> dict[str, tuple[int, str]]:
    """(priority, code) of every warehouse: the sort key of "highest priority first"."""
    rows = (await session.execute(sa.select(t.warehouses.c.code, t.warehouses.c.priority))).all()
    return {r.code: (int(r.priority), r.code) for r in rows}


async def home_warehouse(session: AsyncSession, sku: str) -> str | None:
    """The SKU's highest-priority warehouse: among those holding a stock row of it, else among
    all warehouses; None when there is no warehouse at all."""
    held = (
        await session.execute(
            sa.select(t.warehouses.c.code)
            .join(t.stock, t.stock.c.warehouse == t.warehouses.c.code)
            .where(t.stock.c.sku == sku)
            .order_by(t.warehouses.c.priority, t.warehouses.c.code)
            .limit(1)
        )
    ).first()
    if held is not None:
        return str(held.code)
    first = (
        await session.execute(
            sa.select(t.warehouses.c.code)
            .order_by(t.warehouses.c.priority, t.warehouses.c.code)
            .limit(1)
        )
    ).first()
    return str(first.code) if first else None


async def insert_return_restock(
    session: AsyncSession,
    *,
    return_id: str,
    order_id: str,
    sku: str,
    warehouse: str,
    quantity: int,
    source: str,
    now: datetime,
) -> None:
    await session.execute(
        sa.insert(t.return_restocks).values(
            return_id=return_id,
            order_id=order_id,
            sku=sku,
            warehouse=warehouse,
            quantity=quantity,
            source=source,
            restocked_at=now,
        )
    )
