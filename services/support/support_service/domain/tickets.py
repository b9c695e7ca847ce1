"""Tickets: the status machine, the tiers, the SLA clock and the priority rules — plain Python.

Statuses::

    open ──────────────┬──▶ waiting_customer ──(customer replies)──▶ open
      │                ├──▶ escalated ──▶ waiting_customer / resolved
      ▼                └──▶ resolved ──(customer replies within 7 days)──▶ open (reopened)
    auto_answered ──(not solved)──▶ open at tier 1      resolved ──(7 days)──▶ closed
                 └──(solved)──▶ resolved

The SLA clock runs while a ticket waits for the shop (open, escalated); it is paused while the
shop waits for the customer (waiting_customer) and stopped when the ticket is auto-answered,
resolved or closed. Its target is the first response while no agent has answered yet, then the
resolution; both depend on the tier and the priority (:class:`SlaPolicy`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ecomops_platform.errors import Conflict, Unprocessable

REOPEN_WINDOW = timedelta(days=7)
MIN_TIER = 1
MAX_TIER = 3


class Status(enum.StrEnum):
    OPEN = "open"
    AUTO_ANSWERED = "auto_answered"
    WAITING_CUSTOMER = "waiting_customer"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Category(enum.StrEnum):
    DELIVERY = "delivery"
    PAYMENT = "payment"
    RETURN = "return"
    PRODUCT = "product"
    ACCOUNT = "account"
    OTHER = "other"


class Priority(enum.IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, label: str) -> Priority:
        return cls[label.upper()]


#: Statuses in which the shop owes the customer an answer: the SLA clock runs.
RUNNING = frozenset({Status.OPEN, Status.ESCALATED})
#: Statuses in which the shop still works the ticket (agents may act on it).
ACTIVE = frozenset({Status.OPEN, Status.ESCALATED, Status.WAITING_CUSTOMER})


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """First-response and resolution targets (minutes) per tier, scaled per priority.

    Defaults: tier 1 answers within 4 h and resolves within 24 h, tier 2 within 8 h / 48 h,
    tier 3 within 24 h / 72 h; urgent tickets get a quarter of that, high half, low double.
    """

    first_response_minutes: Mapping[int, int] = field(
        default_factory=lambda: {1: 240, 2: 480, 3: 1440}
    )
    resolution_minutes: Mapping[int, int] = field(
        default_factory=lambda: {1: 1440, 2: 2880, 3: 4320}
    )
    priority_factor: Mapping[str, float] = field(
        default_factory=lambda: {"low": 2.0, "normal": 1.0, "high": 0.5, "urgent": 0.25}
    )

    def target(self, tier: int, priority: Priority, *, responded: bool) -> timedelta:
        table = self.resolution_minutes if responded else self.first_response_minutes
        minutes = table[tier] * self.priority_factor[priority.label]
        return timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class SlaClock:
    """The running time of one target: started at ``started_at``; ``paused`` seconds spent
    paused before; ``paused_since`` set while paused. ``stopped`` clocks never fall due."""

    started_at: datetime
    paused: float = 0.0
    paused_since: datetime | None = None
    stopped: bool = False

    def pause(self, now: datetime) -> SlaClock:
        if self.stopped or self.paused_since is not None:
            return self
        return replace(self, paused_since=now)

    def resume(self, now: datetime) -> SlaClock:
        if self.stopped or self.paused_since is None:
            return self
        extra = max(0.0, (now - self.paused_since).total_seconds())
        return replace(self, paused=self.paused + extra, paused_since=None)

    def stop(self) -> SlaClock:
        return replace(self, stopped=True, paused_since=None)

    def elapsed(self, now: datetime) -> timedelta:
        """Running time so far (paused time excluded)."""
        end = self.paused_since if self.paused_since is not None else now
        seconds = (end - self.started_at).total_seconds() - self.paused
        return timedelta(seconds=max(0.0, seconds))

    def due_at(self, target: timedelta) -> datetime | None:
        """When the target falls due if the clock keeps running; None while paused/stopped."""
        if self.stopped or self.paused_since is not None:
            return None
        return self.started_at + timedelta(seconds=self.paused) + target

    def breached(self, target: timedelta, now: datetime) -> bool:
        return not self.stopped and self.elapsed(now) > target


def priority_for(
    *,
    order_value_minor: int | None,
    previous_contacts: int,
    high_value_minor: int,
    urgent_value_minor: int,
) -> Priority:
    """Normal by default; one level up from ``high_value_minor`` of order value, two from
    ``urgent_value_minor``; one more per earlier ticket on the same order (capped at urgent)."""
    level = int(Priority.NORMAL)
    if order_value_minor is not None:
        if order_value_minor >= urgent_value_minor:
            level += 2
        elif order_value_minor >= high_value_minor:
            level += 1
    level += max(0, previous_contacts)
    return Priority(min(level, int(Priority.URGENT)))


@dataclass(frozen=True, slots=True)
class Change:
    """One timeline entry."""

    kind: str
    status: Status
    tier: int
    by: str
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Ticket:
    """The ticket's state as far as the rules are concerned (thread and context live beside)."""

    ticket_id: str
    customer_id: str
    status: Status
    tier: int
    priority: Priority
    clock: SlaClock
    created_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    breaches: int = 0
    reopened: int = 0

    # --- SLA ---------------------------------------------------------------------------------
    def target(self, policy: SlaPolicy) -> timedelta:
        return policy.target(self.tier, self.priority, responded=self.first_response_at is not None)

    def due_at(self, policy: SlaPolicy) -> datetime | None:
        return self.clock.due_at(self.target(policy))

    def overdue(self, policy: SlaPolicy, now: datetime) -> bool:
        return self.status in RUNNING and self.clock.breached(self.target(policy), now)

    # --- transitions ---------------------------------------------------------------------------
    def _to(self, status: Status, **changes: object) -> Ticket:
        return replace(self, status=status, **changes)  # type: ignore[arg-type]

    def _require(self, allowed: frozenset[Status] | set[Status], action: str) -> None:
        if self.status not in allowed:
            raise Conflict(
                f"ticket {self.ticket_id} is {self.status.value}: cannot {action}",
                code="ticket-state",
                status=self.status.value,
            )

    def auto_answer(self) -> Ticket:
        self._require({Status.OPEN}, "answer it automatically")
        return self._to(Status.AUTO_ANSWERED, clock=self.clock.stop())

    def not_solved(self, now: datetime) -> Ticket:
        """The customer says the automatic answer did not help: to tier 1, clock from now."""
        self._require({Status.AUTO_ANSWERED}, "reject the automatic answer")
        return self._to(Status.OPEN, tier=MIN_TIER, clock=SlaClock(started_at=now))

    def customer_message(self, now: datetime) -> Ticket:
        """A customer's message: answers a waiting ticket, reopens a recently resolved one."""
        if self.status is Status.WAITING_CUSTOMER:
            return self._to(
                Status.OPEN if self.tier == MIN_TIER else Status.ESCALATED,
                clock=self.clock.resume(now),
            )
        if self.status is Status.RESOLVED:
            assert self.resolved_at is not None
            if now - self.resolved_at > REOPEN_WINDOW:
                raise Conflict(
                    f"ticket {self.ticket_id} was resolved more than 7 days ago: open a new one",
                    code="reopen-window-passed",
                )
            return self._to(
                Status.OPEN if self.tier == MIN_TIER else Status.ESCALATED,
                clock=SlaClock(started_at=now),
                reopened=self.reopened + 1,
            )
        if self.status is Status.AUTO_ANSWERED:
            return self.not_solved(now)
        self._require(set(RUNNING), "add a customer message")
        return self

    def agent_message(self, now: datetime) -> Ticket:
        """An agent's answer: the first one stops the first-response target; the ticket then
        waits for the customer (clock paused, restarted on the resolution target)."""
        self._require(set(ACTIVE), "answer it")
        # The resolution target counts from the same start as the first-response target.
        first = self.first_response_at or now
        return self._to(
            Status.WAITING_CUSTOMER, first_response_at=first, clock=self.clock.pause(now)
        )

    def escalate(self, now: datetime) -> Ticket:
        """One tier up (an agent may also take over an automatically answered ticket)."""
        self._require(set(ACTIVE) | {Status.AUTO_ANSWERED}, "escalate it")
        if self.tier >= MAX_TIER:
            raise Conflict(f"ticket {self.ticket_id} is at tier 3 already", code="top-tier")
        return self._to(Status.ESCALATED, tier=self.tier + 1, clock=SlaClock(started_at=now))

    def deescalate(self, now: datetime) -> Ticket:
        self._require(set(ACTIVE), "de-escalate it")
        if self.tier <= MIN_TIER:
            raise Conflict(f"ticket {self.ticket_id} is at tier 1 already", code="bottom-tier")
        tier = self.tier - 1
        status = self.status
        if status is Status.ESCALATED and tier == MIN_TIER:
            status = Status.OPEN
        clock = SlaClock(started_at=now)
        if status is Status.WAITING_CUSTOMER:
            clock = clock.pause(now)
        return self._to(status, tier=tier, clock=clock)

    def breach(self, now: datetime) -> Ticket:
        """The SLA job found the running target missed: recorded, one tier up (a new clock);
        at tier 3 the breach is recorded and the clock restarted."""
        self._require(set(RUNNING), "record an SLA breach")
        tier = min(self.tier + 1, MAX_TIER)
        status = Status.ESCALATED if tier > MIN_TIER else self.status
        return self._to(
            status, tier=tier, clock=SlaClock(started_at=now), breaches=self.breaches + 1
        )

    def resolve(self, now: datetime) -> Ticket:
        self._require(set(ACTIVE) | {Status.AUTO_ANSWERED}, "resolve it")
        return self._to(Status.RESOLVED, resolved_at=now, clock=self.clock.stop())

    def close(self, now: datetime) -> Ticket:
        self._require({Status.RESOLVED}, "close it")
        return self._to(Status.CLOSED, closed_at=now)

    def closable(self, now: datetime) -> bool:
        return (
            self.status is Status.RESOLVED
            and self.resolved_at is not None
            and now - self.resolved_at > REOPEN_WINDOW
        )


def check_rating(csat: int, nps: int) -> None:
    errors = []
    if not 1 <= csat <= 5:
        errors.append("csat must be between 1 and 5")
    if not 0 <= nps <= 10:
        errors.append("nps must be between 0 and 10")
    if errors:
        raise Unprocessable("; ".join(errors), code="invalid-rating")
