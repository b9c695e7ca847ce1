"""Idempotency-Key (Stripe's contract, the IETF httpapi draft), backed by PostgreSQL.

The key is claimed inside the business transaction: the row that stores the response is
inserted first, the handler runs in the same unit of work, the response is written to that row
and everything commits together. A retry after a crash therefore finds either the whole effect
with its response (replayed) or nothing at all (executed afresh). A concurrent duplicate blocks
on the uncommitted row; a short lock timeout turns that wait into 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from .db import UnitOfWork, idempotency_table, utcnow
from .errors import AlreadyInProgress, BadRequest, Unprocessable

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any
    replayed: bool


def fingerprint(operation: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{operation}\n{canonical}".encode()).hexdigest()


def check_key(key: str | None, *, required: bool = True) -> str | None:
    if key is None or key == "":
        if required:
            raise BadRequest(
                "this request creates something and needs an Idempotency-Key header",
                code="idempotency-key-missing",
                title="Idempotency-Key required",
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters",
            code="idempotency-key-invalid",
            title="Invalid Idempotency-Key",
        )
    return key


def _lock_timeout(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return sqlstate == "55P03" or "lock timeout" in str(exc).lower()


async def run_idempotent(
    uow: UnitOfWork,
    *,
    caller: str,
    operation: str,
    key: str,
    payload: Any,
    action: Callable[[], Awaitable[tuple[int, Any]]],
    lock_timeout_ms: int = 250,
) -> StoredResponse:
    """Run ``action`` once per (caller, operation, key); replay its response afterwards.

    ``action`` runs inside ``uow`` (already open or opened here) and returns (status, body),
    where body is JSON-serialisable. Errors it raises roll everything back and store nothing.
    """
    fp = fingerprint(operation, payload)
    async with uow:
        session = uow.session
        where = sa.and_(
            idempotency_table.c.caller == caller,
            idempotency_table.c.operation == operation,
            idempotency_table.c.key == key,
        )
        # Claim first (one round trip in the common case); a concurrent duplicate blocks on the
        # uncommitted row, and the short lock timeout turns that wait into 409.
        await session.execute(sa.text(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'"))
        try:
            inserted = await session.execute(
                pg_insert(idempotency_table)
                .values(
                    caller=caller,
                    operation=operation,
                    key=key,
                    fingerprint=fp,
                    status_code=0,
                    body={},
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing()
                .returning(idempotency_table.c.key)
            )
        except DBAPIError as exc:
            if _lock_timeout(exc):
                raise AlreadyInProgress(
                    "a request with this Idempotency-Key is still being processed; retry later",
                    headers={"Retry-After": "1"},
                ) from None
            raise
        await session.execute(sa.text("SET LOCAL lock_timeout = DEFAULT"))
        if inserted.first() is not None:
            status, body = await action()
            await session.execute(
                sa.update(idempotency_table).where(where).values(status_code=status, body=body)
            )
            await uow.commit()
            return StoredResponse(status, body, replayed=False)
        existing = (await session.execute(sa.select(idempotency_table).where(where))).first()
        assert existing is not None
        if existing.fingerprint != fp:
            raise Unprocessable(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
                title="Idempotency-Key reused with another request",
            )
        return StoredResponse(existing.status_code, existing.body, replayed=True)
