"""Database access: one async engine per process, a unit of work, and the platform's tables.

Every service database holds three platform tables beside its own: ``outbox`` (events recorded
in the same transaction as the state change), ``inbox`` (ids of events already applied, written
in the consumer's transaction) and ``idempotency_keys`` (responses replayed for a repeated
Idempotency-Key, written in the business transaction).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from . import tracing
from .db_connections import (
    DeadConnection,
    begin_now,
    close_if_inside_transaction,
    connection_lost,
    discard,
    is_disconnect,
    refuse_unusable_connection,
    retire_pooled_connections,
)
from .ports import IdempotencyStore, Lease, StoredResponse
from .topics import service_topic

log = logging.getLogger("ecomops.db")

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


platform_metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    platform_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index(
    "ix_outbox_unpublished",
    outbox_table.c.id,
    postgresql_where=outbox_table.c.published_at.is_(None),
)

inbox_table = sa.Table(
    "inbox",
    platform_metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

# The retention job deletes by age (ecomops_platform.retention).
sa.Index(
    "ix_outbox_published_at",
    outbox_table.c.published_at,
    postgresql_where=outbox_table.c.published_at.is_not(None),
)
sa.Index("ix_inbox_processed_at", inbox_table.c.processed_at)

idempotency_table = sa.Table(
    "idempotency_keys",
    platform_metadata,
    sa.Column("caller", sa.String(200), primary_key=True),
    sa.Column("operation", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_idempotency_keys_created_at", idempotency_table.c.created_at)


class Database:
    """The process's engine and session factory, created at start-up, never at import.

    No pre-ping: a pooled connection is not tested with a round trip on every checkout (that
    was a transaction of its own per unit of work). Instead:

    - a connection the driver already knows is closed (the server terminated it, PostgreSQL
      restarted: the socket was closed and the event loop saw it) is refused at checkout and
      replaced, without a round trip (``refuse_unusable_connection``);
    - connections are recycled after ``pool_recycle`` seconds, so that none outlives a
      silently dropped network path for long;
    - a unit of work starts its transaction (``BEGIN``, the round trip its first statement
      would have paid anyway) before any statement of the caller, and when that fails because
      the connection is dead it is retried once on a fresh connection (``begin``). A failure
      after the caller's first statement is never retried here: the transaction is rolled
      back and the caller sees the error (a 503 while the database is down).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_recycle: float = 1800.0,
        outbox_notify: bool = True,
        service: str = "",
    ) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            pool_recycle=pool_recycle,
            pool_timeout=10,
            connect_args={"timeout": 5, "command_timeout": 30},
        )
        self._checkout_guard = functools.partial(refuse_unusable_connection, service=service)
        sa.event.listen(self.engine.sync_engine, "checkout", self._checkout_guard)
        self._checkin_guard = functools.partial(close_if_inside_transaction, service=service)
        sa.event.listen(self.engine.sync_engine, "checkin", self._checkin_guard)
        self._commit_listeners: list[Callable[[], None]] = []
        self.sessions = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            info={"outbox_committed": self._outbox_committed, "outbox_notify": outbox_notify},
        )
        self.dead_connections_replaced = 0

    async def begin(self) -> AsyncSession:
        """A session whose transaction has begun on a live connection (retried once on a
        fresh connection when the pooled one turns out dead before anything ran on it)."""
        for attempt in (1, 2):
            session = self.sessions()
            try:
                await session.begin()
                conn = await session.connection()
                await begin_now(conn)
                return session
            except BaseException as exc:
                await discard(session)
                if attempt == 2 or not is_disconnect(self.engine, exc):
                    raise
                self.dead_connections_replaced += 1
                log.info("a pooled connection was dead at the start of a unit of work: retried")
        raise AssertionError("unreachable")

    async def autocommit(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled asyncpg connection outside any transaction: each of its
        statements commits by itself, without the two round trips of a ``BEGIN`` and a
        ``COMMIT``. For work of one statement that stands alone (an Idempotency-Key lease, a
        single read).

        A connection that turns out dead is replaced and ``work`` run once more on a fresh one
        (as ``begin`` does for a unit of work), so ``work`` must be safe to run twice: its first
        run may have committed before the connection died under it. Dead twice is a
        ``ConnectionError`` (the caller's 503 / UNAVAILABLE), never the driver's own error."""
        for attempt in (1, 2):
            async with self.engine.connect() as conn:
                fairy = await conn.get_raw_connection()
                try:
                    return await work(fairy.driver_connection)
                except Exception as exc:
                    if not connection_lost(exc):
                        raise
                    retire_pooled_connections(self.engine, fairy, exc)
                    await conn.invalidate(exc)
                    if attempt == 2:
                        raise DeadConnection(str(exc)) from exc
            self.dead_connections_replaced += 1
            log.info("a pooled connection was dead under an autocommit statement: retried")
        raise AssertionError("unreachable")

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (synchronously, cheaply) after every commit that wrote outbox rows
        in this process: the outbox relay's wake-up."""
        self._commit_listeners.append(listener)

    def _outbox_committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


_DRIVER = "ecomops_driver"


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``'s transaction, the transaction begun: for hot
    paths that run their statements as asyncpg prepared statements (SQL text prepared once per
    connection by asyncpg's statement cache) instead of through SQLAlchemy's execution
    machinery (compilation, cache keys, result processing, a greenlet hop per statement).

    Everything it runs is part of the unit of work's transaction: it commits or rolls back with
    the session, and outbox rows and SQLAlchemy statements of the same unit of work see it.
    The connection is remembered for the transaction only (commit and rollback forget it: the
    pool may hand it to someone else). Parameters follow asyncpg's types (``json``/``jsonb``
    take a serialised ``str``: SQLAlchemy's codecs on the connection decode results to Python);
    a row is an ``asyncpg.Record`` (``row["name"]``; :func:`attrs` for attribute access)."""
    cached = session.info.get(_DRIVER)
    if cached is not None:
        return cached
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    adapted = fairy.dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    if start is not None and getattr(adapted, "_transaction", True) is None:
        await start()  # SQLAlchemy's adapter begins lazily, in front of its first statement
    raw = fairy.driver_connection
    session.info[_DRIVER] = raw
    return raw


class attrs:
    """Attribute access to an ``asyncpg.Record`` (``row.sku``), for mappers written against
    SQLAlchemy rows."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


def singleton_lock_id(name: str) -> int:
    return zlib.crc32(f"ecomops-singleton-{name}".encode())


@contextlib.asynccontextmanager
async def singleton(db: Database, name: str) -> AsyncIterator[bool]:
    """Run something in one replica at a time: yields True while this process holds the
    session advisory lock named ``name`` (on a connection of its own, released on exit), False
    when another replica holds it (skip this round). A killed holder's lock goes with its
    connection, so a crash never wedges the job."""
    lock_id = singleton_lock_id(name)
    async with db.engine.connect() as conn:
        got = bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(lock_id))))
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(sa.select(sa.func.pg_advisory_unlock(lock_id)))
                await conn.commit()


