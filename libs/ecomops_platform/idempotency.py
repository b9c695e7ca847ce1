"""Idempotency-Key (Stripe's contract, the IETF httpapi draft), backed by PostgreSQL.

The key is claimed inside the business transaction: the row that stores the response is
inserted first, the handler runs in the same unit of work, the response is written to that row
and everything commits together. A retry after a crash therefore finds either the whole effect
with its response (replayed) or nothing at all (executed afresh). A concurrent duplicate blocks
on the uncommitted row; a short lock timeout turns that wait into 409.

A command whose handler calls other services (``claim_first`` on the command, see
:mod:`ecomops_platform.bus`) must not hold a transaction across those calls: its key is
*leased* instead (:meth:`SqlIdempotencyStore.lease`, committed at once), the handler runs with
no transaction open, and its effects commit with the response
(:meth:`~SqlIdempotencyStore.complete`) in one short transaction, only while the claim is still
the lease's (its ``created_at`` is the token). A claim left behind by a crash is taken over by
a retry once its lease has run out (the database's clock decides); a live claim answers 409.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from .db import driver, utcnow
from .errors import AlreadyInProgress, Unprocessable
from .ports import MAX_KEY_LENGTH, Lease, StoredResponse, check_key, fingerprint

__all__ = [
    "MAX_KEY_LENGTH",
    "Lease",
    "SqlIdempotencyStore",
    "StoredResponse",
    "check_key",
    "fingerprint",
]

# The claim, one statement: ``cfg`` keeps the transaction's lock timeout and sets the short one
# (before the insert can wait: the insert reads from it), the insert claims the key unless it
# exists, and the outer select restores the previous timeout once the insert is done (its
# argument depends on the insert's result). ``SET LOCAL`` semantics: the settings end with the
# transaction anyway.
_CLAIM_SQL = """
WITH cfg AS MATERIALIZED (
    SELECT p.prev, set_config('lock_timeout', $6, true) AS applied
    FROM (SELECT current_setting('lock_timeout') AS prev OFFSET 0) AS p
), ins AS (
    INSERT INTO idempotency_keys (caller, operation, key, fingerprint, status_code, body,
                                  created_at)
    SELECT $1, $2, $3, $4, 0, '{}'::json, $5 FROM cfg
    ON CONFLICT DO NOTHING
    RETURNING 1 AS claimed
), done AS (
    SELECT count(*) AS n FROM ins
)
SELECT done.n > 0 AS claimed
FROM done, cfg
WHERE set_config('lock_timeout', cfg.prev || left(done.n::text, 0), true) IS NOT NULL
"""
_EXISTING_SQL = (
    "SELECT fingerprint, status_code, body FROM idempotency_keys "
    "WHERE caller = $1 AND operation = $2 AND key = $3"
)
_STORE_SQL = (
    "UPDATE idempotency_keys SET status_code = $4, body = $5::json "
    "WHERE caller = $1 AND operation = $2 AND key = $3"
)

# The lease, one statement for a new key and for taking over an expired claim: the upsert only
# updates an uncompleted claim of the same body whose lease ran out. ``xmax <> 0`` tells an
# updated row (taken over) from an inserted one.
_LEASE_SQL = """
INSERT INTO idempotency_keys AS k (caller, operation, key, fingerprint, status_code, body,
                                   created_at)
VALUES ($1, $2, $3, $4, 0, '{}'::json, clock_timestamp())
ON CONFLICT (caller, operation, key) DO UPDATE SET created_at = clock_timestamp()
WHERE k.status_code = 0 AND k.fingerprint = EXCLUDED.fingerprint
  AND k.created_at < clock_timestamp() - make_interval(secs => $5::float8)
