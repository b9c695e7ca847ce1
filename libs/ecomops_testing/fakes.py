"""In-memory fakes of the platform's ports, for unit tests of handlers without PostgreSQL.

A service's unit tests subclass :class:`FakeUnitOfWork` and attach fake repositories (plain
dicts behind the service's repository ports)::

    class FakeOrderUnitOfWork(FakeUnitOfWork):
        def __init__(self) -> None:
            super().__init__()
            self.orders = FakeOrderRepository()

then build the bus with it (``MessageBus(service=..., uow=lambda: uow, deps=..., handlers=...)``)
and assert on what the handler returned, on the repositories, and on ``uow.events``.

Commit semantics follow the SQL unit of work: re-entrant scopes, and only what was committed
stays. Repositories that want rollback to undo their writes override :meth:`snapshot` and
:meth:`restore`.
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from google.protobuf.message import Message

from ecomops_platform.errors import AlreadyInProgress, Unprocessable
from ecomops_platform.ports import Lease, StoredResponse
from ecomops_platform.timestamps import utcnow


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    message: Message
    key: str
    topic: str | None
    event_id: uuid.UUID


class FakeIdempotencyStore:
    """Keys and stored responses in a dict; same answers as the SQL store (replay, 422)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], tuple[str, int, Any]] = {}
        #: Leases of uncompleted claims: key → (token, monotonic expiry).
        self.leases: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._tokens = itertools.count(1)

    def expire_leases(self) -> None:
        """Let every live lease run out (as if its holder had died long ago)."""
        self.leases = {k: (token, float("-inf")) for k, (token, _) in self.leases.items()}

    async def claim(
        self, *, caller: str, operation: str, key: str, fingerprint: str
    ) -> StoredResponse | None:
        row = self.rows.get((caller, operation, key))
        if row is None:
            self.rows[(caller, operation, key)] = (fingerprint, 0, {})
            return None
        stored_fp, status, body = row
        if stored_fp != fingerprint:
            raise Unprocessable(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
            )
        return StoredResponse(status, copy.deepcopy(body), replayed=True)

    async def store(
        self, *, caller: str, operation: str, key: str, status_code: int, body: Any
    ) -> None:
        fp, _, _ = self.rows[(caller, operation, key)]
        self.rows[(caller, operation, key)] = (fp, status_code, copy.deepcopy(body))

    async def lease(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        k = (caller, operation, key)
        row = self.rows.get(k)
        took_over = False
        if row is not None:
            stored_fp, status, body = row
            if stored_fp != fingerprint:
                raise Unprocessable(
                    "this Idempotency-Key was already used with a different request body",
                    code="idempotency-key-reused",
                )
            if status != 0:
                return StoredResponse(status, copy.deepcopy(body), replayed=True)
            _, expires = self.leases.get(k, (0, float("-inf")))
            if expires > time.monotonic():
                raise AlreadyInProgress(
                    "a request with this Idempotency-Key is still being processed",
                    headers={"Retry-After": "1"},
                )
            took_over = True
        token = next(self._tokens)
        self.rows[k] = (fingerprint, 0, {})
        self.leases[k] = (token, time.monotonic() + seconds)
        return Lease(token=token, took_over=took_over)

    def _holds(self, k: tuple[str, str, str], token: Any) -> bool:
        row = self.rows.get(k)
        lease = self.leases.get(k)
        return row is not None and row[1] == 0 and lease is not None and lease[0] == token

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
        k = (caller, operation, key)
        if not self._holds(k, token):
            return False
        self.rows[k] = (self.rows[k][0], status_code, copy.deepcopy(body))
        del self.leases[k]
        return True

    async def release(self, *, caller: str, operation: str, key: str, token: Any) -> None:
        k = (caller, operation, key)
        if self._holds(k, token):
            del self.rows[k]
            del self.leases[k]


class FakeUnitOfWork:
    """The platform's unit of work in memory: events recorded per transaction, kept on commit
    (``events``), dropped on rollback; the idempotency store rolls back with it."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.commits = 0
        self.committed = False
        self._pending: list[RecordedEvent] = []
        self._depth = 0
        self._idempotency = FakeIdempotencyStore()
        self._saved: Any = None

    # --- what repositories may override to take part in rollback ------------------------
    def snapshot(self) -> Any:
        """State to restore on rollback (default: the idempotency rows only)."""
        return copy.deepcopy((self._idempotency.rows, self._idempotency.leases))

    def restore(self, state: Any) -> None:
        self._idempotency.rows, self._idempotency.leases = copy.deepcopy(state)

    # --- the port ------------------------------------------------------------------------
    @property
    def idempotency(self) -> FakeIdempotencyStore:
        return self._idempotency

    async def lease_idempotency_key(
        self, *, caller: str, operation: str, key: str, fingerprint: str, seconds: float
    ) -> Lease | StoredResponse:
        async with self:
            got = await self._idempotency.lease(
                caller=caller,
                operation=operation,
                key=key,
                fingerprint=fingerprint,
                seconds=seconds,
            )
            if isinstance(got, Lease):
                await self.commit()
        return got

    async def __aenter__(self) -> Self:
        if self._depth == 0:
            self._pending = []
            self._saved = self.snapshot()
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
        if self._depth == 0:
            await self.rollback()

    async def commit(self) -> None:
        if self._depth > 1:
            return
        self.events.extend(self._pending)
        self._pending = []
        self.commits += 1
        self.committed = True
        self._saved = self.snapshot()

    async def rollback(self) -> None:
        self._pending = []
        self.restore(self._saved)

    def add_event(
        self,
        message: Message,
        *,
        key: str,
        topic: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> uuid.UUID:
        event_id = event_id or uuid.uuid4()
        _ = occurred_at or utcnow()
        self._pending.append(RecordedEvent(message, key, topic, event_id))
        return event_id

    def events_of(self, message_type: type[Message]) -> list[Message]:
        """The committed events of one protobuf type, in order."""
        return [e.message for e in self.events if isinstance(e.message, message_type)]
