"""Risk domain: the order being assessed, what is known beside it, and the vocabulary
(decisions, review states, blocklist kinds, labels, velocity dimensions).

Pure Python: no I/O. Scores and weights are ``Decimal`` in [0, 1], rounded to 4 places. Rule
sets are in ``rules``, scoring in ``scoring``, the review state machine in ``review``, the
model's features in ``features``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

SCORE_PLACES = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)


def q(value: Decimal) -> Decimal:
    """Round a score or weight to 4 places, clamped to [0, 1]."""
    return min(ONE, max(ZERO, value)).quantize(SCORE_PLACES, rounding=ROUND_HALF_EVEN)


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"


class ReviewDecision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    # Closed without a verdict: the order was cancelled or expired while in review.
    CLOSED = "closed"


class BlocklistKind(enum.StrEnum):
    EMAIL = "email"
    IP = "ip"
    DEVICE = "device"
    PAYMENT_FINGERPRINT = "payment_fingerprint"
    CUSTOMER = "customer"


class LabelValue(enum.StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"


class LabelSource(enum.StrEnum):
    CHARGEBACK = "chargeback"
    ANALYST = "analyst"


class Dimension(enum.StrEnum):
    """What velocity is counted per."""

    CUSTOMER = "customer"
    DEVICE = "device"
    IP = "ip"
    PAYMENT_FINGERPRINT = "payment_fingerprint"


def normalise_blocklist_value(kind: BlocklistKind, value: str) -> str:
    value = value.strip()
    if kind is BlocklistKind.EMAIL:
        value = value.lower()
    return value


# --- the order being assessed ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the caller tells about the order (optional fields are None when unknown)."""

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    lines: tuple[Line, ...]
    email: str | None = None
    ip: str | None = None
    device_id: str | None = None
    payment_fingerprint: str | None = None
    billing_country: str | None = None
    shipping_country: str | None = None
    account_created_at: datetime | None = None

    def dimensions(self) -> dict[Dimension, str]:
        """The velocity keys this order counts towards."""
        dims = {Dimension.CUSTOMER: self.customer_id}
        if self.device_id:
            dims[Dimension.DEVICE] = self.device_id
        if self.ip:
            dims[Dimension.IP] = self.ip
        if self.payment_fingerprint:
            dims[Dimension.PAYMENT_FINGERPRINT] = self.payment_fingerprint
        return dims

    def blocklist_keys(self) -> dict[BlocklistKind, str]:
        keys = {BlocklistKind.CUSTOMER: self.customer_id}
        if self.email:
            keys[BlocklistKind.EMAIL] = normalise_blocklist_value(BlocklistKind.EMAIL, self.email)
        if self.ip:
            keys[BlocklistKind.IP] = self.ip.strip()
        if self.device_id:
            keys[BlocklistKind.DEVICE] = self.device_id.strip()
        if self.payment_fingerprint:
            keys[BlocklistKind.PAYMENT_FINGERPRINT] = self.payment_fingerprint.strip()
        return keys


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """Paid orders of the customer in the order's currency (before this order)."""

    paid_orders: int = 0
    mean_amount_minor: Decimal = ZERO
    max_amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class Signals:
    """What the service knows beside the order: velocity counts, history, blocklist hits."""

    # (dimension, window seconds) -> orders in the window, this one included.
    velocity: Mapping[tuple[Dimension, int], int] = field(default_factory=dict)
    history: CustomerHistory = field(default_factory=CustomerHistory)
    blocklisted: frozenset[BlocklistKind] = frozenset()
    now: datetime | None = None
