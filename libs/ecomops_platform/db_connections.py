"""Pooled connections the database has dropped or left unusable, without a pre-ping round
trip: the pool's checkout and checkin guards, the ``BEGIN`` sent eagerly so that a dead
connection shows before the caller ran anything, and what counts as a lost connection (retried
once on a fresh one by ``Database.begin`` and ``Database.autocommit``)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from .metrics import poisoned_connections_discarded

log = logging.getLogger("ecomops.db")


def refuse_unusable_connection(
    dbapi_connection: Any, record: Any, proxy: Any, *, service: str = ""
) -> None:
    """Pool checkout: a connection that cannot start a clean transaction is replaced (the pool
    invalidates it, which closes it, and checks out another), without a round trip:

    - its socket was seen closed (the server terminated it, PostgreSQL restarted): instead of
      failing the caller's first statement;
    - it is still inside a transaction. A task cancelled while its ``BEGIN`` was on the wire
      (a gRPC client that went away, a request timeout) leaves the server in that transaction,
      and SQLAlchemy's asyncpg adapter, which tracks a transaction only once ``BEGIN``
      returned, hands the connection back to the pool without a rollback. Reused, every later
      unit of work on it became a SAVEPOINT inside a transaction that never commits: its
      writes were acknowledged and never visible, its locks held until the connection died
      (seen in CI: an inventory SKU pricing never heard of, a risk relay silent for minutes).
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise sa.exc.DisconnectionError("connection closed by the server")
    if _inside_transaction(driver):
        _count_poisoned(service, "checked out")
        raise sa.exc.DisconnectionError("connection returned to the pool inside a transaction")


def close_if_inside_transaction(dbapi_connection: Any, record: Any, *, service: str = "") -> None:
    """Pool checkin: a connection given back inside a transaction (see
    ``refuse_unusable_connection``) is closed at once, so that the server rolls it back and
    its locks are released now rather than at the connection's next checkout."""
    if dbapi_connection is None:
        return
    if _inside_transaction(getattr(dbapi_connection, "driver_connection", None)):
        _count_poisoned(service, "given back")
        record.invalidate()


def _count_poisoned(service: str, when: str) -> None:
    poisoned_connections_discarded.labels(service).inc()
    log.warning("a pooled connection %s inside a transaction: closed, not reused", when)


def _inside_transaction(driver: Any) -> bool:
    """The driver's own view (asyncpg): the server said it is in a transaction, or a
    transaction object was begun on it and never ended (its BEGIN may still be on the wire)."""
    in_transaction = getattr(driver, "is_in_transaction", None)
    if in_transaction is None:
        return False
    return bool(in_transaction()) or getattr(driver, "_top_xact", None) is not None


async def begin_now(conn: AsyncConnection) -> None:
    """Send the transaction's BEGIN now rather than with the first statement.

    SQLAlchemy's asyncpg adapter begins lazily, in front of the first statement; starting it
    here costs no extra round trip and lets a dead connection show before the caller ran
    anything. Other drivers keep their lazy begin."""
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    if start is None or getattr(adapted, "_transaction", True) is not None:
        return
    try:
        await start()
    except Exception as exc:
        # Nothing of the caller's ran: whatever made BEGIN fail (the server gone, or the driver
        # still busy with what a terminated connection left half done: "another operation is
        # in progress"), the connection is dropped and the unit of work retried on another.
        retire_pooled_connections(conn.engine, raw, exc)
        await conn.invalidate(exc)
        raise DeadConnection(str(exc)) from exc


class DeadConnection(ConnectionError):
    """The pooled connection was dead at BEGIN (nothing of the caller's ran on it)."""


def connection_lost(exc: BaseException) -> bool:
    """A driver error saying the connection is gone (closed, reset, or the server shutting it
    down) or unusable, as opposed to an error of the statement.

    Unusable: PostgreSQL shutting down sends every idle connection a FATAL error, then closes
    it. asyncpg, which gets a message while idle, puts the connection in an error state, and
    every later statement fails with ``InternalClientError`` ("cannot switch to state …;
    another operation (2) is in progress"). A connection checked out between the error and the
    close (a busy event loop) passes the pool's checkout check: its socket is still open."""
    if isinstance(
        exc,
        ConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.InternalClientError,
    ):
        return True
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and "closed" in str(exc)


def retire_pooled_connections(engine: AsyncEngine, connection: Any, exc: BaseException) -> None:
    """A connection found dead means the server most likely went away (a restart, a failover):
    every connection the pool opened before now is replaced at its next checkout, so that the
    retry runs on a new connection rather than on the next stale one. SQLAlchemy does the same
    when it sees a disconnect on a statement it runs itself (``Pool._invalidate``)."""
    engine.pool._invalidate(connection, exc, _checkin=False)


def is_disconnect(engine: AsyncEngine, exc: BaseException) -> bool:
    if isinstance(exc, DeadConnection | sa.exc.DisconnectionError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


async def discard(session: AsyncSession) -> None:
    with contextlib.suppress(Exception):
        await session.close()
