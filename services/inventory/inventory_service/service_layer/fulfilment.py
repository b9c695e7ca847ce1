"""What inventory does when the order service's events arrive: a payment commits the order's
reservation, a cancellation releases it (or restocks what was paid), a received return puts
resellable units back where they were shipped from.

Called by the Kafka consumers (entrypoints/consumers.py), inside the consumer's unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import Conflict, NotFound

from ..adapters import events as ev
from ..adapters import repository as repo
from ..domain.models import (
    LedgerEntry,
    LedgerReason,
    ReleaseReason,
    ReservationStatus,
    plan_return,
)
from ..settings import InventorySettings
from .handlers import _publish_levels, commit_reservation, release_reservation

log = logging.getLogger("inventory.fulfilment")


async def on_order_paid(
    uow: UnitOfWork,
    order_id: str,
    lines: Sequence[tuple[str, int, int]],
    currency: str,
    paid_at: datetime,
) -> None:
    """Record revenue (for ABC) and commit the order's reservation, in the consumer's transaction.

    A paid order whose hold is unknown, released or expired cannot take stock from others; that is
    logged (the order service learns of expiries from StockReleased) and the event is consumed.
    """
    async with uow:
        if lines and currency:
            await repo.add_revenue(uow.session, lines, currency, paid_at.date())
        try:
            await commit_reservation(uow, order_id)
        except NotFound:
            log.warning(
                "OrderPaid for %s: no reservation with this id; nothing committed", order_id
            )
        except Conflict as exc:
            log.error("OrderPaid for %s could not commit its reservation: %s", order_id, exc.detail)
        await uow.commit()


async def on_order_cancelled(uow: UnitOfWork, order_id: str, was_paid: bool) -> None:
    """Release the hold; for a paid (committed) order the units go back on hand once."""
    now = utcnow()
    async with uow:
        s = uow.session
        existing = await repo.get_reservation(s, order_id)
        if existing is None:
            log.info("OrderCancelled for %s: no reservation; nothing to release", order_id)
            return
        if existing.status is ReservationStatus.HELD:
            await release_reservation(uow, order_id, ReleaseReason.CANCELLED, now)
        elif (
            existing.status is ReservationStatus.COMMITTED
            and was_paid
            and await repo.mark_restocked(s, order_id, now)
        ):
            for alloc in existing.allocations:
                await _restock(
                    uow,
                    alloc.sku,
                    alloc.warehouse,
                    alloc.quantity,
                    LedgerReason.CANCEL,
                    order_id,
                    now,
                )
        await uow.commit()


async def _restock(
    uow: UnitOfWork,
    sku: str,
    warehouse: str,
    quantity: int,
    reason: LedgerReason,
    reference: str,
    now: datetime,
) -> LedgerEntry:
    row = await repo.adjust(uow.session, sku, warehouse, quantity, now)
    assert row is not None
    entry = await repo.insert_ledger(
        uow.session,
        sku=sku,
        warehouse=warehouse,
        delta=quantity,
        reason=reason.value,
        reference=reference,
        on_hand_after=row.on_hand,
        now=now,
    )
    uow.add_event(ev.stock_adjusted(entry), key=sku)
    await _publish_levels(uow, [sku], now)
    return entry


async def on_return_received(
    uow: UnitOfWork,
    settings: InventorySettings,
    return_id: str,
    order_id: str,
    warehouse: str,
    lines: Sequence[tuple[str, int, bool]],
) -> list[LedgerEntry]:
    """Restock resellable returned lines (ledger reason ``return``, reference the return id).

    Where the units go: the warehouse named on the receipt (``warehouse``) when it is known;
    else the configured return warehouse (INVENTORY_DEFAULT_RETURN_WAREHOUSE) when it is known;
    else the warehouses that shipped them, from the committed allocation of the order's
    reservation (``plan_return`` decides partial returns of a split line); units whose origin
    cannot be determined go to the SKU's highest-priority warehouse, with a warning. Nothing here
    dead-letters the event: an unknown SKU, or no warehouse at all, is logged and skipped.

    Applied once per return id (``return_restocks``), on top of the consumer's inbox.
    """
    now = utcnow()
    entries: list[LedgerEntry] = []
    returned: dict[str, int] = {}
    for sku, quantity, resellable in lines:
        if resellable and quantity > 0:
            returned[sku] = returned.get(sku, 0) + quantity
    async with uow:
        s = uow.session
        status = await repo.lock_reservation_status(s, order_id) if order_id else None
        if await repo.return_restocked(s, return_id):
            log.info("return %s was restocked before; nothing to do", return_id)
            return []
        for sku in sorted(returned):
            if await repo.get_sku(s, sku) is None:
                log.warning("return %s: unknown sku %s not restocked", return_id, sku)
                del returned[sku]
        if not returned:
            return []
        override = await _return_override(s, settings, return_id, warehouse)
        plan: dict[tuple[str, str], tuple[int, str]] = {}

        def put(sku: str, wh: str, quantity: int, source: str) -> None:
            before, first_source = plan.get((sku, wh), (0, source))
            plan[(sku, wh)] = (before + quantity, first_source)

        if override is not None:
            for sku, quantity in returned.items():
                put(sku, override[0], quantity, override[1])
        else:
            shipped = (
                await repo.allocations_of(s, order_id)
                if status == ReservationStatus.COMMITTED.value
                else []
            )
            origin, leftover = plan_return(
                returned,
                shipped,
                await repo.returned_by_order(s, order_id),
                await repo.warehouse_preference(s),
            )
            for a in origin:
                put(a.sku, a.warehouse, a.quantity, "origin")
            for sku, quantity in leftover.items():
                home = await repo.home_warehouse(s, sku)
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
            await repo.insert_return_restock(
                s,
                return_id=return_id,
                order_id=order_id,
                sku=sku,
                warehouse=wh,
                quantity=quantity,
                source=source,
                now=now,
            )
            entries.append(
                await _restock(uow, sku, wh, quantity, LedgerReason.RETURN, return_id, now)
            )
        await uow.commit()
    return entries


async def _return_override(
    s: Any, settings: InventorySettings, return_id: str, warehouse: str
) -> tuple[str, str] | None:
    """The warehouse all units of a return go to whatever their origin, and why ("receipt" or
    "configured"); None when neither the receipt nor the configuration names a known one."""
    if warehouse:
        if await repo.get_warehouse(s, warehouse) is not None:
            return warehouse, "receipt"
        log.warning(
            "return %s: receiving warehouse %r is unknown; restocking where the units came from",
            return_id,
            warehouse,
        )
    configured = settings.default_return_warehouse
    if configured:
        if await repo.get_warehouse(s, configured) is not None:
            return configured, "configured"
        log.warning(
            "return %s: INVENTORY_DEFAULT_RETURN_WAREHOUSE %r is unknown; restocking where the "
            "units came from",
            return_id,
            configured,
        )
    return None
