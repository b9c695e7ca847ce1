"""Transactional outbox and idempotent consumer against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecomops.common.v1 import common_pb2
from ecomops_platform.db import Database, UnitOfWork, outbox_table
from ecomops_platform.errors import Conflict
from ecomops_platform.events import cloudevent_headers, kafka_client_options, make_producer
from ecomops_platform.settings import CommonSettings
from ecomops_testing import eventually

from .conftest import PROBE_TOPIC, NoteIn, applied, build_probe_service, create_note, notes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


async def _count(db: Database, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0
        )


async def test_state_and_event_commit_together_or_not_at_all(probe_db: str) -> None:
    db = Database(probe_db)
    try:
        ok_id, failed_id = uuid.uuid4().hex, uuid.uuid4().hex
        await create_note(UnitOfWork(db, "probe"), ok_id, NoteIn(text="kept", amount=1))
        with pytest.raises(Conflict):
            await create_note(
                UnitOfWork(db, "probe"), failed_id, NoteIn(text="gone", amount=2), fail=True
            )
        assert await _count(db, notes, notes.c.id == ok_id) == 1
        assert await _count(db, outbox_table, outbox_table.c.key == ok_id) == 1
        assert await _count(db, notes, notes.c.id == failed_id) == 0
        assert await _count(db, outbox_table, outbox_table.c.key == failed_id) == 0
    finally:
        await db.dispose()


async def test_a_commit_that_bypasses_the_unit_of_work_keeps_neither_state_nor_events(
    probe_db: str,
) -> None:
    """Events are written by ``UnitOfWork.commit``: a session committed some other way would
    drop them, so that commit is refused and its state rolls back with them."""
    db = Database(probe_db)
    try:
        key = uuid.uuid4().hex
        async with UnitOfWork(db, "probe") as uow:
            await uow.session.execute(sa.insert(notes).values(id=key, text="t", amount=1))
            uow.add_event(common_pb2.Money(amount_minor=1, currency="EUR"), key=key)
            with pytest.raises(RuntimeError, match="outbox rows pending"):
                await uow.session.commit()
        assert await _count(db, notes, notes.c.id == key) == 0
        assert await _count(db, outbox_table, outbox_table.c.key == key) == 0
    finally:
        await db.dispose()


async def test_event_recorded_while_no_relay_runs_is_published_after_restart(
    probe_db, kafka_probe
) -> None:
    probe = await kafka_probe(PROBE_TOPIC)
    db = Database(probe_db)
    note_id = uuid.uuid4().hex
    try:
        # The process "died" after committing: nothing published it.
        await create_note(UnitOfWork(db, "probe"), note_id, NoteIn(text="orphan", amount=7))
        await asyncio.sleep(0.5)
        assert probe.matching("ecomops.common.v1.Money", lambda e: e.key == note_id) == []
    finally:
        await db.dispose()
    service = build_probe_service()
    async with service.running():
        events = await probe.wait_for("ecomops.common.v1.Money", lambda e: e.key == note_id)
    assert events[0].message.amount_minor == 7
    assert events[0].headers["ce_source"] == "ecomops/probe"
    assert events[0].headers["ce_specversion"] == "1.0"


async def _send_raw(value: bytes, headers: dict[str, str], key: str) -> None:
    producer = make_producer(CommonSettings(), "probe-test")
    await producer.start()
    try:
        await producer.send_and_wait(
            PROBE_TOPIC,
            value=value,
            key=key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


def _headers(event_id: str) -> dict[str, str]:
    return cloudevent_headers(
        event_id=event_id,
        event_type="ecomops.common.v1.Money",
        source="ecomops/test",
        time=datetime.now(UTC),
        traceparent=None,
    )


async def test_redelivered_event_is_applied_once(probe_service) -> None:
    key, event_id = uuid.uuid4().hex, str(uuid.uuid4())
    payload = common_pb2.Money(amount_minor=5, currency="EUR").SerializeToString()
    await _send_raw(payload, _headers(event_id), key)
    await _send_raw(payload, _headers(event_id), key)
    marker = uuid.uuid4().hex
    await _send_raw(payload, _headers(str(uuid.uuid4())), marker)

    async def both_seen() -> None:
        assert await _count(probe_service.db, applied, applied.c.key == marker) == 1

    await eventually(both_seen)
    assert await _count(probe_service.db, applied, applied.c.event_id == event_id) == 1


async def test_poison_messages_go_to_the_dlq_and_the_partition_moves_on(
    probe_service, kafka_probe
) -> None:
    dlq = await kafka_probe(PROBE_TOPIC + ".dlq")
    key = uuid.uuid4().hex  # one key: same partition, so "moves on" is observable
    undecodable_id, rejected_id, good_id = (str(uuid.uuid4()) for _ in range(3))
    await _send_raw(b"\xff\xff\xff not protobuf", _headers(undecodable_id), key)
    await _send_raw(
        common_pb2.Money(amount_minor=1, currency="XXX").SerializeToString(),
        _headers(rejected_id),
        key,
    )
    await _send_raw(
        common_pb2.Money(amount_minor=3, currency="EUR").SerializeToString(), _headers(good_id), key
    )

    async def good_applied() -> None:
        assert await _count(probe_service.db, applied, applied.c.event_id == good_id) == 1

    await eventually(good_applied, timeout=30)
    # The DLQ keeps the original bytes; the probe cannot decode the undecodable one, so read raw.
    from aiokafka import AIOKafkaConsumer

    from ecomops_platform.events import decode_headers

    consumer = AIOKafkaConsumer(
        PROBE_TOPIC + ".dlq",
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_client_options(CommonSettings()),
    )
    await consumer.start()
    try:
        found: dict[str, dict[str, str]] = {}
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < 2 and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for msg in messages:
                    headers = decode_headers(msg.headers)
                    if headers.get("ce_id") in (undecodable_id, rejected_id):
                        found[headers["ce_id"]] = headers
    finally:
        await consumer.stop()
    assert set(found) == {undecodable_id, rejected_id}
    assert "not a valid" in found[undecodable_id]["dlq_error"]
    assert "currency XXX" in found[rejected_id]["dlq_error"]
    assert found[rejected_id]["dlq_original_topic"] == PROBE_TOPIC
    assert await _count(probe_service.db, applied, applied.c.event_id == rejected_id) == 0
    del dlq


def _kafka(action: str) -> None:
    profile = os.environ.get("ECOMOPS_STACK_PROFILE", "test")
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/stack.sh"), f"kafka-{action}", profile],
        check=True,
        capture_output=True,
        timeout=120,
    )


async def test_writes_succeed_while_the_broker_is_down_and_events_follow_in_order(
    probe_service, kafka_probe
) -> None:
    import httpx

    from ecomops_testing import bearer

    key_prefix = uuid.uuid4().hex[:8]
    await asyncio.to_thread(_kafka, "stop")
    try:
        db = probe_service.db
        note_id = f"{key_prefix}-ordered"
        # Five events for one key, written while Kafka is down.
        for amount in range(1, 6):
            async with UnitOfWork(db, "probe") as uow:
                if amount == 1:
                    await uow.session.execute(
                        sa.insert(notes).values(id=note_id, text="x", amount=0)
                    )
                uow.add_event(
                    common_pb2.Money(amount_minor=amount, currency="EUR"),
                    key=note_id,
                    topic=PROBE_TOPIC,
                )
                await uow.commit()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{probe_service.http_port}"
        ) as client:
            resp = await client.post(
                "/v1/notes",
                json={"text": "while down", "amount": 9},
                headers={**bearer("ops-1", "ops"), "Idempotency-Key": uuid.uuid4().hex},
            )
            assert resp.status_code == 201
            # Kafka down degrades the service but keeps it ready: the outbox absorbs the outage.
            ready = await client.get("/readyz")
            report = ready.json()
            assert ready.status_code == 200, report
            assert report["checks"] == {"database": True, "kafka": False}, report
            assert report["status"] == "degraded" and report["degraded"] == ["kafka"], report
            assert report["outbox_oldest_unpublished_age_seconds"] > 0, report
    finally:
        await asyncio.to_thread(_kafka, "start")
    probe = await kafka_probe(PROBE_TOPIC)

    # The probe starts at the end; the relay may already have flushed. Read from the database
    # that everything was published, and from Kafka that order per key held.
    async def all_published() -> None:
        assert (
            await _count(
                db,
                outbox_table,
                outbox_table.c.key == note_id,
                outbox_table.c.published_at.is_(None),
            )
            == 0
        )

    await eventually(all_published, timeout=60)
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        PROBE_TOPIC,
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_client_options(CommonSettings()),
    )
    await consumer.start()
    amounts: list[int] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(amounts) < 5 and asyncio.get_running_loop().time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for msg in messages:
                    if msg.key == note_id.encode():
                        money = common_pb2.Money()
                        money.ParseFromString(msg.value)
                        amounts.append(money.amount_minor)
    finally:
        await consumer.stop()
    assert amounts == [1, 2, 3, 4, 5]
    del probe
