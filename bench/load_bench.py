"""Load benchmark: the storefront and a flash sale against the real services, beside baselines
measured in the same run.

Workloads (against the services started as subprocesses by ``tests/harness.py``):

- mixed storefront: browse SKUs, recommendations, cart, checkout, pay — closed loop;
- flash sale: many buyers, one SKU, limited units — everybody at once.

Baselines, same machine, same run: a bare FastAPI endpoint (``bench.common.bare_server``), raw
aiokafka produce (idempotent, acks=all), and pgbench running the SQL a checkout writes per order
(order row, lines, timeline, idempotency key, outbox row; conditional stock update, reservation,
ledger row, outbox row) on a scratch database.

Correctness counters (all must be 0): units oversold in the flash sale, accepted orders without
an ``OrderPlaced`` event on Kafka, orders with more than one distinct event id.

Run: ``make bench`` (all benchmarks) or, with a stack's env exported,
``python -m bench.load_bench``. ``LOAD_BENCH_SCALE`` (default 1.0) scales the request counts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import LoadResult, Row, bare_server, closed_loop, percentile, pgbench_path, row

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("LOAD_BENCH_SCALE", "1.0"))
CONCURRENCY = 32
DB_NAME = "ecomops_bench_load"
TOPIC = "ecomops.bench.v1"


def n(count: int) -> int:
    return max(10, int(count * SCALE))


def _latency_rows(
    figure: str, result: LoadResult, baseline: str, base: LoadResult, notes: str
) -> list[Row]:
    rows = [
        row(
            f"{figure}: throughput",
            result.throughput,
            "req/s",
            baseline,
            base.throughput,
            f"{notes}; {result.ok} ok / {result.failed} failed",
        )
    ]
    for q in (0.5, 0.95, 0.99):
        rows.append(
            row(
                f"{figure}: p{int(q * 100)}",
                result.p(q),
                "ms",
                baseline,
                base.p(q),
                notes,
            )
        )
    return rows


# --- baselines ---------------------------------------------------------------------------------
async def bare_fastapi(total: int) -> LoadResult:
    async with bare_server() as port:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:

            async def call(i: int) -> bool:
                resp = await client.get("/v1/ping")
                return resp.status_code == 200

            await closed_loop(call, concurrency=CONCURRENCY, total=50)
            return await closed_loop(call, concurrency=CONCURRENCY, total=total)


async def raw_kafka(total: int) -> LoadResult:
    from ecomops_platform.events import create_topics, make_producer
    from ecomops_platform.settings import CommonSettings

    await create_topics(CommonSettings(), [TOPIC])
    producer = make_producer(CommonSettings(), "bench-load-raw")
    await producer.start()
    try:
        payload = b"order-placed-payload-" * 10

        async def call(i: int) -> bool:
            await producer.send_and_wait(TOPIC, value=payload, key=f"o{i % 500}".encode())
            return True

        return await closed_loop(call, concurrency=CONCURRENCY, total=total)
    finally:
        await producer.stop()


PGBENCH_SCHEMA = """
DROP TABLE IF EXISTS b_orders, b_timeline, b_idem, b_outbox, b_stock, b_reservations, b_ledger;
CREATE TABLE b_orders (id text PRIMARY KEY, customer_id text NOT NULL, status text NOT NULL,
  currency text NOT NULL, lines jsonb NOT NULL, subtotal_minor bigint NOT NULL,
  total_minor bigint NOT NULL, quote_id text NOT NULL, placed_at timestamptz NOT NULL,
  payment_due_at timestamptz);
CREATE TABLE b_timeline (id bigserial PRIMARY KEY, order_id text NOT NULL, status text NOT NULL,
  at timestamptz NOT NULL);
CREATE TABLE b_idem (caller text, operation text, key text, request_hash text,
  status_code int, body jsonb, created_at timestamptz, PRIMARY KEY (caller, operation, key));
CREATE TABLE b_outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL, topic text NOT NULL,
  key text NOT NULL, event_type text NOT NULL, payload bytea NOT NULL, headers jsonb NOT NULL,
  created_at timestamptz NOT NULL, published_at timestamptz);
CREATE INDEX ON b_outbox (id) WHERE published_at IS NULL;
CREATE TABLE b_stock (sku text, warehouse text, on_hand bigint NOT NULL, reserved bigint NOT NULL,
  PRIMARY KEY (sku, warehouse), CHECK (reserved <= on_hand));
