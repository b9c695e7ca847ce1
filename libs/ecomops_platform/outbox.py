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
import functools
import logging
import zlib

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa

from . import metrics
from .db import OUTBOX_CHANNEL, Database, outbox_table, utcnow
from .producer import ResilientProducer

log = logging.getLogger("ecomops.outbox")


class OutboxRelay:
    """Publishes the outbox of one service database.

    Woken, not polling: a commit that wrote outbox rows in this process wakes the relay at
    once (``Database.on_outbox_commit``), and one in another replica through PostgreSQL
    ``LISTEN``/``NOTIFY`` (the insert notifies in the writer's transaction, so the notification
    arrives only once the rows are visible). ``poll_interval`` is only the safety net: a relay
    that missed a notification (its listening connection was down, PostgreSQL restarted)
    still publishes within that interval, and the listener wakes the relay whenever it
    (re)connects.
    """

    def __init__(
        self,
        db: Database,
        producer: ResilientProducer,
        service: str,
        *,
        poll_interval: float = 5.0,
        batch_size: int = 1000,
        max_backoff: float = 5.0,
        retry_delay: float = 0.1,
        listen: bool = True,
    ) -> None:
        self._db = db
        self._producer = producer
        self._service = service
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self._retry_delay = retry_delay
        self._listen = listen
        self._lock_id = zlib.crc32(f"ecomops-outbox-{service}".encode())
        self._wake = asyncio.Event()
        self.healthy = True
        self.listening = False
        self._busy_recheck = 0.25
        self._lock_was_busy = False
        db.on_outbox_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener = (
            asyncio.create_task(self._listen_forever(), name=f"{self._service}-outbox-listen")
            if self._listen
            else None
        )
        try:
            await self._relay_forever()
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _relay_forever(self) -> None:
        backoff = self._retry_delay
        while True:
            # Cleared before the batch, so that a commit signalled while the batch runs wakes
            # the next round instead of being lost.
            self._wake.clear()
            try:
                published = await self.publish_batch()
                self.healthy = True
                backoff = self._retry_delay
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
            # Another replica holds the lock: it may have read before our commit, so look again
            # soon rather than only at the safety net.
            wait = self._busy_recheck if self._lock_was_busy else self._poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _listen_forever(self) -> None:
        """LISTEN on the outbox channel on a connection of its own, reconnecting after any
        loss; every (re)connection wakes the relay for what was committed meanwhile."""
        dsn = sa.make_url(self._db.url).set(drivername="postgresql")
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_event, lost))
                await conn.add_listener(OUTBOX_CHANNEL, self._notified)
                self.listening = True
                delay = 0.5
                self.wake()
                await lost.wait()
                log.warning("outbox listener lost its connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down: the safety net polls
                log.warning("outbox listener cannot connect (%s); retrying", type(exc).__name__)
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        async with self._db.sessions() as session, session.begin():
            got_lock = await session.scalar(
                sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_id))
            )
            self._lock_was_busy = not got_lock
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


def _set_event(event: asyncio.Event, *_args: object) -> None:
    event.set()


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
