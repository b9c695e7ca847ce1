"""Goodwill compensation: an agent applies a configured rule to a ticket with one action; a
ticket is compensated at most once, and who approved it is recorded.

Never twice, even across crashes and retries: the ticket's compensation row (primary key: the
ticket) is committed as ``pending`` before pricing (a coupon) or order (a return) is called,
with an idempotency key derived from the ticket, so a retry after a failure (or a crash between
the call and the final commit) finds the same coupon or return instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler
from ecomops_platform.errors import Conflict, NotFound

from ..domain.compensation import (
    OrderFacts,
    check_applies,
    coupon_code,
    ensure_not_applied,
    find_rule,
)
from ..domain.tickets import Change
from .ports import Ctx, OrderSnapshot, TicketRecord
from .views import CompensationView


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyCompensation(Command[CompensationView], roles=(Role.OPS,)):
    ticket_id: str
    rule_id: str


async def _order(ctx: Ctx, record: TicketRecord, ticket_id: str) -> OrderSnapshot | None:
    """The ticket's order as it is now (a 503 when the order service cannot answer); it must
    still be the ticket customer's."""
    if not record.order_id:
        return None
    order = await ctx.deps.ports.orders.get(record.order_id)
    if order is None or order.customer_id != record.state.customer_id:
        raise Conflict(
            f"order {record.order_id} of ticket {ticket_id} is not the customer's",
            code="order-mismatch",
        )
    return order


@handler
async def apply_compensation(cmd: ApplyCompensation, ctx: Ctx) -> CompensationView:
    rule = find_rule(tuple(ctx.deps.compensation_rules), cmd.rule_id)
    async with ctx.uow:
        record = await ctx.uow.tickets.get(cmd.ticket_id)
        if record is None:
            raise NotFound(f"ticket {cmd.ticket_id} not found")
        existing = await ctx.uow.compensations.get(cmd.ticket_id)
    ensure_not_applied(
        existing.rule_id if existing else None,
        existing.status if existing else None,
        cmd.rule_id,
        cmd.ticket_id,
    )
    now = ctx.deps.clock()
    order = await _order(ctx, record, cmd.ticket_id)
    if existing is None:
        facts = (
            OrderFacts(order.order_id, order.customer_id, order.placed_at, order.delivered_at)
            if order
            else None
        )
        check_applies(
            rule,
            category=record.category,
            order=facts,
            promised_days=ctx.deps.promised_delivery_days,
            now=now,
        )
        coupon = rule.kind == "coupon"
        pending = CompensationView(
            ticket_id=cmd.ticket_id,
            rule_id=rule.rule_id,
            kind=rule.kind,
            status="pending",
            coupon_code=coupon_code(cmd.ticket_id) if coupon else None,
            percent=str(rule.percent) if coupon else None,
            approved_by=ctx.caller.subject,
            applied_at=now,
        )
        async with ctx.uow:
            if not await ctx.uow.compensations.reserve(pending):
                raise Conflict(
                    f"ticket {cmd.ticket_id} is being compensated already",
                    code="already-compensated",
                )
            await ctx.uow.commit()
        existing = pending
    return_id: str | None = None
    if existing.kind == "coupon":
        assert existing.coupon_code is not None and existing.percent is not None
        await ctx.deps.ports.coupons.issue(
            code=existing.coupon_code,
            percent=Decimal(existing.percent),
            starts_at=existing.applied_at,
            ends_at=existing.applied_at + timedelta(days=rule.valid_days),
            idempotency_key=f"support-compensation-{cmd.ticket_id}",
            name=f"Goodwill for support ticket {cmd.ticket_id}",
        )
        note = f"{rule.rule_id}: coupon {existing.coupon_code} ({existing.percent} off)"
    else:
        assert order is not None  # check_applies required it
        return_id = await ctx.deps.ports.returns.request_and_approve(
            order_id=order.order_id,
            lines=order.lines,
            reason=f"support ticket {cmd.ticket_id}: {rule.rule_id}",
            idempotency_key=f"support-return-{cmd.ticket_id}",
        )
        note = f"{rule.rule_id}: return {return_id} approved (refund on receipt)"
    async with ctx.uow:
        applied = await ctx.uow.compensations.mark_applied(cmd.ticket_id, now, return_id)
        if applied is None:  # applied by a concurrent retry meanwhile
            applied = await ctx.uow.compensations.get(cmd.ticket_id)
            assert applied is not None
            return applied
        await ctx.uow.tickets.add_change(
            cmd.ticket_id,
            Change(
                "compensated",
                record.state.status,
                record.state.tier,
                applied.approved_by,
                note,
                now,
            ),
        )
        await ctx.uow.commit()
    return applied
