"""Use cases of the inventory service, one function each, each inside one unit of work.

REST, gRPC and the Kafka consumers call these same functions. Stock changes are conditional
writes (see adapters.repository); events are recorded in the outbox of the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import Conflict, DependencyUnavailable, NotFound, Unprocessable

from ..adapters import events as ev
from ..adapters import repository as repo
from ..domain.models import (
    RESERVATION_ID_PATTERN,
    AdjustmentReason,
    Allocation,
    LedgerEntry,
    LedgerReason,
    Line,
    ReleaseReason,
    Reservation,
    ReservationStatus,
    Shortage,
    Sku,
    SkuStatus,
    StockLevel,
    Warehouse,
    check_adjustment,
    check_adjustment_delta,
    check_attributes,
    check_id,
    check_priority,
    commit_refusal,
    crossed_below,
    effective_ttl,
    plan_line,
    release_refusal,
    shortage_error,
    shortages,
    validate_lines,
)
from ..settings import InventorySettings

log = logging.getLogger("inventory.handlers")

MAX_PLAN_ROUNDS = 5
DEADLOCK_RETRIES = 3


# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpsertSku:
    sku: str
    title: str
    category: str
    status: SkuStatus
    brand: str | None = None
    attributes: dict[str, str] | None = None
    lead_time_days: int | None = None


@dataclass(frozen=True, slots=True)
class UpsertWarehouse:
    code: str
    name: str
    region: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class AdjustStock:
    sku: str
    warehouse: str
    delta: int
    reason: AdjustmentReason
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveStock:
    reservation_id: str
    lines: Sequence[Line]
    ttl_seconds: int | None = None
    region: str | None = None


# --- SKUs and warehouses ------------------------------------------------------------------------


async def upsert_sku(uow: UnitOfWork, cmd: UpsertSku) -> tuple[Sku, bool]:
    check_id(cmd.sku, "sku")
    if cmd.lead_time_days is not None and not 0 <= cmd.lead_time_days <= 365:
        raise Unprocessable("lead_time_days must be between 0 and 365", code="invalid-lead-time")
    attributes = check_attributes(cmd.attributes)
    now = utcnow()
    async with uow:
        sku, created = await repo.upsert_sku(
            uow.session,
            {
                "sku": cmd.sku,
                "title": cmd.title,
                "category": cmd.category,
                "brand": cmd.brand,
                "attributes": attributes,
                "status": cmd.status.value,
                "lead_time_days": cmd.lead_time_days,
            },
            now,
        )
        uow.add_event(ev.sku_upserted(sku), key=sku.sku)
        await uow.commit()
    return sku, created


async def get_sku(uow: UnitOfWork, sku: str) -> Sku:
    async with uow:
        found = await repo.get_sku(uow.session, sku)
    if found is None:
        raise NotFound(f"sku {sku} not found")
    return found


async def list_skus(
    uow: UnitOfWork,
    *,
    category: str | None,
    status: SkuStatus | None,
    after: str | None,
    limit: int,
) -> list[Sku]:
    async with uow:
        return await repo.list_skus(
            uow.session,
            category=category,
            status=status.value if status else None,
            after=after,
            limit=limit,
        )


async def upsert_warehouse(uow: UnitOfWork, cmd: UpsertWarehouse) -> tuple[Warehouse, bool]:
    check_id(cmd.code, "warehouse code")
    check_priority(cmd.priority)
    values: dict[str, Any] = {"code": cmd.code, "name": cmd.name, "region": cmd.region}
    async with uow:
        if cmd.priority is not None:
            values["priority"] = cmd.priority
        else:
            existing = await repo.get_warehouse(uow.session, cmd.code)
            values["priority"] = existing.priority if existing else 100
        wh, created = await repo.upsert_warehouse(uow.session, values, utcnow())
        await uow.commit()
    return wh, created


async def list_warehouses(uow: UnitOfWork) -> list[Warehouse]:
    async with uow:
        return await repo.list_warehouses(uow.session)


# --- stock ----------------------------------------------------------------------------------------


async def _publish_levels(
    uow: UnitOfWork, skus: Sequence[str], now: datetime
) -> dict[str, StockLevel]:
    levels = await repo.stock_levels(uow.session, sorted(set(skus)))
    for level in levels.values():
        uow.add_event(ev.stock_level_changed(level, now), key=level.sku)
        await repo.record_level(uow.session, level, now.date(), only_stockout=True)
    return levels


def _maybe_low_stock(
    uow: UnitOfWork, sku: str, warehouse: str, row: repo.RowLevel, before: int, now: datetime
) -> None:
    if crossed_below(before, row.available, row.reorder_point):
        uow.add_event(
            ev.low_stock(
                sku, warehouse, row.available, row.reorder_point, row.suggested_order_quantity, now
            ),
            key=sku,
        )


async def adjust_stock(uow: UnitOfWork, cmd: AdjustStock) -> LedgerEntry:
    check_adjustment_delta(cmd.delta)
    now = utcnow()
    async with uow:
        s = uow.session
        if await repo.get_sku(s, cmd.sku) is None:
            raise Unprocessable(f"unknown sku {cmd.sku}", code="unknown-sku", sku=cmd.sku)
        if await repo.get_warehouse(s, cmd.warehouse) is None:
            raise Unprocessable(
                f"unknown warehouse {cmd.warehouse}",
                code="unknown-warehouse",
                warehouse=cmd.warehouse,
            )
        row = await repo.adjust(s, cmd.sku, cmd.warehouse, cmd.delta, now)
        if row is None:
            on_hand, reserved = await repo.stock_row(s, cmd.sku, cmd.warehouse)
            check_adjustment(on_hand, reserved, cmd.delta)
            raise Conflict("adjustment refused; nothing was written", code="insufficient-stock")
        entry = await repo.insert_ledger(
            s,
            sku=cmd.sku,
            warehouse=cmd.warehouse,
            delta=cmd.delta,
            reason=cmd.reason.value,
            reference=cmd.reference,
            on_hand_after=row.on_hand,
            now=now,
        )
        uow.add_event(ev.stock_adjusted(entry), key=cmd.sku)
        _maybe_low_stock(uow, cmd.sku, cmd.warehouse, row, row.available - cmd.delta, now)
        await _publish_levels(uow, [cmd.sku], now)
        await uow.commit()
    return entry


async def get_stock(uow: UnitOfWork, sku: str) -> StockLevel:
    async with uow:
        if await repo.get_sku(uow.session, sku) is None:
            raise NotFound(f"sku {sku} not found")
        return (await repo.stock_levels(uow.session, [sku]))[sku]


@dataclass(frozen=True, slots=True)
class Availability:
    sku: str
    available: int
    status: SkuStatus | None


async def get_availability(uow: UnitOfWork, skus: Sequence[str]) -> list[Availability]:
    if not skus or len(skus) > 200:
        raise Unprocessable("ask for 1..200 SKUs", code="invalid-skus")
    unique = list(dict.fromkeys(skus))
    async with uow:
        known = await repo.get_skus(uow.session, unique)
        levels = await repo.stock_levels(uow.session, list(known))
    out = []
    for sku in skus:
        info = known.get(sku)
        if info is None:
            out.append(Availability(sku, 0, None))
        elif info.status is SkuStatus.DISCONTINUED:
            out.append(Availability(sku, 0, info.status))
        else:
            out.append(Availability(sku, max(0, levels[sku].available), info.status))
    return out


async def list_ledger(
    uow: UnitOfWork, sku: str, before_id: int | None, limit: int
) -> list[tuple[int, LedgerEntry]]:
    async with uow:
        if await repo.get_sku(uow.session, sku) is None:
            raise NotFound(f"sku {sku} not found")
        return await repo.list_ledger(uow.session, sku, before_id, limit)


# --- reservations ------------------------------------------------------------------------------


def _is_deadlock(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return code in {"40P01", "40001"}


async def reserve_stock(
    uow: UnitOfWork, settings: InventorySettings, cmd: ReserveStock, now: datetime | None = None
) -> tuple[Reservation, bool]:
    """Hold every line or nothing. Returns the reservation and whether it was created now."""
    check_id(cmd.reservation_id, "reservation_id", RESERVATION_ID_PATTERN)
    lines = validate_lines(cmd.lines, settings.reservation_max_lines)
    ttl = effective_ttl(
        cmd.ttl_seconds,
        settings.reservation_default_ttl_seconds,
        settings.reservation_max_ttl_seconds,
    )
    region = cmd.region or None
    gate = _gate(settings.reservation_sku_concurrency)
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            async with gate.hold([ln.sku for ln in lines]):
                return await _reserve_once(
                    uow, cmd.reservation_id, lines, ttl, region, now or utcnow()
                )
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                raise DependencyUnavailable(
                    "the stock database connection failed; retry with the same reservation_id "
                    "(idempotent: a hold that did commit is returned, never doubled)",
                    retry_after=1,
                ) from exc
            if not _is_deadlock(exc) or attempt == DEADLOCK_RETRIES:
                raise
            log.warning("reservation %s hit a deadlock; retrying", cmd.reservation_id)
        except PoolTimeout:
            # Every connection is busy (e.g. a flash sale on one SKU): tell the caller to retry
            # rather than failing with a 500.
            raise DependencyUnavailable(
                "the stock database is saturated; retry shortly", retry_after=1
            ) from None
    raise AssertionError("unreachable")


class SkuGate:
    """At most ``limit`` reservation transactions per SKU at a time in this process.

    Every reservation of one SKU serialises on its stock row anyway; letting hundreds of
    transactions queue on that row lock (each holding a pooled connection) only slows the lock
    holder down and starves the pool for every other request. Waiting here instead keeps the
    database queue short. Semaphores are acquired in SKU order (no deadlock) and belong to the
    running event loop.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sems: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, skus: Sequence[str]) -> AsyncIterator[None]:
        if self.limit <= 0:
            yield
            return
        sems = self._sems.setdefault(asyncio.get_running_loop(), {})
        async with contextlib.AsyncExitStack() as stack:
            for sku in sorted(set(skus)):
                sem = sems.get(sku)
                if sem is None:
                    if len(sems) > 10_000:  # forget idle SKUs
                        for key in [k for k, v in sems.items() if v._value == self.limit]:
                            del sems[key]
                    sem = sems[sku] = asyncio.Semaphore(self.limit)
                await stack.enter_async_context(sem)
            yield


