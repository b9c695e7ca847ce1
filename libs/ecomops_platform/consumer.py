"""Consumer runner: apply each event once, commit offsets only after the handlers committed.

The records of one fetched partition batch are applied in chunks of ``batch_size``
(``ECOMOPS_CONSUMER_BATCH_SIZE``), each chunk in ONE transaction:

1. every record is decoded first; an undecodable one, or one carrying a card number, goes to
   ``<topic>.dlq`` at once and is not part of the chunk; a type without a handler is skipped;
2. one multi-row ``INSERT INTO inbox … ON CONFLICT DO NOTHING RETURNING event_id`` decides
   which events are new (a duplicate of an earlier batch, or a second copy inside the chunk,
   is skipped);
3. the handlers of the new events run in offset order on the same unit of work, then one
   COMMIT — the inbox rows and every handler's writes commit together or not at all.

If anything in a chunk fails, its transaction rolls back and the chunk is applied again one
event at a time (``apply``: one transaction per event, as with ``batch_size`` 1): a failing
handler is retried with backoff and, after the bounded attempts, its record goes to the DLQ
with the error in its headers while the others are applied; a database that cannot be reached,
a deadlock or a lock timeout is not the message's fault and is retried until it passes.

A chunk's transaction runs with ``SET LOCAL lock_timeout``
(``ECOMOPS_CONSUMER_BATCH_LOCK_TIMEOUT_MS``): handlers that each lock rows in one global order
(as one event's transaction does) lose that order across the events of a chunk, so a chunk
that has to wait for a lock gives up quickly and lets the request (or the other chunk)
finish, instead of holding its locks into a deadlock.

Offsets are committed after those transactions, once per partition and fetched batch: a crash
(SIGKILL) in the middle of a chunk commits nothing of it and moves no offset, so the chunk is
delivered again and the inbox applies each event once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka.abc import ConsumerRebalanceListener

from . import metrics, tracing
from .cards import PAYLOAD_DROPPED_HEADER, CardNumberInEvent, screen_event
from .db import Database, UnitOfWork, driver, inbox_table, utcnow
from .errors import is_transient
from .events import (
    Envelope,
    PoisonMessage,
    decode_event,
    dlq_topic,
    kafka_client_options,
    pace_failed_metadata_updates,
)
from .producer import ResilientProducer
from .settings import CommonSettings

log = logging.getLogger("ecomops.consumer")

EventHandler = Callable[[UnitOfWork, Envelope], Awaitable[None]]


#: PostgreSQL: deadlock_detected, serialization_failure, lock_not_available (lock_timeout).
#: The transaction was rolled back through no fault of the event: run it again.
_RETRY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def _sqlstate_retryable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            if getattr(candidate, "sqlstate", None) in _RETRY_SQLSTATES:
                return True
        current = current.__cause__ or current.__context__
    return False


def _is_transient(exc: BaseException) -> bool:
    """Not the event's fault: retried without counting an attempt (database unreachable, pool
    exhausted, deadlock victim, serialization failure, lock timeout)."""
    return is_transient(exc) or _sqlstate_retryable(exc)


class ConsumerStalled(RuntimeError):
    """Behind the end of its partitions, yet nothing handled for too long."""


@dataclass
class Subscription:
    """The event types a service handles, by CloudEvents type; other types are skipped."""

    topics: list[str]
    handlers: dict[str, EventHandler] = field(default_factory=dict)
    name: str = "main"
    #: False: every event in its own transaction, whatever ECOMOPS_CONSUMER_BATCH_SIZE says
    #: (handlers whose correctness or lock order relies on one event per transaction).
    batch: bool = True


# The inbox rows of a chunk in one statement: those already there (applied before) are left
# alone and not returned.
_INBOX_CLAIM_SQL = """
INSERT INTO inbox (event_id, consumer, event_type, processed_at)
SELECT u.event_id, $2, u.event_type, $4 FROM unnest($1::varchar[], $3::varchar[])
    AS u(event_id, event_type)
