"""OpenTelemetry: one tracer provider per process, the official instrumentations, OTLP export.

Configured only by the SDK's standard environment variables, read once at start-up
(:func:`configure_tracing`, called by the runtime before anything serves):

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, or
  ``OTEL_TRACES_EXPORTER=otlp``: spans are batched (``OTEL_BSP_*``) and exported over OTLP/gRPC
  (``OTEL_EXPORTER_OTLP_HEADERS``, ``_TIMEOUT``, ``_CERTIFICATE``, ``_COMPRESSION``, ``_INSECURE``
  as the exporter reads them). ``OTEL_TRACES_EXPORTER=console`` prints them (debugging).
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` must be ``grpc`` (the default here): the HTTP exporter is not
  installed, and a different value is refused at start-up rather than silently ignored.
- ``OTEL_SERVICE_NAME`` (default ``ecomops-<service>``), ``OTEL_RESOURCE_ATTRIBUTES``.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (default ``parentbased_always_on`` when
  exporting). Without an exporter the default is ``parentbased_always_off``: spans still carry a
  trace id (access logs, the ``traceparent`` sent downstream and stored in the outbox) but record
  nothing, unless the caller's ``traceparent`` says it sampled the trace (the flag is passed on).
- ``OTEL_SDK_DISABLED=true``: no provider at all (no spans, no trace ids in logs).

Where spans come from:

- REST: ``opentelemetry-instrumentation-fastapi`` (:func:`instrument_app`), span named by the
  route template (``GET /v1/orders/{order_id}``), never the raw path; probes excluded. Only
  when exporting: without an exporter a pure ASGI layer (:class:`ServerSpanMiddleware`) opens
  the server span, continuing the caller's ``traceparent``, and records no attributes.
- gRPC: ``opentelemetry-instrumentation-grpc``: the aio server interceptor
  (:func:`grpc_server_interceptor`, inside the access log's interceptors) and client
  interceptors on every channel (:func:`grpc_client_interceptors`); health and reflection are
  not traced. Only when exporting: without an exporter the platform's own interceptors carry
  the context (a non-recording server span opened by ``PlatformInterceptor``, ``traceparent``
  injected by the channel's metadata interceptor), because the instrumentation's interceptors
  cost more per call than that, for spans nobody would see.
- SQL: ``opentelemetry-instrumentation-asyncpg`` (SQLAlchemy's asyncpg dialect and the raw
  asyncpg hot paths alike), only when exporting. A statement with no parent span (the outbox
  relay's polls, retention and periodic jobs) is not sampled: it would be a trace of its own.
- Kafka: ``opentelemetry-instrumentation-aiokafka`` for the producer (``<topic> send`` span),
  only when exporting. The outbox row stores the writer's ``traceparent`` (and ``tracestate``)
  in the CloudEvents headers; the relay publishes each row inside that context
  (:func:`publish_headers`), so the send span is a child of the transaction that wrote the event
  and the message carries the send span's ``traceparent``. The consumer's processing span
  (``consume <event type>``, made by :mod:`ecomops_platform.consumer`, a child of that
  ``traceparent``) replaces the instrumentation's ``receive`` spans, which are turned off: the
  batch-level ``receive`` span they open for every poll would start a trace of its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import Attributes

__all__ = [
    "configure_tracing",
    "current_traceparent",
    "exporting",
    "extract_context",
    "flush_tracing",
    "grpc_client_interceptors",
    "grpc_server_interceptor",
    "inject_headers",
    "instrument_app",
    "publish_headers",
    "trace",
    "tracer",
    "tracer_provider",
]

log = logging.getLogger(__name__)

#: The W3C trace-context headers (what :func:`inject_headers` writes into an outbox row).
TRACE_HEADERS = ("traceparent", "tracestate")
#: REST paths never traced (kubelet and Prometheus call them every few seconds).
UNTRACED_PATHS = "/healthz,/readyz,/metrics"
#: gRPC services never traced (probes, reflection).
UNTRACED_GRPC_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.")


class _State:
    configured = False
    exporters: tuple[str, ...] = ()
    provider: TracerProvider | None = None
    kafka_instrumented = False


_state = _State()


def _env_true(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() == "true"


def exporters_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The span exporters the environment asks for: ``("otlp",)``, ``("console",)``, both, or
    none. ``OTEL_TRACES_EXPORTER`` wins; unset, an OTLP endpoint means OTLP; nothing set means
    no export (an unset endpoint does not mean the SDK default ``localhost:4317``: a service
    would then try, and fail, to export on every machine without a collector)."""
    env = os.environ if env is None else env
    if _env_true(env, "OTEL_SDK_DISABLED"):
        return ()
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = ["otlp"] if endpoint else []
    if not names or names == ["none"]:
        return ()
    unknown = sorted(set(names) - {"otlp", "console"})
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={raw!r}: {', '.join(unknown)} not supported "
            "(use otlp, console or none)"
        )
    if "otlp" in names:
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        ).strip()
        if protocol != "grpc":
            raise ValueError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: only grpc is installed "
                "(opentelemetry-exporter-otlp-proto-grpc; port 4317 on a collector)"
            )
    return tuple(dict.fromkeys(names))


