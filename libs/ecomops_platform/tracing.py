"""OpenTelemetry: one tracer provider per process and W3C trace-context propagation.

Context crosses HTTP (middleware), gRPC (interceptors) and Kafka (``traceparent`` header written
into the outbox row when the event is recorded, so the relay publishes the writer's context).
Spans are exported when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and an exporter is installed;
otherwise they still give every log line its trace id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import context, propagate, trace

__all__ = [
    "configure_tracing",
    "current_traceparent",
    "extract_context",
    "inject_headers",
    "trace",
    "tracer",
]
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

_configured = False


def configure_tracing(service: str) -> None:
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"ecomops-{service}"}))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str = "ecomops") -> trace.Tracer:
    return trace.get_tracer(name)


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
