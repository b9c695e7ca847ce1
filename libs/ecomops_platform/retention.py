"""Retention of the platform tables: nothing that only grows is kept for ever.

* ``outbox``: rows published more than ``retention_outbox_seconds`` ago (7 days by default:
  long enough to inspect or replay what was sent). Unpublished rows are never deleted.
* ``inbox``: event ids applied more than ``retention_inbox_seconds`` ago (14 days: longer than
  any redelivery window of Kafka's consumer offsets, so a duplicate can no longer arrive).
* ``idempotency_keys``: responses stored more than ``retention_idempotency_seconds`` ago
  (24 hours, the replay window clients are promised).

The job runs as a singleton per service database (a session advisory lock: replicas skip the
round another one is doing) and deletes in small batches, each its own short transaction, so
that it never holds locks the request path waits for.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from . import metrics
from .db import Database, idempotency_table, inbox_table, outbox_table, singleton, utcnow
from .settings import CommonSettings

log = logging.getLogger("ecomops.retention")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    outbox_seconds: float = 7 * 86400
    inbox_seconds: float = 14 * 86400
    idempotency_seconds: float = 86400
    batch_size: int = 1000
    pause_between_batches: float = 0.05

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> RetentionPolicy:
        return cls(
            outbox_seconds=settings.retention_outbox_seconds,
            inbox_seconds=settings.retention_inbox_seconds,
            idempotency_seconds=settings.retention_idempotency_seconds,
            batch_size=settings.retention_batch_size,
        )


def _outbox_batch(cutoff: datetime, batch: int) -> sa.Delete:
    expired = (
        sa.select(outbox_table.c.id)
        .where(outbox_table.c.published_at < cutoff)
        .order_by(outbox_table.c.published_at)
        .limit(batch)
    )
    return sa.delete(outbox_table).where(outbox_table.c.id.in_(expired))


def _inbox_batch(cutoff: datetime, batch: int) -> sa.Delete:
    expired = (
        sa.select(inbox_table.c.event_id, inbox_table.c.consumer)
        .where(inbox_table.c.processed_at < cutoff)
        .limit(batch)
    )
    return sa.delete(inbox_table).where(
        sa.tuple_(inbox_table.c.event_id, inbox_table.c.consumer).in_(expired)
    )


def _idempotency_batch(cutoff: datetime, batch: int) -> sa.Delete:
    key = sa.tuple_(
        idempotency_table.c.caller, idempotency_table.c.operation, idempotency_table.c.key
    )
    expired = sa.select(*key.clauses).where(idempotency_table.c.created_at < cutoff).limit(batch)
    return sa.delete(idempotency_table).where(key.in_(expired))


async def purge_expired(
    db: Database,
    service: str,
    policy: RetentionPolicy | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, int] | None:
    """One retention round; rows deleted per table, or None when another replica holds it."""
    policy = policy or RetentionPolicy()
    now = now or utcnow()
    plan = {
        "outbox": (_outbox_batch, now - timedelta(seconds=policy.outbox_seconds)),
        "inbox": (_inbox_batch, now - timedelta(seconds=policy.inbox_seconds)),
        "idempotency_keys": (
            _idempotency_batch,
            now - timedelta(seconds=policy.idempotency_seconds),
        ),
    }
    deleted = dict.fromkeys(plan, 0)
    async with singleton(db, f"retention-{service}") as got:
        if not got:
            return None
        for table, (statement, cutoff) in plan.items():
            while True:
                async with db.sessions() as session, session.begin():
                    result = await session.execute(statement(cutoff, policy.batch_size))
                    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
                if count:
                    deleted[table] += count
                    metrics.retention_purged_rows_total.labels(service, table).inc(count)
                if count < policy.batch_size:
                    break
                await asyncio.sleep(policy.pause_between_batches)
    if any(deleted.values()):
        log.info("retention for %s deleted %s", service, deleted)
    return deleted