class SkipOrphanQueries(Sampler):
    """Never samples a database statement that has no parent span (the relay's polls,
    retention, periodic jobs: a trace each, of one statement); otherwise asks ``inner``."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and attributes
            and ("db.system" in attributes or "db.system.name" in attributes)
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        sampled: SamplingResult = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        return sampled

    def get_description(self) -> str:
        return f"SkipOrphanQueries{{{self._inner.get_description()}}}"


def _sampler(env: Mapping[str, str], exporting: bool) -> Sampler:
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    if env.get("OTEL_TRACES_SAMPLER") or exporting:
        inner: Sampler = _get_from_env_or_default()
    else:
        inner = ParentBased(ALWAYS_OFF)
    return SkipOrphanQueries(inner)


def _resource(service: str, env: Mapping[str, str]) -> Resource:
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; attributes passed
    # here would override them, so the default name is given only when neither names one.
    resource = Resource.create()
    if env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        return resource
    return resource.merge(Resource({SERVICE_NAME: f"ecomops-{service}"}))


def _processors(exporters: Iterable[str]) -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    return processors


def _instrument_libraries() -> None:
    """SQL and Kafka-producer spans (only when exporting: they cost on every statement)."""
    import aiokafka
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.utils import unwrap

    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    AIOKafkaInstrumentor().instrument()
    # The consumer's processing span replaces the receive spans (see the module docstring).
    unwrap(aiokafka.AIOKafkaConsumer, "getmany")
    unwrap(aiokafka.AIOKafkaConsumer, "getone")
    _state.kafka_instrumented = True


def configure_tracing(service: str, env: Mapping[str, str] | None = None) -> None:
    """Install this process's tracer provider from the ``OTEL_*`` environment (once)."""
    if _state.configured:
        return
    env = os.environ if env is None else env
    exporters = exporters_from_env(env)
    _state.configured = True
    if _env_true(env, "OTEL_SDK_DISABLED"):
        log.info("tracing disabled (OTEL_SDK_DISABLED=true)")
        return
    provider = TracerProvider(
        resource=_resource(service, env), sampler=_sampler(env, bool(exporters))
    )
    for processor in _processors(exporters):
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _state.provider, _state.exporters = provider, exporters
    if exporters:
        _instrument_libraries()
        log.info("tracing: exporting spans (%s)", ", ".join(exporters))


def exporting() -> bool:
    """Whether this process exports spans (an exporter was configured)."""
    return bool(_state.exporters)


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans still batched (blocking, at most ``timeout_millis``): at shutdown.
    The provider keeps working (a process may run its services more than once, tests do)."""
    if _state.provider is not None and _state.exporters:
        _state.provider.force_flush(timeout_millis)


def tracer_provider() -> trace.TracerProvider:
    """The provider the platform's spans and instrumentations use (tests swap it)."""
    return trace.get_tracer_provider()


