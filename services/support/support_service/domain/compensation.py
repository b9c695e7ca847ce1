"""Goodwill compensation rules: which rule fits a ticket, and what it grants — plain Python.

A rule is configuration (``SUPPORT_COMPENSATION_RULES``, JSON). Kinds:

- ``coupon``: a single-use coupon of ``percent`` off, valid ``valid_days``, when the ticket's
  order was delivered (or is still undelivered) more than ``min_days_late`` days after the
  promised delivery (placed + ``SUPPORT_PROMISED_DELIVERY_DAYS``). Issued through pricing.
- ``return``: a return (RMA) of every line of the ticket's delivered order, requested and
  approved through order; the refund follows when the goods are received (order's flow).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ecomops_platform.errors import Conflict, NotFound, Unprocessable

KINDS = ("coupon", "return")


@dataclass(frozen=True, slots=True)
class CompensationRule:
    rule_id: str
    kind: str
    #: Categories of tickets it applies to (empty: any).
    categories: tuple[str, ...] = ()
    #: coupon: fraction off in (0, 1].
    percent: Decimal = Decimal("0.10")
    #: coupon: days after the promised delivery from which it applies.
    min_days_late: int = 0
    #: coupon: validity.
    valid_days: int = 30

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"compensation rule {self.rule_id}: unknown kind {self.kind!r}")
        if not Decimal(0) < self.percent <= Decimal(1):
            raise ValueError(f"compensation rule {self.rule_id}: percent must be in (0, 1]")
        if self.min_days_late < 0 or self.valid_days < 1:
            raise ValueError(f"compensation rule {self.rule_id}: bad days")


DEFAULT_RULES: tuple[CompensationRule, ...] = (
    CompensationRule(
        rule_id="late-delivery-10",
        kind="coupon",
        categories=("delivery",),
        percent=Decimal("0.10"),
        min_days_late=2,
        valid_days=30,
    ),
    CompensationRule(rule_id="damaged-item-return", kind="return", categories=("product",)),
)


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What a rule needs from the order (from the order service)."""

    order_id: str
    customer_id: str
    placed_at: datetime
    delivered_at: datetime | None


def find_rule(rules: tuple[CompensationRule, ...], rule_id: str) -> CompensationRule:
    for rule in rules:
        if rule.rule_id == rule_id:
            return rule
    raise NotFound(f"compensation rule {rule_id} is not configured", code="unknown-rule")


def days_late(order: OrderFacts, promised_days: int, now: datetime) -> float:
    promised = order.placed_at + timedelta(days=promised_days)
    arrived = order.delivered_at or now
    return (arrived - promised).total_seconds() / 86400


def check_applies(
    rule: CompensationRule,
    *,
    category: str,
    order: OrderFacts | None,
    promised_days: int,
    now: datetime,
) -> None:
    """Unprocessable (with the reason) unless the rule fits the ticket."""
    if rule.categories and category not in rule.categories:
        raise Unprocessable(
            f"rule {rule.rule_id} applies to {', '.join(rule.categories)} tickets, not {category}",
            code="rule-does-not-apply",
        )
    if order is None:
        raise Unprocessable(
            f"rule {rule.rule_id} needs the ticket's order", code="rule-does-not-apply"
        )
    if rule.kind == "return":
        if order.delivered_at is None:
            raise Unprocessable(
                f"rule {rule.rule_id} needs a delivered order; {order.order_id} is not yet",
                code="rule-does-not-apply",
            )
        return
    late = days_late(order, promised_days, now)
    if late <= rule.min_days_late:
        raise Unprocessable(
            f"rule {rule.rule_id} needs a delivery more than {rule.min_days_late} days late; "
            f"this one is {max(late, 0.0):.1f} days late",
            code="rule-does-not-apply",
        )


def coupon_code(ticket_id: str) -> str:
    """The one coupon code a ticket can ever get (stable: a retry finds the same coupon)."""
    digest = hashlib.sha256(ticket_id.encode()).hexdigest()[:12].upper()
    return f"SUPPORT-{digest}"


def ensure_not_applied(
    existing_rule: str | None, existing_status: str | None, rule_id: str, ticket_id: str
) -> None:
    if existing_rule is not None and existing_status == "applied":
        raise Conflict(
            f"ticket {ticket_id} was compensated already (rule {existing_rule})",
            code="already-compensated",
        )
    if existing_rule is not None and existing_rule != rule_id:
        raise Conflict(
            f"ticket {ticket_id} has compensation {existing_rule} in progress",
            code="already-compensated",
        )
