"""Suggestions: reasons from stock cover and competitors, never below the margin floor."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pricing_service.domain.models import PriceTerms, floor_price_minor
from pricing_service.domain.suggestions import suggest

FLOOR = Decimal("0.30")


def terms(price: int = 10000, cost: int = 4000) -> PriceTerms:
    return PriceTerms(price, cost, Decimal("0.05"), Decimal("0.05"))


def test_low_cover_raises_and_high_cover_lowers() -> None:
    low = suggest(
        sku="a",
        currency="EUR",
        terms=terms(),
        floor=FLOOR,
        units_sold=280,
        window_days=28,
        stock_available=50,
        competitor_min_minor=None,
    )
    assert low.suggested_price_minor == 10500 and "under 14" in low.reasons[0]
    high = suggest(
        sku="a",
        currency="EUR",
        terms=terms(),
        floor=FLOOR,
        units_sold=28,
        window_days=28,
        stock_available=1000,
        competitor_min_minor=None,
    )
    assert high.suggested_price_minor == 9500 and high.days_of_cover == Decimal("1000.0")


def test_competitor_alignment_is_clamped_to_the_floor() -> None:
    s = suggest(
        sku="a",
        currency="EUR",
        terms=terms(),
        floor=FLOOR,
        units_sold=0,
        window_days=28,
        stock_available=None,
        competitor_min_minor=5000,
    )
    floor_price = floor_price_minor(4000, Decimal("0.05"), Decimal("0.05"), FLOOR)
    assert s.suggested_price_minor == floor_price == 6667
    assert any("competitor" in r for r in s.reasons) and "margin floor" in s.reasons[-1]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**4),
    st.one_of(st.none(), st.integers(0, 10**5)),
    st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_never_below_the_floor(
    price: int, cost: int, sold: int, stock: int | None, competitor: int | None
) -> None:
    t = PriceTerms(price, cost, Decimal("0.05"), Decimal("0.05"))
    s = suggest(
        sku="a",
        currency="EUR",
        terms=t,
        floor=FLOOR,
        units_sold=sold,
        window_days=28,
        stock_available=stock,
        competitor_min_minor=competitor,
    )
    assert s.suggested_price_minor >= s.floor_price_minor
    assert s.suggested_margin >= FLOOR
    assert s.reasons
