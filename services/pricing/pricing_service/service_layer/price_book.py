"""The price book: set a price (guarded by the margin floor, also through live promotions),
read it, and its history with the lowest price of the last 30 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ecomops_platform.auth import Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.pagination import decode_cursor, encode_cursor

from ..domain.models import (
    PriceTerms,
    check_currency,
    fmt_rate,
    guard_price,
    lowest_price_in_window,
    unit_price_after,
)
from ..domain.records import PriceHistory, PriceRecord
from . import events
from .ports import Ctx, PricingUnitOfWork
from .views import PriceHistoryOut, PriceOut


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPrice(Command[PriceOut], roles=(Role.OPS,)):
    """Set the list price and costs of a SKU in one currency."""

    sku: str
    currency: str
    terms: PriceTerms
    allow_below_floor: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetPrice(Query[PriceOut], roles=ANY_ROLE):
    sku: str
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetPriceHistory(Query[PriceHistoryOut], roles=ANY_ROLE):
    sku: str
    currency: str
    limit: int
    cursor: str | None = None


def _costs(ctx: Ctx) -> bool:
    """Cost data is confidential to the retailer: ops see it, other callers only prices."""
    return ctx.caller.role is Role.OPS


@handler
async def set_price(cmd: SetPrice, ctx: Ctx) -> PriceOut:
    currency = check_currency(cmd.currency)
    now = ctx.deps.clock()
    floor = ctx.deps.settings.margin_floor
    terms, reason = cmd.terms, cmd.reason
    margin, below = guard_price(
        terms, floor, allow_below_floor=cmd.allow_below_floor, reason=reason
    )
    uow = ctx.uow
    async with uow:
        known = await uow.catalog.skus([cmd.sku])
        if cmd.sku not in known:
            raise Unprocessable(
                f"SKU {cmd.sku} is not known from inventory yet; prices need a registered SKU",
                code="unknown-sku",
                skus=[cmd.sku],
            )
        if not (cmd.allow_below_floor and reason):
            await _guard_live_promotions(
                uow, cmd.sku, known[cmd.sku].category, currency, terms, floor, now
            )
        current = await uow.prices.price(cmd.sku, currency, lock=True)
        if (
            current is not None
            and current.terms == terms
            and current.below_floor == below
            and (current.reason or None) == (reason or None)
        ):
            return PriceOut.of(current)  # the same price again: no history row, no event
        record = PriceRecord(
            sku=cmd.sku,
            currency=currency,
            terms=terms,
            gross_margin=margin,
            margin_floor=floor,
            below_floor=below,
            updated_by=ctx.caller.subject,
            reason=reason,
            updated_at=now,
        )
        previous = current.terms.list_price_minor if current is not None else 0
        await uow.prices.save_price(record, previous)
        uow.add_event(events.price_changed(record, previous), key=cmd.sku)
        await uow.commit()
    return PriceOut.of(record)


async def _guard_live_promotions(
    uow: PricingUnitOfWork,
    sku: str,
    category: str | None,
    currency: str,
    terms: PriceTerms,
    floor: Decimal,
    now: datetime,
) -> None:
    """A new price or cost must not put the SKU under the floor through a live promotion that
    was not itself allowed below the floor."""
    live = await uow.promotions.candidates(
        now, currency, [sku], [category] if category else [], [], all_coupons=True
    )
    offenders: list[dict[str, object]] = []
    for promotion in sorted(live, key=lambda p: p.id):
        if promotion.allow_below_floor:
            continue
        effective = unit_price_after(promotion, terms.list_price_minor)
        margin = terms.margin_at(effective)
        if margin is None or margin < floor:
            offenders.append(
                {
                    "promotion_id": promotion.id,
                    "name": promotion.name,
                    "discounted_price_minor": effective,
                    "gross_margin": fmt_rate(margin) if margin is not None else None,
                }
            )
    if offenders:
        listed = ", ".join(f"{o['name']} ({o['gross_margin'] or 'no revenue'})" for o in offenders)
        raise Unprocessable(
            f"with this price, live promotion(s) sell {sku} under the margin floor "
            f"{fmt_rate(floor)}: {listed}; set allow_below_floor with a reason to override",
            code="margin-below-floor",
            title="Margin under the floor",
            margin_floor=fmt_rate(floor),
            promotions=offenders,
        )


@handler
async def get_price(query: GetPrice, ctx: Ctx) -> PriceOut:
    currency = check_currency(query.currency)
    async with ctx.uow:
        record = await ctx.uow.prices.price(query.sku, currency)
    if record is None:
        raise NotFound(f"no price for SKU {query.sku} in {currency}")
    return PriceOut.of(record, costs=_costs(ctx))


@handler
async def get_price_history(query: GetPriceHistory, ctx: Ctx) -> PriceHistoryOut:
    currency = check_currency(query.currency)
    now = ctx.deps.clock()
    position = decode_cursor(query.cursor)
    before = position.get("id") if position else None
    if before is not None and not isinstance(before, int):
        raise Unprocessable("cursor is not valid", code="invalid-cursor")
    async with ctx.uow:
        page = await ctx.uow.prices.history_page(query.sku, currency, query.limit + 1, before)
        since = now - timedelta(days=30)
        points = await ctx.uow.prices.price_points_since(query.sku, currency, since)
    if not page and before is None:
        raise NotFound(f"no price history for SKU {query.sku} in {currency}")
    lowest = lowest_price_in_window(points, since, now)
    more = len(page) > query.limit
    page = page[: query.limit]
    history = PriceHistory(
        sku=query.sku,
        currency=currency,
        changes=[change for _, change in page],
        lowest_price_30d_minor=lowest or 0,
        next_cursor=encode_cursor({"id": page[-1][0]}) if more and page else None,
    )
    return PriceHistoryOut.of(history, costs=_costs(ctx))
