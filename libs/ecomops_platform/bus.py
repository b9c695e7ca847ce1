"""The message bus: every use case of every service is a command or a query, handled here.

A use case is declared once, as a dataclass, with who may send it and whether it needs an
Idempotency-Key::

    @dataclass(frozen=True, slots=True, kw_only=True)
    class PlaceOrder(Command[OrderView], roles=BUYERS, idempotent=True, owned_by="customer_id"):
        customer_id: str | None
        lines: tuple[OrderLine, ...]

and handled by one function of the service layer, marked with :func:`handler`::

    @handler
    async def place_order(cmd: PlaceOrder, ctx: Ctx) -> OrderView: ...

REST routes and gRPC methods only decode the request into the command, call
``bus.handle(command, caller, idempotency_key=...)`` and encode the read model it returns. The
bus applies, the same way for both transports (and for events and periodic jobs):

- **authorization**: the caller's role must be one of the command's ``roles`` (403 /
  PERMISSION_DENIED); ``owned_by`` names the field holding the customer a command acts for —
  a customer may only act for themselves (it is filled in when left empty). Ownership of a
  stored resource is checked in the handler, once loaded, with :meth:`Context.ensure_visible`
  (customers see only their own; 404 otherwise, so that ids do not leak);
- **idempotency**: for a command declared ``idempotent``, the key is required, claimed in the
  command's transaction, and the handler's read model is stored with its effects; a retry gets
  the stored result (``Outcome.replayed``), another body with the same key 422, a concurrent
  duplicate 409. A handler that refuses a command but must keep what it did (an order rejected
  by risk is stored as rejected) raises :class:`Refused`: the effects commit, the refusal is
  stored and raised, and a retry gets the same refusal;
- **claim first** (``claim_first=True``, for a command whose handler calls other services):
  no transaction may stay open across those calls, so the key is *leased* and committed
  before the handler runs (a live claim → 409 for a duplicate), the handler makes its remote
  calls with no transaction open, then opens one short transaction that first stores the
  response (:meth:`Context.store_result` or :meth:`Context.store_refusal`, only while the claim
  is still this attempt's: :class:`ClaimLost` otherwise), then writes its effects and
  commits. If the handler fails without effects the claim is released (a retry runs afresh).
  A claim left behind by a crash (SIGKILL between claim and store) is taken over by a retry
  once its lease
  (:attr:`MessageBus.claim_lease`) has run out: the handler must then be safe to run again,
  e.g. by deriving the ids it hands to other services from the key
  (:attr:`Context.idempotency_key`), so that the retry finds what the dead attempt made. The
  bus bounds such a handler to half its lease, so that a live attempt is never taken over;
- **errors**: handlers raise :class:`~ecomops_platform.errors.ServiceError` subclasses, never
  build HTTP statuses; the REST app and the gRPC interceptor each map them once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import TypeAdapter

from .auth import Caller, Role
from .errors import AlreadyInProgress, DependencyUnavailable, Forbidden, NotFound, ServiceError
from .ports import Lease, StoredResponse, UnitOfWorkPort, check_key, fingerprint

log = logging.getLogger("ecomops.bus")

R = TypeVar("R")
U = TypeVar("U", bound=UnitOfWorkPort)
D = TypeVar("D")

#: Every role: for a message any authenticated caller may send.
ANY_ROLE: tuple[Role, ...] = tuple(Role)

_HANDLES = "__ecomops_handles__"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Message(Generic[R]):
    """Base of commands and queries; ``R`` is the read model its handler returns."""

    #: Roles allowed to send it (declared by every message: ``roles=...`` in the class line).
    roles: ClassVar[frozenset[Role]] = frozenset()
    #: The field naming the customer the message acts for, if any (see the module doc).
    owned_by: ClassVar[str | None] = None

    def __init_subclass__(
        cls,
        *,
        roles: Iterable[Role | str] | None = None,
        owned_by: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if roles is not None:
            cls.roles = frozenset(Role(r) for r in roles)
        if owned_by is not None:
            cls.owned_by = owned_by

    def other_owner_refused(self, caller: Caller) -> ServiceError:
        """The error for a customer acting for someone else (a message may override it)."""
        return Forbidden("customers act for themselves only")


class Query(Message[R]):
    """A read: no state change, no Idempotency-Key."""


class Command(Message[R]):
    """A state change. ``idempotent=True`` requires an Idempotency-Key; ``operation`` names
    the key's namespace (default: the class name in snake case). ``claim_first=True`` (with
    ``idempotent``) declares that the handler calls other services: the key is claimed and
    committed first, and the handler's final transaction stores the response with
    :meth:`Context.store_result` (module doc)."""

    idempotent: ClassVar[bool] = False
    claim_first: ClassVar[bool] = False
    operation: ClassVar[str] = ""

    def __init_subclass__(
        cls,
        *,
        idempotent: bool | None = None,
        claim_first: bool | None = None,
        operation: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if idempotent is not None:
            cls.idempotent = idempotent
        if claim_first is not None:
            if claim_first and not cls.idempotent:
                raise TypeError(f"{cls.__name__}: claim_first needs idempotent=True")
            cls.claim_first = claim_first
        if operation:
            cls.operation = operation
        elif "operation" not in cls.__dict__:
            # (``@dataclass(slots=True)`` rebuilds the class with a copy of its namespace and
            # no class keywords: the operation named for the first one is kept.)
            cls.operation = _snake(cls.__name__)

    def idempotency_operation(self) -> str:
        """The namespace of this message's Idempotency-Key: :attr:`operation`, unless a
        message scopes its keys per resource (``f"pay_order:{self.order_id}"``: the same key
        may then be used once per order, as it could before the bus)."""
        return self.operation

    def idempotency_payload(self) -> Any:
        """What a repeated key must repeat to be a replay (another payload → 422): every
        field, unless a message leaves out what does not make the request another one."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


