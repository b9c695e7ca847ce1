"""A consumed event carrying a card number is poison: never applied, dead-lettered without its
payload (the DLQ must not hold a copy of the number), and the partition moves on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from ecomops.common.v1 import common_pb2
from ecomops_platform.db import Database
from ecomops_platform.events import (
    cloudevent_headers,
    decode_headers,
    kafka_client_options,
    make_producer,
)
from ecomops_platform.settings import CommonSettings
from ecomops_testing import eventually

from .conftest import PROBE_TOPIC, applied

pytestmark = pytest.mark.integration


async def _count(db: Database, *where: sa.ColumnElement[bool]) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).select_from(applied).where(*where)) or 0
        )


async def _send(message: common_pb2.Money, event_id: str, key: str) -> None:
    producer = make_producer(CommonSettings(), "probe-card-test")
    await producer.start()
    headers = cloudevent_headers(
        event_id=event_id,
        event_type="ecomops.common.v1.Money",
        source="ecomops/test",
        time=datetime.now(UTC),
        traceparent=None,
    )
    try:
        await producer.send_and_wait(
            PROBE_TOPIC,
            value=message.SerializeToString(),
            key=key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


async def test_an_event_with_a_card_number_is_dead_lettered_without_payload(
    probe_service,
) -> None:
    key = uuid.uuid4().hex
    carded, good = str(uuid.uuid4()), str(uuid.uuid4())
    # Full-width digits with zero-width spaces: the shared screen normalises first.
    pan = "\u200b".join(
        "".join(chr(0xFF10 + int(c)) for c in group) for group in ("4111", "1111", "1111", "1111")
    )
    await _send(common_pb2.Money(amount_minor=1, currency=pan), carded, key)
    await _send(common_pb2.Money(amount_minor=2, currency="EUR"), good, key)

    async def good_applied() -> None:
        assert await _count(probe_service.db, applied.c.event_id == good) == 1

    await eventually(good_applied, timeout=30)
    assert await _count(probe_service.db, applied.c.event_id == carded) == 0

    consumer = AIOKafkaConsumer(
        PROBE_TOPIC + ".dlq",
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_client_options(CommonSettings()),
    )
    await consumer.start()
    try:
        found: tuple[dict[str, str], bytes] | None = None
        deadline = asyncio.get_running_loop().time() + 20
        while found is None and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for msg in messages:
                    headers = decode_headers(msg.headers)
                    if headers.get("ce_id") == carded:
                        found = (headers, msg.value or b"")
    finally:
        await consumer.stop()
    assert found is not None, "the event should be on the dead-letter topic"
    headers, value = found
    assert value == b"", "the DLQ must not hold a copy of the card number"
    assert "CardNumberInEvent" in headers["dlq_error"]
    assert "4111" not in headers["dlq_error"]
    assert headers["dlq_original_topic"] == PROBE_TOPIC
    assert headers["dlq_payload_dropped"] == "card-number"

    # Nothing to replay: an empty payload would decode as an empty event.
    from ecomops_platform.dlq import read_dead_letters, replay

    letters = [
        d
        for d in await read_dead_letters(CommonSettings(), [PROBE_TOPIC + ".dlq"])
        if d.id == carded
    ]
    assert letters, "the dead letter should be listed"
    assert await replay(CommonSettings(), letters) == 0
