"""Dynamic-pricing suggestions: advice from velocity, stock cover, competitors and the floor."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .models import PriceTerms, floor_price_minor, fmt_rate
from .records import Suggestion

LOW_COVER_DAYS = Decimal(14)
HIGH_COVER_DAYS = Decimal(90)
STEP = Decimal("0.05")
COMPETITOR_TOLERANCE = Decimal("0.05")
COMPETITOR_HEADROOM = Decimal("0.10")


def _scale(price: int, factor: Decimal) -> int:
    return int((Decimal(price) * factor).to_integral_value(ROUND_HALF_UP))


def suggest(
    *,
    sku: str,
    currency: str,
    terms: PriceTerms,
    floor: Decimal,
    units_sold: int,
    window_days: int,
    stock_available: int | None,
    competitor_min_minor: int | None,
) -> Suggestion:
    """One suggestion. The rules, in order:

    1. stock cover (available / daily velocity) under 14 days: +5% (demand outruns stock);
       over 90 days, or stock but no sales: -5% (move the stock);
    2. competitor: more than 5% above the lowest recent competitor price: align to it; more
       than 10% below it (and stock is not in excess): raise to 2% under it;
    3. never below the margin floor: clamp to the lowest price keeping the floor.
    """
    current = terms.list_price_minor
    velocity = (Decimal(units_sold) / Decimal(window_days)).quantize(Decimal("0.0001"))
    cover: Decimal | None = None
    if stock_available is not None and velocity > 0:
        cover = (Decimal(stock_available) / velocity).quantize(Decimal("0.1"))
    reasons: list[str] = []
    price = current
    excess = False
    if cover is not None and cover < LOW_COVER_DAYS:
        price = _scale(price, 1 + STEP)
        reasons.append(f"stock cover {cover} days is under {LOW_COVER_DAYS}: raise 5%")
    elif cover is not None and cover > HIGH_COVER_DAYS:
        excess = True
        price = _scale(price, 1 - STEP)
        reasons.append(f"stock cover {cover} days is over {HIGH_COVER_DAYS}: lower 5%")
    elif stock_available is not None and stock_available > 0 and velocity == 0:
        excess = True
        price = _scale(price, 1 - STEP)
        reasons.append(f"no sales in {window_days} days with {stock_available} in stock: lower 5%")
    elif stock_available is None and velocity == 0:
        reasons.append("no sales and no stock data: no demand signal")
    if competitor_min_minor is not None:
        if price > _scale(competitor_min_minor, 1 + COMPETITOR_TOLERANCE):
            price = competitor_min_minor
            reasons.append(f"lowest competitor price {competitor_min_minor}: align to it")
        elif not excess and price < _scale(competitor_min_minor, 1 - COMPETITOR_HEADROOM):
            price = _scale(competitor_min_minor, Decimal("0.98"))
            reasons.append(
                f"lowest competitor price {competitor_min_minor} leaves headroom: 2% under it"
            )
    floor_price = floor_price_minor(
        terms.unit_cost_minor, terms.commission_rate, terms.marketing_cost_rate, floor
    )
    if floor_price is None:
        # No price reaches the floor with these costs: keep the current price, say why.
        floor_price = max(price, current)
        reasons.append("costs and rates leave no price that keeps the margin floor")
        price = floor_price
    elif price < floor_price:
        price = floor_price
        reasons.append(f"clamped to the margin floor {fmt_rate(floor)}: {floor_price}")
    if not reasons:
        reasons.append("demand, stock and competitors are balanced: keep the price")
    suggested_margin = terms.margin_at(price)
    assert suggested_margin is not None
    return Suggestion(
        sku=sku,
        currency=currency,
        current_price_minor=current,
        suggested_price_minor=price,
        floor_price_minor=floor_price,
        current_margin=terms.margin,
        suggested_margin=suggested_margin,
        velocity_per_day=velocity,
        stock_available=stock_available,
        days_of_cover=cover,
        competitor_min_price_minor=competitor_min_minor,
        reasons=reasons,
    )
