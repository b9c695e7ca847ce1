"""gRPC server runner (grpc.aio): health, reflection, the OpenTelemetry server interceptor
(tracing, when spans are exported), and one interceptor for auth, metrics, deadlines and error
mapping. Every ecomops RPC is unary-unary.

An error is answered with its status code and message, and the standard rich status
(``grpc-status-details-bin``: a ``google.rpc.Status`` with the same code and message carrying
``google.rpc.ErrorInfo`` — reason, domain ``ecomops.dev``, metadata — ``google.rpc.BadRequest``
field violations where the error names fields, ``google.rpc.RetryInfo`` where a retry is
advised), which Go, Java and Python clients read with their standard tooling. The problem
document in the ``ecomops-problem`` trailer is still sent for one version; it is deprecated.

Before a servicer runs, the interceptor refuses, with the same errors as REST:
undecodable request bytes (INVALID_ARGUMENT, no Python exception text), more than one
``authorization`` metadata entry (UNAUTHENTICATED), NUL characters and card numbers in any
string, bytes or integer field, recursively (INVALID_ARGUMENT, ``card-number-refused``).
Servicers convert ``google.protobuf.Timestamp`` fields with :func:`to_datetime`, which answers
INVALID_ARGUMENT for a value outside 0001-01-01 … 9999-12-31.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from . import metrics, tracing
from .access_log import grpc_interceptors
from .auth import Caller, Role, TokenVerifier, current_caller
from .bus import Message
from .cards import card_number_refused, message_has_card_number
from .errors import (
    BAD_INPUT_DETAIL,
    AlreadyInProgress,
    DependencyUnavailable,
    ServiceError,
    Unauthenticated,
    Unprocessable,
    is_bad_input,
    is_transient,
)
from .timestamps import to_datetime as to_datetime


def invalid_request(exc: ValidationError) -> Unprocessable:
    """A request that failed its pydantic model, as the REST 422 describes it: a summary of the
    first five problems, and every problem in ``errors`` (location, message, type), so the
    gRPC answer carries them as BadRequest field violations."""
    errors = [
        {
            "location": [str(p) for p in err.get("loc", ())],
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
    return Unprocessable(summary, code="validation-error", errors=errors)


log = logging.getLogger("ecomops.grpc")

#: Deprecated (kept for one version): the RFC 9457 problem document as JSON in the trailers.
#: Read the standard ``grpc-status-details-bin`` instead (:func:`rich_status`).
PROBLEM_METADATA_KEY = "ecomops-problem"
#: The standard trailer of the rich status (``google.rpc.Status``, serialized).
STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"
#: ``google.rpc.ErrorInfo.domain`` of every ecomops error.
ERROR_DOMAIN = "ecomops.dev"
UNAUTHENTICATED_METHODS_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DEFAULT_MAX_DEADLINE = 30.0


#: The one mapping of an error's kind to a gRPC status (REST uses ``status`` itself).
_GRPC_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    402: grpc.StatusCode.FAILED_PRECONDITION,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    410: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code_of(error: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a service error: by its kind; a concurrent duplicate of an
    idempotent request is ABORTED (retry), not a failed precondition."""
    if isinstance(error, AlreadyInProgress):
        return grpc.StatusCode.ABORTED
    return _GRPC_CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT)


def caller() -> Caller:
    """The verified caller of the current RPC (set by the interceptor)."""
    value = current_caller.get()
    if value is None:
        raise Unauthenticated("missing bearer token")
    return value


def authorize(*roles: Role | str) -> Caller:
    who = caller()
    if roles:
        who.require(*roles)
    return who


def _refuse_nul_strings(message: Any, path: str = "") -> None:
    """Text with NUL characters cannot be stored by PostgreSQL: refuse it as bad input; a
    ``google.protobuf.Timestamp`` anywhere must lie in its documented range."""
    if not hasattr(message, "ListFields"):
        return
    if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        to_datetime(message, path.rstrip(".") or "timestamp")
        return
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        values = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = [item for pair in value.items() for item in pair]
        for item in values:
            if isinstance(item, str) and "\x00" in item:
                raise Unprocessable(f"{name} contains a NUL character", field=name)
            if hasattr(item, "ListFields"):
                _refuse_nul_strings(item, f"{name}.")


