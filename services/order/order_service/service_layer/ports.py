"""Ports: what the order service needs from its database (repositories reached through the
unit of work) and from pricing, risk, inventory and a payment provider.

The SQL repositories (``adapters/repositories``) and the gRPC adapters (``adapters/clients.py``)
and the sandbox provider implement them; unit tests use fakes. Adapters raise only the
platform's errors:

- ``DependencyUnavailable`` (503, Retry-After) when the other side is down or past its deadline;
- ``OutOfStock`` (409 with ``shortages``) from inventory;
- ``Unprocessable`` / ``Conflict`` carrying the other service's problem code for bad input
  (an unknown SKU, a coupon that cannot be used);
- ``PaymentRequired`` (402) for a declined payment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ecomops_platform.bus import Context
from ecomops_platform.errors import Conflict
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.history import ImportedOrder
from ..domain.models import Order, OrderStatus, Return
from ..settings import OrderSettings


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
    email: str = ""
    billing_country: str = ""
    #: From the payment provider's token, never card data ("" when no token was given).
    payment_fingerprint: str = ""
    #: The token's ``account_created_at`` claim, else the customer's first-seen time in order.
    account_created_at: datetime | None = None


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
    async def fingerprint(self, *, token: str) -> str:
        """The payment method's fingerprint for a token (the one ``charge`` reports), without
        charging; an unknown token is refused (422)."""
        ...

    async def charge(
        self, *, token: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(
        self, *, payment_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        """Refund part or all of a payment; the provider's refund id."""
        ...


