"""Batched consumption against the real PostgreSQL and Kafka: a chunk of a fetched batch is
applied in one transaction; duplicates, a failing handler, a transient database error, a
deadlock and a SIGKILL in the middle of a chunk each leave every event applied exactly once,
in partition order.

Each test reads its own consumer group, positioned at the end of the batch topic before the
test produces (so it sees only its own records), with an inbox consumer name of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from ecomops.common.v1 import common_pb2
from ecomops_platform.consumer import ConsumerRunner, Subscription
from ecomops_platform.db import Database, UnitOfWork, inbox_table
from ecomops_platform.events import (
    Envelope,
    cloudevent_headers,
    create_topics,
    kafka_client_options,
    make_producer,
)
from ecomops_platform.producer import ResilientProducer
from ecomops_platform.settings import CommonSettings
from ecomops_testing import eventually

from .conftest import applied, notes

pytestmark = pytest.mark.integration

BATCH_TOPIC = "ecomops.probe.batch.v1"
MONEY = "ecomops.common.v1.Money"
WORKER = Path(__file__).with_name("batch_worker.py")


@pytest.fixture(scope="module")
async def batch_topic(probe_db: str) -> str:
    await create_topics(CommonSettings(), [BATCH_TOPIC, BATCH_TOPIC + ".dlq"])
    return BATCH_TOPIC


@dataclass
class Event:
    event_id: str
    amount: int
    currency: str = "EUR"


def _events(n: int, **currencies: str) -> list[Event]:
    """``n`` events with amounts 1..n; ``currencies`` maps "e3" to the 3rd event's currency."""
    return [Event(str(uuid.uuid4()), i, currencies.get(f"e{i}", "EUR")) for i in range(1, n + 1)]


