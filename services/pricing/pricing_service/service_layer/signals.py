"""What pricing learns beside its own price book: competitor prices, the facts other services
publish (SKUs and stock from inventory, segments from recommendation, paid sales from order),
and the dynamic-pricing suggestions drawn from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Unprocessable
from ecomops_platform.pagination import decode_cursor, encode_cursor

from ..domain.models import MAX_MINOR, check_currency
from ..domain.records import CompetitorPriceRecord
from ..domain.suggestions import suggest
from .ports import Ctx
from .views import CompetitorPriceOut, SuggestionOut, SuggestionPage

SYSTEM = (Role.SERVICE,)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCompetitorPrice(Command[CompetitorPriceOut], roles=(Role.OPS, Role.PARTNER)):
    """Record a competitor's observed price (the latest observation per competitor wins)."""

    sku: str
    competitor: str
    currency: str
    price_minor: int
    observed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSuggestions(Query[SuggestionPage], roles=(Role.OPS,)):
    limit: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSku(Command[None], roles=SYSTEM):
    """inventory's SkuUpserted."""

    sku: str
    title: str
    category: str | None
    status: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordStock(Command[None], roles=SYSTEM):
    """inventory's StockLevelChanged."""

    sku: str
    available: int
    on_hand: int
    reserved: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSegment(Command[None], roles=SYSTEM):
    """recommendation's CustomerSegmentChanged."""

    customer_id: str
    segment: str
    churn_risk: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SoldLine:
    sku: str
    quantity: int
    revenue_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSales(Command[None], roles=SYSTEM):
    """order's OrderPaid: paid units per SKU added to the day's sales (the consumer's inbox
    applies each event once)."""

    currency: str
    day: date
    lines: tuple[SoldLine, ...]


@handler
async def set_competitor_price(cmd: SetCompetitorPrice, ctx: Ctx) -> CompetitorPriceOut:
    now = ctx.deps.clock()
    currency = check_currency(cmd.currency)
    if not 0 < cmd.price_minor <= MAX_MINOR:
        raise Unprocessable(f"price_minor must be between 1 and {MAX_MINOR}", code="invalid-price")
    if not cmd.competitor.strip():
        raise Unprocessable("competitor must not be empty", code="invalid-competitor")
    if cmd.observed_at.tzinfo is None:
        raise Unprocessable("observed_at needs a time zone", code="invalid-time")
    if cmd.observed_at > now + timedelta(minutes=5):
        raise Unprocessable("observed_at is in the future", code="invalid-time")
    record = CompetitorPriceRecord(
        sku=cmd.sku,
        competitor=cmd.competitor.strip(),
        currency=currency,
        price_minor=cmd.price_minor,
        observed_at=cmd.observed_at,
        recorded_by=ctx.caller.subject,
    )
    uow = ctx.uow
    async with uow:
        if cmd.sku not in await uow.catalog.skus([cmd.sku]):
            raise Unprocessable(f"SKU {cmd.sku} is not known", code="unknown-sku", skus=[cmd.sku])
        await uow.competitors.save(record, now)
        await uow.commit()
    return CompetitorPriceOut.of(record)


@handler
async def list_suggestions(query: ListSuggestions, ctx: Ctx) -> SuggestionPage:
    """Suggested prices per SKU and currency with their reasons; never below the floor."""
    settings = ctx.deps.settings
    now = ctx.deps.clock()
    position = decode_cursor(query.cursor)
    after: tuple[str, str] | None = None
    if position is not None:
        try:
            after = (str(position["sku"]), str(position["currency"]))
        except KeyError:
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    uow = ctx.uow
    async with uow:
        page = await uow.prices.price_page(query.limit + 1, after)
        more = len(page) > query.limit
        page = page[: query.limit]
        skus = sorted({p.sku for p in page})
        stock = await uow.catalog.stock_for(skus)
        since_day = (now - timedelta(days=settings.velocity_window_days)).date()
        sold = await uow.catalog.units_sold(skus, since_day)
        competitors = await uow.competitors.lowest(
            skus, now - timedelta(days=settings.competitor_max_age_days)
        )
    suggestions = [
        suggest(
            sku=p.sku,
            currency=p.currency,
            terms=p.terms,
            floor=settings.margin_floor,
            units_sold=sold.get((p.sku, p.currency), 0),
            window_days=settings.velocity_window_days,
            stock_available=stock.get(p.sku),
            competitor_min_minor=competitors.get((p.sku, p.currency)),
        )
        for p in page
    ]
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor({"sku": last.sku, "currency": last.currency})
        if more and last is not None
        else None
    )
    return SuggestionPage(items=[SuggestionOut.of(s) for s in suggestions], next_cursor=next_cursor)


@handler
async def record_sku(cmd: RecordSku, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.catalog.upsert_sku(cmd.sku, cmd.title, cmd.category, cmd.status, cmd.at)
        await ctx.uow.commit()


@handler
async def record_stock(cmd: RecordStock, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.catalog.upsert_stock(
            cmd.sku, cmd.available, cmd.on_hand, cmd.reserved, cmd.at
        )
        await ctx.uow.commit()


@handler
async def record_segment(cmd: RecordSegment, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.catalog.upsert_segment(cmd.customer_id, cmd.segment, cmd.churn_risk, cmd.at)
        await ctx.uow.commit()


@handler
async def record_sales(cmd: RecordSales, ctx: Ctx) -> None:
    async with ctx.uow:
        for line in sorted(cmd.lines, key=lambda x: (x.sku, x.quantity, x.revenue_minor)):
            await ctx.uow.catalog.add_sales(
                line.sku, cmd.currency, cmd.day, line.quantity, line.revenue_minor
            )
        await ctx.uow.commit()
