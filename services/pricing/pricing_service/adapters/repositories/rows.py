"""Rows to domain records and back (shared by the repositories)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ...domain.basket import LineShare, PricedLine
from ...domain.models import PriceTerms, Promotion, PromotionKind, Scope
from ...domain.records import (
    PriceRecord,
    QuoteRecord,
    RedemptionRecord,
)


def price_from_row(row: Any) -> PriceRecord:
    return PriceRecord(
        sku=row.sku,
        currency=row.currency,
        terms=PriceTerms(
            list_price_minor=row.list_price_minor,
            unit_cost_minor=row.unit_cost_minor,
            commission_rate=Decimal(row.commission_rate),
            marketing_cost_rate=Decimal(row.marketing_cost_rate),
        ),
        gross_margin=Decimal(row.gross_margin),
        margin_floor=Decimal(row.margin_floor),
        below_floor=row.below_floor,
        updated_by=row.updated_by,
        reason=row.reason,
        updated_at=row.updated_at,
    )


def promotion_from_row(row: Any) -> Promotion:
    return Promotion(
        id=row.id,
        name=row.name,
        kind=PromotionKind(row.kind),
        scope=Scope(
            skus=frozenset(row.scope_skus),
            categories=frozenset(row.scope_categories),
            all=row.scope_all,
        ),
        stackable=row.stackable,
        percent=Decimal(row.percent) if row.percent is not None else None,
        amount_minor=row.amount_minor,
        buy_quantity=row.buy_quantity,
        get_quantity=row.get_quantity,
        coupon_code=row.coupon_code,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        active=row.active,
        usage_limit=row.usage_limit,
        per_customer_limit=row.per_customer_limit,
        used=row.used,
        min_subtotal_minor=row.min_subtotal_minor,
        currency=row.currency,
        segments=frozenset(row.segments),
        allow_below_floor=row.allow_below_floor,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def promotion_values(p: Promotion) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind.value,
        "percent": p.percent,
        "amount_minor": p.amount_minor,
        "buy_quantity": p.buy_quantity,
        "get_quantity": p.get_quantity,
        "scope_skus": sorted(p.scope.skus),
        "scope_categories": sorted(p.scope.categories),
        "scope_all": p.scope.all,
        "starts_at": p.starts_at,
        "ends_at": p.ends_at,
        "coupon_code": p.coupon_code,
        "usage_limit": p.usage_limit,
        "per_customer_limit": p.per_customer_limit,
        "min_subtotal_minor": p.min_subtotal_minor,
        "currency": p.currency,
        "segments": sorted(p.segments),
        "stackable": p.stackable,
        "active": p.active,
        "allow_below_floor": p.allow_below_floor,
        "reason": p.reason,
        "created_by": p.created_by,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def lines_to_json(lines: Sequence[PricedLine]) -> list[dict[str, Any]]:
    return [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "discount_minor": line.discount_minor,
            "total_minor": line.total_minor,
            "promotions": [
                {
                    "promotion_id": s.promotion_id,
                    "name": s.name,
                    "discount_minor": s.discount_minor,
                    "coupon_code": s.coupon_code,
                }
                for s in line.promotions
            ],
        }
        for line in lines
    ]


def quote_from_row(row: Any) -> QuoteRecord:
    return QuoteRecord(
        quote_id=row.id,
        customer_id=row.customer_id,
        currency=row.currency,
        lines=[
            PricedLine(
                sku=line["sku"],
                quantity=line["quantity"],
                unit_price_minor=line["unit_price_minor"],
                discount_minor=line["discount_minor"],
                total_minor=line["total_minor"],
                promotions=[
                    LineShare(
                        s["promotion_id"], s["name"], s["discount_minor"], s.get("coupon_code")
                    )
                    for s in line["promotions"]
                ],
            )
            for line in row.lines
        ],
        subtotal_minor=row.subtotal_minor,
        discount_total_minor=row.discount_total_minor,
        total_minor=row.total_minor,
        coupon_codes=list(row.coupon_codes),
        promotion_ids=list(row.promotion_ids),
        created_at=row.created_at,
        expires_at=row.expires_at,
        order_id=row.order_id,
    )


def redemption_from_row(row: Any) -> RedemptionRecord:
    return RedemptionRecord(
        promotion_id=row.promotion_id,
        coupon_code=row.coupon_code,
        order_id=row.order_id,
        quote_id=row.quote_id,
        customer_id=row.customer_id,
        state=row.state,
        redeemed_at=row.redeemed_at,
    )
