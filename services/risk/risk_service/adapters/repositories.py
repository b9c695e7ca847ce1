"""The risk repositories: SQLAlchemy Core on the unit of work's session. All SQL of the
service is here (and in ``queries.py`` for the KPIs)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import attrs, driver

from ..domain.models import BlocklistKind, CustomerHistory, Dimension
from ..domain.rules import RuleSet, parse_rule_set
from ..service_layer.ports import AssessmentRecord, PaidOrder
from ..service_layer.views import BlocklistEntryView, LabelView, ReasonView, ReviewView
from .tables import (
    assessments,
    blocklist,
    labels,
    payments,
    reviews,
    rule_sets,
    velocity_events,
)

RULES_LOCK = 0x5249534B  # "RISK": serialises rule set versions

# The assessment's hot path runs as asyncpg prepared statements on the unit of work's connection
# (``ecomops_platform.db.driver``): no SQLAlchemy compilation or result processing per request.
# Velocity: the per-key advisory locks (sorted, so concurrent assessments never deadlock) are
# taken by the same statement, before its insert (the insert reads from them); the counts that
# follow are another statement, so their snapshot sees every row committed under those locks.
_RECORD_SQL = """
INSERT INTO velocity_events (dimension, value, order_id, at)
SELECT d, v, $3, $4 FROM unnest($1::varchar[], $2::varchar[]) AS u(d, v)
WHERE $5::text[] IS NULL
ON CONFLICT DO NOTHING
"""
_RECORD_LOCKED_SQL = """
WITH locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
    FROM unnest($5::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n
)
INSERT INTO velocity_events (dimension, value, order_id, at)
SELECT d, v, $3, $4 FROM unnest($1::varchar[], $2::varchar[]) AS u(d, v)
WHERE (SELECT count(*) FROM locks) >= 0
ON CONFLICT DO NOTHING
"""
_HISTORY_SQL = """
SELECT count(*), coalesce(avg(amount_minor), 0), coalesce(max(amount_minor), 0)
FROM payments
WHERE customer_id = $1 AND currency = $2 AND refunded IS false AND order_id != $3
"""
_BLOCKLIST_HITS_SQL = """
SELECT kind FROM blocklist
WHERE (kind, value) IN (SELECT * FROM unnest($1::varchar[], $2::varchar[]))
"""
_BY_ORDER_SQL = "SELECT * FROM assessments WHERE order_id = $1"
_ADD_ASSESSMENT_SQL = """
INSERT INTO assessments (assessment_id, order_id, customer_id, amount_minor, currency, score,
                         decision, final_decision, reasons, rules_version, model_version,
                         features, request_fingerprint, review_id, assessed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12::jsonb, $13, $14, $15)
