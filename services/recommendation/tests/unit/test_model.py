"""The co-occurrence model, its invariants, and the RFM rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommendation_service.domain.models import (
    BASKET,
    SESSION,
    BehaviorEvent,
    BehaviorType,
    ChurnRisk,
    InMemoryModel,
    InteractionKind,
    ModelParams,
    SegmentName,
    basket_increments,
    churn_risk_of,
    compute_rfm,
    frequency_score,
    jaccard,
    rate,
    recency_score,
    segment_of,
    unscale,
    validate_behavior,
)

T = datetime(2026, 6, 1, tzinfo=UTC)
PARAMS = ModelParams()

skus = st.sampled_from([f"s{i}" for i in range(8)])
times = st.integers(min_value=0, max_value=60 * 86400).map(lambda s: T + timedelta(seconds=s))
baskets = st.lists(st.tuples(st.lists(skus, min_size=1, max_size=5), times), max_size=12)


@given(baskets)
@settings(max_examples=60, deadline=None)
def test_jaccard_is_symmetric_and_between_zero_and_one(
    data: list[tuple[list[str], datetime]],
) -> None:
    model = InMemoryModel(PARAMS)
    for items, at in data:
        model.add_basket(items, at)
    for a, row in model.pairs[BASKET].items():
        for b, co in row.items():
            assert model.pairs[BASKET][b][a] == pytest.approx(co)
            j = jaccard(co, model.counts[(BASKET, a)], model.counts[(BASKET, b)])
            assert 0.0 < j <= 1.0
            # a pair never co-occurs more than either item occurs
            assert co <= model.counts[(BASKET, a)] * (1 + 1e-9)


@given(baskets, st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_order_of_events_does_not_change_the_model(
    data: list[tuple[list[str], datetime]], rnd: random.Random
) -> None:
    """Scaled weights commute: incremental updates in any order equal a rebuild in time order."""
    in_order, shuffled = InMemoryModel(PARAMS), InMemoryModel(PARAMS)
    for items, at in sorted(data, key=lambda x: x[1]):
        in_order.add_basket(items, at)
    mixed = list(data)
    rnd.shuffle(mixed)
    for items, at in mixed:
        shuffled.add_basket(items, at)
    for key, value in in_order.counts.items():
        assert shuffled.counts[key] == pytest.approx(value, rel=1e-9)
    for _, sku in in_order.counts:
        expected = dict(in_order.neighbours(BASKET, sku))
        got = dict(shuffled.neighbours(BASKET, sku))
        assert got.keys() == expected.keys()
        for other, sim in expected.items():
            assert got[other] == pytest.approx(sim, rel=1e-9)


def test_time_decay_halves_a_weight_after_one_half_life() -> None:
    inc = basket_increments(["a", "b"], T, PARAMS)
    stored = inc.counts[(BASKET, "a")]
    assert unscale(stored, PARAMS.rate, T) == pytest.approx(1.0)
    assert unscale(stored, PARAMS.rate, T + PARAMS.half_life) == pytest.approx(0.5)


def test_recent_co_purchases_outweigh_old_ones() -> None:
    model = InMemoryModel(PARAMS)
    for _ in range(3):
        model.add_basket(["a", "old"], T - timedelta(days=120))
    for _ in range(2):
        model.add_basket(["a", "new"], T)
    assert [s for s, _ in model.neighbours(BASKET, "a")] == ["new", "old"]


def test_a_repeated_view_in_the_session_window_adds_no_co_occurrence() -> None:
    model = InMemoryModel(PARAMS)
    model.add_behavior("s:1", "a", InteractionKind.VIEW, T)
    model.add_behavior("s:1", "b", InteractionKind.VIEW, T + timedelta(minutes=1))
    model.add_behavior("s:1", "a", InteractionKind.VIEW, T + timedelta(minutes=2))
    co = model.pairs[SESSION]["a"]["b"]
    assert unscale(co, PARAMS.rate, T) == pytest.approx(1.0, rel=1e-3)
    # outside the window it is a new session
    model.add_behavior("s:1", "c", InteractionKind.VIEW, T + timedelta(days=2))
    assert "c" not in model.pairs[SESSION]["a"]
    # removing from the cart teaches no similarity
    model.add_behavior("s:2", "z", InteractionKind.REMOVE_FROM_CART, T)
    model.add_behavior("s:2", "a", InteractionKind.VIEW, T)
    assert "z" not in model.pairs[SESSION]["a"]


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def event(**kw: object) -> BehaviorEvent:
    base: dict[str, object] = {
        "type": BehaviorType.VIEW,
        "sku": "a",
        "customer_id": None,
        "session_id": "s",
        "occurred_at": NOW,
    }
    base.update(kw)
    return BehaviorEvent(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "caller", "anonymous", "field"),
    [
        ({"customer_id": "c1"}, None, True, "customer_id"),
        ({"customer_id": "c2"}, "c1", False, "customer_id"),
        ({"session_id": None}, None, True, "session_id"),
        ({"sku": ""}, None, True, "sku"),
        ({"occurred_at": NOW + timedelta(hours=1)}, None, True, "occurred_at"),
        ({"occurred_at": NOW - timedelta(days=40)}, None, True, "occurred_at"),
        ({"occurred_at": datetime(2026, 6, 1)}, None, True, "occurred_at"),
    ],
)
def test_invalid_behaviour_is_named(
    kw: dict[str, object], caller: str | None, anonymous: bool, field: str
) -> None:
    errors = validate_behavior(
        7,
        event(**kw),
        caller_customer=caller,
        anonymous=anonymous,
        now=NOW,
        max_skew=timedelta(minutes=5),
        max_age=timedelta(days=30),
    )
    assert [(e.index, e.field) for e in errors] == [(7, field)]


def test_valid_behaviour_passes() -> None:
    for kw, caller, anonymous in (
        ({}, None, True),
        ({"customer_id": "c1", "session_id": None}, "c1", False),
        ({"customer_id": "c9"}, None, False),  # ops / service may send for anyone
    ):
        assert (
            validate_behavior(
                0,
                event(**kw),
                caller_customer=caller,
                anonymous=anonymous,
                now=NOW,
                max_skew=timedelta(minutes=5),
                max_age=timedelta(days=30),
            )
            == []
        )


@given(
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(1, 5),
)
def test_every_score_triple_has_exactly_one_segment(r: int, f: int, m: int) -> None:
    assert segment_of(r, f, m) in set(SegmentName)


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, SegmentName.CHAMPIONS),
        (5, 1, 1, SegmentName.NEW),
        (4, 2, 3, SegmentName.POTENTIAL_LOYALIST),
        (3, 4, 5, SegmentName.LOYAL),
        (3, 3, 3, SegmentName.NEEDS_ATTENTION),
        (3, 1, 2, SegmentName.PROMISING),
        (2, 5, 4, SegmentName.AT_RISK),
        (1, 5, 5, SegmentName.AT_RISK),
        (2, 2, 2, SegmentName.HIBERNATING),
        (1, 1, 3, SegmentName.LOST),
    ],
)
def test_segment_rules(r: int, f: int, m: int, segment: SegmentName) -> None:
    assert segment_of(r, f, m) is segment


@given(st.integers(0, 2000), st.integers(0, 2000))
def test_scores_are_monotonic(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    assert recency_score(lo) >= recency_score(hi)
    assert frequency_score(lo) <= frequency_score(hi)
    assert 1 <= recency_score(a) <= 5 and 1 <= frequency_score(a) <= 5


def test_churn_risk_follows_the_customers_rhythm() -> None:
    assert churn_risk_of(10, 5, 14.0) is ChurnRisk.LOW
    assert churn_risk_of(30, 5, 14.0) is ChurnRisk.MEDIUM
    assert churn_risk_of(50, 5, 14.0) is ChurnRisk.HIGH
    assert churn_risk_of(200, 1, None) is ChurnRisk.HIGH
    rfm = compute_rfm(
        "c",
        last_paid_at=NOW - timedelta(days=3),
        first_paid_at=NOW - timedelta(days=3),
        frequency=1,
        monetary_minor=100,
        currency="EUR",
        share_below=0.1,
        now=NOW,
    )
    assert (rfm.segment, rfm.churn_risk, rfm.recency_days) == (SegmentName.NEW, ChurnRisk.LOW, 3)


def test_rates_are_decimals_and_undefined_for_empty_steps() -> None:
    assert str(rate(1, 4)) == "0.2500"
    assert rate(1, 0) is None


@given(baskets, st.integers(min_value=0, max_value=11))
@settings(max_examples=40, deadline=None)
def test_subtracting_a_cancelled_basket_restores_the_model_without_it(
    data: list[tuple[list[str], datetime]], drop: int
) -> None:
    """What a cancelled paid order does: the same increments, negated."""
    from recommendation_service.domain.models import Increments

    if not data:
        return
    drop %= len(data)
    without = InMemoryModel(PARAMS)
    for i, (items, at) in enumerate(data):
        if i != drop:
            without.apply(basket_increments(items, at, PARAMS))
    model = InMemoryModel(PARAMS)
    for items, at in data:
        model.apply(basket_increments(items, at, PARAMS))
    inc = basket_increments(*data[drop], PARAMS)
    model.apply(
        Increments(
            counts={k: -w for k, w in inc.counts.items()},
            pairs={k: -w for k, w in inc.pairs.items()},
            totals={k: -w for k, w in inc.totals.items()},
        )
    )
    scale = max(inc.counts.values())
    for key, value in model.counts.items():
        assert value == pytest.approx(without.counts.get(key, 0.0), abs=scale * 1e-9)
