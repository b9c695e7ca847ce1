"""The order domain: the order state machine, order lines, shipments, returns (RMA), carts.

Pure Python, no I/O. Every status change goes through :meth:`Order.transition`, which refuses
any edge that is not in :data:`TRANSITIONS` (an illegal transition → 409 with the current
status). Quantities and money are integers (minor units); refunds are split pro rata per unit
so that returning everything refunds exactly the line totals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ecomops_platform.errors import Conflict, Unprocessable


class OrderStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
    PAID = "paid"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


S = OrderStatus

# Units of one SKU on an order or cart line: the same limit as pricing's quotes (documented in
# the API). Lines of a cart or order: pricing's most lines per quote.
MAX_LINE_QUANTITY = 1000
MAX_LINES = 100

#: Where an order starts: the checkout's risk decision picks one.
INITIAL_STATUSES = frozenset({S.AWAITING_PAYMENT, S.IN_REVIEW, S.REJECTED})

#: The whole graph. Nothing else is a legal move.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.IN_REVIEW: frozenset({S.AWAITING_PAYMENT, S.CANCELLED}),
    S.AWAITING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.CANCELLED}),
    S.DELIVERED: frozenset({S.PARTIALLY_RETURNED, S.RETURNED}),
    S.PARTIALLY_RETURNED: frozenset({S.PARTIALLY_RETURNED, S.RETURNED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RETURNED: frozenset(),
}

#: Customers may cancel before anything shipped; ops until delivery.
CUSTOMER_CANCELLABLE = frozenset({S.IN_REVIEW, S.AWAITING_PAYMENT, S.PAID})
OPS_CANCELLABLE = CUSTOMER_CANCELLABLE | {S.PARTIALLY_SHIPPED, S.SHIPPED}
PAID_STATUSES = frozenset(
    {S.PAID, S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.PARTIALLY_RETURNED, S.RETURNED}
)


class IllegalTransition(Conflict):
    code = "illegal-transition"
    title = "Not possible in the order's current status"

    def __init__(self, current: OrderStatus, action: str) -> None:
        super().__init__(
            f"cannot {action} an order that is {current.value}", current_status=current.value
        )
        self.current = current


class ReturnStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"


RETURN_TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    ReturnStatus.REQUESTED: frozenset({ReturnStatus.APPROVED, ReturnStatus.REJECTED}),
    ReturnStatus.APPROVED: frozenset({ReturnStatus.RECEIVED}),
    ReturnStatus.REJECTED: frozenset(),
    ReturnStatus.RECEIVED: frozenset(),
}


class IllegalReturnTransition(Conflict):
    code = "illegal-transition"
    title = "Not possible in the return's current status"

    def __init__(self, current: ReturnStatus, action: str) -> None:
        super().__init__(
            f"cannot {action} a return that is {current.value}", current_status=current.value
        )


@dataclass(slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    shipped_quantity: int = 0
    returned_quantity: int = 0

    def refund_for(self, units: int) -> int:
        """Refund for ``units`` more returned units: pro rata, exact once all are returned."""
        before = self.total_minor * self.returned_quantity // self.quantity
        after = self.total_minor * (self.returned_quantity + units) // self.quantity
        return after - before

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "unit_price_minor": self.unit_price_minor,
            "discount_minor": self.discount_minor,
            "total_minor": self.total_minor,
            "shipped_quantity": self.shipped_quantity,
            "returned_quantity": self.returned_quantity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderLine:
        return cls(
            sku=str(data["sku"]),
            quantity=int(data["quantity"]),
            unit_price_minor=int(data["unit_price_minor"]),
            discount_minor=int(data["discount_minor"]),
            total_minor=int(data["total_minor"]),
            shipped_quantity=int(data.get("shipped_quantity", 0)),
            returned_quantity=int(data.get("returned_quantity", 0)),
        )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    status: str
    at: datetime
    actor: str
    note: str = ""


def merge_quantities(lines: list[tuple[str, int]]) -> dict[str, int]:
    """Sum quantities per SKU, refusing non-positive quantities."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        if quantity <= 0:
            raise Unprocessable(f"quantity of {sku} must be positive", code="invalid-quantity")
        merged[sku] = merged.get(sku, 0) + quantity
    return merged


