"""Inbound orders: record stock on its way, receive it, cancel what will not come.

Placing one changes no stock: its units count as *on order* in the replenishment suggestions
(``planning.py``). Receiving is the only movement, and it is the same as a ``receipt``
adjustment — one conditional stock update, a ledger entry referencing the inbound order,
StockAdjusted and StockLevelChanged — in the transaction that also advances the order (locked
``FOR UPDATE``, so two receipts of the same order never both take the last units).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.pagination import decode_cursor, encode_cursor

from ..domain.inbound import (
    InboundOrder,
    InboundStatus,
    check_inbound_quantity,
    parse_expected_on,
)
from ..domain.models import LedgerReason, SkuStatus
from .ports import Ctx, InventoryUnitOfWork
from .stock import STAFF, restock
from .views import InboundPage, InboundReceipt


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceInboundOrder(Command[InboundOrder], roles=(Role.OPS,), idempotent=True):
    """Record units on their way to a warehouse; they count as on order until received."""

    sku: str
    warehouse: str
    quantity: int
    expected_on: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiveInboundOrder(Command[InboundReceipt], roles=(Role.OPS,), idempotent=True):
    """Units of an inbound order arrived: on hand up, on order down (409 beyond what is
    still expected, or when the order is not open)."""

    inbound_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelInboundOrder(Command[InboundOrder], roles=(Role.OPS,)):
    """Stop expecting the rest of an inbound order; repeated: the same answer."""

    inbound_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetInboundOrder(Query[InboundOrder], roles=STAFF):
    inbound_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListInboundOrders(Query[InboundPage], roles=STAFF):
    sku: str | None = None
    warehouse: str | None = None
    status: InboundStatus | None = None
    before: tuple[datetime, str] | None = None
    limit: int


def page_cursor(page: InboundPage) -> str | None:
    """The cursor of the page after ``page`` (None on the last page)."""
    if not page.more or not page.items:
        return None
    last = page.items[-1]
    return encode_cursor({"at": last.created_at.isoformat(), "id": last.inbound_id})


def cursor_position(cursor: str | None) -> tuple[datetime, str] | None:
    """Where a list continues, from a cursor :func:`page_cursor` gave (422 for any other)."""
    pos = decode_cursor(cursor)
    if not pos:
        return None
    try:
        at, inbound_id = datetime.fromisoformat(str(pos["at"])), str(pos["id"])
    except (KeyError, ValueError):
        at = None
    if at is None or at.tzinfo is None:
        raise Unprocessable("cursor is not valid for this list", code="invalid-cursor")
    return at, inbound_id


async def _open(uow: InventoryUnitOfWork, inbound_id: str) -> InboundOrder:
    found = await uow.inbound.get(inbound_id, for_update=True)
    if found is None:
        raise NotFound(f"inbound order {inbound_id} not found")
    return found


@handler
async def place_inbound_order(cmd: PlaceInboundOrder, ctx: Ctx) -> InboundOrder:
    check_inbound_quantity(cmd.quantity)
    expected_on = parse_expected_on(cmd.expected_on)
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        sku = await uow.skus.get(cmd.sku)
        if sku is None:
            raise Unprocessable(f"unknown sku {cmd.sku}", code="unknown-sku", sku=cmd.sku)
        if sku.status is SkuStatus.DISCONTINUED:
            raise Unprocessable(
                f"sku {cmd.sku} is discontinued; nothing more is ordered",
                code="discontinued-sku",
                sku=cmd.sku,
            )
        if await uow.warehouses.get(cmd.warehouse) is None:
            raise Unprocessable(
                f"unknown warehouse {cmd.warehouse}",
                code="unknown-warehouse",
                warehouse=cmd.warehouse,
            )
        order = InboundOrder(
            inbound_id=f"in-{uuid.uuid4().hex[:20]}",
            sku=cmd.sku,
            warehouse=cmd.warehouse,
            quantity=cmd.quantity,
            received_quantity=0,
            status=InboundStatus.OPEN,
            expected_on=expected_on,
            reference=cmd.reference,
            created_at=now,
            updated_at=now,
        )
        await uow.inbound.add(order)
        await uow.commit()
    return order


@handler
async def receive_inbound_order(cmd: ReceiveInboundOrder, ctx: Ctx) -> InboundReceipt:
    check_inbound_quantity(cmd.quantity)
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        order = (await _open(uow, cmd.inbound_id)).receive(cmd.quantity, now)
        entry = await restock(
            uow,
            order.sku,
            order.warehouse,
            cmd.quantity,
            LedgerReason.RECEIPT,
            f"inbound:{order.inbound_id}",
            now,
        )
        await uow.inbound.save(order)
        await uow.commit()
    return InboundReceipt(order, entry)


@handler
async def cancel_inbound_order(cmd: CancelInboundOrder, ctx: Ctx) -> InboundOrder:
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        current = await _open(uow, cmd.inbound_id)
        order = current.cancel(now)
        if order is not current:
            await uow.inbound.save(order)
            await uow.commit()
    return order


@handler
async def get_inbound_order(query: GetInboundOrder, ctx: Ctx) -> InboundOrder:
    async with ctx.uow as uow:
        found = await uow.inbound.get(query.inbound_id)
    if found is None:
        raise NotFound(f"inbound order {query.inbound_id} not found")
    return found


@handler
async def list_inbound_orders(query: ListInboundOrders, ctx: Ctx) -> InboundPage:
    async with ctx.uow as uow:
        rows = await uow.inbound.list(
            sku=query.sku,
            warehouse=query.warehouse,
            status=query.status,
            before=query.before,
            limit=query.limit + 1,
        )
    return InboundPage(rows[: query.limit], more=len(rows) > query.limit)
