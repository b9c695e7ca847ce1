"""Reservations: hold every line or nothing, commit (a sale), release, expire.

The hot path. Every stock change is one conditional write (the row lock PostgreSQL takes for
the UPDATE serialises writers of a (SKU, warehouse) row; its WHERE clause decides), rows are
written in one global (SKU, warehouse) order, and :class:`SkuGate` keeps the queue on one SKU's
row short. ``ReserveStock`` is not wrapped in a transaction by the bus (no Idempotency-Key: the
reservation id is the key): its handler owns its transaction and retries it after a deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import Conflict, DependencyUnavailable, NotFound, Unprocessable

from ..domain.models import (
    RESERVATION_ID_PATTERN,
    Allocation,
    LedgerReason,
    Line,
    ReleaseReason,
    Reservation,
    ReservationStatus,
    Shortage,
    SkuStatus,
    StockLevel,
    check_id,
    commit_refusal,
    effective_ttl,
    plan_line,
    release_refusal,
    shortage_error,
    shortages,
    validate_lines,
)
from . import events as ev
from .ports import Ctx, DatabaseFailure, InventoryUnitOfWork
from .stock import maybe_low_stock, publish_levels
from .views import Reserved

log = logging.getLogger("inventory.reservations")

MAX_PLAN_ROUNDS = 5
DEADLOCK_RETRIES = 3
HOLDERS = (Role.OPS, Role.SERVICE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveStock(Command[Reserved], roles=HOLDERS):
    """Hold every line or nothing (409 with ``shortages``). The reservation id is the
    idempotency key: the same id again returns the same reservation and never holds twice."""

    reservation_id: str
    lines: tuple[Line, ...]
    ttl_seconds: int | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReservation(Query[Reservation], roles=ANY_ROLE):
    """Reservations carry no owner, so customers never see them (404, as for anything not
    theirs)."""

    reservation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitReservation(Command[Reservation], roles=HOLDERS):
    """Units leave on-hand. Idempotent; 409 when the hold expired or was released."""

    reservation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseReservation(Command[Reservation], roles=HOLDERS):
    """Units are available again. Idempotent; 409 when already committed."""

    reservation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireReservations(Command[int], roles=(Role.SERVICE,)):
    """The periodic sweep: release every hold past its expiry, batch by batch."""


# --- the per-SKU gate ----------------------------------------------------------------------------


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


# --- reserve -------------------------------------------------------------------------------------


@handler
async def reserve_stock(cmd: ReserveStock, ctx: Ctx) -> Reserved:
    """Hold every line or nothing, retrying the whole transaction after a deadlock."""
    settings = ctx.deps.settings
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
                    ctx.uow, cmd.reservation_id, lines, ttl, region, ctx.deps.clock()
                )
        except Exception as exc:
            failure = ctx.uow.failure(exc)
            if failure is DatabaseFailure.CONNECTION:
                raise DependencyUnavailable(
                    "the stock database connection failed; retry with the same reservation_id "
                    "(idempotent: a hold that did commit is returned, never doubled)",
                    retry_after=1,
                ) from exc
            if failure is DatabaseFailure.SATURATED:
                # Every connection is busy (e.g. a flash sale on one SKU): tell the caller to
                # retry rather than failing with a 500.
                raise DependencyUnavailable(
                    "the stock database is saturated; retry shortly", retry_after=1
                ) from None
            if failure is not DatabaseFailure.DEADLOCK or attempt == DEADLOCK_RETRIES:
                raise
            log.warning("reservation %s hit a deadlock; retrying", cmd.reservation_id)
    raise AssertionError("unreachable")


def _replay(existing: Reservation, lines: Sequence[Line]) -> Reserved:
    if not existing.same_request(lines):
        raise Conflict(
            f"reservation {existing.reservation_id} already exists with other lines",
            code="reservation-id-reused",
            title="Reservation id already used",
        )
    return Reserved(existing, created=False)


async def _reserve_once(
    uow: InventoryUnitOfWork,
    reservation_id: str,
    lines: list[Line],
    ttl: int,
    region: str | None,
    now: datetime,
) -> Reserved:
    async with uow:
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
        if not await uow.reservations.add(reservation):
            existing = await uow.reservations.get(reservation_id)
            assert existing is not None
            return _replay(existing, lines)
        skus = [ln.sku for ln in lines]
        known, pools = await uow.stock.skus_with_candidates(skus)
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
                    held = await uow.stock.hold_and_allocate(reservation_id, alloc, now)
                    if held is None:
                        continue  # someone took these units first: re-plan with fresh numbers
                    row, levels[line.sku] = held
                    allocations.append(alloc)
                    remaining -= alloc.quantity
                    maybe_low_stock(
                        uow, alloc.sku, alloc.warehouse, row, row.available + alloc.quantity, now
                    )
                if remaining == 0:
                    break
                pool = (await uow.stock.candidates([line.sku]))[line.sku]
            if remaining > 0:
                fresh = (await uow.stock.candidates([line.sku]))[line.sku]
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
        reservation.allocations = [Allocation(s, w, q) for (s, w), q in sorted(merged.items())]
        uow.add_event(
            ev.stock_reserved(reservation_id, reservation.allocations, reservation.expires_at),
            key=reservation_id,
        )
        for level in levels.values():
            uow.add_event(ev.stock_level_changed(level, now), key=level.sku)
            await uow.planning.record_level(level, now.date(), only_stockout=True)
        await uow.commit()
    return Reserved(reservation, created=True)


# --- read, commit, release, expire ---------------------------------------------------------------


@handler
async def get_reservation(query: GetReservation, ctx: Ctx) -> Reservation:
    if ctx.caller.is_customer:
        raise NotFound(f"reservation {query.reservation_id} not found")
    async with ctx.uow as uow:
        found = await uow.reservations.get(query.reservation_id)
    if found is None:
        raise NotFound(f"reservation {query.reservation_id} not found")
    return found


@handler
async def commit_reservation(cmd: CommitReservation, ctx: Ctx) -> Reservation:
    return await commit_held(ctx.uow, cmd.reservation_id, ctx.deps.clock())


@handler
async def release_reservation(cmd: ReleaseReservation, ctx: Ctx) -> Reservation:
    return await release_held(ctx.uow, cmd.reservation_id, ReleaseReason.RELEASED, ctx.deps.clock())


async def commit_held(uow: InventoryUnitOfWork, reservation_id: str, now: datetime) -> Reservation:
    """The hold becomes a sale: units leave on-hand (ledger reason ``commit``). Idempotent.
    Joins the caller's unit of work when one is open (an OrderPaid event's)."""
    async with uow:
        closed = await uow.reservations.close(
            reservation_id, ReservationStatus.COMMITTED, now, require_unexpired=True
        )
        if closed is None:
            existing = await uow.reservations.get(reservation_id)
            if existing is None:
                raise NotFound(f"reservation {reservation_id} not found")
            refusal = commit_refusal(existing, now)
            if refusal is not None:
                raise refusal
            return existing
        for alloc in sorted(closed.allocations, key=lambda a: (a.sku, a.warehouse)):
            on_hand = await uow.stock.ship(alloc, now)
            await uow.stock.add_ledger_entry(
                sku=alloc.sku,
                warehouse=alloc.warehouse,
                delta=-alloc.quantity,
                reason=LedgerReason.COMMIT.value,
                reference=reservation_id,
                on_hand_after=on_hand,
                now=now,
            )
        await uow.planning.add_demand(closed.allocations, now.date())
        uow.add_event(
            ev.stock_committed(reservation_id, closed.allocations, now), key=reservation_id
        )
        await publish_levels(uow, [a.sku for a in closed.allocations], now)
        await uow.commit()
    return closed


async def release_held(
    uow: InventoryUnitOfWork, reservation_id: str, reason: ReleaseReason, now: datetime
) -> Reservation:
    """Give held units back. Idempotent: released or expired reservations are returned as is."""
    async with uow:
        closed = await uow.reservations.close(
            reservation_id, ReservationStatus.RELEASED, now, release_reason=reason.value
        )
        if closed is None:
            existing = await uow.reservations.get(reservation_id)
            if existing is None:
                raise NotFound(f"reservation {reservation_id} not found")
            refusal = release_refusal(existing)
            if refusal is not None:
                raise refusal
            return existing
        for alloc in sorted(closed.allocations, key=lambda a: (a.sku, a.warehouse)):
            await uow.stock.unhold(alloc, now)
        uow.add_event(
            ev.stock_released(closed.reservation_id, closed.allocations, reason.value, now),
            key=closed.reservation_id,
        )
        await publish_levels(uow, [a.sku for a in closed.allocations], now)
        await uow.commit()
    return closed


@handler
async def expire_reservations(cmd: ExpireReservations, ctx: Ctx) -> int:
    """Run expiry batches until nothing is due."""
    total = 0
    batch = ctx.deps.settings.expiry_sweep_batch
    while True:
        n = await _expire_batch(ctx.uow, batch, ctx.deps.clock())
        total += n
        if n < batch:
            return total


async def _expire_batch(uow: InventoryUnitOfWork, batch: int, now: datetime) -> int:
    """Release holds past their expiry (one batch). Replicas skip each other's locked rows.
    Stock rows are updated in one global (SKU, warehouse) order, like every other writer, so
    the sweep cannot deadlock with reservations or commits."""
    async with uow:
        ids = await uow.reservations.lock_expired(now, batch)
        closed_all: list[Reservation] = []
        for rid in ids:
            closed = await uow.reservations.close(
                rid, ReservationStatus.EXPIRED, now, release_reason=ReleaseReason.EXPIRED.value
            )
            if closed is not None:
                closed_all.append(closed)
        totals: dict[tuple[str, str], int] = {}
        for closed in closed_all:
            for a in closed.allocations:
                totals[(a.sku, a.warehouse)] = totals.get((a.sku, a.warehouse), 0) + a.quantity
        for (sku, wh), qty in sorted(totals.items()):
            await uow.stock.unhold(Allocation(sku, wh, qty), now)
        for closed in closed_all:
            uow.add_event(
                ev.stock_released(
                    closed.reservation_id, closed.allocations, ReleaseReason.EXPIRED.value, now
                ),
                key=closed.reservation_id,
            )
        if totals:
            await publish_levels(uow, sorted({sku for sku, _ in totals}), now)
        await uow.commit()
    if ids:
        log.info("expired %d reservations", len(ids))
    return len(ids)
