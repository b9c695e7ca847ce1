"""Load benchmark: the storefront and a flash sale against the real services, beside baselines
measured in the same run.

Workloads (against the services started as subprocesses by ``tests/harness.py``):

- mixed storefront: browse SKUs, recommendations, cart, checkout, pay — closed loop;
- flash sale: many buyers, one SKU, limited units — everybody at once.

Baselines, same machine, same run: a bare FastAPI endpoint (``bench.common.bare_app`` under
uvicorn in its own process, as the services run), raw
aiokafka produce (idempotent, acks=all), and pgbench running the SQL a checkout writes per order
(order row, lines, timeline, idempotency key, outbox row; conditional stock update, reservation,
ledger row, outbox row) on a scratch database.

Correctness counters (all must be 0): units oversold in the flash sale, accepted orders without
an ``OrderPlaced`` event on Kafka, orders with more than one distinct event id.

Run: ``make bench`` (all benchmarks) or, with a stack's env exported,
``python -m bench.load_bench`` (exits 1 when a correctness counter is not 0). Knobs:
``LOAD_BENCH_SCALE`` (default 1.0) scales every count; ``LOAD_BENCH_SESSIONS`` (80),
``LOAD_BENCH_FLASH_BUYERS`` (2000) and ``LOAD_BENCH_FLASH_UNITS`` (300) set the workloads.
``PROOF_PORT_BASE`` moves the services' ports (see ``tests/harness.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import LoadResult, Row, closed_loop, percentile, pgbench_path, row

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("LOAD_BENCH_SCALE", "1.0"))
CONCURRENCY = 32
DB_NAME = "ecomops_bench_load"
TOPIC = "ecomops.bench.v1"
SEED = 20261125
CATEGORY = "loadbench"
CATALOGUE = 40
MIX_SESSIONS = max(10, int(int(os.environ.get("LOAD_BENCH_SESSIONS", "80")) * SCALE))
MIX_CONCURRENCY = 16
CHECKOUT_SHARE = 0.7  # sessions that check out
PAY_SHARE = 0.9  # checkouts that pay
FLASH_BUYERS = max(20, int(int(os.environ.get("LOAD_BENCH_FLASH_BUYERS", "2000")) * SCALE))
FLASH_UNITS = max(5, int(int(os.environ.get("LOAD_BENCH_FLASH_UNITS", "300")) * SCALE))
FLASH_CONCURRENCY = 64


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
BARE_SERVER = (
    "import sys, uvicorn; from bench.common import bare_app; "
    "uvicorn.run(bare_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', "
    "access_log=False)"
)


@contextlib.asynccontextmanager
async def bare_subprocess() -> AsyncIterator[int]:
    """The bare FastAPI app under uvicorn in its own process, like the services."""
    from ecomops_testing import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=2) as probe:
            for _ in range(200):
                if proc.poll() is not None:
                    raise RuntimeError("the bare FastAPI server exited")
                try:
                    if (await probe.get(f"http://127.0.0.1:{port}/v1/ping")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the bare FastAPI server did not start")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def bare_fastapi(total: int) -> LoadResult:
    async with bare_subprocess() as port:
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
    # Off the test ports (18001-18005), so `make bench` never collides with a test run.
    os.environ.setdefault("PROOF_PORT_BASE", "38000")
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import harness

    return harness


def _fixtures() -> Any:
    _harness()
    import proof_fixtures

    return proof_fixtures


def _auth(subject: str, role: str) -> dict[str, str]:
    from ecomops_testing import token

    return {"Authorization": f"Bearer {token(subject, role, ttl=3600)}"}


@dataclass
class Steps:
    """Latency and outcome of every request, per step of the storefront."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ok: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    samples: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        step: str,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        expect: tuple[int, ...],
        **kwargs: Any,
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            resp = await client.request(method, url, **kwargs)
        except httpx.HTTPError:
            self.latencies[step].append(time.perf_counter() - started)
            self.failed[step] += 1
            self.statuses[step][0] += 1
            return None
        self.latencies[step].append(time.perf_counter() - started)
        self.statuses[step][resp.status_code] += 1
        if resp.status_code in expect:
            self.ok[step] += 1
            return resp
        self.failed[step] += 1
        # One sample body per unexpected (step, status): what the figures' notes cite.
        self.samples.setdefault(
            f"{step} {resp.status_code}", " ".join(resp.text[:200].replace("|", "/").split())
        )
        return None

    def result(self, steps: tuple[str, ...] | None, elapsed: float) -> LoadResult:
        chosen = steps or tuple(self.latencies)
        out = LoadResult(elapsed=elapsed)
        for s in chosen:
            out.latencies.extend(self.latencies.get(s, []))
            out.ok += self.ok.get(s, 0)
            out.failed += self.failed.get(s, 0)
        return out


