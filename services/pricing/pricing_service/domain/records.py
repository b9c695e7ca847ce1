"""What the use cases return: plain records, mapped to JSON by REST and to protobuf by gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .basket import PricedLine
from .models import PriceTerms

#: States of a redemption: taken at checkout, confirmed by OrderPlaced, or given back.
REDEEMED, CONFIRMED, RELEASED = "redeemed", "confirmed", "released"


@dataclass(frozen=True, slots=True)
class SkuInfo:
    """The copy of inventory's SKU registry that prices and quotes need."""

    sku: str
    category: str | None
    status: str


@dataclass(frozen=True, slots=True)
class PriceRecord:
    sku: str
    currency: str
    terms: PriceTerms
    gross_margin: Decimal
    margin_floor: Decimal
    below_floor: bool
    updated_by: str
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PriceChangeRecord:
    list_price_minor: int
    previous_price_minor: int
    unit_cost_minor: int
    commission_rate: Decimal
    marketing_cost_rate: Decimal
    gross_margin: Decimal
    below_floor: bool
    changed_by: str
    reason: str | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class PriceHistory:
    sku: str
    currency: str
    changes: list[PriceChangeRecord]
    lowest_price_30d_minor: int
    next_cursor: str | None


@dataclass(slots=True)
class QuoteRecord:
    quote_id: str
    customer_id: str | None
    currency: str
    lines: list[PricedLine]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    coupon_codes: list[str]
    promotion_ids: list[str]
    created_at: datetime
    expires_at: datetime
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class RedemptionRecord:
    promotion_id: str
    coupon_code: str | None
    order_id: str
    quote_id: str
    customer_id: str | None
    state: str
    redeemed_at: datetime


@dataclass(slots=True)
class RedeemResult:
    quote: QuoteRecord
    redemptions: list[RedemptionRecord]
    replayed: bool


@dataclass(slots=True)
class ReleaseResult:
    released_count: int
    redemptions: list[RedemptionRecord]


@dataclass(frozen=True, slots=True)
class CompetitorPriceRecord:
    sku: str
    competitor: str
    currency: str
    price_minor: int
    observed_at: datetime
    recorded_by: str


@dataclass(slots=True)
class Suggestion:
    sku: str
    currency: str
    current_price_minor: int
    suggested_price_minor: int
    floor_price_minor: int
    current_margin: Decimal
    suggested_margin: Decimal
    velocity_per_day: Decimal
    stock_available: int | None
    days_of_cover: Decimal | None
    competitor_min_price_minor: int | None
    reasons: list[str] = field(default_factory=list)
