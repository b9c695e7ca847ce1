"""A Kafka producer that heals itself: replaced by a new one when it can no longer deliver.

aiokafka's idempotent producer keeps a producer id and per-partition sequence numbers. After a
broker is killed or restarted mid-batch, the broker can answer ``OutOfOrderSequenceNumber``,
``UnknownProducerId`` or ``InvalidProducerEpoch`` to every later send of that producer: its
state cannot be repaired, only abandoned. Retrying with the same object wedges the outbox for
good (seen in CI: 113 failed retries in a row until the run ended).

:class:`ResilientProducer` owns the current ``AIOKafkaProducer`` and replaces it (stop the old
one without waiting for its doomed batches, start a fresh one with a new producer id):

* at once, on an error that says the producer's idempotence state is broken;
* after ``reset_after_failures`` consecutive failed deliveries of any other kind, so that a
  producer wedged in a way nobody has classified yet cannot stall events either.

A replacement may send again what the old producer had delivered without acknowledging it:
delivery is at-least-once, and every consumer drops duplicates by ``ce_id`` in its inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from . import metrics

log = logging.getLogger("ecomops.producer")

# aiokafka error classes (by name: aiokafka is imported lazily) after which the producer's
# idempotence state is broken for good: only a new producer id gets deliveries going again.
BROKEN_PRODUCER_ERRORS = frozenset(
    {
        "OutOfOrderSequenceNumber",
        "UnknownProducerId",
        "InvalidProducerEpoch",
        "InvalidProducerIdMapping",
        "ProducerFenced",
    }
)


def breaks_producer(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) says the producer itself can no longer deliver."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in BROKEN_PRODUCER_ERRORS:
            return True
        current = current.__cause__ or current.__context__
    return False


class ResilientProducer:
    """The process's producer: same ``send`` as aiokafka's, plus :meth:`report_failure`."""

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        service: str,
        reset_after_failures: int = 3,
        stop_timeout: float = 5.0,
        start_timeout: float = 30.0,
    ) -> None:
        self._factory = factory
        self._service = service
        self._reset_after_failures = reset_after_failures
        self._stop_timeout = stop_timeout
        self._start_timeout = start_timeout
        self._producer: Any = factory()
        self._started = False
        self._lock = asyncio.Lock()
        self.consecutive_failures = 0
        self.resets = 0

    @property
    def client(self) -> Any:
        """The current producer's cluster client (readiness asks it for metadata)."""
        return self._producer.client

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        async with self._lock:
            await self._ensure_started()

    async def _ensure_started(self) -> None:
        if self._started:
            return
        try:
            # aiokafka's start has no deadline of its own (it waits for a producer id for as
            # long as the broker does not grant one), and every send waits for this start.
            await asyncio.wait_for(self._producer.start(), timeout=self._start_timeout)
        except BaseException:
            # A producer whose start failed holds half-open connections: never reuse it.
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = self._factory()
            raise
        self._started = True

    async def send(
        self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any
    ) -> asyncio.Future[Any]:
        """Queue one record; returns the future of its acknowledgement (as aiokafka does)."""
        if not self._started:
            async with self._lock:
                await self._ensure_started()
        future: asyncio.Future[Any] = await self._producer.send(
            topic, value=value, key=key, headers=headers
        )
        return future

    def report_success(self) -> None:
        self.consecutive_failures = 0

    async def report_failure(self, exc: BaseException) -> bool:
        """Count a failed delivery; replace the producer when it cannot recover by itself.

        Returns True when the producer was replaced (or will be started afresh on next use).
        """
        self.consecutive_failures += 1
        broken = breaks_producer(exc)
        if not broken and self.consecutive_failures < self._reset_after_failures:
            return False
        reason = (
            f"{type(exc).__name__} (producer state broken)"
            if broken
            else f"{self.consecutive_failures} failed deliveries in a row"
        )
        await self.reset(reason)
        return True

    async def reset(self, reason: str) -> None:
        """Abandon the current producer and create a new one (started on next use)."""
        async with self._lock:
            old, was_started = self._producer, self._started
            self._producer = self._factory()
            self._started = False
            self.consecutive_failures = 0
            self.resets += 1
        metrics.kafka_producer_resets_total.labels(self._service).inc()
        log.warning("replacing the Kafka producer of %s: %s", self._service, reason)
        if was_started:
            # Its pending batches can only fail: do not wait for them longer than a moment.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=self._stop_timeout)
        await self._start_quietly()

    async def _start_quietly(self) -> None:
        async with self._lock:
            try:
                await self._ensure_started()
            except Exception as exc:  # noqa: BLE001 - broker still away: the next send retries
                log.info("new Kafka producer of %s not started yet: %s", self._service, exc)

    async def stop(self) -> None:
        async with self._lock:
            if self._started:
                self._started = False
                await self._producer.stop()