_gates: dict[int, SkuGate] = {}


def _gate(limit: int) -> SkuGate:
    gate = _gates.get(limit)
    if gate is None:
        gate = _gates[limit] = SkuGate(limit)
    return gate


def _replay(existing: Reservation, lines: Sequence[Line]) -> tuple[Reservation, bool]:
    if not existing.same_request(lines):
        raise Conflict(
            f"reservation {existing.reservation_id} already exists with other lines",
            code="reservation-id-reused",
            title="Reservation id already used",
        )
    return existing, False


async def _reserve_once(
    uow: UnitOfWork,
    reservation_id: str,
    lines: list[Line],
    ttl: int,
    region: str | None,
    now: datetime,
) -> tuple[Reservation, bool]:
    async with uow:
        s = uow.session
        reservation = Reservation(
            reservation_id=reservation_id,
            status=ReservationStatus.HELD,
            expires_at=now + timedelta(seconds=ttl),
            lines=lines,
            region=region,
            created_at=now,
        )
        # Claim the id first: a retry (or a concurrent duplicate, once the first commits) finds
        # the existing reservation and gets the same answer. Any refusal below rolls it back.
        if not await repo.insert_reservation(s, reservation):
            existing = await repo.get_reservation(s, reservation_id)
            assert existing is not None
            return _replay(existing, lines)
        skus = [ln.sku for ln in lines]
        known, pools = await repo.skus_with_candidates(s, skus)
        bad = [
            {"sku": sku, "reason": "unknown" if sku not in known else "discontinued"}
            for sku in skus
            if sku not in known or known[sku].status is SkuStatus.DISCONTINUED
        ]
        if bad:
            names = ", ".join(f"{b['sku']} ({b['reason']})" for b in bad)
            raise Unprocessable(
                f"these SKUs cannot be reserved: {names}", code="unknown-sku", skus=bad
            )
        available = {sku: sum(max(0, c.available) for c in pools[sku]) for sku in skus}
        short = shortages(lines, available)
        if short:
            raise shortage_error(short)
        allocations: list[Allocation] = []
        levels: dict[str, StockLevel] = {}
        for line in lines:
            remaining = line.quantity
            pool = pools[line.sku]
            for _ in range(MAX_PLAN_ROUNDS):
                plan = plan_line(line.sku, remaining, pool, region)
                if plan is None:
                    break
                for alloc in sorted(plan, key=lambda a: a.warehouse):
                    held = await repo.hold_and_allocate(s, reservation_id, alloc, now)
                    if held is None:
                        continue  # someone took these units first: re-plan with fresh numbers
                    row, levels[line.sku] = held
                    allocations.append(alloc)
                    remaining -= alloc.quantity
                    _maybe_low_stock(
                        uow, alloc.sku, alloc.warehouse, row, row.available + alloc.quantity, now
                    )
                if remaining == 0:
                    break
                pool = (await repo.candidates(s, [line.sku]))[line.sku]
            if remaining > 0:
                fresh = (await repo.candidates(s, [line.sku]))[line.sku]
                held_here = line.quantity - remaining
                raise shortage_error(
                    [
                        Shortage(
                            line.sku,
                            line.quantity,
                            sum(max(0, c.available) for c in fresh) + held_here,
                        )
                    ]
                )
        merged: dict[tuple[str, str], int] = {}
        for a in allocations:
            merged[(a.sku, a.warehouse)] = merged.get((a.sku, a.warehouse), 0) + a.quantity
        reservation.allocations = [Allocation(s_, w, q) for (s_, w), q in sorted(merged.items())]
        uow.add_event(
            ev.stock_reserved(reservation_id, reservation.allocations, reservation.expires_at),
            key=reservation_id,
        )
        for level in levels.values():
            uow.add_event(ev.stock_level_changed(level, now), key=level.sku)
            await repo.record_level(s, level, now.date(), only_stockout=True)
        await uow.commit()
    return reservation, True


