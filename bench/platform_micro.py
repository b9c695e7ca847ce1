"""Platform micro-benchmarks: what every request of every service pays in the shared modules.

- ``asgi``: the REST app of ``ecomops_platform.rest.create_app`` (every middleware, the error
  handlers, a JSON response) called directly as an ASGI app, without a server or a client, so
  that the figure is the platform's own CPU per request: a GET answering a small JSON document
  and a POST with a JSON body (screened, validated). Tracing is configured as the runtime does
  (``configure_tracing``, from the ``OTEL_*`` environment): unset, no export (non-recording
  spans); ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, every request's span exported there.
- ``grpc``: a unary call through the platform's gRPC server (``GrpcServer``: access log,
  tracing, auth, screen) from a platform channel (``make_channel``: token, tracing), both in
  this process over loopback: CPU per call of client and server together. Tracing as ``asgi``.
- ``uow``: units of work against PostgreSQL (``ORDER_DATABASE_URL``'s server, a probe database
  of its own), each running one statement: wall time per unit of work and statements per unit
  of work, and server transactions per unit of work (``pg_stat_database`` deltas; a pool
  pre-ping is a transaction of its own).
- ``quiet``: statements per second that an idle relay costs its database (``pg_stat_database``
  tup_returned / xact_commit deltas over a quiet window), polling vs woken.

- ``relay``: the outbox relay draining a backlog of 5,000 rows from the probe database to Kafka
  (``ECOMOPS_KAFKA_BOOTSTRAP``), beside raw aiokafka produce of the same events with the same
  producer settings in the same process, alternating; ``relay profile`` prints a cProfile of one
  drain instead.

- ``serve PORT LOOP HTTP``: the same app in uvicorn (``asyncio``/``uvloop``, ``h11``/``httptools``)
  for vegeta: ``bench/serve_compare.sh`` alternates the two configurations.

Run with the dev stack env exported: ``python -m bench.platform_micro asgi|uow|quiet``.
Figures on a shared machine are loaded: print the load average beside them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from decimal import Decimal
from typing import Any

import asyncpg
import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import create_async_engine

from ecomops_platform.auth import TokenVerifier
from ecomops_platform.db import Database, UnitOfWork, outbox_table, platform_metadata
from ecomops_platform.rest import RequestModel
from ecomops_platform.settings import CommonSettings

DB_NAME = "ecomops_probe_platform"


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- asgi ------------------------------------------------------------------------------------


class _Body(RequestModel):
    sku: str
    quantity: int
    note: str | None = None


def _app() -> Any:
    from ecomops_platform.rest import create_app

    router = APIRouter()

    @router.get("/v1/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, Any]:
        return {"id": item_id, "price": str(Decimal("12.50")), "tags": ["a", "b"], "stock": 7}

    @router.post("/v1/items")
    async def post_item(body: _Body) -> dict[str, Any]:
        return {"sku": body.sku, "quantity": body.quantity, "total": str(Decimal("1.10"))}

    async def ready() -> dict[str, Any]:
        return {"ready": True}

    return create_app(
        service="micro",
        title="micro",
        description="micro",
        version="1",
        verifier=TokenVerifier(CommonSettings()),
        readiness=ready,
        routers=[router],
        max_body_bytes=1 << 20,
        rate_limit_per_minute=10**9,
    )


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> int:
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def bench_asgi(n: int = 4000) -> None:
    from ecomops_platform.tracing import configure_tracing, exporting, flush_tracing

    configure_tracing("micro")
    print(f"asgi: spans {'exported' if exporting() else 'not exported'}")
    app = _app()
    body = b'{"sku": "SKU-1", "quantity": 3, "note": "gift wrap"}'
    for _ in range(200):  # warm up
        assert await _call(app, "GET", "/v1/items/abc") == 200
        assert await _call(app, "POST", "/v1/items", body) == 200
    for label, method, path, payload in (
        ("GET /v1/items/{id}", "GET", "/v1/items/abc", b""),
        ("POST /v1/items", "POST", "/v1/items", body),
    ):
        started = time.perf_counter()
        cpu = time.process_time()
        for _ in range(n):
            await _call(app, method, path, payload)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        print(
            f"asgi {label}: {n} requests, {wall / n * 1e6:.0f} us/request wall, "
            f"{cpu / n * 1e6:.0f} us/request CPU ({_load()})"
        )
    flush_tracing()


# --- grpc ------------------------------------------------------------------------------------


async def bench_grpc(n: int = 2000) -> None:
    import grpc
    from google.protobuf import struct_pb2

    from ecomops_platform.auth import Role
    from ecomops_platform.grpc_client import make_channel
    from ecomops_platform.grpc_server import GrpcServer
    from ecomops_platform.tracing import configure_tracing, exporting, flush_tracing
    from ecomops_testing import bearer

    configure_tracing("micro")
    print(f"grpc: spans {'exported' if exporting() else 'not exported'}")

    async def echo(request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
        return request

    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            echo,
            request_deserializer=struct_pb2.Struct.FromString,
            response_serializer=struct_pb2.Struct.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ecomops.micro.v1.Echo", {"Echo": handler}),)
        )

    settings = CommonSettings()
    server = GrpcServer(
        service="micro",
        verifier=TokenVerifier(settings),
        registrars=[register],
        service_names=["ecomops.micro.v1.Echo"],
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    token = bearer("micro", Role.SERVICE)["Authorization"].split(" ", 1)[1]
    channel = make_channel(f"127.0.0.1:{server.port}", lambda: token, settings=settings)
    call = channel.unary_unary(
        "/ecomops.micro.v1.Echo/Echo",
        request_serializer=struct_pb2.Struct.SerializeToString,
        response_deserializer=struct_pb2.Struct.FromString,
    )
    message = struct_pb2.Struct()
    message.update({"sku": "SKU-1", "quantity": 3})
    try:
        for _ in range(200):  # warm up
            await call(message, timeout=5)
        started = time.perf_counter()
        cpu = time.process_time()
        for _ in range(n):
            await call(message, timeout=5)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        print(
            f"grpc Echo: {n} calls, {wall / n * 1e6:.0f} us/call wall, "
            f"{cpu / n * 1e6:.0f} us/call CPU, client and server ({_load()})"
        )
    finally:
        await channel.close()
        await server.stop(0)
        flush_tracing()


# --- uow -------------------------------------------------------------------------------------


def _url() -> str:
    return os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0] + "/" + DB_NAME


def _admin_dsn() -> str:
    return os.environ["ORDER_DATABASE_URL"].replace("+asyncpg", "")


async def prepare_probe_db() -> None:
    admin = await asyncpg.connect(_admin_dsn())
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    engine = create_async_engine(_url())
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)
    await engine.dispose()


async def _db_counters() -> tuple[int, int]:
    """(transactions committed + rolled back, rows returned) of the probe database."""
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        row = await admin.fetchrow(
            "SELECT xact_commit + xact_rollback AS xacts, tup_returned "
            "FROM pg_stat_database WHERE datname = $1",
            DB_NAME,
        )
        assert row is not None
        return int(row["xacts"]), int(row["tup_returned"])
    finally:
        await admin.close()


async def _units_of_work(n: int, *, pre_ping: bool = False) -> float:
    db = Database(_url(), pool_size=4, max_overflow=0)
    if pre_ping:  # the former configuration, for a before/after in the same conditions
        db.engine.sync_engine.pool._pre_ping = True
    try:
        started = time.perf_counter()
        for _ in range(n):
            async with UnitOfWork(db, "probe") as uow:
                await uow.session.execute(sa.select(sa.literal(1)))
                await uow.commit()
        return time.perf_counter() - started
    finally:
        # Backends flush their statistics when they exit: close them before reading counters.
        await db.dispose()


async def bench_uow(n: int = 2000) -> None:
    """Alternating runs with and without the pool pre-ping, in the same conditions."""
    await prepare_probe_db()
    await _units_of_work(50)
    for _round in range(2):
        for pre_ping in (True, False):
            await asyncio.sleep(0.5)
            before = await _db_counters()
            wall = await _units_of_work(n, pre_ping=pre_ping)
            await asyncio.sleep(0.5)
            after = await _db_counters()
            print(
                f"uow pre_ping={pre_ping}: {n} units of work (one SELECT, commit), "
                f"{wall / n * 1e3:.3f} ms each, {(after[0] - before[0]) / n:.2f} server "
                f"transactions per unit of work ({_load()})"
            )


async def _event_writes(writers: int, each: int, *, notify: bool) -> float:
    from ecomops.common.v1 import common_pb2

    db = Database(_url(), pool_size=writers, max_overflow=0, outbox_notify=notify)
    try:

        async def writer() -> None:
            for _ in range(each):
                async with UnitOfWork(db, "probe") as uow:
                    uow.add_event(common_pb2.Money(amount_minor=1, currency="EUR"), key="k")
                    await uow.commit()

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return writers * each / (time.perf_counter() - started)
    finally:
        await db.dispose()


async def bench_notify(writers: int = 8, each: int = 250) -> None:
    """Commits that write one outbox row, with and without NOTIFY in the transaction
    (PostgreSQL serialises the commits of notifying transactions), alternating."""
    await prepare_probe_db()
    for _round in range(2):
        for notify in (True, False):
            rate = await _event_writes(writers, each, notify=notify)
            print(
                f"outbox commits notify={notify}: {rate:.0f} commits/s, {writers} writers "
                f"({_load()})"
            )
    async with create_async_engine(_url()).begin() as conn:
        await conn.execute(sa.delete(outbox_table))


# --- quiet -----------------------------------------------------------------------------------


async def _quiet_run(seconds: float, *, former: bool) -> float:
    """Transactions per second an idle relay costs its database. ``former``: the configuration
    before issue 14 (a 100 ms poll, pool pre-ping, no LISTEN)."""
    from ecomops_platform.outbox import OutboxRelay

    db = Database(_url(), pool_size=2, max_overflow=0)
    if former:
        db.engine.sync_engine.pool._pre_ping = True
    relay = OutboxRelay(
        db,
        producer=None,  # type: ignore[arg-type]  # nothing to publish on a quiet database
        service="probe",
        poll_interval=0.1 if former else 5.0,
        listen=not former,
    )
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(1.0)
    before = await _db_counters()
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await db.dispose()  # backends flush their statistics as they exit
    await asyncio.sleep(0.5)
    after = await _db_counters()
    return (after[0] - before[0]) / seconds


async def bench_quiet(seconds: float = 15.0) -> None:
    """An idle outbox relay against the probe database, Kafka untouched; alternating runs."""
    await prepare_probe_db()
    async with create_async_engine(_url()).begin() as conn:
        await conn.execute(sa.delete(outbox_table).where(outbox_table.c.published_at.is_(None)))
    for _round in range(2):
        for former in (True, False):
            rate = await _quiet_run(seconds, former=former)
            label = "former (100 ms poll, pre-ping)" if former else "woken (5 s safety net)"
            print(
                f"quiet relay {label}: {rate:.2f} transactions/s on its database over "
                f"{seconds:.0f} s ({_load()})"
            )


# --- relay ------------------------------------------------------------------------------------

RELAY_TOPIC = "ecomops.bench.v1.relay"
_RELAY_PAYLOAD = b"\x0a\x24" + b"o" * 36 + b"\x12\x40" + b"x" * 64


async def _fill_outbox(count: int) -> None:
    conn = await asyncpg.connect(_admin_dsn().rsplit("/", 1)[0] + "/" + DB_NAME)
    try:
        await conn.execute("DELETE FROM outbox")
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, event_type, payload, headers, created_at) "
            "VALUES (gen_random_uuid(), $1, $2, 'ecomops.bench.v1.Relayed', $3, $4::json, now())",
            [
                (RELAY_TOPIC, f"o{i % 500}", _RELAY_PAYLOAD, f'{{"ce_id": "{i:036d}"}}')
                for i in range(count)
            ],
        )
    finally:
        await conn.close()


async def _relay_drain(count: int, *, profile: bool = False) -> float:
    from ecomops_platform.outbox import OutboxRelay
    from ecomops_platform.producer import ResilientProducer

    await _fill_outbox(count)
    db = Database(_url(), pool_size=2, max_overflow=0)
    from ecomops_platform.events import make_producer

    settings = CommonSettings()
    producer = ResilientProducer(lambda: make_producer(settings, "bench-relay"), service="probe")
    await producer.start()
    relay = OutboxRelay(db, producer, "probe", listen=False)
    try:
        await asyncio.gather(await producer.send(RELAY_TOPIC, value=b"warm", key=b"w", headers=[]))
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        while await relay.publish_batch():
            pass
        elapsed = time.perf_counter() - started
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return count / elapsed
    finally:
        await producer.stop()
        await db.dispose()


async def _raw_produce(count: int) -> float:
    from ecomops_platform.events import make_producer

    producer = make_producer(CommonSettings(), "bench-raw")
    await producer.start()
    try:
        headers = [("ce_id", b"x" * 36)]
        await producer.send_and_wait(RELAY_TOPIC, value=b"warm", key=b"warm")
        started = time.perf_counter()
        for lo in range(0, count, 1000):
            futures = [
                await producer.send(
                    RELAY_TOPIC, value=_RELAY_PAYLOAD, key=f"o{i % 500}".encode(), headers=headers
                )
                for i in range(lo, min(count, lo + 1000))
            ]
            await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def bench_relay(count: int = 5000) -> None:
    """Relay drain vs raw produce, alternating, in one process (same Kafka client library)."""
    from ecomops_platform.events import create_topics

    await prepare_probe_db()
    await create_topics(CommonSettings(), [RELAY_TOPIC])
    if sys.argv[2:3] == ["profile"]:
        await _relay_drain(count, profile=True)
        return
    for _round in range(3):
        raw = await _raw_produce(count)
        relayed = await _relay_drain(count)
        print(
            f"relay {relayed:.0f} events/s, raw produce {raw:.0f} events/s, ratio "
            f"{relayed / raw:.2f} ({count} events; {_load()})"
        )


# --- serve ------------------------------------------------------------------------------------


def serve(port: int, loop: str, http: str) -> None:
    """The micro app in uvicorn on ``loop`` (asyncio|uvloop) with ``http`` (h11|httptools), as
    the runtime configures it, for an external generator (vegeta) to load."""
    import uvicorn

    config = uvicorn.Config(
        _app(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        http=http,
    )
    server = uvicorn.Server(config)
    if loop == "uvloop":
        import uvloop

        uvloop.run(server.serve())
    else:
        asyncio.run(server.serve())


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    what = sys.argv[1:] or ["asgi", "uow", "quiet"]
    for item in what:
        benches = {"asgi": bench_asgi, "uow": bench_uow, "quiet": bench_quiet}
        benches["notify"] = bench_notify
        benches["relay"] = bench_relay
        benches["grpc"] = bench_grpc
        if item == "profile":
            continue
        asyncio.run(benches[item]())


if __name__ == "__main__":
    main()
