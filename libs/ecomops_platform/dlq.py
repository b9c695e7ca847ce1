"""Dead letters an operator can act on: list them with their error, replay them once fixed.

A consumer dead-letters a message it could not apply to ``<topic>.dlq``, unchanged, with
``dlq_*`` headers saying why (``dlq_error``), where it came from (``dlq_original_topic``,
``_partition``, ``_offset``), who gave up (``dlq_consumer``) and after how many attempts.

Replaying re-publishes the original message (value, key, CloudEvents headers) to its original
topic. That is safe to repeat: every consumer records applied event ids in its inbox, and a
dead-lettered event was never recorded there (its transaction rolled back), so a replay is
applied once and a second replay of the same event is dropped as a duplicate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import metrics
from .events import kafka_client_options
from .registry import all_topics
from .settings import CommonSettings

DLQ_HEADER_PREFIX = "dlq_"


def dlq_topics() -> list[str]:
    return [t for t in all_topics() if t.endswith(".dlq")]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    raw_headers: list[tuple[str, bytes]]

    @property
    def id(self) -> str:
        """The event's ce_id, or ``partition:offset`` when the message had none."""
        return self.headers.get("ce_id") or f"{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlq_original_topic") or self.topic.removesuffix(".dlq")

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.timestamp).total_seconds()

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "position": f"{self.partition}:{self.offset}",
            "type": self.headers.get("ce_type", ""),
            "original_topic": self.original_topic,
            "consumer": self.headers.get("dlq_consumer", ""),
            "attempts": self.headers.get("dlq_attempts", ""),
            "error": self.headers.get("dlq_error", ""),
            "age_seconds": round(self.age_seconds(), 1),
        }


def _headers(raw: Any) -> dict[str, str]:
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        for name, value in raw or ()
    }


async def read_dead_letters(
    settings: CommonSettings, topics: list[str] | None = None, *, read_seconds: float = 15.0
) -> list[DeadLetter]:
    """Every message now in the given dead-letter topics (all of them by default)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    wanted = topics or dlq_topics()
    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, **kafka_client_options(settings)
    )
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        partitions = []
        for topic in wanted:
            for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic):
                partitions.append(TopicPartition(topic, p))
        if not partitions:
            return out
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + read_seconds
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"dead letters not read within {read_seconds:.0f} s")
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, messages in batches.items():
                for msg in messages:
                    if msg.offset < ends[tp]:
                        out.append(
                            DeadLetter(
                                topic=msg.topic,
                                partition=msg.partition,
                                offset=msg.offset,
                                timestamp=datetime.fromtimestamp(msg.timestamp / 1000, UTC),
                                key=msg.key,
                                value=msg.value,
                                headers=_headers(msg.headers),
                                raw_headers=list(msg.headers or ()),
                            )
                        )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    out.sort(key=lambda d: (d.timestamp, d.topic, d.partition, d.offset))
    return out


async def _partitions(consumer: Any, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the topic may be new to this client
    return set(consumer.partitions_for_topic(topic) or ())


async def replay(
    settings: CommonSettings, letters: list[DeadLetter], *, ack_seconds: float = 30.0
) -> int:
    """Re-publish dead letters to their original topics; returns how many were sent."""
    from .cards import PAYLOAD_DROPPED_HEADER
    from .events import make_producer

    # A letter whose payload was dropped (it carried a card number) has nothing to replay: an
    # empty payload would decode as an empty event.
    letters = [d for d in letters if PAYLOAD_DROPPED_HEADER not in d.headers]
    if not letters:
        return 0
    producer = make_producer(settings, "ecomops-dlq-replay")
    await producer.start()
    try:
        futures = []
        for letter in letters:
            headers = [
                (name, value)
                for name, value in letter.raw_headers
                if not name.startswith(DLQ_HEADER_PREFIX)
            ]
            headers.append(("dlq_replayed_from", f"{letter.topic}/{letter.id}".encode()))
            futures.append(
                await producer.send(
                    letter.original_topic, value=letter.value, key=letter.key, headers=headers
                )
            )
        await asyncio.wait_for(asyncio.gather(*futures), timeout=ack_seconds)
    finally:
        await producer.stop()
    for letter in letters:
        metrics.dlq_replayed_total.labels(letter.original_topic).inc()
    return len(letters)