class _Undecodable:
    """What the request deserializer yields for bytes that are not the request message."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _safe_deserializer(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """grpc.aio answers UNKNOWN with the Python exception's text when a deserializer raises;
    this one returns a marker instead, which the interceptor answers with INVALID_ARGUMENT."""
    if deserialize is None:
        return None
    owner = getattr(deserialize, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "the request message")

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, RecursionError):
            return _Undecodable(type_name)

    return safe


def _single_authorization(raw: Sequence[tuple[str, Any]]) -> str | None:
    values = [v for k, v in raw if k.lower() == "authorization"]
    if len(values) > 1:
        raise Unauthenticated("more than one authorization metadata entry; send exactly one")
    if values and not isinstance(values[0], str):
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return values[0] if values else None


def screen_request(request: Any) -> None:
    """The shared input screen of every RPC: NUL characters and card numbers anywhere."""
    if isinstance(request, _Undecodable):
        raise Unprocessable(
            f"the request bytes could not be decoded as {request.type_name}",
            code="undecodable-request",
        )
    _refuse_nul_strings(request)
    if message_has_card_number(request):
        raise card_number_refused()


# Status details and trailing metadata must stay far below the 16 KiB metadata limit of gRPC
# (past it the client sees RESOURCE_EXHAUSTED instead of the real status): an error that
# quotes a hostile 100 kB value is cut.
MAX_DETAIL_CHARS = 1000
MAX_PROBLEM_CHARS = 8000


def _bounded(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem_metadata(exc: ServiceError) -> str:
    problem = exc.problem()
    problem["detail"] = _bounded(str(problem.get("detail", "")))
    encoded = json.dumps(problem, default=str)
    if len(encoded) > MAX_PROBLEM_CHARS:
        keep = ("type", "title", "status", "detail")
        encoded = json.dumps({k: problem[k] for k in keep if k in problem}, default=str)
    return encoded


# The rich status shares the trailers with the deprecated problem trailer: together they stay
# under gRPC's 8 KiB soft limit on received metadata (past it a client may see
# RESOURCE_EXHAUSTED at random instead of the real status).
MAX_STATUS_BYTES = 3000
MAX_METADATA_VALUE_CHARS = 500
MAX_VIOLATIONS = 20
MAX_TRAILERS_CHARS = 7000


def error_reason(code: str) -> str:
    """``google.rpc.ErrorInfo.reason`` of an error code: ``card-number-refused`` →
    ``CARD_NUMBER_REFUSED`` (UPPER_SNAKE_CASE, at most 63 characters)."""
    reason = "".join(c if c.isalnum() else "_" for c in code.upper()).strip("_")
    return (reason or "ERROR")[:63].rstrip("_")


def metadata_value(value: Any) -> str:
    """An extra member of a problem as an ``ErrorInfo.metadata`` string: text as it is
    (unless it would read as JSON), anything else as compact JSON — so that
    :func:`ecomops_platform.grpc_client.problem_of` gets the value back exactly."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, separators=(",", ":"), default=str)


def field_violations(exc: ServiceError) -> list[tuple[str, str]]:
    """The (field, description) pairs an error names: a ``field`` member, or ``errors`` given
    as validation entries (``location`` + ``message``) or as ``"field: description"`` text."""
    found: list[tuple[str, str]] = []
    field = exc.extra.get("field")
    if isinstance(field, str) and field:
        found.append((field, exc.detail))
    errors = exc.extra.get("errors")
    if isinstance(errors, list | tuple):
        for item in errors:
            if isinstance(item, dict) and "message" in item:
                location = item.get("location") or item.get("loc") or ()
                parts = [location] if isinstance(location, str) else [str(p) for p in location]
                found.append((".".join(p for p in parts if p), str(item["message"])))
            elif isinstance(item, str):
                name, sep, description = item.partition(":")
                if sep and name.strip() and " " not in name.strip():
                    found.append((name.strip(), description.strip()))
                else:
                    found.append(("", item))
    return [
        (_bounded(f, 200), _bounded(d, MAX_METADATA_VALUE_CHARS)) for f, d in found[:MAX_VIOLATIONS]
    ]


