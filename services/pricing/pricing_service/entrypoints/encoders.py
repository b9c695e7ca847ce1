"""The pricing views as protobuf messages (gRPC), and the protobuf inputs that need reading
(rates, required timestamps, pages). What a view leaves out (cost data for callers other than
ops) stays unset."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.common.v1 import common_pb2
from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops_platform.errors import Unprocessable
from ecomops_platform.pagination import check_limit
from ecomops_platform.timestamps import optional_timestamp, to_datetime, to_timestamp

from ..domain.models import PromotionKind
from ..domain.records import CONFIRMED, REDEEMED, RELEASED
from ..service_layer.quotes import QuoteLine
from ..service_layer.views import (
    CompetitorPriceOut,
    PriceChangeOut,
    PriceOut,
    PromotionOut,
    QuoteOut,
    RedemptionOut,
    SuggestionOut,
)

KINDS = {
    pb.PROMOTION_KIND_PERCENT: PromotionKind.PERCENT,
    pb.PROMOTION_KIND_FIXED_AMOUNT: PromotionKind.FIXED_AMOUNT,
    pb.PROMOTION_KIND_BUY_X_GET_Y: PromotionKind.BUY_X_GET_Y,
}
KIND_PB = {v.value: k for k, v in KINDS.items()}
STATES = {
    REDEEMED: pb.REDEMPTION_STATE_REDEEMED,
    CONFIRMED: pb.REDEMPTION_STATE_CONFIRMED,
    RELEASED: pb.REDEMPTION_STATE_RELEASED,
}


# --- decoding ---------------------------------------------------------------------------------


def rate(name: str, value: str) -> Decimal:
    if not value:
        return Decimal(0)
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise Unprocessable(f"{name} must be a decimal string", code="invalid-rate") from None
    if not parsed.is_finite() or parsed < 0 or parsed > 1:
        raise Unprocessable(f"{name} must be a decimal in [0, 1]", code="invalid-rate")
    return parsed


def when(stamp: Timestamp, name: str) -> datetime:
    """A required timestamp (unset → INVALID_ARGUMENT naming the field)."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        raise Unprocessable(f"{name} is required", code="invalid-time", field=name)
    return to_datetime(stamp, name)


def page_of(page: common_pb2.PageRequest) -> tuple[int, str | None]:
    return check_limit(page.limit or None), page.cursor or None


def next_page(cursor: str | None) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_cursor=cursor or "")


def quote_lines(lines: Iterable[common_pb2.SkuQuantity]) -> tuple[QuoteLine, ...]:
    return tuple(QuoteLine(sku=line.sku, quantity=line.quantity) for line in lines)


# --- encoding ---------------------------------------------------------------------------------


def price_pb(r: PriceOut) -> pb.Price:
    """A price; without cost data (callers other than ops) only the selling price is set."""
    if r.unit_cost_minor is None:
        return pb.Price(
            sku=r.sku,
            currency=r.currency,
            list_price_minor=r.list_price_minor,
            updated_at=to_timestamp(r.updated_at),
        )
    return pb.Price(
        sku=r.sku,
        currency=r.currency,
        list_price_minor=r.list_price_minor,
        unit_cost_minor=r.unit_cost_minor,
        commission_rate=r.commission_rate or "",
        marketing_cost_rate=r.marketing_cost_rate or "",
        gross_margin=r.gross_margin or "",
        margin_floor=r.margin_floor or "",
        below_floor=bool(r.below_floor),
        updated_by=r.updated_by or "",
        reason=r.reason or "",
        updated_at=to_timestamp(r.updated_at),
    )


