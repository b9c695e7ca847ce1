"""Pure-ASGI middleware in front of every service's REST app.

``BodyLimitMiddleware`` answers 413 for bodies over the limit before anything parses them;
``ScreenMiddleware`` refuses duplicate credentials, card numbers and out-of-range date-times
before any handler, parser or log sees the request; ``ObserveMiddleware`` traces and counts
every request, refuses NUL characters in the target and applies the rate limit.

None of them is starlette's ``BaseHTTPMiddleware``: that one runs the app in a task of its own
and streams the response through memory channels on every request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics
from .cards import CARD_NUMBER_CODE, CARD_NUMBER_DETAIL, CARD_NUMBER_TITLE, find_card_number
from .errors import PayloadTooLarge, RateLimited
from .problems import PROBLEM_MEDIA_TYPE, FastJSONResponse, problem_response

log = logging.getLogger("ecomops.rest")


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


class ObserveMiddleware:
    """The NUL screen of the target, the rate limit, and the request metrics (the request's
    server span is the FastAPI instrumentation's, around the whole stack: see ``tracing``).

    - a NUL character in the path or query (raw or percent-encoded) → 422 before routing;
    - ``/v1/`` routes count against the caller's rate limit (``rate_limit_key``: ``None``
      exempts the request) → 429 with ``Retry-After``;
    - ``ecomops_http_requests_total`` and ``ecomops_http_request_duration_seconds`` by route
      template, once the app has answered (an exception escaping the app is answered and
      counted by the outer error handler).
    """

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        rate_limit_key: Callable[[Scope], str | None],
        check_rate: Callable[[str], None],
    ) -> None:
        self.app = app
        self.service = service
        self.rate_limit_key = rate_limit_key
        self.check_rate = check_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        status = 500
        response_started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        raw_target = (scope.get("raw_path") or b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in raw_target or b"\x00" in raw_target or "\x00" in path:
            await problem_response(
                422,
                "validation-error",
                "Unprocessable request",
                "the path or query contains a NUL character",
                instance=path,
            )(scope, receive, observed_send)
        elif path.startswith("/v1/"):
            key = self.rate_limit_key(scope)
            try:
                if key is not None:
                    self.check_rate(key)
            except RateLimited as exc:
                await problem_json(exc.problem(instance=path), 429, exc.headers)(
                    scope, receive, observed_send
                )
            else:
                try:
                    await self.app(scope, receive, observed_send)
                except PayloadTooLarge as exc:
                    if response_started:
                        raise
                    await problem_json(exc.problem(instance=path), 413, None)(
                        scope, receive, observed_send
                    )
        else:
            await self.app(scope, receive, observed_send)
        route = getattr(scope.get("route"), "path", "unmatched")
        metrics.http_requests_total.labels(self.service, method, route, status).inc()
        metrics.http_request_duration_seconds.labels(self.service, method, route).observe(
            time.perf_counter() - started
        )


def problem_json(
    body: dict[str, Any], status: int, headers: dict[str, str] | None
) -> FastJSONResponse:
    return FastJSONResponse(
        body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )
