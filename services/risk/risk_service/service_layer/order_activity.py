"""What order events teach risk: velocity per customer / device / IP / payment fingerprint,
the customers' paid amounts (history), refunds, and review cases closed with their order;
and the periodic pruning of old velocity events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler

from ..domain.models import Dimension
from .ports import Ctx, PaidOrder

log = logging.getLogger("risk.handlers")

SERVICE = (Role.SERVICE,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOrderPlaced(Command[None], roles=SERVICE):
    """OrderPlaced: the order counts towards its customer's, device's and IP's velocity."""

    order_id: str
    customer_id: str
    device_id: str | None = None
    ip: str | None = None
    placed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOrderPaid(Command[None], roles=SERVICE):
    """OrderPaid: velocity per payment fingerprint, and the amount in the customer's history."""

    order_id: str
    customer_id: str
    currency: str
    amount_minor: int
    payment_fingerprint: str | None = None
    paid_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOrderCancelled(Command[None], roles=SERVICE):
    """OrderCancelled: a refunded payment leaves the amount history, and a review case still
    open for the order (cancelled or expired while in review) is closed with the order's
    reason and leaves the queue. Idempotent: only open cases are closed."""

    order_id: str
    was_paid: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneVelocity(Command[int], roles=SERVICE):
    """Periodic, one replica at a time: forget velocity events past the retention."""


@handler
async def record_order_placed(cmd: RecordOrderPlaced, ctx: Ctx) -> None:
    keys = {Dimension.CUSTOMER: cmd.customer_id}
    if cmd.device_id:
        keys[Dimension.DEVICE] = cmd.device_id
    if cmd.ip:
        keys[Dimension.IP] = cmd.ip
    async with ctx.uow:
        await ctx.uow.velocity.record(cmd.order_id, keys, cmd.placed_at, lock=False)
        await ctx.uow.commit()


@handler
async def record_order_paid(cmd: RecordOrderPaid, ctx: Ctx) -> None:
    async with ctx.uow:
        if cmd.payment_fingerprint:
            keys = {
                Dimension.PAYMENT_FINGERPRINT: cmd.payment_fingerprint,
                Dimension.CUSTOMER: cmd.customer_id,
            }
            await ctx.uow.velocity.record(cmd.order_id, keys, cmd.paid_at, lock=False)
        await ctx.uow.payments.record(
            PaidOrder(
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                currency=cmd.currency,
                amount_minor=cmd.amount_minor,
                payment_fingerprint=cmd.payment_fingerprint or None,
                paid_at=cmd.paid_at,
            )
        )
        await ctx.uow.commit()


@handler
async def record_order_cancelled(cmd: RecordOrderCancelled, ctx: Ctx) -> None:
    async with ctx.uow:
        if cmd.was_paid:
            await ctx.uow.payments.mark_refunded(cmd.order_id)
        closed = await ctx.uow.reviews.close_for_order(
            cmd.order_id, (cmd.reason or "cancelled")[:200], ctx.deps.clock()
        )
        await ctx.uow.commit()
    for review in closed:
        log.info(
            "review %s closed: order %s cancelled (%s)", review.review_id, cmd.order_id, cmd.reason
        )


@handler
async def prune_velocity(cmd: PruneVelocity, ctx: Ctx) -> int:
    before = ctx.deps.clock() - timedelta(seconds=ctx.deps.velocity_retention_seconds)
    async with ctx.uow:
        removed = await ctx.uow.velocity.prune(before)
        await ctx.uow.commit()
    if removed:
        log.info("pruned %d velocity events", removed)
    return removed
