"""The checkout saga, orchestration only: quote → assessment → reservation → coupon redemption
→ store, with compensation. Persistence is the ``store`` callback (the handler writes the order
and its event in the Idempotency-Key's transaction), so the orchestration is unit-tested with
fakes of the ports and of the store.

- reject: ``store`` is called with a ``rejected`` order; nothing is held.
- out of stock (``OutOfStock`` from inventory): nothing is held, nothing stored. The SKUs are
  remembered for a few seconds (``Ports.sold_out``): the next checkouts for them ask
  inventory's availability before anything else and are refused the same way, without a
  quote or an assessment, while inventory still has too few.
- a dependency unavailable before the hold: the error propagates, nothing is held.
- inventory past its deadline: the hold may exist → released, then the error propagates.
- anything failing after the hold (redemption, ``store``): the hold and the redemption are
  released, then the error propagates — except ``ClaimLost`` (a retry took the key over and
  owns the hold, made under the same order id). A failing compensation is logged; the hold
  expires (TTL) and pricing sweeps unconfirmed redemptions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ecomops_platform.bus import ClaimLost
from ecomops_platform.errors import DependencyUnavailable, Unprocessable

from ..domain.models import Order, OrderLine, OrderStatus, TimelineEntry
from ..settings import OrderSettings
from .ports import Assessment, AssessmentRequest, OutOfStock, Ports, Quote

log = logging.getLogger("order_service.saga")


@dataclass
class CheckoutInput:
    currency: str
    lines: dict[str, int]
    shipping_address: dict[str, str]
    coupon_codes: list[str] = field(default_factory=list)
    client: dict[str, str] = field(default_factory=dict)
    # Fraud signals, passed to risk (never card data).
    email: str = ""
    billing_address: dict[str, str] = field(default_factory=dict)
    payment_fingerprint: str = ""
    account_created_at: datetime | None = None


@dataclass
class SagaOutcome:
    order: Order
    quote: Quote
    assessment: Assessment
    coupon_codes: list[str]
    reservation_expires_at: datetime | None = None


Store = Callable[[SagaOutcome], Awaitable[None]]


async def compensate(ports: Ports, order_id: str, *, hold: bool, redemption: bool) -> None:
    """Undo what the saga did on the other services; a failure is logged, the hold expires."""
    if hold:
        try:
            await ports.inventory.release(reservation_id=order_id)
        except Exception as exc:  # noqa: BLE001 - the hold expires by itself
            log.warning("could not release hold %s (it will expire): %s", order_id, exc)
    if redemption:
        try:
            await ports.pricing.release_redemption(order_id=order_id, reason="checkout_failed")
        except Exception as exc:  # noqa: BLE001 - logged for ops; pricing also expires it
            log.warning("could not release coupon redemption of %s: %s", order_id, exc)


def order_from_quote(order_id: str, customer_id: str, quote: Quote, now: datetime) -> Order:
    return Order(
        order_id=order_id,
        customer_id=customer_id,
        status=OrderStatus.AWAITING_PAYMENT,
        currency=quote.currency,
        lines=[
            OrderLine(
                sku=q.sku,
                quantity=q.quantity,
                unit_price_minor=q.unit_price_minor,
                discount_minor=q.discount_minor,
                total_minor=q.total_minor,
            )
            for q in quote.lines
        ],
        placed_at=now,
    )


async def _refuse_if_still_sold_out(ports: Ports, lines: dict[str, int]) -> None:
    """Refuse at once (``OutOfStock``, as inventory would) a checkout for a SKU recently found
    short that inventory still has too few of. A SKU inventory no longer lists goes the usual
    way (its reservation says why)."""
    suspects = ports.sold_out.suspects(lines, time.monotonic())
    if not suspects:
        return
    available = await ports.inventory.availability(suspects)
    short = [sku for sku in suspects if sku in available and available[sku] < lines[sku]]
    if short:
        ports.sold_out.remember(short, time.monotonic())
        raise OutOfStock(
            [
                {"sku": sku, "requested": lines[sku], "available": max(0, available[sku])}
                for sku in short
            ]
        )
    ports.sold_out.forget(suspects)


async def run_checkout_saga(
    ports: Ports,
    settings: OrderSettings,
    *,
    now: datetime,
    order_id: str,
    customer_id: str,
    actor: str,
    data: CheckoutInput,
    store: Store,
) -> SagaOutcome:
    if not data.lines:
        raise Unprocessable("an order needs at least one line", code="empty-order")
    await _refuse_if_still_sold_out(ports, data.lines)
    quote = await ports.pricing.create_quote(
        customer_id=customer_id,
        currency=data.currency,
        lines=data.lines,
        coupon_codes=data.coupon_codes,
    )
    order = order_from_quote(order_id, customer_id, quote, now)
    assessment = await ports.risk.assess_order(
        AssessmentRequest(
            order_id=order_id,
            customer_id=customer_id,
            amount_minor=quote.total_minor,
            currency=quote.currency,
            lines=quote.lines,
            ip=str(data.client.get("ip") or ""),
            device_id=str(data.client.get("device_id") or ""),
            shipping_country=str(data.shipping_address.get("country") or ""),
            email=data.email,
            billing_country=str(data.billing_address.get("country") or ""),
            payment_fingerprint=data.payment_fingerprint,
            account_created_at=data.account_created_at,
        )
    )
    outcome = SagaOutcome(
        order=order,
        quote=quote,
        assessment=assessment,
        coupon_codes=list(quote.coupon_codes or data.coupon_codes),
    )
    if assessment.decision == "reject":
        order.status = OrderStatus.REJECTED
        order.timeline.append(TimelineEntry(OrderStatus.REJECTED.value, now, "risk", "rejected"))
        await store(outcome)
        return outcome

    review = assessment.decision == "review"
    ttl = settings.review_reservation_ttl_seconds if review else settings.reservation_ttl_seconds
    try:
        expires = await ports.inventory.reserve(
            reservation_id=order_id, lines=data.lines, ttl_seconds=ttl
        )
    except (DependencyUnavailable, asyncio.CancelledError):
        # The hold may have been made just before the deadline (or the cancellation): release
        # it (or it expires).
        await compensate(ports, order_id, hold=True, redemption=False)
        raise
    except OutOfStock as exc:
        ports.sold_out.remember((str(s.get("sku")) for s in exc.shortages), time.monotonic())
        raise
    expires = expires or now + timedelta(seconds=ttl)
    outcome.reservation_expires_at = expires
    redeemed = bool(outcome.coupon_codes)
    try:
        if redeemed:
            await ports.pricing.redeem_quote(
                quote_id=quote.quote_id, order_id=order_id, customer_id=customer_id, quote=quote
            )
        # Payment is never due after the hold expires.
        latest_due = expires - timedelta(seconds=min(settings.reservation_margin, 60.0))
        if review:
            order.status = OrderStatus.IN_REVIEW
            order.review_deadline = max(
                now,
                min(
                    now + timedelta(seconds=settings.review_hold),
                    latest_due - timedelta(seconds=settings.payment_timeout),
                ),
            )
        else:
            order.payment_due_at = max(
                now, min(now + timedelta(seconds=settings.payment_timeout), latest_due)
            )
        order.timeline.append(TimelineEntry(order.status.value, now, actor, "order placed"))
        await store(outcome)
    except ClaimLost:
        # A retry took the Idempotency-Key over (this attempt outlived its lease): the hold
        # and the redemption, made under the same order id, are the retry's now.
        raise
    except BaseException:
        await compensate(ports, order_id, hold=True, redemption=redeemed)
        raise
    return outcome