def rich_status(
    exc: ServiceError, code: grpc.StatusCode, service: str | None = None
) -> status_pb2.Status:
    """The ``google.rpc.Status`` of an error: code and message as the call ends with them,
    ErrorInfo (reason from the error's code, domain ``ecomops.dev``, metadata: the problem's
    type, title, status and extra members), BadRequest field violations when the error names
    fields, RetryInfo when it advises a delay (Retry-After)."""
    problem = exc.problem()
    metadata = {"type": str(problem["type"]), "title": str(problem["title"])}
    metadata["status"] = str(problem["status"])
    if service:
        metadata["service"] = service
    for key, value in exc.extra.items():
        if key not in metadata and key not in ("detail", "instance"):
            metadata[key] = metadata_value(value)
    info = error_details_pb2.ErrorInfo(reason=error_reason(exc.code), domain=ERROR_DOMAIN)
    violations = field_violations(exc)
    retry_after = exc.headers.get("Retry-After")

    def build(meta: dict[str, str], pairs: list[tuple[str, str]]) -> status_pb2.Status:
        status = status_pb2.Status(code=code.value[0], message=_bounded(exc.detail))
        info.ClearField("metadata")
        info.metadata.update(meta)
        status.details.add().Pack(info)
        if pairs:
            status.details.add().Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                        for f, d in pairs
                    ]
                )
            )
        if retry_after and retry_after.isdigit():
            delay = duration_pb2.Duration(seconds=int(retry_after))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return status

    # A hostile value quoted in the error: each value cut, then only the core members and the
    # first violations, then no violations — never a status over the budget.
    core: dict[str, str] = {
        k: metadata[k] for k in ("type", "title", "status", "service") if k in metadata
    }
    attempts: tuple[Callable[[], status_pb2.Status], ...] = (
        lambda: build(metadata, violations),
        lambda: build(
            {k: _bounded(v, MAX_METADATA_VALUE_CHARS) for k, v in metadata.items()},
            [(f, _bounded(d, 200)) for f, d in violations],
        ),
        lambda: build(core, [(_bounded(f, 100), _bounded(d, 100)) for f, d in violations[:5]]),
    )
    for attempt in attempts:
        status = attempt()
        if status.ByteSize() <= MAX_STATUS_BYTES:
            return status
    return build(core, [])

    status = build(metadata)
    if status.ByteSize() > MAX_STATUS_BYTES:
        # A hostile value quoted in an extra member: each cut, then only the core members.
        status = build({k: _bounded(v, MAX_METADATA_VALUE_CHARS) for k, v in metadata.items()})
    if status.ByteSize() > MAX_STATUS_BYTES:
        core = ("type", "title", "status", "service")
        status = build({k: metadata[k] for k in core if k in metadata})
    return status


