"""History the order service imports (``OrderImported``): learnt exactly as a live order that
was placed and then paid — the funnel's orders, the basket's co-purchases, purchase interactions
and popularity (time-decayed from when it was ordered), the customer's spend and RFM segment —
with the same handlers, in one transaction (the consumer's, which also records the event in the
inbox). Applied once per order id (``record_paid`` refuses a second payment of one order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.bus import Command, handler

from .learning import (
    SELF,
    LearnFromPaidOrder,
    OrderLine,
    RecordPlacedOrder,
    learn_from_paid_order,
    record_placed_order,
)
from .ports import Ctx


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnFromImportedOrder(Command[None], roles=SELF):
    """An imported historical order: placed and paid at ``ordered_at``."""

    event_id: str
    order_id: str
    customer_id: str
    currency: str
    total_minor: int
    ordered_at: datetime
    lines: tuple[OrderLine, ...]
    sent_at: datetime


@handler
async def learn_from_imported_order(cmd: LearnFromImportedOrder, ctx: Ctx) -> None:
    async with ctx.uow:
        await record_placed_order(
            RecordPlacedOrder(
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                currency=cmd.currency,
                total_minor=cmd.total_minor,
                placed_at=cmd.ordered_at,
                lines=cmd.lines,
            ),
            ctx,
        )
        await learn_from_paid_order(
            LearnFromPaidOrder(
                event_id=cmd.event_id,
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                currency=cmd.currency,
                total_minor=cmd.total_minor,
                paid_at=cmd.ordered_at,
                lines=cmd.lines,
                sent_at=cmd.sent_at,
            ),
            ctx,
        )
        await ctx.uow.commit()
