"""Order events, kept for the contact rate (orders per period) and as the order's owner and
value when the order service cannot be asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler

from .ports import Ctx

SERVICE = (Role.SERVICE,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOrderPlaced(Command[None], roles=SERVICE):
    order_id: str
    customer_id: str
    total_minor: int
    currency: str
    placed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOrderDelivered(Command[None], roles=SERVICE):
    order_id: str
    delivered_at: datetime


@handler
async def record_order_placed(cmd: RecordOrderPlaced, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.order_activity.placed(
            cmd.order_id, cmd.customer_id, cmd.total_minor, cmd.currency, cmd.placed_at
        )
        await ctx.uow.commit()


@handler
async def record_order_delivered(cmd: RecordOrderDelivered, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.order_activity.delivered(cmd.order_id, cmd.delivered_at)
        await ctx.uow.commit()
