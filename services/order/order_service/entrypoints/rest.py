"""REST API under /v1: decode, call one handler, return its view. No business rules here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ecomops_platform.auth import Caller, Role
from ecomops_platform.cards import (
    CARD_NUMBER_DETAIL,
    card_number_refused,
    contains_card_number,
    find_card_number,
)
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import Unprocessable
from ecomops_platform.rest import require, stored_json
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey, Rfc3339Time

from ..service_layer import handlers
from ..service_layer.handlers import Deps
from ..service_layer.saga import CheckoutInput
from .schemas import (
    CancelIn,
    CartOut,
    CheckoutCartIn,
    ClientIn,
    CreateCartIn,
    KpisOut,
    OrderOut,
    OrderPage,
    PaymentIn,
    PlaceOrderIn,
    ReceiveReturnIn,
    RejectReturnIn,
    ReturnIn,
    ReturnOut,
    SetCartItemIn,
    ShipmentIn,
)

__all__ = ["CARD_NUMBER_DETAIL", "card_number_refused"]


def nul_refused() -> Unprocessable:
    return Unprocessable("NUL characters are not accepted in any field", code="nul-character")


async def refuse_card_numbers(request: Request) -> None:
    """PCI: a card number anywhere in the path, query or body → 422, before anything runs.
    NUL characters (which PostgreSQL text cannot hold) are refused here too."""
    path, query = unquote(request.url.path), unquote(request.url.query)
    if "\x00" in path or "\x00" in query:
        raise nul_refused()
    # The platform's screen (ecomops_platform.cards) already ran in the REST middleware; this
    # is order's own second look, with the same implementation (our hex ids are not flagged).
    if contains_card_number(path) or contains_card_number(query):
        raise card_number_refused()
    body = await request.body()
    if not body:
        return
    text = body.decode("utf-8", "replace")
    if "\x00" in text or "\\u0000" in text:
        raise nul_refused()
    try:
        found = find_card_number(json.loads(text))
    except ValueError:
        found = contains_card_number(text)
    if found:
        raise card_number_refused()


def _client(client: ClientIn | None) -> dict[str, Any]:
    return client.model_dump(exclude_none=True) if client else {}


Customer = Annotated[Caller, require(Role.CUSTOMER)]
Buyer = Annotated[Caller, require(Role.CUSTOMER, Role.PARTNER, Role.SERVICE)]
Anyone = Annotated[Caller, require(Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)]
Fulfiller = Annotated[Caller, require(Role.OPS, Role.PARTNER, Role.SERVICE)]
Staff = Annotated[Caller, require(Role.OPS, Role.SERVICE)]
CustomerOrOps = Annotated[Caller, require(Role.CUSTOMER, Role.OPS)]
Canceller = Annotated[Caller, require(Role.CUSTOMER, Role.OPS, Role.SERVICE)]


def build_router(uow_factory: Callable[[], UnitOfWork], deps: Deps) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["order"], dependencies=[Depends(refuse_card_numbers)])

    # --- carts ----------------------------------------------------------------------------
    @router.post(
        "/carts", status_code=201, response_model=CartOut, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def create_cart(body: CreateCartIn, key: RequiredIdempotencyKey, caller: Customer) -> Any:
        """Create an empty cart for the calling customer."""
        uow = uow_factory()

        async def action() -> tuple[int, Any]:
            return await handlers.create_cart(uow, deps, caller, currency=body.currency)

        status, stored, replayed = await handlers.idempotent(
            uow,
            caller=caller,
            operation="create_cart",
            key=key,
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return stored_json(status, stored, replayed=replayed)

    @router.put("/carts/{cart_id}/items/{sku}", response_model=CartOut)
    async def set_cart_item(
        cart_id: str, sku: str, body: SetCartItemIn, caller: CustomerOrOps
    ) -> Any:
        """Set the quantity of one SKU in the cart (0 removes it); returns the priced cart."""
        return await handlers.set_cart_item(
            uow_factory(), deps, caller, cart_id=cart_id, sku=sku, quantity=body.quantity
        )

    @router.get("/carts/{cart_id}", response_model=CartOut)
    async def get_cart(cart_id: str, caller: CustomerOrOps) -> Any:
        """The cart, priced through a pricing quote, with availability per line."""
        return await handlers.get_cart(uow_factory(), deps, caller, cart_id=cart_id)

    @router.post(
        "/carts/{cart_id}/checkout",
        status_code=201,
        response_model=OrderOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def checkout_cart(
        cart_id: str, body: CheckoutCartIn, key: RequiredIdempotencyKey, caller: Customer
    ) -> JSONResponse:
        """Place an order from the cart (same saga as POST /v1/orders)."""
        status, stored, replayed = await handlers.checkout_cart(
            uow_factory(),
            deps,
            caller,
            key=key,
            cart_id=cart_id,
            coupon_codes=list(body.coupon_codes),
            shipping_address=body.shipping_address.model_dump(),
            client=_client(body.client),
        )
        return stored_json(status, stored, replayed=replayed)

    # --- orders ---------------------------------------------------------------------------
    @router.post(
        "/orders", status_code=201, response_model=OrderOut, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def place_order(
        body: PlaceOrderIn, key: RequiredIdempotencyKey, caller: Buyer
    ) -> JSONResponse:
        """Checkout: quote, risk assessment, stock reservation, then the order is stored.

        201 awaiting_payment or in_review; 422 `order-rejected`; 409 `out-of-stock` with
        `shortages`; 503 with Retry-After when a dependency is unavailable.
        """
        customer_id = handlers.resolve_customer(caller, body.customer_id)
        status, stored, replayed = await handlers.place_order(
            uow_factory(),
            deps,
            caller,
            key=key,
            customer_id=customer_id,
            data=CheckoutInput(
                currency=body.currency,
                lines=_merge(body),
                shipping_address=body.shipping_address.model_dump(),
                coupon_codes=list(body.coupon_codes),
                client=_client(body.client),
            ),
        )
        return stored_json(status, stored, replayed=replayed)

    @router.get("/orders/kpis", response_model=KpisOut)
    async def get_order_kpis(
        caller: Staff,
        from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
        to: Annotated[Rfc3339Time | None, Query()] = None,
    ) -> Any:
        """Orders, GMV, average order value, repurchase, cancellation, return and cart
        abandonment rates over [from, to) (default: the last 30 days)."""
        return await handlers.order_kpis(uow_factory(), deps, start=from_, end=to)

    @router.get("/orders", response_model=OrderPage)
    async def list_orders(
        caller: Anyone,
        status: str | None = None,
        limit: Annotated[int | None, Query()] = None,
        cursor: str | None = None,
    ) -> Any:
        """Orders, newest first (customers: their own)."""
        return await handlers.list_orders(
            uow_factory(), caller, status=status, limit=limit, cursor=cursor
        )

    @router.get("/orders/{order_id}", response_model=OrderOut)
    async def get_order(order_id: str, caller: Anyone) -> Any:
        """One order with its timeline."""
        return await handlers.get_order(uow_factory(), caller, order_id=order_id)

    @router.post(
        "/orders/{order_id}/payments",
        status_code=201,
        response_model=OrderOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def pay_order(
        order_id: str, body: PaymentIn, key: RequiredIdempotencyKey, caller: Buyer
    ) -> JSONResponse:
        """Pay with a payment token (402 when declined; the order stays payable)."""
        status, stored, replayed = await handlers.pay_order(
            uow_factory(), deps, caller, key=key, order_id=order_id, token=body.payment_token
        )
        return stored_json(status, stored, replayed=replayed)

    @router.post(
        "/orders/{order_id}/shipments",
        status_code=201,
        response_model=OrderOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_shipment(
        order_id: str, body: ShipmentIn, key: RequiredIdempotencyKey, caller: Fulfiller
    ) -> JSONResponse:
        """Record a shipment (all lines left, or the lines given: partial shipments)."""
        status, stored, replayed = await handlers.create_shipment(
            uow_factory(),
            deps,
            caller,
            key=key,
            order_id=order_id,
            lines=[(line.sku, line.quantity) for line in body.lines] if body.lines else None,
            carrier=body.carrier,
            tracking_number=body.tracking_number,
        )
        return stored_json(status, stored, replayed=replayed)

    @router.post("/orders/{order_id}/delivery", response_model=OrderOut)
    async def confirm_delivery(order_id: str, caller: Fulfiller) -> Any:
        """Record delivery of a shipped order."""
        return await handlers.confirm_delivery(uow_factory(), deps, caller, order_id=order_id)

    @router.post("/orders/{order_id}/cancel", response_model=OrderOut)
    async def cancel_order(order_id: str, body: CancelIn, caller: Canceller) -> Any:
        """Cancel: customers before shipment, ops before delivery; a paid order is refunded."""
        return await handlers.cancel_order(
            uow_factory(), deps, caller, order_id=order_id, reason=body.reason
        )

    @router.post(
        "/orders/{order_id}/returns",
        status_code=201,
        response_model=ReturnOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def request_return(
        order_id: str, body: ReturnIn, key: RequiredIdempotencyKey, caller: CustomerOrOps
    ) -> JSONResponse:
        """Ask to return lines of a delivered order, within the return window (RMA)."""
        status, stored, replayed = await handlers.request_return(
            uow_factory(),
            deps,
            caller,
            key=key,
            order_id=order_id,
            lines=[(line.sku, line.quantity) for line in body.lines],
            reason=body.reason,
        )
        return stored_json(status, stored, replayed=replayed)

    # --- returns --------------------------------------------------------------------------
    @router.get("/returns/{return_id}", response_model=ReturnOut)
    async def get_return(return_id: str, caller: CustomerOrOps) -> Any:
        """One return (RMA)."""
        return await handlers.get_return(uow_factory(), caller, return_id=return_id)

    @router.post("/returns/{return_id}/approve", response_model=ReturnOut)
    async def approve_return(return_id: str, caller: Staff) -> Any:
        """Approve a requested return."""
        return await handlers.decide_return(
            uow_factory(), deps, caller, return_id=return_id, approve=True
        )

    @router.post("/returns/{return_id}/reject", response_model=ReturnOut)
    async def reject_return(
        return_id: str, caller: Staff, body: RejectReturnIn | None = None
    ) -> Any:
        """Reject a requested return."""
        return await handlers.decide_return(
            uow_factory(),
            deps,
            caller,
            return_id=return_id,
            approve=False,
            note=body.note if body else "",
        )

    @router.post("/returns/{return_id}/receive", response_model=ReturnOut)
    async def receive_return(return_id: str, body: ReceiveReturnIn, caller: Staff) -> Any:
        """Goods received: refund, ReturnReceived (inventory restocks resellable lines)."""
        return await handlers.receive_return(
            uow_factory(),
            deps,
            caller,
            return_id=return_id,
            lines=[(line.sku, line.quantity, line.resellable) for line in body.lines],
            warehouse=body.warehouse or "",
        )

    return router


def _merge(body: PlaceOrderIn) -> dict[str, int]:
    merged: dict[str, int] = {}
    for line in body.lines:
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    return merged
