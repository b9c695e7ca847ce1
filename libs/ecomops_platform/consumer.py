"""Consumer runner: apply each event once, commit offsets only after the handlers committed.

For every message: decode (undecodable → dead letter at once), then in one transaction record
the event id in the inbox (a duplicate is skipped) and call the handler. Offsets are committed
after those transactions, once per partition and fetched batch. A failing handler is retried
with backoff; after the bounded attempts the message goes to ``<topic>.dlq`` with the error in
its headers and the partition moves on. A database that cannot be reached is not the message's
fault: that is retried until it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from . import metrics, tracing
from .cards import PAYLOAD_DROPPED_HEADER, CardNumberInEvent, screen_event
from .db import Database, UnitOfWork, inbox_table, utcnow
from .errors import is_transient
from .events import Envelope, PoisonMessage, decode_event, dlq_topic, kafka_client_options
from .producer import ResilientProducer
from .settings import CommonSettings

log = logging.getLogger("ecomops.consumer")

EventHandler = Callable[[UnitOfWork, Envelope], Awaitable[None]]


def _is_transient(exc: BaseException) -> bool:
    return is_transient(exc)


class ConsumerStalled(RuntimeError):
    """Behind the end of its partitions, yet nothing handled for too long."""


@dataclass
class Subscription:
    """The event types a service handles, by CloudEvents type; other types are skipped."""

    topics: list[str]
    handlers: dict[str, EventHandler] = field(default_factory=dict)
    name: str = "main"


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
        self._handling = False

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(
            *self.subscription.topics,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.consumer_offset_reset,
            max_poll_records=200,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
            **kafka_client_options(self.settings),
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def run(self) -> None:
        from aiokafka import TopicPartition
        from aiokafka.errors import CommitFailedError, IllegalStateError

        assert self._consumer is not None
        lag_task = asyncio.create_task(self._report_lag())
        try:
            while True:
                if lag_task.done():
                    lag_task.result()  # a stall raises ConsumerStalled here: restart afresh
                batches = await self._consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    handled_up_to: int | None = None
                    for msg in messages:
                        if tp not in self._consumer.assignment():
                            break  # revoked by a rebalance: the new owner resumes from the commit
                        self._handling = True
                        try:
                            await self._handle_with_retries(msg)
                        finally:
                            self._handling = False
                        handled_up_to = msg.offset
                    if handled_up_to is None:
                        continue
                    # One offset commit per partition and batch: every message before it has
                    # committed its own transaction, so a crash in between only redelivers
                    # messages the inbox already holds.
                    try:
                        await self._consumer.commit(
                            {TopicPartition(tp.topic, tp.partition): handled_up_to + 1}
                        )
                    except (CommitFailedError, IllegalStateError) as exc:
                        # The partition moved to another member after the transactions
                        # committed; it will redeliver and the inbox drops the duplicates.
                        log.info("offset commit skipped after a rebalance: %s", exc)
        finally:
            lag_task.cancel()

    async def _report_lag(self) -> None:
        """Report lag every few seconds, and end with ConsumerStalled when the consumer is
        behind but has handled nothing for ``stall_seconds`` (a consumer that lost its
        session without noticing): its runner then replaces it."""
        loop = asyncio.get_running_loop()
        last_processed, last_progress = self.processed, loop.time()
        while True:
            await asyncio.sleep(5)
            behind = 0
            try:
                for tp in self._consumer.assignment():
                    end = self._consumer.highwater(tp)
                    pos = await self._consumer.position(tp)
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
            if self.processed != last_processed or behind == 0 or self._handling:
                last_processed, last_progress = self.processed, now
            elif now - last_progress > self.stall_seconds:
                raise ConsumerStalled(
                    f"{self.consumer_name}: {behind} messages behind and nothing handled "
                    f"for {now - last_progress:.0f} s"
                )

    async def _handle_with_retries(self, msg: Any) -> None:
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
            return
        try:
            screen_event(envelope.message)
        except CardNumberInEvent as exc:  # PCI: never applied, never copied to the DLQ
            await self._dead_letter(msg, exc, attempts=0, drop_payload=True)
            return
        handler = self.subscription.handlers.get(envelope.event_type)
        if handler is None:
            metrics.events_consumed_total.labels(self.service, msg.topic, "ignored").inc()
            return
        attempt = 0
        transient_backoff = self.base_backoff
        while True:
            attempt += 1
            try:
                applied = await self.apply(envelope, handler)
                outcome = "applied" if applied else "duplicate"
                metrics.events_consumed_total.labels(self.service, msg.topic, outcome).inc()
                metrics.event_handling_delay_seconds.labels(self.service, msg.topic).observe(
                    max(0.0, (datetime.now(UTC) - envelope.time).total_seconds())
                )
                self.processed += 1
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

    async def apply(self, envelope: Envelope, handler: EventHandler) -> bool:
        """Apply one event in one transaction with its inbox row; False if already applied."""
        ctx = tracing.extract_context(envelope.headers)
        with tracing.tracer().start_as_current_span(
            f"consume {envelope.event_type}", context=ctx, kind=tracing.trace.SpanKind.CONSUMER
        ):
            uow = self._unit_of_work()
            async with uow:
                inserted = await uow.session.execute(
                    pg_insert(inbox_table)
                    .values(
                        event_id=envelope.event_id,
                        consumer=self.consumer_name,
                        event_type=envelope.event_type,
                        processed_at=utcnow(),
                    )
                    .on_conflict_do_nothing()
                    .returning(inbox_table.c.event_id)
                )
                if inserted.first() is None:
                    return False
                await handler(uow, envelope)
                await uow.commit()
                return True

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
