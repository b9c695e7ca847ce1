"""Use cases of the pricing service: one async function each, inside one unit of work.

REST, gRPC and the Kafka consumers all call these; they never touch SQL or protobuf themselves.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ecomops_platform.auth import Caller
from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import Conflict, NotFound, ServiceError, Unprocessable
from ecomops_platform.pagination import decode_cursor, encode_cursor

from ..adapters import events
from ..adapters import metrics as pricing_metrics
from ..adapters.repository import PricingRepository
from ..adapters.tables import REDEEMED, RELEASED
from ..domain.models import (
    MAX_MINOR,
    REASON_TEXT,
    BasketLine,
    PriceTerms,
    Promotion,
    PromotionKind,
    QuoteContext,
    Scope,
    check_currency,
    fmt_rate,
    guard_price,
    ineligibility,
    line_floor_room,
    lowest_price_in_window,
    normalise_codes,
    price_basket,
    unit_price_after,
    validate_promotion_terms,
)
from ..domain.records import (
    CompetitorPriceRecord,
    PriceHistory,
    PriceRecord,
    QuoteRecord,
    RedeemResult,
    RedemptionRecord,
    ReleaseResult,
    Suggestion,
)
from ..domain.suggestions import suggest
from ..settings import PricingSettings

log = logging.getLogger("ecomops.pricing")


class QuoteExpired(ServiceError):
    """A quote past its expiry is no longer trusted."""

    status = 410
    code = "quote-expired"
    title = "Quote expired"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# --- price book -------------------------------------------------------------------------------


async def set_price(
    uow: UnitOfWork,
    settings: PricingSettings,
    *,
    changed_by: str,
    sku: str,
    currency: str,
    terms: PriceTerms,
    allow_below_floor: bool,
    reason: str | None,
    now: datetime | None = None,
) -> PriceRecord:
    currency = check_currency(currency)
    now = now or utcnow()
    floor = settings.margin_floor
    margin, below = guard_price(terms, floor, allow_below_floor=allow_below_floor, reason=reason)
    async with uow:
        repo = PricingRepository(uow.session)
        known = await repo.skus([sku])
        if sku not in known:
            raise Unprocessable(
                f"SKU {sku} is not known from inventory yet; prices need a registered SKU",
                code="unknown-sku",
                skus=[sku],
            )
        if not (allow_below_floor and reason):
            await _guard_live_promotions(
                repo, sku, known[sku].category, currency, terms, floor, now
            )
        current = await repo.price(sku, currency, lock=True)
        if (
            current is not None
            and current.terms == terms
            and current.below_floor == below
            and (current.reason or None) == (reason or None)
        ):
            return current  # PUT of the same price: nothing changes, no history row, no event
        record = PriceRecord(
            sku=sku,
            currency=currency,
            terms=terms,
            gross_margin=margin,
            margin_floor=floor,
            below_floor=below,
            updated_by=changed_by,
            reason=reason,
            updated_at=now,
        )
        previous = current.terms.list_price_minor if current is not None else 0
        await repo.save_price(record, previous)
        uow.add_event(events.price_changed(record, previous), key=sku)
        await uow.commit()
    return record


async def _guard_live_promotions(
    repo: PricingRepository,
    sku: str,
    category: str | None,
    currency: str,
    terms: PriceTerms,
    floor: Decimal,
    now: datetime,
) -> None:
    """A new price or cost must not put the SKU under the floor through a live promotion that
    was not itself allowed below the floor."""
    live = await repo.candidate_promotions(
        now, currency, [sku], [category] if category else [], [], all_coupons=True
    )
    offenders: list[dict[str, Any]] = []
    for promotion in sorted(live, key=lambda p: p.id):
        if promotion.allow_below_floor:
            continue
        effective = unit_price_after(promotion, terms.list_price_minor)
        margin = terms.margin_at(effective)
        if margin is None or margin < floor:
            offenders.append(
                {
                    "promotion_id": promotion.id,
                    "name": promotion.name,
                    "discounted_price_minor": effective,
                    "gross_margin": fmt_rate(margin) if margin is not None else None,
                }
            )
    if offenders:
        listed = ", ".join(f"{o['name']} ({o['gross_margin'] or 'no revenue'})" for o in offenders)
        raise Unprocessable(
            f"with this price, live promotion(s) sell {sku} under the margin floor "
            f"{fmt_rate(floor)}: {listed}; set allow_below_floor with a reason to override",
            code="margin-below-floor",
            title="Margin under the floor",
            margin_floor=fmt_rate(floor),
            promotions=offenders,
        )


async def get_price(uow: UnitOfWork, sku: str, currency: str) -> PriceRecord:
    currency = check_currency(currency)
    async with uow:
        record = await PricingRepository(uow.session).price(sku, currency)
    if record is None:
        raise NotFound(f"no price for SKU {sku} in {currency}")
    return record


async def get_price_history(
    uow: UnitOfWork,
    sku: str,
    currency: str,
    *,
    limit: int,
    cursor: str | None,
    now: datetime | None = None,
) -> PriceHistory:
    currency = check_currency(currency)
    now = now or utcnow()
    position = decode_cursor(cursor)
    before = position.get("id") if position else None
    if before is not None and not isinstance(before, int):
        raise Unprocessable("cursor is not valid", code="invalid-cursor")
    async with uow:
        repo = PricingRepository(uow.session)
        page = await repo.history_page(sku, currency, limit + 1, before)
        since = now - timedelta(days=30)
        points = await repo.price_points_since(sku, currency, since)
    if not page and before is None:
        raise NotFound(f"no price history for SKU {sku} in {currency}")
    lowest = lowest_price_in_window(points, since, now)
    more = len(page) > limit
    page = page[:limit]
    return PriceHistory(
        sku=sku,
        currency=currency,
        changes=[change for _, change in page],
        lowest_price_30d_minor=lowest or 0,
        next_cursor=encode_cursor({"id": page[-1][0]}) if more and page else None,
    )


# --- promotions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromotionInput:
    name: str
    kind: PromotionKind
    scope: Scope
    starts_at: datetime
    ends_at: datetime
    percent: Decimal | None = None
    amount_minor: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    coupon_code: str | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    min_subtotal_minor: int = 0
    currency: str | None = None
    segments: frozenset[str] = frozenset()
    stackable: bool = False
    allow_below_floor: bool = False
    reason: str | None = None


def _validate(p: Promotion) -> None:
    validate_promotion_terms(
        p.kind,
        percent=p.percent,
        amount_minor=p.amount_minor,
        buy_quantity=p.buy_quantity,
        get_quantity=p.get_quantity,
        currency=p.currency,
        min_subtotal_minor=p.min_subtotal_minor,
        starts_at=p.starts_at or utcnow(),
        ends_at=p.ends_at or utcnow(),
        scope=p.scope,
        usage_limit=p.usage_limit,
        per_customer_limit=p.per_customer_limit,
    )
    if not p.name.strip():
        raise Unprocessable("name must not be empty", code="invalid-promotion", field="name")
    if p.allow_below_floor and not p.reason:
        raise Unprocessable(
            "allow_below_floor needs a reason", code="invalid-promotion", field="reason"
        )


async def _guard_promotion_margin(repo: PricingRepository, p: Promotion, floor: Decimal) -> None:
    """Refuse a promotion that would put any priced SKU in scope under the floor."""
    skus: set[str] = set(p.scope.skus)
    if p.scope.all:
        skus |= set(await repo.all_priced_skus())
    elif p.scope.categories:
        skus |= set(await repo.skus_in_categories(sorted(p.scope.categories)))
    if not skus:
        return
    offenders: list[dict[str, Any]] = []
    for price in sorted(await repo.all_prices_for(sorted(skus)), key=lambda x: (x.sku, x.currency)):
        if p.currency is not None and price.currency != p.currency:
            continue
        effective = unit_price_after(p, price.terms.list_price_minor)
        margin = price.terms.margin_at(effective)
        if margin is None or margin < floor:
            offenders.append(
                {
                    "sku": price.sku,
                    "currency": price.currency,
                    "discounted_price_minor": effective,
                    "gross_margin": fmt_rate(margin) if margin is not None else None,
                }
            )
    if offenders and not (p.allow_below_floor and p.reason):
        listed = ", ".join(
            f"{o['sku']} ({o['currency']}): {o['gross_margin'] or 'no revenue'}"
            for o in offenders[:20]
        )
        raise Unprocessable(
            f"the promotion puts {len(offenders)} SKU(s) under the margin floor "
            f"{fmt_rate(floor)}: {listed}; set allow_below_floor with a reason to override",
            code="margin-below-floor",
            title="Margin under the floor",
            margin_floor=fmt_rate(floor),
            skus=offenders,
        )


def _promotion_json(p: Promotion) -> dict[str, Any]:
    return {
        "name": p.name,
        "kind": p.kind.value,
        "percent": str(p.percent) if p.percent is not None else None,
        "amount_minor": p.amount_minor,
        "buy": p.buy_quantity,
        "get": p.get_quantity,
        "scope": {
            "skus": sorted(p.scope.skus),
            "categories": sorted(p.scope.categories),
            "all": p.scope.all,
        },
        "starts_at": p.starts_at.isoformat() if p.starts_at else None,
        "ends_at": p.ends_at.isoformat() if p.ends_at else None,
        "coupon_code": p.coupon_code,
        "usage_limit": p.usage_limit,
        "per_customer_limit": p.per_customer_limit,
        "min_subtotal_minor": p.min_subtotal_minor,
        "currency": p.currency,
        "segments": sorted(p.segments),
        "stackable": p.stackable,
        "active": p.active,
        "allow_below_floor": p.allow_below_floor,
    }


async def create_promotion(
    uow: UnitOfWork,
    settings: PricingSettings,
    *,
    created_by: str,
    data: PromotionInput,
    now: datetime | None = None,
) -> Promotion:
    now = now or utcnow()
    code = data.coupon_code.strip().upper() if data.coupon_code else None
    promotion = Promotion(
        id=new_id("promo"),
        name=data.name.strip(),
        kind=data.kind,
        scope=data.scope,
        stackable=data.stackable,
        percent=data.percent,
        amount_minor=data.amount_minor,
        buy_quantity=data.buy_quantity,
        get_quantity=data.get_quantity,
        coupon_code=code or None,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        active=True,
        usage_limit=data.usage_limit,
        per_customer_limit=data.per_customer_limit,
        used=0,
        min_subtotal_minor=data.min_subtotal_minor,
        currency=check_currency(data.currency) if data.currency else None,
        segments=data.segments,
        allow_below_floor=data.allow_below_floor,
        reason=data.reason,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    _validate(promotion)
    async with uow:
        repo = PricingRepository(uow.session)
        if promotion.coupon_code and await repo.coupon_in_use(promotion.coupon_code):
            raise Conflict(
                f"coupon code {promotion.coupon_code} already names an active promotion",
                code="coupon-code-taken",
                coupon_code=promotion.coupon_code,
            )
        await _guard_promotion_margin(repo, promotion, settings.margin_floor)
        await repo.insert_promotion(promotion)
        await repo.record_promotion_change(
            promotion.id, "created", _promotion_json(promotion), created_by, data.reason, now
        )
        uow.add_event(events.promotion_changed(promotion, created_by), key=promotion.id)
        await uow.commit()
    return promotion


async def get_promotion(uow: UnitOfWork, promotion_id: str) -> Promotion:
    async with uow:
        found = await PricingRepository(uow.session).promotion(promotion_id)
    if found is None:
        raise NotFound(f"promotion {promotion_id} not found")
    return found


async def list_promotions(
    uow: UnitOfWork, *, active: bool | None, limit: int, cursor: str | None
) -> tuple[list[Promotion], str | None]:
    position = decode_cursor(cursor)
    after: tuple[datetime, str] | None = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(str(position["at"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    async with uow:
        rows = await PricingRepository(uow.session).list_promotions(
            active, utcnow(), limit + 1, after
        )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor({"at": last.created_at.isoformat() if last.created_at else "", "id": last.id})
        if more and last is not None
        else None
    )
    return rows, next_cursor


UPDATABLE = frozenset(
    {
        "name",
        "starts_at",
        "ends_at",
        "usage_limit",
        "per_customer_limit",
        "min_subtotal_minor",
        "stackable",
        "percent",
        "amount_minor",
        "segments",
        "allow_below_floor",
        "reason",
    }
)


async def update_promotion(
    uow: UnitOfWork,
    settings: PricingSettings,
    *,
    changed_by: str,
    promotion_id: str,
    changes: dict[str, Any],
    now: datetime | None = None,
) -> Promotion:
    now = now or utcnow()
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise Unprocessable(
            f"these fields cannot be changed: {', '.join(sorted(unknown))}",
            code="invalid-promotion",
        )
    async with uow:
        repo = PricingRepository(uow.session)
        current = await repo.promotion(promotion_id, lock=True)
        if current is None:
            raise NotFound(f"promotion {promotion_id} not found")
        if not current.active:
            raise Conflict(
                f"promotion {promotion_id} is deactivated; create a new one",
                code="promotion-inactive",
            )
        if "percent" in changes and current.kind is not PromotionKind.PERCENT:
            raise Unprocessable("percent applies to percent promotions", code="invalid-promotion")
        if "amount_minor" in changes and current.kind is not PromotionKind.FIXED_AMOUNT:
            raise Unprocessable(
                "amount_minor applies to fixed_amount promotions", code="invalid-promotion"
            )
        values = dict(changes)
        if "segments" in values:
            values["segments"] = frozenset(values["segments"] or ())
        if "allow_below_floor" not in values:
            # An override is given per change: a new discount is checked against the floor
            # again unless this change allows it explicitly.
            values["allow_below_floor"] = False
        updated = replace(current, **values, updated_at=now)
        _validate(updated)
        if updated.usage_limit is not None and updated.usage_limit < current.used:
            raise Unprocessable(
                f"usage_limit {updated.usage_limit} is under the {current.used} uses consumed",
                code="invalid-promotion",
                field="usage_limit",
            )
        if any(k in changes for k in ("percent", "amount_minor")) or changes.get(
            "allow_below_floor"
        ):
            await _guard_promotion_margin(repo, updated, settings.margin_floor)
        await repo.update_promotion(updated)
        await repo.record_promotion_change(
            promotion_id,
            "updated",
            {k: _promotion_json(updated).get(k, str(v)) for k, v in changes.items()},
            changed_by,
            changes.get("reason"),
            now,
        )
        uow.add_event(events.promotion_changed(updated, changed_by), key=promotion_id)
        await uow.commit()
    return updated


async def deactivate_promotion(
    uow: UnitOfWork, *, changed_by: str, promotion_id: str, now: datetime | None = None
) -> Promotion:
    now = now or utcnow()
    async with uow:
        repo = PricingRepository(uow.session)
        current = await repo.promotion(promotion_id, lock=True)
        if current is None:
            raise NotFound(f"promotion {promotion_id} not found")
        if not current.active:
            return current  # idempotent
        updated = replace(current, active=False, updated_at=now)
        await repo.update_promotion(updated)
        await repo.record_promotion_change(
            promotion_id, "deactivated", {"active": False}, changed_by, None, now
        )
        uow.add_event(events.promotion_changed(updated, changed_by), key=promotion_id)
        await uow.commit()
    return updated


# --- quotes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteLineInput:
    sku: str
    quantity: int


def _check_lines(lines: Sequence[QuoteLineInput], settings: PricingSettings) -> None:
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


async def create_quote(
    uow: UnitOfWork,
    settings: PricingSettings,
    *,
    customer_id: str | None,
    currency: str,
    lines: Sequence[QuoteLineInput],
    coupon_codes: Sequence[str],
    now: datetime | None = None,
) -> QuoteRecord:
    currency = check_currency(currency)
    now = now or utcnow()
    _check_lines(lines, settings)
    codes = normalise_codes(coupon_codes)
    skus = [line.sku for line in lines]
    async with uow:
        repo = PricingRepository(uow.session)
        known = await repo.skus(skus)
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
        prices = await repo.prices_for(skus, currency)
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
            for line in lines
        ]
        categories = sorted({b.category for b in basket if b.category})
        candidates = await repo.candidate_promotions(now, currency, skus, categories, codes)
        by_code = await repo.promotions_by_code(codes) if codes else {}
        pool = {p.id: p for p in [*candidates, *by_code.values()]}
        # Look the customer up only when a promotion in play targets segments or limits uses.
        targeted = any(p.segments for p in pool.values())
        limited = sorted(i for i, p in pool.items() if p.per_customer_limit is not None)
        segment = await repo.segment_of(customer_id) if customer_id and targeted else None
        uses = await repo.customer_uses(customer_id, limited) if customer_id and limited else {}
        ctx = QuoteContext(
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
            reason = "unknown" if promotion is None else ineligibility(promotion, ctx, basket)
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
        eligible = [p for p in candidates if ineligibility(p, ctx, basket) is None]
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
        await repo.insert_quote(quote)
        await uow.commit()
    pricing_metrics.quotes_total.labels(currency, str(quote.discount_total_minor > 0).lower()).inc()
    return quote


async def get_quote(
    uow: UnitOfWork, caller: Caller, quote_id: str, *, now: datetime | None = None
) -> QuoteRecord:
    now = now or utcnow()
    async with uow:
        quote = await PricingRepository(uow.session).quote(quote_id)
    if quote is None or not caller.may_see(quote.customer_id):
        raise NotFound(f"quote {quote_id} not found")
    if quote.expires_at <= now:
        raise QuoteExpired(
            f"quote {quote_id} expired at {quote.expires_at.isoformat()}; ask for a new quote",
            expires_at=quote.expires_at.isoformat(),
        )
    return quote


# --- redemptions (checkout) -------------------------------------------------------------------


async def redeem_quote(
    uow: UnitOfWork,
    *,
    quote_id: str,
    order_id: str,
    customer_id: str | None,
    expected_lines: Sequence[QuoteLineInput] = (),
    expected_total_minor: int | None = None,
    now: datetime | None = None,
) -> RedeemResult:
    now = now or utcnow()
    if not order_id.strip():
        raise Unprocessable("order_id is required", code="invalid-redemption")
    async with uow:
        repo = PricingRepository(uow.session)
        quote = await repo.quote(quote_id, lock=True)
        if quote is None:
            raise NotFound(f"quote {quote_id} not found")
        if quote.customer_id and customer_id and quote.customer_id != customer_id:
            raise Conflict(
                f"quote {quote_id} was made for another customer", code="quote-customer-mismatch"
            )
        if quote.order_id == order_id:
            existing = await repo.redemptions_of(order_id)
            if any(r.state == RELEASED for r in existing):
                raise Conflict(
                    f"the redemption of order {order_id} was given back; it cannot be redeemed "
                    "again (quote anew under a new order id)",
                    code="redemption-released",
                )
            pricing_metrics.redemptions_total.labels("replayed").inc()
            return RedeemResult(quote, existing, replayed=True)
        if quote.order_id is not None:
            raise Conflict(
                f"quote {quote_id} was already redeemed by another order",
                code="quote-already-redeemed",
            )
        other = await repo.quote_of_order(order_id)
        if other is not None:
            raise Conflict(
                f"order {order_id} already redeemed quote {other}", code="order-already-redeemed"
            )
        if quote.expires_at <= now:
            raise QuoteExpired(
                f"quote {quote_id} expired at {quote.expires_at.isoformat()}; quote again",
                expires_at=quote.expires_at.isoformat(),
            )
        if expected_lines:
            quoted = sorted((line.sku, line.quantity) for line in quote.lines)
            asked = sorted((line.sku, line.quantity) for line in expected_lines)
            if quoted != asked:
                raise Conflict(f"the lines differ from quote {quote_id}", code="quote-mismatch")
        if expected_total_minor is not None and expected_total_minor != quote.total_minor:
            raise Conflict(
                f"total {expected_total_minor} differs from quote {quote_id} ({quote.total_minor})",
                code="quote-mismatch",
            )
        if not await repo.bind_quote(quote_id, order_id):
            raise Conflict(f"quote {quote_id} was redeemed concurrently", code="quote-redeemed")
        who = quote.customer_id or customer_id
        failures: list[dict[str, Any]] = []
        rows: list[RedemptionRecord] = []
        # Promotions in id order: concurrent checkouts lock rows in the same order (no deadlock).
        for promotion_id in sorted(quote.promotion_ids):
            promotion = await repo.promotion(promotion_id)
            if promotion is None:
                continue
            reason: str | None = None
            if not await repo.consume_use(promotion_id, now):
                live = await repo.promotion(promotion_id)
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
                or not await repo.consume_customer_use(
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
        await repo.insert_redemptions(rows)
        for row in rows:
            uow.add_event(events.redemption_changed(row, "redeemed", now), key=row.promotion_id)
        await uow.commit()
        quote.order_id = order_id
    pricing_metrics.redemptions_total.labels("redeemed").inc()
    return RedeemResult(quote, rows, replayed=False)


async def release_redemption(
    uow: UnitOfWork,
    *,
    order_id: str,
    reason: str,
    only_unconfirmed: bool = False,
    now: datetime | None = None,
) -> ReleaseResult:
    """Give the uses of an order back, exactly once (conditional state change)."""
    now = now or utcnow()
    async with uow:
        repo = PricingRepository(uow.session)
        released = await repo.release(order_id, reason, now, only_unconfirmed=only_unconfirmed)
        for row in released:
            await repo.give_back_use(row.promotion_id, row.customer_id)
            uow.add_event(events.redemption_changed(row, "returned", now), key=row.promotion_id)
        current = await repo.redemptions_of(order_id)
        await uow.commit()
    if released:
        cause = (
            reason.split(":", 1)[0]
            if reason.startswith("order_") or reason == "unconfirmed"
            else "rpc"
        )
        pricing_metrics.uses_released_total.labels(cause).inc(len(released))
    return ReleaseResult(len(released), current)


async def confirm_order(uow: UnitOfWork, *, order_id: str, now: datetime | None = None) -> int:
    now = now or utcnow()
    async with uow:
        repo = PricingRepository(uow.session)
        confirmed = await repo.confirm(order_id, now)
        if confirmed == 0:
            states = {r.state for r in await repo.redemptions_of(order_id)}
            if RELEASED in states:
                log.warning(
                    "OrderPlaced for order %s arrived after its promotion uses were given back "
                    "(confirmation window passed); the uses stay released",
                    order_id,
                )
        await uow.commit()
    return confirmed


async def sweep_unconfirmed(
    db_uow: Callable[[], UnitOfWork],
    settings: PricingSettings,
    *,
    now: datetime | None = None,
    batch: int = 200,
) -> int:
    """Give back uses whose order was never placed (no OrderPlaced within the window).

    One transaction per order, promotions in id order (as checkout locks them), so the sweep
    never deadlocks with checkouts; the conditional state change makes concurrent sweeps on
    several replicas (and a racing OrderCancelled) give each use back exactly once.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.redemption_confirm_window_seconds)
    async with db_uow() as uow:
        orders = await PricingRepository(uow.session).unconfirmed_orders(cutoff, batch)
    total = 0
    for order_id in orders:
        result = await release_redemption(
            db_uow(), order_id=order_id, reason="unconfirmed", only_unconfirmed=True, now=now
        )
        total += result.released_count
    if total:
        log.info("gave back %d unconfirmed promotion use(s)", total)
    return total