class Refused(Exception):
    """A refusal whose effects stay: the bus commits the unit of work, stores ``error`` for
    the Idempotency-Key, then raises ``error`` (and raises it again on every retry)."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.detail)
        self.error = error


class ClaimLost(AlreadyInProgress):
    """The Idempotency-Key's claim is no longer this attempt's: its lease ran out and a retry
    took it over. Nothing of this attempt is committed, and what it made on other services
    belongs to the retry now (a handler must not compensate it)."""


class StoredRefusal(ServiceError):
    """A refusal replayed from the idempotency store: the same status and problem document."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        code = str(problem.get("type", "")).rsplit("/", 1)[-1] or "refused"
        super().__init__(
            str(problem.get("detail", "")),
            code=code,
            title=str(problem.get("title", "Refused")),
            headers={"Idempotent-Replayed": "true"},
        )
        self.status = status
        self._stored = dict(problem)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return dict(self._stored)


@dataclass(slots=True)
class Context(Generic[U, D]):
    """What a handler gets beside its message: the unit of work (not yet opened), the verified
    caller, the service's dependencies and the bus (to hand on a follow-up message)."""

    uow: U
    caller: Caller
    deps: D
    bus: MessageBus[U, D]
    #: The Idempotency-Key of an idempotent command (a handler may derive ids from it, so that
    #: a retry reuses what the first attempt made on other services); ``None`` otherwise.
    idempotency_key: str | None = None
    #: The lease of a ``claim_first`` command's key (set by the bus).
    claim: _Claim | None = None

    def ensure_visible(self, owner_id: str | None, what: str, ident: str) -> None:
        """Customers see only what they own: anything else is "not found" (404)."""
        if not self.caller.may_see(owner_id):
            raise NotFound(f"{what} {ident} not found")

    async def store_result(self, result: Any) -> None:
        """For a ``claim_first`` command, the first write of its final transaction: ``result``
        becomes the key's response, committed with the effects the handler writes next (then
        ``uow.commit()``). Raises :class:`ClaimLost` when a retry took the claim over — before
        anything else is written."""
        await self._store(200, lambda claim: claim.result.dump_python(result, mode="json"))

    async def store_refusal(self, error: ServiceError) -> None:
        """Like :meth:`store_result`, for a refusal that keeps its effects: ``error`` becomes
        the key's response (then raise :class:`Refused` after the commit)."""
        await self._store(error.status, lambda claim: error.problem())

    async def _store(self, status: int, body: Callable[[_Claim], Any]) -> None:
        claim = self.claim
        if claim is None:
            raise RuntimeError("store_result/store_refusal are for claim_first commands")
        done = await self.uow.idempotency.complete(
            caller=claim.caller,
            operation=claim.operation,
            key=claim.key,
            token=claim.lease.token,
            status_code=status,
            body=body(claim),
        )
        if not done:
            raise ClaimLost(
                "a retry took this Idempotency-Key over; retry to get its answer",
                headers={"Retry-After": "1"},
            )
        claim.stored = True


