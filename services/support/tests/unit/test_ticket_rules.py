"""The ticket status machine and the SLA clock, with property tests (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomops_platform.errors import Conflict, Unprocessable
from support_service.domain.tickets import (
    MAX_TIER,
    MIN_TIER,
    REOPEN_WINDOW,
    Priority,
    SlaClock,
    SlaPolicy,
    Status,
    Ticket,
    check_rating,
    priority_for,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = SlaPolicy()


def new(priority: Priority = Priority.NORMAL) -> Ticket:
    return Ticket("t-1", "c-1", Status.OPEN, 1, priority, SlaClock(started_at=T0), T0)


# --- the SLA clock --------------------------------------------------------------------------

segments = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=0, max_value=10 * 86400)), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(segments)
def test_paused_time_never_counts(parts: list[tuple[bool, int]]) -> None:
    """Elapsed time is exactly the sum of the running segments, whatever the pauses."""
    clock = SlaClock(started_at=T0)
    now = T0
    running = 0
    for paused, seconds in parts:
        clock = clock.pause(now) if paused else clock.resume(now)
        now += timedelta(seconds=seconds)
        if not paused:
            running += seconds
    assert clock.elapsed(now) == timedelta(seconds=running)


@settings(max_examples=200, deadline=None)
@given(segments, st.integers(min_value=1, max_value=5 * 86400))
def test_due_at_agrees_with_breached(parts: list[tuple[bool, int]], target_s: int) -> None:
    """A running clock is breached exactly after its due time; a paused one never falls due."""
    clock = SlaClock(started_at=T0)
    now = T0
    for paused, seconds in parts:
        clock = clock.pause(now) if paused else clock.resume(now)
        now += timedelta(seconds=seconds)
    target = timedelta(seconds=target_s)
    due = clock.due_at(target)
    if clock.paused_since is not None:
        assert due is None
        # Paused: time passing changes nothing.
        assert clock.breached(target, now) == clock.breached(target, now + timedelta(days=30))
    else:
        assert due is not None
        assert not clock.breached(target, due)
        assert clock.breached(target, due + timedelta(seconds=1))
        assert clock.breached(target, now) == (now > due)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_elapsed_is_monotonic(a: int, b: int) -> None:
    clock = SlaClock(started_at=T0)
    early, late = sorted((a, b))
    assert clock.elapsed(T0 + timedelta(seconds=early)) <= clock.elapsed(
        T0 + timedelta(seconds=late)
    )


def test_a_stopped_clock_never_breaches() -> None:
    clock = SlaClock(started_at=T0).stop()
    assert clock.due_at(timedelta(minutes=1)) is None
    assert not clock.breached(timedelta(minutes=1), T0 + timedelta(days=365))


def test_targets_scale_with_tier_and_priority() -> None:
    assert POLICY.target(1, Priority.NORMAL, responded=False) == timedelta(hours=4)
    assert POLICY.target(1, Priority.URGENT, responded=False) == timedelta(hours=1)
    assert POLICY.target(3, Priority.LOW, responded=True) == timedelta(hours=144)
    for tier in (1, 2):
        for p in Priority:
            assert POLICY.target(tier, p, responded=True) <= POLICY.target(
                tier + 1, p, responded=True
            )


# --- the status machine ---------------------------------------------------------------------

ACTIONS = [
    "customer",
    "agent",
    "escalate",
    "deescalate",
    "breach",
    "resolve",
    "close",
    "auto",
    "not_solved",
]


def step(t: Ticket, action: str, now: datetime) -> Ticket:
    match action:
        case "customer":
            return t.customer_message(now)
        case "agent":
            return t.agent_message(now)
        case "escalate":
            return t.escalate(now)
        case "deescalate":
            return t.deescalate(now)
        case "breach":
            return t.breach(now)
        case "resolve":
            return t.resolve(now)
        case "close":
            return t.close(now)
        case "auto":
            return t.auto_answer()
        case _:
            return t.not_solved(now)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 3 * 86400)), max_size=25))
def test_any_sequence_keeps_the_invariants(steps: list[tuple[str, int]]) -> None:
    """Whatever agents, customers and the job do: tiers stay 1..3, a refused action changes
    nothing, counters never go down, a closed ticket never changes again, the clock runs only
    while the shop owes an answer, and resolved tickets have a resolution time."""
    t = new()
    now = T0
    for action, seconds in steps:
        now += timedelta(seconds=seconds)
        before = t
        try:
            t = step(t, action, now)
        except Conflict:
            assert t == before
            continue
        assert MIN_TIER <= t.tier <= MAX_TIER
        assert t.breaches >= before.breaches and t.reopened >= before.reopened
        assert before.status is not Status.CLOSED
        if t.status in (Status.RESOLVED, Status.CLOSED, Status.AUTO_ANSWERED):
            assert t.due_at(POLICY) is None
        if t.status is Status.WAITING_CUSTOMER:
            assert t.due_at(POLICY) is None and t.first_response_at is not None
        if t.status in (Status.OPEN, Status.ESCALATED):
            assert t.due_at(POLICY) is not None
        if t.status in (Status.RESOLVED, Status.CLOSED):
            assert t.resolved_at is not None
        if t.status is Status.ESCALATED:
            assert t.tier > MIN_TIER


def test_reopen_only_within_seven_days() -> None:
    t = new().agent_message(T0).resolve(T0 + timedelta(hours=1))
    reopened = t.customer_message(T0 + timedelta(hours=1) + REOPEN_WINDOW)
    assert (reopened.status, reopened.reopened) == (Status.OPEN, 1)
    assert reopened.due_at(POLICY) is not None
    with pytest.raises(Conflict):
        t.customer_message(T0 + timedelta(hours=1) + REOPEN_WINDOW + timedelta(seconds=1))
    assert t.closable(T0 + timedelta(hours=2) + REOPEN_WINDOW)


def test_not_solved_sends_an_auto_answer_to_tier_1_with_a_new_clock() -> None:
    t = new().auto_answer()
    assert t.due_at(POLICY) is None
    later = T0 + timedelta(days=2)
    t = t.not_solved(later)
    assert (t.status, t.tier) == (Status.OPEN, 1)
    assert t.due_at(POLICY) == later + timedelta(hours=4)


def test_the_first_response_switches_to_the_resolution_target_from_the_same_start() -> None:
    t = new()
    assert t.due_at(POLICY) == T0 + timedelta(hours=4)
    t = t.agent_message(T0 + timedelta(hours=1))  # waiting for the customer: paused
    assert t.due_at(POLICY) is None
    t = t.customer_message(T0 + timedelta(hours=3))  # 2 h paused
    assert t.due_at(POLICY) == T0 + timedelta(hours=24 + 2)


def test_breach_escalates_until_tier_3_then_only_records() -> None:
    t = new()
    for expected in (2, 3, 3):
        t = t.breach(T0)
        assert t.tier == expected and t.status is Status.ESCALATED
    assert t.breaches == 3
    with pytest.raises(Conflict):
        t.escalate(T0)


def test_deescalating_to_tier_1_reopens_the_queue_entry() -> None:
    t = new().escalate(T0)
    assert (t.status, t.tier) == (Status.ESCALATED, 2)
    t = t.deescalate(T0)
    assert (t.status, t.tier) == (Status.OPEN, 1)
    with pytest.raises(Conflict):
        t.deescalate(T0)


@given(
    st.one_of(st.none(), st.integers(0, 10**7)),
    st.integers(0, 10),
)
def test_priority_rises_with_value_and_repeat_contacts(value: int | None, contacts: int) -> None:
    p = priority_for(
        order_value_minor=value,
        previous_contacts=contacts,
        high_value_minor=20_000,
        urgent_value_minor=100_000,
    )
    assert Priority.NORMAL <= p <= Priority.URGENT
    more = priority_for(
        order_value_minor=None if value is None else value * 10,
        previous_contacts=contacts + 1,
        high_value_minor=20_000,
        urgent_value_minor=100_000,
    )
    assert more >= p
    if contacts == 0 and (value is None or value < 20_000):
        assert p is Priority.NORMAL


def test_rating_bounds() -> None:
    check_rating(1, 0)
    check_rating(5, 10)
    for csat, nps in ((0, 5), (6, 5), (3, -1), (3, 11)):
        with pytest.raises(Unprocessable):
            check_rating(csat, nps)