# --- competitor prices and suggestions --------------------------------------------------------


async def set_competitor_price(
    uow: UnitOfWork,
    *,
    recorded_by: str,
    sku: str,
    competitor: str,
    currency: str,
    price_minor: int,
    observed_at: datetime,
    now: datetime | None = None,
) -> CompetitorPriceRecord:
    now = now or utcnow()
    currency = check_currency(currency)
    if not 0 < price_minor <= MAX_MINOR:
        raise Unprocessable(f"price_minor must be between 1 and {MAX_MINOR}", code="invalid-price")
    if not competitor.strip():
        raise Unprocessable("competitor must not be empty", code="invalid-competitor")
    if observed_at.tzinfo is None:
        raise Unprocessable("observed_at needs a time zone", code="invalid-time")
    if observed_at > now + timedelta(minutes=5):
        raise Unprocessable("observed_at is in the future", code="invalid-time")
    record = CompetitorPriceRecord(
        sku=sku,
        competitor=competitor.strip(),
        currency=currency,
        price_minor=price_minor,
        observed_at=observed_at,
        recorded_by=recorded_by,
    )
    async with uow:
        repo = PricingRepository(uow.session)
        if sku not in await repo.skus([sku]):
            raise Unprocessable(f"SKU {sku} is not known", code="unknown-sku", skus=[sku])
        await repo.save_competitor_price(record, now)
        await uow.commit()
    return record


