"""The relay's pipelined batches: several batches under one hold of the lock, the next one sent
while the broker acknowledges the previous one, rows marked only after their own
acknowledgements, and all or nothing of a transaction marked when an acknowledgement fails.

The producer is the real one (the probe topic on the stack's Kafka), wrapped to record what is
sent and, in one test, to fail the acknowledgement of one chosen record.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from ecomops.common.v1 import common_pb2
from ecomops_platform.db import Database, UnitOfWork, outbox_table, platform_metadata
from ecomops_platform.events import make_producer
from ecomops_platform.outbox import OutboxRelay
from ecomops_platform.producer import ResilientProducer
from ecomops_platform.settings import CommonSettings

from .conftest import PROBE_TOPIC

pytestmark = pytest.mark.integration

DB_NAME = "ecomops_platform_pipeline_test"


class RecordingProducer(ResilientProducer):
    """The real producer; remembers every ce_id sent, and can fail one record's ack."""

    def __init__(self) -> None:
        super().__init__(
            lambda: make_producer(CommonSettings(), "outbox-pipeline-test"), service="pipeline"
        )
        self.sent: list[str] = []
        self.fail_ce_id: str | None = None

    async def send(
        self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any
    ) -> asyncio.Future[Any]:
        ce_id = dict(headers)["ce_id"].decode()
        self.sent.append(ce_id)
        future = await super().send(topic, value=value, key=key, headers=headers)
        if ce_id != self.fail_ce_id:
            return future
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("injected: the broker did not acknowledge"))
        return failed


@pytest.fixture(scope="module")
async def pipeline_url(probe_db: str) -> str:  # probe_db: the stack and the probe topic exist
    admin = await asyncpg.connect(
        os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    )
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    url = os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0] + "/" + DB_NAME
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)
        await conn.execute(sa.delete(outbox_table))
    await engine.dispose()
    return url


@pytest.fixture
async def db(pipeline_url: str) -> AsyncIterator[Database]:
    database = Database(pipeline_url, pool_size=2, max_overflow=0)
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            await conn.execute(sa.delete(outbox_table))
        await database.dispose()


@pytest.fixture
async def producer() -> AsyncIterator[RecordingProducer]:
    recording = RecordingProducer()
    await recording.start()
    try:
        yield recording
    finally:
        await recording.stop()


async def _record(db: Database, count: int) -> list[str]:
    """``count`` events in one transaction, in id order; returns their ce_ids."""
    async with UnitOfWork(db, "pipeline") as uow:
        ids = [
            uow.add_event(
                common_pb2.Money(amount_minor=i, currency="EUR"), key=f"k{i % 5}", topic=PROBE_TOPIC
            )
            for i in range(count)
        ]
        await uow.commit()
    return [str(event_id) for event_id in ids]


async def _unpublished(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(outbox_table.c.event_id)
            .where(outbox_table.c.published_at.is_(None))
            .order_by(outbox_table.c.id)
        )
        return [str(r[0]) for r in rows]


async def test_batches_of_one_transaction_are_sent_in_order_and_all_marked(
    db: Database, producer: RecordingProducer
) -> None:
    recorded = await _record(db, 45)
    relay = OutboxRelay(db, producer, "pipeline", batch_size=10, batches_per_transaction=3)

    assert await relay.publish_batch() == 30  # three batches under one hold of the lock
    assert await _unpublished(db) == recorded[30:]
    assert await relay.publish_batch() == 15
    assert await relay.publish_batch() == 0

    assert producer.sent == recorded  # each once, in the order they were recorded
    assert await _unpublished(db) == []


async def test_a_failed_acknowledgement_marks_nothing_of_its_transaction(
    db: Database, producer: RecordingProducer
) -> None:
    recorded = await _record(db, 25)
    relay = OutboxRelay(db, producer, "pipeline", batch_size=10, batches_per_transaction=3)
    producer.fail_ce_id = recorded[14]  # in the second batch: the first was acknowledged

    with pytest.raises(RuntimeError, match="injected"):
        await relay.publish_batch()
    assert await _unpublished(db) == recorded  # not even the acknowledged first batch

    producer.fail_ce_id = None
    producer.sent.clear()
    assert await relay.publish_batch() == 25
    assert await _unpublished(db) == []
    assert producer.sent == recorded  # sent again, all of it (consumers dedupe by ce_id)


async def test_rows_committed_while_a_batch_is_sent_are_read_by_the_next_batch(
    db: Database, producer: RecordingProducer
) -> None:
    first = await _record(db, 10)
    relay = OutboxRelay(db, producer, "pipeline", batch_size=10, batches_per_transaction=3)
    original_send = producer.send
    late: list[str] = []

    async def send_and_commit_more(topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        if not late:  # another writer commits while the first batch is on its way
            late.extend(await _record(db, 3))
        return await original_send(topic, **kwargs)

    producer.send = send_and_commit_more  # type: ignore[method-assign]
    published = await relay.publish_batch()
    producer.send = original_send  # type: ignore[method-assign]
    # The first batch was full, so the same transaction read on (each statement sees what was
    # committed before it) and sent the late rows after the first ten.
    assert published == 13
    assert await _unpublished(db) == []
    assert producer.sent == first + late
    assert uuid.UUID(late[0])  # real event ids
