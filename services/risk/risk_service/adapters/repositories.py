"""The risk repositories: SQLAlchemy Core on the unit of work's session. All SQL of the
service is here (and in ``queries.py`` for the KPIs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

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


class SqlRuleSetRepository(_Repository):
    async def get(self, version: int | None = None) -> RuleSet | None:
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
        if lock:
            names = sorted(f"{dim.value}:{value}" for dim, value in keys.items())
            await self.session.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                    "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
                ),
                {"keys": names},
            )
        await self.session.execute(
            pg_insert(velocity_events)
            .values(
                [
                    {"dimension": dim.value, "value": value, "order_id": order_id, "at": at}
                    for dim, value in sorted(keys.items())
                ]
            )
            .on_conflict_do_nothing()
        )

    async def counts(
        self,
        keys: Mapping[Dimension, str],
        windows: Mapping[Dimension, Iterable[int]],
        now: datetime,
    ) -> dict[tuple[Dimension, int], int]:
        """Orders per (dimension, window) for the given keys, in one query."""
        columns: list[sa.ColumnElement[int]] = []
        wanted: list[tuple[Dimension, int]] = []
        for dim, value in sorted(keys.items()):
            for window in sorted(set(windows.get(dim, ()))):
                since = now - timedelta(seconds=window)
                columns.append(
                    sa.func.count()
                    .filter(
                        velocity_events.c.dimension == dim.value,
                        velocity_events.c.value == value,
                        velocity_events.c.at > since,
                    )
                    .label(f"c{len(wanted)}")
                )
                wanted.append((dim, window))
        if not wanted:
            return {}
        longest = max(w for _, w in wanted)
        conditions = [
            sa.and_(velocity_events.c.dimension == dim.value, velocity_events.c.value == value)
            for dim, value in keys.items()
        ]
        row = (
            await self.session.execute(
                sa.select(*columns).where(
                    sa.or_(*conditions), velocity_events.c.at > now - timedelta(seconds=longest)
                )
            )
        ).one()
        return {key: int(row[i]) for i, key in enumerate(wanted)}

    async def prune(self, before: datetime) -> int:
        result = await self.session.execute(
            sa.delete(velocity_events).where(velocity_events.c.at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class SqlPaymentRepository(_Repository):
    async def history(self, customer_id: str, currency: str, exclude_order: str) -> CustomerHistory:
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.avg(payments.c.amount_minor), 0),
                    sa.func.coalesce(sa.func.max(payments.c.amount_minor), 0),
                ).where(
                    payments.c.customer_id == customer_id,
                    payments.c.currency == currency,
                    payments.c.refunded.is_(False),
                    payments.c.order_id != exclude_order,
                )
            )
        ).one()
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
        pairs = [
            sa.and_(blocklist.c.kind == kind.value, blocklist.c.value == value)
            for kind, value in keys.items()
        ]
        rows = (await self.session.execute(sa.select(blocklist.c.kind).where(sa.or_(*pairs)))).all()
        return frozenset(BlocklistKind(r.kind) for r in rows)

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
        row = (
            await self.session.execute(
                sa.select(assessments).where(assessments.c.order_id == order_id)
            )
        ).first()
        return None if row is None else _assessment(row)

    async def get(self, assessment_id: str) -> AssessmentRecord | None:
        row = (
            await self.session.execute(
                sa.select(assessments).where(assessments.c.assessment_id == assessment_id)
            )
        ).first()
        return None if row is None else _assessment(row)

    async def add(self, record: AssessmentRecord) -> bool:
        row = (
            await self.session.execute(
                pg_insert(assessments)
                .values(
                    assessment_id=record.assessment_id,
                    order_id=record.order_id,
                    customer_id=record.customer_id,
                    amount_minor=record.amount_minor,
                    currency=record.currency,
                    score=record.score,
                    decision=record.decision,
                    final_decision=record.final_decision,
                    reasons=_reasons_json(record.reasons),
                    rules_version=record.rules_version,
                    model_version=record.model_version,
                    features=dict(record.features),
                    request_fingerprint=record.request_fingerprint,
                    review_id=record.review_id,
                    assessed_at=record.assessed_at,
                )
                .on_conflict_do_nothing(index_elements=[assessments.c.order_id])
                .returning(assessments.c.assessment_id)
            )
        ).first()
        return row is not None

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
        await self.session.execute(
            sa.insert(reviews).values(
                review_id=review.review_id,
                assessment_id=review.assessment_id,
                order_id=review.order_id,
                customer_id=review.customer_id,
                status=review.status,
                score=Decimal(review.score),
                reasons=_reasons_json(review.reasons),
                amount_minor=review.amount_minor,
                currency=review.currency,
                created_at=review.created_at,
            )
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