async def list_suggestions(
    uow: UnitOfWork,
    settings: PricingSettings,
    *,
    limit: int,
    cursor: str | None,
    now: datetime | None = None,
) -> tuple[list[Suggestion], str | None]:
    now = now or utcnow()
    position = decode_cursor(cursor)
    after: tuple[str, str] | None = None
    if position is not None:
        try:
            after = (str(position["sku"]), str(position["currency"]))
        except KeyError:
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    async with uow:
        repo = PricingRepository(uow.session)
        page = await repo.price_page(limit + 1, after)
        more = len(page) > limit
        page = page[:limit]
        skus = sorted({p.sku for p in page})
        stock = await repo.stock_for(skus)
        since_day: date = (now - timedelta(days=settings.velocity_window_days)).date()
        sold = await repo.units_sold(skus, since_day)
        competitors = await repo.competitor_min(
            skus, now - timedelta(days=settings.competitor_max_age_days)
        )
    suggestions = [
        suggest(
            sku=p.sku,
            currency=p.currency,
            terms=p.terms,
            floor=settings.margin_floor,
            units_sold=sold.get((p.sku, p.currency), 0),
            window_days=settings.velocity_window_days,
            stock_available=stock.get(p.sku),
            competitor_min_minor=competitors.get((p.sku, p.currency)),
        )
        for p in page
    ]
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor({"sku": last.sku, "currency": last.currency})
        if more and last is not None
        else None
    )
    return suggestions, next_cursor


