"""Returns (RMA): request within the return window, approve or reject, receive the goods
(refund; inventory restocks the resellable lines on ReturnReceived)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound

from ..domain.models import Return, ReturnStatus, merge_quantities
from . import events as ev
from .orders import STAFF, actor, order_for
from .ports import Ctx
from .views import ReturnView

CUSTOMER_OR_OPS = (Role.CUSTOMER, Role.OPS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReturn(
    Command[ReturnView], roles=(Role.CUSTOMER, Role.OPS, Role.SERVICE), idempotent=True
):
    """Ask to return lines of a delivered order, within the return window (service: the
    support service's return-and-refund compensation, for the order's customer)."""

    order_id: str
    lines: list[tuple[str, int]]
    reason: str

    def idempotency_operation(self) -> str:
        return f"request_return:{self.order_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReturn(Query[ReturnView], roles=CUSTOMER_OR_OPS):
    return_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveReturn(Command[ReturnView], roles=STAFF):
    return_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectReturn(Command[ReturnView], roles=STAFF):
    return_id: str
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiveReturn(Command[ReturnView], roles=STAFF):
    """Goods received: (sku, quantity, resellable) per line; ``warehouse`` empty for
    inventory's default."""

    return_id: str
    lines: list[tuple[str, int, bool]]
    warehouse: str = ""


async def _return_for(ctx: Ctx, return_id: str, *, for_update: bool) -> tuple[Return, str]:
    loaded = await ctx.uow.returns.get(return_id, for_update=for_update)
    if loaded is None:
        raise NotFound(f"return {return_id} not found")
    ctx.ensure_visible(loaded[0].customer_id, "return", return_id)
    return loaded


@handler
async def request_return(cmd: RequestReturn, ctx: Ctx) -> ReturnView:
    async with ctx.uow:
        record = await order_for(ctx, cmd.order_id, for_update=True)
        order = record.order
        now = ctx.deps.clock()
        wanted = merge_quantities(cmd.lines)
        pending = await ctx.uow.returns.pending_units(cmd.order_id)
        order.check_return(
            wanted,
            pending,
            at=now,
            window=timedelta(days=ctx.deps.settings.return_window_days),
        )
        rma = Return(
            return_id=uuid.uuid4().hex,
            order_id=cmd.order_id,
            customer_id=order.customer_id,
            status=ReturnStatus.REQUESTED,
            lines=wanted,
            reason=cmd.reason,
            requested_at=now,
        )
        await ctx.uow.returns.add(rma, currency=order.currency)
        ctx.uow.add_event(
            ev.return_requested(
                return_id=rma.return_id, order=order, lines=wanted, reason=cmd.reason, at=now
            ),
            key=cmd.order_id,
        )
        await ctx.uow.commit()
        return ReturnView.of(rma, order.currency)


@handler
async def get_return(query: GetReturn, ctx: Ctx) -> ReturnView:
    async with ctx.uow:
        rma, currency = await _return_for(ctx, query.return_id, for_update=False)
        return ReturnView.of(rma, currency)


async def _decide(ctx: Ctx, return_id: str, *, approve: bool, note: str = "") -> ReturnView:
    async with ctx.uow:
        rma, currency = await _return_for(ctx, return_id, for_update=True)
        rma.move(
            ReturnStatus.APPROVED if approve else ReturnStatus.REJECTED,
            at=ctx.deps.clock(),
            action="approve" if approve else "reject",
        )
        await ctx.uow.returns.save(rma, decision_note=note[:500] or None)
        await ctx.uow.commit()
        return ReturnView.of(rma, currency)


@handler
async def approve_return(cmd: ApproveReturn, ctx: Ctx) -> ReturnView:
    return await _decide(ctx, cmd.return_id, approve=True)


@handler
async def reject_return(cmd: RejectReturn, ctx: Ctx) -> ReturnView:
    return await _decide(ctx, cmd.return_id, approve=False, note=cmd.note)


@handler
async def receive_return(cmd: ReceiveReturn, ctx: Ctx) -> ReturnView:
    async with ctx.uow:
        rma, currency = await _return_for(ctx, cmd.return_id, for_update=True)
        record = await order_for(ctx, rma.order_id, for_update=True)
        order = record.order
        now = ctx.deps.clock()
        received = merge_quantities([(sku, qty) for sku, qty, _ in cmd.lines])
        rma.check_received(received)
        rma.move(ReturnStatus.RECEIVED, at=now, action="receive")
        refund = order.receive_return(
            received, at=now, actor=actor(ctx.caller), return_id=cmd.return_id
        )
        refund_id = ""
        if refund > 0 and record.payment_id:
            refund_id = await ctx.deps.ports.payments.refund(
                payment_id=record.payment_id,
                amount_minor=refund,
                currency=order.currency,
                idempotency_key=f"return:{cmd.return_id}",
            )
        rma.received_lines = [
            {"sku": sku, "quantity": qty, "resellable": resellable}
            for sku, qty, resellable in cmd.lines
        ]
        rma.refunded_minor = refund
        await ctx.uow.returns.save(rma, refund_id=refund_id or None)
        await ctx.uow.orders.save(order, at=now)
        ctx.uow.add_event(
            ev.return_received(
                return_id=cmd.return_id,
                order=order,
                lines=rma.received_lines,
                refunded=refund,
                warehouse=cmd.warehouse,
                at=now,
            ),
            key=order.order_id,
        )
        if refund > 0:
            ctx.uow.add_event(
                ev.order_refunded(
                    order, amount=refund, refund_id=refund_id, return_id=cmd.return_id, at=now
                ),
                key=order.order_id,
            )
        await ctx.uow.commit()
        return ReturnView.of(rma, currency)
