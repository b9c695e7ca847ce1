"""REST request bodies (strict: JSON types as written, unknown fields refused); gRPC requests
are validated with the same models. Responses are the service layer's views (``views.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, StringConstraints

from ecomops_platform.strict import (
    CountryCode,
    CurrencyCode,
    IpAddress,
    Rfc3339Time,
    StrictRequestModel,
)

from ..domain.history import ImportedLine, ImportedOrder
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


#: An e-mail address as risk needs it: local@domain, no spaces, at most 320 characters.
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"),
]
#: A payment method token from the provider (never a card number: the platform refuses card
#: numbers anywhere in a request before the route).
PaymentToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]


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
    email: Email | None = Field(
        default=None, description="Customer e-mail for this order (sent to risk)."
    )
    billing_address: AddressIn | None = Field(
        default=None,
        description="Billing address, validated like the shipping address (sent to risk).",
    )
    payment_token: PaymentToken | None = Field(
        default=None,
        description=(
            "Token of the payment method the customer will pay with, from the payment "
            "provider. Only its fingerprint, derived by the provider, is sent to risk."
        ),
    )


class CheckoutCartIn(RequestModel):
    coupon_codes: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10
    )
    shipping_address: AddressIn
    client: ClientIn | None = None
    email: Email | None = Field(
        default=None, description="Customer e-mail for this order (sent to risk)."
    )
    billing_address: AddressIn | None = Field(
        default=None,
        description="Billing address, validated like the shipping address (sent to risk).",
    )
    payment_token: PaymentToken | None = Field(
        default=None,
        description=(
            "Token of the payment method the customer will pay with, from the payment "
            "provider. Only its fingerprint, derived by the provider, is sent to risk."
        ),
    )


class PaymentIn(RequestModel):
    payment_token: PaymentToken


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


def lines_of(lines: list[LineIn]) -> list[tuple[str, int]]:
    return [(line.sku, line.quantity) for line in lines]


def merged(lines: list[LineIn]) -> dict[str, int]:
    """Quantities per SKU (a SKU on two lines is ordered once, summed)."""
    out: dict[str, int] = {}
    for line in lines:
        out[line.sku] = out.get(line.sku, 0) + line.quantity
    return out


def client_of(client: ClientIn | None) -> dict[str, str]:
    return client.model_dump(exclude_none=True) if client else {}


def fraud_signals_of(body: PlaceOrderIn | CheckoutCartIn) -> dict[str, Any]:
    """The checkout's optional fraud signals as command fields (the same on REST and gRPC)."""
    return {
        "email": body.email,
        "billing_address": body.billing_address.model_dump() if body.billing_address else None,
        "payment_token": body.payment_token,
    }


# --- history import ---------------------------------------------------------------------------
class ImportedLineIn(RequestModel):
    sku: Sku
    quantity: Quantity
    unit_price_minor: StrictInt = Field(
        ge=0, le=10**10, description="Unit price in minor units of the currency", examples=[1999]
    )


class ImportedOrderIn(RequestModel):
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currency: Currency
    ordered_at: Rfc3339Time
    lines: list[ImportedLineIn] = Field(min_length=1, max_length=MAX_LINES)


class ImportOrdersIn(RequestModel):
    orders: list[ImportedOrderIn] = Field(
        min_length=1, max_length=1000, description="At most 1000 orders per request"
    )
    import_id: Annotated[str, StringConstraints(max_length=100)] = Field(
        default="", description="Names the import run (timeline notes, OrderImported events)"
    )
    dry_run: bool = Field(
        default=False,
        description="Validate and report what would be imported and any conflicts; store nothing",
    )

    def to_domain(self) -> tuple[ImportedOrder, ...]:
        return tuple(
            ImportedOrder(
                order_id=o.order_id,
                customer_id=o.customer_id,
                currency=o.currency,
                ordered_at=o.ordered_at,
                lines=tuple(
                    ImportedLine(ln.sku, ln.quantity, ln.unit_price_minor) for ln in o.lines
                ),
            )
            for o in self.orders
        )
