"""The order state machine: explicit graph, never left, quantities and refunds bounded."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomops_platform.errors import Conflict, ServiceError
from order_service.domain.models import (
    CUSTOMER_CANCELLABLE,
    INITIAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Order,
    OrderLine,
    OrderStatus,
    Return,
    ReturnStatus,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_order(status: OrderStatus = OrderStatus.AWAITING_PAYMENT, qty: tuple[int, ...] = (3, 1)):
    lines = [OrderLine(f"sku-{i}", q, 999, 7 * q, 999 * q - 7 * q) for i, q in enumerate(qty)]
    return Order("o1", "c1", status, "EUR", lines, T0, payment_due_at=T0 + timedelta(minutes=15))


def test_every_status_has_an_entry_in_the_graph() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    assert set(OrderStatus) >= INITIAL_STATUSES
    for targets in TRANSITIONS.values():
        assert targets <= set(OrderStatus)


def test_terminal_statuses_have_no_way_out() -> None:
    for status in (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.RETURNED):
        assert TRANSITIONS[status] == frozenset()


def test_illegal_transition_is_409_with_current_status() -> None:
    order = make_order(OrderStatus.CANCELLED)
    with pytest.raises(IllegalTransition) as info:
        order.pay(at=T0, actor="c")
    assert info.value.status == 409
    assert info.value.problem()["current_status"] == "cancelled"


def test_payment_after_due_is_refused() -> None:
    order = make_order()
    with pytest.raises(Conflict) as info:
        order.pay(at=T0 + timedelta(minutes=16), actor="c")
    assert info.value.code == "payment-window-closed"
    assert order.status is OrderStatus.AWAITING_PAYMENT


def test_partial_then_full_shipment() -> None:
    order = make_order(OrderStatus.PAID)
    assert order.ship({"sku-0": 1}, at=T0, actor="ops", note="") is False
    assert order.status is OrderStatus.PARTIALLY_SHIPPED
    assert order.ship(None, at=T0, actor="ops", note="") is True
    assert order.status is OrderStatus.SHIPPED
    assert [line.shipped_quantity for line in order.lines] == [3, 1]


def test_cannot_ship_more_than_ordered() -> None:
    order = make_order(OrderStatus.PAID)
    with pytest.raises(ServiceError):
        order.ship({"sku-0": 4}, at=T0, actor="ops", note="")
    assert order.status is OrderStatus.PAID and order.lines[0].shipped_quantity == 0


def test_customer_cannot_cancel_after_shipment_but_ops_can() -> None:
    order = make_order(OrderStatus.PARTIALLY_SHIPPED)
    with pytest.raises(IllegalTransition):
        order.cancel(at=T0, actor="c", reason="", by_customer=True)
    refund = order.cancel(at=T0, actor="ops", reason="lost", by_customer=False)
    assert refund == order.total_minor
    assert order.status is OrderStatus.CANCELLED


def test_cancel_unpaid_refunds_nothing() -> None:
    order = make_order()
    assert order.cancel(at=T0, actor="c", reason="", by_customer=True) == 0


def test_review_approval_never_due_after_the_hold() -> None:
    order = make_order(OrderStatus.IN_REVIEW)
    latest = T0 + timedelta(minutes=5)
    order.approve_review(
        at=T0, payment_timeout=timedelta(minutes=15), latest_due=latest, actor="risk"
    )
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.payment_due_at == latest


def test_return_window_and_quantities() -> None:
    order = make_order(OrderStatus.DELIVERED)
    order.delivered_at = T0
    window = timedelta(days=30)
    order.check_return({"sku-0": 2}, {}, at=T0 + timedelta(days=29), window=window)
    with pytest.raises(Conflict):
        order.check_return({"sku-0": 1}, {}, at=T0 + timedelta(days=31), window=window)
    with pytest.raises(ServiceError):
        order.check_return({"sku-0": 2}, {"sku-0": 2}, at=T0, window=window)


def test_return_lifecycle_graph() -> None:
    rma = Return("r", "o", "c", ReturnStatus.REQUESTED, {"a": 1}, "x", T0)
    with pytest.raises(Conflict):
        rma.move(ReturnStatus.RECEIVED, at=T0, action="receive")
    rma.move(ReturnStatus.APPROVED, at=T0, action="approve")
    rma.move(ReturnStatus.RECEIVED, at=T0, action="receive")
    with pytest.raises(Conflict):
        rma.move(ReturnStatus.REJECTED, at=T0, action="reject")


ACTIONS = st.sampled_from(
    ["pay", "ship_one", "ship_all", "deliver", "cancel_c", "cancel_ops", "approve", "return_one"]
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.sampled_from(sorted(INITIAL_STATUSES - {OrderStatus.REJECTED})),
    qty=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    actions=st.lists(ACTIONS, max_size=25),
)
def test_random_walks_never_leave_the_graph(
    start: OrderStatus, qty: list[int], actions: list[str]
) -> None:
    """Whatever is attempted, every recorded move is an edge of the graph, quantities stay
    within the order, and the refunds never exceed what was paid."""
    order = make_order(start, tuple(qty))
    now = T0
    for action in actions:
        before = order.status
        now += timedelta(seconds=1)
        try:
            if action == "pay":
                order.pay(at=now, actor="c")
            elif action == "ship_one":
                line = next(
                    (ln for ln in order.lines if ln.shipped_quantity < ln.quantity), order.lines[0]
                )
                order.ship({line.sku: 1}, at=now, actor="ops", note="")
            elif action == "ship_all":
                order.ship(None, at=now, actor="ops", note="")
            elif action == "deliver":
                order.deliver(at=now, actor="ops")
            elif action in ("cancel_c", "cancel_ops"):
                order.cancel(at=now, actor="x", reason="", by_customer=action == "cancel_c")
            elif action == "approve":
                order.approve_review(
                    at=now, payment_timeout=timedelta(minutes=15), latest_due=None, actor="r"
                )
            elif action == "return_one":
                line = next(
                    (ln for ln in order.lines if ln.returned_quantity < ln.quantity), order.lines[0]
                )
                order.receive_return({line.sku: 1}, at=now, actor="ops", return_id="r")
        except ServiceError:
            assert order.status is before  # a refused action changes nothing
            continue
        assert order.status in TRANSITIONS[before] or order.status is before
    statuses = [start, *(OrderStatus(e.status) for e in order.timeline)]
    for a, b in itertools.pairwise(statuses):
        assert b in TRANSITIONS[a], f"{a} -> {b} is not an edge"
    for line in order.lines:
        assert 0 <= line.shipped_quantity <= line.quantity
        assert 0 <= line.returned_quantity <= line.quantity
    assert 0 <= order.refunded_minor <= order.total_minor
    if order.status is OrderStatus.RETURNED:
        assert order.refunded_minor == order.total_minor


@given(
    total=st.integers(0, 10**9),
    quantity=st.integers(1, 50),
    chunks=st.lists(st.integers(1, 5), min_size=1, max_size=60),
)
def test_pro_rata_refunds_sum_to_the_line_total(
    total: int, quantity: int, chunks: list[int]
) -> None:
    line = OrderLine("s", quantity, 0, 0, total)
    refunded = 0
    for chunk in chunks:
        units = min(chunk, line.quantity - line.returned_quantity)
        if units == 0:
            break
        part = line.refund_for(units)
        assert part >= 0
        refunded += part
        line.returned_quantity += units
    assert refunded <= total
    if line.returned_quantity == quantity:
        assert refunded == total


def test_customer_cancellable_statuses_are_before_shipment() -> None:
    assert OrderStatus.PARTIALLY_SHIPPED not in CUSTOMER_CANCELLABLE
    assert OrderStatus.SHIPPED not in CUSTOMER_CANCELLABLE
