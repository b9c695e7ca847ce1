"""gRPC servicer ``ecomops.order.v1.OrderService``: decode, hand the message to the bus, encode.

Requests are validated with the REST request models (the same rules on both transports);
responses are the handlers' views copied into the protobuf messages (field names are shared).
The platform's interceptor has already authenticated the caller and screened the request
(card numbers, NUL characters, undecodable bytes, out-of-range timestamps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel, ValidationError

from ecomops.order.v1 import order_service_pb2 as pb
from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for, invalid_request
from ecomops_platform.ports import check_key
from ecomops_platform.strict import message_to_data
from ecomops_platform.timestamps import to_datetime

from ..service_layer.carts import CreateCart, GetCart, SetCartItem
from ..service_layer.checkout import CheckoutCart, PlaceOrder
from ..service_layer.fulfilment import ConfirmDelivery, CreateShipment
from ..service_layer.imports import ImportOrders
from ..service_layer.kpis import GetOrderKpis
from ..service_layer.orders import CancelOrder, GetOrder, ListOrders
from ..service_layer.payments import PayOrder
from ..service_layer.ports import Deps, OrderUnitOfWork
from ..service_layer.returns import (
    ApproveReturn,
    GetReturn,
    ReceiveReturn,
    RejectReturn,
    RequestReturn,
)
from . import schemas
from .schemas import client_of, fraud_signals_of, lines_of, merged

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=Message)
Bus = MessageBus[OrderUnitOfWork, Deps]

SERVICE_NAME = "ecomops.order.v1.OrderService"


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def to_message(cls: Callable[[], P], **fields: Any) -> P:
    """A response message from views (dumped as JSON; unset where the view has None)."""
    message = cls()
    data = {
        k: v.model_dump(mode="json", by_alias=True) if isinstance(v, BaseModel) else v
        for k, v in fields.items()
    }
    json_format.ParseDict(_strip(data), message, ignore_unknown_fields=True)
    return message


def decode(model: type[M], request: Message, *, drop: tuple[str, ...] = ()) -> M:
    """The request as the REST model validates it (64-bit integers stay integers)."""
    data = message_to_data(request)
    for name in drop:
        data.pop(name, None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc) from None


class _Keyed(Protocol):
    idempotency_key: str


def _key(request: _Keyed) -> str:
    """The request's Idempotency-Key, checked where it always was: after the body."""
    key = check_key(request.idempotency_key, required=True)
    assert key is not None
    return key