class SoldOutMemory:
    """SKUs this process recently saw inventory refuse for lack of stock (per process, a few
    seconds): a checkout for one of them asks inventory's availability first, so that in a
    flash sale the attempts after the last unit get their 409 without a quote, an assessment
    and a refused reservation each. Inventory stays the authority: the availability read is
    as fresh as the reservation would have been, and stock that comes back (a released hold,
    a delivery) lets the checkout through at once."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self._until: dict[str, float] = {}

    def suspects(self, skus: Iterable[str], now: float) -> list[str]:
        return sorted(sku for sku in skus if self._until.get(sku, 0.0) > now)

    def remember(self, skus: Iterable[str], now: float) -> None:
        if self.seconds <= 0:
            return
        if len(self._until) > 10_000:  # bounded: forget the expired ones
            self._until = {s: t for s, t in self._until.items() if t > now}
        for sku in skus:
            self._until[sku] = now + self.seconds

    def forget(self, skus: Iterable[str]) -> None:
        for sku in skus:
            self._until.pop(sku, None)


@dataclass(slots=True)
class Ports:
    pricing: PricingPort
    risk: RiskPort
    inventory: InventoryPort
    payments: PaymentProvider
    sold_out: SoldOutMemory = field(default_factory=SoldOutMemory)


# --- what the database holds beside the domain objects --------------------------------------
@dataclass(frozen=True, slots=True)
class Placement:
    """The columns an order gets at checkout beside the domain ``Order``."""

    coupon_codes: list[str]
    shipping_address: dict[str, str]
    client: dict[str, str]
    quote_id: str
    assessment_id: str
    risk_decision: str
    risk_reasons: list[dict[str, str]]
    cart_id: str | None
    placed_by: str
    reservation_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    token: str
    payment_id: str
    last4: str
    fingerprint: str
    paid_at: datetime


@dataclass(slots=True)
class OrderRecord:
    """A stored order: the domain object and the columns only the views and rules read."""

    order: Order
    coupon_codes: list[str]
    shipping_address: dict[str, str]
    quote_id: str
    assessment_id: str
    risk_decision: str
    risk_reasons: list[dict[str, str]]
    cart_id: str | None
    placed_by: str | None
    reservation_expires_at: datetime | None
    payment_id: str | None
    payment_last4: str | None
    paid_at: datetime | None
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    lines: list[dict[str, int | str]]
    shipped_at: datetime


@dataclass(frozen=True, slots=True)
class CartRecord:
    cart_id: str
    customer_id: str
    currency: str
    status: str
    created_at: datetime
    updated_at: datetime
    order_id: str | None


@dataclass(frozen=True, slots=True)
class CurrencyTotal:
    currency: str
    total_minor: int
    orders: int


@dataclass(frozen=True, slots=True)
class KpiCounts:
    """What the KPI read counts over a period (the rates are the service layer's)."""

    orders: int
    paid_orders: int
    cancelled: int
    paid_by_currency: list[CurrencyTotal]
    buyers: int
    repeat_buyers: int
    orders_with_returns: int
    carts: int
    abandoned_carts: int


#: Which deadline a due order is past: payment (awaiting_payment) or its review hold.
Deadline = Literal["payment", "review"]


# --- repositories ---------------------------------------------------------------------------
class OrderRepository(Protocol):
    async def add(self, order: Order, placement: Placement) -> None: ...

    async def get(self, order_id: str, *, for_update: bool = False) -> OrderRecord | None: ...

    async def save(
        self,
        order: Order,
        *,
        at: datetime,
        payment: PaymentRecord | None = None,
        cancel_reason: str | None = None,
    ) -> None:
        """Store the order's state and its new timeline entries (a cancel reason also sets
        ``cancelled_at``)."""
        ...

    async def add_shipment(self, shipment: ShipmentRecord) -> None: ...

    async def shipments(self, order_id: str) -> list[ShipmentRecord]: ...

    async def lock_due(self, deadline: Deadline, *, now: datetime, limit: int) -> list[OrderRecord]:
        """Orders past the deadline, locked; replicas skip each other's rows."""
        ...

    async def page(
        self,
        *,
        customer_id: str | None,
        placed_by: str | None,
        status: OrderStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[str, datetime]]:
        """(id, placed_at) newest first, strictly before ``before``."""
        ...


class CartRepository(Protocol):
    async def add(self, cart: CartRecord) -> None: ...

    async def get(self, cart_id: str, *, for_update: bool = False) -> CartRecord | None: ...

    async def lines(self, cart_id: str) -> dict[str, int]:
        """SKU → quantity, by SKU."""
        ...

    async def set_item(self, cart_id: str, sku: str, quantity: int, *, now: datetime) -> None:
        """Set one line (0 removes it) and touch the cart."""
        ...

    async def check_out(self, cart_id: str, *, order_id: str, at: datetime) -> None: ...

    async def lock_idle(self, *, cutoff: datetime, limit: int) -> list[CartRecord]:
        """Open carts with items, idle since ``cutoff`` and not reported since, locked."""
        ...

    async def mark_abandoned(self, cart_id: str, *, at: datetime) -> None: ...


class ReturnRepository(Protocol):
    async def add(self, rma: Return, *, currency: str) -> None: ...

    async def get(self, return_id: str, *, for_update: bool = False) -> tuple[Return, str] | None:
        """The return and the currency of its order."""
        ...

    async def pending_units(self, order_id: str) -> dict[str, int]:
        """Units of open returns (requested or approved) per SKU."""
        ...

    async def save(
        self, rma: Return, *, decision_note: str | None = None, refund_id: str | None = None
    ) -> None: ...


class KpiReader(Protocol):
    async def counts(self, *, start: datetime, end: datetime) -> KpiCounts: ...


@dataclass(frozen=True, slots=True)
class StoredImport:
    """What is already stored under an imported order's id (to tell a re-run from a clash)."""

    order_id: str
    customer_id: str
    total_minor: int
    placed_at: datetime
    imported: bool


class ImportRepository(Protocol):
    """Historical orders (``ecomops import orders``)."""

    async def existing(self, order_ids: list[str]) -> dict[str, StoredImport]:
        """The orders, live or imported, already stored under any of these ids."""
        ...

    async def add(self, orders: list[ImportedOrder], *, actor: str, note: str) -> set[str]:
        """Store each order as delivered history unless its id exists; the ids stored now."""
        ...


class OrderUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def carts(self) -> CartRepository: ...

    @property
    def returns(self) -> ReturnRepository: ...

    @property
    def kpis(self) -> KpiReader: ...

    @property
    def imports(self) -> ImportRepository: ...

    async def first_order_at(self, customer_id: str) -> datetime | None:
        """When the customer placed their first order here (None: never), read at once,
        outside any transaction (one statement, no unit of work needed)."""
        ...


@dataclass
class Deps:
    """What handlers need beside the unit of work; ``ports`` are opened at start-up."""

    settings: OrderSettings
    ports: Ports
    clock: Callable[[], datetime] = utcnow


Ctx = Context[OrderUnitOfWork, Deps]
