"""History the order service imports (``OrderImported``): the order's units join the demand
history (forecasts, replenishment) and its line totals the revenue history (ABC), on the day it
was ordered — the same rows a paid and committed live order adds — and nothing else: no stock
moves, no reservation is made.

A live order's demand is counted where its units were allocated; an imported order never had
an allocation, so its units count at the SKU's home warehouse (the highest-priority warehouse
holding it, else the highest-priority warehouse). With no warehouse at all only the revenue is
kept. Sent by the consumer as the service itself; the consumer's inbox applies each event once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.bus import Command, handler

from ..domain.models import Allocation
from .fulfilment import SERVICE, PaidLine
from .ports import Ctx

log = logging.getLogger("inventory.history")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordImportedSales(Command[None], roles=SERVICE):
    """OrderImported: add the order's units to demand and its totals to revenue."""

    order_id: str
    lines: tuple[PaidLine, ...]
    currency: str
    ordered_at: datetime


@handler
async def record_imported_sales(cmd: RecordImportedSales, ctx: Ctx) -> None:
    day = cmd.ordered_at.date()
    units: dict[str, int] = {}
    for line in cmd.lines:
        if line.sku and line.quantity > 0:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    async with ctx.uow as uow:
        if cmd.currency:
            await uow.planning.add_revenue(
                [(ln.sku, ln.quantity, ln.total_minor) for ln in cmd.lines if ln.sku],
                cmd.currency,
                day,
            )
        demand: list[Allocation] = []
        for sku, quantity in sorted(units.items()):
            home = await uow.warehouses.home_of(sku)
            if home is None:
                log.warning(
                    "imported order %s: no warehouse exists; demand of %s not recorded",
                    cmd.order_id,
                    sku,
                )
                continue
            demand.append(Allocation(sku=sku, warehouse=home, quantity=quantity))
        if demand:
            await uow.planning.add_demand(demand, day)
        await uow.commit()