@dataclass(slots=True)
class Order:
    order_id: str
    customer_id: str
    status: OrderStatus
    currency: str
    lines: list[OrderLine]
    placed_at: datetime
    payment_due_at: datetime | None = None
    review_deadline: datetime | None = None
    refunded_minor: int = 0
    delivered_at: datetime | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def subtotal_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)

    @property
    def discount_total_minor(self) -> int:
        return sum(line.discount_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)

    @property
    def was_paid(self) -> bool:
        return any(e.status == S.PAID.value for e in self.timeline) or self.status in PAID_STATUSES

    def line(self, sku: str) -> OrderLine:
        for line in self.lines:
            if line.sku == sku:
                return line
        raise Unprocessable(f"SKU {sku} is not in order {self.order_id}", code="unknown-line")

    def transition(self, to: OrderStatus, *, at: datetime, actor: str, note: str = "") -> None:
        if to not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, f"move to {to.value}")
        self.status = to
        self.timeline.append(TimelineEntry(to.value, at, actor, note))

    # --- use cases ------------------------------------------------------------------------
    def approve_review(
        self,
        *,
        at: datetime,
        payment_timeout: timedelta,
        latest_due: datetime | None,
        actor: str,
    ) -> None:
        """Review approved: payable for the payment window, never past ``latest_due`` (the
        reservation's expiry less a margin)."""
        if self.status is not S.IN_REVIEW:
            raise IllegalTransition(self.status, "approve the review of")
        due = at + payment_timeout
        if latest_due is not None:
            due = max(min(due, latest_due), at)
        self.transition(S.AWAITING_PAYMENT, at=at, actor=actor, note="risk review approved")
        self.payment_due_at = due
        self.review_deadline = None

    def pay(self, *, at: datetime, actor: str) -> None:
        if self.status is not S.AWAITING_PAYMENT:
            raise IllegalTransition(self.status, "pay")
        if self.payment_due_at is not None and at >= self.payment_due_at:
            raise Conflict(
                "the payment window of this order has closed",
                code="payment-window-closed",
                current_status=self.status.value,
            )
        self.transition(S.PAID, at=at, actor=actor)
        self.payment_due_at = None

    def ship(self, lines: dict[str, int] | None, *, at: datetime, actor: str, note: str) -> bool:
        """Ship ``lines`` (None: everything left); True when everything is now shipped."""
        if self.status not in (S.PAID, S.PARTIALLY_SHIPPED):
            raise IllegalTransition(self.status, "ship")
        if lines is None:
            lines = {
                line.sku: line.quantity - line.shipped_quantity
                for line in self.lines
                if line.quantity > line.shipped_quantity
            }
        if not lines:
            raise Unprocessable("nothing left to ship", code="nothing-to-ship")
        for sku, quantity in lines.items():
            line = self.line(sku)
            if quantity <= 0 or line.shipped_quantity + quantity > line.quantity:
                raise Unprocessable(
                    f"cannot ship {quantity} of {sku}: "
                    f"{line.quantity - line.shipped_quantity} left to ship",
                    code="invalid-shipment",
                )
        for sku, quantity in lines.items():
            self.line(sku).shipped_quantity += quantity
        complete = all(line.shipped_quantity == line.quantity for line in self.lines)
        self.transition(
            S.SHIPPED if complete else S.PARTIALLY_SHIPPED, at=at, actor=actor, note=note
        )
        return complete

    def deliver(self, *, at: datetime, actor: str) -> None:
        if self.status is not S.SHIPPED:
            raise IllegalTransition(self.status, "deliver")
        self.transition(S.DELIVERED, at=at, actor=actor)
        self.delivered_at = at

    def cancel(self, *, at: datetime, actor: str, reason: str, by_customer: bool) -> int:
        """Cancel; returns the amount to refund (the paid total, or 0)."""
        allowed = CUSTOMER_CANCELLABLE if by_customer else OPS_CANCELLABLE
        if self.status not in allowed:
            raise IllegalTransition(self.status, "cancel")
        refund = self.total_minor - self.refunded_minor if self.status in PAID_STATUSES else 0
        self.transition(S.CANCELLED, at=at, actor=actor, note=reason)
        self.payment_due_at = None
        self.refunded_minor += refund
        return refund

    def check_return(
        self, lines: dict[str, int], pending: dict[str, int], *, at: datetime, window: timedelta
    ) -> None:
        """A return request is allowed: delivered, within the window, quantities available.

        ``pending`` holds units already in open (requested/approved) returns.
        """
        if self.status not in (S.DELIVERED, S.PARTIALLY_RETURNED):
            raise IllegalTransition(self.status, "return")
        if self.delivered_at is not None and at > self.delivered_at + window:
            raise Conflict(
                "the return window of this order has closed",
                code="return-window-closed",
                current_status=self.status.value,
            )
        if not lines:
            raise Unprocessable("a return needs at least one line", code="invalid-return")
        for sku, quantity in lines.items():
            line = self.line(sku)
            left = line.quantity - line.returned_quantity - pending.get(sku, 0)
            if quantity > left:
                raise Unprocessable(
                    f"cannot return {quantity} of {sku}: {max(left, 0)} returnable",
                    code="invalid-return",
                )

    def receive_return(
        self, received: dict[str, int], *, at: datetime, actor: str, return_id: str
    ) -> int:
        """Record received units; returns the amount to refund."""
        if self.status not in (S.DELIVERED, S.PARTIALLY_RETURNED):
            raise IllegalTransition(self.status, "receive a return for")
        refund = 0
        for sku, quantity in received.items():
            line = self.line(sku)
            if quantity <= 0 or line.returned_quantity + quantity > line.quantity:
                raise Unprocessable(
                    f"cannot receive {quantity} of {sku}", code="invalid-return-receipt"
                )
            refund += line.refund_for(quantity)
            line.returned_quantity += quantity
        everything = all(line.returned_quantity == line.quantity for line in self.lines)
        self.transition(
            S.RETURNED if everything else S.PARTIALLY_RETURNED,
            at=at,
            actor=actor,
            note=f"return {return_id}",
        )
        self.refunded_minor += refund
        return refund


