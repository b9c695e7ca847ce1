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
import time
import zlib
from collections import Counter
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import orjson
import sqlalchemy as sa
from opentelemetry import context as otel_context
from sqlalchemy.dialects.postgresql import ARRAY

from . import metrics, tracing
from .db import OUTBOX_CHANNEL, Database, outbox_table, utcnow
from .producer import ResilientProducer

log = logging.getLogger("ecomops.outbox")

#: A relay that published within this many seconds is in a stream of events: it lingers.
_STREAM_GAP = 1.0

# id, topic, key, payload, headers (as JSON text)
_OutboxRow = tuple[int, str, str, bytes, str]


class OutboxRelay:
    """Publishes the outbox of one service database.

    Woken, not polling: a commit that wrote outbox rows in this process wakes the relay at
    once (``Database.on_outbox_commit``), and one in another replica through PostgreSQL
    ``LISTEN``/``NOTIFY`` (the insert notifies in the writer's transaction, so the notification
    arrives only once the rows are visible). ``poll_interval`` is only the safety net: a relay
    that missed a notification (its listening connection was down, PostgreSQL restarted)
    still publishes within that interval, and the listener wakes the relay whenever it
    (re)connects. A relay woken while events keep coming (it published within the last
    second) waits ``linger`` seconds before it reads, so that a steady stream of commits is
    published a few rows per round rather than one; after a quiet spell it reads at once.
    """

    def __init__(
        self,
        db: Database,
        producer: ResilientProducer,
        service: str,
        *,
        poll_interval: float = 5.0,
        linger: float = 0.0,
        batch_size: int = 1000,
        batches_per_transaction: int = 5,
        max_backoff: float = 5.0,
        retry_delay: float = 0.1,
        listen: bool = True,
    ) -> None:
        self._db = db
        self._producer = producer
        self._service = service
        self._poll_interval = poll_interval
        self._linger = linger
        #: When a round last published anything (monotonic seconds).
        self._published_at = float("-inf")
        self._batch_size = batch_size
        self._batches_per_transaction = batches_per_transaction
        self._max_backoff = max_backoff
        self._retry_delay = retry_delay
        self._listen = listen
        self._lock_id = zlib.crc32(f"ecomops-outbox-{service}".encode())
        self._wake = asyncio.Event()
        self.healthy = True
        self.listening = False
        self._busy_recheck = 0.25
        self._lock_was_busy = False
        self._backlog_counted_at = 0.0
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
                    self._published_at = time.monotonic()
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
                if self._linger > 0 and time.monotonic() - self._published_at < _STREAM_GAP:
                    # Woken by a commit while events keep coming: the commits of the next few
                    # milliseconds go out in the same transaction and Kafka batch, instead of
                    # one round (five statements, a produce request and its acknowledgement)
                    # each. A commit after a quiet spell (one event, or a burst written at
                    # once) is published at once.
                    await asyncio.sleep(self._linger)

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
        """Publish unpublished events, up to ``batches_per_transaction`` batches under one
        hold of the lock; returns how many were published.

        Pipelined: the next batch is read and handed to the producer while the broker is
        still acknowledging the previous one, so PostgreSQL and Kafka round trips overlap.
        Rows are marked published only after their own acknowledgements; if anything fails,
        the whole transaction rolls back and its batches are sent again later (at-least-once,
        consumers dedupe by ``ce_id``). One producer sends them in order, so the order of the
        events of one key is kept.
        """
        async with self._db.sessions() as session, session.begin():
            got_lock = await session.scalar(_TRY_LOCK, {"lock_id": self._lock_id})
            self._lock_was_busy = not got_lock
            if not got_lock:
                return 0
            rows = await self._read(session, after=0)
            if not rows:
                self._report_backlog(0)
                return 0
            in_flight = await self._send(rows)
            published = 0
            batches = 1
            while rows:
                upcoming: list[_OutboxRow] = []
                if len(rows) == self._batch_size and batches < self._batches_per_transaction:
                    upcoming = await self._read(session, after=rows[-1][0])
                    batches += 1
                upcoming_in_flight = await self._send(upcoming) if upcoming else []
                await asyncio.wait_for(asyncio.gather(*in_flight), timeout=30)
                self._producer.report_success()
                # One statement with one array parameter whatever the batch size (an IN list
                # would be compiled and prepared anew for every distinct length).
                await session.execute(
                    _MARK_PUBLISHED, {"ids": [row[0] for row in rows], "now": utcnow()}
                )
                self._count_published(rows)
                published += len(rows)
                last_full = len(rows) == self._batch_size
                rows, in_flight = upcoming, upcoming_in_flight
            if not last_full:
                self._report_backlog(0)
            elif self._backlog_due():
                self._report_backlog(await session.scalar(_BACKLOG) or 0)
            return published

    async def _read(self, session: Any, *, after: int) -> list[_OutboxRow]:
        result = await session.execute(_UNPUBLISHED, {"after": after, "limit": self._batch_size})
        return [cast(_OutboxRow, tuple(row)) for row in result.all()]

    async def _send(self, rows: list[_OutboxRow]) -> list[asyncio.Future[Any]]:
        futures = []
        for _id, topic, key, payload, headers_json in rows:
            # Headers travel as text and are decoded here by orjson: the driver's JSON decoder
            # (the standard library's) was a sixth of a batch's CPU.
            headers, writer = tracing.publish_headers(orjson.loads(headers_json))
            # Published in the context of the transaction that wrote the row (when spans are
            # exported): the send span is its child, not the root of a trace of its own.
            token = otel_context.attach(writer) if writer is not None else None
            try:
                futures.append(
                    await self._producer.send(
                        topic, value=payload, key=key.encode(), headers=headers
                    )
                )
            finally:
                if token is not None:
                    otel_context.detach(token)
        return futures

    def _count_published(self, rows: list[_OutboxRow]) -> None:
        for topic, count in Counter(row[1] for row in rows).items():
            metrics.outbox_published_total.labels(self._service, topic).inc(count)

    def _backlog_due(self) -> bool:
        """Counting a large backlog scans it: at most once a second while draining."""
        now = time.monotonic()
        if now - self._backlog_counted_at < 1.0:
            return False
        self._backlog_counted_at = now
        return True

    def _report_backlog(self, backlog: int) -> None:
        metrics.outbox_backlog.labels(self._service).set(backlog)


_TRY_LOCK = sa.select(
    sa.func.pg_try_advisory_xact_lock(sa.bindparam("lock_id", type_=sa.BigInteger))
)
_UNPUBLISHED = (
    sa.select(
        outbox_table.c.id,
        outbox_table.c.topic,
        outbox_table.c.key,
        outbox_table.c.payload,
        sa.cast(outbox_table.c.headers, sa.Text),
    )
    .where(
        outbox_table.c.published_at.is_(None),
        outbox_table.c.id > sa.bindparam("after", type_=sa.BigInteger),
    )
    .order_by(outbox_table.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_MARK_PUBLISHED = (
    sa.update(outbox_table)
    .where(outbox_table.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.BigInteger))))
    .values(published_at=sa.bindparam("now"))
)
_BACKLOG = (
    sa.select(sa.func.count())
    .select_from(outbox_table)
    .where(outbox_table.c.published_at.is_(None))
)


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
