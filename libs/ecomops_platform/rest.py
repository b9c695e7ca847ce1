"""The REST app factory every service uses (FastAPI).

Errors are RFC 9457 problem documents (validation included); bodies over the limit get 413;
callers over their rate get 429 with Retry-After; ``/healthz``, ``/readyz`` and ``/metrics`` are
mounted; operation ids are the route functions' names, stable across releases.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics, tracing
from .auth import Caller, Role, TokenVerifier, current_caller
from .cards import CARD_NUMBER_CODE, CARD_NUMBER_DETAIL, CARD_NUMBER_TITLE, find_card_number
from .errors import (
    BAD_INPUT_DETAIL,
    PROBLEM_BASE,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    is_bad_input,
    is_transient,
)
from .idempotency import check_key

log = logging.getLogger("ecomops.rest")

PROBLEM_MEDIA_TYPE = "application/problem+json"

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def _refuse_nul(value: Any, path: str = "body") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path} contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{path}[{index}]")


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused, never silently dropped; text with
    NUL characters (which PostgreSQL cannot store) is refused with 422, not a 500."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        _refuse_nul(data, "value")
        return data


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "model": Problem,
        "description": desc,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for code, desc in (
        (400, "Bad request"),
        (401, "Missing or invalid bearer token"),
        (403, "Role not allowed"),
        (404, "Not found"),
        (409, "Conflict with the current state"),
        (410, "Gone (expired)"),
        (413, "Body too large"),
        (422, "Invalid request"),
        (429, "Rate limited"),
        (503, "A dependency is unavailable"),
    )
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        # A refused card number is never echoed back, not even inside the path.
        instance = None if exc.code == CARD_NUMBER_CODE else request.url.path
        return JSONResponse(
            _json_safe(exc.problem(instance=instance)),
            status_code=exc.status,
            headers=exc.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "location": [str(p) for p in err.get("loc", ())],
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
        return problem_response(
            422,
            "validation-error",
            "Unprocessable request",
            summary,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            exc.status_code,
            code,
            str(exc.detail),
            None,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_bad_input(exc):
            log.warning(
                "value refused by the database on %s %s: %s",
                request.method,
                _route_template(request),
                type(exc).__name__,
            )
            return problem_response(
                422, "value-out-of-range", "Unprocessable request", BAD_INPUT_DETAIL
            )
        if is_transient(exc):
            log.warning(
                "dependency unavailable on %s %s: %s", request.method, request.url.path, exc
            )
            return problem_response(
                503,
                "dependency-unavailable",
                "Service temporarily unavailable",
                "a dependency of this service is unavailable; retry later",
                instance=request.url.path,
                headers={"Retry-After": "2"},
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "the service failed unexpectedly; the error was logged",
            instance=request.url.path,
        )

    # Database errors answered here, inside the app, rather than by the catch-all above (which
    # Starlette re-raises, so the server then drops the keep-alive connection): a value the
    # database refuses is the caller's 422, an unreachable database a 503.
    import asyncpg  # type: ignore[import-untyped]
    import sqlalchemy.exc

    for database_error in (
        sqlalchemy.exc.SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ):
        app.add_exception_handler(database_error, _unexpected)


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed.

    The body is read here (it is at most ``max_bytes``) so that an oversized chunked upload is
    answered with 413 before any handler or body parser sees it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the app see the disconnect.
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                more = message.get("more_body", False)
                # Read (and drop) a bounded remainder so the client is reading when the 413
                # arrives; past the bound the connection is simply closed after answering.
                while more and size <= self.max_bytes * 16:
                    message = await receive()
                    size += len(message.get("body", b""))
                    more = message.get("type") == "http.request" and message.get("more_body", False)
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload-too-large",
            "Payload too large",
            f"request body exceeds {self.max_bytes} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


_UNSCREENED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ScreenMiddleware:
    """What every request (but the probes) goes through before any handler, parser or log
    sees it.

    - more than one ``Authorization`` header → 401 (which one would be believed is ambiguous);
    - a card number (``ecomops_platform.cards``: normalised, grouped, full-width …) in the
      path, the query (names and values), the ``Idempotency-Key`` header or anywhere in the
      JSON body (keys and values; a body that is not JSON is screened as text) → 422
      ``card-number-refused``. The answer never carries the number (no ``instance``, a fixed
      ``detail``), nothing is logged but where it was found, and no handler runs, so nothing
      is stored or published.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _UNSCREENED_PATHS:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        if sum(1 for name, _ in headers if name == b"authorization") > 1:
            await self._answer(
                scope,
                receive,
                send,
                problem_response(
                    401,
                    "unauthenticated",
                    "Authentication required",
                    "more than one Authorization header; send exactly one bearer token",
                    headers={"WWW-Authenticate": "Bearer"},
                ),
            )
            return
        where = self._screen_target(scope, headers)
        decoded: Any = None
        if where is None and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            messages, body = await _read_body(receive)
            receive = _replay(messages, receive)
            if body:
                text = body.decode("utf-8", "replace")
                try:
                    decoded = json.loads(text)
                except (ValueError, RecursionError):
                    decoded = text  # not JSON: screened as text, the route answers 422
                if find_card_number(decoded):
                    where = "body"
        if where is None:
            bad_time = _time_out_of_range(scope, decoded)
            if bad_time is not None:
                await self._answer(
                    scope,
                    receive,
                    send,
                    problem_response(
                        422,
                        "invalid-time",
                        "Unprocessable request",
                        f"{bad_time}: a date-time must lie between 0001-01-01T00:00:00Z and "
                        "9999-12-31T23:59:59Z once converted to UTC",
                    ),
                )
                return
            await self.app(scope, receive, send)
            return
        log.warning(
            "request refused: card number in the %s of %s",
            where,
            scope.get("method"),
        )
        await self._answer(
            scope,
            receive,
            send,
            problem_response(422, CARD_NUMBER_CODE, CARD_NUMBER_TITLE, CARD_NUMBER_DETAIL),
        )

    @staticmethod
    def _screen_target(scope: Scope, headers: list[tuple[bytes, bytes]]) -> str | None:
        raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode()
        path = unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="replace")
        if find_card_number(path) or find_card_number(scope.get("path", "")):
            return "path"
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        if query and (
            find_card_number(unquote(query, errors="replace"))
            or find_card_number(parse_qsl(query, keep_blank_values=True, errors="replace"))
        ):
            return "query"
        for name, value in headers:
            if name == b"idempotency-key" and find_card_number(value.decode("latin-1")):
                return "Idempotency-Key header"
        return None

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, response: JSONResponse
    ) -> None:
        metrics.http_requests_total.labels(
            self.service, scope.get("method", ""), "screened", response.status_code
        ).inc()
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    """Every message of the request body (the outer ``BodyLimitMiddleware`` bounds its size)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


_DATETIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*[+-]\d{2}:?\d{2}")


def _bad_instant(value: str) -> bool:
    """An ISO 8601 date-time with an offset whose UTC instant is outside years 1-9999 (the
    range of google.protobuf.Timestamp and of Python): PostgreSQL or the handler would fail
    on it with a 500 rather than a 422."""
    if len(value) > 40 or not _DATETIME_LIKE.fullmatch(value):
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False  # not a date-time after all: the field's own validation answers
    if parsed.tzinfo is None:
        return False
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return True
    return False


def _walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{index}]")


def _time_out_of_range(scope: Scope, decoded_body: Any) -> str | None:
    """The first date-time (query or JSON body) outside the representable range, by name."""
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if _bad_instant(value):
            return f"query parameter {name}"
    if isinstance(decoded_body, dict | list):
        for path, value in _walk_strings(decoded_body, ""):
            if _bad_instant(value):
                return f"body field {path}"
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replaying_receive() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying_receive


class RateLimiter:
    """Token bucket per caller (bearer token, else client address), per process."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise RateLimited(
                f"rate limit of {int(self.capacity)} requests per minute exceeded",
                headers={"Retry-After": str(max(1, wait))},
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()


