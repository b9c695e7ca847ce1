"""Promotions and coupons: create (guarded by the margin floor for every priced SKU in scope),
read, list, change, deactivate; and the life of their redemptions after checkout — confirmed by
OrderPlaced, given back by the sweep when no order was ever placed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Conflict, NotFound, Unprocessable
from ecomops_platform.pagination import decode_cursor, encode_cursor

from ..domain.models import (
    Promotion,
    PromotionKind,
    Scope,
    check_currency,
    fmt_rate,
    unit_price_after,
    validate_promotion_terms,
)
from ..domain.records import RELEASED
from . import events
from .ids import new_id
from .ports import ChangeDocument, Ctx, PricingUnitOfWork
from .quotes import ReleaseRedemption
from .views import PromotionOut, PromotionPage

log = logging.getLogger("ecomops.pricing")

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True)
class BuyGet:
    buy: int
    get: int


#: What REST sends as a promotion's ``value``: a rate, an amount, or {buy, get}.
PromotionValue = BuyGet | int | Decimal


@dataclass(frozen=True, slots=True)
class KindTerms:
    """The kind-specific terms of a promotion (the others stay None)."""

    percent: Decimal | None = None
    amount_minor: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


def kind_terms(kind: str, value: PromotionValue | None) -> KindTerms:
    """The kind-specific terms of a promotion from a REST ``value``."""
    if value is None:
        return KindTerms()
    if kind == PromotionKind.PERCENT:
        if isinstance(value, BuyGet):
            raise Unprocessable(
                "a percent promotion takes a decimal value", code="invalid-promotion"
            )
        return KindTerms(percent=Decimal(value))
    if kind == PromotionKind.FIXED_AMOUNT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unprocessable(
                "a fixed_amount promotion takes an integer amount in minor units",
                code="invalid-promotion",
            )
        return KindTerms(amount_minor=value)
    if not isinstance(value, BuyGet):
        raise Unprocessable(
            "a buy_x_get_y promotion takes value {buy, get}", code="invalid-promotion"
        )
    return KindTerms(buy_quantity=value.buy, get_quantity=value.get)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePromotion(Command[PromotionOut], roles=(Role.OPS, Role.SERVICE), idempotent=True):
    """Create a promotion (sets are sorted tuples: the Idempotency-Key fingerprint is stable).
    Ops, and services: support issues its goodwill coupons with it."""

    name: str
    kind: PromotionKind
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    all: bool = False
    starts_at: datetime
    ends_at: datetime
    percent: Decimal | None = None
    amount_minor: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    coupon_code: str | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    min_subtotal_minor: int = 0
    currency: str | None = None
    segments: tuple[str, ...] = ()
    stackable: bool = False
    allow_below_floor: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePromotionByRpc(CreatePromotion, operation="grpc.create_promotion"):
    """gRPC's CreatePromotion with an idempotency_key (its own key namespace, as before)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePromotionUnkeyed(CreatePromotion, idempotent=False):
    """gRPC's CreatePromotion without an idempotency_key (the contract makes it optional)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetPromotion(Query[PromotionOut], roles=OPS):
    promotion_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListPromotions(Query[PromotionPage], roles=OPS):
    """Newest first; ``active``: live now (True), the others (False), all (None)."""

    active: bool | None
    limit: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatePromotion(Command[PromotionOut], roles=OPS):
    """Change fields of an active promotion. ``value`` (REST) is read by the promotion's kind;
    gRPC sends ``percent`` / ``amount_minor`` in ``changes`` directly."""

    promotion_id: str
    changes: Mapping[str, object]
    value: PromotionValue | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeactivatePromotion(Command[PromotionOut], roles=OPS):
    promotion_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmRedemptions(Command[int], roles=(Role.SERVICE,)):
    """OrderPlaced: the order exists, its promotion uses stay taken. Checkout redeems only for
    an order with coupon codes, and OrderPlaced names them: an order without any has nothing
    to confirm (most orders; two statements each otherwise)."""

    order_id: str
    coupon_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepUnconfirmedRedemptions(Command[int], roles=(Role.SERVICE,)):
    """The periodic job: give back uses whose order was never placed."""

    batch: int = 200


UPDATABLE = frozenset(
    {
        "name",
        "starts_at",
        "ends_at",
        "usage_limit",
        "per_customer_limit",
        "min_subtotal_minor",
        "stackable",
        "percent",
        "amount_minor",
        "segments",
        "allow_below_floor",
        "reason",
    }
)
NOT_NULL = ("name", "starts_at", "ends_at", "min_subtotal_minor", "stackable", "allow_below_floor")


def _validate(p: Promotion, now: datetime) -> None:
    validate_promotion_terms(
        p.kind,
        percent=p.percent,
        amount_minor=p.amount_minor,
        buy_quantity=p.buy_quantity,
        get_quantity=p.get_quantity,
        currency=p.currency,
        min_subtotal_minor=p.min_subtotal_minor,
        starts_at=p.starts_at or now,
        ends_at=p.ends_at or now,
        scope=p.scope,
        usage_limit=p.usage_limit,
        per_customer_limit=p.per_customer_limit,
    )
    if not p.name.strip():
        raise Unprocessable("name must not be empty", code="invalid-promotion", field="name")
    if p.allow_below_floor and not p.reason:
        raise Unprocessable(
            "allow_below_floor needs a reason", code="invalid-promotion", field="reason"
        )


async def _guard_promotion_margin(uow: PricingUnitOfWork, p: Promotion, floor: Decimal) -> None:
    """Refuse a promotion that would put any priced SKU in scope under the floor."""
    skus: set[str] = set(p.scope.skus)
    if p.scope.all:
        skus |= set(await uow.prices.all_priced_skus())
    elif p.scope.categories:
        skus |= set(await uow.catalog.skus_in_categories(sorted(p.scope.categories)))
    if not skus:
        return
    offenders: list[dict[str, object]] = []
    prices = await uow.prices.all_prices_for(sorted(skus))
    for price in sorted(prices, key=lambda x: (x.sku, x.currency)):
        if p.currency is not None and price.currency != p.currency:
            continue
        effective = unit_price_after(p, price.terms.list_price_minor)
        margin = price.terms.margin_at(effective)
        if margin is None or margin < floor:
            offenders.append(
                {
                    "sku": price.sku,
                    "currency": price.currency,
                    "discounted_price_minor": effective,
                    "gross_margin": fmt_rate(margin) if margin is not None else None,
                }
            )
    if offenders and not (p.allow_below_floor and p.reason):
        listed = ", ".join(
            f"{o['sku']} ({o['currency']}): {o['gross_margin'] or 'no revenue'}"
            for o in offenders[:20]
        )
        raise Unprocessable(
            f"the promotion puts {len(offenders)} SKU(s) under the margin floor "
            f"{fmt_rate(floor)}: {listed}; set allow_below_floor with a reason to override",
            code="margin-below-floor",
            title="Margin under the floor",
            margin_floor=fmt_rate(floor),
            skus=offenders,
        )


def _promotion_json(p: Promotion) -> ChangeDocument:
    return {
        "name": p.name,
        "kind": p.kind.value,
        "percent": str(p.percent) if p.percent is not None else None,
        "amount_minor": p.amount_minor,
        "buy": p.buy_quantity,
        "get": p.get_quantity,
        "scope": {
            "skus": sorted(p.scope.skus),
            "categories": sorted(p.scope.categories),
            "all": p.scope.all,
        },
        "starts_at": p.starts_at.isoformat() if p.starts_at else None,
        "ends_at": p.ends_at.isoformat() if p.ends_at else None,
        "coupon_code": p.coupon_code,
        "usage_limit": p.usage_limit,
        "per_customer_limit": p.per_customer_limit,
        "min_subtotal_minor": p.min_subtotal_minor,
        "currency": p.currency,
        "segments": sorted(p.segments),
        "stackable": p.stackable,
        "active": p.active,
        "allow_below_floor": p.allow_below_floor,
    }


@handler
async def create_promotion(cmd: CreatePromotion, ctx: Ctx) -> PromotionOut:
    now = ctx.deps.clock()
    code = cmd.coupon_code.strip().upper() if cmd.coupon_code else None
    promotion = Promotion(
        id=new_id("promo"),
        name=cmd.name.strip(),
        kind=cmd.kind,
        scope=Scope(skus=frozenset(cmd.skus), categories=frozenset(cmd.categories), all=cmd.all),
        stackable=cmd.stackable,
        percent=cmd.percent,
        amount_minor=cmd.amount_minor,
        buy_quantity=cmd.buy_quantity,
        get_quantity=cmd.get_quantity,
        coupon_code=code or None,
        starts_at=cmd.starts_at,
        ends_at=cmd.ends_at,
        active=True,
        usage_limit=cmd.usage_limit,
        per_customer_limit=cmd.per_customer_limit,
        used=0,
        min_subtotal_minor=cmd.min_subtotal_minor,
        currency=check_currency(cmd.currency) if cmd.currency else None,
        segments=frozenset(cmd.segments),
        allow_below_floor=cmd.allow_below_floor,
        reason=cmd.reason,
        created_by=ctx.caller.subject,
        created_at=now,
        updated_at=now,
    )
    _validate(promotion, now)
    uow = ctx.uow
    async with uow:
        if promotion.coupon_code and await uow.promotions.coupon_in_use(promotion.coupon_code):
            raise Conflict(
                f"coupon code {promotion.coupon_code} already names an active promotion",
                code="coupon-code-taken",
                coupon_code=promotion.coupon_code,
            )
        await _guard_promotion_margin(uow, promotion, ctx.deps.settings.margin_floor)
        await uow.promotions.insert(promotion)
        await uow.promotions.record_change(
            promotion.id,
            "created",
            _promotion_json(promotion),
            ctx.caller.subject,
            cmd.reason,
            now,
        )
        uow.add_event(events.promotion_changed(promotion, ctx.caller.subject), key=promotion.id)
        await uow.commit()
    return PromotionOut.of(promotion)


@handler
async def create_promotion_by_rpc(cmd: CreatePromotionByRpc, ctx: Ctx) -> PromotionOut:
    return await create_promotion(cmd, ctx)


@handler
async def create_promotion_unkeyed(cmd: CreatePromotionUnkeyed, ctx: Ctx) -> PromotionOut:
    return await create_promotion(cmd, ctx)


async def _load(uow: PricingUnitOfWork, promotion_id: str, *, lock: bool = False) -> Promotion:
    found = await uow.promotions.get(promotion_id, lock=lock)
    if found is None:
        raise NotFound(f"promotion {promotion_id} not found")
    return found


@handler
async def get_promotion(query: GetPromotion, ctx: Ctx) -> PromotionOut:
    async with ctx.uow:
        return PromotionOut.of(await _load(ctx.uow, query.promotion_id))


@handler
async def list_promotions(query: ListPromotions, ctx: Ctx) -> PromotionPage:
    position = decode_cursor(query.cursor)
    after: tuple[datetime, str] | None = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(str(position["at"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    async with ctx.uow:
        rows = await ctx.uow.promotions.page(query.active, ctx.deps.clock(), query.limit + 1, after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor({"at": last.created_at.isoformat() if last.created_at else "", "id": last.id})
        if more and last is not None
        else None
    )
    return PromotionPage(items=[PromotionOut.of(p) for p in rows], next_cursor=next_cursor)


@handler
async def update_promotion(cmd: UpdatePromotion, ctx: Ctx) -> PromotionOut:
    now = ctx.deps.clock()
    changes = dict(cmd.changes)
    if cmd.value is not None:
        async with ctx.uow:
            kind = (await _load(ctx.uow, cmd.promotion_id)).kind
        changes.update(kind_terms(kind, cmd.value).changes())
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            raise Unprocessable(f"{name} cannot be null", code="invalid-promotion")
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise Unprocessable(
            f"these fields cannot be changed: {', '.join(sorted(unknown))}",
            code="invalid-promotion",
        )
    uow = ctx.uow
    async with uow:
        current = await _load(uow, cmd.promotion_id, lock=True)
        if not current.active:
            raise Conflict(
                f"promotion {cmd.promotion_id} is deactivated; create a new one",
                code="promotion-inactive",
            )
        if "percent" in changes and current.kind is not PromotionKind.PERCENT:
            raise Unprocessable("percent applies to percent promotions", code="invalid-promotion")
        if "amount_minor" in changes and current.kind is not PromotionKind.FIXED_AMOUNT:
            raise Unprocessable(
                "amount_minor applies to fixed_amount promotions", code="invalid-promotion"
            )
        values = dict(changes)
        if "segments" in values:
            segments = values["segments"]
            assert segments is None or isinstance(segments, list | tuple)
            values["segments"] = frozenset(segments or ())
        if "allow_below_floor" not in values:
            # An override is given per change: a new discount is checked against the floor
            # again unless this change allows it explicitly.
            values["allow_below_floor"] = False
        updated = replace(current, **values, updated_at=now)  # type: ignore[arg-type]
        _validate(updated, now)
        if updated.usage_limit is not None and updated.usage_limit < current.used:
            raise Unprocessable(
                f"usage_limit {updated.usage_limit} is under the {current.used} uses consumed",
                code="invalid-promotion",
                field="usage_limit",
            )
        if any(k in changes for k in ("percent", "amount_minor")) or changes.get(
            "allow_below_floor"
        ):
            await _guard_promotion_margin(uow, updated, ctx.deps.settings.margin_floor)
        await uow.promotions.update(updated)
        document = _promotion_json(updated)
        reason = changes.get("reason")
        await uow.promotions.record_change(
            cmd.promotion_id,
            "updated",
            {k: document.get(k, str(v)) for k, v in changes.items()},
            ctx.caller.subject,
            reason if isinstance(reason, str) else None,
            now,
        )
        uow.add_event(events.promotion_changed(updated, ctx.caller.subject), key=cmd.promotion_id)
        await uow.commit()
    return PromotionOut.of(updated)


@handler
async def deactivate_promotion(cmd: DeactivatePromotion, ctx: Ctx) -> PromotionOut:
    now = ctx.deps.clock()
    uow = ctx.uow
    async with uow:
        current = await _load(uow, cmd.promotion_id, lock=True)
        if not current.active:
            return PromotionOut.of(current)  # idempotent
        updated = replace(current, active=False, updated_at=now)
        await uow.promotions.update(updated)
        await uow.promotions.record_change(
            cmd.promotion_id, "deactivated", {"active": False}, ctx.caller.subject, None, now
        )
        uow.add_event(events.promotion_changed(updated, ctx.caller.subject), key=cmd.promotion_id)
        await uow.commit()
    return PromotionOut.of(updated)


@handler
async def confirm_redemptions(cmd: ConfirmRedemptions, ctx: Ctx) -> int:
    if not cmd.coupon_codes:
        return 0
    now = ctx.deps.clock()
    uow = ctx.uow
    async with uow:
        confirmed = await uow.redemptions.confirm(cmd.order_id, now)
        if confirmed == 0:
            states = {r.state for r in await uow.redemptions.of_order(cmd.order_id)}
            if RELEASED in states:
                log.warning(
                    "OrderPlaced for order %s arrived after its promotion uses were given back "
                    "(confirmation window passed); the uses stay released",
                    cmd.order_id,
                )
        await uow.commit()
    return confirmed


@handler
async def sweep_unconfirmed_redemptions(cmd: SweepUnconfirmedRedemptions, ctx: Ctx) -> int:
    """Give back uses whose order was never placed (no OrderPlaced within the window).

    One transaction per order (each release is its own message), promotions in id order (as
    checkout locks them), so the sweep never deadlocks with checkouts; the conditional state
    change makes a racing OrderCancelled give each use back exactly once.
    """
    now = ctx.deps.clock()
    window = ctx.deps.settings.redemption_confirm_window_seconds
    cutoff = now - timedelta(seconds=window)
    async with ctx.uow:
        orders = await ctx.uow.redemptions.unconfirmed_orders(cutoff, cmd.batch)
    total = 0
    for order_id in orders:
        result = await ctx.bus.handle(
            ReleaseRedemption(order_id=order_id, reason="unconfirmed", only_unconfirmed=True),
            ctx.caller,
        )
        total += result.released_count
    if total:
        log.info("gave back %d unconfirmed promotion use(s)", total)
    return total
