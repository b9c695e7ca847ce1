"""gRPC clients of pricing, risk and inventory behind the service layer's ports.

Every call has a deadline (``ORDER_DEPENDENCY_TIMEOUT``). UNAVAILABLE, DEADLINE_EXCEEDED and
other transport failures become ``DependencyUnavailable`` (503, Retry-After); the other
service's problem document (``ecomops-problem`` trailer) is passed on for errors that are the
caller's (an unknown SKU, an exhausted coupon, a shortage).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import grpc

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import inventory_service_pb2 as inv
from ecomops.inventory.v1 import inventory_service_pb2_grpc as inv_grpc
from ecomops.pricing.v1 import pricing_service_pb2 as pr
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pr_grpc
from ecomops.risk.v1 import risk_service_pb2 as rk
from ecomops.risk.v1 import risk_service_pb2_grpc as rk_grpc
from ecomops_platform.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    ServiceError,
    Unprocessable,
)
from ecomops_platform.grpc_client import client_tls, make_channel, problem_of
from ecomops_platform.settings import CommonSettings
from ecomops_platform.timestamps import to_datetime, to_timestamp

from ..service_layer.ports import (
    Assessment,
    AssessmentRequest,
    OutOfStock,
    Quote,
    QuoteLine,
    RiskReason,
)

T = TypeVar("T")

_UNAVAILABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.ABORTED,
}

log = logging.getLogger("order_service.clients")

_DECISIONS = {
    rk.DECISION_APPROVE: "approve",
    rk.DECISION_REVIEW: "review",
    rk.DECISION_REJECT: "reject",
}


def translate(service: str, error: grpc.aio.AioRpcError) -> ServiceError:
    """Map another service's gRPC error to the error the order service's caller sees."""
    code = error.code()
    problem = problem_of(error) or {}
    if code in _UNAVAILABLE:
        # Our own credentials refused, or the server broken: not the customer's fault either.
        log.warning("%s unavailable: %s %s", service, code.name, (error.details() or "")[:200])
        return DependencyUnavailable(f"{service} is unavailable ({code.name}); retry later")
    extra = {k: v for k, v in problem.items() if k not in {"type", "title", "status", "detail"}}
    extra.pop("instance", None)
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1] or None
    detail = str(problem.get("detail") or error.details() or f"{service} refused the request")
    if code == grpc.StatusCode.FAILED_PRECONDITION and "shortages" in problem:
        return OutOfStock(list(problem["shortages"]))
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS):
        return Conflict(detail, code=slug or "conflict", **extra)
    if code == grpc.StatusCode.NOT_FOUND:
        return Unprocessable(detail, code=slug or "not-found", **extra)
    return Unprocessable(detail, code=slug or "validation-error", **extra)


async def _call(service: str, rpc: Callable[..., Awaitable[T]], request: Any, deadline: float) -> T:
    try:
        return await rpc(request, timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        raise translate(service, exc) from None
    except TimeoutError:
        log.warning("%s did not answer within %.1f s", service, deadline)
        raise DependencyUnavailable(f"{service} did not answer in time; retry later") from None


def _sku_lines(lines: dict[str, int]) -> list[common_pb2.SkuQuantity]:
    return [common_pb2.SkuQuantity(sku=sku, quantity=qty) for sku, qty in sorted(lines.items())]


class Channels:
    """One channel per dependency for the process; closed on stop."""

    def __init__(
        self,
        *,
        inventory: str,
        pricing: str,
        risk: str,
        token: Callable[[], str],
        settings: CommonSettings,
    ) -> None:
        # TLS / mTLS from ECOMOPS_GRPC_CLIENT_CA_FILE / _CERT_FILE / _KEY_FILE, read once.
        tls = client_tls(settings)
        self.inventory = make_channel(inventory, token, tls=tls)
        self.pricing = make_channel(pricing, token, tls=tls)
        self.risk = make_channel(risk, token, tls=tls)

    async def close(self) -> None:
        for channel in (self.inventory, self.pricing, self.risk):
            await channel.close()


class GrpcPricing:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = pr_grpc.PricingServiceStub(channel)
        self.timeout = timeout

    async def create_quote(
        self, *, customer_id: str, currency: str, lines: dict[str, int], coupon_codes: list[str]
    ) -> Quote:
        request = pr.CreateQuoteRequest(
            customer_id=customer_id,
            currency=currency,
            lines=_sku_lines(lines),
            coupon_codes=coupon_codes,
            idempotency_key=uuid.uuid4().hex,
        )
        response = await _call("pricing", self.stub.CreateQuote, request, self.timeout)
        q = response.quote
        return Quote(
            quote_id=q.quote_id,
            currency=q.currency,
            lines=[
                QuoteLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    discount_minor=line.discount_minor,
                    total_minor=line.total_minor,
                )
                for line in q.lines
            ],
            subtotal_minor=q.subtotal_minor,
            discount_total_minor=q.discount_total_minor,
            total_minor=q.total_minor,
            coupon_codes=list(q.coupon_codes),
            expires_at=to_datetime(q.expires_at, "expires_at")
            if q.HasField("expires_at")
            else None,
        )

    async def redeem_quote(
        self, *, quote_id: str, order_id: str, customer_id: str, quote: Quote
    ) -> None:
        request = pr.RedeemQuoteRequest(
            quote_id=quote_id,
            order_id=order_id,
            customer_id=customer_id,
            expected_lines=_sku_lines({line.sku: line.quantity for line in quote.lines}),
            expected_total_minor=quote.total_minor,
        )
        await _call("pricing", self.stub.RedeemQuote, request, self.timeout)

    async def release_redemption(self, *, order_id: str, reason: str) -> None:
        request = pr.ReleaseRedemptionRequest(order_id=order_id, reason=reason)
        await _call("pricing", self.stub.ReleaseRedemption, request, self.timeout)


class GrpcRisk:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = rk_grpc.RiskServiceStub(channel)
        self.timeout = timeout

    async def assess_order(self, request: AssessmentRequest) -> Assessment:
        message = rk.AssessOrderRequest(
            order_id=request.order_id,
            customer_id=request.customer_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            lines=[
                rk.AssessmentLine(
                    sku=line.sku, quantity=line.quantity, unit_price_minor=line.unit_price_minor
                )
                for line in request.lines
            ],
            ip=request.ip,
            device_id=request.device_id,
            shipping_country=request.shipping_country,
            email=request.email,
            billing_country=request.billing_country,
            payment_fingerprint=request.payment_fingerprint,
        )
        if request.account_created_at is not None:
            message.account_created_at.CopyFrom(to_timestamp(request.account_created_at))
        response = await _call("risk", self.stub.AssessOrder, message, self.timeout)
        a = response.assessment
        decision = _DECISIONS.get(a.decision)
        if decision is None:
            raise DependencyUnavailable("risk returned no decision; retry later")
        return Assessment(
            assessment_id=a.assessment_id,
            decision=decision,
            reasons=[RiskReason(code=r.code, detail=r.detail) for r in a.reasons],
            score=a.score,
            review_id=a.review_id,
        )


class GrpcInventory:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = inv_grpc.InventoryServiceStub(channel)
        self.timeout = timeout

    async def reserve(
        self, *, reservation_id: str, lines: dict[str, int], ttl_seconds: int
    ) -> datetime | None:
        request = inv.ReserveStockRequest(
            reservation_id=reservation_id, lines=_sku_lines(lines), ttl_seconds=ttl_seconds
        )
        try:
            response = await _call("inventory", self.stub.ReserveStock, request, self.timeout)
        except Unprocessable as exc:
            # Inventory caps TTLs: hold for its maximum; the order's deadlines follow the
            # expiry it returns (payment is never due after the hold expires).
            maximum = exc.extra.get("max_ttl_seconds")
            if exc.code != "invalid-ttl" or not isinstance(maximum, int) or maximum >= ttl_seconds:
                raise
            request.ttl_seconds = maximum
            response = await _call("inventory", self.stub.ReserveStock, request, self.timeout)
        r = response.reservation
        return to_datetime(r.expires_at, "expires_at") if r.HasField("expires_at") else None

    async def release(self, *, reservation_id: str) -> None:
        request = inv.ReleaseReservationRequest(reservation_id=reservation_id)
        try:
            await _call("inventory", self.stub.ReleaseReservation, request, self.timeout)
        except (NotFound, Unprocessable):
            return  # nothing was held: nothing to release

    async def availability(self, skus: list[str]) -> dict[str, int]:
        request = inv.GetAvailabilityRequest(skus=skus)
        response = await _call("inventory", self.stub.GetAvailability, request, self.timeout)
        return {item.sku: int(item.available) for item in response.items}