# --- event copies -----------------------------------------------------------------------------


async def record_sku(
    uow: UnitOfWork, *, sku: str, title: str, category: str | None, status: str, at: datetime
) -> None:
    async with uow:
        await PricingRepository(uow.session).upsert_sku(sku, title, category, status, at)
        await uow.commit()


async def record_segment(
    uow: UnitOfWork, *, customer_id: str, segment: str, churn_risk: str, at: datetime
) -> None:
    async with uow:
        await PricingRepository(uow.session).upsert_segment(customer_id, segment, churn_risk, at)
        await uow.commit()


async def record_stock(
    uow: UnitOfWork, *, sku: str, available: int, on_hand: int, reserved: int, at: datetime
) -> None:
    async with uow:
        await PricingRepository(uow.session).upsert_stock(sku, available, on_hand, reserved, at)
        await uow.commit()


async def record_sales(
    uow: UnitOfWork, *, currency: str, day: date, lines: Sequence[tuple[str, int, int]]
) -> None:
    """Add paid units per SKU to the day's sales (the consumer's inbox applies each event once)."""
    async with uow:
        repo = PricingRepository(uow.session)
        for sku, units, revenue in sorted(lines):
            await repo.add_sales(sku, currency, day, units, revenue)
        await uow.commit()


async def quote_by_id(uow: UnitOfWork, quote_id: str) -> QuoteRecord:
    """A stored quote as it was made (for idempotent replays), expired or not."""
    async with uow:
        quote = await PricingRepository(uow.session).quote(quote_id)
    if quote is None:
        raise NotFound(f"quote {quote_id} not found")
    return quote
