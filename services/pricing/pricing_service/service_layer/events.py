"""Domain records to the pricing events (protobuf contracts) the handlers record in the outbox."""

from __future__ import annotations

from datetime import datetime

from ecomops.pricing.v1 import events_pb2
from ecomops_platform.timestamps import optional_timestamp, to_timestamp

from ..domain.models import Promotion, fmt_rate
from ..domain.records import PriceRecord, RedemptionRecord


def price_changed(record: PriceRecord, previous_minor: int) -> events_pb2.PriceChanged:
    return events_pb2.PriceChanged(
        sku=record.sku,
        currency=record.currency,
        list_price_minor=record.terms.list_price_minor,
        previous_price_minor=previous_minor,
        gross_margin=fmt_rate(record.gross_margin),
        below_floor=record.below_floor,
        changed_by=record.updated_by,
        reason=record.reason or "",
        changed_at=to_timestamp(record.updated_at),
    )


def promotion_changed(p: Promotion, changed_by: str) -> events_pb2.PromotionChanged:
    return events_pb2.PromotionChanged(
        promotion_id=p.id,
        name=p.name,
        kind=p.kind.value,
        active=p.active,
        starts_at=optional_timestamp(p.starts_at),
        ends_at=optional_timestamp(p.ends_at),
        changed_by=changed_by,
    )


def redemption_changed(
    r: RedemptionRecord, state: str, at: datetime
) -> events_pb2.CouponRedemptionChanged:
    return events_pb2.CouponRedemptionChanged(
        promotion_id=r.promotion_id,
        coupon_code=r.coupon_code or "",
        order_id=r.order_id,
        customer_id=r.customer_id or "",
        state=state,
        occurred_at=to_timestamp(at),
    )
