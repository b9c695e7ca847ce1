"""What inventory does when the order service's events arrive: a payment commits the order's
reservation, a cancellation releases it (or restocks what was paid), a received return puts
resellable units back where they were shipped from.

Sent by the Kafka consumers (entrypoints/consumers.py) as the service itself, inside the
consumer's unit of work (the transaction that also records the event in the inbox).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler
from ecomops_platform.errors import Conflict, NotFound

from ..domain.models import (
    LedgerEntry,
    LedgerReason,
    ReleaseReason,
    ReservationStatus,
    plan_return,
)
from .ports import Ctx, InventoryUnitOfWork
from .reservations import commit_held, release_held
from .stock import restock

log = logging.getLogger("inventory.fulfilment")

SERVICE = (Role.SERVICE,)


@dataclass(frozen=True, slots=True)
class PaidLine:
    sku: str
    quantity: int
    total_minor: int


@dataclass(frozen=True, slots=True)
class ReturnedLine:
    sku: str
    quantity: int
    resellable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitOrderStock(Command[None], roles=SERVICE):
    """OrderPaid: record revenue (for ABC) and commit the order's reservation."""

    order_id: str
    lines: tuple[PaidLine, ...]
    currency: str
    paid_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseOrderStock(Command[None], roles=SERVICE):
    """OrderCancelled: release the hold; for a paid (committed) order the units go back."""

    order_id: str
    was_paid: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RestockReturn(Command[list[LedgerEntry]], roles=SERVICE):
    """ReturnReceived: restock the resellable lines (ledger reason ``return``)."""

    return_id: str
    order_id: str
    warehouse: str
    lines: tuple[ReturnedLine, ...]


@handler
async def commit_order_stock(cmd: CommitOrderStock, ctx: Ctx) -> None:
    """A paid order whose hold is unknown, released or expired cannot take stock from others;
    that is logged (the order service learns of expiries from StockReleased) and the event is
    consumed."""
    order_id = cmd.order_id
    async with ctx.uow as uow:
        if cmd.lines and cmd.currency:
            await uow.planning.add_revenue(
                [(ln.sku, ln.quantity, ln.total_minor) for ln in cmd.lines],
                cmd.currency,
                cmd.paid_at.date(),
            )
        try:
            await commit_held(uow, order_id, ctx.deps.clock())
        except NotFound:
            log.warning(
                "OrderPaid for %s: no reservation with this id; nothing committed", order_id
            )
        except Conflict as exc:
            log.error("OrderPaid for %s could not commit its reservation: %s", order_id, exc.detail)
        await uow.commit()


@handler
async def release_order_stock(cmd: ReleaseOrderStock, ctx: Ctx) -> None:
    order_id = cmd.order_id
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        existing = await uow.reservations.get(order_id)
        if existing is None:
            log.info("OrderCancelled for %s: no reservation; nothing to release", order_id)
            return
        if existing.status is ReservationStatus.HELD:
            await release_held(uow, order_id, ReleaseReason.CANCELLED, now)
        elif (
            existing.status is ReservationStatus.COMMITTED
            and cmd.was_paid
            and await uow.reservations.mark_restocked(order_id, now)
        ):
            for alloc in existing.allocations:
                await restock(
                    uow,
                    alloc.sku,
                    alloc.warehouse,
                    alloc.quantity,
                    LedgerReason.CANCEL,
                    order_id,
                    now,
                )
        await uow.commit()


@handler
async def restock_return(cmd: RestockReturn, ctx: Ctx) -> list[LedgerEntry]:
    """Where the units go: the warehouse named on the receipt when it is known; else the
    configured return warehouse (INVENTORY_DEFAULT_RETURN_WAREHOUSE) when it is known; else the
    warehouses that shipped them, from the committed allocation of the order's reservation
    (``plan_return`` decides partial returns of a split line); units whose origin cannot be
    determined go to the SKU's highest-priority warehouse, with a warning. Nothing here
    dead-letters the event: an unknown SKU, or no warehouse at all, is logged and skipped.

    Applied once per return id (``return_restocks``), on top of the consumer's inbox.
    """
    return_id, order_id = cmd.return_id, cmd.order_id
    now = ctx.deps.clock()
    entries: list[LedgerEntry] = []
    returned: dict[str, int] = {}
    for line in cmd.lines:
        if line.resellable and line.quantity > 0:
            returned[line.sku] = returned.get(line.sku, 0) + line.quantity
    async with ctx.uow as uow:
        status = await uow.reservations.lock_status(order_id) if order_id else None
        if await uow.returns.restocked(return_id):
            log.info("return %s was restocked before; nothing to do", return_id)
            return []
        for sku in sorted(returned):
            if await uow.skus.get(sku) is None:
                log.warning("return %s: unknown sku %s not restocked", return_id, sku)
                del returned[sku]
        if not returned:
            return []
        override = await _return_override(uow, ctx.deps.settings.default_return_warehouse, cmd)
        plan: dict[tuple[str, str], tuple[int, str]] = {}

        def put(sku: str, wh: str, quantity: int, source: str) -> None:
            before, first_source = plan.get((sku, wh), (0, source))
            plan[(sku, wh)] = (before + quantity, first_source)

        if override is not None:
            for sku, quantity in returned.items():
                put(sku, override[0], quantity, override[1])
        else:
            shipped = (
                await uow.reservations.allocations_of(order_id)
                if status == ReservationStatus.COMMITTED.value
                else []
            )
            origin, leftover = plan_return(
                returned,
                shipped,
                await uow.returns.returned_by_order(order_id),
                await uow.warehouses.preference(),
            )
            for a in origin:
                put(a.sku, a.warehouse, a.quantity, "origin")
            for sku, quantity in leftover.items():
                home = await uow.warehouses.home_of(sku)
                if home is None:
                    log.error(
                        "return %s: no warehouse exists; %d unit(s) of %s not restocked",
                        return_id,
                        quantity,
                        sku,
                    )
                    continue
                log.warning(
                    "return %s (order %s): the warehouse that shipped %d unit(s) of %s cannot be "
                    "determined; restocked at %s, the SKU's highest-priority warehouse",
                    return_id,
                    order_id or "-",
                    quantity,
                    sku,
                    home,
                )
                put(sku, home, quantity, "fallback")
        for (sku, wh), (quantity, source) in sorted(plan.items()):
            await uow.returns.add_restock(
                return_id=return_id,
                order_id=order_id,
                sku=sku,
                warehouse=wh,
                quantity=quantity,
                source=source,
                now=now,
            )
            entries.append(
                await restock(uow, sku, wh, quantity, LedgerReason.RETURN, return_id, now)
            )
        await uow.commit()
    return entries


async def _return_override(
    uow: InventoryUnitOfWork, configured: str | None, cmd: RestockReturn
) -> tuple[str, str] | None:
    """The warehouse all units of a return go to whatever their origin, and why ("receipt" or
    "configured"); None when neither the receipt nor the configuration names a known one."""
    if cmd.warehouse:
        if await uow.warehouses.get(cmd.warehouse) is not None:
            return cmd.warehouse, "receipt"
        log.warning(
            "return %s: receiving warehouse %r is unknown; restocking where the units came from",
            cmd.return_id,
            cmd.warehouse,
        )
    if configured:
        if await uow.warehouses.get(configured) is not None:
            return configured, "configured"
        log.warning(
            "return %s: INVENTORY_DEFAULT_RETURN_WAREHOUSE %r is unknown; restocking where the "
            "units came from",
            cmd.return_id,
            configured,
        )
    return None
