"""Access logs (issue 18, point 5): one JSON line per REST request and gRPC call, with the
route template, status, duration, trace id and caller; probes are not logged; a setting turns
them off. Driven through the real platform app (ASGI) and a real grpc.aio server in process."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from ecomops_platform import tracing
from ecomops_platform.access_log import current_trace_id
from ecomops_platform.auth import TokenVerifier, mint_token
from ecomops_platform.grpc_server import GrpcServer
from ecomops_platform.logging import JsonFormatter
from ecomops_platform.rest import AnyCaller, create_app
from ecomops_platform.settings import CommonSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
PAN = "4111111111111111"


def _verifier() -> TokenVerifier:
    return TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test"))


def _bearer(subject: str = "ops-7", role: str = "ops") -> str:
    return "Bearer " + mint_token(SECRET, subject, role)


async def _ready() -> dict[str, Any]:
    return {"status": "ready", "ready": True, "checks": {"database": True}}


def _app(*, access_log: bool = True) -> tuple[FastAPI, dict[str, Any]]:
    router = APIRouter(prefix="/v1")
    seen: dict[str, Any] = {}

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str, caller: AnyCaller) -> Any:
        seen["trace_id"] = current_trace_id()
        return {"id": order_id}

    @router.post("/orders")
    async def create_order(caller: AnyCaller) -> Any:
        return {"ok": True}

    @router.get("/boom")
    async def boom() -> Any:
        raise RuntimeError("unexpected")

    @router.get("/database-down")
    async def database_down() -> Any:
        # What a pool raises when it opens a connection to a database that is down.
        raise ConnectionRefusedError(111, "Connection refused")

    app = create_app(
        service="unit",
        title="t",
        description="d",
        version="1",
        verifier=_verifier(),
        readiness=_ready,
        routers=[router],
        max_body_bytes=2048,
        rate_limit_per_minute=10_000,
        access_log=access_log,
    )
    return app, seen


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access records as the JSON lines the service would write."""
    formatter = JsonFormatter("unit")
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "ecomops.access"]


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="ecomops.access")
    return caplog


async def test_a_rest_request_gives_one_line_with_template_status_duration_trace_and_caller(
    access: pytest.LogCaptureFixture,
) -> None:
    app, seen = _app()
    async with _client(app) as client:
        resp = await client.get(
            "/v1/orders/ord-123456",
            headers={"Authorization": _bearer(), "traceparent": TRACEPARENT},
        )
    assert resp.status_code == 200
    [line] = _lines(access)
    assert line["service"] == "unit" and line["level"] == "info"
    assert line["protocol"] == "http" and line["method"] == "GET"
    assert line["route"] == "/v1/orders/{order_id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 10_000
    # The request's span continues the caller's trace: the handler and the line agree.
    assert line["trace_id"] == seen["trace_id"] == TRACE_ID
    assert line["caller"] == "ops-7" and line["role"] == "ops"
    assert "ord-123456" not in json.dumps(line), "the raw path never reaches the access log"


async def test_probes_and_the_metrics_scrape_are_not_logged(
    access: pytest.LogCaptureFixture,
) -> None:
    app, _ = _app()
    async with _client(app) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200
    assert _lines(access) == []


async def test_refusals_are_logged_without_caller_route_or_card_number(
    access: pytest.LogCaptureFixture,
) -> None:
    app, _ = _app()
    async with _client(app) as client:
        unauthenticated = await client.get("/v1/orders/o-1")
        unknown = await client.get("/v1/nowhere/x", headers={"Authorization": _bearer()})
        screened = await client.get(f"/v1/orders/{PAN}", headers={"Authorization": _bearer()})
        too_big = await client.post(
            "/v1/orders", content=b"x" * 4096, headers={"Authorization": _bearer()}
        )
    assert [r.status_code for r in (unauthenticated, unknown, screened, too_big)] == [
        401,
        404,
        422,
        413,
    ]
    lines = _lines(access)
    assert [(line["status"], line["route"]) for line in lines] == [
        (401, "/v1/orders/{order_id}"),
        (404, None),
        (422, None),
        (413, None),
    ]
    assert lines[0]["caller"] is None and lines[0]["role"] is None
    assert "4111" not in json.dumps(lines)