async def _produce(key: str, events: list[Event]) -> None:
    """All on one key: one partition, in this order."""
    producer = make_producer(CommonSettings(), "batch-test")
    await producer.start()
    try:
        for ev in events:
            headers = cloudevent_headers(
                event_id=ev.event_id,
                event_type=MONEY,
                source="ecomops/test",
                time=datetime.now(UTC),
                traceparent=None,
            )
            await producer.send(
                BATCH_TOPIC,
                value=common_pb2.Money(
                    amount_minor=ev.amount, currency=ev.currency
                ).SerializeToString(),
                key=key.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _pin_group_at_end(group_id: str) -> dict[Any, int]:
    """Commit the batch topic's end offsets for a new group: it will read only what follows."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=group_id, enable_auto_commit=False, **kafka_client_options(CommonSettings())
    )
    await consumer.start()
    try:
        meta = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(BATCH_TOPIC, p) for p in meta.partitions_for_topic(BATCH_TOPIC)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.commit({tp: ends[tp] for tp in parts})
        return dict(ends)
    finally:
        await consumer.stop()


async def _committed(group_id: str) -> dict[Any, int | None]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=group_id, enable_auto_commit=False, **kafka_client_options(CommonSettings())
    )
    await consumer.start()
    try:
        meta = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(BATCH_TOPIC, p) for p in meta.partitions_for_topic(BATCH_TOPIC)]
        consumer.assign(parts)
        return {tp: await consumer.committed(tp) for tp in parts}
    finally:
        await consumer.stop()


async def _waiting_backend(dsn: str) -> int:
    """The backend waiting for a lock on ``notes`` (the consumer's), once there is one. Read on
    a connection of its own: pg_stat_activity is a snapshot per transaction."""
    monitor = await asyncpg.connect(dsn)
    try:

        async def waiting() -> int:
            pid = await monitor.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE notes%'"
            )
            assert pid is not None
            return int(pid)

        return int(await eventually(waiting, timeout=30))
    finally:
        await monitor.close()


async def money_handler(uow: UnitOfWork, envelope: Envelope) -> None:
    """XXX: never accepted (non-transient). LCK: adds to the note named by the key (a row the
    test may hold locked). DLK: the note ``<key>-a`` then ``<key>-b`` (to build a deadlock)."""
    money = envelope.message
    assert isinstance(money, common_pb2.Money)
    key = envelope.key or ""
    if money.currency == "XXX":
        raise ValueError("poison: currency XXX is never accepted")
    if money.currency == "LCK":
        await uow.session.execute(
            sa.update(notes).where(notes.c.id == key).values(amount=notes.c.amount + 1)
        )
    if money.currency == "DLK":
        for note_id in (f"{key}-a", f"{key}-b"):
            await uow.session.execute(
                sa.update(notes).where(notes.c.id == note_id).values(amount=notes.c.amount + 1)
            )
    await uow.session.execute(
        sa.insert(applied).values(event_id=envelope.event_id, key=key, amount=money.amount_minor)
    )


class Harness:
    """One test's consumer group, inbox consumer name and runners."""

    def __init__(self, db: Database, producer: ResilientProducer) -> None:
        self.db = db
        self.producer = producer
        self.prefix = f"t{uuid.uuid4().hex[:12]}-"
        self.name = f"batch-{uuid.uuid4().hex[:8]}"
        self.tasks: list[tuple[ConsumerRunner, asyncio.Task[None]]] = []

    @property
    def group_id(self) -> str:
        return f"{self.prefix}ecomops-probe-{self.name}"

    @property
    def consumer_name(self) -> str:
        return f"probe:{self.name}"

    async def pin(self) -> dict[Any, int]:
        return await _pin_group_at_end(self.group_id)

    async def start(
        self,
        *,
        batch_size: int,
        max_attempts: int = 3,
        lock_timeout_ms: int = 200,
        commit_interval_ms: int = 1000,
    ) -> ConsumerRunner:
        settings = CommonSettings(
            consumer_group_prefix=self.prefix,
            consumer_batch_size=batch_size,
            consumer_batch_lock_timeout_ms=lock_timeout_ms,
            consumer_commit_interval_ms=commit_interval_ms,
        )
        runner = ConsumerRunner(
            service="probe",
            settings=settings,
            db=self.db,
            producer=self.producer,
            subscription=Subscription([BATCH_TOPIC], {MONEY: money_handler}, name=self.name),
            max_attempts=max_attempts,
            base_backoff=0.05,
        )
        await runner.start()
        self.tasks.append((runner, asyncio.create_task(runner.run())))
        return runner

    async def stop(self) -> None:
        for runner, task in self.tasks:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.stop()
        self.tasks.clear()

    async def applied_amounts(self, key: str) -> list[int]:
        """Amounts applied for ``key``, in the order they were written."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                sa.select(applied.c.amount).where(applied.c.key == key).order_by(applied.c.id)
            )
            return [int(r.amount) for r in rows]

    async def inbox_count(self) -> int:
        async with self.db.sessions() as session:
            return int(
                await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(inbox_table)
                    .where(inbox_table.c.consumer == self.consumer_name)
                )
                or 0
            )


@pytest.fixture
async def harness(probe_db: str, batch_topic: str) -> AsyncIterator[Harness]:
    db = Database(probe_db)
    settings = CommonSettings()
    producer = ResilientProducer(lambda: make_producer(settings, "batch-dlq"), service="probe")
    await producer.start()
    h = Harness(db, producer)
    try:
        yield h
    finally:
        await h.stop()
        await producer.stop()
        await db.dispose()


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> None:
    await eventually(check, timeout=timeout)


async def test_duplicates_inside_a_chunk_and_of_an_earlier_batch_are_applied_once(
    harness: Harness,
) -> None:
    key = uuid.uuid4().hex
    await harness.pin()
    first = _events(2)
    await _produce(key, first)
    await harness.start(batch_size=10)

    async def first_applied() -> None:
        assert await harness.applied_amounts(key) == [1, 2]

    await _until(first_applied)
    await harness.stop()
    # The next fetched batch: e2 again (a duplicate of the earlier batch), e3, e4, e3 again
    # (a duplicate inside the chunk), e5.
    more = [Event(str(uuid.uuid4()), amount) for amount in (3, 4, 5)]
    await _produce(key, [first[1], more[0], more[1], more[0], more[2]])
    runner = await harness.start(batch_size=10)

    async def all_seen() -> None:
        assert runner.processed == 5

    await _until(all_seen)
    assert await harness.applied_amounts(key) == [1, 2, 3, 4, 5]
    assert await harness.inbox_count() == 5
    assert runner.chunks_committed >= 1 and runner.chunks_fallen_back == 0


async def test_a_failing_handler_in_a_chunk_is_dead_lettered_and_the_others_applied_once(
    harness: Harness, kafka_probe: Any
) -> None:
    dlq = await kafka_probe(BATCH_TOPIC + ".dlq")
    key = uuid.uuid4().hex
    await harness.pin()
    events = _events(5, e3="XXX")
    await _produce(key, events)
    runner = await harness.start(batch_size=10, max_attempts=3)
    dead = await dlq.wait_for(MONEY, lambda e: e.event_id == events[2].event_id, timeout=30)

    async def others_applied() -> None:
        assert await harness.applied_amounts(key) == [1, 2, 4, 5]

    await _until(others_applied)
    assert dead[0].headers["dlq_attempts"] == "3"
    assert "currency XXX" in dead[0].headers["dlq_error"]
    assert runner.chunks_fallen_back == 1
    assert await harness.inbox_count() == 4

    # The offset moves past all five (offsets are committed every commit interval): nothing
    # is delivered again.
    async def moved_past_all_five() -> None:
        committed = await _committed(harness.group_id)
        assert max(v or 0 for v in committed.values()) >= 5

    await _until(moved_past_all_five)


@pytest.mark.parametrize("cause", ["lock-timeout", "connection-killed"])
async def test_a_transient_database_error_in_a_chunk_waits_and_applies_each_event_once(
    harness: Harness, probe_db: str, cause: str
) -> None:
    """A row the 3rd handler updates is held locked by another transaction: with a lock
    timeout the chunk gives up by itself; without one its connection is killed while it
    waits. Either way the chunk rolls back, the events before the locked one are applied one
    by one, the locked one waits for the lock (not the message's fault: no attempt spent, no
    dead letter) and everything is applied once the lock is released."""
    key = uuid.uuid4().hex
    dsn = probe_db.replace("+asyncpg", "")
    async with harness.db.sessions() as session:
        await session.execute(sa.insert(notes).values(id=key, text="locked", amount=0))
        await session.commit()
    holder = await asyncpg.connect(dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM notes WHERE id = $1 FOR UPDATE", key)
        await harness.pin()
        await _produce(key, _events(5, e3="LCK"))
        runner = await harness.start(
            batch_size=10, max_attempts=1, lock_timeout_ms=200 if cause == "lock-timeout" else 0
        )
        if cause == "connection-killed":
            pid = await _waiting_backend(dsn)
            monitor = await asyncpg.connect(dsn)
            try:
                await monitor.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await monitor.close()

        async def first_two_applied() -> None:
            assert await harness.applied_amounts(key) == [1, 2]
            assert runner.chunks_fallen_back == 1

        await _until(first_two_applied)
        await asyncio.sleep(0.5)  # the 3rd still waits for the lock
        assert await harness.applied_amounts(key) == [1, 2]
        await tx.commit()
    finally:
        await holder.close()

    async def all_applied() -> None:
        assert await harness.applied_amounts(key) == [1, 2, 3, 4, 5]

    await _until(all_applied)
    async with harness.db.sessions() as session:
        assert await session.scalar(sa.select(notes.c.amount).where(notes.c.id == key)) == 1
    assert await harness.inbox_count() == 5


async def test_a_deadlock_victim_is_retried_not_dead_lettered(
    harness: Harness, probe_db: str
) -> None:
    """One event per transaction and a single attempt: a deadlock (the consumer's transaction
    holds note -a and waits for -b, which the test holds, then the test asks for -a) aborts
    the consumer's transaction; that is transient, so it is run again, not dead-lettered."""
    key = uuid.uuid4().hex
    async with harness.db.sessions() as session:
        for suffix in ("a", "b"):
            await session.execute(sa.insert(notes).values(id=f"{key}-{suffix}", text="d", amount=0))
        await session.commit()
    holder = await asyncpg.connect(probe_db.replace("+asyncpg", ""))
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("UPDATE notes SET amount = amount + 10 WHERE id = $1", f"{key}-b")
        await harness.pin()
        await _produce(key, _events(1, e1="DLK"))
        await harness.start(batch_size=1, max_attempts=1)

        await _waiting_backend(probe_db.replace("+asyncpg", ""))
        # The consumer waits first, so its deadlock check (deadlock_timeout) runs first and
        # its transaction is the one aborted; ours then gets the row.
        await holder.execute("UPDATE notes SET amount = amount + 10 WHERE id = $1", f"{key}-a")
        await tx.commit()
    finally:
        await holder.close()

    async def applied_once() -> None:
        assert await harness.applied_amounts(key) == [1]

    await _until(applied_once)
    async with harness.db.sessions() as session:
        amounts = (
            await session.execute(
                sa.select(notes.c.id, notes.c.amount).where(notes.c.id.like(f"{key}-%"))
            )
        ).all()
    assert {r.id: r.amount for r in amounts} == {f"{key}-a": 11, f"{key}-b": 11}


async def test_partition_order_holds_across_chunks(harness: Harness) -> None:
    key = uuid.uuid4().hex
    await harness.pin()
    await _produce(key, _events(23))
    runner = await harness.start(batch_size=7)

    async def all_applied() -> None:
        assert await harness.applied_amounts(key) == list(range(1, 24))

    await _until(all_applied)
    assert runner.chunks_committed >= 3 and runner.chunks_fallen_back == 0


async def test_sigkill_in_the_middle_of_a_chunk_commits_nothing_and_redelivers_it(
    harness: Harness, probe_db: str
) -> None:
    key = uuid.uuid4().hex
    ends = await harness.pin()
    await _produce(key, _events(5, e3="SLP"))
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        probe_db,
        harness.prefix,
        harness.name,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        assert worker.stdout is not None
        line = b""
        async with asyncio.timeout(60):
            while b"IN-CHUNK" not in line:
                line = await worker.stdout.readline()
                assert line, "the worker ended before reaching the chunk"
        # e1 and e2 are written in the open transaction, e3's handler sleeps: kill it now.
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert await harness.applied_amounts(key) == []
    assert await harness.inbox_count() == 0
    assert await _committed(harness.group_id) == ends
    # A new consumer of the group gets the chunk again and applies each event once.
    await harness.start(batch_size=10)

    async def all_applied() -> None:
        assert await harness.applied_amounts(key) == [1, 2, 3, 4, 5]

    await _until(all_applied, timeout=60)
    assert await harness.inbox_count() == 5


async def test_offsets_are_committed_at_most_once_per_interval_and_when_the_consumer_stops(
    harness: Harness,
) -> None:
    """Events arriving one by one are applied at once, but their offsets are committed in
    one request per commit interval (one per fetched batch before: a write to the broker's
    offsets log for every event and group); stopping commits what is left."""
    key = uuid.uuid4().hex
    ends = await harness.pin()
    runner = await harness.start(batch_size=10, commit_interval_ms=60_000)
    events = _events(8)
    started = asyncio.get_running_loop().time()
    for ev in events:  # one fetch each
        await _produce(key, [ev])
        await asyncio.sleep(0.1)

    async def all_applied() -> None:
        assert await harness.applied_amounts(key) == list(range(1, 9))

    await _until(all_applied)
    assert asyncio.get_running_loop().time() - started < 60
    assert runner.offset_commits == 0
    assert await _committed(harness.group_id) == ends
    await harness.stop()
    after = await _committed(harness.group_id)
    assert sum(v or 0 for v in after.values()) == sum(ends.values()) + 8
    assert runner.offset_commits == 1


async def test_a_rebalance_commits_the_handled_offsets_of_the_revoked_partitions(
    harness: Harness,
) -> None:
    """A second member joining the group revokes every partition of the first (aiokafka's
    eager rebalance): what the first handled is committed then, not a commit interval later,
    so the partitions' new owner does not deliver it again."""
    key = uuid.uuid4().hex
    ends = await harness.pin()
    first = await harness.start(batch_size=10, commit_interval_ms=60_000)
    await _produce(key, _events(5))

    async def all_applied() -> None:
        assert await harness.applied_amounts(key) == [1, 2, 3, 4, 5]

    await _until(all_applied)
    assert await _committed(harness.group_id) == ends
    second = await harness.start(batch_size=10, commit_interval_ms=60_000)

    async def committed_on_revoke() -> None:
        after = await _committed(harness.group_id)
        assert sum(v or 0 for v in after.values()) == sum(ends.values()) + 5

    await _until(committed_on_revoke)
    assert first.offset_commits >= 1
    await asyncio.sleep(2)  # the new owner has fetched by now: nothing comes again
    assert second.processed == 0
    assert await harness.inbox_count() == 5