@dataclass(slots=True)
class Return:
    return_id: str
    order_id: str
    customer_id: str
    status: ReturnStatus
    lines: dict[str, int]
    reason: str
    requested_at: datetime
    decided_at: datetime | None = None
    received_at: datetime | None = None
    received_lines: list[dict[str, Any]] = field(default_factory=list)
    refunded_minor: int = 0

    def move(self, to: ReturnStatus, *, at: datetime, action: str) -> None:
        if to not in RETURN_TRANSITIONS[self.status]:
            raise IllegalReturnTransition(self.status, action)
        self.status = to
        if to in (ReturnStatus.APPROVED, ReturnStatus.REJECTED):
            self.decided_at = at
        if to is ReturnStatus.RECEIVED:
            self.received_at = at

    def check_received(self, received: dict[str, int]) -> None:
        for sku, quantity in received.items():
            if quantity > self.lines.get(sku, 0):
                raise Unprocessable(
                    f"received {quantity} of {sku} but the return covers {self.lines.get(sku, 0)}",
                    code="invalid-return-receipt",
                )


def actor_of(role: str, subject: str) -> str:
    return f"{role}:{subject}"


def actor_role(actor: str) -> str:
    """The role part of an actor ("ops:alice" -> "ops"): what customers and partners are shown,
    never the id of the staff member who acted."""
    return actor.split(":", 1)[0]