def _rate_limit_key(request: Request, verifier: TokenVerifier) -> str | None:
    """Whom a request counts against: the verified subject, else the client address.

    Other ecomops services (role ``service``) are not limited: their callers already are, and
    a checkout must not fail on an internal hop. An invalid token counts against the address.
    """
    address = "ip:" + (request.client.host if request.client else "unknown")
    auth = request.headers.get("authorization")
    if not auth:
        return address
    try:
        caller = verifier.verify_header(auth)
    except ServiceError:
        return address
    if caller.role is Role.SERVICE:
        return None
    return f"sub:{caller.role.value}:{caller.subject}"


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str,
    verifier: TokenVerifier,
    readiness: ReadinessCheck,
    routers: Sequence[APIRouter],
    max_body_bytes: int,
    rate_limit_per_minute: int,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        generate_unique_id_function=lambda route: route.name,
        responses=PROBLEM_RESPONSES,
    )
    app.state.verifier = verifier
    app.state.service = service
    limiter = RateLimiter(rate_limit_per_minute)
    _install_error_handlers(app)

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        ctx = tracing.extract_context(dict(request.headers))
        with tracing.tracer().start_as_current_span(
            f"{request.method} {request.url.path}", context=ctx, kind=tracing.trace.SpanKind.SERVER
        ):
            response: Response
            raw_target = (
                request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
            )
            if b"%00" in raw_target or b"\x00" in raw_target or "\x00" in request.url.path:
                response = problem_response(
                    422,
                    "validation-error",
                    "Unprocessable request",
                    "the path or query contains a NUL character",
                    instance=request.url.path,
                )
            elif request.url.path.startswith("/v1/"):
                key = _rate_limit_key(request, verifier)
                try:
                    if key is not None:
                        limiter.check(key)
                except RateLimited as exc:
                    response = JSONResponse(
                        exc.problem(instance=request.url.path),
                        status_code=429,
                        headers=exc.headers,
                        media_type=PROBLEM_MEDIA_TYPE,
                    )
                else:
                    try:
                        response = await call_next(request)
                    except PayloadTooLarge as exc:
                        response = JSONResponse(
                            exc.problem(instance=request.url.path),
                            status_code=413,
                            media_type=PROBLEM_MEDIA_TYPE,
                        )
            else:
                response = await call_next(request)
        route = _route_template(request)
        metrics.http_requests_total.labels(
            service, request.method, route, response.status_code
        ).inc()
        metrics.http_request_duration_seconds.labels(service, request.method, route).observe(
            time.perf_counter() - started
        )
        return response

    # Outermost first: the body limit, then the screen (duplicate Authorization, card numbers),
    # then observation and the routes.
    app.add_middleware(ScreenMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

    @app.get("/healthz", tags=["operations"], include_in_schema=True)
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        """Ready (200) while the database answers; Kafka down is reported as degraded.

        The body names the checks, the degraded dependencies and the age of the oldest event
        waiting in the outbox.
        """
        report = await readiness()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/"):
            route.operation_id = route.name
    return app


async def authenticated(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Caller:
    verifier: TokenVerifier = request.app.state.verifier
    caller = await verifier.verify_header_async(authorization)
    current_caller.set(caller)
    return caller


def require(*roles: Role | str) -> Any:
    """A dependency giving the handler the caller, refusing roles not listed (403)."""

    async def dependency(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
        return caller.require(*roles)

    return Depends(dependency)


AnyCaller = Annotated[Caller, Depends(authenticated)]


def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Unique key per logical request (required)"),
    ] = None,
) -> str:
    key = check_key(idempotency_key, required=True)
    assert key is not None
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key_header)]


def stored_json(status_code: int, body: Any, *, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    media = PROBLEM_MEDIA_TYPE if status_code >= 400 else "application/json"
    return JSONResponse(body, status_code=status_code, headers=headers, media_type=media)
