"""Stock: adjustments (the append-only ledger), levels, availability; and what every stock
change publishes (StockLevelChanged, LowStock)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import Conflict, NotFound, Unprocessable

from ..domain.models import (
    AdjustmentReason,
    LedgerEntry,
    LedgerReason,
    RowLevel,
    SkuStatus,
    StockLevel,
    check_adjustment,
    check_adjustment_delta,
    crossed_below,
)
from . import events as ev
from .ports import Ctx, InventoryUnitOfWork
from .views import Availability, LedgerPage

#: Business data (ledger, revenue, plans) is not for customers; stock levels and SKUs are.
STAFF = (Role.OPS, Role.SERVICE, Role.PARTNER)
MAX_AVAILABILITY_SKUS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustStock(
    Command[LedgerEntry], roles=(Role.OPS,), idempotent=True, operation="create_adjustment"
):
    """Change on-hand stock (409 if it would go negative or below the reserved units)."""

    sku: str
    warehouse: str
    delta: int
    reason: AdjustmentReason
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStock(Query[StockLevel], roles=ANY_ROLE):
    sku: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAvailability(Query[list[Availability]], roles=ANY_ROLE):
    """Units available now per SKU, in the order asked; unknown SKUs report 0."""

    skus: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListLedger(Query[LedgerPage], roles=STAFF):
    sku: str
    before_id: int | None = None
    limit: int


# --- what stock changes publish ----------------------------------------------------------------


async def publish_levels(
    uow: InventoryUnitOfWork, skus: Sequence[str], now: datetime
) -> dict[str, StockLevel]:
    """StockLevelChanged for each SKU (this transaction's view), and today's stock-out mark."""
    levels = await uow.stock.levels(sorted(set(skus)))
    for level in levels.values():
        uow.add_event(ev.stock_level_changed(level, now), key=level.sku)
        await uow.planning.record_level(level, now.date(), only_stockout=True)
    return levels


def maybe_low_stock(
    uow: InventoryUnitOfWork,
    sku: str,
    warehouse: str,
    row: RowLevel,
    before: int,
    now: datetime,
) -> None:
    """LowStock when availability just fell below the row's reorder point."""
    if crossed_below(before, row.available, row.reorder_point):
        uow.add_event(
            ev.low_stock(
                sku, warehouse, row.available, row.reorder_point, row.suggested_order_quantity, now
            ),
            key=sku,
        )


async def restock(
    uow: InventoryUnitOfWork,
    sku: str,
    warehouse: str,
    quantity: int,
    reason: LedgerReason,
    reference: str,
    now: datetime,
) -> LedgerEntry:
    """Units come back on hand (a cancelled paid order, a return), with their ledger entry."""
    row = await uow.stock.adjust(sku, warehouse, quantity, now)
    assert row is not None
    entry = await uow.stock.add_ledger_entry(
        sku=sku,
        warehouse=warehouse,
        delta=quantity,
        reason=reason.value,
        reference=reference,
        on_hand_after=row.on_hand,
        now=now,
    )
    uow.add_event(ev.stock_adjusted(entry), key=sku)
    await publish_levels(uow, [sku], now)
    return entry


# --- handlers ------------------------------------------------------------------------------------


@handler
async def adjust_stock(cmd: AdjustStock, ctx: Ctx) -> LedgerEntry:
    check_adjustment_delta(cmd.delta)
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        if await uow.skus.get(cmd.sku) is None:
            raise Unprocessable(f"unknown sku {cmd.sku}", code="unknown-sku", sku=cmd.sku)
        if await uow.warehouses.get(cmd.warehouse) is None:
            raise Unprocessable(
                f"unknown warehouse {cmd.warehouse}",
                code="unknown-warehouse",
                warehouse=cmd.warehouse,
            )
        row = await uow.stock.adjust(cmd.sku, cmd.warehouse, cmd.delta, now)
        if row is None:
            on_hand, reserved = await uow.stock.row(cmd.sku, cmd.warehouse)
            check_adjustment(on_hand, reserved, cmd.delta)
            raise Conflict("adjustment refused; nothing was written", code="insufficient-stock")
        entry = await uow.stock.add_ledger_entry(
            sku=cmd.sku,
            warehouse=cmd.warehouse,
            delta=cmd.delta,
            reason=cmd.reason.value,
            reference=cmd.reference,
            on_hand_after=row.on_hand,
            now=now,
        )
        uow.add_event(ev.stock_adjusted(entry), key=cmd.sku)
        maybe_low_stock(uow, cmd.sku, cmd.warehouse, row, row.available - cmd.delta, now)
        await publish_levels(uow, [cmd.sku], now)
        await uow.commit()
    return entry


@handler
async def get_stock(query: GetStock, ctx: Ctx) -> StockLevel:
    async with ctx.uow as uow:
        if await uow.skus.get(query.sku) is None:
            raise NotFound(f"sku {query.sku} not found")
        return (await uow.stock.levels([query.sku]))[query.sku]


@handler
async def get_availability(query: GetAvailability, ctx: Ctx) -> list[Availability]:
    skus = query.skus
    if not skus or len(skus) > MAX_AVAILABILITY_SKUS:
        raise Unprocessable("ask for 1..200 SKUs", code="invalid-skus")
    unique = list(dict.fromkeys(skus))
    async with ctx.uow as uow:
        known = await uow.skus.get_many(unique)
        levels = await uow.stock.levels(list(known))
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


@handler
async def list_ledger(query: ListLedger, ctx: Ctx) -> LedgerPage:
    async with ctx.uow as uow:
        if await uow.skus.get(query.sku) is None:
            raise NotFound(f"sku {query.sku} not found")
        rows = await uow.stock.ledger(query.sku, query.before_id, query.limit + 1)
    return LedgerPage(rows[: query.limit], more=len(rows) > query.limit)
