"""Checkout: place an order (or check a cart out) through the saga (``saga.py``), and continue
or cancel an order held for risk review when the analyst's verdict arrives."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Command, Refused, handler
from ecomops_platform.errors import ServiceError, Unprocessable

from ..domain.models import OrderStatus
from . import events as ev
from .carts import ensure_open, load_cart
from .orders import BUYERS, actor, cancel, order_view
from .ports import Ctx, Placement
from .saga import CheckoutInput, SagaOutcome, run_checkout_saga
from .views import OrderView

log = logging.getLogger("order_service")

ORDER_ID_NAMESPACE = uuid.UUID("6b1d8f1e-0c55-4d6e-9a61-0e2c1f9a7d31")
REJECTED_DETAIL = "We could not accept this order. Please contact customer service."


def order_id_for(caller: Caller, operation: str, key: str) -> str:
    """One order id per idempotent request: a retry reuses the hold and redemption it made."""
    return uuid.uuid5(ORDER_ID_NAMESPACE, f"{caller.subject}|{operation}|{key}").hex


class OrderRejected(Unprocessable):
    """422 ``order-rejected`` naming the order (stored as rejected). Its problem document never
    carries ``instance``: the first answer and every replay are the same document."""

    code = "order-rejected"
    title = "Order rejected"

    def __init__(self, order_id: str) -> None:
        super().__init__(REJECTED_DETAIL, order_id=order_id)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return super().problem(None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(Command[OrderView], roles=BUYERS, idempotent=True, owned_by="customer_id"):
    """Checkout: quote, risk assessment, stock reservation, then the order is stored.
    Customers order for themselves; partners (marketplaces) and services name the customer."""

    customer_id: str | None = None
    currency: str
    lines: dict[str, int]
    coupon_codes: list[str] = field(default_factory=list)
    shipping_address: dict[str, str]
    client: dict[str, str] = field(default_factory=dict)

    def other_owner_refused(self, caller: Caller) -> ServiceError:
        return Unprocessable("customers place orders for themselves only", code="invalid-customer")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutCart(Command[OrderView], roles=(Role.CUSTOMER,), idempotent=True):
    """Place an order from the cart (the same saga as PlaceOrder)."""

    cart_id: str
    coupon_codes: list[str] = field(default_factory=list)
    shipping_address: dict[str, str]
    client: dict[str, str] = field(default_factory=dict)

    def idempotency_operation(self) -> str:
        return f"checkout_cart:{self.cart_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveRiskReview(Command[None], roles=(Role.SERVICE,)):
    """RiskReviewResolved: continue (→ awaiting_payment) or cancel an in_review order."""

    order_id: str
    decision: str
    analyst: str = ""


async def _checkout(
    ctx: Ctx, *, order_id: str, customer_id: str, data: CheckoutInput, cart_id: str | None = None
) -> OrderView:
    """The saga, storing the order and its event in the Idempotency-Key's unit of work. A
    rejected order is stored and refused (``Refused``: kept, and replayed for the key)."""
    uow = ctx.uow
    placed_by = actor(ctx.caller)

    async def store(outcome: SagaOutcome) -> None:
        order, quote, assessment = outcome.order, outcome.quote, outcome.assessment
        placement = Placement(
            coupon_codes=outcome.coupon_codes,
            shipping_address=data.shipping_address,
            client=data.client,
            quote_id=quote.quote_id,
            assessment_id=assessment.assessment_id,
            risk_decision=assessment.decision,
            risk_reasons=[{"code": r.code, "detail": r.detail} for r in assessment.reasons],
            cart_id=cart_id,
            placed_by=placed_by,
            reservation_expires_at=outcome.reservation_expires_at,
        )
        async with uow:
            await uow.orders.add(order, placement)
            if order.status is OrderStatus.REJECTED:
                uow.add_event(
                    ev.order_rejected(order, assessment_id=assessment.assessment_id),
                    key=order_id,
                )
            else:
                uow.add_event(
                    ev.order_placed(
                        order,
                        quote_id=quote.quote_id,
                        coupon_codes=outcome.coupon_codes,
                        client=data.client,
                        shipping_country=str(data.shipping_address.get("country") or ""),
                        assessment_id=assessment.assessment_id,
                    ),
                    key=order_id,
                )
                if cart_id is not None:
                    await uow.carts.check_out(cart_id, order_id=order_id, at=order.placed_at)
            await uow.commit()

    outcome = await run_checkout_saga(
        ctx.deps.ports,
        ctx.deps.settings,
        now=ctx.deps.clock(),
        order_id=order_id,
        customer_id=customer_id,
        actor=placed_by,
        data=data,
        store=store,
    )
    if outcome.order.status is OrderStatus.REJECTED:
        raise Refused(OrderRejected(order_id))
    return await order_view(uow, ctx.caller, order_id)


def _key(ctx: Ctx) -> str:
    assert ctx.idempotency_key is not None  # the bus requires it for these commands
    return ctx.idempotency_key


@handler
async def place_order(cmd: PlaceOrder, ctx: Ctx) -> OrderView:
    return await _checkout(
        ctx,
        order_id=order_id_for(ctx.caller, "place_order", _key(ctx)),
        customer_id=cmd.customer_id or ctx.caller.subject,
        data=CheckoutInput(
            currency=cmd.currency,
            lines=dict(cmd.lines),
            shipping_address=dict(cmd.shipping_address),
            coupon_codes=list(cmd.coupon_codes),
            client=dict(cmd.client),
        ),
    )


@handler
async def checkout_cart(cmd: CheckoutCart, ctx: Ctx) -> OrderView:
    async with ctx.uow:
        cart = await load_cart(ctx, cmd.cart_id, for_update=True)
        ensure_open(cart)
        lines = await ctx.uow.carts.lines(cmd.cart_id)
        if not lines:
            raise Unprocessable("the cart is empty", code="empty-cart")
        return await _checkout(
            ctx,
            order_id=order_id_for(ctx.caller, cmd.idempotency_operation(), _key(ctx)),
            customer_id=cart.customer_id,
            data=CheckoutInput(
                currency=cart.currency,
                lines=lines,
                shipping_address=dict(cmd.shipping_address),
                coupon_codes=list(cmd.coupon_codes),
                client=dict(cmd.client),
            ),
            cart_id=cmd.cart_id,
        )


@handler
async def resolve_risk_review(cmd: ResolveRiskReview, ctx: Ctx) -> None:
    """Idempotent: the consumer's inbox skips a duplicate event id, and an order that is no
    longer in review (already resolved, cancelled by the customer, expired) is left as it is."""
    async with ctx.uow:
        record = await ctx.uow.orders.get(cmd.order_id, for_update=True)
        if record is None:
            log.info("review resolved for unknown order %s; ignored", cmd.order_id)
            return
        order = record.order
        if order.status is not OrderStatus.IN_REVIEW:
            log.info("review resolved for order %s in %s; ignored", order.order_id, order.status)
            return
        who = f"risk:{cmd.analyst or 'analyst'}"
        now = ctx.deps.clock()
        settings = ctx.deps.settings
        if cmd.decision == "approve":
            expires = record.reservation_expires_at
            latest = (
                expires - timedelta(seconds=min(settings.reservation_margin, 60.0))
                if expires is not None
                else None
            )
            order.approve_review(
                at=now,
                payment_timeout=timedelta(seconds=settings.payment_timeout),
                latest_due=latest,
                actor=who,
            )
            await ctx.uow.orders.save(order, at=now)
        elif cmd.decision == "reject":
            await cancel(
                ctx,
                record,
                actor=who,
                event_reason="risk_rejected",
                note="risk review rejected",
                by_customer=False,
            )
        else:
            raise ValueError(f"unknown review decision {cmd.decision!r}")
        await ctx.uow.commit()
