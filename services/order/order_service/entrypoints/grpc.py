"""gRPC servicer ``ecomops.order.v1.OrderService``: the same handlers and views as REST.

Requests are decoded into the REST request models (the same validation), responses are the
handlers' JSON views parsed into the protobuf messages (field names are shared).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel, ValidationError

from ecomops.order.v1 import order_service_pb2 as pb
from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc
from ecomops_platform.auth import Caller, Role
from ecomops_platform.cards import card_number_refused, find_card_number
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    NotFound,
    PaymentRequired,
    ServiceError,
    Unprocessable,
)
from ecomops_platform.grpc_server import authorize, screen_request, to_datetime
from ecomops_platform.idempotency import check_key
from ecomops_platform.strict import message_to_data

from ..service_layer import handlers
from ..service_layer.handlers import Deps
from ..service_layer.saga import CheckoutInput
from . import schemas
from .rest import nul_refused

M = TypeVar("M", bound=BaseModel)

SERVICE_NAME = "ecomops.order.v1.OrderService"

_STATUS_ERRORS: dict[int, type[ServiceError]] = {
    400: BadRequest,
    402: PaymentRequired,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    503: DependencyUnavailable,
}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def to_message(cls: Callable[[], Message], **fields: Any) -> Any:
    message = cls()
    json_format.ParseDict(_strip(fields), message, ignore_unknown_fields=True)
    return message


def stored_or_raise(status: int, body: Any) -> Any:
    """A stored error response (e.g. 422 order-rejected) becomes the same error on gRPC."""
    if status < 400:
        return body
    error_cls = _STATUS_ERRORS.get(status, Unprocessable)
    extra = {
        k: v
        for k, v in dict(body).items()
        if k not in {"type", "title", "status", "detail", "instance"}
    }
    code = str(body.get("type", "")).rsplit("/", 1)[-1] or None
    if error_cls is DependencyUnavailable:
        raise DependencyUnavailable(str(body.get("detail", "")))
    raise error_cls(str(body.get("detail", "")), code=code, title=body.get("title"), **extra)


def decode(model: type[M], request: Message, *, drop: tuple[str, ...] = ()) -> M:
    data = message_to_data(request)  # 64-bit integers stay integers (strict models)
    _screen(data)
    for name in drop:
        data.pop(name, None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        summary = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise Unprocessable(summary, code="validation-error") from None


def _key(request: Any) -> str:
    key = check_key(request.idempotency_key, required=True)
    assert key is not None
    return key


def _client(client: schemas.ClientIn | None) -> dict[str, Any]:
    return client.model_dump(exclude_none=True) if client else {}


def _scan(request: Message) -> None:
    # The platform's interceptor already screened the message (ecomops_platform.cards and
    # grpc_server.screen_request); walking the fields needs no JSON conversion, which fails on
    # an out-of-range Timestamp.
    screen_request(request)


def _screen(data: Any) -> None:
    if "\\u0000" in json.dumps(data):
        raise nul_refused()
    if find_card_number(data):
        raise card_number_refused()


class OrderServicer(pb_grpc.OrderServiceServicer):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], deps: Deps) -> None:
        self.uow = uow_factory
        self.deps = deps

    # --- carts ----------------------------------------------------------------------------
    async def CreateCart(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER)
        _scan(request)
        body = decode(schemas.CreateCartIn, request, drop=("idempotency_key",))
        uow = self.uow()

        async def action() -> tuple[int, Any]:
            return await handlers.create_cart(uow, self.deps, caller, currency=body.currency)

        status, stored, _ = await handlers.idempotent(
            uow,
            caller=caller,
            operation="create_cart",
            key=_key(request),
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return to_message(pb.CreateCartResponse, cart=stored_or_raise(status, stored))

    async def SetCartItem(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS)
        _scan(request)
        if not request.sku:
            raise Unprocessable("sku is required", code="validation-error")
        view = await handlers.set_cart_item(
            self.uow(),
            self.deps,
            caller,
            cart_id=request.cart_id,
            sku=request.sku,
            quantity=request.quantity,
        )
        return to_message(pb.SetCartItemResponse, cart=view)

    async def GetCart(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS)
        _scan(request)
        view = await handlers.get_cart(self.uow(), self.deps, caller, cart_id=request.cart_id)
        return to_message(pb.GetCartResponse, cart=view)

    async def CheckoutCart(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER)
        _scan(request)
        body = decode(schemas.CheckoutCartIn, request, drop=("idempotency_key", "cart_id"))
        status, stored, _ = await handlers.checkout_cart(
            self.uow(),
            self.deps,
            caller,
            key=_key(request),
            cart_id=request.cart_id,
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=_client(body.client),
        )
        return to_message(pb.CheckoutCartResponse, order=stored_or_raise(status, stored))

    # --- orders ---------------------------------------------------------------------------
    async def PlaceOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.PARTNER, Role.SERVICE)
        _scan(request)
        body = decode(schemas.PlaceOrderIn, request, drop=("idempotency_key",))
        lines: dict[str, int] = {}
        for line in body.lines:
            lines[line.sku] = lines.get(line.sku, 0) + line.quantity
        status, stored, _ = await handlers.place_order(
            self.uow(),
            self.deps,
            caller,
            key=_key(request),
            customer_id=handlers.resolve_customer(caller, body.customer_id),
            data=CheckoutInput(
                currency=body.currency,
                lines=lines,
                shipping_address=body.shipping_address.model_dump(),
                coupon_codes=list(body.coupon_codes),
                client=_client(body.client),
            ),
        )
        return to_message(pb.PlaceOrderResponse, order=stored_or_raise(status, stored))

    async def GetOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
        _scan(request)
        view = await handlers.get_order(self.uow(), caller, order_id=request.order_id)
        return to_message(pb.GetOrderResponse, order=view)

    async def ListOrders(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
        _scan(request)
        page = await handlers.list_orders(
            self.uow(),
            caller,
            status=request.status or None,
            limit=request.limit or None,
            cursor=request.cursor or None,
        )
        return to_message(pb.ListOrdersResponse, **page)

    async def PayOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller: Caller = authorize(Role.CUSTOMER, Role.PARTNER, Role.SERVICE)
        _scan(request)
        body = decode(schemas.PaymentIn, request, drop=("idempotency_key", "order_id"))
        status, stored, _ = await handlers.pay_order(
            self.uow(),
            self.deps,
            caller,
            key=_key(request),
            order_id=request.order_id,
            token=body.payment_token,
        )
        return to_message(pb.PayOrderResponse, order=stored_or_raise(status, stored))

    async def CreateShipment(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.OPS, Role.PARTNER, Role.SERVICE)
        _scan(request)
        body = decode(schemas.ShipmentIn, request, drop=("idempotency_key", "order_id"))
        status, stored, _ = await handlers.create_shipment(
            self.uow(),
            self.deps,
            caller,
            key=_key(request),
            order_id=request.order_id,
            lines=[(line.sku, line.quantity) for line in body.lines] if body.lines else None,
            carrier=body.carrier,
            tracking_number=body.tracking_number,
        )
        return to_message(pb.CreateShipmentResponse, order=stored_or_raise(status, stored))

    async def ConfirmDelivery(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.OPS, Role.PARTNER, Role.SERVICE)
        _scan(request)
        view = await handlers.confirm_delivery(
            self.uow(), self.deps, caller, order_id=request.order_id
        )
        return to_message(pb.ConfirmDeliveryResponse, order=view)

    async def CancelOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS, Role.SERVICE)
        _scan(request)
        body = decode(schemas.CancelIn, request, drop=("order_id",))
        view = await handlers.cancel_order(
            self.uow(), self.deps, caller, order_id=request.order_id, reason=body.reason
        )
        return to_message(pb.CancelOrderResponse, order=view)

    # --- returns --------------------------------------------------------------------------
    async def RequestReturn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS)
        _scan(request)
        body = decode(schemas.ReturnIn, request, drop=("idempotency_key", "order_id"))
        status, stored, _ = await handlers.request_return(
            self.uow(),
            self.deps,
            caller,
            key=_key(request),
            order_id=request.order_id,
            lines=[(line.sku, line.quantity) for line in body.lines],
            reason=body.reason,
        )
        return to_message(pb.RequestReturnResponse, **{"return": stored_or_raise(status, stored)})

    async def GetReturn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.CUSTOMER, Role.OPS)
        _scan(request)
        view = await handlers.get_return(self.uow(), caller, return_id=request.return_id)
        return to_message(pb.GetReturnResponse, **{"return": view})

    async def ApproveReturn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.OPS, Role.SERVICE)
        _scan(request)
        view = await handlers.decide_return(
            self.uow(), self.deps, caller, return_id=request.return_id, approve=True
        )
        return to_message(pb.ApproveReturnResponse, **{"return": view})

    async def RejectReturn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.OPS, Role.SERVICE)
        _scan(request)
        view = await handlers.decide_return(
            self.uow(),
            self.deps,
            caller,
            return_id=request.return_id,
            approve=False,
            note=request.note,
        )
        return to_message(pb.RejectReturnResponse, **{"return": view})

    async def ReceiveReturn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = authorize(Role.OPS, Role.SERVICE)
        _scan(request)
        body = decode(schemas.ReceiveReturnIn, request, drop=("return_id",))
        view = await handlers.receive_return(
            self.uow(),
            self.deps,
            caller,
            return_id=request.return_id,
            lines=[(line.sku, line.quantity, line.resellable) for line in body.lines],
            warehouse=body.warehouse or "",
        )
        return to_message(pb.ReceiveReturnResponse, **{"return": view})

    async def GetOrderKpis(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        authorize(Role.OPS, Role.SERVICE)
        _scan(request)
        start = getattr(request, "from")
        end = request.to
        view = await handlers.order_kpis(
            self.uow(),
            self.deps,
            start=to_datetime(start, "from") if request.HasField("from") else None,
            end=to_datetime(end, "to") if request.HasField("to") else None,
        )
        return to_message(pb.GetOrderKpisResponse, **view)


def registrar(
    uow_factory: Callable[[], UnitOfWork], deps: Deps
) -> Callable[[grpc.aio.Server], None]:
    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_OrderServiceServicer_to_server(  # type: ignore[no-untyped-call]
            OrderServicer(uow_factory, deps), server
        )

    return register
