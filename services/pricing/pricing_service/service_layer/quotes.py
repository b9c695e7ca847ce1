"""Trusted quotes: price a basket with the best combination of promotions, store it with an
expiry; and what order's checkout does with it over gRPC — redeem its promotion uses for one
order, or give them back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Conflict, Forbidden, NotFound, ServiceError, Unprocessable

from ..domain.basket import BasketLine, line_floor_room, price_basket
from ..domain.models import (
    REASON_TEXT,
    QuoteContext,
    check_currency,
    ineligibility,
    normalise_codes,
)
from ..domain.records import (
    REDEEMED,
    RELEASED,
    QuoteRecord,
    RedeemResult,
    RedemptionRecord,
    ReleaseResult,
)
from ..settings import PricingSettings
from . import events
from . import metrics as pricing_metrics
from .ids import new_id
from .ports import Ctx
from .views import QuoteOut, RedeemOut, ReleaseOut

#: Who may ask for and read quotes (customers only their own).
QUOTERS = (Role.CUSTOMER, Role.OPS, Role.SERVICE)
#: Who takes part in checkout.
CHECKOUT = (Role.SERVICE, Role.OPS)


class QuoteExpired(ServiceError):
    """A quote past its expiry is no longer trusted (REST 410, gRPC FAILED_PRECONDITION)."""

    status = 410
    code = "quote-expired"
    title = "Quote expired"


@dataclass(frozen=True, slots=True)
class QuoteLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateQuote(Command[QuoteOut], roles=QUOTERS, idempotent=True, owned_by="customer_id"):
    """Price a basket; staff may quote for anyone (or anonymously)."""

    customer_id: str | None = None
    currency: str
    lines: tuple[QuoteLine, ...]
    coupon_codes: tuple[str, ...] = ()

    def other_owner_refused(self, caller: Caller) -> ServiceError:
        return Forbidden("customers may only ask quotes for themselves")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateQuoteByRpc(CreateQuote, operation="grpc.create_quote"):
    """gRPC's CreateQuote with an idempotency_key (its own key namespace, as before)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateQuoteUnkeyed(CreateQuote, idempotent=False):
    """gRPC's CreateQuote without an idempotency_key (the contract makes it optional)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuote(Query[QuoteOut], roles=QUOTERS):
    quote_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemQuote(Command[RedeemOut], roles=CHECKOUT):
    """Checkout: consume the quote's promotion uses for one order (idempotent per order)."""

    quote_id: str
    order_id: str
    customer_id: str | None = None
    expected_lines: tuple[QuoteLine, ...] = ()
    expected_total_minor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseRedemption(Command[ReleaseOut], roles=CHECKOUT):
    """Give the promotion uses of an order back, exactly once (RPC, OrderCancelled,
    OrderRejected, the sweep of unconfirmed redemptions)."""

    order_id: str
    reason: str = "released"
    only_unconfirmed: bool = False


def _check_lines(lines: Sequence[QuoteLine], settings: PricingSettings) -> None:
    if not lines:
        raise Unprocessable("a quote needs at least one line", code="invalid-quote")
    if len(lines) > settings.max_quote_lines:
        raise Unprocessable(
            f"a quote takes at most {settings.max_quote_lines} lines", code="invalid-quote"
        )
    bad = [
        {"sku": line.sku, "quantity": line.quantity}
        for line in lines
        if line.quantity < 1 or line.quantity > settings.max_line_quantity
    ]
    if bad:
        raise Unprocessable(
            f"quantities must be between 1 and {settings.max_line_quantity}",
            code="invalid-quantity",
            lines=bad,
        )
    counts = Counter(line.sku for line in lines)
    dupes = sorted(sku for sku, n in counts.items() if n > 1)
    if dupes:
        raise Unprocessable(
            f"each SKU may appear once; repeated: {', '.join(dupes)}",
            code="duplicate-sku",
            skus=dupes,
        )
    empty = [line for line in lines if not line.sku.strip()]
    if empty:
        raise Unprocessable("sku must not be empty", code="invalid-quote")


