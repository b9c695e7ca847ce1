"""Request and response models of the REST API (separate from tables and domain records).

Money fields are strict integers (minor units): a float or a string is refused. Rates are
decimals in [0, 1], shown as strings ("0.3520").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from ecomops_platform.strict import (
    INT64_MAX,
    CurrencyCode,
    DecimalText,
    Rfc3339Time,
    StrictRequestModel,
)

from ..domain.models import MAX_MINOR


def has_nul(value: object) -> bool:
    """NUL characters cannot be stored in PostgreSQL text; they are refused at the edge."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_nul(v) for v in value)
    return False


class PricingRequest(StrictRequestModel):
    """Strict request bodies: JSON types as written (no "1" for 1, no true for 1)."""

    @model_validator(mode="after")
    def _no_nul(self) -> PricingRequest:
        if has_nul(self.model_dump()):
            raise ValueError("text must not contain NUL characters")
        return self


Minor = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)]
PositiveMinor = Annotated[StrictInt, Field(ge=1, le=MAX_MINOR)]
Rate = Annotated[DecimalText, Field(ge=0, le=1, max_digits=12, decimal_places=6)]
Currency = CurrencyCode
# Uses of a promotion (BIGINT columns).
Uses = Annotated[StrictInt, Field(ge=1, le=INT64_MAX)]
# Units of one SKU on a quote line (PRICING_MAX_LINE_QUANTITY, at most 1,000).
LineQuantity = Annotated[StrictInt, Field(ge=1, le=1000)]
Sku = Annotated[str, Field(min_length=1, max_length=100)]


# --- prices -----------------------------------------------------------------------------------


class SetPriceIn(PricingRequest):
    currency: Currency
    list_price_minor: PositiveMinor
    unit_cost_minor: Minor
    commission_rate: Rate = Decimal(0)
    marketing_cost_rate: Rate = Decimal(0)
    allow_below_floor: bool = False
    reason: Annotated[str, Field(max_length=500)] | None = None


# --- promotions -------------------------------------------------------------------------------


class BuyGet(PricingRequest):
    buy: Annotated[StrictInt, Field(ge=1, le=1000)]
    get: Annotated[StrictInt, Field(ge=1, le=1000)]


class ScopeIn(PricingRequest):
    skus: Annotated[list[Sku], Field(max_length=10_000)] = []
    categories: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=1000)
    ] = []
    all: bool = False


class CreatePromotionIn(PricingRequest):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["percent", "fixed_amount", "buy_x_get_y"]
    value: Annotated[
        BuyGet | StrictInt | DecimalText,
        Field(
            description='percent: a decimal in (0, 1] (e.g. "0.15"); fixed_amount: minor '
            "units (integer); buy_x_get_y: {buy, get}"
        ),
    ]
    scope: ScopeIn
    starts_at: Rfc3339Time
    ends_at: Rfc3339Time
    coupon_code: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] | None
    ) = None
    usage_limit: Uses | None = None
    per_customer_limit: Uses | None = None
    min_subtotal_minor: Minor = 0
    currency: Currency | None = None
    segments: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=50)
    ] = []
    stackable: bool = False
    allow_below_floor: bool = False
    reason: Annotated[str, Field(max_length=500)] | None = None


class UpdatePromotionIn(PricingRequest):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    starts_at: Rfc3339Time | None = None
    ends_at: Rfc3339Time | None = None
    usage_limit: Uses | None = None
    per_customer_limit: Uses | None = None
    min_subtotal_minor: Minor | None = None
    stackable: bool | None = None
    value: BuyGet | StrictInt | DecimalText | None = None
    segments: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=50)]
        | None
    ) = None
    allow_below_floor: bool | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


# --- quotes -----------------------------------------------------------------------------------


class QuoteLineIn(PricingRequest):
    sku: Sku
    quantity: LineQuantity


class CreateQuoteIn(PricingRequest):
    customer_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    currency: Currency
    lines: Annotated[list[QuoteLineIn], Field(min_length=1, max_length=100)]
    coupon_codes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=10)] = []


class RedeemQuoteIn(PricingRequest):
    order_id: Annotated[str, Field(min_length=1, max_length=100)]
    customer_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    expected_lines: Annotated[list[QuoteLineIn], Field(max_length=100)] = []
    expected_total_minor: Minor | None = None


class ReleaseIn(PricingRequest):
    reason: Annotated[str, Field(max_length=100)] = "released"


# --- competitor prices and suggestions --------------------------------------------------------


class CompetitorPriceIn(PricingRequest):
    competitor: Annotated[str, Field(min_length=1, max_length=100)]
    currency: Currency
    price_minor: PositiveMinor
    observed_at: Rfc3339Time