#: The platform's tracers, by name, with the provider that made them: the SDK builds a new
#: tracer (and instrumentation scope) on every ``get_tracer``, which once per consumed event
#: and gRPC call was 2.5% of pricing's CPU under checkout load.
_tracers: dict[str, tuple[trace.TracerProvider, trace.Tracer]] = {}


def tracer(name: str = "ecomops") -> trace.Tracer:
    provider = tracer_provider()
    cached = _tracers.get(name)
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer(name))
        _tracers[name] = cached
    return cached[1]


#: Span attributes of a server span that hold what the client put in the URL.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.path", "url.query")


def screen_request_span(span: Any, scope: Any = None) -> None:
    """Mask card numbers in the URL attributes of a request's span (the screen refuses such a
    request with 422, but the span was started before it ran): what logs get, traces get."""
    if not span.is_recording():
        return
    from .logging import redact

    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            masked = redact(value)
            if masked != value:
                span.set_attribute(key, masked)


class ServerSpanMiddleware:
    """Pure ASGI: the request's server span, continuing the caller's ``traceparent``, when this
    process exports no spans. What the access log, the outbox rows and downstream calls need is
    the span's context; the instrumentation's middleware also gathers attributes and wraps
    every ASGI message, for spans that go nowhere (3.6% of the order service's CPU under
    checkout load). A sampled caller still gets a recording span, named by the route template."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._untraced = frozenset(UNTRACED_PATHS.split(","))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self._untraced:
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        parent = propagate.extract(carrier) if carrier else None
        method = scope["method"]
        with tracer().start_as_current_span(
            method, context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                if span.is_recording():
                    route = getattr(scope.get("route"), "path", None)
                    if route:
                        span.update_name(f"{method} {route}")


def instrument_app(app: Any) -> None:
    """Server spans for a FastAPI app, named ``METHOD /route/{template}``: the OpenTelemetry
    FastAPI instrumentation when spans are exported, else :class:`ServerSpanMiddleware`."""
    if not exporting():
        app.add_middleware(ServerSpanMiddleware)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=screen_request_span,
        tracer_provider=tracer_provider(),
        excluded_urls=UNTRACED_PATHS,
        # One server span per request, without a child span for every ASGI message.
        exclude_spans=["receive", "send"],
    )


def grpc_server_interceptor() -> Any:
    """The gRPC (aio) server interceptor: one server span per call, named by the full method."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    untraced = filters.any_of(*(filters.service_prefix(s) for s in UNTRACED_GRPC_SERVICES))
    return aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider(), filter_=filters.negate(untraced)
    )


def grpc_client_interceptors() -> list[Any]:
    """The gRPC (aio) client interceptors: a client span per call, its context sent along."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[Any] = aio_client_interceptors(tracer_provider())  # type: ignore[no-untyped-call]
    return interceptors


def inject_headers() -> dict[str, str]:
    """The current trace context as headers (``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> context.Context:
    items = dict(headers) if not isinstance(headers, Mapping) else headers
    carrier = {k.lower(): v for k, v in items.items()}
    return propagate.extract(carrier)


def current_traceparent() -> str | None:
    return inject_headers().get("traceparent")


def publish_headers(
    stored: Mapping[str, Any],
) -> tuple[list[tuple[str, bytes]], Context | None]:
    """The Kafka headers of an outbox row, and the context to publish it in.

    Without the Kafka instrumentation the stored headers go out as they are (the writer's
    ``traceparent`` included). With it, the send span is started inside the writer's context
    (returned) and writes its own ``traceparent``; the stored trace headers are left out so
    that the message carries exactly one.
    """
    if not _state.kafka_instrumented or "traceparent" not in stored:
        return [(k, str(v).encode()) for k, v in stored.items()], None
    writer = extract_context({k: str(stored[k]) for k in TRACE_HEADERS if k in stored})
    headers = [(k, str(v).encode()) for k, v in stored.items() if k not in TRACE_HEADERS]
    return headers, writer
