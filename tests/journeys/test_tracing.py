"""One checkout is one trace, exported over OTLP: the services as processes (their own stack
beside the suite's, on other ports, exporting to a real OTLP/gRPC receiver this test runs), and
the assertions on trace ids and parent span ids across HTTP, gRPC and Kafka.

order (REST) → pricing, risk, inventory (gRPC client span in order → server span there) → the
outbox row written in the checkout's transaction → the relay's ``<topic> send`` span (a child of
that transaction's span) → each consumer's ``consume <event type>`` span (a child of the send
span) in the services that read the checkout's OrderPlaced (pricing, risk).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import harness
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from proof_fixtures import Shop, ops

from ecomops_testing import ensure_database, eventually

pytestmark = pytest.mark.integration

SERVICES = ["inventory", "pricing", "risk", "order"]
SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT
PRODUCER, CONSUMER = trace_pb2.Span.SPAN_KIND_PRODUCER, trace_pb2.Span.SPAN_KIND_CONSUMER
RULES = {  # nothing fires for a new customer: the checkout is approved and reserves stock
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0",
    "rules": [{"code": "blocklist", "type": "blocklist", "weight": "0.5"}],
}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent: str
    attributes: dict[str, Any]


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """An OTLP/gRPC trace receiver (the collector's TraceService): keeps every span it gets."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service=service,
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind in {"string_value", "int_value", "bool_value"} else None


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    server = grpc.aio.server()
    servicer = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
async def traced_stack(
    stack_env: None, receiver: tuple[Receiver, int]
) -> AsyncIterator[tuple[harness.Stack, str]]:
    """The four services of a checkout, exporting to the receiver, on databases of their own
    (``ecomops_<service>_trace``: whatever another suite's stack migrated the shared ones to
    does not matter) and consumer groups of their own (a fresh prefix, committed at the
    topics' end) so that no other copy of a service takes the events."""
    base = int(os.environ.get("PROOF_PORT_BASE", "18000")) + 100
    prefix = f"trace-{uuid.uuid4().hex[:8]}-"
    databases = {
        f"{s.upper()}_DATABASE_URL": os.environ[f"{s.upper()}_DATABASE_URL"] + "_trace"
        for s in SERVICES
    }
    for url in databases.values():
        await ensure_database(url)
    stack = harness.Stack(
        SERVICES,
        port_base=base,
        log_dir=harness.LOG_DIR / "tracing",
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver[1]}",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "ECOMOPS_CONSUMER_GROUP_PREFIX": prefix,
            # Other suites' events on the shared topics name nothing in these databases.
            "ECOMOPS_CONSUMER_MAX_ATTEMPTS": "2",
            **databases,
        },
    )
    await _start_at_end(prefix)
    await asyncio.to_thread(stack.start)
    try:
        yield stack, prefix
    finally:
        await asyncio.to_thread(stack.stop)


async def _start_at_end(prefix: str) -> None:
    """Commit the stack's consumer groups at the end of their topics before they start: they
    read every event published from now on, and none of the shared topics' history."""
    from ecomops_platform import registry
    from ecomops_testing import skip_to_end

    for service in SERVICES:
        spec = registry.info(service).spec
        settings = spec.load_settings()
        for sub in spec.subscriptions:
            name = sub.name(settings) if callable(sub.name) else sub.name
            group = f"{prefix}ecomops-{service}" + ("" if name == "main" else f"-{name}")
            await skip_to_end(group, list(sub.topics))


def _ancestors(span: Span, by_id: dict[str, Span]) -> list[Span]:
    chain = []
    while span.parent and span.parent in by_id:
        span = by_id[span.parent]
        chain.append(span)
    return chain


async def test_one_checkout_is_one_trace_across_grpc_and_kafka(
    traced_stack: tuple[harness.Stack, str], receiver: tuple[Receiver, int]
) -> None:
    stack, _ = traced_stack
    spans = receiver[0].spans
    async with httpx.AsyncClient(timeout=30) as client:
        rules = await client.get(stack.url("risk") + "/v1/rules", headers=ops())
        assert rules.status_code == 200, rules.text
        if [r["code"] for r in rules.json()["rules"]] != ["blocklist"]:
            put = await client.put(stack.url("risk") + "/v1/rules", json=RULES, headers=ops())
            assert put.status_code in (200, 201), put.text
        shop = Shop(client, stack)
        sku = f"trace-{uuid.uuid4().hex[:10]}"
        await shop.seed_sku(sku, units=5)
        customer_id = f"trace-cust-{uuid.uuid4().hex[:10]}"
        placed = await shop.place_order(customer_id, [(sku, 1)])
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]

    def checkout_root() -> Span:
        roots = [
            s
            for s in spans
            if s.service == "ecomops-order" and s.kind == SERVER and s.name == "POST /v1/orders"
        ]
        assert roots, sorted({(s.service, s.name) for s in spans})
        return roots[-1]

    def consumed(root: Span) -> list[Span]:
        found = [
            s
            for s in spans
            if s.trace_id == root.trace_id
            and s.kind == CONSUMER
            and s.name.startswith("consume ecomops.order.v1.")
        ]
        # The readers of OrderPlaced: pricing (coupon redemptions), risk (velocity history).
        assert {s.service for s in found} >= {"ecomops-pricing", "ecomops-risk"}, found
        return found

    root = await eventually(checkout_root, timeout=30, interval=0.2)
    consumers = await eventually(lambda: consumed(root), timeout=60, interval=0.3)
    await asyncio.sleep(1.0)  # the spans still batched in the processes (200 ms schedule)

    trace = [s for s in spans if s.trace_id == root.trace_id]
    by_id = {s.span_id: s for s in trace}
    assert root.parent == "", "the checkout request had no traceparent: its span is the root"
    assert order_id not in " ".join(s.name for s in trace), "span names carry no raw ids"

    # gRPC: order's client span → the callee's server span, for each of the three calls.
    for callee in ("pricing", "risk", "inventory"):
        servers = [s for s in trace if s.service == f"ecomops-{callee}" and s.kind == SERVER]
        assert servers, f"no {callee} server span in the checkout's trace"
        for server in servers:
            assert server.name.startswith(f"/ecomops.{callee}.v1.")
            client_span = by_id[server.parent]
            assert client_span.service == "ecomops-order" and client_span.kind == CLIENT
            assert client_span.name == server.name
            assert root in _ancestors(server, by_id)

    # SQL: statements of the checkout's transactions, in the trace (asyncpg instrumentation).
    assert any(s.attributes.get("db.system") == "postgresql" for s in trace if s.kind == CLIENT)

    # Kafka: the send span of the order topic descends from the checkout request (the outbox
    # row kept the writer's traceparent); every consumer span is the child of a send span.
    sends = [s for s in trace if s.kind == PRODUCER and s.name == "ecomops.order.v1 send"]
    assert sends and all(root in _ancestors(s, by_id) for s in sends), sends
    for span in consumers:
        parent = by_id[span.parent]
        assert parent.kind == PRODUCER and parent in sends, (span, parent)
        assert span.attributes.get("messaging.destination.name") == "ecomops.order.v1"