class UnitOfWork:
    """One transaction: state changes and the events they raise commit together.

    Re-entrant: a handler opening ``async with uow`` inside a unit of work that an entrypoint
    already opened (for an Idempotency-Key, say) joins it; its ``commit()`` then only flushes,
    and the outermost scope commits everything at once.
    """

    def __init__(self, db: Database, service: str) -> None:
        self._db = db
        self.service = service
        self.topic = service_topic(service)
        self._session: AsyncSession | None = None
        self._depth = 0
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        if self._depth == 0:
            self._session = await self._db.begin()
            self.committed = False
        self._depth += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        session, self._session = self._session, None
        assert session is not None
        session.info.pop(_DRIVER, None)
        try:
            if session.in_transaction():
                await session.rollback()
        finally:
            await session.close()

    async def commit(self) -> None:
        if self._depth > 1:
            await self.session.flush()
            return
        await write_outbox(self.session)
        await self.session.commit()
        self.committed = True
        await self.session.begin()

    async def rollback(self) -> None:
        await self.session.rollback()
        await self.session.begin()

    async def lease_idempotency_key(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        """Lease an Idempotency-Key and commit the lease at once (a ``claim_first`` command).

        Outside a unit of work this is one autocommit statement: the lease is a single upsert,
        so the transaction around it only cost a ``BEGIN`` and a ``COMMIT`` round trip. Inside
        an open one it joins that transaction, as before."""
        from .idempotency import lease_on

        if self._depth > 0:
            return await self.idempotency.lease(
                caller=caller,
                operation=operation,
                key=key,
                fingerprint=fingerprint,
                seconds=seconds,
            )
        return await self._db.autocommit(
            lambda conn: lease_on(
                conn,
                caller=caller,
                operation=operation,
                key=key,
                fingerprint=fingerprint,
                seconds=seconds,
            )
        )

    @property
    def idempotency(self) -> IdempotencyStore:
        """The Idempotency-Key store of this transaction (the message bus claims keys here)."""
        from .idempotency import SqlIdempotencyStore

        return SqlIdempotencyStore(self.session)

    def add_event(
        self,
        message: Message,
        *,
        key: str,
        topic: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> uuid.UUID:
        """Record an event in the outbox, in this transaction; the relay publishes it."""
        from .events import cloudevent_headers

        event_id = event_id or uuid.uuid4()
        occurred_at = occurred_at or utcnow()
        trace_context = tracing.inject_headers()
        headers = cloudevent_headers(
            event_id=str(event_id),
            event_type=message.DESCRIPTOR.full_name,
            source=f"ecomops/{self.service}",
            time=occurred_at,
            traceparent=trace_context.get("traceparent"),
            tracestate=trace_context.get("tracestate"),
        )
        self._outbox_rows.append(
            {
                "event_id": event_id,
                "topic": topic or self.topic,
                "key": key,
                "event_type": message.DESCRIPTOR.full_name,
                "payload": message.SerializeToString(deterministic=True),
                "headers": headers,
                "created_at": occurred_at,
            }
        )
        return event_id

    @property
    def _outbox_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] | None = self.session.info.get("outbox_rows")
        if rows is None:
            rows = []
            self.session.info["outbox_rows"] = rows
        return rows


#: The LISTEN/NOTIFY channel on which a commit that wrote outbox rows wakes every relay of its
#: database (channels are per database, so one name serves every service).
OUTBOX_CHANNEL = "ecomops_outbox"
_OUTBOX_ROWS_PER_STATEMENT = 500  # bounds one statement's size


# The rows of one statement as arrays (one prepared statement whatever their number); the
# NOTIFY variant wakes the relays of every replica in the same statement.
_OUTBOX_INSERT_SQL = """
INSERT INTO outbox (event_id, topic, key, event_type, payload, headers, created_at)
SELECT u.event_id, u.topic, u.key, u.event_type, u.payload, u.headers::json, u.created_at
FROM unnest($1::uuid[], $2::varchar[], $3::varchar[], $4::varchar[], $5::bytea[], $6::text[],
            $7::timestamptz[]) AS u(event_id, topic, key, event_type, payload, headers,
                                    created_at)
"""
_OUTBOX_INSERT_NOTIFY_SQL = f"""
WITH inserted AS ({_OUTBOX_INSERT_SQL} RETURNING id)
SELECT pg_notify('{OUTBOX_CHANNEL}', '') FROM inserted LIMIT 1
"""  # noqa: S608 - constants only


async def write_outbox(session: AsyncSession) -> None:
    """Insert the unit of work's pending outbox rows as driver statements, in its transaction
    (the commit that follows makes them visible with everything else, and delivers the NOTIFY
    only then). SQLAlchemy's insert of the same rows spent most of its time building cache keys
    for every bound value.

    PostgreSQL serialises the commits of notifying transactions (a cluster-wide lock held to
    the end of the commit); ``ECOMOPS_OUTBOX_NOTIFY=false`` leaves only the in-process signal
    and the relays' short recheck while another replica publishes."""
    rows = session.info.pop("outbox_rows", None)
    if not rows:
        return
    sql = _OUTBOX_INSERT_NOTIFY_SQL if session.info.get("outbox_notify", True) else None
    conn = await driver(session)
    for start in range(0, len(rows), _OUTBOX_ROWS_PER_STATEMENT):
        part = rows[start : start + _OUTBOX_ROWS_PER_STATEMENT]
        columns = (
            [r["event_id"] for r in part],
            [r["topic"] for r in part],
            [r["key"] for r in part],
            [r["event_type"] for r in part],
            [r["payload"] for r in part],
            [orjson.dumps(r["headers"]).decode() for r in part],
            [r["created_at"] for r in part],
        )
        if sql is None:
            await conn.execute(_OUTBOX_INSERT_SQL, *columns)
        else:
            await conn.fetch(sql, *columns)
    session.info["outbox_written"] = True


@sa.event.listens_for(AsyncSession.sync_session_class, "before_commit")
def _refuse_commit_with_unwritten_events(session: Any) -> None:
    # Events are written by UnitOfWork.commit; a commit that bypassed it would lose them.
    if session.info.get("outbox_rows"):
        raise RuntimeError("outbox rows pending at a commit outside UnitOfWork.commit")


@sa.event.listens_for(AsyncSession.sync_session_class, "after_commit")
def _signal_outbox_after_commit(session: Any) -> None:
    session.info.pop(_DRIVER, None)
    if session.info.pop("outbox_written", False):
        signal = session.info.get("outbox_committed")
        if signal is not None:
            signal()


@sa.event.listens_for(AsyncSession.sync_session_class, "after_rollback")
def _drop_outbox_after_rollback(session: Any) -> None:
    session.info.pop(_DRIVER, None)
    session.info.pop("outbox_rows", None)
    session.info.pop("outbox_written", None)
