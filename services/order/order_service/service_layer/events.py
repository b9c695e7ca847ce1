"""Domain → protobuf: the events the order service publishes on ``ecomops.order.v1``.

Here rather than in ``adapters/``: handlers build the events they record in the unit of work,
and the service layer imports no adapters (protobuf messages are contracts, not adapters)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ecomops.order.v1 import events_pb2
from ecomops_platform.timestamps import optional_timestamp as ts

from ..domain.models import Order


def _lines(order: Order) -> list[events_pb2.OrderLine]:
    return [
        events_pb2.OrderLine(
            sku=line.sku,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            total_minor=line.total_minor,
        )
        for line in order.lines
    ]


def _quantities(lines: Iterable[tuple[str, int]]) -> list[events_pb2.LineQuantity]:
    return [events_pb2.LineQuantity(sku=sku, quantity=qty) for sku, qty in lines]


def order_placed(
    order: Order,
    *,
    quote_id: str,
    coupon_codes: list[str],
    client: dict[str, str],
    shipping_country: str,
    assessment_id: str,
) -> events_pb2.OrderPlaced:
    return events_pb2.OrderPlaced(
        order_id=order.order_id,
        customer_id=order.customer_id,
        currency=order.currency,
        lines=_lines(order),
        subtotal_minor=order.subtotal_minor,
        discount_total_minor=order.discount_total_minor,
        total_minor=order.total_minor,
        status=order.status.value,
        quote_id=quote_id,
        coupon_codes=coupon_codes,
        client=events_pb2.ClientContext(
            ip=str(client.get("ip") or ""), device_id=str(client.get("device_id") or "")
        ),
        shipping_country=shipping_country,
        placed_at=ts(order.placed_at),
        assessment_id=assessment_id,
        payment_due_at=ts(order.payment_due_at),
    )


def order_rejected(order: Order, *, assessment_id: str) -> events_pb2.OrderRejected:
    return events_pb2.OrderRejected(
        order_id=order.order_id,
        customer_id=order.customer_id,
        total_minor=order.total_minor,
        currency=order.currency,
        assessment_id=assessment_id,
        rejected_at=ts(order.placed_at),
    )


def order_paid(
    order: Order, *, payment_id: str, fingerprint: str, at: datetime
) -> events_pb2.OrderPaid:
    return events_pb2.OrderPaid(
        order_id=order.order_id,
        customer_id=order.customer_id,
        currency=order.currency,
        total_minor=order.total_minor,
        lines=_lines(order),
        payment_id=payment_id,
        payment_fingerprint=fingerprint,
        paid_at=ts(at),
    )


def order_cancelled(
    order: Order, *, reason: str, quote_id: str, was_paid: bool, refunded: int, at: datetime
) -> events_pb2.OrderCancelled:
    return events_pb2.OrderCancelled(
        order_id=order.order_id,
        customer_id=order.customer_id,
        reason=reason,
        lines=_lines(order),
        quote_id=quote_id,
        was_paid=was_paid,
        refunded_minor=refunded,
        currency=order.currency,
        cancelled_at=ts(at),
    )


def order_shipped(
    order: Order,
    *,
    shipment_id: str,
    lines: dict[str, int],
    carrier: str,
    tracking_number: str,
    complete: bool,
    at: datetime,
) -> events_pb2.OrderShipped:
    return events_pb2.OrderShipped(
        order_id=order.order_id,
        shipment_id=shipment_id,
        lines=_quantities(lines.items()),
        carrier=carrier,
        tracking_number=tracking_number,
        complete=complete,
        shipped_at=ts(at),
    )


def order_delivered(order: Order, *, at: datetime) -> events_pb2.OrderDelivered:
    return events_pb2.OrderDelivered(
        order_id=order.order_id, customer_id=order.customer_id, delivered_at=ts(at)
    )


def return_requested(
    *,
    return_id: str,
    order: Order,
    lines: dict[str, int],
    reason: str,
    at: datetime,
) -> events_pb2.ReturnRequested:
    return events_pb2.ReturnRequested(
        return_id=return_id,
        order_id=order.order_id,
        customer_id=order.customer_id,
        lines=_quantities(lines.items()),
        reason=reason,
        requested_at=ts(at),
    )


def return_received(
    *,
    return_id: str,
    order: Order,
    lines: list[dict[str, Any]],
    refunded: int,
    at: datetime,
    warehouse: str = "",
) -> events_pb2.ReturnReceived:
    return events_pb2.ReturnReceived(
        return_id=return_id,
        order_id=order.order_id,
        customer_id=order.customer_id,
        lines=[
            events_pb2.ReturnedLine(
                sku=d["sku"], quantity=int(d["quantity"]), resellable=bool(d["resellable"])
            )
            for d in lines
        ],
        refunded_minor=refunded,
        currency=order.currency,
        warehouse=warehouse,
        received_at=ts(at),
    )


def order_refunded(
    order: Order, *, amount: int, refund_id: str, return_id: str, at: datetime
) -> events_pb2.OrderRefunded:
    return events_pb2.OrderRefunded(
        order_id=order.order_id,
        customer_id=order.customer_id,
        amount_minor=amount,
        currency=order.currency,
        refund_id=refund_id,
        return_id=return_id,
        refunded_at=ts(at),
    )


def cart_abandoned(
    *, cart_id: str, customer_id: str, lines: dict[str, int], last_activity_at: datetime
) -> events_pb2.CartAbandoned:
    return events_pb2.CartAbandoned(
        cart_id=cart_id,
        customer_id=customer_id,
        lines=_quantities(lines.items()),
        last_activity_at=ts(last_activity_at),
    )
