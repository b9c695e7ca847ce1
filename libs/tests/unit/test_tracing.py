"""The tracing configuration read from the OTEL_* environment, the sampler that keeps orphan SQL
out of the traces, and the headers the relay publishes an outbox row with."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
from opentelemetry.trace import SpanKind

from ecomops_platform import tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ()),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("otlp",),
        ),
    ],
)
def test_the_exporters_come_from_the_standard_variables(
    env: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert tracing.exporters_from_env(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        },
    ],
)
def test_an_exporter_that_is_not_installed_is_refused_at_start_up(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="OTEL_"):
        tracing.exporters_from_env(env)


def _decision(sampler: object, *, parent: str | None, attributes: dict[str, str]) -> Decision:
    ctx = tracing.extract_context({"traceparent": parent}) if parent else None
    result = sampler.should_sample(  # type: ignore[attr-defined]
        ctx, 0x4BF92F3577B34DA6A3CE929D0E0E4736, "SELECT", SpanKind.CLIENT, attributes
    )
    decision: Decision = result.decision
    return decision


def test_a_statement_without_a_parent_span_is_not_sampled() -> None:
    sampler = tracing.SkipOrphanQueries(ParentBased(ALWAYS_ON))
    query = {"db.system": "postgresql"}
    assert _decision(sampler, parent=None, attributes=query) is Decision.DROP
    assert _decision(sampler, parent=PARENT, attributes=query) is Decision.RECORD_AND_SAMPLE
    # Anything else without a parent (a request, a job's gRPC call) is the inner sampler's call.
    assert _decision(sampler, parent=None, attributes={}) is Decision.RECORD_AND_SAMPLE


def test_without_an_exporter_spans_are_not_recorded_but_a_sampled_caller_is_honoured() -> None:
    provider = TracerProvider(sampler=tracing._sampler({}, exporting=False))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording()
        assert root.get_span_context().is_valid  # a trace id for the logs and downstream
        assert tracing.current_traceparent() is not None
    sampled_caller = tracing.extract_context({"traceparent": PARENT})
    with tracer.start_as_current_span("child", context=sampled_caller) as child:
        assert child.is_recording()
        assert format(child.get_span_context().trace_id, "032x") == PARENT.split("-")[1]


def test_the_service_name_defaults_to_the_service_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert tracing._resource("order", {}).attributes["service.name"] == "ecomops-order"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-orders")
    env = {"OTEL_SERVICE_NAME": "shop-orders"}
    assert tracing._resource("order", env).attributes["service.name"] == "shop-orders"


def test_the_relay_publishes_in_the_writers_context_with_one_traceparent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = {"ce_id": "e-1", "traceparent": PARENT, "tracestate": "vendor=1"}
    # Without the Kafka instrumentation the stored headers go out as they are.
    monkeypatch.setattr(tracing._state, "kafka_instrumented", False)
    headers, writer = tracing.publish_headers(stored)
    assert writer is None
    assert dict(headers) == {k: v.encode() for k, v in stored.items()}
    # With it, the send span (which writes its own traceparent) is started in the writer's
    # context, and the stored trace headers are left out.
    monkeypatch.setattr(tracing._state, "kafka_instrumented", True)
    headers, writer = tracing.publish_headers(stored)
    assert dict(headers) == {"ce_id": b"e-1"}
    assert writer is not None
    parent = trace.get_current_span(writer).get_span_context()
    assert format(parent.span_id, "016x") == PARENT.split("-")[2]
    assert parent.trace_state.get("vendor") == "1"
    # A row written outside any span has no context to restore.
    headers, writer = tracing.publish_headers({"ce_id": "e-2"})
    assert writer is None and headers == [("ce_id", b"e-2")]


def test_a_card_number_in_the_url_never_reaches_an_exported_span() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span(
        "GET /v1/orders/{order_id}",
        attributes={
            "http.url": "http://api/v1/orders/o-1?pan=4111111111111111",
            "http.target": "/v1/orders/4111 1111 1111 1111",
            "http.method": "GET",
        },
    )
    tracing.screen_request_span(span, {})
    span.end()
    (exported,) = exporter.get_finished_spans()
    attributes = dict(exported.attributes or {})
    assert "4111" not in str(attributes), attributes
    assert attributes["http.url"].startswith("http://api/v1/orders/o-1?pan=")
    assert attributes["http.method"] == "GET"