class OrderServicer(pb_grpc.OrderServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    # --- carts ----------------------------------------------------------------------------
    async def CreateCart(
        self, request: pb.CreateCartRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateCartResponse:
        caller = caller_for(CreateCart)
        body = decode(schemas.CreateCartIn, request, drop=("idempotency_key",))
        cart = await self.bus.handle(
            CreateCart(currency=body.currency), caller, idempotency_key=_key(request)
        )
        return to_message(pb.CreateCartResponse, cart=cart)

    async def SetCartItem(
        self, request: pb.SetCartItemRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetCartItemResponse:
        caller = caller_for(SetCartItem)
        if not request.sku:
            raise Unprocessable("sku is required", code="validation-error")
        cart = await self.bus.handle(
            SetCartItem(cart_id=request.cart_id, sku=request.sku, quantity=request.quantity),
            caller,
        )
        return to_message(pb.SetCartItemResponse, cart=cart)

    async def GetCart(
        self, request: pb.GetCartRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCartResponse:
        cart = await self.bus.handle(GetCart(cart_id=request.cart_id), caller_for(GetCart))
        return to_message(pb.GetCartResponse, cart=cart)

    async def CheckoutCart(
        self, request: pb.CheckoutCartRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckoutCartResponse:
        caller = caller_for(CheckoutCart)
        body = decode(schemas.CheckoutCartIn, request, drop=("idempotency_key", "cart_id"))
        command = CheckoutCart(
            cart_id=request.cart_id,
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=client_of(body.client),
            **fraud_signals_of(body),
        )
        order = await self.bus.handle(command, caller, idempotency_key=_key(request))
        return to_message(pb.CheckoutCartResponse, order=order)

    # --- orders ---------------------------------------------------------------------------
    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.PlaceOrderResponse:
        caller = caller_for(PlaceOrder)
        body = decode(schemas.PlaceOrderIn, request, drop=("idempotency_key",))
        key = _key(request)
        command = PlaceOrder(
            customer_id=body.customer_id,
            currency=body.currency,
            lines=merged(body.lines),
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=client_of(body.client),
            **fraud_signals_of(body),
        )
        order = await self.bus.handle(command, caller, idempotency_key=key)
        return to_message(pb.PlaceOrderResponse, order=order)

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderResponse:
        order = await self.bus.handle(GetOrder(order_id=request.order_id), caller_for(GetOrder))
        return to_message(pb.GetOrderResponse, order=order)

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        query = ListOrders(
            status=request.status or None,
            limit=request.limit or None,
            cursor=request.cursor or None,
        )
        page = await self.bus.handle(query, caller_for(ListOrders))
        return to_message(pb.ListOrdersResponse, **page.model_dump(mode="json"))

    async def PayOrder(
        self, request: pb.PayOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.PayOrderResponse:
        caller = caller_for(PayOrder)
        body = decode(schemas.PaymentIn, request, drop=("idempotency_key", "order_id"))
        command = PayOrder(order_id=request.order_id, payment_token=body.payment_token)
        order = await self.bus.handle(command, caller, idempotency_key=_key(request))
        return to_message(pb.PayOrderResponse, order=order)

    async def CreateShipment(
        self, request: pb.CreateShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateShipmentResponse:
        caller = caller_for(CreateShipment)
        body = decode(schemas.ShipmentIn, request, drop=("idempotency_key", "order_id"))
        command = CreateShipment(
            order_id=request.order_id,
            lines=lines_of(body.lines) if body.lines else None,
            carrier=body.carrier,
            tracking_number=body.tracking_number,
        )
        order = await self.bus.handle(command, caller, idempotency_key=_key(request))
        return to_message(pb.CreateShipmentResponse, order=order)

    async def ConfirmDelivery(
        self, request: pb.ConfirmDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfirmDeliveryResponse:
        caller = caller_for(ConfirmDelivery)
        order = await self.bus.handle(ConfirmDelivery(order_id=request.order_id), caller)
        return to_message(pb.ConfirmDeliveryResponse, order=order)

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelOrderResponse:
        caller = caller_for(CancelOrder)
        body = decode(schemas.CancelIn, request, drop=("order_id",))
        command = CancelOrder(order_id=request.order_id, reason=body.reason)
        return to_message(pb.CancelOrderResponse, order=await self.bus.handle(command, caller))

    # --- returns --------------------------------------------------------------------------
    async def RequestReturn(
        self, request: pb.RequestReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.RequestReturnResponse:
        caller = caller_for(RequestReturn)
        body = decode(schemas.ReturnIn, request, drop=("idempotency_key", "order_id"))
        command = RequestReturn(
            order_id=request.order_id, lines=lines_of(body.lines), reason=body.reason
        )
        rma = await self.bus.handle(command, caller, idempotency_key=_key(request))
        return to_message(pb.RequestReturnResponse, **{"return": rma})

    async def GetReturn(
        self, request: pb.GetReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReturnResponse:
        rma = await self.bus.handle(GetReturn(return_id=request.return_id), caller_for(GetReturn))
        return to_message(pb.GetReturnResponse, **{"return": rma})

    async def ApproveReturn(
        self, request: pb.ApproveReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApproveReturnResponse:
        rma = await self.bus.handle(
            ApproveReturn(return_id=request.return_id), caller_for(ApproveReturn)
        )
        return to_message(pb.ApproveReturnResponse, **{"return": rma})

    async def RejectReturn(
        self, request: pb.RejectReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.RejectReturnResponse:
        command = RejectReturn(return_id=request.return_id, note=request.note)
        rma = await self.bus.handle(command, caller_for(RejectReturn))
        return to_message(pb.RejectReturnResponse, **{"return": rma})

    async def ReceiveReturn(
        self, request: pb.ReceiveReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveReturnResponse:
        caller = caller_for(ReceiveReturn)
        body = decode(schemas.ReceiveReturnIn, request, drop=("return_id",))
        command = ReceiveReturn(
            return_id=request.return_id,
            lines=[(line.sku, line.quantity, line.resellable) for line in body.lines],
            warehouse=body.warehouse or "",
        )
        rma = await self.bus.handle(command, caller)
        return to_message(pb.ReceiveReturnResponse, **{"return": rma})

    async def GetOrderKpis(
        self, request: pb.GetOrderKpisRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderKpisResponse:
        caller = caller_for(GetOrderKpis)
        query = GetOrderKpis(
            start=to_datetime(getattr(request, "from"), "from")
            if request.HasField("from")
            else None,
            end=to_datetime(request.to, "to") if request.HasField("to") else None,
        )
        kpis = await self.bus.handle(query, caller)
        return to_message(pb.GetOrderKpisResponse, **kpis.model_dump(mode="json", by_alias=True))

    # --- history import -------------------------------------------------------------------
    async def ImportOrders(
        self, request: pb.ImportOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportOrdersResponse:
        caller = caller_for(ImportOrders)
        body = decode(schemas.ImportOrdersIn, request)
        command = ImportOrders(
            orders=body.to_domain(), import_id=body.import_id, dry_run=body.dry_run
        )
        result = await self.bus.handle(command, caller)
        return to_message(pb.ImportOrdersResponse, **result.model_dump(mode="json"))