async def _seed(shop: Any, skus: list[str], units: int, flash: str, flash_units: int) -> None:
    sem = asyncio.Semaphore(8)

    async def one(sku: str, stock: int, price: int) -> None:
        async with sem:
            await shop.seed_sku(
                sku, units=stock, price_minor=price, cost_minor=price // 3, category=CATEGORY
            )

    rng = random.Random(SEED)
    await asyncio.gather(
        *(one(s, units, rng.randrange(990, 9990, 100)) for s in skus),
        one(flash, flash_units, 4900),
    )


async def mixed_storefront(
    client: httpx.AsyncClient, stack: Any, skus: list[str], tag: str, sessions: int
) -> tuple[Steps, float, list[str]]:
    """Closed-loop shopper sessions with a fixed seed: browse, price, behaviour events,
    recommendations, a cart, then (most of the time) checkout and (most of those) payment."""
    fx = _fixtures()
    steps = Steps()
    orders: list[str] = []
    inv, prc = stack.url("inventory"), stack.url("pricing")
    rec, order = stack.url("recommendation"), stack.url("order")

    async def session(i: int) -> bool:
        rng = random.Random(SEED * 1000 + i)
        cust = f"lb-{tag}-c{i}"
        h = _auth(cust, "customer")
        await steps.call(
            "browse",
            client,
            "GET",
            f"{inv}/v1/skus",
            (200,),
            headers=h,
            params={"category": CATEGORY, "limit": 50},
        )
        viewed = rng.sample(skus, rng.randint(2, 4))
        for sku in viewed:
            await steps.call(
                "price",
                client,
                "GET",
                f"{prc}/v1/prices/{sku}",
                (200,),
                headers=h,
                params={"currency": "EUR"},
            )
        now = datetime.now(UTC).isoformat()
        events = [
            {
                "type": "view",
                "sku": s,
                "customer_id": cust,
                "session_id": f"s-{cust}",
                "occurred_at": now,
            }
            for s in viewed
        ]
        await steps.call(
            "behaviour",
            client,
            "POST",
            f"{rec}/v1/behavior-events",
            (202,),
            headers=h,
            json={"events": events},
        )
        await steps.call(
            "recommend",
            client,
            "GET",
            f"{rec}/v1/recommendations/customers/{cust}",
            (200,),
            headers=h,
            params={"limit": 5},
        )
        await steps.call(
            "recommend",
            client,
            "GET",
            f"{rec}/v1/recommendations/skus/{viewed[0]}/similar",
            (200,),
            headers=h,
            params={"limit": 5},
        )
        resp = await steps.call(
            "cart",
            client,
            "POST",
            f"{order}/v1/carts",
            (201,),
            headers={**h, "Idempotency-Key": uuid.uuid4().hex},
            json={"currency": "EUR"},
        )
        if resp is None:
            return False
        cart = resp.json()["cart_id"]
        for sku in viewed[: rng.randint(1, 3)]:
            await steps.call(
                "cart",
                client,
                "PUT",
                f"{order}/v1/carts/{cart}/items/{sku}",
                (200,),
                headers=h,
                json={"quantity": rng.randint(1, 2)},
            )
        await steps.call("cart", client, "GET", f"{order}/v1/carts/{cart}", (200,), headers=h)
        if rng.random() >= CHECKOUT_SHARE:
            return True
        resp = await steps.call(
            "checkout",
            client,
            "POST",
            f"{order}/v1/carts/{cart}/checkout",
            (201,),
            headers={**h, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "shipping_address": fx.ADDRESS,
                "client": {"ip": fx._ip_of(cust), "device_id": f"dev-{cust}"},
            },
            timeout=60,
        )
        if resp is None:
            return False
        placed = resp.json()
        orders.append(placed["order_id"])
        if placed.get("status") != "awaiting_payment" or rng.random() >= PAY_SHARE:
            return True
        paid = await steps.call(
            "pay",
            client,
            "POST",
            f"{order}/v1/orders/{placed['order_id']}/payments",
            (200, 201),
            headers={**h, "Idempotency-Key": uuid.uuid4().hex},
            json={"payment_token": "tok_ok_bench"},
            timeout=60,
        )
        return paid is not None

    result = await closed_loop(session, concurrency=MIX_CONCURRENCY, total=sessions)
    return steps, result.elapsed, orders


