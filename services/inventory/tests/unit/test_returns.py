"""Where returned units go back: the warehouses that shipped them (``plan_return``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inventory_service.domain.models import Allocation, plan_return

PREF = {"a": (1, "a"), "b": (5, "b"), "c": (5, "c")}


def test_full_return_of_a_split_line_goes_back_to_each_origin() -> None:
    shipped = [Allocation("s", "b", 3), Allocation("s", "a", 2)]
    plan, left = plan_return({"s": 5}, shipped, {}, PREF)
    assert plan == [Allocation("s", "a", 2), Allocation("s", "b", 3)] and left == {}


def test_partial_return_fills_the_highest_priority_origin_first() -> None:
    shipped = [Allocation("s", "a", 2), Allocation("s", "b", 3)]
    plan, left = plan_return({"s": 3}, shipped, {}, PREF)
    assert plan == [Allocation("s", "a", 2), Allocation("s", "b", 1)] and left == {}


def test_a_later_return_continues_where_earlier_ones_stopped() -> None:
    shipped = [Allocation("s", "a", 2), Allocation("s", "b", 3)]
    plan, left = plan_return({"s": 2}, shipped, {("s", "a"): 2, ("s", "b"): 1}, PREF)
    assert plan == [Allocation("s", "b", 2)] and left == {}


def test_ties_in_priority_break_by_warehouse_code() -> None:
    shipped = [Allocation("s", "c", 1), Allocation("s", "b", 1)]
    plan, _ = plan_return({"s": 1}, shipped, {}, PREF)
    assert plan == [Allocation("s", "b", 1)]


def test_units_without_a_known_origin_are_left_for_the_fallback() -> None:
    shipped = [Allocation("s", "a", 1)]
    plan, left = plan_return({"s": 3, "t": 2}, shipped, {}, PREF)
    assert plan == [Allocation("s", "a", 1)] and left == {"s": 2, "t": 2}


@given(
    shipped=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 20), max_size=3),
    returns=st.lists(st.integers(1, 25), max_size=6),
)
def test_successive_returns_never_give_a_warehouse_more_than_it_shipped(
    shipped: dict[str, int], returns: list[int]
) -> None:
    allocs = [Allocation("s", wh, q) for wh, q in shipped.items()]
    given_back: dict[tuple[str, str], int] = {}
    total_left = 0
    for qty in returns:
        plan, left = plan_return({"s": qty}, allocs, given_back, PREF)
        assert sum(a.quantity for a in plan) + left.get("s", 0) == qty
        for a in plan:
            given_back[(a.sku, a.warehouse)] = given_back.get((a.sku, a.warehouse), 0) + a.quantity
        total_left += left.get("s", 0)
    for wh, q in shipped.items():
        assert given_back.get(("s", wh), 0) <= q
    # units go to the fallback only once every origin is full
    if total_left:
        assert all(given_back.get(("s", wh), 0) == q for wh, q in shipped.items())