def change_pb(c: PriceChangeOut) -> pb.PriceChange:
    """A change; without cost data (callers other than ops) only the selling prices are set."""
    if c.unit_cost_minor is None:
        return pb.PriceChange(
            list_price_minor=c.list_price_minor,
            previous_price_minor=c.previous_price_minor,
            changed_at=to_timestamp(c.changed_at),
        )
    return pb.PriceChange(
        list_price_minor=c.list_price_minor,
        previous_price_minor=c.previous_price_minor,
        unit_cost_minor=c.unit_cost_minor,
        commission_rate=c.commission_rate or "",
        marketing_cost_rate=c.marketing_cost_rate or "",
        gross_margin=c.gross_margin or "",
        below_floor=bool(c.below_floor),
        changed_by=c.changed_by or "",
        reason=c.reason or "",
        changed_at=to_timestamp(c.changed_at),
    )


def promotion_pb(p: PromotionOut) -> pb.Promotion:
    value = p.value
    msg = pb.Promotion(
        promotion_id=p.promotion_id,
        name=p.name,
        kind=KIND_PB[p.kind],
        percent=value if isinstance(value, str) else "",
        amount_minor=value if isinstance(value, int) else 0,
        buy_quantity=value.get("buy", 0) if isinstance(value, dict) else 0,
        get_quantity=value.get("get", 0) if isinstance(value, dict) else 0,
        scope=pb.PromotionScope(skus=p.scope.skus, categories=p.scope.categories, all=p.scope.all),
        starts_at=optional_timestamp(p.starts_at),
        ends_at=optional_timestamp(p.ends_at),
        coupon_code=p.coupon_code or "",
        used_count=p.used_count,
        min_subtotal_minor=p.min_subtotal_minor,
        currency=p.currency or "",
        segments=p.segments,
        stackable=p.stackable,
        active=p.active,
        allow_below_floor=p.allow_below_floor,
        reason=p.reason or "",
        created_by=p.created_by,
        created_at=optional_timestamp(p.created_at),
        updated_at=optional_timestamp(p.updated_at),
    )
    if p.usage_limit is not None:
        msg.usage_limit = p.usage_limit
    if p.per_customer_limit is not None:
        msg.per_customer_limit = p.per_customer_limit
    return msg


def quote_pb(q: QuoteOut) -> pb.Quote:
    return pb.Quote(
        quote_id=q.quote_id,
        customer_id=q.customer_id or "",
        currency=q.currency,
        lines=[
            pb.QuoteLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                discount_minor=line.discount_minor,
                total_minor=line.total_minor,
                promotions=[
                    pb.AppliedPromotion(
                        promotion_id=s.promotion_id,
                        name=s.name,
                        discount_minor=s.discount_minor,
                        coupon_code=s.coupon_code or "",
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
        created_at=to_timestamp(q.created_at),
        expires_at=to_timestamp(q.expires_at),
    )


def redemption_pb(r: RedemptionOut) -> pb.Redemption:
    return pb.Redemption(
        promotion_id=r.promotion_id,
        coupon_code=r.coupon_code or "",
        order_id=r.order_id,
        quote_id=r.quote_id,
        customer_id=r.customer_id or "",
        state=STATES.get(r.state, pb.REDEMPTION_STATE_UNSPECIFIED),
        redeemed_at=to_timestamp(r.redeemed_at),
    )


def competitor_pb(r: CompetitorPriceOut) -> pb.CompetitorPrice:
    return pb.CompetitorPrice(
        sku=r.sku,
        competitor=r.competitor,
        currency=r.currency,
        price_minor=r.price_minor,
        observed_at=to_timestamp(r.observed_at),
        recorded_by=r.recorded_by,
    )


def suggestion_pb(s: SuggestionOut) -> pb.Suggestion:
    return pb.Suggestion(
        sku=s.sku,
        currency=s.currency,
        current_price_minor=s.current_price_minor,
        suggested_price_minor=s.suggested_price_minor,
        floor_price_minor=s.floor_price_minor,
        current_margin=s.current_margin,
        suggested_margin=s.suggested_margin,
        velocity_per_day=s.velocity_per_day,
        stock_available=s.stock_available if s.stock_available is not None else -1,
        days_of_cover=s.days_of_cover or "",
        competitor_min_price_minor=s.competitor_min_price_minor or 0,
        reasons=s.reasons,
    )