@handler
async def create_quote(cmd: CreateQuote, ctx: Ctx) -> QuoteOut:
    settings = ctx.deps.settings
    currency = check_currency(cmd.currency)
    now = ctx.deps.clock()
    _check_lines(cmd.lines, settings)
    codes = normalise_codes(cmd.coupon_codes)
    skus = [line.sku for line in cmd.lines]
    customer_id = cmd.customer_id
    uow = ctx.uow
    async with uow:
        known = await uow.catalog.skus(skus)
        unknown = [s for s in skus if s not in known]
        if unknown:
            raise Unprocessable(
                f"unknown SKU(s): {', '.join(unknown)}", code="unknown-sku", skus=unknown
            )
        discontinued = [s for s in skus if known[s].status == "discontinued"]
        if discontinued:
            raise Unprocessable(
                f"discontinued SKU(s): {', '.join(discontinued)}",
                code="sku-discontinued",
                skus=discontinued,
            )
        prices = await uow.prices.prices_for(skus, currency)
        unpriced = [s for s in skus if s not in prices]
        if unpriced:
            raise Unprocessable(
                f"no price in {currency} for: {', '.join(unpriced)}",
                code="no-price",
                skus=unpriced,
                currency=currency,
            )
        basket = [
            BasketLine(
                sku=line.sku,
                category=known[line.sku].category,
                quantity=line.quantity,
                unit_price_minor=prices[line.sku].terms.list_price_minor,
                floor_room_minor=line_floor_room(
                    prices[line.sku].terms, line.quantity, settings.margin_floor
                ),
            )
            for line in cmd.lines
        ]
        categories = sorted({b.category for b in basket if b.category})
        candidates = await uow.promotions.candidates(now, currency, skus, categories, codes)
        by_code = await uow.promotions.by_code(codes) if codes else {}
        pool = {p.id: p for p in [*candidates, *by_code.values()]}
        # Look the customer up only when a promotion in play targets segments or limits uses.
        targeted = any(p.segments for p in pool.values())
        limited = sorted(i for i, p in pool.items() if p.per_customer_limit is not None)
        segment = await uow.catalog.segment_of(customer_id) if customer_id and targeted else None
        uses = (
            await uow.promotions.customer_uses(customer_id, limited)
            if customer_id and limited
            else {}
        )
        context = QuoteContext(
            now=now,
            currency=currency,
            customer_id=customer_id,
            segment=segment,
            subtotal_minor=sum(b.gross_minor for b in basket),
            customer_uses=uses,
        )
        problems: list[dict[str, str]] = []
        for code in codes:
            promotion = by_code.get(code)
            reason = "unknown" if promotion is None else ineligibility(promotion, context, basket)
            if reason is not None:
                problems.append({"code": code, "reason": reason, "detail": REASON_TEXT[reason]})
        if problems:
            listed = "; ".join(f"{p['code']}: {p['detail']}" for p in problems)
            raise Unprocessable(
                f"coupon(s) cannot be applied: {listed}",
                code="invalid-coupon",
                title="Coupon not applicable",
                coupons=problems,
            )
        eligible = [p for p in candidates if ineligibility(p, context, basket) is None]
        priced = price_basket(basket, eligible)
        quote = QuoteRecord(
            quote_id=new_id("q"),
            customer_id=customer_id,
            currency=currency,
            lines=priced.lines,
            subtotal_minor=priced.subtotal_minor,
            discount_total_minor=priced.discount_total_minor,
            total_minor=priced.total_minor,
            coupon_codes=codes,
            promotion_ids=[p.id for p in priced.applied],
            created_at=now,
            expires_at=now + timedelta(seconds=settings.quote_ttl_seconds),
        )
        await uow.quotes.insert(quote)
        await uow.commit()
    pricing_metrics.quotes_total.labels(currency, str(quote.discount_total_minor > 0).lower()).inc()
    return QuoteOut.of(quote)


@handler
async def create_quote_by_rpc(cmd: CreateQuoteByRpc, ctx: Ctx) -> QuoteOut:
    return await create_quote(cmd, ctx)


@handler
async def create_quote_unkeyed(cmd: CreateQuoteUnkeyed, ctx: Ctx) -> QuoteOut:
    return await create_quote(cmd, ctx)


@handler
async def get_quote(query: GetQuote, ctx: Ctx) -> QuoteOut:
    """A quote exactly as quoted; customers see only their own; expired → QuoteExpired."""
    now = ctx.deps.clock()
    async with ctx.uow:
        quote = await ctx.uow.quotes.get(query.quote_id)
    if quote is None:
        raise NotFound(f"quote {query.quote_id} not found")
    ctx.ensure_visible(quote.customer_id, "quote", query.quote_id)
    if quote.expires_at <= now:
        raise QuoteExpired(
            f"quote {query.quote_id} expired at {quote.expires_at.isoformat()}; "
            "ask for a new quote",
            expires_at=quote.expires_at.isoformat(),
        )
    return QuoteOut.of(quote)


