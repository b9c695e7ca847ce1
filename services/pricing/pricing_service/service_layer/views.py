"""The read models pricing handlers return: what REST shows as JSON (the same documents as
before the bus, names kept for the OpenAPI schema) and gRPC encodes to protobuf.

Cost data (unit cost, rates, margin, who and why) is filled for ops only: the handler that knows
the caller decides (``costs=``), and both transports show what it left.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ..domain.models import Promotion, fmt_rate
from ..domain.records import (
    CompetitorPriceRecord,
    PriceChangeRecord,
    PriceHistory,
    PriceRecord,
    QuoteRecord,
    RedeemResult,
    RedemptionRecord,
    ReleaseResult,
    Suggestion,
)


class View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- prices -----------------------------------------------------------------------------------


COST_NOTE = "Ops only (cost data, confidential to the retailer); null for other callers."


class PriceOut(View):
    """A price. Customers, partners and services see the selling price only; the cost fields,
    the margin and who set it are shown to ops (null otherwise)."""

    sku: str
    currency: str
    list_price_minor: int
    unit_cost_minor: int | None = Field(description=COST_NOTE)
    commission_rate: str | None = Field(description=COST_NOTE)
    marketing_cost_rate: str | None = Field(description=COST_NOTE)
    gross_margin: str | None = Field(description="Decimal string, e.g. 0.3520. " + COST_NOTE)
    margin_floor: str | None = Field(description=COST_NOTE)
    below_floor: bool | None = Field(description=COST_NOTE)
    updated_by: str | None = Field(description=COST_NOTE)
    reason: str | None = Field(description="Why it was set. " + COST_NOTE)
    updated_at: datetime

    @classmethod
    def of(cls, r: PriceRecord, *, costs: bool = True) -> PriceOut:
        if not costs:
            return cls(
                sku=r.sku,
                currency=r.currency,
                list_price_minor=r.terms.list_price_minor,
                unit_cost_minor=None,
                commission_rate=None,
                marketing_cost_rate=None,
                gross_margin=None,
                margin_floor=None,
                below_floor=None,
                updated_by=None,
                reason=None,
                updated_at=r.updated_at,
            )
        return cls(
            sku=r.sku,
            currency=r.currency,
            list_price_minor=r.terms.list_price_minor,
            unit_cost_minor=r.terms.unit_cost_minor,
            commission_rate=fmt_rate(r.terms.commission_rate),
            marketing_cost_rate=fmt_rate(r.terms.marketing_cost_rate),
            gross_margin=fmt_rate(r.gross_margin),
            margin_floor=fmt_rate(r.margin_floor),
            below_floor=r.below_floor,
            updated_by=r.updated_by,
            reason=r.reason,
            updated_at=r.updated_at,
        )


class PriceChangeOut(View):
    """One change. The cost fields, the margin, who and why are shown to ops only (null for
    other callers)."""

    list_price_minor: int
    previous_price_minor: int
    unit_cost_minor: int | None = Field(description=COST_NOTE)
    commission_rate: str | None = Field(description=COST_NOTE)
    marketing_cost_rate: str | None = Field(description=COST_NOTE)
    gross_margin: str | None = Field(description=COST_NOTE)
    below_floor: bool | None = Field(description=COST_NOTE)
    changed_by: str | None = Field(description=COST_NOTE)
    reason: str | None = Field(description=COST_NOTE)
    changed_at: datetime

    @classmethod
    def of(cls, c: PriceChangeRecord, *, costs: bool = True) -> PriceChangeOut:
        if not costs:
            return cls(
                list_price_minor=c.list_price_minor,
                previous_price_minor=c.previous_price_minor,
                unit_cost_minor=None,
                commission_rate=None,
                marketing_cost_rate=None,
                gross_margin=None,
                below_floor=None,
                changed_by=None,
                reason=None,
                changed_at=c.changed_at,
            )
        return cls(
            list_price_minor=c.list_price_minor,
            previous_price_minor=c.previous_price_minor,
            unit_cost_minor=c.unit_cost_minor,
            commission_rate=fmt_rate(c.commission_rate),
            marketing_cost_rate=fmt_rate(c.marketing_cost_rate),
            gross_margin=fmt_rate(c.gross_margin),
            below_floor=c.below_floor,
            changed_by=c.changed_by,
            reason=c.reason,
            changed_at=c.changed_at,
        )


class PriceHistoryOut(View):
    sku: str
    currency: str
    changes: list[PriceChangeOut]
    lowest_price_30d_minor: int = Field(
        description="Lowest list price in force during the last 30 days (EU price indication)"
    )
    next_cursor: str | None

    @classmethod
    def of(cls, h: PriceHistory, *, costs: bool = True) -> PriceHistoryOut:
        return cls(
            sku=h.sku,
            currency=h.currency,
            changes=[PriceChangeOut.of(c, costs=costs) for c in h.changes],
            lowest_price_30d_minor=h.lowest_price_30d_minor,
            next_cursor=h.next_cursor,
        )


# --- promotions -------------------------------------------------------------------------------


class ScopeOut(View):
    skus: list[str]
    categories: list[str]
    all: bool


class PromotionOut(View):
    promotion_id: str
    name: str
    kind: str
    value: dict[str, int] | int | str
    scope: ScopeOut
    starts_at: datetime | None
    ends_at: datetime | None
    coupon_code: str | None
    usage_limit: int | None
    per_customer_limit: int | None
    used_count: int
    min_subtotal_minor: int
    currency: str | None
    segments: list[str]
    stackable: bool
    active: bool
    allow_below_floor: bool
    reason: str | None
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, p: Promotion) -> PromotionOut:
        value: dict[str, int] | int | str
        if p.kind.value == "percent":
            value = str(p.percent)
        elif p.kind.value == "fixed_amount":
            value = p.amount_minor or 0
        else:
            value = {"buy": p.buy_quantity or 0, "get": p.get_quantity or 0}
        return cls(
            promotion_id=p.id,
            name=p.name,
            kind=p.kind.value,
            value=value,
            scope=ScopeOut(
                skus=sorted(p.scope.skus), categories=sorted(p.scope.categories), all=p.scope.all
            ),
            starts_at=p.starts_at,
            ends_at=p.ends_at,
            coupon_code=p.coupon_code,
            usage_limit=p.usage_limit,
            per_customer_limit=p.per_customer_limit,
            used_count=p.used,
            min_subtotal_minor=p.min_subtotal_minor,
            currency=p.currency,
            segments=sorted(p.segments),
            stackable=p.stackable,
            active=p.active,
            allow_below_floor=p.allow_below_floor,
            reason=p.reason,
            created_by=p.created_by,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PromotionPage(View):
    items: list[PromotionOut]
    next_cursor: str | None


# --- quotes -----------------------------------------------------------------------------------


class AppliedPromotionOut(View):
    promotion_id: str
    name: str
    discount_minor: int
    coupon_code: str | None = None


class QuoteLineOut(View):
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    promotions: list[AppliedPromotionOut]


class QuoteOut(View):
    quote_id: str
    customer_id: str | None
    currency: str
    lines: list[QuoteLineOut]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    coupon_codes: list[str]
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, q: QuoteRecord) -> QuoteOut:
        return cls(
            quote_id=q.quote_id,
            customer_id=q.customer_id,
            currency=q.currency,
            lines=[
                QuoteLineOut(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    discount_minor=line.discount_minor,
                    total_minor=line.total_minor,
                    promotions=[
                        AppliedPromotionOut(
                            promotion_id=s.promotion_id,
                            name=s.name,
                            discount_minor=s.discount_minor,
                            coupon_code=s.coupon_code,
                        )
                        for s in line.promotions
                    ],
                )
                for line in q.lines
            ],
            subtotal_minor=q.subtotal_minor,
            discount_total_minor=q.discount_total_minor,
            total_minor=q.total_minor,
            coupon_codes=q.coupon_codes,
            created_at=q.created_at,
            expires_at=q.expires_at,
        )


class RedemptionOut(View):
    promotion_id: str
    coupon_code: str | None
    order_id: str
    quote_id: str
    customer_id: str | None
    state: str
    redeemed_at: datetime

    @classmethod
    def of(cls, r: RedemptionRecord) -> RedemptionOut:
        return cls(
            promotion_id=r.promotion_id,
            coupon_code=r.coupon_code,
            order_id=r.order_id,
            quote_id=r.quote_id,
            customer_id=r.customer_id,
            state=r.state,
            redeemed_at=r.redeemed_at,
        )


class RedeemOut(View):
    quote: QuoteOut
    redemptions: list[RedemptionOut]
    replayed: bool

    @classmethod
    def of(cls, r: RedeemResult) -> RedeemOut:
        return cls(
            quote=QuoteOut.of(r.quote),
            redemptions=[RedemptionOut.of(x) for x in r.redemptions],
            replayed=r.replayed,
        )


class ReleaseOut(View):
    released_count: int
    redemptions: list[RedemptionOut]

    @classmethod
    def of(cls, r: ReleaseResult) -> ReleaseOut:
        return cls(
            released_count=r.released_count,
            redemptions=[RedemptionOut.of(x) for x in r.redemptions],
        )


# --- competitor prices and suggestions --------------------------------------------------------


class CompetitorPriceOut(View):
    sku: str
    competitor: str
    currency: str
    price_minor: int
    observed_at: datetime
    recorded_by: str

    @classmethod
    def of(cls, r: CompetitorPriceRecord) -> CompetitorPriceOut:
        return cls(
            sku=r.sku,
            competitor=r.competitor,
            currency=r.currency,
            price_minor=r.price_minor,
            observed_at=r.observed_at,
            recorded_by=r.recorded_by,
        )


class SuggestionOut(View):
    sku: str
    currency: str
    current_price_minor: int
    suggested_price_minor: int
    floor_price_minor: int
    current_margin: str
    suggested_margin: str
    velocity_per_day: str
    stock_available: int | None
    days_of_cover: str | None
    competitor_min_price_minor: int | None
    reasons: list[str]

    @classmethod
    def of(cls, s: Suggestion) -> SuggestionOut:
        return cls(
            sku=s.sku,
            currency=s.currency,
            current_price_minor=s.current_price_minor,
            suggested_price_minor=s.suggested_price_minor,
            floor_price_minor=s.floor_price_minor,
            current_margin=fmt_rate(s.current_margin),
            suggested_margin=fmt_rate(s.suggested_margin),
            velocity_per_day=str(s.velocity_per_day),
            stock_available=s.stock_available,
            days_of_cover=str(s.days_of_cover) if s.days_of_cover is not None else None,
            competitor_min_price_minor=s.competitor_min_price_minor,
            reasons=s.reasons,
        )


class SuggestionPage(View):
    items: list[SuggestionOut]
    next_cursor: str | None
