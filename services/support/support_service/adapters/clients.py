"""gRPC clients of order (ownership and context of a ticket's order) and pricing (goodwill
coupons) behind the service layer's ports.

Every call has a deadline (``SUPPORT_DEPENDENCY_TIMEOUT``). UNAVAILABLE, DEADLINE_EXCEEDED and
other transport failures become ``DependencyUnavailable`` (503, Retry-After); the other
service's refusals (its problem document) are passed on as 409/422.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import grpc

from ecomops.order.v1 import order_service_pb2 as od
from ecomops.order.v1 import order_service_pb2_grpc as od_grpc
from ecomops.pricing.v1 import pricing_service_pb2 as pr
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pr_grpc
from ecomops_platform.errors import Conflict, DependencyUnavailable, ServiceError, Unprocessable
from ecomops_platform.grpc_client import client_tls, make_channel, problem_of
from ecomops_platform.settings import CommonSettings
from ecomops_platform.timestamps import to_datetime, to_timestamp

from ..service_layer.ports import OrderSnapshot

T = TypeVar("T")
log = logging.getLogger("support_service.clients")

_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.OUT_OF_RANGE,
}


def translate(service: str, error: grpc.aio.AioRpcError) -> ServiceError:
    code = error.code()
    if code not in _REFUSALS:
        log.warning("%s unavailable: %s %s", service, code.name, (error.details() or "")[:200])
        return DependencyUnavailable(f"{service} is unavailable ({code.name}); retry later")
    problem = problem_of(error) or {}
    detail = str(problem.get("detail") or error.details() or f"{service} refused the request")
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1] or None
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS):
        return Conflict(f"{service}: {detail}", code=slug or "conflict")
    return Unprocessable(f"{service}: {detail}", code=slug or "dependency-refused")


async def _call(service: str, rpc: Callable[..., Awaitable[T]], request: Any, deadline: float) -> T:
    try:
        return await rpc(request, timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        raise translate(service, exc) from None
    except TimeoutError:
        log.warning("%s did not answer within %.1f s", service, deadline)
        raise DependencyUnavailable(f"{service} did not answer in time; retry later") from None


class Channels:
    """One channel per dependency for the process; closed on stop."""

    def __init__(
        self, *, order: str, pricing: str, token: Callable[[], str], settings: CommonSettings
    ) -> None:
        tls = client_tls(settings)
        self.order = make_channel(order, token, tls=tls)
        self.pricing = make_channel(pricing, token, tls=tls)

    async def close(self) -> None:
        for channel in (self.order, self.pricing):
            await channel.close()


def _optional_time(msg: Any, name: str) -> datetime | None:
    return to_datetime(getattr(msg, name), name) if msg.HasField(name) else None


class GrpcOrders:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = od_grpc.OrderServiceStub(channel)
        self.timeout = timeout

    async def get(self, order_id: str) -> OrderSnapshot | None:
        try:
            response = await self.stub.GetOrder(
                od.GetOrderRequest(order_id=order_id), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise translate("order", exc) from None
        except TimeoutError:
            raise DependencyUnavailable("order did not answer in time; retry later") from None
        o = response.order
        return OrderSnapshot(
            order_id=o.order_id,
            customer_id=o.customer_id,
            status=o.status,
            total_minor=o.total_minor,
            currency=o.currency,
            placed_at=to_datetime(o.placed_at, "placed_at"),
            delivered_at=_optional_time(o, "delivered_at"),
            shipments=len(o.shipments),
            timeline=tuple(f"{e.status}@{to_datetime(e.at, 'at').isoformat()}" for e in o.timeline),
            lines=tuple((line.sku, int(line.quantity)) for line in o.lines),
        )


def _rma(response: Any) -> Any:
    return getattr(response, "return")  # a Python keyword as a field name


class GrpcReturns:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = od_grpc.OrderServiceStub(channel)
        self.timeout = timeout

    async def request_and_approve(
        self,
        *,
        order_id: str,
        lines: tuple[tuple[str, int], ...],
        reason: str,
        idempotency_key: str,
    ) -> str:
        request = od.RequestReturnRequest(
            order_id=order_id,
            lines=[od.ReturnLine(sku=sku, quantity=qty) for sku, qty in lines],
            reason=reason,
            idempotency_key=idempotency_key,
        )
        # The same key again replays the same return (order's Idempotency-Key store).
        rma = _rma(await _call("order", self.stub.RequestReturn, request, self.timeout))
        if rma.status == "requested":
            try:
                await _call(
                    "order",
                    self.stub.ApproveReturn,
                    od.ApproveReturnRequest(return_id=rma.return_id),
                    self.timeout,
                )
            except Conflict:
                # Approved meanwhile (a retry after a crash): fine; anything else is refused.
                got = _rma(
                    await _call(
                        "order",
                        self.stub.GetReturn,
                        od.GetReturnRequest(return_id=rma.return_id),
                        self.timeout,
                    )
                )
                if got.status not in ("approved", "received"):
                    raise
        elif rma.status not in ("approved", "received"):
            raise Conflict(f"order: return {rma.return_id} is {rma.status}", code="return-state")
        return str(rma.return_id)


class GrpcCoupons:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub = pr_grpc.PricingServiceStub(channel)
        self.timeout = timeout

    async def issue(
        self,
        *,
        code: str,
        percent: Decimal,
        starts_at: datetime,
        ends_at: datetime,
        idempotency_key: str,
        name: str,
    ) -> str:
        request = pr.CreatePromotionRequest(
            name=name,
            kind=pr.PROMOTION_KIND_PERCENT,
            percent=str(percent),
            scope=pr.PromotionScope(all=True),
            starts_at=to_timestamp(starts_at),
            ends_at=to_timestamp(ends_at),
            coupon_code=code,
            usage_limit=1,
            per_customer_limit=1,
            idempotency_key=idempotency_key,
        )
        response = await _call("pricing", self.stub.CreatePromotion, request, self.timeout)
        return str(response.promotion.promotion_id)
