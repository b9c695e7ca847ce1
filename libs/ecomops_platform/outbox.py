"""The outbox relay: publishes recorded events to Kafka, in order, without loss.

One relay per service database publishes at a time (a transaction-scoped advisory lock), so
that replicas cannot interleave batches and reorder events of one key. A batch is sent, every
send is acknowledged by the broker (idempotent producer, acks=all), and only then are the rows
marked published in the same transaction that held the lock. If the process dies between the
acknowledgement and the commit, the batch is sent again after restart: delivery is
at-least-once and consumers dedupe by ``ce_id``.

A failed batch is retried with backoff; every failure is reported to the
:class:`~ecomops_platform.producer.ResilientProducer`, which replaces a producer that cannot
recover by itself (a broken idempotence state after a broker restart), so the relay never keeps
retrying with a dead object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import sqlalchemy as sa

from . import metrics
from .db import Database, outbox_table, utcnow
from .producer import ResilientProducer

log = logging.getLogger("ecomops.outbox")


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        producer: ResilientProducer,
        service: str,
        *,
        poll_interval: float = 0.1,
        batch_size: int = 1000,
        max_backoff: float = 5.0,
    ) -> None:
        self._db = db
        self._producer = producer
        self._service = service
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self._lock_id = zlib.crc32(f"ecomops-outbox-{service}".encode())
        self._wake = asyncio.Event()
        self.healthy = True

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll_interval
        while True:
            try:
                published = await self.publish_batch()
                self.healthy = True
                backoff = self._poll_interval
                if published:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or database down: retry, never drop
                self.healthy = False
                metrics.outbox_publish_failures_total.labels(self._service).inc()
                log.warning(
                    "outbox publish failed, retrying in %.1fs: %s: %s",
                    backoff,
                    type(exc).__name__,
                    exc,
                )
                if not _is_database_error(exc):
                    await self._producer.report_failure(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def publish_batch(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        async with self._db.sessions() as session, session.begin():
            got_lock = await session.scalar(
                sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_id))
            )
            if not got_lock:
                return 0
            rows = (
                await session.execute(
                    sa.select(outbox_table)
                    .where(outbox_table.c.published_at.is_(None))
                    .order_by(outbox_table.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                metrics.outbox_backlog.labels(self._service).set(0)
                return 0
            futures = []
            for row in rows:
                headers = [(k, str(v).encode()) for k, v in row.headers.items()]
                futures.append(
                    await self._producer.send(
                        row.topic, value=row.payload, key=row.key.encode(), headers=headers
                    )
                )
            await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
            self._producer.report_success()
            await session.execute(
                sa.update(outbox_table)
                .where(outbox_table.c.id.in_([r.id for r in rows]))
                .values(published_at=utcnow())
            )
            for row in rows:
                metrics.outbox_published_total.labels(self._service, row.topic).inc()
            if len(rows) < self._batch_size:
                metrics.outbox_backlog.labels(self._service).set(0)
            else:
                backlog = await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.published_at.is_(None))
                )
                metrics.outbox_backlog.labels(self._service).set(max(0, (backlog or 0) - len(rows)))
            return len(rows)


def _is_database_error(exc: BaseException) -> bool:
    """A failure of PostgreSQL, not of Kafka: the producer is not to blame for it."""
    return isinstance(exc, sa.exc.SQLAlchemyError | OSError) and not isinstance(exc, TimeoutError)


async def oldest_unpublished_age(db: Database) -> float:
    """Seconds since the oldest unpublished event was recorded (0 when none waits)."""
    async with db.sessions() as session:
        oldest = await session.scalar(
            sa.select(outbox_table.c.created_at)
            .where(outbox_table.c.published_at.is_(None))
            .order_by(outbox_table.c.id)
            .limit(1)
        )
    if oldest is None:
        return 0.0
    return max(0.0, float((utcnow() - oldest).total_seconds()))
