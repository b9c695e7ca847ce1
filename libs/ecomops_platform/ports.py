"""What a service layer may depend on: the unit of work and the idempotency store, as ports.

The SQL implementations are :class:`ecomops_platform.db.UnitOfWork` (a service's adapters
subclass it to attach their repositories) and
:class:`ecomops_platform.idempotency.SqlIdempotencyStore`; the in-memory ones for unit tests
are in ``ecomops_testing.fakes``. Nothing here imports SQLAlchemy: the import-linter contract
"the service layer imports no SQLAlchemy" holds through these ports.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from .errors import BadRequest

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What an Idempotency-Key stored: the status of the outcome (200 for a result, the
    error's status for a refusal that kept its effects) and its JSON body."""

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


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on an Idempotency-Key committed before the command runs (see
    :meth:`IdempotencyStore.lease`): ``token`` names this claim, so that only its holder may
    complete or release it, and a claim taken over after its lease expired is no longer its."""

    token: Any
    #: True when a claim left behind (a crashed attempt, its lease expired) was taken over.
    took_over: bool = False


class IdempotencyStore(Protocol):
    async def claim(
        self, *, caller: str, operation: str, key: str, fingerprint: str
    ) -> StoredResponse | None:
        """Claim the key in the current transaction: ``None`` when it is new (run the
        command, then :meth:`store`), the stored response when it was used before with the
        same fingerprint. Another fingerprint → 422; a concurrent holder → 409 (retry)."""
        ...

    async def store(
        self, *, caller: str, operation: str, key: str, status_code: int, body: Any
    ) -> None: ...

    # --- claim first, commit, complete later (commands whose handlers call other services) --
    async def lease(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        """Claim the key for ``seconds`` in the current transaction, which the caller commits
        at once: a :class:`Lease` when the key is new, or when a claim left behind by a crash
        has outlived its lease (taken over, same fingerprint only); the stored response when
        the key was completed before. Another fingerprint → 422; a live claim → 409."""
        ...

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
        """Store the response of a leased key in the current transaction (the one writing
        the command's effects). False when the claim is no longer this lease's (taken over)."""
        ...

    async def release(self, *, caller: str, operation: str, key: str, token: Any) -> None:
        """Drop an uncompleted claim of this lease (the command failed without effects)."""
        ...


class UnitOfWorkPort(Protocol):
    """One transaction: state changes and the events they raise commit together.

    Re-entrant: ``async with uow`` inside an open unit of work joins it, and only the
    outermost scope commits."""

    committed: bool

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def lease_idempotency_key(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        """Lease a key and commit the lease at once (``claim_first`` commands)."""
        ...

    @property
    def idempotency(self) -> IdempotencyStore: ...

    def add_event(
        self,
        message: Message,
        *,
        key: str,
        topic: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> uuid.UUID:
        """Record an event in the outbox of this transaction; the relay publishes it."""
        ...
