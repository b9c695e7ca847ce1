"""Promotions and their uses. Every write that guards a limit is one conditional statement
(no read-then-write)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import attrs, driver

from ...domain.models import Promotion
from .. import tables as t
from ..read_cache import PROMOTIONS, ReadCache, live_automatic
from .rows import (
    promotion_from_row,
    promotion_values,
)

# The quote and redemption hot paths: asyncpg prepared statements on the unit of work's
# connection (``ecomops_platform.db.driver``); the rest stays SQLAlchemy Core.
_GET_SQL = "SELECT * FROM promotions WHERE id = $1"
_GET_LOCKED_SQL = "SELECT * FROM promotions WHERE id = $1 FOR UPDATE"
_CANDIDATES_SQL = """
SELECT * FROM promotions
WHERE active AND starts_at <= $1 AND ends_at > $1
  AND (currency IS NULL OR currency = $2)
  AND (coupon_code IS NULL OR $6::boolean OR coupon_code = ANY($5::varchar[]))
  AND (scope_all OR scope_skus && $3::varchar[] OR scope_categories && $4::varchar[])
"""
# Every automatic promotion ending after $1 (those not yet started too: the cached list is
# filtered by the clock of each quote, ``read_cache.live_automatic``).
_AUTOMATIC_SQL = "SELECT * FROM promotions WHERE active AND coupon_code IS NULL AND ends_at > $1"
_AUTOMATIC_SLACK = timedelta(days=1)
_BY_CODE_SQL = (
    "SELECT * FROM promotions WHERE coupon_code = ANY($1::varchar[]) "
    "ORDER BY active ASC, created_at ASC"
)
_CUSTOMER_USES_SQL = (
    "SELECT promotion_id, used FROM customer_usage "
    "WHERE customer_id = $1 AND promotion_id = ANY($2::varchar[])"
)
# A use is taken only while the promotion is live and under its limit (one conditional write).
_CONSUME_USE_SQL = """
UPDATE promotions SET used = used + 1
WHERE id = $1 AND active AND starts_at <= $2 AND ends_at > $2
  AND (usage_limit IS NULL OR used < usage_limit)
RETURNING id
"""
_CONSUME_CUSTOMER_USE_SQL = """
INSERT INTO customer_usage (promotion_id, customer_id, used) VALUES ($1, $2, 1)
ON CONFLICT (promotion_id, customer_id) DO UPDATE SET used = customer_usage.used + 1
WHERE customer_usage.used < $3
RETURNING used
"""


class SqlPromotions:
    """Promotions, their change log, and the uses taken and given back."""

    def __init__(self, session: AsyncSession, cache: ReadCache | None = None) -> None:
        self.session = session
        self.cache = cache or ReadCache(0)

    async def insert(self, p: Promotion) -> None:
        self.cache.touched(self.session, PROMOTIONS)
        await self.session.execute(sa.insert(t.promotions).values(**promotion_values(p), used=0))

    async def update(self, p: Promotion) -> None:
        self.cache.touched(self.session, PROMOTIONS)
        values = promotion_values(p)
        values.pop("id")
        values.pop("created_at")
        values.pop("created_by")
        await self.session.execute(
            sa.update(t.promotions).where(t.promotions.c.id == p.id).values(**values)
        )

    async def get(self, promotion_id: str, *, lock: bool = False) -> Promotion | None:
        conn = await driver(self.session)
        row = await conn.fetchrow(_GET_LOCKED_SQL if lock else _GET_SQL, promotion_id)
        return promotion_from_row(attrs(row)) if row is not None else None

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
        if self.cache.enabled and not codes and not all_coupons:
            # Automatic promotions only: the live ones of the short read cache's list, which
            # holds every automatic promotion ending after ``since`` (a day before the clock of
            # the quote that read it: quotes with another clock, jobs' and tests', share it).
            found, _ = self.cache.get(PROMOTIONS, ["automatic"])
            cached = found.get("automatic")
            if cached is None or now < cached[0]:
                generation = self.cache.generation(PROMOTIONS)
                since = now - _AUTOMATIC_SLACK
                conn = await driver(self.session)
                rows = await conn.fetch(_AUTOMATIC_SQL, since)
                cached = (since, [promotion_from_row(attrs(r)) for r in rows])
                self.cache.put(PROMOTIONS, generation, {"automatic": cached})
            return live_automatic(cached[1], now, currency, skus, categories)
        conn = await driver(self.session)
        rows = await conn.fetch(
            _CANDIDATES_SQL, now, currency, list(skus), list(categories), list(codes), all_coupons
        )
        return [promotion_from_row(attrs(r)) for r in rows]

    async def by_code(self, codes: Sequence[str]) -> dict[str, Promotion]:
        """The promotion each code names: the active one, else the most recent one."""
        conn = await driver(self.session)
        found: dict[str, Promotion] = {}
        for row in await conn.fetch(_BY_CODE_SQL, list(codes)):  # later rows (active, newer) win
            found[row["coupon_code"]] = promotion_from_row(attrs(row))
        return found

    async def customer_uses(self, customer_id: str, promotion_ids: Sequence[str]) -> dict[str, int]:
        conn = await driver(self.session)
        rows = await conn.fetch(_CUSTOMER_USES_SQL, customer_id, list(promotion_ids))
        return {r["promotion_id"]: r["used"] for r in rows}

    async def consume_use(self, promotion_id: str, now: datetime) -> bool:
        """One conditional write: a use is taken only while the promotion is live and under its
        limit. Concurrent callers serialise on the row and re-check the condition."""
        self.cache.touched(self.session, PROMOTIONS)  # ``used`` decides "exhausted"
        conn = await driver(self.session)
        return await conn.fetchval(_CONSUME_USE_SQL, promotion_id, now) is not None

    async def consume_customer_use(self, promotion_id: str, customer_id: str, limit: int) -> bool:
        conn = await driver(self.session)
        used = await conn.fetchval(_CONSUME_CUSTOMER_USE_SQL, promotion_id, customer_id, limit)
        return used is not None and used <= limit

    async def give_back_use(self, promotion_id: str, customer_id: str | None) -> None:
        self.cache.touched(self.session, PROMOTIONS)
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
