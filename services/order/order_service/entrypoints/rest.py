"""REST API under /v1: decode the request into a message, hand it to the bus, return its view.

Roles are the messages' (``allowed(Message)``, checked before the body is read); the
Idempotency-Key, ownership and the mapping of errors are the bus's and the platform's. Card
numbers, duplicate credentials and NUL characters in the path or query are refused by the
platform's screen before any route runs; :func:`refuse_nul_body` adds order's one check the
platform does not make.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from ecomops_platform.auth import Caller
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.rest import allowed, replayed
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey, Rfc3339Time

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
from ..service_layer.views import (
    CartView,
    ImportResultView,
    KpisView,
    OrderPage,
    OrderView,
    ReturnView,
)
from .schemas import (
    CancelIn,
    CheckoutCartIn,
    CreateCartIn,
    ImportOrdersIn,
    PaymentIn,
    PlaceOrderIn,
    ReceiveReturnIn,
    RejectReturnIn,
    ReturnIn,
    SetCartItemIn,
    ShipmentIn,
    client_of,
    fraud_signals_of,
    lines_of,
    merged,
)

Bus = MessageBus[OrderUnitOfWork, Deps]


def nul_refused() -> Unprocessable:
    return Unprocessable("NUL characters are not accepted in any field", code="nul-character")


async def refuse_nul_body(request: Request) -> None:
    """A NUL character in the body (raw or as ``\\u0000``; PostgreSQL text cannot hold it) →
    422 ``nul-character`` before the body is parsed. (The platform refuses NUL in the path and
    query, and card numbers anywhere, before the route.)"""
    body = await request.body()
    if body and (b"\x00" in body or b"\\u0000" in body):
        raise nul_refused()


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["order"], dependencies=[Depends(refuse_nul_body)])

    # --- carts ----------------------------------------------------------------------------
    @router.post(
        "/carts", status_code=201, response_model=CartView, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def create_cart(
        body: CreateCartIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CreateCart)],
    ) -> CartView:
        """Create an empty cart for the calling customer."""
        outcome = await bus.execute(CreateCart(currency=body.currency), caller, idempotency_key=key)
        return replayed(outcome, response)

    @router.put("/carts/{cart_id}/items/{sku}", response_model=CartView)
    async def set_cart_item(
        cart_id: str,
        sku: str,
        body: SetCartItemIn,
        caller: Annotated[Caller, allowed(SetCartItem)],
    ) -> CartView:
        """Set the quantity of one SKU in the cart (0 removes it); returns the priced cart."""
        return await bus.handle(
            SetCartItem(cart_id=cart_id, sku=sku, quantity=body.quantity), caller
        )

    @router.get("/carts/{cart_id}", response_model=CartView)
    async def get_cart(cart_id: str, caller: Annotated[Caller, allowed(GetCart)]) -> CartView:
        """The cart, priced through a pricing quote, with availability per line."""
        return await bus.handle(GetCart(cart_id=cart_id), caller)

    @router.post(
        "/carts/{cart_id}/checkout",
        status_code=201,
        response_model=OrderView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def checkout_cart(
        cart_id: str,
        body: CheckoutCartIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CheckoutCart)],
    ) -> OrderView:
        """Place an order from the cart (same saga as POST /v1/orders)."""
        command = CheckoutCart(
            cart_id=cart_id,
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=client_of(body.client),
            **fraud_signals_of(body),
        )
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    # --- orders ---------------------------------------------------------------------------
    @router.post(
        "/orders", status_code=201, response_model=OrderView, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def place_order(
        body: PlaceOrderIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(PlaceOrder)],
    ) -> OrderView:
        """Checkout: quote, risk assessment, stock reservation, then the order is stored.

        201 awaiting_payment or in_review; 422 `order-rejected`; 409 `out-of-stock` with
        `shortages`; 503 with Retry-After when a dependency is unavailable.
        """
        command = PlaceOrder(
            customer_id=body.customer_id,
            currency=body.currency,
            lines=merged(body.lines),
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=client_of(body.client),
            **fraud_signals_of(body),
        )
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    @router.post("/order-imports", response_model=ImportResultView)
    async def import_orders(
        body: ImportOrdersIn, caller: Annotated[Caller, allowed(ImportOrders)]
    ) -> ImportResultView:
        """Import historical orders (ops; `ecomops import orders --csv FILE` sends them): each
        is stored once per order id as a delivered order that took no stock, payment or risk
        decision, and announced with OrderImported. A batch is validated whole (422, nothing
        stored) and written in one transaction; a re-sent order is skipped; an id used by a
        live order, or imported before with other facts, is a conflict and nothing of the batch
        is stored. ``dry_run`` stores nothing and says what would happen. Safe to retry without
        an Idempotency-Key."""
        command = ImportOrders(
            orders=body.to_domain(), import_id=body.import_id, dry_run=body.dry_run
        )
        return await bus.handle(command, caller)

    @router.get("/orders/kpis", response_model=KpisView)
    async def get_order_kpis(
        caller: Annotated[Caller, allowed(GetOrderKpis)],
        from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
        to: Annotated[Rfc3339Time | None, Query()] = None,
    ) -> KpisView:
        """Orders, GMV, average order value, repurchase, cancellation, return and cart
        abandonment rates over [from, to) (default: the last 30 days)."""
        return await bus.handle(GetOrderKpis(start=from_, end=to), caller)

    @router.get("/orders", response_model=OrderPage)
    async def list_orders(
        caller: Annotated[Caller, allowed(ListOrders)],
        status: str | None = None,
        limit: Annotated[int | None, Query()] = None,
        cursor: str | None = None,
    ) -> OrderPage:
        """Orders, newest first (customers: their own)."""
        return await bus.handle(ListOrders(status=status, limit=limit, cursor=cursor), caller)

    @router.get("/orders/{order_id}", response_model=OrderView)
    async def get_order(order_id: str, caller: Annotated[Caller, allowed(GetOrder)]) -> OrderView:
        """One order with its timeline."""
        return await bus.handle(GetOrder(order_id=order_id), caller)

    @router.post(
        "/orders/{order_id}/payments",
        status_code=201,
        response_model=OrderView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def pay_order(
        order_id: str,
        body: PaymentIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(PayOrder)],
    ) -> OrderView:
        """Pay with a payment token (402 when declined; the order stays payable)."""
        command = PayOrder(order_id=order_id, payment_token=body.payment_token)
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    @router.post(
        "/orders/{order_id}/shipments",
        status_code=201,
        response_model=OrderView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_shipment(
        order_id: str,
        body: ShipmentIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CreateShipment)],
    ) -> OrderView:
        """Record a shipment (all lines left, or the lines given: partial shipments)."""
        command = CreateShipment(
            order_id=order_id,
            lines=lines_of(body.lines) if body.lines else None,
            carrier=body.carrier,
            tracking_number=body.tracking_number,
        )
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    @router.post("/orders/{order_id}/delivery", response_model=OrderView)
    async def confirm_delivery(
        order_id: str, caller: Annotated[Caller, allowed(ConfirmDelivery)]
    ) -> OrderView:
        """Record delivery of a shipped order."""
        return await bus.handle(ConfirmDelivery(order_id=order_id), caller)

    @router.post("/orders/{order_id}/cancel", response_model=OrderView)
    async def cancel_order(
        order_id: str, body: CancelIn, caller: Annotated[Caller, allowed(CancelOrder)]
    ) -> OrderView:
        """Cancel: customers before shipment, ops before delivery; a paid order is refunded."""
        return await bus.handle(CancelOrder(order_id=order_id, reason=body.reason), caller)

    @router.post(
        "/orders/{order_id}/returns",
        status_code=201,
        response_model=ReturnView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def request_return(
        order_id: str,
        body: ReturnIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(RequestReturn)],
    ) -> ReturnView:
        """Ask to return lines of a delivered order, within the return window (RMA)."""
        command = RequestReturn(order_id=order_id, lines=lines_of(body.lines), reason=body.reason)
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    # --- returns --------------------------------------------------------------------------
    @router.get("/returns/{return_id}", response_model=ReturnView)
    async def get_return(
        return_id: str, caller: Annotated[Caller, allowed(GetReturn)]
    ) -> ReturnView:
        """One return (RMA)."""
        return await bus.handle(GetReturn(return_id=return_id), caller)

    @router.post("/returns/{return_id}/approve", response_model=ReturnView)
    async def approve_return(
        return_id: str, caller: Annotated[Caller, allowed(ApproveReturn)]
    ) -> ReturnView:
        """Approve a requested return."""
        return await bus.handle(ApproveReturn(return_id=return_id), caller)

    @router.post("/returns/{return_id}/reject", response_model=ReturnView)
    async def reject_return(
        return_id: str,
        caller: Annotated[Caller, allowed(RejectReturn)],
        body: RejectReturnIn | None = None,
    ) -> ReturnView:
        """Reject a requested return."""
        note = body.note if body else ""
        return await bus.handle(RejectReturn(return_id=return_id, note=note), caller)

    @router.post("/returns/{return_id}/receive", response_model=ReturnView)
    async def receive_return(
        return_id: str, body: ReceiveReturnIn, caller: Annotated[Caller, allowed(ReceiveReturn)]
    ) -> ReturnView:
        """Goods received: refund, ReturnReceived (inventory restocks resellable lines)."""
        command = ReceiveReturn(
            return_id=return_id,
            lines=[(line.sku, line.quantity, line.resellable) for line in body.lines],
            warehouse=body.warehouse or "",
        )
        return await bus.handle(command, caller)

    return router
