"""Promotions and their uses. Every write that guards a limit is one conditional statement
(no read-then-write)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import Promotion
from .. import tables as t
from .rows import (
    promotion_from_row,
    promotion_values,
)


class SqlPromotions:
    """Promotions, their change log, and the uses taken and given back."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, p: Promotion) -> None:
        await self.session.execute(sa.insert(t.promotions).values(**promotion_values(p), used=0))

    async def update(self, p: Promotion) -> None:
        values = promotion_values(p)
        values.pop("id")
        values.pop("created_at")
        values.pop("created_by")
        await self.session.execute(
            sa.update(t.promotions).where(t.promotions.c.id == p.id).values(**values)
        )

    async def get(self, promotion_id: str, *, lock: bool = False) -> Promotion | None:
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

    async def record_change(
        self,
        promotion_id: str,
        action: str,
        changes: Mapping[str, object],
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

    async def page(
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

    async def candidates(
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

    async def by_code(self, codes: Sequence[str]) -> dict[str, Promotion]:
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
