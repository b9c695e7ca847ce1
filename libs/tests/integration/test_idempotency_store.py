"""The SQL Idempotency-Key store on the real PostgreSQL: the one-statement claim (short lock
timeout set and restored in the same round trip), replay, reuse with another body, and the
statements of a unit of work run on the driver connection (``db.driver``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ecomops_platform.db import Database, UnitOfWork, driver
from ecomops_platform.errors import AlreadyInProgress, Unprocessable

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(probe_db: str):
    db = Database(probe_db, pool_size=4, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


async def test_a_claim_restores_the_lock_timeout_of_the_transaction(database: Database) -> None:
    key = uuid.uuid4().hex
    async with UnitOfWork(database, "probe") as uow:
        conn = await driver(uow.session)
        await conn.execute("SET LOCAL lock_timeout = '7s'")
        assert (
            await uow.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f1")
            is None
        )
        # The handler's statements run with the transaction's own timeout, not the claim's.
        assert await conn.fetchval("SHOW lock_timeout") == "7s"
        await uow.idempotency.store(
            caller="c", operation="op", key=key, status_code=200, body={"id": "n1", "x": [1]}
        )
        await uow.commit()
        # commit forgets the connection; the next transaction gets a begun one again
        conn2 = await driver(uow.session)
        assert conn2.is_in_transaction()
        assert await conn2.fetchval("SHOW lock_timeout") == "0"
    async with UnitOfWork(database, "probe") as uow:
        stored = await uow.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f1")
        assert stored is not None and stored.replayed
        assert (stored.status_code, stored.body) == (200, {"id": "n1", "x": [1]})
        with pytest.raises(Unprocessable):
            await uow.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f2")


async def test_a_concurrent_claim_of_an_uncommitted_key_is_409_after_the_short_timeout(
    database: Database,
) -> None:
    key = uuid.uuid4().hex
    async with UnitOfWork(database, "probe") as first:
        assert (
            await first.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f")
            is None
        )
        async with UnitOfWork(database, "probe") as second:
            started = asyncio.get_running_loop().time()
            with pytest.raises(AlreadyInProgress):
                await second.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f")
            waited = asyncio.get_running_loop().time() - started
        assert 0.2 <= waited < 5
        await first.rollback()
    # The first attempt rolled back: the key is free again.
    async with UnitOfWork(database, "probe") as again:
        assert (
            await again.idempotency.claim(caller="c", operation="op", key=key, fingerprint="f")
            is None
        )
