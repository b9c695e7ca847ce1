"""SQL of the pricing service: rows in, domain records out. Every write that guards a limit is
one conditional statement (no read-then-write)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import (
    LineShare,
    PricedLine,
    PriceTerms,
    Promotion,
    PromotionKind,
    Scope,
)
from ..domain.records import (
    CompetitorPriceRecord,
    PriceChangeRecord,
    PriceRecord,
    QuoteRecord,
    RedemptionRecord,
)
from . import tables as t


@dataclass(frozen=True, slots=True)
class SkuInfo:
    sku: str
    category: str | None
    status: str


def price_from_row(row: Any) -> PriceRecord:
    return PriceRecord(
        sku=row.sku,
        currency=row.currency,
        terms=PriceTerms(
            list_price_minor=row.list_price_minor,
            unit_cost_minor=row.unit_cost_minor,
            commission_rate=Decimal(row.commission_rate),
            marketing_cost_rate=Decimal(row.marketing_cost_rate),
        ),
        gross_margin=Decimal(row.gross_margin),
        margin_floor=Decimal(row.margin_floor),
        below_floor=row.below_floor,
        updated_by=row.updated_by,
        reason=row.reason,
        updated_at=row.updated_at,
    )


def promotion_from_row(row: Any) -> Promotion:
    return Promotion(
        id=row.id,
        name=row.name,
        kind=PromotionKind(row.kind),
        scope=Scope(
            skus=frozenset(row.scope_skus),
            categories=frozenset(row.scope_categories),
            all=row.scope_all,
        ),
        stackable=row.stackable,
        percent=Decimal(row.percent) if row.percent is not None else None,
        amount_minor=row.amount_minor,
        buy_quantity=row.buy_quantity,
        get_quantity=row.get_quantity,
        coupon_code=row.coupon_code,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        active=row.active,
        usage_limit=row.usage_limit,
        per_customer_limit=row.per_customer_limit,
        used=row.used,
        min_subtotal_minor=row.min_subtotal_minor,
        currency=row.currency,
        segments=frozenset(row.segments),
        allow_below_floor=row.allow_below_floor,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def promotion_values(p: Promotion) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind.value,
        "percent": p.percent,
        "amount_minor": p.amount_minor,
        "buy_quantity": p.buy_quantity,
        "get_quantity": p.get_quantity,
        "scope_skus": sorted(p.scope.skus),
        "scope_categories": sorted(p.scope.categories),
        "scope_all": p.scope.all,
        "starts_at": p.starts_at,
        "ends_at": p.ends_at,
        "coupon_code": p.coupon_code,
        "usage_limit": p.usage_limit,
        "per_customer_limit": p.per_customer_limit,
        "min_subtotal_minor": p.min_subtotal_minor,
        "currency": p.currency,
        "segments": sorted(p.segments),
        "stackable": p.stackable,
        "active": p.active,
        "allow_below_floor": p.allow_below_floor,
        "reason": p.reason,
        "created_by": p.created_by,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def lines_to_json(lines: Sequence[PricedLine]) -> list[dict[str, Any]]:
    return [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "discount_minor": line.discount_minor,
            "total_minor": line.total_minor,
            "promotions": [
                {
                    "promotion_id": s.promotion_id,
                    "name": s.name,
                    "discount_minor": s.discount_minor,
                    "coupon_code": s.coupon_code,
                }
                for s in line.promotions
            ],
        }
        for line in lines
    ]


def quote_from_row(row: Any) -> QuoteRecord:
    return QuoteRecord(
        quote_id=row.id,
        customer_id=row.customer_id,
        currency=row.currency,
        lines=[
            PricedLine(
                sku=line["sku"],
                quantity=line["quantity"],
                unit_price_minor=line["unit_price_minor"],
                discount_minor=line["discount_minor"],
                total_minor=line["total_minor"],
                promotions=[
                    LineShare(
                        s["promotion_id"], s["name"], s["discount_minor"], s.get("coupon_code")
                    )
                    for s in line["promotions"]
                ],
            )
            for line in row.lines
        ],
        subtotal_minor=row.subtotal_minor,
        discount_total_minor=row.discount_total_minor,
        total_minor=row.total_minor,
        coupon_codes=list(row.coupon_codes),
        promotion_ids=list(row.promotion_ids),
        created_at=row.created_at,
        expires_at=row.expires_at,
        order_id=row.order_id,
    )


def redemption_from_row(row: Any) -> RedemptionRecord:
    return RedemptionRecord(
        promotion_id=row.promotion_id,
        coupon_code=row.coupon_code,
        order_id=row.order_id,
        quote_id=row.quote_id,
        customer_id=row.customer_id,
        state=row.state,
        redeemed_at=row.redeemed_at,
    )


class PricingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- registry copies ---------------------------------------------------------------------
    async def skus(self, skus: Sequence[str]) -> dict[str, SkuInfo]:
        rows = await self.session.execute(sa.select(t.skus).where(t.skus.c.sku.in_(list(skus))))
        return {r.sku: SkuInfo(r.sku, r.category, r.status) for r in rows}

    async def upsert_sku(
        self, sku: str, title: str, category: str | None, status: str, at: datetime
    ) -> None:
        stmt = pg_insert(t.skus).values(
            sku=sku, title=title, category=category, status=status, updated_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.skus.c.sku],
                set_={
                    "title": stmt.excluded.title,
                    "category": stmt.excluded.category,
                    "status": stmt.excluded.status,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=t.skus.c.updated_at <= stmt.excluded.updated_at,
            )
        )

    async def upsert_segment(
        self, customer_id: str, segment: str, churn_risk: str, at: datetime
    ) -> None:
        stmt = pg_insert(t.customer_segments).values(
            customer_id=customer_id, segment=segment, churn_risk=churn_risk, changed_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.customer_segments.c.customer_id],
                set_={
                    "segment": stmt.excluded.segment,
                    "churn_risk": stmt.excluded.churn_risk,
                    "changed_at": stmt.excluded.changed_at,
                },
                where=t.customer_segments.c.changed_at <= stmt.excluded.changed_at,
            )
        )

    async def segment_of(self, customer_id: str) -> str | None:
        value = await self.session.scalar(
            sa.select(t.customer_segments.c.segment).where(
                t.customer_segments.c.customer_id == customer_id
            )
        )
        return str(value) if value is not None else None

    async def upsert_stock(
        self, sku: str, available: int, on_hand: int, reserved: int, at: datetime
    ) -> None:
        stmt = pg_insert(t.stock_levels).values(
            sku=sku, available=available, on_hand=on_hand, reserved=reserved, occurred_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.stock_levels.c.sku],
                set_={
                    "available": stmt.excluded.available,
                    "on_hand": stmt.excluded.on_hand,
                    "reserved": stmt.excluded.reserved,
                    "occurred_at": stmt.excluded.occurred_at,
                },
                where=t.stock_levels.c.occurred_at <= stmt.excluded.occurred_at,
            )
        )

    async def add_sales(
        self, sku: str, currency: str, day: date, units: int, revenue_minor: int
    ) -> None:
        stmt = pg_insert(t.sales_daily).values(
            sku=sku, currency=currency, day=day, units=units, revenue_minor=revenue_minor
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.sales_daily.c.sku, t.sales_daily.c.currency, t.sales_daily.c.day],
                set_={
                    "units": t.sales_daily.c.units + stmt.excluded.units,
                    "revenue_minor": t.sales_daily.c.revenue_minor + stmt.excluded.revenue_minor,
                },
            )
        )

    # --- prices ------------------------------------------------------------------------------
    async def price(self, sku: str, currency: str, *, lock: bool = False) -> PriceRecord | None:
        stmt = sa.select(t.prices).where(t.prices.c.sku == sku, t.prices.c.currency == currency)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return price_from_row(row) if row is not None else None

    async def prices_for(self, skus: Sequence[str], currency: str) -> dict[str, PriceRecord]:
        rows = await self.session.execute(
            sa.select(t.prices).where(
                t.prices.c.sku.in_(list(skus)), t.prices.c.currency == currency
            )
        )
        return {r.sku: price_from_row(r) for r in rows}

    async def all_prices_for(self, skus: Sequence[str]) -> list[PriceRecord]:
        rows = await self.session.execute(sa.select(t.prices).where(t.prices.c.sku.in_(list(skus))))
        return [price_from_row(r) for r in rows]

    async def skus_in_categories(self, categories: Sequence[str]) -> list[str]:
        rows = await self.session.execute(
            sa.select(t.skus.c.sku).where(t.skus.c.category.in_(list(categories)))
        )
        return [r.sku for r in rows]

    async def all_priced_skus(self) -> list[str]:
        rows = await self.session.execute(sa.select(t.prices.c.sku).distinct())
        return [r.sku for r in rows]

    async def save_price(self, record: PriceRecord, previous_minor: int) -> None:
        values = {
            "sku": record.sku,
            "currency": record.currency,
            "list_price_minor": record.terms.list_price_minor,
            "unit_cost_minor": record.terms.unit_cost_minor,
            "commission_rate": record.terms.commission_rate,
            "marketing_cost_rate": record.terms.marketing_cost_rate,
            "gross_margin": record.gross_margin,
            "margin_floor": record.margin_floor,
            "below_floor": record.below_floor,
            "updated_by": record.updated_by,
            "reason": record.reason,
            "updated_at": record.updated_at,
        }
        stmt = pg_insert(t.prices).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.prices.c.sku, t.prices.c.currency],
                set_={k: v for k, v in values.items() if k not in ("sku", "currency")},
            )
        )
        await self.session.execute(
            sa.insert(t.price_history).values(
                sku=record.sku,
                currency=record.currency,
                list_price_minor=record.terms.list_price_minor,
                previous_price_minor=previous_minor,
                unit_cost_minor=record.terms.unit_cost_minor,
                commission_rate=record.terms.commission_rate,
                marketing_cost_rate=record.terms.marketing_cost_rate,
                gross_margin=record.gross_margin,
                below_floor=record.below_floor,
                changed_by=record.updated_by,
                reason=record.reason,
                changed_at=record.updated_at,
            )
        )

    async def history_page(
        self, sku: str, currency: str, limit: int, before_id: int | None
    ) -> list[tuple[int, PriceChangeRecord]]:
        h = t.price_history
        stmt = sa.select(h).where(h.c.sku == sku, h.c.currency == currency)
        if before_id is not None:
            stmt = stmt.where(h.c.id < before_id)
        rows = await self.session.execute(stmt.order_by(h.c.id.desc()).limit(limit))
        return [
            (
                r.id,
                PriceChangeRecord(
                    list_price_minor=r.list_price_minor,
                    previous_price_minor=r.previous_price_minor,
                    unit_cost_minor=r.unit_cost_minor,
                    commission_rate=Decimal(r.commission_rate),
                    marketing_cost_rate=Decimal(r.marketing_cost_rate),
                    gross_margin=Decimal(r.gross_margin),
                    below_floor=r.below_floor,
                    changed_by=r.changed_by,
                    reason=r.reason,
                    changed_at=r.changed_at,
                ),
            )
            for r in rows
        ]

    async def price_points_since(
        self, sku: str, currency: str, since: datetime
    ) -> list[tuple[datetime, int]]:
        """Changes inside the window plus the last one before it (the price in force then)."""
        h = t.price_history
        base = sa.select(h.c.changed_at, h.c.list_price_minor).where(
            h.c.sku == sku, h.c.currency == currency
        )
        inside = await self.session.execute(base.where(h.c.changed_at > since))
        before = (
            await self.session.execute(
                base.where(h.c.changed_at <= since).order_by(h.c.id.desc()).limit(1)
            )
        ).first()
        points = [(r.changed_at, r.list_price_minor) for r in inside]
        if before is not None:
            points.append((before.changed_at, before.list_price_minor))
        return points

    # --- promotions --------------------------------------------------------------------------
    async def insert_promotion(self, p: Promotion) -> None:
        await self.session.execute(sa.insert(t.promotions).values(**promotion_values(p), used=0))

    async def update_promotion(self, p: Promotion) -> None:
        values = promotion_values(p)
        values.pop("id")
        values.pop("created_at")
        values.pop("created_by")
        await self.session.execute(
            sa.update(t.promotions).where(t.promotions.c.id == p.id).values(**values)
        )

    async def promotion(self, promotion_id: str, *, lock: bool = False) -> Promotion | None:
        stmt = sa.select(t.promotions).where(t.promotions.c.id == promotion_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return promotion_from_row(row) if row is not None else None

    async def coupon_in_use(self, code: str, except_id: str | None = None) -> bool:
        stmt = sa.select(t.promotions.c.id).where(
            t.promotions.c.coupon_code == code, t.promotions.c.active
        )
        if except_id is not None:
            stmt = stmt.where(t.promotions.c.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def record_promotion_change(
        self,
        promotion_id: str,
        action: str,
        changes: dict[str, Any],
        by: str,
        reason: str | None,
        at: datetime,
    ) -> None:
        await self.session.execute(
            sa.insert(t.promotion_changes).values(
                promotion_id=promotion_id,
                action=action,
                changes=changes,
                changed_by=by,
                reason=reason,
                changed_at=at,
            )
        )

    async def list_promotions(
        self, active: bool | None, now: datetime, limit: int, after: tuple[datetime, str] | None
    ) -> list[Promotion]:
        p = t.promotions
        live = sa.and_(p.c.active, p.c.starts_at <= now, p.c.ends_at > now)
        stmt = sa.select(p)
        if active is True:
            stmt = stmt.where(live)
        elif active is False:
            stmt = stmt.where(sa.not_(live))
        if after is not None:
            stmt = stmt.where(sa.tuple_(p.c.created_at, p.c.id) < sa.tuple_(after[0], after[1]))
        rows = await self.session.execute(
            stmt.order_by(p.c.created_at.desc(), p.c.id.desc()).limit(limit)
        )
        return [promotion_from_row(r) for r in rows]

    async def candidate_promotions(
        self,
        now: datetime,
        currency: str,
        skus: Sequence[str],
        categories: Sequence[str],
        codes: Sequence[str],
        *,
        all_coupons: bool = False,
    ) -> list[Promotion]:
        """Live promotions that could touch this basket: automatic ones and the coupons asked
        (every coupon promotion with ``all_coupons``)."""
        p = t.promotions
        coupon: sa.ColumnElement[bool] = p.c.coupon_code.is_(None)
        if all_coupons:
            coupon = sa.true()
        elif codes:
            coupon = sa.or_(coupon, p.c.coupon_code.in_(list(codes)))
        stmt = sa.select(p).where(
            p.c.active,
            p.c.starts_at <= now,
            p.c.ends_at > now,
            sa.or_(p.c.currency.is_(None), p.c.currency == currency),
            coupon,
            sa.or_(
                p.c.scope_all,
                p.c.scope_skus.overlap(sa.cast(list(skus), p.c.scope_skus.type)),
                p.c.scope_categories.overlap(sa.cast(list(categories), p.c.scope_categories.type)),
            ),
        )
        return [promotion_from_row(r) for r in await self.session.execute(stmt)]

    async def promotions_by_code(self, codes: Sequence[str]) -> dict[str, Promotion]:
        """The promotion each code names: the active one, else the most recent one."""
        p = t.promotions
        rows = await self.session.execute(
            sa.select(p)
            .where(p.c.coupon_code.in_(list(codes)))
            .order_by(p.c.active.asc(), p.c.created_at.asc())
        )
        found: dict[str, Promotion] = {}
        for row in rows:  # later rows (active, newer) win
            found[row.coupon_code] = promotion_from_row(row)
        return found

    async def customer_uses(self, customer_id: str, promotion_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(t.customer_usage.c.promotion_id, t.customer_usage.c.used).where(
                t.customer_usage.c.customer_id == customer_id,
                t.customer_usage.c.promotion_id.in_(list(promotion_ids)),
            )
        )
        return {r.promotion_id: r.used for r in rows}

    async def consume_use(self, promotion_id: str, now: datetime) -> bool:
        """One conditional write: a use is taken only while the promotion is live and under its
        limit. Concurrent callers serialise on the row and re-check the condition."""
        p = t.promotions
        row = (
            await self.session.execute(
                sa.update(p)
                .where(
                    p.c.id == promotion_id,
                    p.c.active,
                    p.c.starts_at <= now,
                    p.c.ends_at > now,
                    sa.or_(p.c.usage_limit.is_(None), p.c.used < p.c.usage_limit),
                )
                .values(used=p.c.used + 1)
                .returning(p.c.id)
            )
        ).first()
        return row is not None

    async def consume_customer_use(self, promotion_id: str, customer_id: str, limit: int) -> bool:
        u = t.customer_usage
        stmt = pg_insert(u).values(promotion_id=promotion_id, customer_id=customer_id, used=1)
        row = (
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[u.c.promotion_id, u.c.customer_id],
                    set_={"used": u.c.used + 1},
                    where=u.c.used < limit,
                ).returning(u.c.used)
            )
        ).first()
        return row is not None and row.used <= limit

    async def give_back_use(self, promotion_id: str, customer_id: str | None) -> None:
        p = t.promotions
        await self.session.execute(
            sa.update(p).where(p.c.id == promotion_id, p.c.used > 0).values(used=p.c.used - 1)
        )
        if customer_id is not None:
            u = t.customer_usage
            await self.session.execute(
                sa.update(u)
                .where(
                    u.c.promotion_id == promotion_id, u.c.customer_id == customer_id, u.c.used > 0
                )
                .values(used=u.c.used - 1)
            )

    # --- quotes and redemptions --------------------------------------------------------------
    async def insert_quote(self, q: QuoteRecord) -> None:
        await self.session.execute(
            sa.insert(t.quotes).values(
                id=q.quote_id,
                customer_id=q.customer_id,
                currency=q.currency,
                lines=lines_to_json(q.lines),
                subtotal_minor=q.subtotal_minor,
                discount_total_minor=q.discount_total_minor,
                total_minor=q.total_minor,
                coupon_codes=q.coupon_codes,
                promotion_ids=q.promotion_ids,
                created_at=q.created_at,
                expires_at=q.expires_at,
            )
        )

    async def quote(self, quote_id: str, *, lock: bool = False) -> QuoteRecord | None:
        stmt = sa.select(t.quotes).where(t.quotes.c.id == quote_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return quote_from_row(row) if row is not None else None

    async def quote_of_order(self, order_id: str) -> str | None:
        value = await self.session.scalar(
            sa.select(t.quotes.c.id).where(t.quotes.c.order_id == order_id)
        )
        return str(value) if value is not None else None

    async def bind_quote(self, quote_id: str, order_id: str) -> bool:
        row = (
            await self.session.execute(
                sa.update(t.quotes)
                .where(t.quotes.c.id == quote_id, t.quotes.c.order_id.is_(None))
                .values(order_id=order_id)
                .returning(t.quotes.c.id)
            )
        ).first()
        return row is not None

    async def insert_redemptions(self, rows: Sequence[RedemptionRecord]) -> None:
        if rows:
            await self.session.execute(
                sa.insert(t.redemptions),
                [
                    {
                        "promotion_id": r.promotion_id,
                        "order_id": r.order_id,
                        "quote_id": r.quote_id,
                        "customer_id": r.customer_id,
                        "coupon_code": r.coupon_code,
                        "state": r.state,
                        "redeemed_at": r.redeemed_at,
                    }
                    for r in rows
                ],
            )

    async def redemptions_of(self, order_id: str) -> list[RedemptionRecord]:
        rows = await self.session.execute(
            sa.select(t.redemptions)
            .where(t.redemptions.c.order_id == order_id)
            .order_by(t.redemptions.c.promotion_id)
        )
        return [redemption_from_row(r) for r in rows]

    async def release(
        self, order_id: str, reason: str, now: datetime, *, only_unconfirmed: bool = False
    ) -> list[RedemptionRecord]:
        """Conditional transition to released; only the rows that changed are returned, so a
        use is given back exactly once whoever asks (RPC, OrderCancelled, the sweeper)."""
        r = t.redemptions
        states = [t.REDEEMED] if only_unconfirmed else [t.REDEEMED, t.CONFIRMED]
        rows = await self.session.execute(
            sa.update(r)
            .where(r.c.order_id == order_id, r.c.state.in_(states))
            .values(state=t.RELEASED, released_at=now, release_reason=reason[:100])
            .returning(*r.c)
        )
        return sorted((redemption_from_row(x) for x in rows), key=lambda x: x.promotion_id)

    async def confirm(self, order_id: str, now: datetime) -> int:
        r = t.redemptions
        result = await self.session.execute(
            sa.update(r)
            .where(r.c.order_id == order_id, r.c.state == t.REDEEMED)
            .values(state=t.CONFIRMED, confirmed_at=now)
            .returning(r.c.promotion_id)
        )
        return len(result.all())

    async def unconfirmed_orders(self, cutoff: datetime, limit: int) -> list[str]:
        """Orders with redemptions never confirmed before ``cutoff`` (rows another transaction
        is changing right now are skipped)."""
        r = t.redemptions
        rows = await self.session.execute(
            sa.select(r.c.order_id)
            .where(r.c.state == t.REDEEMED, r.c.redeemed_at < cutoff)
            .order_by(r.c.redeemed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return sorted({x.order_id for x in rows})

    # --- competitor prices and suggestion inputs ---------------------------------------------
    async def save_competitor_price(self, rec: CompetitorPriceRecord, now: datetime) -> bool:
        c = t.competitor_prices
        stmt = pg_insert(c).values(
            sku=rec.sku,
            competitor=rec.competitor,
            currency=rec.currency,
            price_minor=rec.price_minor,
            observed_at=rec.observed_at,
            recorded_by=rec.recorded_by,
            recorded_at=now,
        )
        row = (
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.c.sku, c.c.competitor, c.c.currency],
                    set_={
                        "price_minor": stmt.excluded.price_minor,
                        "observed_at": stmt.excluded.observed_at,
                        "recorded_by": stmt.excluded.recorded_by,
                        "recorded_at": stmt.excluded.recorded_at,
                    },
                    where=c.c.observed_at <= stmt.excluded.observed_at,
                ).returning(c.c.sku)
            )
        ).first()
        return row is not None

    async def price_page(self, limit: int, after: tuple[str, str] | None) -> list[PriceRecord]:
        p = t.prices
        stmt = sa.select(p)
        if after is not None:
            stmt = stmt.where(sa.tuple_(p.c.sku, p.c.currency) > sa.tuple_(after[0], after[1]))
        rows = await self.session.execute(stmt.order_by(p.c.sku, p.c.currency).limit(limit))
        return [price_from_row(r) for r in rows]

    async def stock_for(self, skus: Sequence[str]) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(t.stock_levels.c.sku, t.stock_levels.c.available).where(
                t.stock_levels.c.sku.in_(list(skus))
            )
        )
        return {r.sku: r.available for r in rows}

    async def units_sold(self, skus: Sequence[str], since: date) -> dict[tuple[str, str], int]:
        s = t.sales_daily
        rows = await self.session.execute(
            sa.select(s.c.sku, s.c.currency, sa.func.sum(s.c.units).label("units"))
            .where(s.c.sku.in_(list(skus)), s.c.day >= since)
            .group_by(s.c.sku, s.c.currency)
        )
        return {(r.sku, r.currency): int(r.units) for r in rows}

    async def competitor_min(
        self, skus: Sequence[str], since: datetime
    ) -> dict[tuple[str, str], int]:
        c = t.competitor_prices
        rows = await self.session.execute(
            sa.select(c.c.sku, c.c.currency, sa.func.min(c.c.price_minor).label("low"))
            .where(c.c.sku.in_(list(skus)), c.c.observed_at >= since)
            .group_by(c.c.sku, c.c.currency)
        )
        return {(r.sku, r.currency): int(r.low) for r in rows}
