"""REST request and response models (separate from the tables and the domain)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from ecomops_platform.strict import CountryCode, CurrencyCode, IpAddress, StrictRequestModel

from ..domain.models import MAX_LINE_QUANTITY, MAX_LINES

Currency = CurrencyCode
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Country = CountryCode
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Units of one SKU on a line: 1..1000 (pricing quotes the same range).
Quantity = Annotated[
    StrictInt, Field(gt=0, le=MAX_LINE_QUANTITY, description="Units, 1..1000", examples=[2])
]


class RequestModel(StrictRequestModel):
    """Request bodies are strict: JSON types as written (no "1" or true for 1), unknown fields
    refused."""


# --- requests -------------------------------------------------------------------------------
class CreateCartIn(RequestModel):
    currency: Currency | None = None


class SetCartItemIn(RequestModel):
    quantity: StrictInt = Field(
        ge=0, le=MAX_LINE_QUANTITY, description="Units, 0 (remove) .. 1000", examples=[1]
    )


class LineIn(RequestModel):
    sku: Sku
    quantity: Quantity


class AddressIn(RequestModel):
    name: ShortText
    line1: ShortText
    city: ShortText
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Country


class ClientIn(RequestModel):
    ip: IpAddress | None = None
    device_id: Annotated[str, StringConstraints(max_length=200)] | None = None


class PlaceOrderIn(RequestModel):
    currency: Currency
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    coupon_codes: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10
    )
    shipping_address: AddressIn
    client: ClientIn | None = None
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="For partners and ops placing an order for a customer; customers omit it.",
    )


class CheckoutCartIn(RequestModel):
    coupon_codes: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10
    )
    shipping_address: AddressIn
    client: ClientIn | None = None


class PaymentIn(RequestModel):
    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ShipmentIn(RequestModel):
    lines: list[LineIn] | None = Field(default=None, max_length=100)
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_number: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CancelIn(RequestModel):
    reason: Annotated[str, StringConstraints(max_length=200)] = ""


class ReturnIn(RequestModel):
    lines: list[LineIn] = Field(min_length=1, max_length=100)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class RejectReturnIn(RequestModel):
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class ReceivedLineIn(RequestModel):
    sku: Sku
    quantity: Quantity
    resellable: bool


class ReceiveReturnIn(RequestModel):
    lines: list[ReceivedLineIn] = Field(min_length=1, max_length=100)
    warehouse: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description=(
            "Warehouse that received the goods (default: inventory's configured return "
            "warehouse, else the warehouses the units were shipped from)."
        ),
    )


# --- responses ------------------------------------------------------------------------------
class CartLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    available: bool | None
    available_quantity: int | None
    sellable: bool = Field(
        default=True,
        description="False when pricing no longer sells this SKU (discontinued, unpriced): the "
        "line is shown at 0 and checkout refuses it until it is removed",
    )


class CartOut(BaseModel):
    cart_id: str
    customer_id: str
    currency: str
    status: str
    lines: list[CartLineOut]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    quote_id: str | None
    created_at: str
    updated_at: str
    order_id: str | None


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    shipped_quantity: int
    returned_quantity: int


class AddressOut(BaseModel):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


class PaymentOut(BaseModel):
    payment_id: str
    last4: str | None
    paid_at: str | None


class ShipmentLineOut(BaseModel):
    sku: str
    quantity: int


class ShipmentOut(BaseModel):
    shipment_id: str
    carrier: str
    tracking_number: str
    lines: list[ShipmentLineOut]
    shipped_at: str | None


class TimelineOut(BaseModel):
    status: str
    at: str | None
    actor: str = Field(
        description='Who acted ("ops:<id>", "customer:<id>", "system"); customers and partners '
        'see the role only ("ops")'
    )
    note: str


class RiskReasonOut(BaseModel):
    code: str
    detail: str


class RiskOut(BaseModel):
    assessment_id: str
    decision: str
    reasons: list[RiskReasonOut]


class OrderOut(BaseModel):
    order_id: str
    customer_id: str
    status: str
    currency: str
    lines: list[OrderLineOut]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    coupon_codes: list[str]
    shipping_address: AddressOut
    payment_due_at: str | None
    placed_at: str | None
    payment: PaymentOut | None
    shipments: list[ShipmentOut]
    timeline: list[TimelineOut]
    refunded_minor: int
    cancel_reason: str | None
    quote_id: str
    cart_id: str | None
    delivered_at: str | None
    risk: RiskOut | None = Field(description="Risk assessment; ops and services only.")


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class ReceivedLineOut(BaseModel):
    sku: str
    quantity: int
    resellable: bool


class ReturnOut(BaseModel):
    return_id: str
    order_id: str
    customer_id: str
    status: str
    lines: list[ShipmentLineOut]
    reason: str
    requested_at: str | None
    decided_at: str | None
    received_at: str | None
    received_lines: list[ReceivedLineOut]
    refunded_minor: int
    currency: str


class CurrencyAmountOut(BaseModel):
    currency: str
    amount_minor: int


class KpisOut(BaseModel):
    model_config = {"populate_by_name": True}

    from_: str = Field(alias="from")
    to: str
    orders: int
    paid_orders: int
    gmv: list[CurrencyAmountOut]
    average_order_value: list[CurrencyAmountOut]
    repurchase_rate: str
    cancellation_rate: str
    return_rate: str
    cart_abandonment_rate: str
