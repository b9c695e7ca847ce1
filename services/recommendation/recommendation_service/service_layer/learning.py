"""Learning from events: behaviour (sessions, popularity), placed, paid and cancelled orders
(baskets, purchases, spend), and the catalogue and stock that decide what may be recommended.

Each message is sent by a consumer (``entrypoints/consumers.py``) as the service itself, inside
the consumer's transaction, which also records the event in the inbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler

from ..domain.models import (
    BehaviorEvent,
    Increments,
    InteractionKind,
    ModelParams,
    basket_increments,
    popularity_increment,
    scaled,
    session_increments,
)
from .metrics import observe_lag
from .ports import Ctx, Interaction, OrderFacts
from .segments import refresh_segment

#: Events are applied by the service itself.
SELF = (Role.SERVICE,)

#: The currency of an order event that names none.
UNKNOWN_CURRENCY = "XXX"


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnFromBehavior(Command[None], roles=SELF):
    """A recorded storefront event: an interaction, session co-occurrence, popularity."""

    event_id: str
    event: BehaviorEvent
    #: When the event was created (its CloudEvents time): the model's freshness.
    sent_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPlacedOrder(Command[None], roles=SELF):
    """An order was placed (the funnel's orders)."""

    order_id: str
    customer_id: str
    currency: str
    total_minor: int
    placed_at: datetime | None
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnFromPaidOrder(Command[None], roles=SELF):
    """A paid basket: co-purchases, purchase interactions, popularity, the RFM segment."""

    event_id: str
    order_id: str
    customer_id: str
    currency: str
    total_minor: int
    paid_at: datetime | None
    lines: tuple[OrderLine, ...]
    sent_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeBackCancelledOrder(Command[None], roles=SELF):
    """A cancelled paid order is refunded: its basket, purchases and spend are taken back."""

    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateCatalogItem(Command[None], roles=SELF):
    """A SKU's title, category, brand and status (the newest by ``updated_at`` wins)."""

    sku: str
    title: str
    category: str
    brand: str
    status: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStockLevel(Command[None], roles=SELF):
    """A SKU's availability (the newest by ``occurred_at`` wins)."""

    sku: str
    available: int
    occurred_at: datetime | None


def basket(lines: Iterable[OrderLine]) -> dict[str, int]:
    """Quantities per SKU: lines of one SKU add up, a line counts at least once."""
    out: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.sku:
            out[line.sku] += max(1, int(line.quantity))
    return dict(out)


def purchase_increments(
    lines: Mapping[str, int], paid_at: datetime, params: ModelParams
) -> Increments:
    """What a paid basket adds: co-purchases and popularity (weighed by quantity)."""
    inc = basket_increments(lines, paid_at, params)
    for sku, quantity in lines.items():
        inc.popularity[sku] = popularity_increment(
            sku, InteractionKind.PURCHASE, quantity, paid_at, params
        )
    return inc


@handler
async def learn_from_behavior(cmd: LearnFromBehavior, ctx: Ctx) -> None:
    params = ctx.deps.params
    event = cmd.event
    kind = InteractionKind(event.type.value)
    at = event.occurred_at
    async with ctx.uow:
        inc = Increments()
        if kind is not InteractionKind.REMOVE_FROM_CART:
            recent = await ctx.uow.interactions.recent_session_skus(
                event.actor, at - params.session_window, at
            )
            if event.sku not in recent:
                inc = session_increments(event.sku, recent, at, params)
        inc.popularity[event.sku] = popularity_increment(event.sku, kind, 1, at, params)
        await ctx.uow.interactions.add(
            [
                Interaction(
                    event_id=cmd.event_id,
                    actor=event.actor,
                    customer_id=event.customer_id,
                    session_id=event.session_id,
                    sku=event.sku,
                    kind=kind,
                    quantity=1,
                    order_id=None,
                    occurred_at=at,
                )
            ]
        )
        await ctx.uow.model.apply(inc)
        observe_lag("behavior", cmd.sent_at, ctx.deps.clock())
        await ctx.uow.commit()


@handler
async def record_placed_order(cmd: RecordPlacedOrder, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.orders.record_placed(
            OrderFacts(
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                currency=cmd.currency or UNKNOWN_CURRENCY,
                total_minor=cmd.total_minor,
                at=cmd.placed_at or ctx.deps.clock(),
                lines=basket(cmd.lines),
            )
        )
        await ctx.uow.commit()


@handler
async def learn_from_paid_order(cmd: LearnFromPaidOrder, ctx: Ctx) -> None:
    """Applied once per order: a repeated OrderPaid (another event id) changes nothing."""
    paid_at = cmd.paid_at or ctx.deps.clock()
    lines = basket(cmd.lines)
    async with ctx.uow:
        first = await ctx.uow.orders.record_paid(
            OrderFacts(
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                currency=cmd.currency or UNKNOWN_CURRENCY,
                total_minor=cmd.total_minor,
                at=paid_at,
                lines=lines,
            )
        )
        if not first:
            return
        await ctx.uow.interactions.add(
            [
                Interaction(
                    event_id=cmd.event_id,
                    actor=f"c:{cmd.customer_id}",
                    customer_id=cmd.customer_id,
                    session_id=None,
                    sku=sku,
                    kind=InteractionKind.PURCHASE,
                    quantity=quantity,
                    order_id=cmd.order_id,
                    occurred_at=paid_at,
                )
                for sku, quantity in sorted(lines.items())
            ]
        )
        await ctx.uow.model.apply(purchase_increments(lines, paid_at, ctx.deps.params))
        observe_lag("order", cmd.sent_at, ctx.deps.clock())
        await refresh_segment(ctx.uow, cmd.customer_id, ctx.deps.clock())
        await ctx.uow.commit()


@handler
async def take_back_cancelled_order(cmd: TakeBackCancelledOrder, ctx: Ctx) -> None:
    """Scaled weights are additive, so subtracting the same increments undoes them exactly."""
    params = ctx.deps.params
    async with ctx.uow:
        cancelled = await ctx.uow.orders.cancel(cmd.order_id, ctx.deps.clock())
        if cancelled is None or cancelled.paid_at is None:
            await ctx.uow.commit()  # (a placed, never paid order: cancelled, nothing to undo)
            return
        paid_at = cancelled.paid_at
        inc = purchase_increments(cancelled.lines, paid_at, params)
        await ctx.uow.model.apply(
            Increments(
                counts={k: -w for k, w in inc.counts.items()},
                pairs={k: -w for k, w in inc.pairs.items()},
                totals={k: -w for k, w in inc.totals.items()},
                popularity={k: -w for k, w in inc.popularity.items()},
            )
        )
        # Float residue of an add-then-subtract is ~1e-16 relative: drop what is left near zero.
        await ctx.uow.interactions.forget_purchases(cmd.order_id)
        await ctx.uow.model.drop_negligible_purchases(
            sorted(cancelled.lines),
            scaled(paid_at, params.rate) * 1e-9,
            scaled(paid_at, params.trending_rate) * 1e-9,
        )
        await refresh_segment(ctx.uow, cancelled.customer_id, ctx.deps.clock())
        await ctx.uow.commit()


@handler
async def update_catalog_item(cmd: UpdateCatalogItem, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.catalog.upsert(
            sku=cmd.sku,
            title=cmd.title,
            category=cmd.category,
            brand=cmd.brand,
            status=cmd.status,
            updated_at=cmd.updated_at or ctx.deps.clock(),
        )
        await ctx.uow.commit()


@handler
async def update_stock_level(cmd: UpdateStockLevel, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.catalog.set_stock(
            sku=cmd.sku, available=cmd.available, at=cmd.occurred_at or ctx.deps.clock()
        )
        await ctx.uow.commit()
