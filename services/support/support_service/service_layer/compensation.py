"""Goodwill compensation: an agent applies a configured rule to a ticket with one action; a
ticket is compensated at most once, and who approved it is recorded.

Never twice, even across crashes and retries: the ticket's compensation row (primary key: the
ticket) is committed as ``pending`` before pricing is called, and pricing is called with an
idempotency key derived from the ticket, so a retry after a failure (or a crash between the
call and the final commit) finds the same coupon instead of making a second one.
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
from .ports import Ctx
from .views import CompensationView


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyCompensation(Command[CompensationView], roles=(Role.OPS,)):
    ticket_id: str
    rule_id: str


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
    if existing is None:
        facts: OrderFacts | None = None
        if record.order_id:
            # The order as it is now (a 503 when the order service cannot answer).
            order = await ctx.deps.ports.orders.get(record.order_id)
            if order is None or order.customer_id != record.state.customer_id:
                raise Conflict(
                    f"order {record.order_id} of ticket {cmd.ticket_id} is not the customer's",
                    code="order-mismatch",
                )
            facts = OrderFacts(
                order.order_id, order.customer_id, order.placed_at, order.delivered_at
            )
        check_applies(
            rule,
            category=record.category,
            order=facts,
            promised_days=ctx.deps.promised_delivery_days,
            now=now,
        )
        pending = CompensationView(
            ticket_id=cmd.ticket_id,
            rule_id=rule.rule_id,
            kind=rule.kind,
            status="pending",
            coupon_code=coupon_code(cmd.ticket_id),
            percent=str(rule.percent),
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
    assert existing.coupon_code is not None and existing.percent is not None
    await ctx.deps.ports.coupons.issue(
        code=existing.coupon_code,
        percent=Decimal(existing.percent),
        starts_at=existing.applied_at,
        ends_at=existing.applied_at + timedelta(days=rule.valid_days),
        idempotency_key=f"support-compensation-{cmd.ticket_id}",
        name=f"Goodwill for support ticket {cmd.ticket_id}",
    )
    async with ctx.uow:
        applied = await ctx.uow.compensations.mark_applied(cmd.ticket_id, now)
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
                f"{rule.rule_id}: coupon {applied.coupon_code} ({applied.percent} off)",
                now,
            ),
        )
        await ctx.uow.commit()
    return applied