async def get_reservation(uow: UnitOfWork, reservation_id: str) -> Reservation:
    async with uow:
        found = await repo.get_reservation(uow.session, reservation_id)
    if found is None:
        raise NotFound(f"reservation {reservation_id} not found")
    return found


async def commit_reservation(
    uow: UnitOfWork, reservation_id: str, now: datetime | None = None
) -> Reservation:
    """The hold becomes a sale: units leave on-hand (ledger reason ``commit``). Idempotent."""
    now = now or utcnow()
    async with uow:
        s = uow.session
        closed = await repo.close_reservation(
            s, reservation_id, ReservationStatus.COMMITTED, now, require_unexpired=True
        )
        if closed is None:
            existing = await repo.get_reservation(s, reservation_id)
            if existing is None:
                raise NotFound(f"reservation {reservation_id} not found")
            refusal = commit_refusal(existing, now)
            if refusal is not None:
                raise refusal
            return existing
        for alloc in sorted(closed.allocations, key=lambda a: (a.sku, a.warehouse)):
            on_hand = await repo.ship(s, alloc, now)
            await repo.insert_ledger(
                s,
                sku=alloc.sku,
                warehouse=alloc.warehouse,
                delta=-alloc.quantity,
                reason=LedgerReason.COMMIT.value,
                reference=reservation_id,
                on_hand_after=on_hand,
                now=now,
            )
        await repo.add_demand(s, closed.allocations, now.date())
        uow.add_event(
            ev.stock_committed(reservation_id, closed.allocations, now), key=reservation_id
        )
        await _publish_levels(uow, [a.sku for a in closed.allocations], now)
        await uow.commit()
    return closed


