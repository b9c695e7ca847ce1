"""Queries of the risk service (SQLAlchemy Core on the unit of work's session)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import (
    BlocklistKind,
    CustomerHistory,
    Dimension,
    RuleSet,
    parse_rule_set,
)
from .tables import (
    assessments,
    blocklist,
    labels,
    model_activations,
    payments,
    reviews,
    rule_sets,
    velocity_events,
)

RULES_LOCK = 0x5249534B  # "RISK": serialises rule set versions


def _rule_set(row: Any) -> RuleSet:
    return parse_rule_set(
        row.definition, version=row.version, created_by=row.created_by, created_at=row.created_at
    )


async def get_rule_set(session: AsyncSession, version: int | None = None) -> RuleSet | None:
    query = sa.select(rule_sets)
    if version is None:
        query = query.order_by(rule_sets.c.version.desc()).limit(1)
    else:
        query = query.where(rule_sets.c.version == version)
    row = (await session.execute(query)).first()
    return None if row is None else _rule_set(row)


async def list_rule_sets(
    session: AsyncSession, *, before_version: int | None, limit: int
) -> list[RuleSet]:
    query = sa.select(rule_sets).order_by(rule_sets.c.version.desc()).limit(limit)
    if before_version is not None:
        query = query.where(rule_sets.c.version < before_version)
    return [_rule_set(row) for row in (await session.execute(query)).all()]


async def insert_rule_set(
    session: AsyncSession, definition: Mapping[str, Any], created_by: str, now: datetime
) -> int:
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(RULES_LOCK)))
    latest = await session.scalar(sa.select(sa.func.coalesce(sa.func.max(rule_sets.c.version), 0)))
    version = int(latest or 0) + 1
    await session.execute(
        sa.insert(rule_sets).values(
            version=version, definition=dict(definition), created_by=created_by, created_at=now
        )
    )
    return version


async def ensure_rule_set(
    session: AsyncSession, definition: Mapping[str, Any], now: datetime
) -> None:
    await session.execute(
        pg_insert(rule_sets)
        .values(version=1, definition=dict(definition), created_by="system", created_at=now)
        .on_conflict_do_nothing()
    )


# --- velocity ---------------------------------------------------------------------------------


async def record_velocity(
    session: AsyncSession,
    order_id: str,
    keys: Mapping[Dimension, str],
    at: datetime,
    *,
    lock: bool,
) -> None:
    """Count this order once per key (dedupe by order id), serialised per key when ``lock``.

    The transaction-scoped advisory locks, taken in sorted order, make concurrent assessments of
    one customer / device / IP / fingerprint see each other's rows: counts are exact.
    """
    if not keys:
        return
    if lock:
        names = sorted(f"{dim.value}:{value}" for dim, value in keys.items())
        await session.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
            ),
            {"keys": names},
        )
    await session.execute(
        pg_insert(velocity_events)
        .values(
            [
                {"dimension": dim.value, "value": value, "order_id": order_id, "at": at}
                for dim, value in sorted(keys.items())
            ]
        )
        .on_conflict_do_nothing()
    )


async def velocity_counts(
    session: AsyncSession,
    keys: Mapping[Dimension, str],
    windows: Mapping[Dimension, Iterable[int]],
    now: datetime,
) -> dict[tuple[Dimension, int], int]:
    """Orders per (dimension, window) for the given keys, in one query."""
    columns: list[Any] = []
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
        await session.execute(
            sa.select(*columns).where(
                sa.or_(*conditions), velocity_events.c.at > now - timedelta(seconds=longest)
            )
        )
    ).one()
    return {key: int(row[i]) for i, key in enumerate(wanted)}


async def prune_velocity(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(sa.delete(velocity_events).where(velocity_events.c.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# --- history, blocklist ----------------------------------------------------------------------


async def customer_history(
    session: AsyncSession, customer_id: str, currency: str, exclude_order: str
) -> CustomerHistory:
    row = (
        await session.execute(
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


async def record_payment(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(payments).values(**values).on_conflict_do_nothing())


async def mark_refunded(session: AsyncSession, order_id: str) -> None:
    await session.execute(
        sa.update(payments).where(payments.c.order_id == order_id).values(refunded=True)
    )


async def blocklisted(
    session: AsyncSession, keys: Mapping[BlocklistKind, str]
) -> frozenset[BlocklistKind]:
    if not keys:
        return frozenset()
    pairs = [
        sa.and_(blocklist.c.kind == kind.value, blocklist.c.value == value)
        for kind, value in keys.items()
    ]
    rows = (await session.execute(sa.select(blocklist.c.kind).where(sa.or_(*pairs)))).all()
    return frozenset(BlocklistKind(r.kind) for r in rows)


async def put_blocklist(
    session: AsyncSession, kind: BlocklistKind, value: str, reason: str, by: str, now: datetime
) -> Any:
    stmt = pg_insert(blocklist).values(
        kind=kind.value, value=value, reason=reason, created_by=by, created_at=now
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[blocklist.c.kind, blocklist.c.value],
        set_={"reason": stmt.excluded.reason},
    ).returning(blocklist)
    return (await session.execute(upsert)).one()


async def delete_blocklist(session: AsyncSession, kind: BlocklistKind, value: str) -> bool:
    row = (
        await session.execute(
            sa.delete(blocklist)
            .where(blocklist.c.kind == kind.value, blocklist.c.value == value)
            .returning(blocklist.c.value)
        )
    ).first()
    return row is not None


async def list_blocklist(
    session: AsyncSession, kind: BlocklistKind | None, after: tuple[str, str] | None, limit: int
) -> list[Any]:
    query = sa.select(blocklist).order_by(blocklist.c.kind, blocklist.c.value).limit(limit)
    if kind is not None:
        query = query.where(blocklist.c.kind == kind.value)
    if after is not None:
        query = query.where(sa.tuple_(blocklist.c.kind, blocklist.c.value) > sa.tuple_(*after))
    return list((await session.execute(query)).all())


# --- assessments, reviews, labels -------------------------------------------------------------


async def assessment_by_order(session: AsyncSession, order_id: str) -> Any:
    return (
        await session.execute(sa.select(assessments).where(assessments.c.order_id == order_id))
    ).first()


async def assessment_by_id(session: AsyncSession, assessment_id: str) -> Any:
    return (
        await session.execute(
            sa.select(assessments).where(assessments.c.assessment_id == assessment_id)
        )
    ).first()


async def insert_assessment(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    row = (
        await session.execute(
            pg_insert(assessments)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[assessments.c.order_id])
            .returning(assessments.c.assessment_id)
        )
    ).first()
    return row is not None


async def insert_review(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await session.execute(sa.insert(reviews).values(**values))


async def get_review(session: AsyncSession, review_id: str) -> Any:
    return (
        await session.execute(sa.select(reviews).where(reviews.c.review_id == review_id))
    ).first()


async def resolve_review(
    session: AsyncSession, review_id: str, decision: str, analyst: str, note: str, now: datetime
) -> Any:
    """One conditional write: only an open case is resolved."""
    return (
        await session.execute(
            sa.update(reviews)
            .where(reviews.c.review_id == review_id, reviews.c.status == "open")
            .values(
                status="resolved", decision=decision, analyst=analyst, note=note, resolved_at=now
            )
            .returning(reviews)
        )
    ).first()


async def close_reviews_of_order(
    session: AsyncSession, order_id: str, reason: str, now: datetime
) -> list[Any]:
    """Close the order's open cases (one conditional write; decided cases stay as they are)."""
    return list(
        (
            await session.execute(
                sa.update(reviews)
                .where(reviews.c.order_id == order_id, reviews.c.status == "open")
                .values(status="closed", close_reason=reason, resolved_at=now)
                .returning(reviews)
            )
        ).all()
    )


