"""Orders: reading them (one, a page), cancelling one; and what the other capabilities share —
who may see an order, the caller as an actor, the order view, the cancellation itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..domain.models import OrderStatus, actor_of
from . import events as ev
from .ports import Ctx, OrderRecord, OrderUnitOfWork
from .views import OrderPage, OrderView

#: Customers, marketplaces (partners) and other services place and pay orders.
BUYERS = (Role.CUSTOMER, Role.PARTNER, Role.SERVICE)
#: Ops, carriers (partners) and services record shipments and deliveries.
FULFILLERS = (Role.OPS, Role.PARTNER, Role.SERVICE)
STAFF = (Role.OPS, Role.SERVICE)


def actor(caller: Caller) -> str:
    return actor_of(caller.role.value, caller.subject)


def may_see_order(caller: Caller, record: OrderRecord, *, fulfilment: bool = False) -> bool:
    """Customers see their own orders; partners the orders they placed (marketplaces), and any
    order for fulfilment (carriers post shipments and deliveries); ops and services all."""
    if caller.is_customer:
        return record.order.customer_id == caller.subject
    if caller.role is Role.PARTNER and not fulfilment:
        return record.placed_by == actor(caller)
    return True


async def order_for(
    ctx: Ctx, order_id: str, *, for_update: bool, fulfilment: bool = False
) -> OrderRecord:
    """The order, if the caller may see it (404 otherwise, so that ids do not leak)."""
    record = await ctx.uow.orders.get(order_id, for_update=for_update)
    if record is None or not may_see_order(ctx.caller, record, fulfilment=fulfilment):
        raise NotFound(f"order {order_id} not found")
    return record


async def order_view(uow: OrderUnitOfWork, caller: Caller, order_id: str) -> OrderView:
    """The order as stored now (inside the caller's unit of work)."""
    record = await uow.orders.get(order_id)
    if record is None:
        raise NotFound(f"order {order_id} not found")
    shipments = await uow.orders.shipments(order_id)
    return OrderView.of(record, shipments, staff=caller.is_staff)


async def cancel(
    ctx: Ctx,
    record: OrderRecord,
    *,
    actor: str,
    event_reason: str,
    note: str,
    by_customer: bool,
) -> None:
    """Cancel (refunding what was paid) and record OrderCancelled (and OrderRefunded)."""
    order = record.order
    now = ctx.deps.clock()
    was_paid = record.payment_id is not None
    refund = order.cancel(at=now, actor=actor, reason=note or event_reason, by_customer=by_customer)
    refund_id = ""
    if refund > 0 and record.payment_id:
        refund_id = await ctx.deps.ports.payments.refund(
            payment_id=record.payment_id,
            amount_minor=refund,
            currency=order.currency,
            idempotency_key=f"cancel:{order.order_id}",
        )
    await ctx.uow.orders.save(order, at=now, cancel_reason=(note or event_reason)[:200])
    ctx.uow.add_event(
        ev.order_cancelled(
            order,
            reason=event_reason,
            quote_id=record.quote_id,
            was_paid=was_paid,
            refunded=refund,
            at=now,
        ),
        key=order.order_id,
    )
    if refund > 0:
        ctx.uow.add_event(
            ev.order_refunded(order, amount=refund, refund_id=refund_id, return_id="", at=now),
            key=order.order_id,
        )


# --- messages -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class GetOrder(Query[OrderView], roles=ANY_ROLE):
    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOrders(Query[OrderPage], roles=ANY_ROLE):
    status: str | None = None
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command[OrderView], roles=(Role.CUSTOMER, Role.OPS, Role.SERVICE)):
    order_id: str
    reason: str = ""


# --- handlers -------------------------------------------------------------------------------
@handler
async def get_order(query: GetOrder, ctx: Ctx) -> OrderView:
    async with ctx.uow:
        await order_for(ctx, query.order_id, for_update=False)
        return await order_view(ctx.uow, ctx.caller, query.order_id)


@handler
async def list_orders(query: ListOrders, ctx: Ctx) -> OrderPage:
    """Newest first; customers see their own, partners the orders they placed."""
    size = check_limit(query.limit)
    position = decode_cursor(query.cursor)
    if query.status is not None and query.status not in {s.value for s in OrderStatus}:
        raise Unprocessable(f"unknown status {query.status!r}", code="invalid-status")
    before: tuple[datetime, str] | None = None
    if position is not None:
        try:
            before = (datetime.fromisoformat(str(position["placed_at"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    caller = ctx.caller
    async with ctx.uow:
        rows = await ctx.uow.orders.page(
            customer_id=caller.subject if caller.is_customer else None,
            placed_by=actor(caller) if caller.role is Role.PARTNER else None,
            status=OrderStatus(query.status) if query.status else None,
            before=before,
            limit=size + 1,
        )
        page = rows[:size]
        items = [await order_view(ctx.uow, caller, order_id) for order_id, _ in page]
    next_cursor = None
    if len(rows) > size:
        last_id, last_at = page[-1]
        next_cursor = encode_cursor({"placed_at": last_at.isoformat(), "id": last_id})
    return OrderPage(items=items, next_cursor=next_cursor)


@handler
async def cancel_order(cmd: CancelOrder, ctx: Ctx) -> OrderView:
    """Customers before shipment, ops before delivery; a paid order is refunded."""
    async with ctx.uow:
        record = await order_for(ctx, cmd.order_id, for_update=True)
        await cancel(
            ctx,
            record,
            actor=actor(ctx.caller),
            event_reason="customer" if ctx.caller.is_customer else "ops",
            note=cmd.reason,
            by_customer=ctx.caller.is_customer,
        )
        await ctx.uow.commit()
        return await order_view(ctx.uow, ctx.caller, cmd.order_id)
