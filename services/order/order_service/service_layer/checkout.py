"""Checkout: place an order (or check a cart out) through the saga (``saga.py``), and continue
or cancel an order held for risk review when the analyst's verdict arrives."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Command, Refused, handler
from ecomops_platform.errors import Conflict, ServiceError, Unprocessable

from ..domain.models import OrderStatus
from . import events as ev
from .carts import ensure_open, load_cart
from .orders import BUYERS, actor, cancel
from .ports import Ctx, OrderRecord, Placement
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
class PlaceOrder(
    Command[OrderView],
    roles=BUYERS,
    idempotent=True,
    claim_first=True,
    owned_by="customer_id",
):
    """Checkout: quote, risk assessment, stock reservation, then the order is stored.
    Customers order for themselves; partners (marketplaces) and services name the customer.
    ``claim_first``: the key is claimed and committed before the saga, which runs with no
    transaction open; a retry after a crash reuses the order id derived from the key."""

    customer_id: str | None = None
    currency: str
    lines: dict[str, int]
    coupon_codes: list[str] = field(default_factory=list)
    shipping_address: dict[str, str]
    client: dict[str, str] = field(default_factory=dict)
    # Fraud signals (optional), sent to risk: the order's e-mail, its billing address, and the
    # token of the payment method the customer will pay with (risk gets only its fingerprint).
    email: str | None = None
    billing_address: dict[str, str] | None = None
    payment_token: str | None = None

    def other_owner_refused(self, caller: Caller) -> ServiceError:
        return Unprocessable("customers place orders for themselves only", code="invalid-customer")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutCart(Command[OrderView], roles=(Role.CUSTOMER,), idempotent=True, claim_first=True):
    """Place an order from the cart (the same saga as PlaceOrder)."""

    cart_id: str
    coupon_codes: list[str] = field(default_factory=list)
    shipping_address: dict[str, str]
    client: dict[str, str] = field(default_factory=dict)
    # Fraud signals (optional), sent to risk: the order's e-mail, its billing address, and the
    # token of the payment method the customer will pay with (risk gets only its fingerprint).
    email: str | None = None
    billing_address: dict[str, str] | None = None
    payment_token: str | None = None

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
    """The saga (no transaction open: the bus claimed the Idempotency-Key and committed
    first), then one short transaction storing the order, its event and the key's response.
    A rejected order is stored and refused (``Refused``: kept, and replayed for the key)."""
    uow = ctx.uow
    placed_by = actor(ctx.caller)
    view: OrderView | None = None

    async def store(outcome: SagaOutcome) -> None:
        nonlocal view
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
            if cart_id is not None and order.status is not OrderStatus.REJECTED:
                # The cart was read before the saga, without a lock held across it: it must
                # still be open now (a concurrent checkout of the same cart under another key
                # loses here, and the saga releases its hold).
                ensure_open(await load_cart(ctx, cart_id, for_update=True))
                if await uow.carts.lines(cart_id) != data.lines:
                    raise Conflict(
                        f"cart {cart_id} changed during checkout; check it out again",
                        code="cart-changed",
                    )
            if order.status is OrderStatus.REJECTED:
                # The response first: it checks that the claim is still this attempt's.
                await ctx.store_refusal(OrderRejected(order_id))
                await uow.orders.add(order, placement)
                uow.add_event(
                    ev.order_rejected(order, assessment_id=assessment.assessment_id),
                    key=order_id,
                )
                await uow.commit()
                return
            # The view of what is written here (no read back: nothing else can change a row
            # this transaction creates), stored first as the key's response.
            view = OrderView.of(_placed_record(order, placement), [], staff=ctx.caller.is_staff)
            await ctx.store_result(view)
            await uow.orders.add(order, placement)
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
    assert view is not None
    return view


def _placed_record(order: Any, placement: Placement) -> OrderRecord:
    return OrderRecord(
        order=order,
        coupon_codes=list(placement.coupon_codes),
        shipping_address=dict(placement.shipping_address),
        quote_id=placement.quote_id,
        assessment_id=placement.assessment_id,
        risk_decision=placement.risk_decision,
        risk_reasons=list(placement.risk_reasons),
        cart_id=placement.cart_id,
        placed_by=placement.placed_by,
        reservation_expires_at=placement.reservation_expires_at,
        payment_id=None,
        payment_last4=None,
        paid_at=None,
        cancel_reason=None,
    )


async def _fraud_signals(
    ctx: Ctx,
    cmd: PlaceOrder | CheckoutCart,
    *,
    customer_id: str,
    seen_since: datetime | None = None,
) -> dict[str, Any]:
    """What checkout tells risk beside the order (``CheckoutInput`` fields):

    - the payment method's fingerprint, from the provider for the token (an unknown token is
      refused, 422 ``invalid-payment-token``, before anything is held);
    - when the account was created: the caller's ``account_created_at`` token claim when the
      customer orders for themselves, else when order first saw the customer (their first
      order here, or ``seen_since``: the checked-out cart's creation), else unknown.
    """
    fingerprint = ""
    if cmd.payment_token:
        fingerprint = await ctx.deps.ports.payments.fingerprint(token=cmd.payment_token)
    created: datetime | None = None
    caller = ctx.caller
    if caller.is_customer and caller.subject == customer_id:
        created = caller.account_created_at
    if created is None:
        first_order = await ctx.uow.first_order_at(customer_id)
        seen = [t for t in (first_order, seen_since) if t is not None]
        created = min(seen) if seen else None
    return {
        "email": cmd.email or "",
        "billing_address": dict(cmd.billing_address or {}),
        "payment_fingerprint": fingerprint,
        "account_created_at": created,
    }


def _key(ctx: Ctx) -> str:
    assert ctx.idempotency_key is not None  # the bus requires it for these commands
    return ctx.idempotency_key


@handler
async def place_order(cmd: PlaceOrder, ctx: Ctx) -> OrderView:
    customer_id = cmd.customer_id or ctx.caller.subject
    signals = await _fraud_signals(ctx, cmd, customer_id=customer_id)
    return await _checkout(
        ctx,
        order_id=order_id_for(ctx.caller, "place_order", _key(ctx)),
        customer_id=customer_id,
        data=CheckoutInput(
            currency=cmd.currency,
            lines=dict(cmd.lines),
            shipping_address=dict(cmd.shipping_address),
            coupon_codes=list(cmd.coupon_codes),
            client=dict(cmd.client),
            **signals,
        ),
    )


@handler
async def checkout_cart(cmd: CheckoutCart, ctx: Ctx) -> OrderView:
    # Read the cart in a short transaction of its own; it is checked again (locked, still
    # open) in the transaction that stores the order.
    async with ctx.uow:
        cart = await load_cart(ctx, cmd.cart_id, for_update=False)
        ensure_open(cart)
        lines = await ctx.uow.carts.lines(cmd.cart_id)
    if not lines:
        raise Unprocessable("the cart is empty", code="empty-cart")
    signals = await _fraud_signals(
        ctx, cmd, customer_id=cart.customer_id, seen_since=cart.created_at
    )
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
            **signals,
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
