"""The REST app factory every service uses (FastAPI).

Errors are RFC 9457 problem documents (validation included); bodies over the limit get 413;
callers over their rate get 429 with Retry-After; ``/healthz``, ``/readyz`` and ``/metrics`` are
mounted; operation ids are the route functions' names, stable across releases.

The OpenAPI document says what the service enforces (``openapi.refine_openapi``): the HTTP bearer
scheme on every operation that needs a token, ``Idempotency-Key`` required where it is and the
``Idempotent-Replayed`` header of a replay, every problem answer as ``application/problem+json``
with the problem schema, ``Location`` on every 201 (which the service sends, see
``rest_locations``), examples. CORS is off unless the service is given allowed origins
(``ECOMOPS_CORS_ALLOWED_ORIGINS``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from . import tracing
from .access_log import AccessLogMiddleware
from .auth import Caller, Role, TokenVerifier, current_caller
from .bus import Message as BusMessage
from .bus import Outcome
from .cards import CARD_NUMBER_CODE
from .errors import (
    BAD_INPUT_DETAIL,
    RateLimited,
    ServiceError,
    is_bad_input,
    is_transient,
)
from .middleware import BodyLimitMiddleware, ObserveMiddleware, ScreenMiddleware
from .openapi import BEARER_SCHEME, install_openapi
from .problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_RESPONSES,
    FastJSONResponse,
    problem_response,
)
from .rest_locations import install_locations

R = TypeVar("R")

log = logging.getLogger("ecomops.rest")

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


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        # A refused card number is never echoed back, not even inside the path.
        instance = None if exc.code == CARD_NUMBER_CODE else request.url.path
        return FastJSONResponse(
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
    # Starlette re-raises after answering, so the server logs an "Exception in ASGI
    # application", the access log a 500 and the keep-alive connection is dropped): a value the
    # database refuses is the caller's 422, an unreachable database a 503. OSError: a pool
    # that opens a connection to a database that is down raises the socket's own error
    # (ConnectionRefusedError), unwrapped.
    import asyncpg  # type: ignore[import-untyped]
    import sqlalchemy.exc

    for database_error in (
        sqlalchemy.exc.SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        OSError,
    ):
        app.add_exception_handler(database_error, _unexpected)


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


_VERIFIED = "ecomops_verified_authorization"


def _rate_limit_key(scope: Scope, verifier: TokenVerifier) -> str | None:
    """Whom a request counts against: the verified subject, else the client address.

    Other ecomops services (role ``service``) are not limited: their callers already are, and
    a checkout must not fail on an internal hop. An invalid token counts against the address.
    """
    client = scope.get("client")
    address = "ip:" + (client[0] if client else "unknown")
    auth = next(
        (value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"),
        None,
    )
    if not auth:
        return address
    try:
        caller = verifier.verify_header(auth)
    except ServiceError:
        return address
    # Verified once per request: ``authenticated`` takes it from the request's state.
    if isinstance(scope, dict):
        scope.setdefault("state", {})[_VERIFIED] = (auth, caller)
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
    cors_allowed_origins: Sequence[str] = (),
    access_log: bool = True,
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

    # Outermost first: the body limit, then the screen (duplicate Authorization, card numbers),
    # then observation (trace, NUL screen, rate limit, metrics) and the routes.
    app.add_middleware(
        ObserveMiddleware,
        service=service,
        rate_limit_key=lambda scope: _rate_limit_key(scope, verifier),
        check_rate=limiter.check,
    )
    app.add_middleware(ScreenMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    install_locations(app)
    if cors_allowed_origins:
        # Outside the screens (only the access log is further out): a preflight is answered
        # before any screen, and every answer (a 413 or a 429 included) carries the CORS
        # headers a browser needs to read it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_allowed_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            allow_credentials=False,  # bearer tokens travel in a header, never in cookies
            max_age=600,
        )
    if access_log:  # around everything, so 413s, screened 422s and preflights are logged too
        app.add_middleware(AccessLogMiddleware)

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
        return FastJSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/"):
            route.operation_id = route.name
    install_openapi(app, service)
    # The request's server span (the OpenTelemetry FastAPI instrumentation), outermost:
    # named by the route template, current while every middleware and the access log run.
    tracing.instrument_app(app)
    return app


# --- CORS ------------------------------------------------------------------------------------

#: What a browser may send cross-origin, and read from the answers.
CORS_ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "traceparent")
CORS_EXPOSED_HEADERS = ("Location", "Idempotent-Replayed", "Retry-After")


def parse_origins(value: str | Sequence[str] | None) -> list[str]:
    """Allowed origins from a setting: comma-separated text (or a list); empty: none."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = [item.strip().rstrip("/") for item in items if item.strip()]
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/?#\s]+", origin):
            raise ValueError(f"CORS origin {origin!r} is not scheme://host[:port] (or *)")
    return origins


_BEARER = HTTPBearer(
    auto_error=False,  # the platform answers a missing or bad token itself (401 problem)
    scheme_name=BEARER_SCHEME,
    bearerFormat="JWT",
    description="A JWT (HS256 or RS256 through JWKS) naming the caller's role and subject.",
)


async def authenticated(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> Caller:
    # ``_bearer`` only declares the HTTP bearer scheme in the OpenAPI document (the Authorize
    # button of /docs, the auth of generated clients); the raw header is verified here, once per
    # request: the rate limiter's key already verified this very header.
    verified = request.scope.get("state", {}).get(_VERIFIED)
    if verified is not None and authorization is not None and verified[0] == authorization:
        caller: Caller = verified[1]
    else:
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


def allowed(message_type: type[BusMessage[Any]]) -> Any:
    """The caller of a route, refused (403) unless its role is one the message declares —
    checked before the body is read, as the bus checks it again."""
    return require(*message_type.roles)


def replayed(outcome: Outcome[R], response: Response) -> R:
    """The result of a bus call; a replay for a repeated Idempotency-Key says so in the
    ``Idempotent-Replayed`` header."""
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return outcome.result
