"""Access logs: one JSON line per REST request and per gRPC call, probes excluded.

Each line (logger ``ecomops.access``, level INFO, written by the JSON formatter of
:mod:`ecomops_platform.logging`) carries::

    {"message": "GET /v1/orders/{order_id} 200", "protocol": "http", "method": "GET",
     "route": "/v1/orders/{order_id}", "status": 200, "duration_ms": 12.345,
     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "caller": "c-42", "role": "customer", ...}

- ``route`` is the route template (``/v1/orders/{order_id}``), never the raw path: raw paths
  carry ids (high cardinality) and whatever a client put in them; a request refused before
  routing (body limit, screen, unknown path) has ``route: null``. For gRPC it is the full
  method name (``/ecomops.order.v1.OrderService/GetOrder``) and ``status`` the code name.
- ``trace_id`` is the request's server span (the one continuing the caller's ``traceparent``),
  read while the response starts (REST) or inside the handler (gRPC).
- ``caller`` / ``role`` are the verified token's subject and role, when a token was verified.
- ``/healthz``, ``/readyz``, ``/metrics`` and the gRPC health service are not logged: kubelet
  and Prometheus call them every few seconds.

On by default; ``ECOMOPS_ACCESS_LOG=false`` turns it off. Kept out of the other middleware so
that the tracing and error-mapping code can change without touching it: REST wraps the whole
middleware stack (:class:`AccessLogMiddleware`, outermost, so 413s and screened 422s are
logged too); gRPC has an outermost interceptor (timing, status, caller) and an innermost one
(:class:`TraceIdCapture`, which reads the trace id inside the server span).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import current_caller

log = logging.getLogger("ecomops.access")

#: REST paths never logged: the probes and the Prometheus scrape.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: gRPC methods never logged: the health service (kubelet's gRPC probe, load balancers).
PROBE_GRPC_PREFIXES = ("/grpc.health.v1.Health/",)

_call_trace: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "ecomops_access_trace", default=None
)


def current_trace_id() -> str | None:
    """The trace id of the current span, as 32 hex digits (``None`` outside a valid span)."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _traceparent_trace_id(value: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (the caller's: same trace as our server span)."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1].lower()
    return None


def _emit(
    protocol: str,
    method: str,
    route: str | None,
    status: int | str,
    started: float,
    trace_id: str | None,
) -> None:
    who = current_caller.get()
    log.info(
        "%s %s %s",
        method,
        route if route is not None else "(unrouted)",
        status,
        extra={
            "access": True,
            "protocol": protocol,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "trace_id": trace_id,
            "caller": who.subject if who is not None else None,
            "role": who.role.value if who is not None else None,
        },
    )


class AccessLogMiddleware:
    """Pure ASGI: one access line per HTTP request once the app has answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response
        trace_id: str | None = None

        async def logged_send(message: Message) -> None:
            nonlocal status, trace_id
            if message["type"] == "http.response.start":
                status = message["status"]
                trace_id = current_trace_id()
            await send(message)

        token = current_caller.set(None)
        try:
            await self.app(scope, receive, logged_send)
        finally:
            if trace_id is None:
                traceparent = next(
                    (v for k, v in scope.get("headers", ()) if k == b"traceparent"), None
                )
                trace_id = _traceparent_trace_id(
                    traceparent.decode("latin-1") if traceparent is not None else None
                )
            route = getattr(scope.get("route"), "path", None)
            _emit("http", scope.get("method", ""), route, status, started, trace_id)
            current_caller.reset(token)


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    for member in grpc.StatusCode:
        if member.value[0] == code:
            return str(member.name)
    return "UNKNOWN"


_Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class AccessLogInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Outermost gRPC interceptor: one access line per unary call (probes excluded)."""

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(PROBE_GRPC_PREFIXES):
            return handler
        inner = handler.unary_unary

        async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            holder: dict[str, str] = {}
            trace_token = _call_trace.set(holder)
            caller_token = current_caller.set(None)
            code: str | None = None
            try:
                return await inner(request, context)
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except grpc.aio.AbortError:
                raise
            except Exception:
                code = "UNKNOWN"
                raise
            finally:
                if code is None or code == "UNKNOWN":
                    set_code = context.code()
                    code = _code_name(set_code) if set_code is not None else (code or "OK")
                trace_id = holder.get("trace_id")
                if trace_id is None:
                    metadata = dict(
                        (k, v)
                        for k, v in (context.invocation_metadata() or ())
                        if k == "traceparent"
                    )
                    value = metadata.get("traceparent")
                    trace_id = _traceparent_trace_id(value if isinstance(value, str) else None)
                _emit("grpc", method, method, code, started, trace_id)
                current_caller.reset(caller_token)
                _call_trace.reset(trace_token)

        return grpc.unary_unary_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class TraceIdCapture(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Innermost gRPC interceptor: records the server span's trace id for the access line
    (the span is current only inside the interceptor that made it)."""

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def captured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            holder = _call_trace.get()
            trace_id = current_trace_id()
            if holder is not None and trace_id is not None:
                holder["trace_id"] = trace_id
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            captured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def grpc_interceptors(
    enabled: bool, inner: list[grpc.aio.ServerInterceptor]
) -> list[grpc.aio.ServerInterceptor]:
    """The server's interceptor list with the access log around ``inner`` (when enabled)."""
    if not enabled:
        return list(inner)
    return [AccessLogInterceptor(), *inner, TraceIdCapture()]
