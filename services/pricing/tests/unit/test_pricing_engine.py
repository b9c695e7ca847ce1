"""The basket engine and the margin guard: examples and properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomops_platform.errors import Unprocessable
from pricing_service.domain.basket import (
    BasketLine,
    _allocate,
    line_floor_room,
    price_basket,
    promotion_line_discounts,
)
from pricing_service.domain.models import (
    PriceTerms,
    Promotion,
    PromotionKind,
    QuoteContext,
    Scope,
    check_currency,
    floor_price_minor,
    gross_margin,
    guard_price,
    ineligibility,
    lowest_price_in_window,
)

NOW = datetime(2026, 1, 10, tzinfo=UTC)
SKUS = ["a", "b", "c", "d", "e"]
CATS = ["x", "y"]


def line(sku: str, qty: int, price: int, cat: str | None = "x") -> BasketLine:
    return BasketLine(sku=sku, category=cat, quantity=qty, unit_price_minor=price)


def promo(pid: str, kind: PromotionKind, *, stackable: bool = False, **kw: object) -> Promotion:
    return Promotion(
        id=pid,
        name=pid,
        kind=kind,
        scope=kw.pop("scope", Scope(all=True)),  # type: ignore[arg-type]
        stackable=stackable,
        **kw,  # type: ignore[arg-type]
    )


def test_gross_margin_and_floor_price() -> None:
    assert gross_margin(10000, 5480, Decimal("0.05"), Decimal("0.05")) == Decimal("0.352")
    floor = floor_price_minor(5480, Decimal("0.05"), Decimal("0.05"), Decimal("0.30"))
    assert floor == 9134
    assert gross_margin(9134, 5480, Decimal("0.05"), Decimal("0.05")) >= Decimal("0.30")
    assert gross_margin(9133, 5480, Decimal("0.05"), Decimal("0.05")) < Decimal("0.30")
    assert floor_price_minor(100, Decimal("0.5"), Decimal("0.3"), Decimal("0.3")) is None


def test_guard_price_refuses_under_floor_unless_allowed_with_reason() -> None:
    terms = PriceTerms(8000, 5480, Decimal("0.05"), Decimal("0.05"))
    with pytest.raises(Unprocessable) as refused:
        guard_price(terms, Decimal("0.30"), allow_below_floor=False, reason=None)
    assert refused.value.extra == {"gross_margin": "0.2150", "margin_floor": "0.3000"}
    with pytest.raises(Unprocessable):
        guard_price(terms, Decimal("0.30"), allow_below_floor=True, reason=None)
    margin, below = guard_price(terms, Decimal("0.30"), allow_below_floor=True, reason="sale")
    assert below and margin == Decimal("0.215")


def test_currency_codes() -> None:
    assert check_currency("eur") == "EUR"
    with pytest.raises(Unprocessable):
        check_currency("EURO")
    with pytest.raises(Unprocessable):
        check_currency("XYZ")


def test_lowest_price_counts_the_price_in_force_when_the_window_opened() -> None:
    start = NOW - timedelta(days=30)
    changes = [
        (NOW - timedelta(days=40), 900),  # in force when the window opened
        (NOW - timedelta(days=35), 1000),
        (NOW - timedelta(days=10), 1200),
        (NOW - timedelta(days=1), 800),
    ]
    assert lowest_price_in_window(changes, start, NOW) == 800
    assert lowest_price_in_window(changes[:3], start, NOW) == 1000
    assert lowest_price_in_window([], start, NOW) is None


def test_buy_x_get_y_gives_free_units_per_line() -> None:
    p = promo("p", PromotionKind.BUY_X_GET_Y, buy_quantity=2, get_quantity=1)
    lines = [line("a", 7, 100), line("b", 2, 50)]
    assert promotion_line_discounts(p, lines) == [200, 0]


def test_non_stackable_never_combines_and_best_wins() -> None:
    lines = [line("a", 1, 1000), line("b", 1, 1000)]
    stack_a = promo("s1", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.1"))
    stack_b = promo("s2", PromotionKind.FIXED_AMOUNT, stackable=True, amount_minor=300)
    solo = promo("n1", PromotionKind.PERCENT, percent=Decimal("0.2"))
    basket = price_basket(lines, [stack_a, stack_b, solo])
    assert basket.discount_total_minor == 500  # 200 + 300 beats 400
    assert {p.id for p in basket.applied} == {"s1", "s2"}
    solo_big = promo("n2", PromotionKind.PERCENT, percent=Decimal("0.3"))
    basket = price_basket(lines, [stack_a, stack_b, solo_big])
    assert [p.id for p in basket.applied] == ["n2"] and basket.discount_total_minor == 600


def test_eligibility_reasons() -> None:
    lines = [line("a", 1, 1000)]
    ctx = QuoteContext(NOW, "EUR", None, None, 1000)
    base = promo(
        "p",
        PromotionKind.PERCENT,
        percent=Decimal("0.1"),
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
    )
    assert ineligibility(base, ctx, lines) is None
    cases = {
        "inactive": {"active": False},
        "not_yet_valid": {"starts_at": NOW + timedelta(hours=1)},
        "expired": {"ends_at": NOW},
        "exhausted": {"usage_limit": 3, "used": 3},
        "currency_mismatch": {"currency": "USD"},
        "customer_required": {"segments": frozenset({"champions"})},
        "min_subtotal_not_met": {"min_subtotal_minor": 1001},
        "not_applicable": {"scope": Scope(skus=frozenset({"zzz"}))},
    }
    from dataclasses import replace

    for reason, change in cases.items():
        assert ineligibility(replace(base, **change), ctx, lines) == reason  # type: ignore[arg-type]
    segment_ctx = QuoteContext(NOW, "EUR", "c1", "lost", 1000, {"p": 2})
    assert (
        ineligibility(replace(base, segments=frozenset({"champions"})), segment_ctx, lines)
        == "segment_not_targeted"
    )
    assert (
        ineligibility(replace(base, per_customer_limit=2), segment_ctx, lines)
        == "exhausted_for_customer"
    )


# --- properties -------------------------------------------------------------------------------

lines_st = st.lists(
    st.builds(
        line,
        st.sampled_from(SKUS),
        st.integers(1, 50),
        st.integers(1, 100_000),
        st.sampled_from([*CATS, None]),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda b: b.sku,
)


@st.composite
def promotions_st(draw: st.DrawFn) -> list[Promotion]:
    out: list[Promotion] = []
    for i in range(draw(st.integers(0, 5))):
        scope = draw(
            st.one_of(
                st.just(Scope(all=True)),
                st.builds(
                    lambda s: Scope(skus=frozenset(s)), st.sets(st.sampled_from(SKUS), min_size=1)
                ),
                st.builds(
                    lambda c: Scope(categories=frozenset(c)),
                    st.sets(st.sampled_from(CATS), min_size=1),
                ),
            )
        )
        kind = draw(st.sampled_from(list(PromotionKind)))
        extra: dict[str, object] = {}
        if kind is PromotionKind.PERCENT:
            extra["percent"] = Decimal(draw(st.integers(1, 100))) / 100
        elif kind is PromotionKind.FIXED_AMOUNT:
            extra["amount_minor"] = draw(st.integers(1, 2_000_000))
        else:
            extra["buy_quantity"] = draw(st.integers(1, 5))
            extra["get_quantity"] = draw(st.integers(1, 5))
        out.append(
            Promotion(
                id=f"p{i}",
                name=f"p{i}",
                kind=kind,
                scope=scope,
                stackable=draw(st.booleans()),
                **extra,  # type: ignore[arg-type]
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(lines_st, promotions_st())
def test_quote_arithmetic_invariants(lines: list[BasketLine], promotions: list[Promotion]) -> None:
    basket = price_basket(lines, promotions)
    for source, priced in zip(lines, basket.lines, strict=True):
        assert 0 <= priced.discount_minor <= source.gross_minor
        assert priced.total_minor == source.gross_minor - priced.discount_minor
        assert priced.discount_minor == sum(s.discount_minor for s in priced.promotions)
        assert all(s.discount_minor > 0 for s in priced.promotions)
    assert basket.subtotal_minor == sum(b.gross_minor for b in lines)
    assert basket.discount_total_minor == sum(p.discount_minor for p in basket.lines)
    assert basket.total_minor == sum(p.total_minor for p in basket.lines)
    assert basket.total_minor == basket.subtotal_minor - basket.discount_total_minor


@settings(max_examples=150, deadline=None)
@given(lines_st, promotions_st())
def test_selection_never_combines_non_stackables_and_is_best(
    lines: list[BasketLine], promotions: list[Promotion]
) -> None:
    basket = price_basket(lines, promotions)
    applied = basket.applied
    if any(not p.stackable for p in applied):
        assert len(applied) == 1
    # at least as good as any promotion alone, and as all stackables together
    for p in promotions:
        alone = price_basket(lines, [p]).discount_total_minor
        assert basket.discount_total_minor >= alone
    stackables = [p for p in promotions if p.stackable]
    assert basket.discount_total_minor >= price_basket(lines, stackables).discount_total_minor


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_allocation_is_exact_and_bounded(amount: int, weights: list[int]) -> None:
    amount = min(amount, sum(weights))
    shares = _allocate(amount, weights)
    assert sum(shares) == amount
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10**7),
    st.integers(0, 40).map(lambda x: Decimal(x) / 100),
    st.integers(0, 20).map(lambda x: Decimal(x) / 100),
    st.integers(0, 50).map(lambda x: Decimal(x) / 100),
)
def test_floor_price_is_the_lowest_price_keeping_the_floor(
    cost: int, commission: Decimal, marketing: Decimal, floor: Decimal
) -> None:
    price = floor_price_minor(cost, commission, marketing, floor)
    if price is None:
        assert commission + marketing + floor >= 1
        return
    assert gross_margin(price, cost, commission, marketing) >= floor
    if price > 1:
        assert gross_margin(price - 1, cost, commission, marketing) < floor


# --- the margin floor holds for the combination actually applied (issue 19, finding 1) --------

FLOOR = Decimal("0.30")
ISSUE_TERMS = PriceTerms(
    list_price_minor=10000,
    unit_cost_minor=3000,
    commission_rate=Decimal(0),
    marketing_cost_rate=Decimal(0),
)


def floored(sku: str, qty: int, terms: PriceTerms = ISSUE_TERMS) -> BasketLine:
    return BasketLine(
        sku=sku,
        category="x",
        quantity=qty,
        unit_price_minor=terms.list_price_minor,
        floor_room_minor=line_floor_room(terms, qty, FLOOR),
    )


def test_two_stackable_40_percent_promotions_stop_at_the_floor() -> None:
    """The issue's numbers: 100.00 with cost 30.00, floor 30%: each 40% passes alone (margin
    0.50), together they would sell at 20.00 under the cost. The combination is capped at the
    floor price 42.86 (margin 0.3000)."""
    first = promo("s1", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.40"))
    second = promo("s2", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.40"))
    alone = price_basket([floored("a", 1)], [first])
    assert alone.total_minor == 6000  # one 40% stays well above the floor
    basket = price_basket([floored("a", 1)], [first, second])
    assert basket.total_minor == 4286 and basket.discount_total_minor == 5714
    assert [s.discount_minor for s in basket.lines[0].promotions] == [4000, 1714]
    margin = ISSUE_TERMS.margin_at(basket.total_minor)
    assert margin is not None and margin >= FLOOR
    assert ISSUE_TERMS.margin_at(basket.total_minor - 1) < FLOOR  # type: ignore[operator]
    # three units: the cap is per line total, the floor still holds
    triple = price_basket([floored("a", 3)], [first, second])
    assert triple.total_minor == 12858
    assert ISSUE_TERMS.margin_at(triple.total_minor) >= FLOOR  # type: ignore[operator]


def test_capped_stack_loses_to_a_deeper_single_promotion() -> None:
    stack = [
        promo("s1", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.40")),
        promo("s2", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.40")),
    ]
    # Allowed under the floor with a reason: keeps its own depth (70% off), and stacking adds
    # nothing beyond it.
    allowed = promo(
        "s3",
        PromotionKind.PERCENT,
        stackable=True,
        percent=Decimal("0.70"),
        allow_below_floor=True,
        reason="clearance",
    )
    basket = price_basket([floored("a", 1)], [*stack, allowed])
    assert basket.total_minor == 3000
    solo = price_basket([floored("a", 1)], [allowed])
    assert solo.total_minor == 3000


def test_a_line_already_under_the_floor_takes_no_ordinary_discount() -> None:
    terms = PriceTerms(5000, 4000, Decimal(0), Decimal(0))  # margin 0.20, set with a reason
    p = promo("s1", PromotionKind.PERCENT, stackable=True, percent=Decimal("0.10"))
    basket = price_basket([floored("a", 2, terms)], [p])
    assert basket.discount_total_minor == 0 and basket.applied == []


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10**6),
    st.integers(0, 10**6),
    st.integers(1, 50),
    st.lists(st.integers(1, 100), min_size=1, max_size=5),
    st.lists(st.integers(0, 5000), min_size=0, max_size=3),
)
def test_no_combination_goes_under_the_floor(
    price: int, cost: int, qty: int, percents: list[int], amounts: list[int]
) -> None:
    terms = PriceTerms(price, cost, Decimal("0.05"), Decimal("0.05"))
    promotions = [
        promo(f"p{i}", PromotionKind.PERCENT, stackable=True, percent=Decimal(n) / 100)
        for i, n in enumerate(percents)
    ] + [
        promo(f"f{i}", PromotionKind.FIXED_AMOUNT, stackable=True, amount_minor=a + 1)
        for i, a in enumerate(amounts)
    ]
    basket = price_basket([floored("a", qty, terms)], promotions)
    if basket.discount_total_minor:
        margin = terms.margin_at(basket.total_minor)
        assert margin is not None and margin >= FLOOR
