"""Platform: outbox relay throughput beside raw aiokafka produce, in the same run.

Both publish the same payloads to the same topic with the same producer settings (idempotent,
acks=all); the outbox adds reading rows in id order under an advisory lock and marking them
published. Run: ``python -m bench.platform_bench`` with the stack env exported.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import Row, row
from ecomops_platform.db import Database, outbox_table, platform_metadata
from ecomops_platform.events import cloudevent_headers, create_topics, make_producer
from ecomops_platform.outbox import OutboxRelay
from ecomops_platform.producer import ResilientProducer
from ecomops_platform.settings import CommonSettings

TOPIC = "ecomops.bench.v1"
DB_NAME = "ecomops_bench_platform"
EVENTS = 5000


def _url() -> str:
    return os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0] + "/" + DB_NAME


async def _prepare() -> None:
    admin = await asyncpg.connect(os.environ["ORDER_DATABASE_URL"].replace("+asyncpg", ""))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    engine = create_async_engine(_url())
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)
        await conn.execute(sa.delete(outbox_table))
    await engine.dispose()
    await create_topics(CommonSettings(), [TOPIC])


def _payload(i: int) -> bytes:
    return f"event-{i:08d}-".encode() * 6


async def raw_produce() -> float:
    producer = make_producer(CommonSettings(), "bench-raw")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(TOPIC, value=_payload(i), key=f"k{i % 100}".encode())
            for i in range(EVENTS)
        ]
        await asyncio.gather(*futures)
        return EVENTS / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def outbox_relay() -> float:
    db = Database(_url())
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": uuid.uuid4(),
            "topic": TOPIC,
            "key": f"k{i % 100}",
            "event_type": "bench.Event",
            "payload": _payload(i),
            "headers": cloudevent_headers(
                event_id=str(uuid.uuid4()),
                event_type="bench.Event",
                source="ecomops/bench",
                time=now,
                traceparent=None,
            ),
            "created_at": now,
        }
        for i in range(EVENTS)
    ]
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(outbox_table), rows)
    # The relay's own producer, as every service runs it (same settings as the raw baseline).
    producer = ResilientProducer(
        lambda: make_producer(CommonSettings(), "bench-outbox"), service="bench"
    )
    await producer.start()
    relay = OutboxRelay(db, producer, "bench")
    try:
        started = time.perf_counter()
        published = 0
        while published < EVENTS:
            published += await relay.publish_batch()
        return EVENTS / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await db.dispose()


async def run() -> list[Row]:
    await _prepare()
    raw, outbox = [], []
    for _ in range(3):
        raw.append(await raw_produce())
        outbox.append(await outbox_relay())
    raw.sort()
    outbox.sort()
    return [
        row(
            "outbox relay publish (5000 events, 100 keys)",
            outbox[1],
            "events/s",
            "raw aiokafka produce, same producer settings",
            raw[1],
            "median of 3 runs each, interleaved",
        )
    ]


if __name__ == "__main__":
    from bench.run import print_table

    print_table(asyncio.run(run()))