ON CONFLICT DO NOTHING
RETURNING event_id
"""


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was handled on partitions about to move to another member, so their new
    owner does not redeliver up to a commit interval's worth of events."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.runner.commit_offsets(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ConsumerRunner:
    def __init__(
        self,
        *,
        service: str,
        settings: CommonSettings,
        db: Database,
        producer: ResilientProducer,
        subscription: Subscription,
        max_attempts: int = 5,
        base_backoff: float = 0.2,
        unit_of_work: Callable[[], UnitOfWork] | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.service = service
        # The service's own unit of work (its repositories attached); the handler joins it.
        self._unit_of_work = unit_of_work or (lambda: UnitOfWork(db, service))
        self.settings = settings
        self.db = db
        self.producer = producer
        self.subscription = subscription
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.group_id = f"{settings.consumer_group_prefix}ecomops-{service}" + (
            "" if subscription.name == "main" else f"-{subscription.name}"
        )
        self.consumer_name = f"{service}:{subscription.name}"
        self._consumer: Any = None
        self.processed = 0
        self.stall_seconds = settings.consumer_stall_seconds
        #: Seconds between two lag reports (each one also checks for a stall).
        self.lag_interval = 5.0
        #: Longest wait for one partition's position in a lag report.
        self.position_timeout = 5.0
        self._handling = False
        size = settings.consumer_batch_size if batch_size is None else batch_size
        #: Events applied per transaction (1: one transaction per event).
        self.batch_size = max(1, size) if subscription.batch else 1
        self.batch_lock_timeout_ms = settings.consumer_batch_lock_timeout_ms
        #: Chunks committed in one transaction, and chunks re-applied one event at a time.
        self.chunks_committed = 0
        self.chunks_fallen_back = 0
        #: Seconds between two offset commits (0: after every fetched batch).
        self.commit_interval = settings.consumer_commit_interval_ms / 1000
        #: Next offset to commit per partition: every event before it is applied.
        self._uncommitted: dict[Any, int] = {}
        self._last_commit = 0.0
        self.offset_commits = 0

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.consumer_offset_reset,
            max_poll_records=200,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
            **kafka_client_options(self.settings),
        )
        self._consumer.subscribe(
            topics=list(self.subscription.topics), listener=_CommitOnRevoke(self)
        )
        pace_failed_metadata_updates(self._consumer._client)
        self._uncommitted.clear()
        self._last_commit = asyncio.get_running_loop().time()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            try:
                # Bounded: with the broker gone, the next owner redelivers instead.
                await asyncio.wait_for(self.commit_offsets(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - a timeout too: the inbox absorbs it
                log.warning("last offset commit of %s failed: %s", self.consumer_name, exc)
            finally:
                await self._consumer.stop()
                self._consumer = None

    async def commit_offsets(self, partitions: Any = None) -> None:
        """Commit the handled offsets (of ``partitions`` only, when given) in one request.

        Every event before a recorded offset has committed its transaction, so a crash
        before this only redelivers events the inbox already holds."""
        from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

        wanted = self._uncommitted if partitions is None else set(partitions)
        taken = {tp: off for tp, off in self._uncommitted.items() if tp in wanted}
        for tp in taken:
            self._uncommitted.pop(tp, None)
        self._last_commit = asyncio.get_running_loop().time()
        if self._consumer is None:
            return
        # A partition that moved away meanwhile is its new owner's to commit.
        assigned = self._consumer.assignment()
        offsets = {tp: off for tp, off in taken.items() if tp in assigned}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
            self.offset_commits += 1
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved to another member after the transactions committed; it
            # will redeliver from the last commit and the inbox drops the duplicates.
            log.info("offset commit skipped after a rebalance: %s", exc)
        except KafkaError as exc:
            # Broker unreachable: keep the offsets for the next commit (a newer offset of the
            # same partition replaces them), unless the partition was revoked meanwhile.
            log.warning("offset commit failed, retried with the next one: %s", exc)
            for tp, off in offsets.items():
                self._uncommitted.setdefault(tp, off)

    async def run(self) -> None:
        from aiokafka import TopicPartition

        assert self._consumer is not None
        lag_task = asyncio.create_task(self._report_lag())
        try:
            while True:
                if lag_task.done():
                    lag_task.result()  # a stall raises ConsumerStalled here: restart afresh
                batches = await self._consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    handled_up_to: int | None = None
                    for start in range(0, len(messages), self.batch_size):
                        if tp not in self._consumer.assignment():
                            break  # revoked by a rebalance: the new owner resumes from the commit
                        chunk = messages[start : start + self.batch_size]
                        self._handling = True
                        try:
                            await self._handle_chunk(chunk)
                        finally:
                            self._handling = False
                        handled_up_to = chunk[-1].offset
                    if handled_up_to is not None and tp in self._consumer.assignment():
                        self._uncommitted[TopicPartition(tp.topic, tp.partition)] = (
                            handled_up_to + 1
                        )
                # Offsets are committed together and at most every commit_interval: each
                # commit is a write to the broker's offsets log, which at one commit per event
                # and group cost the broker more than the events themselves.
                if self._uncommitted and (
                    asyncio.get_running_loop().time() - self._last_commit >= self.commit_interval
                ):
                    await self.commit_offsets()
        finally:
            lag_task.cancel()

    async def _report_lag(self) -> None:
        """Report lag every few seconds, and end with ConsumerStalled when the consumer is
        behind but has handled nothing for ``stall_seconds`` (a consumer that lost its
        session without noticing): its runner then replaces it."""
        loop = asyncio.get_running_loop()
        last_processed, last_progress = self.processed, loop.time()
        while True:
            await asyncio.sleep(self.lag_interval)
            behind = 0
            # Assigned partitions whose position the consumer cannot tell: aiokafka's
            # ``position()`` waits for ever when its fetcher no longer resets positions (seen
            # after the broker was SIGKILLed: the consumer answered nothing and, with this
            # report stuck, was never found stalled). Such a partition is not progress.
            unknown = 0
            try:
                for tp in self._consumer.assignment():
                    end = self._consumer.highwater(tp)
                    try:
                        pos = await asyncio.wait_for(
                            self._consumer.position(tp), timeout=self.position_timeout
                        )
                    except TimeoutError:
                        unknown += 1
                        continue
                    if end is not None:
                        lag = max(0, end - pos)
                        behind += lag
                        metrics.kafka_consumer_lag.labels(self.service, tp.topic, tp.partition).set(
                            lag
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("lag report failed", exc_info=True)
            now = loop.time()
            # A handler waiting for the database to come back is busy, not stalled.
            idle = behind == 0 and unknown == 0
            if self.processed != last_processed or idle or self._handling:
                last_processed, last_progress = self.processed, now
            elif now - last_progress > self.stall_seconds:
                raise ConsumerStalled(
                    f"{self.consumer_name}: {behind} messages behind, {unknown} partitions "
                    f"without a known position, and nothing handled for "
                    f"{now - last_progress:.0f} s"
                )

    async def _handle_chunk(self, messages: Sequence[Any]) -> None:
        """Apply consecutive records of one partition: in one transaction when there are
        several to apply, else (or after that transaction failed) one at a time."""
        pending: list[tuple[Any, Envelope, EventHandler]] = []
        for msg in messages:
            screened = await self._screen(msg)
            if screened is not None:
                pending.append((msg, *screened))
        if len(pending) > 1:
            try:
                outcomes = await self.apply_batch([(env, handler) for _, env, handler in pending])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - rolled back; re-applied one by one below
                self.chunks_fallen_back += 1
                metrics.consumer_batch_fallbacks_total.labels(
                    self.service, pending[0][0].topic
                ).inc()
                first, last = pending[0][0], pending[-1][0]
                log.warning(
                    "chunk of %d events %s/%d@%d-%d rolled back (%s: %s); applying them one at "
                    "a time",
                    len(pending),
                    first.topic,
                    first.partition,
                    first.offset,
                    last.offset,
                    type(exc).__name__,
                    exc,
                )
            else:
                self.chunks_committed += 1
                metrics.consumer_chunk_events.labels(self.service).observe(len(pending))
                for (msg, envelope, _), applied in zip(pending, outcomes, strict=True):
                    self._count(msg, envelope, applied)
                return
        for msg, envelope, handler in pending:
            await self._apply_with_retries(msg, envelope, handler)

    async def _handle_with_retries(self, msg: Any) -> None:
        """One record on its own: screened, then applied in its own transaction."""
        screened = await self._screen(msg)
        if screened is not None:
            await self._apply_with_retries(msg, *screened)

    async def _screen(self, msg: Any) -> tuple[Envelope, EventHandler] | None:
        """Decode a record and find its handler; None when there is nothing to apply (an
        undecodable record or one carrying a card number went to the DLQ; no handler)."""
        try:
            envelope = decode_event(
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                key=msg.key,
                value=msg.value,
                raw_headers=msg.headers,
            )
        except PoisonMessage as exc:
            await self._dead_letter(msg, exc, attempts=0)
            return None
        try:
            screen_event(envelope.message)
        except CardNumberInEvent as exc:  # PCI: never applied, never copied to the DLQ
            await self._dead_letter(msg, exc, attempts=0, drop_payload=True)
            return None
        handler = self.subscription.handlers.get(envelope.event_type)
        if handler is None:
            metrics.events_consumed_total.labels(self.service, msg.topic, "ignored").inc()
            return None
        return envelope, handler

    def _count(self, msg: Any, envelope: Envelope, applied: bool) -> None:
        outcome = "applied" if applied else "duplicate"
        metrics.events_consumed_total.labels(self.service, msg.topic, outcome).inc()
        metrics.event_handling_delay_seconds.labels(self.service, msg.topic).observe(
            max(0.0, (datetime.now(UTC) - envelope.time).total_seconds())
        )
        self.processed += 1

    async def _apply_with_retries(
        self, msg: Any, envelope: Envelope, handler: EventHandler
    ) -> None:
        attempt = 0
        transient_backoff = self.base_backoff
        while True:
            attempt += 1
            try:
                applied = await self.apply(envelope, handler)
                self._count(msg, envelope, applied)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                if _is_transient(exc):
                    log.warning(
                        "transient failure handling %s, retrying: %s", envelope.event_id, exc
                    )
                    attempt -= 1
                    await asyncio.sleep(transient_backoff)
                    transient_backoff = min(transient_backoff * 2, 5.0)
                    continue
                if attempt >= self.max_attempts:
                    await self._dead_letter(msg, exc, attempts=attempt)
                    return
                log.warning(
                    "handler failed for %s (attempt %d/%d): %s",
                    envelope.event_id,
                    attempt,
                    self.max_attempts,
                    exc,
                )
                await asyncio.sleep(self.base_backoff * 2 ** (attempt - 1))

    def _span(self, envelope: Envelope, batch: int | None = None) -> Any:
        """The consumer span of one event, a child of the producer's context (``traceparent``):
        each event's trace continues into its handler, batched or not."""
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": envelope.topic,
            "messaging.message.id": envelope.event_id,
            "messaging.kafka.offset": envelope.offset,
        }
        if batch is not None:
            attributes["messaging.batch.message_count"] = batch
        return tracing.tracer().start_as_current_span(
            f"consume {envelope.event_type}",
            context=tracing.extract_context(envelope.headers),
            kind=tracing.trace.SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _claim_inbox(self, uow: UnitOfWork, envelopes: Sequence[Envelope]) -> set[str]:
        """Insert the inbox rows of distinct events; the ids that were new (not applied
        before). One prepared statement whatever the number of events."""
        conn = await driver(uow.session)
        rows = await conn.fetch(
            _INBOX_CLAIM_SQL,
            [e.event_id for e in envelopes],
            self.consumer_name,
            [e.event_type for e in envelopes],
            utcnow(),
        )
        return {row["event_id"] for row in rows}

    async def apply(self, envelope: Envelope, handler: EventHandler) -> bool:
        """Apply one event in one transaction with its inbox row; False if already applied."""
        with self._span(envelope):
            uow = self._unit_of_work()
            async with uow:
                if not await self._claim_inbox(uow, [envelope]):
                    return False
                await handler(uow, envelope)
                await uow.commit()
                metrics.consumer_chunk_events.labels(self.service).observe(1)
                return True

    async def apply_batch(self, items: Sequence[tuple[Envelope, EventHandler]]) -> list[bool]:
        """Apply events in ONE transaction: one inbox insert decides which are new, their
        handlers run in order on one unit of work, one commit. Per event: True if applied,
        False if a duplicate (of an earlier batch, or of an earlier copy in ``items``).
        Raises (everything rolled back) if anything fails."""
        uow = self._unit_of_work()
        async with uow:
            session = uow.session
            if self.batch_lock_timeout_ms > 0:
                await session.execute(
                    sa.text(f"SET LOCAL lock_timeout = {int(self.batch_lock_timeout_ms)}")
                )
            first: dict[str, int] = {}
            distinct: list[Envelope] = []
            for i, (envelope, _) in enumerate(items):
                if envelope.event_id not in first:
                    first[envelope.event_id] = i
                    distinct.append(envelope)
            new = await self._claim_inbox(uow, distinct)
            outcomes: list[bool] = []
            for i, (envelope, handler) in enumerate(items):
                if first[envelope.event_id] != i or envelope.event_id not in new:
                    outcomes.append(False)
                    continue
                with self._span(envelope, batch=len(items)):
                    await handler(uow, envelope)
                outcomes.append(True)
            await uow.commit()
        return outcomes

    async def _dead_letter(
        self, msg: Any, exc: BaseException, *, attempts: int, drop_payload: bool = False
    ) -> None:
        headers = [
            *list(msg.headers or ()),
            ("dlq_error", f"{type(exc).__name__}: {exc}"[:1000].encode()),
            ("dlq_original_topic", msg.topic.encode()),
            ("dlq_original_partition", str(msg.partition).encode()),
            ("dlq_original_offset", str(msg.offset).encode()),
            ("dlq_consumer", self.consumer_name.encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        if drop_payload:  # nothing left to replay: ``ecomops dlq replay`` skips it
            headers.append((PAYLOAD_DROPPED_HEADER, b"card-number"))
        log.error(
            "dead-lettering message %s/%d@%d after %d attempts: %s",
            msg.topic,
            msg.partition,
            msg.offset,
            attempts,
            exc,
        )
        while True:
            try:
                fut = await self.producer.send(
                    dlq_topic(msg.topic),
                    value=b"" if drop_payload else msg.value,
                    key=msg.key,
                    headers=headers,
                )
                await asyncio.wait_for(fut, timeout=30)
                self.producer.report_success()
                break
            except asyncio.CancelledError:
                raise
            except Exception as send_exc:  # noqa: BLE001 - the offset must not move until the DLQ has it
                log.warning("could not write to the DLQ yet: %s", send_exc)
                await self.producer.report_failure(send_exc)
                await asyncio.sleep(1)
        metrics.events_dead_lettered_total.labels(self.service, msg.topic).inc()
        metrics.dlq_messages_total.labels(self.service, dlq_topic(msg.topic)).inc()
        metrics.events_consumed_total.labels(self.service, msg.topic, "dead_lettered").inc()


async def count_inbox(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(inbox_table)) or 0)
