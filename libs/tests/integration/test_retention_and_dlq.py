"""Retention of the platform tables and dead letters replayed, on the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from ecomops.common.v1 import common_pb2
from ecomops_platform.db import (
    Database,
    idempotency_table,
    inbox_table,
    outbox_table,
    singleton_lock_id,
    utcnow,
)
from ecomops_platform.retention import RetentionPolicy, purge_expired
from ecomops_testing import eventually

from .conftest import PROBE_TOPIC, applied
from .test_outbox_and_consumer import _count, _headers, _send_raw

pytestmark = pytest.mark.integration

DAY = 86400.0


async def _seed(db: Database, tag: str, at: datetime, *, published: bool) -> None:
    """One row in each platform table, recorded at ``at``."""
    async with db.sessions() as session, session.begin():
        await session.execute(
            sa.insert(outbox_table).values(
                event_id=uuid.uuid4(),
                topic="ecomops.retention-test.v1",
                key=tag,
                event_type="ecomops.common.v1.Money",
                payload=b"",
                headers={},
                created_at=at,
                published_at=at if published else None,
            )
        )
        await session.execute(
            sa.insert(inbox_table).values(
                event_id=f"{tag}-event", consumer="retention-test", event_type="t", processed_at=at
            )
        )
        await session.execute(
            sa.insert(idempotency_table).values(
                caller=tag,
                operation="op",
                key="k",
                fingerprint="f",
                status_code=201,
                body={},
                created_at=at,
            )
        )


async def _left(db: Database, tag: str) -> dict[str, int]:
    return {
        "outbox": await _count(db, outbox_table, outbox_table.c.key == tag),
        "inbox": await _count(db, inbox_table, inbox_table.c.event_id == f"{tag}-event"),
        "idempotency_keys": await _count(db, idempotency_table, idempotency_table.c.caller == tag),
    }


async def test_retention_deletes_by_age_per_table_and_never_an_unpublished_event(
    probe_db: str,
) -> None:
    db = Database(probe_db)
    try:
        now = utcnow()
        fresh, day_old, week_old, fortnight_old = (uuid.uuid4().hex for _ in range(4))
        await _seed(db, fresh, now, published=True)
        await _seed(db, day_old, now - timedelta(hours=25), published=True)
        await _seed(db, week_old, now - timedelta(days=8), published=True)
        await _seed(db, fortnight_old, now - timedelta(days=15), published=False)

        policy = RetentionPolicy(batch_size=2)  # several batches on a busy table
        assert await purge_expired(db, "probe", policy, now=now) is not None

        assert await _left(db, fresh) == {"outbox": 1, "inbox": 1, "idempotency_keys": 1}
        # 25 h: only the idempotency key (24 h) has expired.
        assert await _left(db, day_old) == {"outbox": 1, "inbox": 1, "idempotency_keys": 0}
        # 8 days: the published outbox row (7 days) too, the inbox row (14 days) stays.
        assert await _left(db, week_old) == {"outbox": 0, "inbox": 1, "idempotency_keys": 0}
        # 15 days: the inbox row goes, the unpublished event never does.
        assert await _left(db, fortnight_old) == {"outbox": 1, "inbox": 0, "idempotency_keys": 0}

        # The clock moved 30 days on: everything published or applied is gone.
        later = await purge_expired(db, "probe", policy, now=now + timedelta(days=30))
        assert later is not None and later["inbox"] >= 3
        for tag in (fresh, day_old, week_old):
            assert await _left(db, tag) == {"outbox": 0, "inbox": 0, "idempotency_keys": 0}
        assert (await _left(db, fortnight_old))["outbox"] == 1
    finally:
        async with db.sessions() as session, session.begin():
            await session.execute(
                sa.delete(outbox_table).where(outbox_table.c.topic == "ecomops.retention-test.v1")
            )
        await db.dispose()


async def test_retention_is_a_singleton_across_replicas(probe_db: str) -> None:
    db = Database(probe_db)
    try:
        lock_id = singleton_lock_id("retention-probe")
        async with db.engine.connect() as other_replica:
            await other_replica.execute(sa.select(sa.func.pg_advisory_lock(lock_id)))
            assert await purge_expired(db, "probe") is None  # skipped, not waiting
            await other_replica.execute(sa.select(sa.func.pg_advisory_unlock(lock_id)))
        assert await purge_expired(db, "probe") is not None
    finally:
        await db.dispose()


def _ecomops(*args: str) -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "ecomops")
    done = subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


async def test_dead_letter_replayed_after_the_fix_is_applied_exactly_once(probe_service) -> None:
    key, event_id = uuid.uuid4().hex, str(uuid.uuid4())
    payload = common_pb2.Money(amount_minor=11, currency="CFG").SerializeToString()
    await _send_raw(payload, _headers(event_id), key)

    async def dead_lettered() -> list[dict[str, object]]:
        out = await asyncio.to_thread(_ecomops, "dlq", "list", "--topic", PROBE_TOPIC, "--json")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        mine = [r for r in rows if r["id"] == event_id]
        assert mine, f"{event_id} not dead-lettered yet"
        return mine

    letters = await eventually(dead_lettered, timeout=60, interval=1.0)
    assert len(letters) == 1
    assert "currency CFG is not configured" in str(letters[0]["error"])
    assert letters[0]["original_topic"] == PROBE_TOPIC
    assert letters[0]["consumer"] == "probe:main"
    assert await _count(probe_service.db, applied, applied.c.event_id == event_id) == 0

    # The cause is fixed (the configuration now has it); replay it, twice, by its id.
    probe_service.bus.deps.configured.add("CFG")
    assert "replayed" in await asyncio.to_thread(
        _ecomops, "dlq", "replay", "--topic", PROBE_TOPIC, "--id", event_id
    )
    await asyncio.to_thread(_ecomops, "dlq", "replay", "--topic", PROBE_TOPIC, "--id", event_id)

    async def applied_once() -> None:
        assert await _count(probe_service.db, applied, applied.c.event_id == event_id) == 1

    await eventually(applied_once, timeout=60)
    # A marker sent after both replays is applied, so both replays were handled before it.
    marker = str(uuid.uuid4())
    await _send_raw(
        common_pb2.Money(amount_minor=1, currency="EUR").SerializeToString(),
        _headers(marker),
        key,
    )

    async def marker_applied() -> None:
        assert await _count(probe_service.db, applied, applied.c.event_id == marker) == 1

    await eventually(marker_applied, timeout=60)
    assert await _count(probe_service.db, applied, applied.c.event_id == event_id) == 1
