"""Pooled connections killed under the service (``pg_terminate_backend``, what a PostgreSQL
restart does to every connection), without pre-ping: the next unit of work gets a live
connection, a transaction that was half done is never re-run, and under concurrent writes
every acknowledged write is there exactly once while every failure is a transient one (a 503,
never a 500).

Only this test's own connections are terminated (their server pids are recorded as the pool
opens them), so that other users of the shared dev stack are not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import sqlalchemy as sa

from ecomops_platform.db import Database, UnitOfWork
from ecomops_platform.errors import is_transient
from ecomops_platform.runtime import Service
from ecomops_testing import bearer

from .conftest import DB_NAME, notes

pytestmark = pytest.mark.integration


def _admin_dsn() -> str:
    return os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")


def _record_pids(db: Database) -> set[int]:
    """The server pids of the pool's live connections (a closed one is forgotten, so that a pid
    the OS hands to another backend later is never terminated)."""
    pids: set[int] = set()

    def pid_of(dbapi_connection: object) -> int:
        return int(dbapi_connection.driver_connection.get_server_pid())  # type: ignore[attr-defined]

    def on_connect(dbapi_connection: object, record: object) -> None:
        pids.add(pid_of(dbapi_connection))

    def on_gone(dbapi_connection: object, record: object, *_exc: object) -> None:
        with contextlib.suppress(Exception):
            pids.discard(pid_of(dbapi_connection))

    engine = db.engine.sync_engine
    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "invalidate", on_gone)
    sa.event.listen(engine, "close", on_gone)
    return pids


async def _terminate(pids: set[int]) -> int:
    """Terminate these backends (only if they are still connected to the probe database)."""
    admin = await asyncpg.connect(_admin_dsn())
    try:
        killed = await admin.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE pid = ANY($1::int[]) AND datname = $2",
            list(pids),
            DB_NAME,
        )
        return int(killed or 0)
    finally:
        await admin.close()


async def _fill_pool(db: Database, n: int) -> None:
    """Open ``n`` pooled connections (concurrent units of work), then return them to the pool."""
    gate = asyncio.Barrier(n)

    async def one() -> None:
        async with UnitOfWork(db, "probe") as uow:
            await uow.session.execute(sa.select(sa.literal(1)))
            await gate.wait()

    await asyncio.gather(*(one() for _ in range(n)))


@pytest.fixture
async def db(probe_db: str) -> AsyncIterator[Database]:
    database = Database(probe_db, pool_size=4, max_overflow=0)
    try:
        yield database
    finally:
        await database.dispose()


def _probe_dsn() -> str:
    return _admin_dsn().rsplit("/", 1)[0] + "/" + DB_NAME


async def _count(db: Database, note_id: str) -> int:
    """Rows with this id, as another client sees them (a connection of its own, not the pool
    under test: what was acknowledged must be visible to everyone)."""
    other = await asyncpg.connect(_probe_dsn())
    try:
        return int(await other.fetchval("SELECT count(*) FROM notes WHERE id = $1", note_id))
    finally:
        await other.close()


async def _write(db: Database, note_id: str) -> None:
    async with UnitOfWork(db, "probe") as uow:
        await uow.session.execute(sa.insert(notes).values(id=note_id, text="t", amount=1))
        await uow.commit()


async def test_units_of_work_go_on_after_every_pooled_connection_was_killed(db: Database) -> None:
    pids = _record_pids(db)
    await _fill_pool(db, 4)
    assert len(pids) == 4
    assert await _terminate(pids) == 4
    await asyncio.sleep(0.3)  # the loop sees the sockets close
    for _ in range(6):
        note_id = f"dead-{uuid.uuid4().hex[:12]}"
        await _write(db, note_id)
        assert await _count(db, note_id) == 1


async def _leave_one_dead_connection_unchecked(db: Database) -> None:
    """The pool holds one connection whose backend was terminated, and the checkout check that
    would replace it is off: the next user finds it dead."""
    sa.event.remove(db.engine.sync_engine, "checkout", db._checkout_guard)
    pids = _record_pids(db)
    await _fill_pool(db, 1)
    assert await _terminate(pids) == 1
    await asyncio.sleep(0.3)


async def test_a_connection_found_dead_at_begin_is_retried_once(db: Database) -> None:
    """Without the checkout check, the dead connection shows at BEGIN: retried on a fresh one
    (the caller's statements had not run), once."""
    await _leave_one_dead_connection_unchecked(db)
    note_id = f"dead-{uuid.uuid4().hex[:12]}"
    await _write(db, note_id)
    assert db.dead_connections_replaced == 1
    assert await _count(db, note_id) == 1


def _counted_insert(note_id: str) -> tuple[Callable[[Any], Awaitable[str]], list[int]]:
    """Autocommit work that inserts one note, and the list its runs are counted in."""
    runs: list[int] = []

    async def insert(conn: Any) -> str:
        runs.append(1)
        status: str = await conn.execute(
            "INSERT INTO notes (id, text, amount) VALUES ($1, 't', 1)", note_id
        )
        return status

    return insert, runs


async def test_an_autocommit_statement_on_a_dead_connection_runs_once_more_on_a_fresh_one(
    db: Database,
) -> None:
    """The connection dies before the statement reaches the server: the work runs again on a
    fresh connection, once, and commits by itself (no transaction to commit)."""
    await _leave_one_dead_connection_unchecked(db)
    note_id = f"dead-{uuid.uuid4().hex[:12]}"
    insert, runs = _counted_insert(note_id)
    assert await db.autocommit(insert) == "INSERT 0 1"
    assert (len(runs), db.dead_connections_replaced) == (2, 1)
    assert await _count(db, note_id) == 1
    # A statement error is the caller's, never retried.
    runs.clear()
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.autocommit(insert)
    assert len(runs) == 1


async def test_a_transaction_cut_half_way_is_not_rerun(db: Database) -> None:
    pids = _record_pids(db)
    note_id = f"dead-{uuid.uuid4().hex[:12]}"
    with pytest.raises(Exception) as caught:
        async with UnitOfWork(db, "probe") as uow:
            await uow.session.execute(sa.insert(notes).values(id=note_id, text="t", amount=1))
            assert await _terminate(pids) == 1
            await asyncio.sleep(0.1)
            await uow.commit()
    assert is_transient(caught.value), repr(caught.value)
    assert db.dead_connections_replaced == 0
    assert await _count(db, note_id) == 0
    await _write(db, note_id)  # the pool recovered
    assert await _count(db, note_id) == 1


async def test_concurrent_writes_while_connections_are_killed_lose_nothing(db: Database) -> None:
    """Writers retry a failed write like a client retrying a 503 (the insert is idempotent by
    its key); the killer terminates every connection of the pool, twelve times."""
    pids = _record_pids(db)
    prefix = f"dead-{uuid.uuid4().hex[:8]}"
    acknowledged: list[str] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(25):
            note_id = f"{prefix}-{w}-{i}"
            for _attempt in range(100):
                try:
                    async with UnitOfWork(db, "probe") as uow:
                        stmt = sa.text(
                            "INSERT INTO notes (id, text, amount) VALUES (:id, 't', 1)"
                            " ON CONFLICT (id) DO NOTHING"
                        )
                        await uow.session.execute(stmt, {"id": note_id})
                        await uow.commit()
                    acknowledged.append(note_id)
                    break
                except Exception as exc:
                    failures.append(exc)
                    await asyncio.sleep(0.02)

    kills = 0

    async def killer() -> None:
        nonlocal kills
        for _ in range(12):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
            kills += await _terminate(pids)

    killing = asyncio.create_task(killer())
    try:
        await asyncio.gather(*(writer(w) for w in range(4)))
    finally:
        stop.set()
        await killing
    assert kills > 0
    assert len(acknowledged) == 100, [repr(f) for f in failures[-3:]]
    other = await asyncpg.connect(_probe_dsn())
    try:
        rows = await other.fetch("SELECT id FROM notes WHERE id LIKE $1", f"{prefix}-%")
    finally:
        await other.close()
    assert sorted(r["id"] for r in rows) == sorted(acknowledged)
    assert all(is_transient(f) for f in failures), [repr(f) for f in failures[:3]]


async def test_rest_answers_200_after_its_connections_were_killed(probe_service: Service) -> None:
    pids = _record_pids(probe_service.db)
    await _fill_pool(probe_service.db, 3)
    assert await _terminate(pids) >= 3
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{probe_service.http_port}",
        headers=bearer("ops-dead", "ops"),
    ) as client:
        for _ in range(5):
            response = await client.post(
                "/v1/notes",
                json={"text": "after the kill", "amount": 1},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code in (200, 201), response.text


class _SlowReplies:
    """A TCP proxy in front of PostgreSQL that passes requests at once and holds each reply of
    the server for ``delay`` seconds: a unit of work cancelled while it waits for its BEGIN has
    sent the BEGIN, and the server has run it. With ``hold_close``, a connection the server
    closed stays open towards the client until ``release_closes()``: the client has read the
    server's last words and not yet seen the end of the stream (a busy event loop)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.delay = host, port, 0.0
        self.hold_close = False
        self._closes_released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def release_closes(self) -> None:
        self._closes_released.set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if slow and self.delay:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
                if slow and self.hold_close:
                    await self._closes_released.wait()
            dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer, slow=False)),
            asyncio.create_task(pipe(up_reader, writer, slow=True)),
        ):
            self._tasks.add(task)


@contextlib.asynccontextmanager
async def _behind_proxy(
    probe_db: str, pool_size: int
) -> AsyncIterator[tuple[Database, _SlowReplies]]:
    """A pool of ``pool_size`` connections that reach PostgreSQL through a ``_SlowReplies``."""
    url = sa.make_url(probe_db)
    proxy = _SlowReplies(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    db = Database(
        url.set(port=port).render_as_string(hide_password=False),
        pool_size=pool_size,
        max_overflow=0,
    )
    try:
        yield db, proxy
    finally:
        proxy.release_closes()
        await db.dispose()
        await proxy.stop()


async def test_a_unit_of_work_cancelled_during_its_begin_does_not_poison_the_next(
    probe_db: str,
) -> None:
    """A gRPC client that goes away cancels its handler: cancelled while its BEGIN was on the
    wire, the unit of work left the server inside that transaction and the pool took the
    connection back as clean. The next unit of work on it ran as a SAVEPOINT of a transaction
    that never commits: acknowledged, never visible to anyone else, its locks held."""
    async with _behind_proxy(probe_db, pool_size=1) as (db, proxy):
        await _write(db, f"warm-{uuid.uuid4().hex[:12]}")  # the pool's one connection, open
        proxy.delay = 0.4
        cancelled = asyncio.create_task(_write(db, f"cut-{uuid.uuid4().hex[:12]}"))
        await asyncio.sleep(0.2)  # BEGIN sent and run; its reply held by the proxy
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.sleep(0.6)  # the held reply arrives: the server is in the transaction
        proxy.delay = 0.0
        note_id = f"after-{uuid.uuid4().hex[:12]}"
        await _write(db, note_id)
        other = await asyncpg.connect(_probe_dsn())
        try:
            seen = await other.fetchval("SELECT count(*) FROM notes WHERE id = $1", note_id)
            stuck = await other.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                " AND state LIKE 'idle in transaction%' AND now() - xact_start > interval '1 s'",
                DB_NAME,
            )
        finally:
            await other.close()
        assert seen == 1, (
            "an acknowledged write is not visible: it ran inside a transaction left open"
        )
        assert stuck == 0, "a connection of the pool is still inside the cancelled transaction"


async def _tell_of_a_shutdown(proxy: _SlowReplies, pids: set[int]) -> None:
    """Terminate the pool's connections with their closes held by the proxy: each has read the
    server's FATAL error, none has seen its socket close."""
    proxy.hold_close = True
    assert await _terminate(pids) == len(pids)
    await asyncio.sleep(0.3)


async def test_connections_told_of_a_shutdown_before_their_socket_closes_are_replaced(
    probe_db: str,
) -> None:
    """PostgreSQL shutting down sends each connection a FATAL error, then closes it. A pooled
    connection checked out between the two passes the checkout check (its socket is still
    open), yet asyncpg refuses every statement on it ("another operation is in progress"). Seen
    in CI as a 500 from the checkout's Idempotency-Key lease while PostgreSQL restarted: the
    autocommit retry did not know the error, and would have taken the next stale connection.
    Now both paths retry on a newly opened connection and the write lands once."""
    async with _behind_proxy(probe_db, pool_size=2) as (db, proxy):
        pids = _record_pids(db)
        await _fill_pool(db, 2)
        await _tell_of_a_shutdown(proxy, set(pids))
        note_id = f"told-{uuid.uuid4().hex[:12]}"
        insert, runs = _counted_insert(note_id)
        assert await db.autocommit(insert) == "INSERT 0 1"
        assert len(runs) == 2 and db.dead_connections_replaced == 1
        assert await _count(db, note_id) == 1

        # A unit of work's BEGIN on such a connection: the same.
        await _fill_pool(db, 2)
        await _tell_of_a_shutdown(proxy, set(pids))
        note_id = f"told-{uuid.uuid4().hex[:12]}"
        await _write(db, note_id)
        assert db.dead_connections_replaced == 2
        assert await _count(db, note_id) == 1


async def test_a_statement_on_a_connection_told_of_a_shutdown_is_a_transient_error(
    probe_db: str,
) -> None:
    """The same state met half way through a unit of work (the FATAL error arrived between two
    statements): asyncpg aborts a connection on which an operation cannot start, so
    SQLAlchemy's dialect sees it closed and fails the statement as a disconnect, which the
    service answers 503; the next unit of work runs on a new connection."""
    async with _behind_proxy(probe_db, pool_size=1) as (db, proxy):
        pids = _record_pids(db)
        with pytest.raises(Exception) as caught:
            async with UnitOfWork(db, "probe") as uow:
                await uow.session.execute(sa.select(sa.literal(1)))
                await _tell_of_a_shutdown(proxy, set(pids))
                await uow.session.execute(
                    sa.insert(notes).values(id=f"cut-{uuid.uuid4().hex[:12]}", text="t", amount=1)
                )
        assert is_transient(caught.value), repr(caught.value)
        note_id = f"after-{uuid.uuid4().hex[:12]}"
        await _write(db, note_id)
        assert await _count(db, note_id) == 1