async def set_final_decision(session: AsyncSession, assessment_id: str, decision: str) -> None:
    await session.execute(
        sa.update(assessments)
        .where(assessments.c.assessment_id == assessment_id)
        .values(final_decision=decision)
    )


async def list_reviews(
    session: AsyncSession, status: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[Any]:
    query = sa.select(reviews).order_by(reviews.c.created_at, reviews.c.review_id).limit(limit)
    if status is not None:
        query = query.where(reviews.c.status == status)
    if after is not None:
        query = query.where(
            sa.tuple_(reviews.c.created_at, reviews.c.review_id) > sa.tuple_(*after)
        )
    return list((await session.execute(query)).all())


async def insert_label(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await session.execute(sa.insert(labels).values(**values))


# --- models -----------------------------------------------------------------------------------


async def active_model(session: AsyncSession) -> Any:
    return (
        await session.execute(
            sa.select(model_activations).order_by(model_activations.c.id.desc()).limit(1)
        )
    ).first()


async def activate_model(
    session: AsyncSession, version: str, sha256: str, by: str, now: datetime
) -> None:
    await session.execute(
        sa.insert(model_activations).values(
            version=version, sha256=sha256, activated_by=by, activated_at=now
        )
    )


# --- KPIs -------------------------------------------------------------------------------------

KPI_SQL = sa.text(
    """
    WITH a AS (
        SELECT assessment_id, order_id, amount_minor, currency, decision,
               COALESCE(final_decision, CASE WHEN decision = 'approve' THEN 'approve' END) AS final
        FROM assessments
        WHERE assessed_at >= :from_time AND assessed_at < :to_time
    ),
    l AS (
        SELECT DISTINCT ON (order_id) order_id, label, amount_minor
        FROM labels
        WHERE order_id IN (SELECT order_id FROM a)
        ORDER BY order_id, (source = 'chargeback') DESC, created_at DESC
    )
    SELECT a.currency, a.decision, a.final, l.label,
           count(*) AS n,
           COALESCE(sum(a.amount_minor), 0) AS amount,
           COALESCE(sum(CASE WHEN l.label = 'fraud'
                        THEN COALESCE(l.amount_minor, a.amount_minor) ELSE 0 END), 0) AS fraud
    FROM a LEFT JOIN l ON l.order_id = a.order_id
    GROUP BY a.currency, a.decision, a.final, l.label
    """
)


async def kpi_rows(session: AsyncSession, from_time: datetime, to_time: datetime) -> list[Any]:
    return list(
        (await session.execute(KPI_SQL, {"from_time": from_time, "to_time": to_time})).all()
    )
