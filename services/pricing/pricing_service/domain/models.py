"""The pricing domain: money arithmetic, the margin guard, promotions and their eligibility
(the basket engine is in ``basket.py``).

Pure Python, no I/O. Money is integer minor units; rates are ``Decimal`` in [0, 1].
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from ecomops_platform.errors import Unprocessable
from ecomops_platform.iso_codes import ISO_4217

if TYPE_CHECKING:
    from .basket import BasketLine

MARGIN_PLACES = Decimal("0.0001")
# Largest amount accepted anywhere (10^12 minor units): a quote of 100 lines x 1000 units stays
# far inside a 64-bit integer.
MAX_MINOR = 10**12
# Largest usage_limit / per_customer_limit (BIGINT columns).
MAX_USES = 2**63 - 1
# Largest buy or get quantity of a buy_x_get_y promotion (the API documents 1..1000).
MAX_GROUP = 1000


def check_currency(code: str) -> str:
    value = code.strip().upper()
    if value not in ISO_4217:
        raise Unprocessable(
            f"currency '{code}' is not an ISO-4217 code", code="invalid-currency", currency=code
        )
    return value


def check_rate(name: str, value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > 1:
        raise Unprocessable(
            f"{name} must be a decimal in [0, 1], got {value}", code="invalid-rate", field=name
        )
    return value


def fmt_rate(value: Decimal) -> str:
    """A rate as the decimal string the API shows ("0.3520")."""
    return str(value.quantize(MARGIN_PLACES, rounding=ROUND_HALF_UP))


# --- price book -------------------------------------------------------------------------------


def gross_margin(
    price_minor: int, cost_minor: int, commission_rate: Decimal, marketing_rate: Decimal
) -> Decimal:
    """(price - cost - price*commission - price*marketing) / price, exact (not rounded)."""
    if price_minor <= 0:
        raise Unprocessable("price must be positive", code="invalid-price")
    price = Decimal(price_minor)
    return (price - Decimal(cost_minor) - price * commission_rate - price * marketing_rate) / price


def floor_price_minor(
    cost_minor: int, commission_rate: Decimal, marketing_rate: Decimal, floor: Decimal
) -> int | None:
    """The lowest price (minor units) whose gross margin is at least ``floor``; None if none."""
    room = Decimal(1) - commission_rate - marketing_rate - floor
    if room <= 0:
        return None
    if cost_minor == 0:
        return 1
    price = int((Decimal(cost_minor) / room).to_integral_value(rounding=ROUND_CEILING))
    while gross_margin(price, cost_minor, commission_rate, marketing_rate) < floor:
        price += 1  # guards against a rounding edge; at most one step in practice
    return max(price, 1)


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """What a price is made of: the list price and the costs behind its margin."""

    list_price_minor: int
    unit_cost_minor: int
    commission_rate: Decimal
    marketing_cost_rate: Decimal

    def margin_at(self, selling_price_minor: int) -> Decimal | None:
        """Gross margin when sold at ``selling_price_minor``; None when that price is zero."""
        if selling_price_minor <= 0:
            return None
        return gross_margin(
            selling_price_minor,
            self.unit_cost_minor,
            self.commission_rate,
            self.marketing_cost_rate,
        )

    @property
    def margin(self) -> Decimal:
        return gross_margin(
            self.list_price_minor,
            self.unit_cost_minor,
            self.commission_rate,
            self.marketing_cost_rate,
        )


def validate_price_terms(terms: PriceTerms) -> None:
    if not 0 < terms.list_price_minor <= MAX_MINOR:
        raise Unprocessable(
            f"list_price_minor must be between 1 and {MAX_MINOR}", code="invalid-price"
        )
    if not 0 <= terms.unit_cost_minor <= MAX_MINOR:
        raise Unprocessable(
            f"unit_cost_minor must be between 0 and {MAX_MINOR}", code="invalid-price"
        )
    check_rate("commission_rate", terms.commission_rate)
    check_rate("marketing_cost_rate", terms.marketing_cost_rate)


def guard_price(
    terms: PriceTerms, floor: Decimal, *, allow_below_floor: bool, reason: str | None
) -> tuple[Decimal, bool]:
    """The margin and whether it is below the floor; refuses a margin under the floor unless
    explicitly allowed with a reason."""
    validate_price_terms(terms)
    margin = terms.margin
    below = margin < floor
    if below and not (allow_below_floor and reason):
        raise Unprocessable(
            f"gross margin {fmt_rate(margin)} is under the margin floor {fmt_rate(floor)}; "
            "set allow_below_floor with a reason to override",
            code="margin-below-floor",
            title="Margin under the floor",
            gross_margin=fmt_rate(margin),
            margin_floor=fmt_rate(floor),
        )
    return margin, below


def lowest_price_in_window(
    changes: Sequence[tuple[datetime, int]], window_start: datetime, now: datetime
) -> int | None:
    """The lowest list price in force at any time in [window_start, now].

    ``changes`` are (changed_at, price) in any order. The price in force at window_start (the last
    change before it) counts, as do all changes inside the window.
    """
    ordered = sorted(changes)
    in_force_at_start: int | None = None
    inside: list[int] = []
    for at, price in ordered:
        if at <= window_start:
            in_force_at_start = price
        elif at <= now:
            inside.append(price)
    candidates = inside + ([in_force_at_start] if in_force_at_start is not None else [])
    return min(candidates) if candidates else None


# --- promotions -------------------------------------------------------------------------------


class PromotionKind(enum.StrEnum):
    PERCENT = "percent"
    FIXED_AMOUNT = "fixed_amount"
    BUY_X_GET_Y = "buy_x_get_y"


@dataclass(frozen=True, slots=True)
class Scope:
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    all: bool = False

    def covers(self, sku: str, category: str | None) -> bool:
        return (
            self.all or sku in self.skus or (category is not None and category in self.categories)
        )

    @property
    def empty(self) -> bool:
        return not (self.all or self.skus or self.categories)


@dataclass(frozen=True, slots=True)
class Promotion:
    """What the engine needs of a promotion (the stored row carries more)."""

    id: str
    name: str
    kind: PromotionKind
    scope: Scope
    stackable: bool = False
    percent: Decimal | None = None
    amount_minor: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    coupon_code: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    used: int = 0
    min_subtotal_minor: int = 0
    currency: str | None = None
    segments: frozenset[str] = frozenset()
    allow_below_floor: bool = False
    reason: str | None = None
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


def validate_promotion_terms(
    kind: PromotionKind,
    *,
    percent: Decimal | None,
    amount_minor: int | None,
    buy_quantity: int | None,
    get_quantity: int | None,
    currency: str | None,
    min_subtotal_minor: int,
    starts_at: datetime,
    ends_at: datetime,
    scope: Scope,
    usage_limit: int | None,
    per_customer_limit: int | None,
) -> None:
    def bad(detail: str, field_name: str) -> Unprocessable:
        return Unprocessable(detail, code="invalid-promotion", field=field_name)

    if kind is PromotionKind.PERCENT:
        if percent is None or not percent.is_finite() or percent <= 0 or percent > 1:
            raise bad("a percent promotion needs value as a decimal in (0, 1]", "value")
    elif kind is PromotionKind.FIXED_AMOUNT:
        if amount_minor is None or not 0 < amount_minor <= MAX_MINOR:
            raise bad("a fixed_amount promotion needs value in minor units (> 0)", "value")
        if currency is None:
            raise bad("a fixed_amount promotion needs a currency", "currency")
    elif kind is PromotionKind.BUY_X_GET_Y and (
        not buy_quantity
        or not get_quantity
        or not 1 <= buy_quantity <= MAX_GROUP
        or not 1 <= get_quantity <= MAX_GROUP
    ):
        raise bad(f"a buy_x_get_y promotion needs value {{buy, get}}, each 1..{MAX_GROUP}", "value")
    if not 0 <= min_subtotal_minor <= MAX_MINOR * 1000:
        raise bad("min_subtotal_minor is out of range", "min_subtotal_minor")
    if min_subtotal_minor > 0 and currency is None:
        raise bad("min_subtotal_minor needs a currency", "currency")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise bad("starts_at and ends_at need a time zone", "starts_at")
    if ends_at <= starts_at:
        raise bad("ends_at must be after starts_at", "ends_at")
    if scope.empty:
        raise bad("scope needs skus, categories or all", "scope")
    if usage_limit is not None and not 1 <= usage_limit <= MAX_USES:
        raise bad(f"usage_limit must be between 1 and {MAX_USES}", "usage_limit")
    if per_customer_limit is not None and not 1 <= per_customer_limit <= MAX_USES:
        raise bad(f"per_customer_limit must be between 1 and {MAX_USES}", "per_customer_limit")


def unit_price_after(promotion: Promotion, unit_price_minor: int) -> int:
    """Worst-case effective unit price under a promotion alone (for the margin guard).

    percent: the discounted price; fixed_amount: a basket of exactly one unit of this SKU (the
    deepest discount per unit); buy_x_get_y: the average price paid per unit over a full group.
    """
    if promotion.kind is PromotionKind.PERCENT:
        assert promotion.percent is not None
        off = (Decimal(unit_price_minor) * promotion.percent).to_integral_value(ROUND_HALF_UP)
        return unit_price_minor - int(off)
    if promotion.kind is PromotionKind.FIXED_AMOUNT:
        assert promotion.amount_minor is not None
        return max(0, unit_price_minor - promotion.amount_minor)
    assert promotion.buy_quantity and promotion.get_quantity
    group = promotion.buy_quantity + promotion.get_quantity
    return int(
        (Decimal(unit_price_minor * promotion.buy_quantity) / group).to_integral_value(
            ROUND_HALF_UP
        )
    )


# --- eligibility -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteContext:
    now: datetime
    currency: str
    customer_id: str | None
    segment: str | None
    subtotal_minor: int
    customer_uses: dict[str, int] = field(default_factory=dict)


def ineligibility(
    promotion: Promotion, ctx: QuoteContext, lines: Sequence[BasketLine]
) -> str | None:
    """Why a promotion cannot apply to this basket now (None when it can)."""
    if not promotion.active:
        return "inactive"
    if promotion.starts_at is not None and ctx.now < promotion.starts_at:
        return "not_yet_valid"
    if promotion.ends_at is not None and ctx.now >= promotion.ends_at:
        return "expired"
    if promotion.usage_limit is not None and promotion.used >= promotion.usage_limit:
        return "exhausted"
    if promotion.currency is not None and promotion.currency != ctx.currency:
        return "currency_mismatch"
    if promotion.segments:
        if ctx.customer_id is None:
            return "customer_required"
        if ctx.segment not in promotion.segments:
            return "segment_not_targeted"
    if promotion.per_customer_limit is not None:
        if ctx.customer_id is None:
            return "customer_required"
        if ctx.customer_uses.get(promotion.id, 0) >= promotion.per_customer_limit:
            return "exhausted_for_customer"
    if ctx.subtotal_minor < promotion.min_subtotal_minor:
        return "min_subtotal_not_met"
    if not any(promotion.scope.covers(line.sku, line.category) for line in lines):
        return "not_applicable"
    return None


REASON_TEXT = {
    "unknown": "no such coupon",
    "inactive": "the coupon was deactivated",
    "not_yet_valid": "the coupon is not valid yet",
    "expired": "the coupon has expired",
    "exhausted": "the coupon's usage limit is reached",
    "exhausted_for_customer": "the customer has used this coupon as often as allowed",
    "currency_mismatch": "the coupon is for another currency",
    "customer_required": "the coupon needs a known customer",
    "segment_not_targeted": "the coupon targets other customer segments",
    "min_subtotal_not_met": "the basket is under the coupon's minimum subtotal",
    "not_applicable": "no line of the basket is in the coupon's scope",
}


def normalise_codes(codes: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for code in codes:
        value = code.strip().upper()
        if value:
            seen[value] = None
    return list(seen)