ON CONFLICT (order_id) DO NOTHING
RETURNING assessment_id
"""
_ADD_REVIEW_SQL = """
INSERT INTO reviews (review_id, assessment_id, order_id, customer_id, status, score, reasons,
                     amount_minor, currency, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
"""


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


def _reasons_json(reasons: Sequence[ReasonView]) -> list[dict[str, Any]]:
    return [
        {"code": r.code, "detail": r.detail, "weight": r.weight, "shadow": r.shadow}
        for r in reasons
    ]


def _reasons(raw: Iterable[Mapping[str, Any]]) -> tuple[ReasonView, ...]:
    return tuple(
        ReasonView(
            code=str(r["code"]),
            detail=str(r["detail"]),
            weight=str(r["weight"]),
            shadow=bool(r.get("shadow", False)),
        )
        for r in raw
    )


# --- rule sets --------------------------------------------------------------------------------


def _rule_set(row: Any) -> RuleSet:
    return parse_rule_set(
        row.definition, version=row.version, created_by=row.created_by, created_at=row.created_at
    )


# The newest rule set is read on every assessment. A version is never changed once written
# (a change is a new version), so the parsed rule set is kept per process, keyed by its version
# and creation time; the statement sends the definition only when the newest version is
# another one. Still one round trip: a new version is in force for the next assessment.
_LATEST_RULES_SQL = """
SELECT version, created_by, created_at,
       CASE WHEN version = $1 AND created_at = $2 THEN NULL ELSE definition END AS definition
FROM rule_sets ORDER BY version DESC LIMIT 1
"""
_latest_rules: list[RuleSet] = []


class SqlRuleSetRepository(_Repository):
    async def latest(self) -> RuleSet | None:
        cached = _latest_rules[0] if _latest_rules else None
        conn = await driver(self.session)
        row = await conn.fetchrow(
            _LATEST_RULES_SQL,
            cached.version if cached else None,
            cached.created_at if cached else None,
        )
        if row is None:
            return None
        if row["definition"] is None and cached is not None:
            return cached
        rules = _rule_set(attrs(row))
        _latest_rules[:] = [rules]
        return rules

    async def get(self, version: int | None = None) -> RuleSet | None:
        if version is None:
            return await self.latest()
        query = sa.select(rule_sets)
        if version is None:
            query = query.order_by(rule_sets.c.version.desc()).limit(1)
        else:
            query = query.where(rule_sets.c.version == version)
        row = (await self.session.execute(query)).first()
        return None if row is None else _rule_set(row)

    async def list(self, *, before_version: int | None, limit: int) -> list[RuleSet]:
        query = sa.select(rule_sets).order_by(rule_sets.c.version.desc()).limit(limit)
        if before_version is not None:
            query = query.where(rule_sets.c.version < before_version)
        return [_rule_set(row) for row in (await self.session.execute(query)).all()]

    async def add(self, definition: Mapping[str, Any], created_by: str, now: datetime) -> int:
        # Data protection, not a job singleton: versions are numbered one at a time.
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(RULES_LOCK)))
        latest = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.max(rule_sets.c.version), 0))
        )
        version = int(latest or 0) + 1
        await self.session.execute(
            sa.insert(rule_sets).values(
                version=version, definition=dict(definition), created_by=created_by, created_at=now
            )
        )
        return version

    async def ensure_default(self, definition: Mapping[str, Any], now: datetime) -> None:
        await self.session.execute(
            pg_insert(rule_sets)
            .values(version=1, definition=dict(definition), created_by="system", created_at=now)
            .on_conflict_do_nothing()
        )


# --- velocity, payments, blocklist -----------------------------------------------------------


class SqlVelocityRepository(_Repository):
    async def record(
        self, order_id: str, keys: Mapping[Dimension, str], at: datetime, *, lock: bool
    ) -> None:
        """Count this order once per key (dedupe by order id), serialised per key when ``lock``.

        The transaction-scoped advisory locks, taken in sorted order, make concurrent
        assessments of one customer / device / IP / fingerprint see each other's rows: counts
        are exact.
        """
        if not keys:
            return
        ordered = sorted(keys.items())
        conn = await driver(self.session)
        await conn.execute(
            _RECORD_LOCKED_SQL if lock else _RECORD_SQL,
            [dim.value for dim, _ in ordered],
            [value for _, value in ordered],
            order_id,
            at,
            sorted(f"{dim.value}:{value}" for dim, value in ordered) if lock else None,
        )

    async def counts(
        self,
        keys: Mapping[Dimension, str],
        windows: Mapping[Dimension, Iterable[int]],
        now: datetime,
    ) -> dict[tuple[Dimension, int], int]:
        """Orders per (dimension, window) for the given keys, in one query."""
        wanted: list[tuple[Dimension, int]] = []
        columns: list[str] = []
        args: list[Any] = []
        for dim, value in sorted(keys.items()):
            for window in sorted(set(windows.get(dim, ()))):
                n = len(args)
                columns.append(
                    f"count(*) FILTER (WHERE e.dimension = ${n + 1} AND e.value = ${n + 2} "
                    f"AND e.at > ${n + 3})"
                )
                args += [dim.value, value, now - timedelta(seconds=window)]
                wanted.append((dim, window))
        if not wanted:
            return {}
        longest = max(w for _, w in wanted)
        n = len(args)
        args += [
            [dim.value for dim in keys],
            list(keys.values()),
            now - timedelta(seconds=longest),
        ]
        # One statement; its text depends only on how many counts the rules ask for, so asyncpg
        # prepares it once per connection (only placeholders are formatted into it). Joined
        # from the keys, so that even the generic plan reads ix_velocity_key_at per key.
        sql = (
            f"SELECT {', '.join(columns)} "  # noqa: S608
            f"FROM unnest(${n + 1}::varchar[], ${n + 2}::varchar[]) AS k(d, v) "
            f"JOIN velocity_events e ON e.dimension = k.d AND e.value = k.v AND e.at > ${n + 3}"
        )
        conn = await driver(self.session)
        row = await conn.fetchrow(sql, *args)
        return {key: int(row[i]) for i, key in enumerate(wanted)}

    async def prune(self, before: datetime) -> int:
        result = await self.session.execute(
            sa.delete(velocity_events).where(velocity_events.c.at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class SqlPaymentRepository(_Repository):
    async def history(self, customer_id: str, currency: str, exclude_order: str) -> CustomerHistory:
        conn = await driver(self.session)
        row = await conn.fetchrow(_HISTORY_SQL, customer_id, currency, exclude_order)
        return CustomerHistory(int(row[0]), Decimal(row[1]), int(row[2]))

    async def record(self, payment: PaidOrder) -> None:
        await self.session.execute(
            pg_insert(payments)
            .values(
                order_id=payment.order_id,
                customer_id=payment.customer_id,
                currency=payment.currency,
                amount_minor=payment.amount_minor,
                payment_fingerprint=payment.payment_fingerprint,
                paid_at=payment.paid_at,
            )
            .on_conflict_do_nothing()
        )

    async def mark_refunded(self, order_id: str) -> None:
        await self.session.execute(
            sa.update(payments).where(payments.c.order_id == order_id).values(refunded=True)
        )


def _entry(row: Any) -> BlocklistEntryView:
    return BlocklistEntryView(
        kind=row.kind,
        value=row.value,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
    )


class SqlBlocklistRepository(_Repository):
    async def hits(self, keys: Mapping[BlocklistKind, str]) -> frozenset[BlocklistKind]:
        if not keys:
            return frozenset()
        conn = await driver(self.session)
        rows = await conn.fetch(
            _BLOCKLIST_HITS_SQL, [kind.value for kind in keys], list(keys.values())
        )
        return frozenset(BlocklistKind(r["kind"]) for r in rows)

    async def put(
        self, kind: BlocklistKind, value: str, reason: str, by: str, now: datetime
    ) -> BlocklistEntryView:
        stmt = pg_insert(blocklist).values(
            kind=kind.value, value=value, reason=reason, created_by=by, created_at=now
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[blocklist.c.kind, blocklist.c.value],
            set_={"reason": stmt.excluded.reason},
        ).returning(blocklist)
        return _entry((await self.session.execute(upsert)).one())

    async def delete(self, kind: BlocklistKind, value: str) -> bool:
        row = (
            await self.session.execute(
                sa.delete(blocklist)
                .where(blocklist.c.kind == kind.value, blocklist.c.value == value)
                .returning(blocklist.c.value)
            )
        ).first()
        return row is not None

    async def list(
        self, kind: BlocklistKind | None, after: tuple[str, str] | None, limit: int
    ) -> list[BlocklistEntryView]:
        query = sa.select(blocklist).order_by(blocklist.c.kind, blocklist.c.value).limit(limit)
        if kind is not None:
            query = query.where(blocklist.c.kind == kind.value)
        if after is not None:
            query = query.where(sa.tuple_(blocklist.c.kind, blocklist.c.value) > sa.tuple_(*after))
        return [_entry(row) for row in (await self.session.execute(query)).all()]


# --- assessments, reviews, labels -------------------------------------------------------------


def _assessment(row: Any) -> AssessmentRecord:
    return AssessmentRecord(
        assessment_id=row.assessment_id,
        order_id=row.order_id,
        customer_id=row.customer_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        score=row.score,
        decision=row.decision,
        final_decision=row.final_decision,
        reasons=_reasons(row.reasons),
        rules_version=row.rules_version,
        model_version=row.model_version,
        features=dict(row.features),
        request_fingerprint=row.request_fingerprint,
        review_id=row.review_id,
        assessed_at=row.assessed_at,
    )


class SqlAssessmentRepository(_Repository):
    async def by_order(self, order_id: str) -> AssessmentRecord | None:
        conn = await driver(self.session)
        row = await conn.fetchrow(_BY_ORDER_SQL, order_id)
        return None if row is None else _assessment(attrs(row))

    async def get(self, assessment_id: str) -> AssessmentRecord | None:
        row = (
            await self.session.execute(
                sa.select(assessments).where(assessments.c.assessment_id == assessment_id)
            )
        ).first()
        return None if row is None else _assessment(row)

    async def add(self, record: AssessmentRecord) -> bool:
        conn = await driver(self.session)
        inserted = await conn.fetchval(
            _ADD_ASSESSMENT_SQL,
            record.assessment_id,
            record.order_id,
            record.customer_id,
            record.amount_minor,
            record.currency,
            record.score,
            record.decision,
            record.final_decision,
            json.dumps(_reasons_json(record.reasons)),
            record.rules_version,
            record.model_version,
            json.dumps(dict(record.features)),
            record.request_fingerprint,
            record.review_id,
            record.assessed_at,
        )
        return inserted is not None

    async def set_final_decision(self, assessment_id: str, decision: str) -> None:
        await self.session.execute(
            sa.update(assessments)
            .where(assessments.c.assessment_id == assessment_id)
            .values(final_decision=decision)
        )


def _review(row: Any) -> ReviewView:
    return ReviewView(
        review_id=row.review_id,
        assessment_id=row.assessment_id,
        order_id=row.order_id,
        customer_id=row.customer_id,
        status=row.status,
        decision=row.decision,
        analyst=row.analyst,
        note=row.note,
        score=str(row.score),
        reasons=_reasons(row.reasons),
        amount_minor=row.amount_minor,
        currency=row.currency,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        close_reason=row.close_reason,
    )


class SqlReviewRepository(_Repository):
    async def add(self, review: ReviewView) -> None:
        conn = await driver(self.session)
        await conn.execute(
            _ADD_REVIEW_SQL,
            review.review_id,
            review.assessment_id,
            review.order_id,
            review.customer_id,
            review.status,
            Decimal(review.score),
            json.dumps(_reasons_json(review.reasons)),
            review.amount_minor,
            review.currency,
            review.created_at,
        )

    async def get(self, review_id: str) -> ReviewView | None:
        row = (
            await self.session.execute(sa.select(reviews).where(reviews.c.review_id == review_id))
        ).first()
        return None if row is None else _review(row)

    async def resolve(
        self, review_id: str, decision: str, analyst: str, note: str, now: datetime
    ) -> ReviewView | None:
        """One conditional write: only an open case is resolved."""
        row = (
            await self.session.execute(
                sa.update(reviews)
                .where(reviews.c.review_id == review_id, reviews.c.status == "open")
                .values(
                    status="resolved",
                    decision=decision,
                    analyst=analyst,
                    note=note,
                    resolved_at=now,
                )
                .returning(reviews)
            )
        ).first()
        return None if row is None else _review(row)

    async def close_for_order(self, order_id: str, reason: str, now: datetime) -> list[ReviewView]:
        """Close the order's open cases (one conditional write; decided cases stay)."""
        rows = (
            await self.session.execute(
                sa.update(reviews)
                .where(reviews.c.order_id == order_id, reviews.c.status == "open")
                .values(status="closed", close_reason=reason, resolved_at=now)
                .returning(reviews)
            )
        ).all()
        return [_review(row) for row in rows]

    async def list(
        self, status: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[ReviewView]:
        query = sa.select(reviews).order_by(reviews.c.created_at, reviews.c.review_id).limit(limit)
        if status is not None:
            query = query.where(reviews.c.status == status)
        if after is not None:
            query = query.where(
                sa.tuple_(reviews.c.created_at, reviews.c.review_id) > sa.tuple_(*after)
            )
        return [_review(row) for row in (await self.session.execute(query)).all()]


class SqlLabelRepository(_Repository):
    async def add(self, label: LabelView) -> None:
        await self.session.execute(
            sa.insert(labels).values(
                label_id=label.label_id,
                order_id=label.order_id,
                label=label.label,
                source=label.source,
                amount_minor=label.amount_minor,
                created_by=label.created_by,
                created_at=label.created_at,
            )
        )