async def flash_sale(
    client: httpx.AsyncClient, stack: Any, sku: str, tag: str, buyers: int
) -> tuple[Steps, float, list[str], float]:
    """``buyers`` customers try to buy one unit of ``sku`` at once; the accepted ones pay."""
    fx = _fixtures()
    steps = Steps()
    accepted: list[tuple[str, str]] = []
    order = stack.url("order")
    gate = asyncio.Event()
    sem = asyncio.Semaphore(FLASH_CONCURRENCY)

    async def buyer(i: int) -> None:
        cust = f"lb-{tag}-f{i}"
        h = _auth(cust, "customer")
        body = {
            "currency": "EUR",
            "lines": [{"sku": sku, "quantity": 1}],
            "shipping_address": fx.ADDRESS,
            "client": {"ip": fx._ip_of(cust), "device_id": f"dev-{cust}"},
        }
        await gate.wait()
        async with sem:
            resp = await steps.call(
                "flash-order",
                client,
                "POST",
                f"{order}/v1/orders",
                (201,),
                headers={**h, "Idempotency-Key": uuid.uuid4().hex},
                json=body,
                timeout=120,
            )
        if resp is not None:
            accepted.append((cust, resp.json()["order_id"]))

    tasks = [asyncio.create_task(buyer(i)) for i in range(buyers)]
    started = time.perf_counter()
    gate.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started

    pay_sem = asyncio.Semaphore(16)

    async def pay(cust: str, order_id: str) -> None:
        async with pay_sem:
            await steps.call(
                "flash-pay",
                client,
                "POST",
                f"{order}/v1/orders/{order_id}/payments",
                (200, 201),
                headers={**_auth(cust, "customer"), "Idempotency-Key": uuid.uuid4().hex},
                json={"payment_token": "tok_ok_bench"},
                timeout=60,
            )

    pay_started = time.perf_counter()
    await asyncio.gather(*(pay(c, o) for c, o in accepted))
    return steps, elapsed, [o for _, o in accepted], time.perf_counter() - pay_started


async def sold_units(sku: str) -> dict[str, int]:
    """Units of ``sku`` in committed and held reservations, and the stock row, from inventory."""
    import asyncpg

    conn = await asyncpg.connect(_fixtures().pg_dsn("inventory"))
    try:
        by_status = {
            r["status"]: int(r["units"])
            for r in await conn.fetch(
                """SELECT r.status, sum(a.quantity) AS units FROM reservation_allocations a
                   JOIN reservations r USING (reservation_id) WHERE a.sku = $1
                   GROUP BY r.status""",
                sku,
            )
        }
        stock = await conn.fetchrow(
            "SELECT sum(on_hand) AS on_hand, sum(reserved) AS reserved FROM stock WHERE sku = $1",
            sku,
        )
    finally:
        await conn.close()
    return {
        "committed": by_status.get("committed", 0),
        "held": by_status.get("held", 0),
        "on_hand": int(stock["on_hand"] or 0),
        "reserved": int(stock["reserved"] or 0),
    }


