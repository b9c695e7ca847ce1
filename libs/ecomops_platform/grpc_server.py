"""gRPC server runner (grpc.aio): health, reflection, and one interceptor for auth, tracing,
metrics, deadlines and error mapping. Every ecomops RPC is unary-unary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import metrics, tracing
from .auth import Caller, Role, TokenVerifier, current_caller
from .errors import ServiceError, Unauthenticated, Unprocessable, is_transient

log = logging.getLogger("ecomops.grpc")

PROBLEM_METADATA_KEY = "ecomops-problem"
UNAUTHENTICATED_METHODS_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DEFAULT_MAX_DEADLINE = 30.0


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
    """Text with NUL characters cannot be stored by PostgreSQL: refuse it as bad input."""
    if not hasattr(message, "ListFields"):
        return
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        values = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = [item for pair in value.items() for item in pair]
        for item in values:
            if isinstance(item, str) and "\x00" in item:
                raise Unprocessable(f"{name} contains a NUL character")
            if hasattr(item, "ListFields"):
                _refuse_nul_strings(item, f"{name}.")


class PlatformInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, service: str, verifier: TokenVerifier, max_deadline: float) -> None:
        self._service = service
        self._verifier = verifier
        self._max_deadline = max_deadline

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

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            ctx = tracing.extract_context(metadata)
            try:
                with tracing.tracer().start_as_current_span(
                    method, context=ctx, kind=tracing.trace.SpanKind.SERVER
                ):
                    try:
                        current_caller.set(
                            await verifier.verify_header_async(metadata.get("authorization"))
                        )
                        _refuse_nul_strings(request)
                        remaining = context.time_remaining()
                        budget = max_deadline if remaining is None else min(remaining, max_deadline)
                        return await asyncio.wait_for(inner(request, context), timeout=budget)
                    except ServiceError as exc:
                        code = exc.grpc_code
                        context.set_trailing_metadata(
                            ((PROBLEM_METADATA_KEY, json.dumps(exc.problem(), default=str)),)
                        )
                        await context.abort(exc.grpc_code, exc.detail)
                    except TimeoutError:
                        code = grpc.StatusCode.DEADLINE_EXCEEDED
                        await context.abort(code, "deadline exceeded")
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning("dependency unavailable in %s: %s", method, exc)
                    await context.abort(code, "a dependency is unavailable; retry later")
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s", method)
                await context.abort(code, "internal error; it was logged")
            finally:
                metrics.grpc_server_handled_total.labels(service, method, code.name).inc()
                metrics.grpc_server_handling_seconds.labels(service, method).observe(
                    time.perf_counter() - started
                )

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class GrpcServer:
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
    ) -> None:
        self.server = grpc.aio.server(
            interceptors=[PlatformInterceptor(service, verifier, max_deadline)],
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