@handler
async def redeem_quote(cmd: RedeemQuote, ctx: Ctx) -> RedeemOut:
    now = ctx.deps.clock()
    quote_id, order_id = cmd.quote_id, cmd.order_id
    if not order_id.strip():
        raise Unprocessable("order_id is required", code="invalid-redemption")
    uow = ctx.uow
    async with uow:
        quote = await uow.quotes.get(quote_id, lock=True)
        if quote is None:
            raise NotFound(f"quote {quote_id} not found")
        if quote.customer_id and cmd.customer_id and quote.customer_id != cmd.customer_id:
            raise Conflict(
                f"quote {quote_id} was made for another customer", code="quote-customer-mismatch"
            )
        if quote.order_id == order_id:
            existing = await uow.redemptions.of_order(order_id)
            if any(r.state == RELEASED for r in existing):
                raise Conflict(
                    f"the redemption of order {order_id} was given back; it cannot be redeemed "
                    "again (quote anew under a new order id)",
                    code="redemption-released",
                )
            pricing_metrics.redemptions_total.labels("replayed").inc()
            return RedeemOut.of(RedeemResult(quote, existing, replayed=True))
        if quote.order_id is not None:
            raise Conflict(
                f"quote {quote_id} was already redeemed by another order",
                code="quote-already-redeemed",
            )
        other = await uow.quotes.quote_of_order(order_id)
        if other is not None:
            raise Conflict(
                f"order {order_id} already redeemed quote {other}", code="order-already-redeemed"
            )
        if quote.expires_at <= now:
            raise QuoteExpired(
                f"quote {quote_id} expired at {quote.expires_at.isoformat()}; quote again",
                expires_at=quote.expires_at.isoformat(),
            )
        if cmd.expected_lines:
            quoted = sorted((line.sku, line.quantity) for line in quote.lines)
            asked = sorted((line.sku, line.quantity) for line in cmd.expected_lines)
            if quoted != asked:
                raise Conflict(f"the lines differ from quote {quote_id}", code="quote-mismatch")
        expected_total = cmd.expected_total_minor
        if expected_total is not None and expected_total != quote.total_minor:
            raise Conflict(
                f"total {expected_total} differs from quote {quote_id} ({quote.total_minor})",
                code="quote-mismatch",
            )
        if not await uow.quotes.bind(quote_id, order_id):
            raise Conflict(f"quote {quote_id} was redeemed concurrently", code="quote-redeemed")
        who = quote.customer_id or cmd.customer_id
        failures: list[dict[str, str | None]] = []
        rows: list[RedemptionRecord] = []
        # Promotions in id order: concurrent checkouts lock rows in the same order (no deadlock).
        for promotion_id in sorted(quote.promotion_ids):
            promotion = await uow.promotions.get(promotion_id)
            if promotion is None:
                continue
            reason: str | None = None
            if not await uow.promotions.consume_use(promotion_id, now):
                live = await uow.promotions.get(promotion_id)
                assert live is not None
                reason = (
                    "inactive"
                    if not live.active
                    else "expired"
                    if live.ends_at is not None and live.ends_at <= now
                    else "not_yet_valid"
                    if live.starts_at is not None and live.starts_at > now
                    else "exhausted"
                )
            elif promotion.per_customer_limit is not None and (
                who is None
                or not await uow.promotions.consume_customer_use(
                    promotion_id, who, promotion.per_customer_limit
                )
            ):
                reason = "exhausted_for_customer" if who else "customer_required"
            if reason is not None:
                failures.append(
                    {
                        "code": promotion.coupon_code,
                        "promotion_id": promotion_id,
                        "reason": reason,
                        "detail": REASON_TEXT[reason],
                    }
                )
                continue
            rows.append(
                RedemptionRecord(
                    promotion_id=promotion_id,
                    coupon_code=promotion.coupon_code,
                    order_id=order_id,
                    quote_id=quote_id,
                    customer_id=who,
                    state=REDEEMED,
                    redeemed_at=now,
                )
            )
        if failures:
            listed = "; ".join(f"{f['code'] or f['promotion_id']}: {f['detail']}" for f in failures)
            pricing_metrics.redemptions_total.labels("refused").inc()
            raise Conflict(
                f"promotion(s) can no longer be redeemed: {listed}",
                code="coupon-unavailable",
                title="Coupon no longer available",
                coupons=failures,
            )
        await uow.redemptions.insert(rows)
        for row in rows:
            uow.add_event(events.redemption_changed(row, "redeemed", now), key=row.promotion_id)
        await uow.commit()
        quote.order_id = order_id
    pricing_metrics.redemptions_total.labels("redeemed").inc()
    return RedeemOut.of(RedeemResult(quote, rows, replayed=False))


@handler
async def release_redemption(cmd: ReleaseRedemption, ctx: Ctx) -> ReleaseOut:
    """Give the uses of an order back, exactly once (conditional state change)."""
    now = ctx.deps.clock()
    uow = ctx.uow
    async with uow:
        released = await uow.redemptions.release(
            cmd.order_id, cmd.reason, now, only_unconfirmed=cmd.only_unconfirmed
        )
        for row in released:
            await uow.promotions.give_back_use(row.promotion_id, row.customer_id)
            uow.add_event(events.redemption_changed(row, "returned", now), key=row.promotion_id)
        current = await uow.redemptions.of_order(cmd.order_id)
        await uow.commit()
    if released:
        reason = cmd.reason
        cause = (
            reason.split(":", 1)[0]
            if reason.startswith("order_") or reason == "unconfirmed"
            else "rpc"
        )
        pricing_metrics.uses_released_total.labels(cause).inc(len(released))
    return ReleaseOut.of(ReleaseResult(len(released), current))