RETURNING k.created_at, k.xmax <> 0 AS took_over
"""
_COMPLETE_SQL = (
    "UPDATE idempotency_keys SET status_code = $5, body = $6::json WHERE caller = $1 "
    "AND operation = $2 AND key = $3 AND status_code = 0 AND created_at = $4"
)
_RELEASE_SQL = (
    "DELETE FROM idempotency_keys WHERE caller = $1 AND operation = $2 AND key = $3 "
    "AND status_code = 0 AND created_at = $4"
)

_IN_PROGRESS = "a request with this Idempotency-Key is still being processed; retry later"


def _lock_timeout(exc: BaseException) -> bool:
    if getattr(exc, "sqlstate", None) == "55P03":  # asyncpg's LockNotAvailableError
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return sqlstate == "55P03" or "lock timeout" in str(exc).lower()


class SqlIdempotencyStore:
    """The :class:`~ecomops_platform.ports.IdempotencyStore` of a unit of work's session."""

    def __init__(self, session: AsyncSession, *, lock_timeout_ms: int = 250) -> None:
        self._session = session
        self._lock_timeout_ms = int(lock_timeout_ms)

    async def claim(
        self, *, caller: str, operation: str, key: str, fingerprint: str
    ) -> StoredResponse | None:
        # One round trip in the common case (a new key): the short lock timeout is set, the
        # claim row inserted and the previous timeout restored by one statement. A concurrent
        # duplicate blocks on the uncommitted row, and the lock timeout turns that wait into 409.
        conn = await driver(self._session)
        try:
            inserted = await conn.fetchval(
                _CLAIM_SQL,
                caller,
                operation,
                key,
                fingerprint,
                utcnow(),
                f"{self._lock_timeout_ms}ms",
            )
        except Exception as exc:
            if _lock_timeout(exc):
                raise AlreadyInProgress(_IN_PROGRESS, headers={"Retry-After": "1"}) from None
            raise
        if inserted:
            return None
        existing = await conn.fetchrow(_EXISTING_SQL, caller, operation, key)
        assert existing is not None
        if existing["fingerprint"] != fingerprint:
            raise Unprocessable(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
                title="Idempotency-Key reused with another request",
            )
        return StoredResponse(existing["status_code"], existing["body"], replayed=True)

    async def store(
        self, *, caller: str, operation: str, key: str, status_code: int, body: Any
    ) -> None:
        conn = await driver(self._session)
        await conn.execute(_STORE_SQL, caller, operation, key, status_code, json.dumps(body))

    async def lease(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        return await lease_on(
            await driver(self._session),
            caller=caller,
            operation=operation,
            key=key,
            fingerprint=fingerprint,
            seconds=seconds,
        )

    async def complete(
        self,
        *,
        caller: str,
        operation: str,
        key: str,
        token: Any,
        status_code: int,
        body: Any,
    ) -> bool:
        conn = await driver(self._session)
        status: str = await conn.execute(
            _COMPLETE_SQL, caller, operation, key, token, status_code, json.dumps(body)
        )
        return status != "UPDATE 0"

    async def release(self, *, caller: str, operation: str, key: str, token: Any) -> None:
        conn = await driver(self._session)
        await conn.execute(_RELEASE_SQL, caller, operation, key, token)


async def lease_on(
    conn: Any, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
) -> Lease | StoredResponse:
    """Lease a key on ``conn`` (asyncpg), in its transaction or, outside one, committed at once.

    The database's clock decides whether a lease ran out, so that replicas' clocks do not
    matter. A concurrent duplicate waits for the first claim's transaction (none, or one that
    commits at once), then finds it live → 409. Run twice (a retry after the connection died
    under the first run), the second run finds the first's live lease → 409, never a second
    lease."""
    claimed = await conn.fetchrow(_LEASE_SQL, caller, operation, key, fingerprint, seconds)
    if claimed is not None:
        return Lease(token=claimed["created_at"], took_over=bool(claimed["took_over"]))
    existing = await conn.fetchrow(_EXISTING_SQL, caller, operation, key)
    if existing is None:  # released by its holder in between: the client retries
        raise AlreadyInProgress(_IN_PROGRESS, headers={"Retry-After": "1"})
    if existing["fingerprint"] != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body",
            code="idempotency-key-reused",
            title="Idempotency-Key reused with another request",
        )
    if existing["status_code"] == 0:
        raise AlreadyInProgress(_IN_PROGRESS, headers={"Retry-After": "1"})
    return StoredResponse(existing["status_code"], existing["body"], replayed=True)
