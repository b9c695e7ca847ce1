"""The outbox relay is woken by commits, not by a fast poll.

Each test gives the relay a safety-net poll far longer than the time it allows, so that only
the wake-up under test can make it pass: the in-process signal after a commit, PostgreSQL
``NOTIFY`` from another process (another engine: no in-process signal), and — with the
listener off, as if a notification were missed — the safety-net poll itself. A database of its
own, so that no other relay publishes these rows.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator

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

DB_NAME = "ecomops_platform_wake_test"


def _url() -> str:
    return os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0] + "/" + DB_NAME


@pytest.fixture(scope="module")
async def wake_db(probe_db: str) -> str:  # probe_db: the stack and the probe topic exist
    admin = await asyncpg.connect(
        os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    )
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    engine = create_async_engine(_url())
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)
    await engine.dispose()
    return _url()


@pytest.fixture
async def producer() -> AsyncIterator[ResilientProducer]:
    resilient = ResilientProducer(
        lambda: make_producer(CommonSettings(), "outbox-wake-test"), service="wake"
    )
    await resilient.start()
    try:
        yield resilient
    finally:
        await resilient.stop()


async def _record(db: Database) -> uuid.UUID:
    async with UnitOfWork(db, "wake") as uow:
        event_id = uow.add_event(
            common_pb2.Money(amount_minor=1, currency="EUR"), key="wake", topic=PROBE_TOPIC
        )
        await uow.commit()
    return event_id


async def _published_within(db: Database, event_id: uuid.UUID, seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        async with db.engine.connect() as conn:
            published = await conn.scalar(
                sa.select(outbox_table.c.published_at).where(outbox_table.c.event_id == event_id)
            )
        if published is not None:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def _running(relay: OutboxRelay) -> asyncio.Task[None]:
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.5)  # the first (empty) round and the listener's connection
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_commit_in_the_process_wakes_its_relay(
    wake_db: str, producer: ResilientProducer
) -> None:
    db = Database(wake_db, pool_size=2, max_overflow=0)
    relay = OutboxRelay(db, producer, "wake", poll_interval=60, listen=False)
    task = await _running(relay)
    try:
        event_id = await _record(db)
        assert await _published_within(db, event_id, 5.0) is not None
    finally:
        await _stop(task)
        await db.dispose()


async def _rounds(db: Database, event_ids: list[uuid.UUID]) -> int:
    """In how many relay rounds the events were marked published (one ``published_at`` each)."""
    async with db.engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count(sa.distinct(outbox_table.c.published_at))).where(
                    outbox_table.c.event_id.in_(event_ids)
                )
            )
            or 0
        )


async def test_a_stream_of_commits_is_published_a_few_per_round_and_a_lone_one_at_once(
    wake_db: str, producer: ResilientProducer
) -> None:
    """While events keep coming, a woken relay waits ``linger`` before it reads: commits made
    meanwhile are marked published by one statement. A commit after a quiet spell does not
    wait."""
    db = Database(wake_db, pool_size=2, max_overflow=0)
    relay = OutboxRelay(db, producer, "wake", poll_interval=60, linger=0.6, listen=False)
    task = await _running(relay)
    try:
        lone = await _record(db)
        waited = await _published_within(db, lone, 5.0)
        assert waited is not None and waited < 0.5, waited  # not held for the linger
        stream = []
        for _ in range(3):
            stream.append(await _record(db))
            await asyncio.sleep(0.1)
        for event_id in stream:
            assert await _published_within(db, event_id, 5.0) is not None
        assert await _rounds(db, stream) == 1
    finally:
        await _stop(task)
        await db.dispose()


async def test_a_commit_in_another_process_wakes_the_relay_through_notify(
    wake_db: str, producer: ResilientProducer
) -> None:
    relay_db = Database(wake_db, pool_size=2, max_overflow=0)
    writer_db = Database(wake_db, pool_size=2, max_overflow=0)  # another replica
    relay = OutboxRelay(relay_db, producer, "wake", poll_interval=60, listen=True)
    task = await _running(relay)
    try:
        assert relay.listening
        event_id = await _record(writer_db)
        assert await _published_within(writer_db, event_id, 5.0) is not None
    finally:
        await _stop(task)
        await relay_db.dispose()
        await writer_db.dispose()


async def test_a_missed_notification_is_caught_by_the_safety_net(
    wake_db: str, producer: ResilientProducer
) -> None:
    relay_db = Database(wake_db, pool_size=2, max_overflow=0)
    writer_db = Database(wake_db, pool_size=2, max_overflow=0)
    relay = OutboxRelay(relay_db, producer, "wake", poll_interval=1.5, listen=False)
    task = await _running(relay)
    try:
        event_id = await _record(writer_db)
        took = await _published_within(writer_db, event_id, 4.0)
        assert took is not None
    finally:
        await _stop(task)
        await relay_db.dispose()
        await writer_db.dispose()


async def test_the_listener_reconnects_after_its_connection_is_killed(
    wake_db: str, producer: ResilientProducer
) -> None:
    relay_db = Database(wake_db, pool_size=2, max_overflow=0)
    writer_db = Database(wake_db, pool_size=2, max_overflow=0)
    relay = OutboxRelay(relay_db, producer, "wake", poll_interval=60, listen=True)
    task = await _running(relay)
    admin = await asyncpg.connect(
        os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    )
    try:
        assert relay.listening
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND query ILIKE 'LISTEN%'",
            DB_NAME,
        )
        assert killed >= 1
        for _ in range(100):  # the loss is seen …
            if not relay.listening:
                break
            await asyncio.sleep(0.02)
        assert not relay.listening
        for _ in range(200):  # … and the listener reconnects (after 0.5 s)
            if relay.listening:
                break
            await asyncio.sleep(0.02)
        assert relay.listening
        event_id = await _record(writer_db)
        assert await _published_within(writer_db, event_id, 5.0) is not None
    finally:
        await admin.close()
        await _stop(task)
        await relay_db.dispose()
        await writer_db.dispose()


async def test_a_relay_that_found_the_lock_busy_looks_again_soon(
    wake_db: str, producer: ResilientProducer
) -> None:
    """Another replica mid-batch holds the relay lock (it may have read before our commit): the
    woken relay looks again within a fraction of a second instead of at the safety net — what
    keeps events moving without NOTIFY (``ECOMOPS_OUTBOX_NOTIFY=false``)."""
    db = Database(wake_db, pool_size=2, max_overflow=0, outbox_notify=False)
    relay = OutboxRelay(db, producer, "wake", poll_interval=60, listen=False)
    task = await _running(relay)
    other_replica = await asyncpg.connect(_url().replace("postgresql+asyncpg", "postgresql"))
    try:
        lock_id = zlib.crc32(b"ecomops-outbox-wake")
        assert await other_replica.fetchval("SELECT pg_try_advisory_lock($1)", lock_id)
        event_id = await _record(db)
        assert await _published_within(db, event_id, 1.0) is None  # the lock is held
        await other_replica.execute("SELECT pg_advisory_unlock($1)", lock_id)
        assert await _published_within(db, event_id, 3.0) is not None
    finally:
        await other_replica.close()
        await _stop(task)
        await db.dispose()