def _statuses(steps: Steps, step: str) -> str:
    return ", ".join(f"{code or 'error'}: {k}" for code, k in sorted(steps.statuses[step].items()))


async def services_workloads() -> dict[str, Any]:
    harness = _harness()
    fx = _fixtures()
    stack = harness.Stack(
        extra_env={"ORDER_PAYMENT_TIMEOUT": "900", "ORDER_RESERVATION_MARGIN": "300"}
    )
    await asyncio.to_thread(stack.start)
    try:
        tag = uuid.uuid4().hex[:6]
        limits = httpx.Limits(max_connections=FLASH_CONCURRENCY + 16, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            shop = fx.Shop(client, stack)
            skus = [f"LB-{tag}-{k:03d}" for k in range(CATALOGUE)]
            flash = f"LB-{tag}-FLASH"
            await _seed(shop, skus, 1_000_000, flash, FLASH_UNITS)
            # Warm every path once (connections, caches) before measuring.
            await mixed_storefront(client, stack, skus, tag + "w", 4)
            mix_steps, mix_elapsed, mix_orders = await mixed_storefront(
                client, stack, skus, tag, MIX_SESSIONS
            )
            flash_steps, flash_elapsed, flash_orders, pay_elapsed = await flash_sale(
                client, stack, flash, tag, FLASH_BUYERS
            )
        sold = await sold_units(flash)
        events = await fx.order_events_check(set(mix_orders) | set(flash_orders), timeout=90)
        ledger = await fx.stock_invariants([*skus, flash])
        return {
            "mix": (mix_steps, mix_elapsed, mix_orders),
            "flash": (flash_steps, flash_elapsed, flash_orders, pay_elapsed),
            "sold": sold,
            "events": events,
            "ledger": ledger,
        }
    finally:
        await asyncio.to_thread(stack.stop)


async def run() -> list[Row]:
    rows: list[Row] = []
    bare = await bare_fastapi(n(1500))
    kafka = await raw_kafka(n(3000))
    pg = await pgbench_per_order(max(3, int(10 * SCALE)))
    pg_result = LoadResult(ok=pg.ok, elapsed=pg.elapsed, latencies=pg.latencies)
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
            f"uvicorn subprocess, {CONCURRENCY} concurrent; p50 {bare.p(0.5):.1f} ms, "
            f"p99 {bare.p(0.99):.1f} ms",
        )
    )

    w = await services_workloads()
    mix_steps, mix_elapsed, mix_orders = w["mix"]
    every = mix_steps.result(None, mix_elapsed)
    rows += _latency_rows(
        "mixed storefront, every request",
        every,
        "bare FastAPI GET",
        bare,
        f"{MIX_SESSIONS} sessions (seed {SEED}), {MIX_CONCURRENCY} concurrent; "
        + "; ".join(f"{s} {len(v)}" for s, v in mix_steps.latencies.items()),
    )
    checkout = mix_steps.result(("checkout",), mix_elapsed)
    rows += _latency_rows(
        "mixed storefront, checkout",
        checkout,
        "pgbench checkout SQL",
        pg_result,
        f"orders/s over the whole mix; statuses {_statuses(mix_steps, 'checkout')}",
    )
    pay = mix_steps.result(("pay",), mix_elapsed)
    rows.append(
        row(
            "mixed storefront, pay: p50",
            pay.p(0.5),
            "ms",
            "pgbench checkout SQL",
            pg_result.p(0.5),
            f"p95 {pay.p(0.95):.0f} ms, p99 {pay.p(0.99):.0f} ms; "
            f"statuses {_statuses(mix_steps, 'pay')}",
        )
    )
    rows.append(
        row(
            "mixed storefront, recommendations: p95",
            mix_steps.result(("recommend",), 1).p(0.95),
            "ms",
            "bare FastAPI GET",
            bare.p(0.95),
            f"statuses {_statuses(mix_steps, 'recommend')}",
        )
    )

    flash_steps, flash_elapsed, flash_orders, pay_elapsed = w["flash"]
    answered = flash_steps.result(("flash-order",), flash_elapsed)
    answered.ok += answered.failed  # every answer counts (sold out is the right answer)
    answered.failed = flash_steps.statuses["flash-order"].get(0, 0) + sum(
        k for code, k in flash_steps.statuses["flash-order"].items() if code >= 500
    )
    answered.ok -= answered.failed
    rows += _latency_rows(
        "flash sale, order attempts answered",
        answered,
        "pgbench checkout SQL",
        pg_result,
        f"{FLASH_BUYERS} buyers, one SKU, {FLASH_UNITS} units, at most {FLASH_CONCURRENCY} in "
        f"flight; statuses {_statuses(flash_steps, 'flash-order')}",
    )
    sold = w["sold"]
    oversold = max(0, sold["committed"] + sold["held"] - FLASH_UNITS)
    rows.append(
        row(
            "correctness: flash sale units oversold",
            oversold,
            "units",
            "must be 0",
            0,
            f"committed {sold['committed']} + held {sold['held']} vs {FLASH_UNITS} units; "
            f"{len(flash_orders)} orders accepted, {flash_steps.ok['flash-pay']} paid "
            f"({_statuses(flash_steps, 'flash-pay')}) in {pay_elapsed:.1f}s; stock on_hand "
            f"{sold['on_hand']}, reserved {sold['reserved']}",
        )
    )
    over_accepted = max(0, len(flash_orders) - FLASH_UNITS)
    rows.append(
        row(
            "correctness: flash sale orders accepted beyond the units",
            over_accepted,
            "orders",
            "must be 0",
            0,
            f"{len(flash_orders)} accepted for {FLASH_UNITS} units",
        )
    )
    ev = w["events"]
    accepted = len(mix_orders) + len(flash_orders)
    rows.append(
        row(
            "correctness: accepted orders without OrderPlaced (lost)",
            len(ev["missing"]),
            "orders",
            "must be 0",
            0,
            f"{accepted} accepted orders (mix {len(mix_orders)}, flash {len(flash_orders)}); "
            f"distinct ce_id per order id on ecomops.order.v1; first: {ev['missing'][:3]}",
        )
    )
    rows.append(
        row(
            "correctness: orders with 2+ distinct OrderPlaced ce_ids (duplicated)",
            len(ev["doubled"]),
            "orders",
            "must be 0",
            0,
            f"same-ce_id redeliveries (allowed, at-least-once): {ev['redelivered']}; "
            f"first: {ev['doubled'][:3]}",
        )
    )
    rows.append(
        row(
            "correctness: stock ledger/reservation violations",
            len(w["ledger"]),
            "problems",
            "must be 0",
            0,
            "; ".join(w["ledger"][:3])
            or "ledger sum = on_hand, reserved = held allocations, no hold past expiry",
        )
    )
    for label, steps in (("mixed storefront", mix_steps), ("flash sale", flash_steps)):
        for key, body in steps.samples.items():
            if key.startswith("flash-order 409"):
                continue  # sold out: the expected answer
            rows.append(
                row(f"{label}: sample answer {key}", float("nan"), "", "", float("nan"), body)
            )
    return rows


if __name__ == "__main__":
    from bench.run import print_table

    results = asyncio.run(run())
    print_table(results)
    broken = [r for r in results if str(r["figure"]).startswith("correctness:") and r["value"]]
    if broken:
        print(f"correctness counters not 0: {[r['figure'] for r in broken]}", file=sys.stderr)
        sys.exit(1)
