"""Read models the handlers return: what REST serialises (the same models are its response
models) and what gRPC copies into protobuf messages (field names are shared with the contract).

Times are RFC 3339 strings (``ecomops_platform.timestamps.iso``), money integer minor units.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ecomops_platform.timestamps import iso

from ..domain.models import Order, Return, actor_role
from .ports import CartRecord, OrderRecord, ShipmentRecord


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- carts ----------------------------------------------------------------------------------
class CartLineView(View):
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


class CartView(View):
    cart_id: str
    customer_id: str
    currency: str
    status: str
    lines: list[CartLineView]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    quote_id: str | None
    created_at: str
    updated_at: str
    order_id: str | None

    @classmethod
    def unpriced(cls, cart: CartRecord) -> CartView:
        """The cart without lines or prices (an empty cart, before pricing is asked)."""
        return cls(
            cart_id=cart.cart_id,
            customer_id=cart.customer_id,
            currency=cart.currency,
            status=cart.status,
            lines=[],
            subtotal_minor=0,
            discount_total_minor=0,
            total_minor=0,
            quote_id=None,
            created_at=str(iso(cart.created_at)),
            updated_at=str(iso(cart.updated_at)),
            order_id=cart.order_id,
        )


# --- orders ---------------------------------------------------------------------------------
class OrderLineView(View):
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    shipped_quantity: int
    returned_quantity: int


class AddressView(View):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


class PaymentView(View):
    payment_id: str
    last4: str | None
    paid_at: str | None


class ShipmentLineView(View):
    sku: str
    quantity: int


class ShipmentView(View):
    shipment_id: str
    carrier: str
    tracking_number: str
    lines: list[ShipmentLineView]
    shipped_at: str | None


class TimelineView(View):
    status: str
    at: str | None
    actor: str = Field(
        description='Who acted ("ops:<id>", "customer:<id>", "system"); customers and partners '
        'see the role only ("ops")'
    )
    note: str


class RiskReasonView(View):
    code: str
    detail: str


class RiskView(View):
    assessment_id: str
    decision: str
    reasons: list[RiskReasonView]


class OrderView(View):
    order_id: str
    customer_id: str
    status: str
    currency: str
    lines: list[OrderLineView]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    coupon_codes: list[str]
    shipping_address: AddressView
    payment_due_at: str | None
    placed_at: str | None
    payment: PaymentView | None
    shipments: list[ShipmentView]
    timeline: list[TimelineView]
    refunded_minor: int
    cancel_reason: str | None
    quote_id: str
    cart_id: str | None
    delivered_at: str | None
    risk: RiskView | None = Field(description="Risk assessment; ops and services only.")

    @classmethod
    def of(cls, record: OrderRecord, shipments: list[ShipmentRecord], *, staff: bool) -> OrderView:
        """The order as its caller sees it: staff see who acted and the risk assessment,
        customers and partners the actors' roles only."""
        order: Order = record.order
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            status=order.status.value,
            currency=order.currency,
            lines=[OrderLineView(**line.as_dict()) for line in order.lines],
            subtotal_minor=order.subtotal_minor,
            discount_total_minor=order.discount_total_minor,
            total_minor=order.total_minor,
            coupon_codes=list(record.coupon_codes),
            shipping_address=AddressView.model_validate(record.shipping_address),
            payment_due_at=iso(order.payment_due_at),
            placed_at=iso(order.placed_at),
            payment=(
                PaymentView(
                    payment_id=record.payment_id,
                    last4=record.payment_last4,
                    paid_at=iso(record.paid_at),
                )
                if record.payment_id
                else None
            ),
            shipments=[
                ShipmentView(
                    shipment_id=s.shipment_id,
                    carrier=s.carrier,
                    tracking_number=s.tracking_number,
                    lines=[ShipmentLineView.model_validate(line) for line in s.lines],
                    shipped_at=iso(s.shipped_at),
                )
                for s in shipments
            ],
            timeline=[
                TimelineView(
                    status=e.status,
                    at=iso(e.at),
                    actor=e.actor if staff else actor_role(e.actor),
                    note=e.note,
                )
                for e in order.timeline
            ],
            refunded_minor=order.refunded_minor,
            cancel_reason=record.cancel_reason,
            quote_id=record.quote_id,
            cart_id=record.cart_id,
            delivered_at=iso(order.delivered_at),
            risk=(
                RiskView(
                    assessment_id=record.assessment_id,
                    decision=record.risk_decision,
                    reasons=[RiskReasonView.model_validate(r) for r in record.risk_reasons],
                )
                if staff
                else None
            ),
        )


class OrderPage(View):
    items: list[OrderView]
    next_cursor: str | None


# --- returns --------------------------------------------------------------------------------
class ReceivedLineView(View):
    sku: str
    quantity: int
    resellable: bool


class ReturnView(View):
    return_id: str
    order_id: str
    customer_id: str
    status: str
    lines: list[ShipmentLineView]
    reason: str
    requested_at: str | None
    decided_at: str | None
    received_at: str | None
    received_lines: list[ReceivedLineView]
    refunded_minor: int
    currency: str

    @classmethod
    def of(cls, rma: Return, currency: str) -> ReturnView:
        return cls(
            return_id=rma.return_id,
            order_id=rma.order_id,
            customer_id=rma.customer_id,
            status=rma.status.value,
            lines=[ShipmentLineView(sku=k, quantity=v) for k, v in rma.lines.items()],
            reason=rma.reason,
            requested_at=iso(rma.requested_at),
            decided_at=iso(rma.decided_at),
            received_at=iso(rma.received_at),
            received_lines=[ReceivedLineView.model_validate(d) for d in rma.received_lines],
            refunded_minor=rma.refunded_minor,
            currency=currency,
        )


# --- KPIs -----------------------------------------------------------------------------------
class CurrencyAmountView(View):
    currency: str
    amount_minor: int


class KpisView(View):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    orders: int
    paid_orders: int
    gmv: list[CurrencyAmountView]
    average_order_value: list[CurrencyAmountView]
    repurchase_rate: str
    cancellation_rate: str
    return_rate: str
    cart_abandonment_rate: str


# --- history import -------------------------------------------------------------------------
class ImportConflictView(View):
    order_id: str
    reason: str


class ImportResultView(View):
    """What a batch of ``POST /v1/orders/imports`` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    imported: int = Field(description="orders stored by this request")
    to_import: int = Field(description="dry run: orders that would be stored")
    already_imported: int = Field(description="orders skipped: imported before, same facts")
    conflicts: list[ImportConflictView] = Field(
        description="ids already used by a live order or by an imported order with other "
        "facts; when any, nothing of the batch is stored"
    )
