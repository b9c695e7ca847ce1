"""Fakes of the order service's ports (pricing, risk, inventory), shared by its tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecomops_platform.errors import DependencyUnavailable, Unprocessable
from order_service.adapters.payments import SandboxPaymentProvider
from order_service.service_layer.ports import (
    Assessment,
    AssessmentRequest,
    OutOfStock,
    Ports,
    Quote,
    QuoteLine,
    RiskReason,
    SoldOutMemory,
)


def down(name: str) -> DependencyUnavailable:
    return DependencyUnavailable(f"{name} is unavailable (fake)")


@dataclass
class FakePricing:
    """Every SKU costs 1000 minor units unless priced; coupon SAVE10 takes 10% off."""

    prices: dict[str, int] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    redeemed: dict[str, str] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    quotes: int = 0
    # SKUs pricing refuses, with the problem code (unknown-sku, sku-discontinued, no-price)
    refused: dict[str, str] = field(default_factory=dict)

    async def create_quote(
        self, *, customer_id: str, currency: str, lines: dict[str, int], coupon_codes: list[str]
    ) -> Quote:
        if "create_quote" in self.fail:
            raise down("pricing")
        for code in coupon_codes:
            if code != "SAVE10":
                raise Unprocessable(f"coupon {code} is not valid", code="invalid-coupon")
        self.quotes += 1
        # Like pricing: every refused SKU named at once, in ``skus``.
        refused = {
            sku: self.refused.get(sku)
            or ("unknown-sku" if sku.startswith("unknown") else "no-price")
            for sku in lines
            if sku in self.refused or sku.startswith(("unknown", "unpriced"))
        }
        if refused:
            first = sorted(refused)[0]
            named = sorted(s for s, c in refused.items() if c == refused[first])
            raise Unprocessable(
                f"{refused[first]}: {', '.join(named)}", code=refused[first], skus=named
            )
        out = []
        for sku, qty in sorted(lines.items()):
            price = self.prices.get(sku, 1000)
            discount = price * qty // 10 if "SAVE10" in coupon_codes else 0
            out.append(QuoteLine(sku, qty, price, discount, price * qty - discount))
        return Quote(
            quote_id="q-" + uuid.uuid4().hex[:10],
            currency=currency,
            lines=out,
            subtotal_minor=sum(q.quantity * q.unit_price_minor for q in out),
            discount_total_minor=sum(q.discount_minor for q in out),
            total_minor=sum(q.total_minor for q in out),
            coupon_codes=list(coupon_codes),
            expires_at=datetime.now(UTC) + timedelta(minutes=15),
        )

    async def redeem_quote(
        self, *, quote_id: str, order_id: str, customer_id: str, quote: Quote
    ) -> None:
        if "redeem_quote" in self.fail:
            self.redeemed[order_id] = quote_id  # applied, then the answer was lost
            raise down("pricing")
        self.redeemed[order_id] = quote_id

    async def release_redemption(self, *, order_id: str, reason: str) -> None:
        if "release_redemption" in self.fail:
            raise down("pricing")
        self.redeemed.pop(order_id, None)
        self.released.append(order_id)


@dataclass
class FakeRisk:
    """Decision by customer id: customers named *review* go to review, *reject* are rejected."""

    fail: bool = False
    calls: list[AssessmentRequest] = field(default_factory=list)

    async def assess_order(self, request: AssessmentRequest) -> Assessment:
        if self.fail:
            raise down("risk")
        self.calls.append(request)
        decision = "approve"
        if "reject" in request.customer_id:
            decision = "reject"
        elif "review" in request.customer_id:
            decision = "review"
        reasons = [] if decision == "approve" else [RiskReason("velocity_customer", "too fast")]
        return Assessment("as-" + request.order_id[:12], decision, reasons, "0.5")


@dataclass
class FakeInventory:
    """Unlimited stock unless set; all-or-nothing holds keyed by reservation id."""

    stock: dict[str, int] = field(default_factory=dict)
    holds: dict[str, dict[str, int]] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    ttl: dict[str, int] = field(default_factory=dict)

    def available(self, sku: str) -> int:
        held = sum(h.get(sku, 0) for h in self.holds.values())
        return self.stock.get(sku, 1_000_000) - held

    async def reserve(
        self, *, reservation_id: str, lines: dict[str, int], ttl_seconds: int
    ) -> datetime | None:
        if "reserve_before" in self.fail:
            raise down("inventory")
        if reservation_id not in self.holds:
            shortages = [
                {"sku": sku, "requested": qty, "available": max(self.available(sku), 0)}
                for sku, qty in sorted(lines.items())
                if self.available(sku) < qty
            ]
            if shortages:
                raise OutOfStock(shortages)
            self.holds[reservation_id] = dict(lines)
            self.ttl[reservation_id] = ttl_seconds
        if "reserve_after" in self.fail:
            raise down("inventory")  # held, but the answer came too late
        return datetime.now(UTC) + timedelta(seconds=ttl_seconds)

    async def release(self, *, reservation_id: str) -> None:
        if "release" in self.fail:
            raise down("inventory")
        self.holds.pop(reservation_id, None)

    async def availability(self, skus: list[str]) -> dict[str, int]:
        if "availability" in self.fail:
            raise down("inventory")
        return {sku: self.available(sku) for sku in skus}


@dataclass
class FakeWorld:
    pricing: FakePricing
    risk: FakeRisk
    inventory: FakeInventory
    payments: SandboxPaymentProvider
    # One per world, as one per process: what the saga learnt outlives a checkout.
    sold_out: SoldOutMemory = field(default_factory=SoldOutMemory)

    def ports(self) -> Ports:
        return Ports(self.pricing, self.risk, self.inventory, self.payments, self.sold_out)

    def heal(self) -> None:
        self.pricing.fail.clear()
        self.risk.fail = False
        self.inventory.fail.clear()


def make_world() -> FakeWorld:
    return FakeWorld(FakePricing(), FakeRisk(), FakeInventory(), SandboxPaymentProvider())


@pytest.fixture
def world() -> FakeWorld:
    return make_world()


ADDRESS: dict[str, Any] = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical Way",
    "city": "London",
    "postal_code": "N1 1AA",
    "country": "GB",
}


@pytest.fixture
def address() -> dict[str, Any]:
    return dict(ADDRESS)


@pytest.fixture(scope="session")
def fake_world() -> FakeWorld:
    """One set of fakes for the in-process service the integration tests share."""
    return make_world()


@pytest.fixture(scope="session")
def world_factory() -> Any:
    """Fresh fakes per call (for hypothesis tests, where function fixtures are not reset)."""
    return make_world