@dataclass(slots=True)
class _Claim:
    caller: str
    operation: str
    key: str
    lease: Lease
    result: TypeAdapter[Any]
    stored: bool = False


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    result: R
    replayed: bool = False


Handler = Callable[[Any, Context[Any, Any]], Awaitable[Any]]


def handler(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Mark a service-layer function as the handler of the message type its first parameter
    is annotated with (collected with :func:`handlers_in`)."""
    setattr(fn, _HANDLES, True)
    return fn


def handlers_in(*modules: ModuleType) -> list[Handler]:
    """The functions marked with :func:`handler` in these modules."""
    found: list[Handler] = []
    for module in modules:
        for _, fn in inspect.getmembers(module, inspect.iscoroutinefunction):
            if getattr(fn, _HANDLES, False) and fn.__module__ == module.__name__:
                found.append(fn)
    return found


@dataclass(frozen=True, slots=True)
class _Registration:
    handler: Handler
    result: TypeAdapter[Any]


def _describe(fn: Handler) -> tuple[type[Message[Any]], TypeAdapter[Any]]:
    hints = typing.get_type_hints(fn)
    params = [p for p in inspect.signature(fn).parameters if p != "return"]
    if len(params) != 2:
        raise TypeError(f"handler {fn.__qualname__} must take (message, ctx)")
    message_type = hints.get(params[0])
    if not (isinstance(message_type, type) and issubclass(message_type, Message)):
        raise TypeError(f"handler {fn.__qualname__}: first parameter must be a Message type")
    if not message_type.roles:
        raise TypeError(f"{message_type.__name__} declares no roles (use roles=ANY_ROLE)")
    return message_type, TypeAdapter(hints.get("return", Any))


class MessageBus(Generic[U, D]):
    """Routes each message to its one handler, applying roles, ownership and idempotency."""

    def __init__(
        self,
        *,
        service: str,
        uow: Callable[[], U],
        deps: D,
        handlers: Iterable[Handler],
        claim_lease: float = 30.0,
    ) -> None:
        self.service = service
        #: Seconds a ``claim_first`` command's claim stays live without being completed: a
        #: retry of a crashed attempt's key gets 409 until then, and takes it over after.
        self.claim_lease = claim_lease
        self.uow = uow
        self.deps = deps
        #: The caller of events and periodic jobs: the service itself.
        self.system = Caller(subject=f"ecomops-{service}", role=Role.SERVICE)
        self._routes: dict[type[Message[Any]], _Registration] = {}
        for fn in handlers:
            message_type, result = _describe(fn)
            if message_type in self._routes:
                raise TypeError(f"two handlers for {message_type.__name__}")
            self._routes[message_type] = _Registration(fn, result)

    def handles(self, message_type: type[Message[Any]]) -> bool:
        return message_type in self._routes

    @staticmethod
    def authorize(message_type: type[Message[Any]], caller: Caller) -> Caller:
        """The role check alone (transports call it before decoding a body, so that a caller
        without the role gets 403 whatever it sent)."""
        return caller.require(*message_type.roles)

    async def handle(
        self,
        message: Message[R],
        caller: Caller,
        *,
        idempotency_key: str | None = None,
        uow: U | None = None,
    ) -> R:
        """Handle ``message`` for ``caller`` and return its read model."""
        outcome = await self.execute(message, caller, idempotency_key=idempotency_key, uow=uow)
        return outcome.result

    async def execute(
        self,
        message: Message[R],
        caller: Caller,
        *,
        idempotency_key: str | None = None,
        uow: U | None = None,
    ) -> Outcome[R]:
        """Like :meth:`handle`, also telling whether the result was replayed for a repeated
        Idempotency-Key. ``uow`` joins a unit of work the caller opened (a consumer's, whose
        transaction also records the event in the inbox)."""
        route = self._routes.get(type(message))
        if route is None:
            raise LookupError(f"{self.service}: no handler for {type(message).__name__}")
        self.authorize(type(message), caller)
        message = self._owned(message, caller)
        ctx: Context[U, D] = Context(uow or self.uow(), caller, self.deps, self)
        if isinstance(message, Command) and message.idempotent:
            key = check_key(idempotency_key, required=True)
            assert key is not None
            ctx.idempotency_key = key
            if message.claim_first:
                return await self._claim_first(route, message, ctx, key)
            return await self._idempotent(route, message, ctx, key)
        try:
            result = await route.handler(message, ctx)
        except Refused as refused:
            raise refused.error from None
        return Outcome(result)

    def _owned(self, message: Message[R], caller: Caller) -> Message[R]:
        field = message.owned_by
        if field is None or not caller.is_customer:
            return message
        value = getattr(message, field)
        if value in (None, ""):
            return dataclasses.replace(message, **{field: caller.subject})  # type: ignore[type-var]
        if value != caller.subject:
            raise message.other_owner_refused(caller)
        return message

    async def _idempotent(
        self, route: _Registration, message: Command[R], ctx: Context[U, D], key: str
    ) -> Outcome[R]:
        operation = message.idempotency_operation()
        fp = fingerprint(operation, message.idempotency_payload())
        who = ctx.caller.subject
        uow = ctx.uow
        async with uow:
            stored = await uow.idempotency.claim(
                caller=who, operation=operation, key=key, fingerprint=fp
            )
            if stored is None:
                try:
                    result = await route.handler(message, ctx)
                except Refused as refused:
                    await uow.idempotency.store(
                        caller=who,
                        operation=operation,
                        key=key,
                        status_code=refused.error.status,
                        body=refused.error.problem(),
                    )
                    await uow.commit()
                    raise refused.error from None
                await uow.idempotency.store(
                    caller=who,
                    operation=operation,
                    key=key,
                    status_code=200,
                    body=route.result.dump_python(result, mode="json"),
                )
                await uow.commit()
                return Outcome(result)
        if stored.status_code >= 400:
            raise StoredRefusal(stored.status_code, dict(stored.body))
        return Outcome(route.result.validate_python(stored.body), replayed=True)

    async def _claim_first(
        self, route: _Registration, message: Command[R], ctx: Context[U, D], key: str
    ) -> Outcome[R]:
        operation = message.idempotency_operation()
        fp = fingerprint(operation, message.idempotency_payload())
        who = ctx.caller.subject
        uow = ctx.uow
        got = await uow.lease_idempotency_key(
            caller=who, operation=operation, key=key, fingerprint=fp, seconds=self.claim_lease
        )
        if isinstance(got, StoredResponse):
            if got.status_code >= 400:
                raise StoredRefusal(got.status_code, dict(got.body))
            return Outcome(route.result.validate_python(got.body), replayed=True)
        if got.took_over:
            log.info("%s: took over the abandoned claim of an Idempotency-Key", operation)
        claim = _Claim(who, operation, key, got, route.result)
        ctx.claim = claim
        try:
            try:
                # A live attempt is never taken over: it ends well within its lease.
                async with asyncio.timeout(self.claim_lease / 2):
                    result = await route.handler(message, ctx)
            except TimeoutError:
                raise DependencyUnavailable(
                    "the request took too long; retry with the same Idempotency-Key",
                    retry_after=1,
                ) from None
        except Refused as refused:
            if not (claim.stored and uow.committed):
                async with uow:
                    await ctx.store_refusal(refused.error)
                    await uow.commit()
            raise refused.error from None
        except BaseException:
            # No-op when the response was committed (the release only drops an uncompleted
            # claim of this lease).
            await self._release(uow, claim)
            raise
        if not claim.stored:
            await self._release(uow, claim)
            raise RuntimeError(
                f"{type(message).__name__} is claim_first: its handler must store its result "
                "with ctx.store_result(...) in its final transaction"
            )
        return Outcome(result)

    @staticmethod
    async def _release(uow: U, claim: _Claim) -> None:
        """Free the key of an attempt that failed without effects (a retry runs afresh). If
        this fails too (the database is down) the lease runs out and a retry takes over."""
        try:
            async with uow:
                await uow.idempotency.release(
                    caller=claim.caller,
                    operation=claim.operation,
                    key=claim.key,
                    token=claim.lease.token,
                )
                await uow.commit()
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not release an Idempotency-Key claim (its lease expires): %s", exc)
