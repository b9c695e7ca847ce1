"""Carts: create one, set a line, read it priced (pricing quote, inventory availability); the
periodic job raising CartAbandoned for idle carts."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Conflict, NotFound, Unprocessable

from ..domain.models import MAX_LINE_QUANTITY, MAX_LINES
from . import events as ev
from .ports import CartRecord, Ctx, Deps, Quote
from .views import CartLineView, CartView

CUSTOMER_OR_OPS = (Role.CUSTOMER, Role.OPS)
#: Pricing's refusals of one line (the rest of the cart is still priced).
_LINE_REFUSALS = {"unknown-sku", "sku-discontinued", "no-price"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCart(Command[CartView], roles=(Role.CUSTOMER,), idempotent=True):
    currency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCartItem(Command[CartView], roles=CUSTOMER_OR_OPS):
    cart_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCart(Query[CartView], roles=CUSTOMER_OR_OPS):
    cart_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AbandonIdleCarts(Command[int], roles=(Role.SERVICE,)):
    """Periodic: CartAbandoned once per idle period for open carts with items."""


async def load_cart(ctx: Ctx, cart_id: str, *, for_update: bool) -> CartRecord:
    cart = await ctx.uow.carts.get(cart_id, for_update=for_update)
    if cart is None:
        raise NotFound(f"cart {cart_id} not found")
    ctx.ensure_visible(cart.customer_id, "cart", cart_id)
    return cart


def ensure_open(cart: CartRecord) -> None:
    if cart.status != "open":
        raise Conflict(
            f"cart {cart.cart_id} is {cart.status}",
            code="cart-closed",
            current_status=cart.status,
        )


def _room_for(lines: dict[str, int], sku: str, cart_id: str) -> None:
    if sku not in lines and len(lines) >= MAX_LINES:
        raise Unprocessable(
            f"cart {cart_id} holds {MAX_LINES} lines, the most a cart may hold",
            code="cart-full",
        )


@handler
async def create_cart(cmd: CreateCart, ctx: Ctx) -> CartView:
    now = ctx.deps.clock()
    cart = CartRecord(
        cart_id=uuid.uuid4().hex,
        customer_id=ctx.caller.subject,
        currency=cmd.currency or ctx.deps.settings.default_currency,
        status="open",
        created_at=now,
        updated_at=now,
        order_id=None,
    )
    async with ctx.uow:
        await ctx.uow.carts.add(cart)
        await ctx.uow.commit()
    return CartView.unpriced(cart)


@handler
async def set_cart_item(cmd: SetCartItem, ctx: Ctx) -> CartView:
    """Set one line. A refused line writes nothing: the SKU and quantity are priced by pricing
    (known, sellable, priced in the cart's currency, quantity within limits) before the line is
    stored, outside the cart's transaction (no lock held across the call)."""
    if not 0 <= cmd.quantity <= MAX_LINE_QUANTITY:
        raise Unprocessable(
            f"quantity must be between 0 (remove) and {MAX_LINE_QUANTITY}",
            code="invalid-quantity",
        )
    if not 1 <= len(cmd.sku) <= 100:
        raise Unprocessable("sku must be 1..100 characters", code="invalid-sku")
    async with ctx.uow:
        cart = await load_cart(ctx, cmd.cart_id, for_update=False)
        ensure_open(cart)
        current = await ctx.uow.carts.lines(cmd.cart_id)
    if cmd.quantity > 0:
        _room_for(current, cmd.sku, cmd.cart_id)
        await ctx.deps.ports.pricing.create_quote(
            customer_id=cart.customer_id,
            currency=cart.currency,
            lines={cmd.sku: cmd.quantity},
            coupon_codes=[],
        )
    async with ctx.uow:
        cart = await load_cart(ctx, cmd.cart_id, for_update=True)
        ensure_open(cart)
        if cmd.quantity > 0:
            _room_for(await ctx.uow.carts.lines(cmd.cart_id), cmd.sku, cmd.cart_id)
        await ctx.uow.carts.set_item(cmd.cart_id, cmd.sku, cmd.quantity, now=ctx.deps.clock())
        await ctx.uow.commit()
    return await get_cart(GetCart(cart_id=cmd.cart_id), ctx)


async def _quote_cart(
    deps: Deps, cart: CartRecord, lines: dict[str, int]
) -> tuple[Quote | None, set[str]]:
    """Price the cart; lines pricing refuses (a SKU discontinued or unpriced since it was
    added) are left out and reported, so that one bad line never blocks the cart."""
    refused: set[str] = set()
    while True:
        priced = {k: v for k, v in lines.items() if k not in refused}
        if not priced:
            return None, refused
        try:
            quote = await deps.ports.pricing.create_quote(
                customer_id=cart.customer_id,
                currency=cart.currency,
                lines=priced,
                coupon_codes=[],
            )
        except Unprocessable as exc:
            named = {str(s) for s in exc.extra.get("skus") or []} & set(priced)
            if exc.code not in _LINE_REFUSALS or not named:
                raise
            refused |= named
            continue
        return quote, refused


@handler
async def get_cart(query: GetCart, ctx: Ctx) -> CartView:
    """The cart priced through a pricing quote, with availability per line (unknown when
    inventory does not answer)."""
    async with ctx.uow:
        cart = await load_cart(ctx, query.cart_id, for_update=False)
        lines = await ctx.uow.carts.lines(query.cart_id)
    view = CartView.unpriced(cart)
    if not lines:
        return view
    quote_task = _quote_cart(ctx.deps, cart, lines)
    avail_task = ctx.deps.ports.inventory.availability(sorted(lines))
    priced, avail = await asyncio.gather(quote_task, avail_task, return_exceptions=True)
    if isinstance(priced, BaseException):
        raise priced
    quote, refused = priced
    available: dict[str, int] | None = None if isinstance(avail, BaseException) else avail
    by_sku = {line.sku: line for line in quote.lines} if quote is not None else {}
    cart_lines: list[CartLineView] = []
    for sku, quantity in lines.items():
        q = by_sku.get(sku)
        free = None if available is None else available.get(sku, 0)
        cart_lines.append(
            CartLineView(
                sku=sku,
                quantity=quantity,
                unit_price_minor=q.unit_price_minor if q else 0,
                discount_minor=q.discount_minor if q else 0,
                total_minor=q.total_minor if q else 0,
                available=False if sku in refused else None if free is None else free >= quantity,
                available_quantity=free,
                sellable=sku not in refused,
            )
        )
    if quote is None:
        return view.model_copy(update={"lines": cart_lines})
    return view.model_copy(
        update={
            "lines": cart_lines,
            "subtotal_minor": quote.subtotal_minor,
            "discount_total_minor": quote.discount_total_minor,
            "total_minor": quote.total_minor,
            "quote_id": quote.quote_id,
        }
    )


@handler
async def abandon_idle_carts(cmd: AbandonIdleCarts, ctx: Ctx) -> int:
    now = ctx.deps.clock()
    cutoff = now - timedelta(seconds=ctx.deps.settings.cart_abandon_after)
    async with ctx.uow:
        idle = await ctx.uow.carts.lock_idle(cutoff=cutoff, limit=ctx.deps.settings.job_batch_size)
        for cart in idle:
            lines = await ctx.uow.carts.lines(cart.cart_id)
            ctx.uow.add_event(
                ev.cart_abandoned(
                    cart_id=cart.cart_id,
                    customer_id=cart.customer_id,
                    lines=lines,
                    last_activity_at=cart.updated_at,
                ),
                key=cart.cart_id,
            )
            await ctx.uow.carts.mark_abandoned(cart.cart_id, at=now)
        await ctx.uow.commit()
    return len(idle)
