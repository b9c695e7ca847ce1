"""Historical orders brought in by ``ecomops import orders``: what makes one acceptable.

An imported order is history, not a sale happening now: it is stored as delivered, it takes no
stock, no payment and no risk decision. Pure Python, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import MAX_LINE_QUANTITY, MAX_LINES

#: Ids as the REST paths accept them (letters, digits and ``-_.:``).
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
MAX_ORDER_ID = 64
MAX_CUSTOMER_ID = 200
MAX_SKU = 100
#: A unit price above this (minor units) is a typo, not history (10^10 minor = 100 M units).
MAX_UNIT_PRICE_MINOR = 10**10
#: Orders before this year are typos (and year 1 with a positive offset is not a UTC time).
EARLIEST_YEAR = 1970
#: How far in the future an ``ordered_at`` may be (clock skew between the shop and us).
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ImportedLine:
    sku: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    order_id: str
    customer_id: str
    currency: str
    ordered_at: datetime
    lines: tuple[ImportedLine, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)


@dataclass(frozen=True, slots=True, order=True)
class ImportProblem:
    """What is wrong with ``orders[order_index]`` (``line_index`` -1: the order itself)."""

    order_index: int
    line_index: int
    field: str
    reason: str


def _id_problem(value: str, limit: int) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > limit:
        return f"at most {limit} characters"
    if not ID_PATTERN.match(value):
        return "letters, digits and - _ . : only, starting with a letter or digit"
    return None


def validate_imported(index: int, order: ImportedOrder, now: datetime) -> list[ImportProblem]:
    """Every problem of one imported order (empty when it can be stored)."""
    problems: list[ImportProblem] = []

    def bad(field: str, reason: str, line: int = -1) -> None:
        problems.append(ImportProblem(index, line, field, reason))

    if (why := _id_problem(order.order_id, MAX_ORDER_ID)) is not None:
        bad("order_id", why)
    if (why := _id_problem(order.customer_id, MAX_CUSTOMER_ID)) is not None:
        bad("customer_id", why)
    if not CURRENCY_PATTERN.match(order.currency):
        bad("currency", "an ISO 4217 code: three capital letters")
    if order.ordered_at.tzinfo is None:
        bad("ordered_at", "needs a time zone")
    elif order.ordered_at.year < EARLIEST_YEAR:
        bad("ordered_at", f"before {EARLIEST_YEAR}: not a date the shop can have sold on")
    elif order.ordered_at > now + FUTURE_SLACK:
        bad("ordered_at", "is in the future; history only")
    if not order.lines:
        bad("lines", "an order needs at least one line")
    elif len(order.lines) > MAX_LINES:
        bad("lines", f"at most {MAX_LINES} lines per order")
    seen: set[str] = set()
    for n, line in enumerate(order.lines):
        if (why := _id_problem(line.sku, MAX_SKU)) is not None:
            bad("sku", why, n)
        elif line.sku in seen:
            bad("sku", f"{line.sku} appears twice in order {order.order_id}", n)
        seen.add(line.sku)
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            bad("quantity", f"between 1 and {MAX_LINE_QUANTITY}", n)
        if not 0 <= line.unit_price_minor <= MAX_UNIT_PRICE_MINOR:
            bad("unit_price_minor", f"between 0 and {MAX_UNIT_PRICE_MINOR}", n)
    return problems
