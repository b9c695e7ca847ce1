"""Ports: what the order service needs from pricing, risk, inventory and a payment provider.

The gRPC adapters (``adapters/clients.py``) and the sandbox provider implement them; unit tests
use fakes. Adapters raise only the platform's errors:

- ``DependencyUnavailable`` (503, Retry-After) when the other side is down or past its deadline;
- ``OutOfStock`` (409 with ``shortages``) from inventory;
- ``Unprocessable`` / ``Conflict`` carrying the other service's problem code for bad input
  (an unknown SKU, a coupon that cannot be used);
- ``PaymentRequired`` (402) for a declined payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ecomops_platform.errors import Conflict


class OutOfStock(Conflict):
    code = "out-of-stock"
    title = "Not enough stock"

    def __init__(self, shortages: list[dict[str, Any]]) -> None:
        skus = ", ".join(str(s.get("sku")) for s in shortages)
        super().__init__(f"not enough stock for: {skus}", shortages=shortages)
        self.shortages = shortages


@dataclass(frozen=True, slots=True)
class QuoteLine:
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int


@dataclass(frozen=True, slots=True)
class Quote:
    quote_id: str
    currency: str
    lines: list[QuoteLine]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    coupon_codes: list[str] = field(default_factory=list)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RiskReason:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Assessment:
    assessment_id: str
    decision: str  # "approve", "review" or "reject"
    reasons: list[RiskReason] = field(default_factory=list)
    score: str = ""
    review_id: str = ""


@dataclass(frozen=True, slots=True)
class AssessmentRequest:
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    lines: list[QuoteLine]
    ip: str
    device_id: str
    shipping_country: str


@dataclass(frozen=True, slots=True)
class Charge:
    payment_id: str
    last4: str
    fingerprint: str


class PricingPort(Protocol):
    async def create_quote(
        self, *, customer_id: str, currency: str, lines: dict[str, int], coupon_codes: list[str]
    ) -> Quote: ...

    async def redeem_quote(
        self, *, quote_id: str, order_id: str, customer_id: str, quote: Quote
    ) -> None: ...

    async def release_redemption(self, *, order_id: str, reason: str) -> None: ...


class RiskPort(Protocol):
    async def assess_order(self, request: AssessmentRequest) -> Assessment: ...


class InventoryPort(Protocol):
    async def reserve(
        self, *, reservation_id: str, lines: dict[str, int], ttl_seconds: int
    ) -> datetime | None:
        """Hold the lines all-or-nothing; the reservation's expiry (None if unknown)."""
        ...

    async def release(self, *, reservation_id: str) -> None: ...

    async def availability(self, skus: list[str]) -> dict[str, int]: ...


class PaymentProvider(Protocol):
    async def charge(
        self, *, token: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(
        self, *, payment_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        """Refund part or all of a payment; the provider's refund id."""
        ...


@dataclass(slots=True)
class Ports:
    pricing: PricingPort
    risk: RiskPort
    inventory: InventoryPort
    payments: PaymentProvider
