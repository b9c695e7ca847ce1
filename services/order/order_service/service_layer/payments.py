"""Payments: pay an order with a payment token; the periodic job cancelling orders whose
payment (or review) deadline has passed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler

from . import events as ev
from .orders import BUYERS, actor, cancel, order_for, order_view
from .ports import Ctx, Deadline, Deps, PaymentRecord
from .views import OrderView


@dataclass(frozen=True, slots=True, kw_only=True)
class PayOrder(Command[OrderView], roles=BUYERS, idempotent=True):
    """Pay with a tokenised payment method (402 when declined; the order stays payable)."""

    order_id: str
    payment_token: str

    def idempotency_operation(self) -> str:
        return f"pay_order:{self.order_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireUnpaidOrders(Command[int], roles=(Role.SERVICE,)):
    """Periodic: cancel unpaid orders past payment_due_at, and review orders past their hold.
    Safe with replicas: rows are locked with SKIP LOCKED."""


@handler
async def pay_order(cmd: PayOrder, ctx: Ctx) -> OrderView:
    assert ctx.idempotency_key is not None
    async with ctx.uow:
        record = await order_for(ctx, cmd.order_id, for_update=True)
        order = record.order
        now = ctx.deps.clock()
        order.pay(at=now, actor=actor(ctx.caller))  # refuses before anything is charged
        charge = await ctx.deps.ports.payments.charge(
            token=cmd.payment_token,
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"{cmd.order_id}:{ctx.idempotency_key}",
        )
        await ctx.uow.orders.save(
            order,
            at=now,
            payment=PaymentRecord(
                token=cmd.payment_token,
                payment_id=charge.payment_id,
                last4=charge.last4,
                fingerprint=charge.fingerprint,
                paid_at=now,
            ),
        )
        ctx.uow.add_event(
            ev.order_paid(
                order, payment_id=charge.payment_id, fingerprint=charge.fingerprint, at=now
            ),
            key=cmd.order_id,
        )
        await ctx.uow.commit()
        return await order_view(ctx.uow, ctx.caller, cmd.order_id)


_DUE: tuple[tuple[Deadline, Literal["payment_timeout", "reservation_expired"]], ...] = (
    ("payment", "payment_timeout"),
    ("review", "reservation_expired"),
)


@handler
async def expire_unpaid_orders(cmd: ExpireUnpaidOrders, ctx: Ctx) -> int:
    deps: Deps = ctx.deps
    now = deps.clock()
    done = 0
    async with ctx.uow:
        for deadline, reason in _DUE:
            due = await ctx.uow.orders.lock_due(
                deadline, now=now, limit=deps.settings.job_batch_size
            )
            for record in due:
                await cancel(
                    ctx,
                    record,
                    actor="system",
                    event_reason=reason,
                    note=reason,
                    by_customer=False,
                )
                done += 1
        await ctx.uow.commit()
    return done
