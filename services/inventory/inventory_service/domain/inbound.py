"""Inbound orders: stock on its way to a warehouse (a supplier's purchase order, a transfer).

Units of an open inbound order that have not arrived are *on order*: replenishment compares the
inventory position (available + on order) with the reorder point, so a purchase already placed
is not suggested again every day of its lead time. Receiving puts units on hand (a ``receipt``
ledger entry); cancelling stops expecting the rest.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime

from ecomops_platform.errors import Conflict, Unprocessable

from .models import MAX_ADJUSTMENT


class InboundStatus(enum.StrEnum):
    OPEN = "open"
    RECEIVED = "received"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class InboundOrder:
    inbound_id: str
    sku: str
    warehouse: str
    quantity: int
    received_quantity: int
    status: InboundStatus
    expected_on: date | None
    reference: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def on_order(self) -> int:
        """Units still expected (none unless open)."""
        if self.status is not InboundStatus.OPEN:
            return 0
        return self.quantity - self.received_quantity

    def receive(self, quantity: int, now: datetime) -> InboundOrder:
        """The order after ``quantity`` units arrived (received in full: ``received``)."""
        check_inbound_quantity(quantity)
        if self.status is not InboundStatus.OPEN:
            raise Conflict(
                f"inbound order {self.inbound_id} is {self.status.value}; nothing is expected",
                code="inbound-not-open",
                status=self.status.value,
            )
        if quantity > self.on_order:
            raise Conflict(
                f"{quantity} units received but only {self.on_order} are still expected; "
                "record the surplus as a stock adjustment (reason receipt)",
                code="over-receipt",
                expected=self.on_order,
            )
        received = self.received_quantity + quantity
        status = InboundStatus.RECEIVED if received == self.quantity else InboundStatus.OPEN
        return replace(self, received_quantity=received, status=status, updated_at=now)

    def cancel(self, now: datetime) -> InboundOrder:
        """Stop expecting the rest; cancelling a cancelled order changes nothing."""
        if self.status is InboundStatus.CANCELLED:
            return self
        if self.status is InboundStatus.RECEIVED:
            raise Conflict(
                f"inbound order {self.inbound_id} was received in full; nothing to cancel",
                code="inbound-not-open",
                status=self.status.value,
            )
        return replace(self, status=InboundStatus.CANCELLED, updated_at=now)


def check_inbound_quantity(quantity: int) -> int:
    if not 0 < quantity <= MAX_ADJUSTMENT:
        raise Unprocessable(
            f"quantity must be between 1 and {MAX_ADJUSTMENT}", code="invalid-quantity"
        )
    return quantity


def parse_expected_on(value: str | None) -> date | None:
    """``YYYY-MM-DD`` or nothing."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Unprocessable(
            "expected_on must be a date (YYYY-MM-DD)", code="invalid-date", expected_on=value
        ) from None