async def release_reservation(
    uow: UnitOfWork,
    reservation_id: str,
    reason: ReleaseReason = ReleaseReason.RELEASED,
    now: datetime | None = None,
) -> Reservation:
    """Give held units back. Idempotent: released or expired reservations are returned as is."""
    now = now or utcnow()
    async with uow:
        s = uow.session
        closed = await repo.close_reservation(
            s, reservation_id, ReservationStatus.RELEASED, now, release_reason=reason.value
        )
        if closed is None:
            existing = await repo.get_reservation(s, reservation_id)
            if existing is None:
                raise NotFound(f"reservation {reservation_id} not found")
            refusal = release_refusal(existing)
            if refusal is not None:
                raise refusal
            return existing
        await _give_back(uow, closed, reason, now)
        await uow.commit()
    return closed


async def _give_back(
    uow: UnitOfWork, closed: Reservation, reason: ReleaseReason, now: datetime
) -> None:
    for alloc in sorted(closed.allocations, key=lambda a: (a.sku, a.warehouse)):
        await repo.unhold(uow.session, alloc, now)
    uow.add_event(
        ev.stock_released(closed.reservation_id, closed.allocations, reason.value, now),
        key=closed.reservation_id,
    )
    await _publish_levels(uow, [a.sku for a in closed.allocations], now)


async def expire_due(
    uow: UnitOfWork, settings: InventorySettings, now: datetime | None = None
) -> int:
    """Release holds past their expiry (one batch). Replicas skip each other's locked rows.
    Stock rows are updated in one global (SKU, warehouse) order, like every other writer, so
    the sweep cannot deadlock with reservations or commits."""
    now = now or utcnow()
    async with uow:
        s = uow.session
        ids = await repo.lock_expired(s, now, settings.expiry_sweep_batch)
        closed_all: list[Reservation] = []
        for rid in ids:
            closed = await repo.close_reservation(
                s, rid, ReservationStatus.EXPIRED, now, release_reason=ReleaseReason.EXPIRED.value
            )
            if closed is not None:
                closed_all.append(closed)
        totals: dict[tuple[str, str], int] = {}
        for closed in closed_all:
            for a in closed.allocations:
                totals[(a.sku, a.warehouse)] = totals.get((a.sku, a.warehouse), 0) + a.quantity
        for (sku, wh), qty in sorted(totals.items()):
            await repo.unhold(s, Allocation(sku, wh, qty), now)
        for closed in closed_all:
            uow.add_event(
                ev.stock_released(
                    closed.reservation_id, closed.allocations, ReleaseReason.EXPIRED.value, now
                ),
                key=closed.reservation_id,
            )
        if totals:
            await _publish_levels(uow, sorted({sku for sku, _ in totals}), now)
        await uow.commit()
    if ids:
        log.info("expired %d reservations", len(ids))
    return len(ids)


async def expire_all_due(uow_factory: Any, settings: InventorySettings) -> int:
    """Run expiry batches until nothing is due (the periodic job)."""
    total = 0
    while True:
        n = await expire_due(uow_factory(), settings)
        total += n
        if n < settings.expiry_sweep_batch:
            return total