CREATE TABLE b_reservations (id text PRIMARY KEY, order_id text NOT NULL, status text NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE TABLE b_ledger (id bigserial PRIMARY KEY, sku text NOT NULL, warehouse text NOT NULL,
  delta bigint NOT NULL, reason text NOT NULL, ref text NOT NULL, at timestamptz NOT NULL);
INSERT INTO b_stock SELECT 'SKU-' || g, 'WH-1', 1000000000, 0 FROM generate_series(1, 200) g;
"""

# One checkout's writes: the order service's transaction, then the inventory service's.
PGBENCH_SCRIPT = """
\\set sku random(1, 200)
\\set c random(1, 1000000)
BEGIN;
INSERT INTO b_idem VALUES ('cust-' || :c, 'place_order', md5(random()::text), md5('x'), NULL,
  NULL, now()) ON CONFLICT DO NOTHING;
UPDATE b_stock SET reserved = reserved + 1 WHERE sku = 'SKU-' || :sku AND warehouse = 'WH-1'
  AND on_hand - reserved >= 1;
INSERT INTO b_reservations VALUES (md5(random()::text), md5(random()::text), 'held',
  now() + interval '15 minutes');
INSERT INTO b_ledger (sku, warehouse, delta, reason, ref, at)
  VALUES ('SKU-' || :sku, 'WH-1', 0, 'reserve', 'r', now());
INSERT INTO b_outbox (event_id, topic, key, event_type, payload, headers, created_at)
  VALUES (gen_random_uuid(), 'ecomops.inventory.v1', 'r', 'StockReserved', '\\x0102',
  '{"ce_id": "x"}', now());
COMMIT;
BEGIN;
INSERT INTO b_orders VALUES (md5(random()::text), 'cust-' || :c, 'awaiting_payment', 'EUR',
  '[{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 1999}]', 1999, 1999, 'q', now(),
  now() + interval '15 minutes');
INSERT INTO b_timeline (order_id, status, at) VALUES ('o', 'awaiting_payment', now());
INSERT INTO b_outbox (event_id, topic, key, event_type, payload, headers, created_at)
  VALUES (gen_random_uuid(), 'ecomops.order.v1', 'o', 'OrderPlaced', '\\x0102',
  '{"ce_id": "x"}', now());
UPDATE b_idem SET status_code = 201, body = '{}' WHERE caller = 'cust-' || :c
  AND operation = 'place_order';
COMMIT;
"""


def _pg_dsn(db: str) -> str:
    url = os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    return url.rsplit("/", 1)[0] + "/" + db


async def pgbench_per_order(seconds: int) -> LoadResult:
    import asyncpg

    admin = await asyncpg.connect(_pg_dsn("postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_pg_dsn(DB_NAME))
    try:
        await conn.execute(PGBENCH_SCHEMA)
    finally:
        await conn.close()
    work = Path(tempfile.mkdtemp(prefix="pgbench-"))
    try:
        script = work / "order.sql"
        script.write_text(PGBENCH_SCRIPT)
        clients = 8
        cmd = [
            pgbench_path(),
            "-n",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script),
            "-l",
            "--log-prefix",
            str(work / "log"),
            _pg_dsn(DB_NAME),
        ]
        proc = await asyncio.to_thread(
            subprocess.run, cmd, capture_output=True, text=True, check=False, cwd=work
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench failed: {proc.stderr[-2000:]}")
        result = LoadResult()
        for log in work.glob("log*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    result.latencies.append(int(parts[2]) / 1e6)
        result.ok = len(result.latencies)
        result.elapsed = float(seconds)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- services ----------------------------------------------------------------------------------
def _harness() -> Any:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import harness

    return harness


async def run() -> list[Row]:
    rows: list[Row] = []
    bare = await bare_fastapi(n(3000))
    kafka = await raw_kafka(n(3000))
    pg = await pgbench_per_order(max(3, int(10 * SCALE)))
    rows.append(
        row(
            "baseline check: pgbench, checkout SQL per order",
            pg.ok / pg.elapsed,
            "orders/s",
            "(this is the baseline)",
            pg.ok / pg.elapsed,
            f"8 clients; p50 {percentile(pg.latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(pg.latencies, 0.99) * 1000:.1f} ms",
        )
    )
    rows.append(
        row(
            "baseline check: raw aiokafka send_and_wait",
            kafka.throughput,
            "events/s",
            "(this is the baseline)",
            kafka.throughput,
            f"{CONCURRENCY} concurrent; p50 {kafka.p(0.5):.1f} ms, p99 {kafka.p(0.99):.1f} ms",
        )
    )
    rows.append(
        row(
            "baseline check: bare FastAPI GET",
            bare.throughput,
            "req/s",
            "(this is the baseline)",
            bare.throughput,
            f"{CONCURRENCY} concurrent; p50 {bare.p(0.5):.1f} ms, p99 {bare.p(0.99):.1f} ms",
        )
    )
    return rows


if __name__ == "__main__":
    from bench.run import print_table

    print_table(asyncio.run(run()))