def error_trailers(
    exc: ServiceError, code: grpc.StatusCode, service: str | None = None
) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata of an error: the standard rich status and the deprecated
    problem trailer (cut to its core members when both would be too large)."""
    details = rich_status(exc, code, service).SerializeToString()
    problem = _problem_metadata(exc)
    if len(problem) + len(details) * 4 // 3 > MAX_TRAILERS_CHARS:
        keep = ("type", "title", "status", "detail")
        full = exc.problem()
        full["detail"] = _bounded(str(full.get("detail", "")))
        problem = json.dumps({k: full[k] for k in keep if k in full}, default=str)
    return ((STATUS_DETAILS_METADATA_KEY, details), (PROBLEM_METADATA_KEY, problem))


class PlatformInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        service: str,
        verifier: TokenVerifier,
        max_deadline: float,
        *,
        server_span: bool = False,
    ) -> None:
        """``server_span``: open the call's server span here (continuing the caller's
        ``traceparent``), when the OpenTelemetry interceptor is not installed (no exporter)."""
        self._service = service
        self._verifier = verifier
        self._max_deadline = max_deadline
        self._server_span = server_span

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None:
            return handler
        if method.startswith(UNAUTHENTICATED_METHODS_PREFIXES):
            return handler
        inner = handler.unary_unary
        service, verifier, max_deadline = self._service, self._verifier, self._max_deadline
        server_span = self._server_span

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            raw_metadata = tuple(context.invocation_metadata() or ())
            span: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if server_span:
                metadata = {k: v for k, v in raw_metadata if isinstance(v, str)}
                span = tracing.tracer().start_as_current_span(
                    method,
                    context=tracing.extract_context(metadata),
                    kind=tracing.trace.SpanKind.SERVER,
                )
            try:
                with span:
                    try:
                        authorization = _single_authorization(raw_metadata)
                        current_caller.set(await verifier.verify_header_async(authorization))
                        screen_request(request)
                        remaining = context.time_remaining()
                        budget = max_deadline if remaining is None else min(remaining, max_deadline)
                        return await asyncio.wait_for(inner(request, context), timeout=budget)
                    except ServiceError as exc:
                        code = grpc_code_of(exc)
                        await context.abort(
                            code, _bounded(exc.detail), error_trailers(exc, code, service)
                        )
                    except TimeoutError:
                        code = grpc.StatusCode.DEADLINE_EXCEEDED
                        await context.abort(code, "deadline exceeded")
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                answer: ServiceError
                if is_bad_input(exc):
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    log.warning(
                        "value refused by the database in %s: %s", method, type(exc).__name__
                    )
                    answer = Unprocessable(BAD_INPUT_DETAIL, code="value-out-of-range")
                elif is_transient(exc):
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning("dependency unavailable in %s: %s", method, exc)
                    answer = DependencyUnavailable("a dependency is unavailable; retry later")
                else:
                    code = grpc.StatusCode.INTERNAL
                    log.exception("unhandled error in %s", method)
                    answer = ServiceError(
                        "internal error; it was logged",
                        code="internal-error",
                        title="Internal error",
                    )
                    answer.status = 500
                await context.abort(code, answer.detail, error_trailers(answer, code, service))
            finally:
                metrics.grpc_server_handled_total.labels(service, method, code.name).inc()
                metrics.grpc_server_handling_seconds.labels(service, method).observe(
                    time.perf_counter() - started
                )

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=_safe_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


class GrpcServer:
    @staticmethod
    def _interceptors(
        service: str, verifier: TokenVerifier, max_deadline: float
    ) -> list[grpc.aio.ServerInterceptor]:
        """Exporting spans: the OpenTelemetry server interceptor, outside the platform's
        checks so that a refused call (UNAUTHENTICATED, INVALID_ARGUMENT) is traced too.
        Otherwise the platform's interceptor opens a (non-recording) server span itself: the
        instrumentation's interceptor costs more per call than that, for spans nobody sees."""
        if tracing.exporting():
            return [
                tracing.grpc_server_interceptor(),
                PlatformInterceptor(service, verifier, max_deadline),
            ]
        return [PlatformInterceptor(service, verifier, max_deadline, server_span=True)]

    def __init__(
        self,
        *,
        service: str,
        verifier: TokenVerifier,
        registrars: Sequence[Callable[[grpc.aio.Server], None]],
        service_names: Sequence[str],
        host: str,
        port: int,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        tls_client_ca_file: str | None = None,
        max_deadline: float = DEFAULT_MAX_DEADLINE,
        access_log: bool = True,
    ) -> None:
        self.server = grpc.aio.server(
            interceptors=grpc_interceptors(
                access_log, self._interceptors(service, verifier, max_deadline)
            ),
            options=[
                ("grpc.max_receive_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        for register in registrars:
            register(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        address = f"{host}:{port}"
        if tls_cert_file and tls_key_file:
            client_ca = Path(tls_client_ca_file).read_bytes() if tls_client_ca_file else None
            creds = grpc.ssl_server_credentials(
                [(Path(tls_key_file).read_bytes(), Path(tls_cert_file).read_bytes())],
                root_certificates=client_ca,
                require_client_auth=client_ca is not None,
            )
            self.port = self.server.add_secure_port(address, creds)
        else:
            self.port = self.server.add_insecure_port(address)

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(False)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def caller_for(message_type: type[Message[Any]]) -> Caller:
    """The verified caller of the current RPC, refused (PERMISSION_DENIED) unless its role is
    one the message declares — checked before the request is decoded; the bus checks again."""
    return authorize(*message_type.roles)