async def test_an_unhandled_error_is_logged_as_500(access: pytest.LogCaptureFixture) -> None:
    app, _ = _app()
    async with _client(app) as client:
        resp = await client.get("/v1/boom", headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 500
    [line] = _lines(access)
    assert line["status"] == 500 and line["route"] == "/v1/boom"
    assert line["trace_id"] == TRACE_ID


async def test_an_unreachable_database_is_answered_and_logged_as_503_inside_the_app(
    access: pytest.LogCaptureFixture,
) -> None:
    """Answered by the app itself, not by Starlette's outermost catch-all, which re-raises
    after answering: the server would log an "Exception in ASGI application" and the access
    log a 500 for a request the client saw answered 503."""
    app, _ = _app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/v1/database-down")
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "2"
    [line] = _lines(access)
    assert (line["status"], line["route"]) == (503, "/v1/database-down")


async def test_the_setting_turns_rest_access_logs_off(
    access: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECOMOPS_ACCESS_LOG", raising=False)
    assert CommonSettings(jwt_secret=SECRET).access_log is True
    monkeypatch.setenv("ECOMOPS_ACCESS_LOG", "false")
    assert CommonSettings(jwt_secret=SECRET).access_log is False
    app, _ = _app(access_log=False)
    async with _client(app) as client:
        assert (await client.get("/v1/orders/o-1", headers={"Authorization": _bearer()})).is_success
    assert _lines(access) == []


# --- gRPC --------------------------------------------------------------------------------------
async def _echo_server(*, access_log: bool = True) -> tuple[GrpcServer, dict[str, Any]]:
    seen: dict[str, Any] = {}

    async def echo(request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
        seen["trace_id"] = current_trace_id()
        if "fail" in request.fields:
            raise RuntimeError("unexpected")
        return request

    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            echo,
            request_deserializer=struct_pb2.Struct.FromString,
            response_serializer=struct_pb2.Struct.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ecomops.unit.v1.Echo", {"Echo": handler}),)
        )

    server = GrpcServer(
        service="unit",
        verifier=_verifier(),
        registrars=[register],
        service_names=["ecomops.unit.v1.Echo"],
        host="127.0.0.1",
        port=0,
        access_log=access_log,
    )
    await server.start()
    await server.set_serving(True)
    return server, seen


async def _echo(
    target: str, message: struct_pb2.Struct, metadata: list[tuple[str, str]]
) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(
            "/ecomops.unit.v1.Echo/Echo",
            request_serializer=struct_pb2.Struct.SerializeToString,
            response_deserializer=struct_pb2.Struct.FromString,
        )
        try:
            await call(message, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_grpc_calls_give_one_line_each_with_code_trace_and_caller(
    access: pytest.LogCaptureFixture,
) -> None:
    server, seen = await _echo_server()
    target = f"127.0.0.1:{server.port}"
    try:
        ok = struct_pb2.Struct()
        ok.update({"a": "b"})
        fail = struct_pb2.Struct()
        fail.update({"fail": True})
        auth = ("authorization", _bearer("partner-9", "partner"))
        codes = [
            await _echo(target, ok, [auth, ("traceparent", TRACEPARENT)]),
            await _echo(target, ok, []),
            await _echo(target, fail, [auth]),
        ]
        async with grpc.aio.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(0)
    assert codes == [
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INTERNAL,
    ]
    lines = _lines(access)
    assert len(lines) == 3, "the health check is not logged"
    assert all(line["protocol"] == "grpc" for line in lines)
    assert all(line["route"] == line["method"] == "/ecomops.unit.v1.Echo/Echo" for line in lines)
    assert [line["status"] for line in lines] == ["OK", "UNAUTHENTICATED", "INTERNAL"]
    assert lines[0]["trace_id"] == TRACE_ID
    assert lines[0]["caller"] == "partner-9" and lines[0]["role"] == "partner"
    assert lines[1]["caller"] is None
    assert lines[2]["trace_id"] == seen["trace_id"]  # no tracer provider here: both None
    assert all(isinstance(line["duration_ms"], float) for line in lines)


async def test_without_traceparent_the_line_names_the_trace_the_server_started(
    access: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = TracerProvider()
    monkeypatch.setattr(tracing, "tracer_provider", lambda: provider)
    app, rest_seen = _app()
    server, grpc_seen = await _echo_server()
    try:
        async with _client(app) as client:
            await client.get("/v1/orders/o-1", headers={"Authorization": _bearer()})
        code = await _echo(
            f"127.0.0.1:{server.port}", struct_pb2.Struct(), [("authorization", _bearer())]
        )
    finally:
        await server.stop(0)
    assert code is grpc.StatusCode.OK
    rest_line, grpc_line = _lines(access)
    assert rest_seen["trace_id"] is not None and grpc_seen["trace_id"] is not None
    assert rest_line["trace_id"] == rest_seen["trace_id"] != TRACE_ID
    assert grpc_line["trace_id"] == grpc_seen["trace_id"] != rest_seen["trace_id"]


async def test_the_setting_turns_grpc_access_logs_off(access: pytest.LogCaptureFixture) -> None:
    server, _ = await _echo_server(access_log=False)
    try:
        message = struct_pb2.Struct()
        code = await _echo(f"127.0.0.1:{server.port}", message, [("authorization", _bearer())])
    finally:
        await server.stop(0)
    assert code is grpc.StatusCode.OK
    assert _lines(access) == []


async def test_without_an_exporter_a_platform_channel_carries_the_trace_to_the_server(
    access: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecomops_platform.grpc_client import make_channel

    provider = TracerProvider(sampler=tracing._sampler({}, exporting=False))
    monkeypatch.setattr(tracing, "tracer_provider", lambda: provider)
    assert not tracing.exporting()
    server, seen = await _echo_server()
    channel = make_channel(f"127.0.0.1:{server.port}", lambda: _bearer().split(" ", 1)[1])
    try:
        call = channel.unary_unary(
            "/ecomops.unit.v1.Echo/Echo",
            request_serializer=struct_pb2.Struct.SerializeToString,
            response_deserializer=struct_pb2.Struct.FromString,
        )
        with provider.get_tracer("t").start_as_current_span("caller") as caller:
            await call(struct_pb2.Struct(), timeout=5)
    finally:
        await channel.close()
        await server.stop(0)
    caller_trace = format(caller.get_span_context().trace_id, "032x")
    assert seen["trace_id"] == caller_trace  # the server span continued the caller's trace
    assert _lines(access)[0]["trace_id"] == caller_trace


async def test_without_an_exporter_only_a_sampled_caller_gets_a_recorded_rest_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pure ASGI server span (no exporter): it continues the caller's trace, records
    only what the caller sampled, names it by the route template and leaves probes alone."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._sampler({}, exporting=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer_provider", lambda: provider)
    assert not tracing.exporting()
    app, seen = _app()
    unsampled = TRACEPARENT[:-2] + "00"
    async with _client(app) as client:
        for traceparent in (TRACEPARENT, unsampled):
            resp = await client.get(
                "/v1/orders/o-1",
                headers={"Authorization": _bearer(), "traceparent": traceparent},
            )
            assert resp.status_code == 200
        assert seen["trace_id"] == TRACE_ID  # the unsampled caller's trace goes on too
        assert (await client.get("/healthz")).status_code == 200
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /v1/orders/{order_id}" and span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
