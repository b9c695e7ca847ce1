"""Domain rules: allocation preference, validation, state machine, planning maths, ABC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecomops_platform.errors import Conflict, Unprocessable
from inventory_service.domain import models as m
from inventory_service.domain import planning as pl

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def cands(*spec: tuple[str, int, str | None, int]) -> list[m.Candidate]:
    return [m.Candidate(w, a, r, p) for w, a, r, p in spec]


def test_single_in_region_warehouse_beats_better_priority_and_splits() -> None:
    pool = cands(("far", 100, "us", 0), ("near-a", 3, "eu", 1), ("near-b", 10, "eu", 5))
    assert m.plan_line("s", 8, pool, "eu") == [m.Allocation("s", "near-b", 8)]


def test_split_inside_region_when_it_covers_the_line() -> None:
    pool = cands(("far", 100, "us", 0), ("near-a", 3, "eu", 1), ("near-b", 5, "eu", 5))
    assert m.plan_line("s", 7, pool, "eu") == [
        m.Allocation("s", "near-a", 3),
        m.Allocation("s", "near-b", 4),
    ]


def test_region_short_falls_back_to_priority_with_fewest_splits() -> None:
    pool = cands(("far-2", 50, "us", 9), ("far-1", 50, "us", 1), ("near", 2, "eu", 0))
    assert m.plan_line("s", 10, pool, "eu") == [m.Allocation("s", "far-1", 10)]


def test_not_enough_anywhere_is_none() -> None:
    assert m.plan_line("s", 11, cands(("a", 5, None, 1), ("b", 5, None, 2)), None) is None


@given(
    qty=st.integers(1, 60),
    stock=st.lists(
        st.tuples(st.integers(0, 20), st.sampled_from(["eu", "us", None]), st.integers(0, 5)),
        max_size=6,
    ),
    region=st.sampled_from(["eu", "us", None]),
)
def test_plans_take_exactly_the_quantity_and_never_more_than_available(
    qty: int, stock: list[tuple[int, str | None, int]], region: str | None
) -> None:
    pool = [m.Candidate(f"w{i}", a, r, p) for i, (a, r, p) in enumerate(stock)]
    plan = m.plan_line("s", qty, pool, region)
    total = sum(c.available for c in pool)
    if total < qty:
        assert plan is None
        return
    assert plan is not None
    assert sum(a.quantity for a in plan) == qty
    by_wh = {c.warehouse: c.available for c in pool}
    assert all(0 < a.quantity <= by_wh[a.warehouse] for a in plan)
    assert len({a.warehouse for a in plan}) == len(plan)
    in_region = [c for c in pool if region and c.region == region]
    if sum(c.available for c in in_region) >= qty:
        # the region first: nothing leaves it when it can cover the line
        assert {a.warehouse for a in plan} <= {c.warehouse for c in in_region}
        pool = in_region
    if any(c.available >= qty for c in pool):
        assert len(plan) == 1  # fewest splits


def test_line_validation() -> None:
    with pytest.raises(Unprocessable):
        m.validate_lines([], 10)
    with pytest.raises(Unprocessable) as err:
        m.validate_lines([m.Line("a", 0)], 10)
    assert err.value.extra["sku"] == "a"
    with pytest.raises(Unprocessable):
        m.validate_lines([m.Line("a", 1), m.Line("a", 2)], 10)
    with pytest.raises(Unprocessable):
        m.validate_lines([m.Line("a b", 1)], 10)
    assert m.validate_lines([m.Line("b", 1), m.Line("a", 2)], 10) == [
        m.Line("a", 2),
        m.Line("b", 1),
    ]


def test_ttl_default_and_cap() -> None:
    assert m.effective_ttl(None, 900, 3600) == 900
    assert m.effective_ttl(60, 900, 3600) == 60
    with pytest.raises(Unprocessable):
        m.effective_ttl(3601, 900, 3600)


def test_state_machine_only_held_moves() -> None:
    for status in m.ReservationStatus:
        for target in m.ReservationStatus:
            allowed = m.can_transition(status, target)
            assert allowed == (status is m.ReservationStatus.HELD and target is not status)


def _res(status: m.ReservationStatus, expires_in: int) -> m.Reservation:
    return m.Reservation("r", status, NOW + timedelta(seconds=expires_in), [m.Line("a", 1)])


def test_commit_refusals() -> None:
    assert m.commit_refusal(_res(m.ReservationStatus.HELD, 10), NOW) is None
    assert m.commit_refusal(_res(m.ReservationStatus.COMMITTED, -10), NOW) is None
    for status, exp in [
        (m.ReservationStatus.HELD, -1),
        (m.ReservationStatus.EXPIRED, -1),
        (m.ReservationStatus.RELEASED, 10),
    ]:
        refusal = m.commit_refusal(_res(status, exp), NOW)
        assert isinstance(refusal, Conflict)
    assert m.release_refusal(_res(m.ReservationStatus.COMMITTED, 10)) is not None
    assert m.release_refusal(_res(m.ReservationStatus.EXPIRED, 10)) is None


def test_adjustment_may_not_go_below_reserved() -> None:
    m.check_adjustment(10, 4, -6)
    with pytest.raises(Conflict):
        m.check_adjustment(10, 4, -7)
    with pytest.raises(Unprocessable):
        m.check_adjustment(10, 4, 0)


def test_low_stock_crossing() -> None:
    assert m.crossed_below(10, 9, 10)
    assert not m.crossed_below(9, 8, 10)  # already below: no repeat alert
    assert not m.crossed_below(12, 10, 10)
    assert not m.crossed_below(5, 0, 0)  # no reorder point known


def test_safety_stock_and_reorder_point() -> None:
    assert pl.z_score(Decimal("0.95")) == pytest.approx(1.6449, abs=1e-4)
    # z(0.95) * 4 * sqrt(9) = 19.74 -> 20
    assert pl.safety_stock(4.0, 9, Decimal("0.95")) == 20
    assert pl.safety_stock(0.0, 9, Decimal("0.95")) == 0
    assert pl.reorder_point(45.0, 20) == 65
    assert pl.eoq(3650, 5000, 200) == 427  # sqrt(2*3650*5000/200)
    assert pl.days_of_cover(50, 10) == 5.0
    assert pl.days_of_cover(50, 0) == -1.0


def test_suggestion_orders_up_to_reorder_point_plus_cycle() -> None:
    inputs = pl.PlanningInputs("s", "w", 30, 25, 10.0, 50.0, 3.0, 5, pl.AbcClass.A)
    sug = pl.suggest(
        inputs,
        service_level=Decimal("0.95"),
        jit_cover_days=7,
        standard_cover_days=30,
        batch_cover_days=60,
        ordering_cost=None,
        holding_cost=None,
    )
    assert sug.safety_stock == 12  # 1.645 * 3 * sqrt(5) = 11.03 -> 12
    assert sug.reorder_point == 62
    assert sug.suggested_order_quantity == 62 + 70 - 25
    assert sug.replenishment_mode == "just_in_time"
    assert "reorder point" in sug.reason
    above = pl.suggest(
        pl.PlanningInputs("s", "w", 500, 500, 10.0, 50.0, 3.0, 5, pl.AbcClass.C),
        service_level=Decimal("0.95"),
        jit_cover_days=7,
        standard_cover_days=30,
        batch_cover_days=60,
        ordering_cost=5000,
        holding_cost=200,
    )
    assert above.suggested_order_quantity == 0 and above.replenishment_mode == "batch"


def test_abc_pareto_classes() -> None:
    entries = pl.classify_abc(
        [("a", 7000), ("b", 1500), ("c", 800), ("d", 400), ("e", 300), ("z", 0)],
        Decimal("0.80"),
        Decimal("0.95"),
    )
    classes = {e.sku: e.abc_class.value for e in entries}
    assert classes == {"a": "A", "b": "A", "c": "B", "d": "B", "e": "C", "z": "C"}
    assert entries[0].revenue_share == Decimal("0.7000")
    assert entries[-2].cumulative_share == Decimal("1.0000")


@given(
    st.lists(
        st.tuples(st.text("abcdef", min_size=1, max_size=4), st.integers(0, 10**9)),
        max_size=30,
        unique_by=lambda x: x[0],
    )
)
def test_abc_classes_are_monotonic_in_revenue(rev: list[tuple[str, int]]) -> None:
    entries = pl.classify_abc(rev, Decimal("0.8"), Decimal("0.95"))
    order = "ABC"
    ranks = [order.index(e.abc_class.value) for e in entries]
    assert ranks == sorted(ranks)
    if any(r > 0 for _, r in rev):
        assert entries[0].abc_class is pl.AbcClass.A
