"""Use cases of the order service: one function per use case, inside one unit of work.

REST and gRPC call the same functions and get the same JSON-ready views back. Handlers that
create something run inside ``run_idempotent`` (see :func:`idempotent`), so the stored response,
the state change and the outbox events commit together.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa

from ecomops.risk.v1 import events_pb2 as risk_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import (
    PROBLEM_BASE,
    Conflict,
    NotFound,
    Unprocessable,
)
from ecomops_platform.events import Envelope
from ecomops_platform.idempotency import run_idempotent
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..adapters import events as ev
from ..adapters import repository as repo_mod
from ..adapters.repository import OrderRepository, iso, order_view
from ..adapters.tables import cart_items, carts, orders, returns
from ..domain.models import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    Order,
    OrderStatus,
    Return,
    ReturnStatus,
    actor_of,
    merge_quantities,
)
from ..settings import OrderSettings
from .ports import Ports
from .saga import CheckoutInput, SagaOutcome, run_checkout_saga

log = logging.getLogger("order_service")

ORDER_ID_NAMESPACE = uuid.UUID("6b1d8f1e-0c55-4d6e-9a61-0e2c1f9a7d31")
REJECTED_DETAIL = "We could not accept this order. Please contact customer service."


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: OrderSettings
    ports: Ports
    clock: Callable[[], datetime] = utcnow


def order_id_for(caller: Caller, operation: str, key: str) -> str:
    """One order id per idempotent request: a retry reuses the hold and redemption it made."""
    return uuid.uuid5(ORDER_ID_NAMESPACE, f"{caller.subject}|{operation}|{key}").hex


def resolve_customer(caller: Caller, requested: str | None) -> str:
    """Customers order for themselves; partners (marketplaces) and ops name the customer."""
    if caller.is_customer:
        if requested not in (None, "", caller.subject):
            raise Unprocessable(
                "customers place orders for themselves only", code="invalid-customer"
            )
        return caller.subject
    return requested or caller.subject


def _actor(caller: Caller) -> str:
    return actor_of(caller.role.value, caller.subject)


def _owned(caller: Caller, owner: str, what: str, ident: str) -> None:
    if not caller.may_see(owner):
        raise NotFound(f"{what} {ident} not found")


async def idempotent(
    uow: UnitOfWork,
    *,
    caller: Caller,
    operation: str,
    key: str,
    payload: Any,
    action: Callable[[], Awaitable[tuple[int, Any]]],
) -> tuple[int, Any, bool]:
    stored = await run_idempotent(
        uow, caller=caller.subject, operation=operation, key=key, payload=payload, action=action
    )
    return stored.status_code, stored.body, stored.replayed


# --- carts ----------------------------------------------------------------------------------
async def create_cart(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, currency: str | None
) -> tuple[int, dict[str, Any]]:
    cart_id = uuid.uuid4().hex
    now = deps.clock()
    async with uow:
        await repo_mod.add_cart(
            uow.session,
            cart_id=cart_id,
            customer_id=caller.subject,
            currency=currency or deps.settings.default_currency,
            now=now,
        )
        await uow.commit()
    return 201, {
        "cart_id": cart_id,
        "customer_id": caller.subject,
        "currency": currency or deps.settings.default_currency,
        "status": "open",
        "lines": [],
        "subtotal_minor": 0,
        "discount_total_minor": 0,
        "total_minor": 0,
        "quote_id": None,
        "created_at": iso(now),
        "updated_at": iso(now),
        "order_id": None,
    }


async def _load_cart(uow: UnitOfWork, caller: Caller, cart_id: str, *, for_update: bool) -> Any:
    row = await repo_mod.get_cart(uow.session, cart_id, for_update=for_update)
    if row is None:
        raise NotFound(f"cart {cart_id} not found")
    _owned(caller, row.customer_id, "cart", cart_id)
    return row


async def set_cart_item(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, cart_id: str, sku: str, quantity: int
) -> dict[str, Any]:
    """Set one line. A refused line writes nothing: the SKU and quantity are priced by pricing
    (known, sellable, priced in the cart's currency, quantity within limits) before the line is
    stored, outside the cart's transaction (no lock held across the call)."""
    if not 0 <= quantity <= MAX_LINE_QUANTITY:
        raise Unprocessable(
            f"quantity must be between 0 (remove) and {MAX_LINE_QUANTITY}",
            code="invalid-quantity",
        )
    if not 1 <= len(sku) <= 100:
        raise Unprocessable("sku must be 1..100 characters", code="invalid-sku")
    async with uow:
        row = await _load_cart(uow, caller, cart_id, for_update=False)
        _cart_open(row, cart_id)
        current = await repo_mod.cart_lines(uow.session, cart_id)
    if quantity > 0:
        _room_for(current, sku, cart_id)
        await deps.ports.pricing.create_quote(
            customer_id=row.customer_id,
            currency=row.currency,
            lines={sku: quantity},
            coupon_codes=[],
        )
    async with uow:
        row = await _load_cart(uow, caller, cart_id, for_update=True)
        _cart_open(row, cart_id)
        if quantity > 0:
            _room_for(await repo_mod.cart_lines(uow.session, cart_id), sku, cart_id)
        await repo_mod.set_cart_item(
            uow.session, cart_id=cart_id, sku=sku, quantity=quantity, now=deps.clock()
        )
        await uow.commit()
    return await get_cart(uow, deps, caller, cart_id=cart_id)


def _cart_open(row: Any, cart_id: str) -> None:
    if row.status != "open":
        raise Conflict(
            f"cart {cart_id} is {row.status}", code="cart-closed", current_status=row.status
        )


def _room_for(lines: dict[str, int], sku: str, cart_id: str) -> None:
    if sku not in lines and len(lines) >= MAX_LINES:
        raise Unprocessable(
            f"cart {cart_id} holds {MAX_LINES} lines, the most a cart may hold",
            code="cart-full",
        )


_LINE_REFUSALS = {"unknown-sku", "sku-discontinued", "no-price"}


async def _quote_cart(deps: Deps, row: Any, lines: dict[str, int]) -> tuple[Any, set[str]]:
    """Price the cart; lines pricing refuses (a SKU discontinued or unpriced since it was
    added) are left out and reported, so that one bad line never blocks the cart."""
    refused: set[str] = set()
    while True:
        priced = {k: v for k, v in lines.items() if k not in refused}
        if not priced:
            return None, refused
        try:
            quote = await deps.ports.pricing.create_quote(
                customer_id=row.customer_id, currency=row.currency, lines=priced, coupon_codes=[]
            )
        except Unprocessable as exc:
            named = {str(s) for s in exc.extra.get("skus") or []} & set(priced)
            if exc.code not in _LINE_REFUSALS or not named:
                raise
            refused |= named
            continue
        return quote, refused


async def get_cart(uow: UnitOfWork, deps: Deps, caller: Caller, *, cart_id: str) -> dict[str, Any]:
    async with uow:
        row = await _load_cart(uow, caller, cart_id, for_update=False)
        lines = await repo_mod.cart_lines(uow.session, cart_id)
    view: dict[str, Any] = {
        "cart_id": row.id,
        "customer_id": row.customer_id,
        "currency": row.currency,
        "status": row.status,
        "lines": [],
        "subtotal_minor": 0,
        "discount_total_minor": 0,
        "total_minor": 0,
        "quote_id": None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "order_id": row.order_id,
    }
    if not lines:
        return view
    quote_task = _quote_cart(deps, row, lines)
    avail_task = deps.ports.inventory.availability(sorted(lines))
    priced, avail = await asyncio.gather(quote_task, avail_task, return_exceptions=True)
    if isinstance(priced, BaseException):
        raise priced
    quote, refused = priced
    available: dict[str, int] | None = None if isinstance(avail, BaseException) else avail
    by_sku = {line.sku: line for line in quote.lines} if quote is not None else {}
    for sku, quantity in lines.items():
        q = by_sku.get(sku)
        free = None if available is None else available.get(sku, 0)
        view["lines"].append(
            {
                "sku": sku,
                "quantity": quantity,
                "unit_price_minor": q.unit_price_minor if q else 0,
                "discount_minor": q.discount_minor if q else 0,
                "total_minor": q.total_minor if q else 0,
                "available": False
                if sku in refused
                else None
                if free is None
                else free >= quantity,
                "available_quantity": free,
                "sellable": sku not in refused,
            }
        )
    if quote is not None:
        view.update(
            subtotal_minor=quote.subtotal_minor,
            discount_total_minor=quote.discount_total_minor,
            total_minor=quote.total_minor,
            quote_id=quote.quote_id,
        )
    return view


# --- checkout saga --------------------------------------------------------------------------
def _rejected_problem(order_id: str, instance: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": PROBLEM_BASE + "order-rejected",
        "title": "Order rejected",
        "status": 422,
        "detail": REJECTED_DETAIL,
        "order_id": order_id,
    }
    if instance:
        doc["instance"] = instance
    return doc


async def checkout(
    uow: UnitOfWork,
    deps: Deps,
    caller: Caller,
    *,
    order_id: str,
    customer_id: str,
    data: CheckoutInput,
    cart_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """The checkout saga (``saga.py``), storing the order and its event in the caller's unit of
    work (the Idempotency-Key's transaction). Returns the response to store: 201 with the
    order, or 422 ``order-rejected``."""
    repo = OrderRepository(uow.session)
    actor = _actor(caller)

    async def store(outcome: SagaOutcome) -> None:
        order, quote, assessment = outcome.order, outcome.quote, outcome.assessment
        columns: dict[str, Any] = {
            "coupon_codes": outcome.coupon_codes,
            "shipping_address": data.shipping_address,
            "client": data.client,
            "quote_id": quote.quote_id,
            "assessment_id": assessment.assessment_id,
            "risk_decision": assessment.decision,
            "risk_reasons": [{"code": r.code, "detail": r.detail} for r in assessment.reasons],
            "cart_id": cart_id,
            "placed_by": actor,
            "reservation_expires_at": outcome.reservation_expires_at,
        }
        async with uow:
            await repo.add(order, **columns)
            if order.status is OrderStatus.REJECTED:
                event: Any = ev.order_rejected(order, assessment_id=assessment.assessment_id)
            else:
                event = ev.order_placed(
                    order,
                    quote_id=quote.quote_id,
                    coupon_codes=outcome.coupon_codes,
                    client=data.client,
                    shipping_country=str(data.shipping_address.get("country") or ""),
                    assessment_id=assessment.assessment_id,
                )
                if cart_id is not None:
                    await uow.session.execute(
                        sa.update(carts)
                        .where(carts.c.id == cart_id)
                        .values(status="checked_out", order_id=order_id, updated_at=order.placed_at)
                    )
            uow.add_event(event, key=order_id)
            await uow.commit()

    outcome = await run_checkout_saga(
        deps.ports,
        deps.settings,
        now=deps.clock(),
        order_id=order_id,
        customer_id=customer_id,
        actor=actor,
        data=data,
        store=store,
    )
    if outcome.order.status is OrderStatus.REJECTED:
        return 422, _rejected_problem(order_id)
    row = await repo.get_row(order_id)
    return 201, order_view(row, outcome.order, [], staff=caller.is_staff)


async def place_order(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, key: str, customer_id: str, data: CheckoutInput
) -> tuple[int, Any, bool]:
    order_id = order_id_for(caller, "place_order", key)
    payload = {
        "customer_id": customer_id,
        "currency": data.currency,
        "lines": data.lines,
        "coupon_codes": data.coupon_codes,
        "shipping_address": data.shipping_address,
        "client": data.client,
    }

    async def action() -> tuple[int, Any]:
        return await checkout(
            uow, deps, caller, order_id=order_id, customer_id=customer_id, data=data
        )

    return await idempotent(
        uow, caller=caller, operation="place_order", key=key, payload=payload, action=action
    )


async def checkout_cart(
    uow: UnitOfWork,
    deps: Deps,
    caller: Caller,
    *,
    key: str,
    cart_id: str,
    coupon_codes: list[str],
    shipping_address: dict[str, Any],
    client: dict[str, Any],
) -> tuple[int, Any, bool]:
    order_id = order_id_for(caller, f"checkout_cart:{cart_id}", key)
    payload = {
        "cart_id": cart_id,
        "coupon_codes": coupon_codes,
        "shipping_address": shipping_address,
        "client": client,
    }

    async def action() -> tuple[int, Any]:
        row = await _load_cart(uow, caller, cart_id, for_update=True)
        if row.status != "open":
            raise Conflict(
                f"cart {cart_id} is {row.status}", code="cart-closed", current_status=row.status
            )
        lines = await repo_mod.cart_lines(uow.session, cart_id)
        if not lines:
            raise Unprocessable("the cart is empty", code="empty-cart")
        data = CheckoutInput(
            currency=row.currency,
            lines=lines,
            shipping_address=shipping_address,
            coupon_codes=coupon_codes,
            client=client,
        )
        return await checkout(
            uow,
            deps,
            caller,
            order_id=order_id,
            customer_id=row.customer_id,
            data=data,
            cart_id=cart_id,
        )

    return await idempotent(
        uow,
        caller=caller,
        operation=f"checkout_cart:{cart_id}",
        key=key,
        payload=payload,
        action=action,
    )


# --- reading orders -------------------------------------------------------------------------
def may_see_order(caller: Caller, row: Any, *, fulfilment: bool = False) -> bool:
    """Customers see their own orders; partners the orders they placed (marketplaces), and any
    order for fulfilment (carriers post shipments and deliveries); ops and services all."""
    if caller.is_customer:
        return bool(row.customer_id == caller.subject)
    if caller.role is Role.PARTNER and not fulfilment:
        return bool(row.placed_by == _actor(caller))
    return True


async def _order_for(
    uow: UnitOfWork,
    caller: Caller,
    order_id: str,
    *,
    for_update: bool,
    fulfilment: bool = False,
) -> tuple[Order, Any, OrderRepository]:
    repo = OrderRepository(uow.session)
    loaded = await repo.get(order_id, for_update=for_update)
    if loaded is None or not may_see_order(caller, loaded[1], fulfilment=fulfilment):
        raise NotFound(f"order {order_id} not found")
    order, row = loaded
    return order, row, repo


async def _view(uow: UnitOfWork, caller: Caller, order_id: str) -> dict[str, Any]:
    view = await repo_mod.load_order_view(
        uow.session, OrderRepository(uow.session), order_id, staff=caller.is_staff
    )
    if view is None:
        raise NotFound(f"order {order_id} not found")
    return view


async def get_order(uow: UnitOfWork, caller: Caller, *, order_id: str) -> dict[str, Any]:
    async with uow:
        await _order_for(uow, caller, order_id, for_update=False)
        return await _view(uow, caller, order_id)


async def list_orders(
    uow: UnitOfWork,
    caller: Caller,
    *,
    status: str | None,
    limit: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    size = check_limit(limit)
    position = decode_cursor(cursor)
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise Unprocessable(f"unknown status {status!r}", code="invalid-status")
    query = sa.select(orders.c.id, orders.c.placed_at)
    if caller.is_customer:
        query = query.where(orders.c.customer_id == caller.subject)
    elif caller.role is Role.PARTNER:
        query = query.where(orders.c.placed_by == _actor(caller))
    if status:
        query = query.where(orders.c.status == status)
    if position is not None:
        try:
            at = datetime.fromisoformat(str(position["placed_at"]))
            last_id = str(position["id"])
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
        query = query.where(sa.tuple_(orders.c.placed_at, orders.c.id) < sa.tuple_(at, last_id))
    query = query.order_by(orders.c.placed_at.desc(), orders.c.id.desc()).limit(size + 1)
    async with uow:
        rows = (await uow.session.execute(query)).all()
        page = rows[:size]
        items = [await _view(uow, caller, r.id) for r in page]
    next_cursor = None
    if len(rows) > size:
        last = page[-1]
        next_cursor = encode_cursor({"placed_at": last.placed_at.isoformat(), "id": last.id})
    return {"items": items, "next_cursor": next_cursor}


# --- payment --------------------------------------------------------------------------------
async def pay_order(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, key: str, order_id: str, token: str
) -> tuple[int, Any, bool]:
    async def action() -> tuple[int, Any]:
        order, _row, repo = await _order_for(uow, caller, order_id, for_update=True)
        now = deps.clock()
        order.pay(at=now, actor=_actor(caller))  # refuses before anything is charged
        charge = await deps.ports.payments.charge(
            token=token,
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"{order_id}:{key}",
        )
        await repo.save(
            order,
            at=now,
            paid_at=now,
            payment_token=token,
            payment_id=charge.payment_id,
            payment_last4=charge.last4,
            payment_fingerprint=charge.fingerprint,
        )
        uow.add_event(
            ev.order_paid(
                order, payment_id=charge.payment_id, fingerprint=charge.fingerprint, at=now
            ),
            key=order_id,
        )
        await uow.commit()
        return 201, await _view(uow, caller, order_id)

    return await idempotent(
        uow,
        caller=caller,
        operation=f"pay_order:{order_id}",
        key=key,
        payload={"order_id": order_id, "payment_token": token},
        action=action,
    )


# --- fulfilment -----------------------------------------------------------------------------
async def create_shipment(
    uow: UnitOfWork,
    deps: Deps,
    caller: Caller,
    *,
    key: str,
    order_id: str,
    lines: list[tuple[str, int]] | None,
    carrier: str,
    tracking_number: str,
) -> tuple[int, Any, bool]:
    async def action() -> tuple[int, Any]:
        order, _row, repo = await _order_for(
            uow, caller, order_id, for_update=True, fulfilment=True
        )
        now = deps.clock()
        wanted = merge_quantities(lines) if lines else None
        before = {line.sku: line.shipped_quantity for line in order.lines}
        complete = order.ship(
            wanted, at=now, actor=_actor(caller), note=f"{carrier} {tracking_number}"
        )
        shipped = {
            line.sku: line.shipped_quantity - before[line.sku]
            for line in order.lines
            if line.shipped_quantity > before[line.sku]
        }
        shipment_id = uuid.uuid4().hex
        await repo.add_shipment(
            id=shipment_id,
            order_id=order_id,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=[{"sku": k, "quantity": v} for k, v in shipped.items()],
            shipped_at=now,
        )
        await repo.save(order, at=now)
        uow.add_event(
            ev.order_shipped(
                order,
                shipment_id=shipment_id,
                lines=shipped,
                carrier=carrier,
                tracking_number=tracking_number,
                complete=complete,
                at=now,
            ),
            key=order_id,
        )
        await uow.commit()
        return 201, await _view(uow, caller, order_id)

    return await idempotent(
        uow,
        caller=caller,
        operation=f"create_shipment:{order_id}",
        key=key,
        payload={
            "lines": lines,
            "carrier": carrier,
            "tracking_number": tracking_number,
        },
        action=action,
    )


async def confirm_delivery(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, order_id: str
) -> dict[str, Any]:
    async with uow:
        order, _row, repo = await _order_for(
            uow, caller, order_id, for_update=True, fulfilment=True
        )
        now = deps.clock()
        order.deliver(at=now, actor=_actor(caller))
        await repo.save(order, at=now)
        uow.add_event(ev.order_delivered(order, at=now), key=order_id)
        await uow.commit()
        return await _view(uow, caller, order_id)


async def _cancel(
    uow: UnitOfWork,
    deps: Deps,
    order: Order,
    row: Any,
    repo: OrderRepository,
    *,
    actor: str,
    event_reason: str,
    note: str,
    by_customer: bool,
) -> None:
    now = deps.clock()
    was_paid = row.payment_id is not None
    refund = order.cancel(at=now, actor=actor, reason=note or event_reason, by_customer=by_customer)
    refund_id = ""
    if refund > 0 and row.payment_id:
        refund_id = await deps.ports.payments.refund(
            payment_id=row.payment_id,
            amount_minor=refund,
            currency=order.currency,
            idempotency_key=f"cancel:{order.order_id}",
        )
    await repo.save(order, at=now, cancel_reason=(note or event_reason)[:200], cancelled_at=now)
    uow.add_event(
        ev.order_cancelled(
            order,
            reason=event_reason,
            quote_id=row.quote_id,
            was_paid=was_paid,
            refunded=refund,
            at=now,
        ),
        key=order.order_id,
    )
    if refund > 0:
        uow.add_event(
            ev.order_refunded(order, amount=refund, refund_id=refund_id, return_id="", at=now),
            key=order.order_id,
        )


async def cancel_order(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, order_id: str, reason: str
) -> dict[str, Any]:
    async with uow:
        order, row, repo = await _order_for(uow, caller, order_id, for_update=True)
        await _cancel(
            uow,
            deps,
            order,
            row,
            repo,
            actor=_actor(caller),
            event_reason="customer" if caller.is_customer else "ops",
            note=reason,
            by_customer=caller.is_customer,
        )
        await uow.commit()
        return await _view(uow, caller, order_id)


# --- returns --------------------------------------------------------------------------------
async def request_return(
    uow: UnitOfWork,
    deps: Deps,
    caller: Caller,
    *,
    key: str,
    order_id: str,
    lines: list[tuple[str, int]],
    reason: str,
) -> tuple[int, Any, bool]:
    async def action() -> tuple[int, Any]:
        order, _row, _repo = await _order_for(uow, caller, order_id, for_update=True)
        now = deps.clock()
        wanted = merge_quantities(lines)
        pending = await repo_mod.pending_return_units(uow.session, order_id)
        order.check_return(
            wanted,
            pending,
            at=now,
            window=timedelta(days=deps.settings.return_window_days),
        )
        rma = Return(
            return_id=uuid.uuid4().hex,
            order_id=order_id,
            customer_id=order.customer_id,
            status=ReturnStatus.REQUESTED,
            lines=wanted,
            reason=reason,
            requested_at=now,
        )
        await repo_mod.add_return(uow.session, rma, order.currency)
        uow.add_event(
            ev.return_requested(
                return_id=rma.return_id, order=order, lines=wanted, reason=reason, at=now
            ),
            key=order_id,
        )
        await uow.commit()
        return 201, repo_mod.return_view(rma, order.currency)

    return await idempotent(
        uow,
        caller=caller,
        operation=f"request_return:{order_id}",
        key=key,
        payload={"lines": lines, "reason": reason},
        action=action,
    )


async def _return_for(
    uow: UnitOfWork, caller: Caller, return_id: str, *, for_update: bool
) -> tuple[Return, Any]:
    loaded = await repo_mod.get_return(uow.session, return_id, for_update=for_update)
    if loaded is None:
        raise NotFound(f"return {return_id} not found")
    _owned(caller, loaded[0].customer_id, "return", return_id)
    return loaded


async def get_return(uow: UnitOfWork, caller: Caller, *, return_id: str) -> dict[str, Any]:
    async with uow:
        rma, row = await _return_for(uow, caller, return_id, for_update=False)
        return repo_mod.return_view(rma, row.currency)


async def decide_return(
    uow: UnitOfWork, deps: Deps, caller: Caller, *, return_id: str, approve: bool, note: str = ""
) -> dict[str, Any]:
    async with uow:
        rma, row = await _return_for(uow, caller, return_id, for_update=True)
        rma.move(
            ReturnStatus.APPROVED if approve else ReturnStatus.REJECTED,
            at=deps.clock(),
            action="approve" if approve else "reject",
        )
        await repo_mod.save_return(uow.session, rma, decision_note=note[:500] or None)
        await uow.commit()
        return repo_mod.return_view(rma, row.currency)


async def receive_return(
    uow: UnitOfWork,
    deps: Deps,
    caller: Caller,
    *,
    return_id: str,
    lines: list[tuple[str, int, bool]],
    warehouse: str = "",
) -> dict[str, Any]:
    async with uow:
        rma, rrow = await _return_for(uow, caller, return_id, for_update=True)
        order, orow, repo = await _order_for(uow, caller, rma.order_id, for_update=True)
        now = deps.clock()
        received = merge_quantities([(sku, qty) for sku, qty, _ in lines])
        rma.check_received(received)
        rma.move(ReturnStatus.RECEIVED, at=now, action="receive")
        refund = order.receive_return(received, at=now, actor=_actor(caller), return_id=return_id)
        refund_id = ""
        if refund > 0 and orow.payment_id:
            refund_id = await deps.ports.payments.refund(
                payment_id=orow.payment_id,
                amount_minor=refund,
                currency=order.currency,
                idempotency_key=f"return:{return_id}",
            )
        rma.received_lines = [
            {"sku": sku, "quantity": qty, "resellable": resellable}
            for sku, qty, resellable in lines
        ]
        rma.refunded_minor = refund
        await repo_mod.save_return(uow.session, rma, refund_id=refund_id or None)
        await repo.save(order, at=now)
        uow.add_event(
            ev.return_received(
                return_id=return_id,
                order=order,
                lines=rma.received_lines,
                refunded=refund,
                warehouse=warehouse,
                at=now,
            ),
            key=order.order_id,
        )
        if refund > 0:
            uow.add_event(
                ev.order_refunded(
                    order, amount=refund, refund_id=refund_id, return_id=return_id, at=now
                ),
                key=order.order_id,
            )
        await uow.commit()
        return repo_mod.return_view(rma, rrow.currency)


# --- risk review outcome (event) ------------------------------------------------------------
async def on_review_resolved(uow: UnitOfWork, deps: Deps, envelope: Envelope) -> None:
    """RiskReviewResolved: continue (→ awaiting_payment) or cancel an in_review order.

    Idempotent: the consumer's inbox skips a duplicate event id, and an order that is no longer
    in review (already resolved, cancelled by the customer, expired) is left as it is.
    """
    message = envelope.message
    assert isinstance(message, risk_events.RiskReviewResolved)
    repo = OrderRepository(uow.session)
    loaded = await repo.get(message.order_id, for_update=True)
    if loaded is None:
        log.info("review resolved for unknown order %s; ignored", message.order_id)
        return
    order, row = loaded
    if order.status is not OrderStatus.IN_REVIEW:
        log.info("review resolved for order %s in %s; ignored", order.order_id, order.status)
        return
    actor = f"risk:{message.analyst or 'analyst'}"
    now = deps.clock()
    if message.decision == "approve":
        expires = row.reservation_expires_at
        latest = (
            expires - timedelta(seconds=min(deps.settings.reservation_margin, 60.0))
            if expires is not None
            else None
        )
        order.approve_review(
            at=now,
            payment_timeout=timedelta(seconds=deps.settings.payment_timeout),
            latest_due=latest,
            actor=actor,
        )
        await repo.save(order, at=now)
    elif message.decision == "reject":
        await _cancel(
            uow,
            deps,
            order,
            row,
            repo,
            actor=actor,
            event_reason="risk_rejected",
            note="risk review rejected",
            by_customer=False,
        )
    else:
        raise ValueError(f"unknown review decision {message.decision!r}")


# --- periodic jobs --------------------------------------------------------------------------
async def expire_unpaid_orders(uow: UnitOfWork, deps: Deps) -> int:
    """Cancel unpaid orders past payment_due_at, and review orders past their hold. Safe with
    replicas: rows are locked with SKIP LOCKED."""
    now = deps.clock()
    done = 0
    async with uow:
        repo = OrderRepository(uow.session)
        for status, column, reason in (
            (OrderStatus.AWAITING_PAYMENT, orders.c.payment_due_at, "payment_timeout"),
            (OrderStatus.IN_REVIEW, orders.c.review_deadline, "reservation_expired"),
        ):
            rows = await repo.lock_due(
                status=status, column=column, now=now, limit=deps.settings.job_batch_size
            )
            for row in rows:
                order = await repo.hydrate(row)
                await _cancel(
                    uow,
                    deps,
                    order,
                    row,
                    repo,
                    actor="system",
                    event_reason=reason,
                    note=reason,
                    by_customer=False,
                )
                done += 1
        await uow.commit()
    return done


async def abandon_idle_carts(uow: UnitOfWork, deps: Deps) -> int:
    """Raise CartAbandoned once per idle period for open carts with items."""
    now = deps.clock()
    cutoff = now - timedelta(seconds=deps.settings.cart_abandon_after)
    has_items = sa.exists().where(cart_items.c.cart_id == carts.c.id)
    query = (
        sa.select(carts)
        .where(
            carts.c.status == "open",
            carts.c.updated_at <= cutoff,
            sa.or_(carts.c.abandoned_at.is_(None), carts.c.abandoned_at < carts.c.updated_at),
            has_items,
        )
        .order_by(carts.c.updated_at)
        .limit(deps.settings.job_batch_size)
        .with_for_update(skip_locked=True)
    )
    async with uow:
        rows = (await uow.session.execute(query)).all()
        for row in rows:
            lines = await repo_mod.cart_lines(uow.session, row.id)
            uow.add_event(
                ev.cart_abandoned(
                    cart_id=row.id,
                    customer_id=row.customer_id,
                    lines=lines,
                    last_activity_at=row.updated_at,
                ),
                key=row.id,
            )
            await uow.session.execute(
                sa.update(carts).where(carts.c.id == row.id).values(abandoned_at=now)
            )
        await uow.commit()
    return len(rows)


# --- KPIs -----------------------------------------------------------------------------------
def _rate(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return "0.0000"
    value = Decimal(numerator) / Decimal(denominator)
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


async def order_kpis(
    uow: UnitOfWork, deps: Deps, *, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    end = end or deps.clock()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("from and to need a time zone", code="invalid-period")
    if start >= end:
        raise Unprocessable("from must be before to", code="invalid-period")
    in_period = sa.and_(orders.c.placed_at >= start, orders.c.placed_at < end)
    placed = sa.and_(in_period, orders.c.status != OrderStatus.REJECTED.value)
    paid = sa.and_(in_period, orders.c.paid_at.is_not(None))
    async with uow:
        s = uow.session
        n_orders = int(await s.scalar(sa.select(sa.func.count()).where(placed)) or 0)
        n_paid = int(await s.scalar(sa.select(sa.func.count()).where(paid)) or 0)
        n_cancelled = int(
            await s.scalar(
                sa.select(sa.func.count()).where(
                    placed, orders.c.status == OrderStatus.CANCELLED.value
                )
            )
            or 0
        )
        gmv_rows = (
            await s.execute(
                sa.select(orders.c.currency, sa.func.sum(orders.c.total_minor), sa.func.count())
                .where(paid)
                .group_by(orders.c.currency)
                .order_by(orders.c.currency)
            )
        ).all()
        per_customer = (
            sa.select(orders.c.customer_id, sa.func.count().label("n"))
            .where(paid)
            .group_by(orders.c.customer_id)
            .subquery()
        )
        buyers = int(await s.scalar(sa.select(sa.func.count()).select_from(per_customer)) or 0)
        repeat = int(
            await s.scalar(
                sa.select(sa.func.count()).select_from(per_customer).where(per_customer.c.n >= 2)
            )
            or 0
        )
        with_returns = int(
            await s.scalar(
                sa.select(sa.func.count(sa.distinct(returns.c.order_id)))
                .select_from(returns.join(orders, orders.c.id == returns.c.order_id))
                .where(paid, returns.c.status != ReturnStatus.REJECTED.value)
            )
            or 0
        )
        cart_period = sa.and_(carts.c.created_at >= start, carts.c.created_at < end)
        has_items = sa.or_(
            carts.c.status == "checked_out",
            sa.exists().where(cart_items.c.cart_id == carts.c.id),
        )
        n_carts = int(await s.scalar(sa.select(sa.func.count()).where(cart_period, has_items)) or 0)
        n_abandoned = int(
            await s.scalar(
                sa.select(sa.func.count()).where(cart_period, has_items, carts.c.status == "open")
            )
            or 0
        )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "orders": n_orders,
        "paid_orders": n_paid,
        "gmv": [{"currency": c, "amount_minor": int(total)} for c, total, _ in gmv_rows],
        "average_order_value": [
            {"currency": c, "amount_minor": int(total) // int(n)} for c, total, n in gmv_rows
        ],
        "repurchase_rate": _rate(repeat, buyers),
        "cancellation_rate": _rate(n_cancelled, n_orders),
        "return_rate": _rate(with_returns, n_paid),
        "cart_abandonment_rate": _rate(n_abandoned, n_carts),
    }
