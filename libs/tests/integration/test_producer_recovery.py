"""The outbox relay against a real broker that refuses its producer (OutOfOrderSequenceNumber)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from .conftest import PROBE_TOPIC

pytestmark = pytest.mark.integration


def _desynchronise(producer: object, topic: str) -> None:
    """Make an aiokafka producer's next batch on every partition of ``topic`` skip sequence
    numbers: the broker then answers OutOfOrderSequenceNumber, as it does after a broker crash
    with batches in flight (the real upstream failure, provoked deterministically)."""
    from aiokafka import TopicPartition

    txn = producer._txn_manager  # type: ignore[attr-defined]
    partitions = producer.client.cluster.partitions_for_topic(topic)  # type: ignore[attr-defined]
    for partition in partitions:
        txn.increment_sequence_number(TopicPartition(topic, partition), 5)


async def test_the_broker_refusing_a_desynchronised_producer_is_real() -> None:
    """Control: a plain idempotent producer stays wedged; the relay must not rely on it."""
    from aiokafka.errors import OutOfOrderSequenceNumber

    from ecomops_platform.events import make_producer
    from ecomops_platform.settings import CommonSettings

    producer = make_producer(CommonSettings(), "wedge-control")
    await producer.start()
    try:
        await producer.send_and_wait(PROBE_TOPIC, value=b"warm-up", key=b"k")
        _desynchronise(producer, PROBE_TOPIC)
        for _ in range(2):
            with pytest.raises(OutOfOrderSequenceNumber):
                await asyncio.wait_for(
                    producer.send_and_wait(PROBE_TOPIC, value=b"again", key=b"k"), 15
                )
    finally:
        await producer.stop()


async def test_the_relay_replaces_a_producer_the_broker_refuses(probe_service, kafka_probe) -> None:
    from .conftest import NoteIn, create_note

    probe = await kafka_probe(PROBE_TOPIC)
    # The broker refuses a skipped sequence only on a partition where it already knows this
    # producer (a partition it never wrote to accepts any first sequence): write to every
    # partition first, or on a fresh broker the test could pass a desynchronised producer.
    partitions = probe.partitions(PROBE_TOPIC)
    written: set[int] = set()
    for _ in range(100):
        if written >= partitions:
            break
        note_id = uuid.uuid4().hex
        await create_note(probe_service.uow(), note_id, NoteIn(text="before", amount=1))
        (event,) = await probe.wait_for("ecomops.common.v1.Money", lambda e, n=note_id: e.key == n)
        written.add(event.partition)
    assert written >= partitions, f"wrote to partitions {written} of {partitions}"
    resets_before = probe_service.producer.resets

    _desynchronise(probe_service.producer._producer, PROBE_TOPIC)
    after = [uuid.uuid4().hex for _ in range(3)]
    for note_id in after:
        await create_note(probe_service.uow(), note_id, NoteIn(text="after", amount=2))
    for note_id in after:
        await probe.wait_for("ecomops.common.v1.Money", lambda e, n=note_id: e.key == n)
    assert probe_service.producer.resets > resets_before
