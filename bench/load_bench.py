"""Load benchmark: the services as separate processes under compiled load generators, beside
baselines each in its own process, all in the same run.

Generators: HTTP from vegeta, gRPC from ghz (``deploy/local/fetch-tools.sh vegeta ghz``), closed
loop with a fixed number of workers; the Python process only writes target files (unique
Idempotency-Keys and bodies per request) and reads the results back.

Services: ``ecomops serve <svc>``, one process each (``tests/harness.py``), on ports 38001-38005
(REST) / 39001-39005 (gRPC).

Figures and their baselines (same run, same machine):

- checkout through REST across all services (``POST /v1/orders``, one line, 16 workers) vs
  pgbench running the same row writes per order (16 clients);
- flash sale (one SKU, limited units, 64 workers, one-unit orders) vs pgbench's hot-row
  conditional UPDATE + reservation insert (64 clients);
- quote, assess and every recommendation endpoint (personalised included) vs a bare
  uvicorn/FastAPI endpoint (own process, same generator, same workers); risk's gRPC AssessOrder
  vs a bare grpc.aio unary server (own process, ghz);
- the order service's outbox relay draining a backlog vs raw aiokafka produce of as many events
  with the relay's producer settings (own process).

The per-checkout budget: statements (``pg_stat_statements``; BEGIN/COMMIT included, so this is
the number of round trips asyncpg makes once its statements are prepared) and transactions
(``pg_stat_database``) per checkout per database, and CPU ms per checkout per service process
(``/proc/<pid>/stat``), each net of the background measured over an idle window just before.

Correctness counters (must be 0, or the bench fails): units oversold in the flash sale and in the
hot-row pgbench, accepted orders without an ``OrderPlaced`` event (lost), orders with two distinct
``OrderPlaced`` event ids (duplicated), stock ledger/reservation violations, relayed events not
marked published.

Run: ``make bench``, or with a stack's env exported ``python -m bench.load_bench``. Knobs:
``LOAD_BENCH_SCALE`` (1.0) scales the counts; ``LOAD_BENCH_CHECKOUTS`` (600),
``LOAD_BENCH_FLASH_BUYERS`` (2000), ``LOAD_BENCH_FLASH_UNITS`` (300), ``LOAD_BENCH_SECONDS`` (8,
per serving endpoint), ``LOAD_BENCH_RELAY_EVENTS`` (5000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import tools
from bench.common import Row, percentile, pgbench_path, row

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("LOAD_BENCH_SCALE", "1.0"))


def _knob(name: str, default: int) -> int:
    return max(10, int(int(os.environ.get(name, str(default))) * SCALE))


CHECKOUTS = _knob("LOAD_BENCH_CHECKOUTS", 600)
CHECKOUT_WORKERS = 16
CHECKOUT_SKUS = 20
FLASH_BUYERS = _knob("LOAD_BENCH_FLASH_BUYERS", 2000)
FLASH_UNITS = _knob("LOAD_BENCH_FLASH_UNITS", 300)
FLASH_WORKERS = 64
SERVE_SECONDS = float(os.environ.get("LOAD_BENCH_SECONDS", "8")) * max(SCALE, 0.25)
SERVE_WORKERS = 16
RELAY_EVENTS = _knob("LOAD_BENCH_RELAY_EVENTS", 5000)
PGBENCH_SECONDS = max(3, int(10 * SCALE))
IDLE_SECONDS = 8.0
SETTLE_SECONDS = 5.0
DB_NAME = "ecomops_bench_load"
TOPIC = "ecomops.bench.v1"
SEED = 20261125
CATEGORY = "loadbench"
# Every service process the harness starts (support consumes every order event: its CPU and
# statements belong to a checkout's budget too).
SERVICES = ("order", "inventory", "pricing", "risk", "recommendation", "support")

# Extra report sections (markdown) for bench.run, filled by run().
sections: list[str] = []


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


HOT_SCHEMA = """
DROP TABLE IF EXISTS h_stock, h_reservations;
CREATE TABLE h_stock (sku text PRIMARY KEY, on_hand bigint NOT NULL, reserved bigint NOT NULL);
CREATE TABLE h_reservations (id text PRIMARY KEY, sku text NOT NULL, at timestamptz NOT NULL);
INSERT INTO h_stock VALUES ('FLASH', 1000000000, 0);
"""

# The flash sale's write on one hot row: a conditional reserve and its reservation, one statement.
HOT_SCRIPT = """
WITH r AS (UPDATE h_stock SET reserved = reserved + 1 WHERE sku = 'FLASH'
  AND on_hand - reserved >= 1 RETURNING sku)
INSERT INTO h_reservations SELECT md5(random()::text || clock_timestamp()::text), sku, now()
  FROM r;
"""


def _pg_dsn(db: str) -> str:
    url = os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    return url.rsplit("/", 1)[0] + "/" + db


async def infrastructure_pids() -> dict[str, int]:
    """PostgreSQL's postmaster (its backends are its children) and the Kafka broker."""
    import asyncpg

    pids: dict[str, int] = {}
    conn = await asyncpg.connect(_superuser_dsn())
    try:
        data_dir = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    with contextlib.suppress(OSError, ValueError, IndexError):
        pids["PostgreSQL (all backends)"] = int(
            (Path(data_dir) / "postmaster.pid").read_text().split()[0]
        )
    profile = os.environ.get("ECOMOPS_STACK_PROFILE", "bench")
    with contextlib.suppress(OSError, ValueError):
        pids["Kafka broker"] = int((ROOT / ".local" / profile / "kafka.pid").read_text().split()[0])
    return pids


def _superuser_dsn() -> str:
    """The local stack's bootstrap superuser (trust on 127.0.0.1, deploy/local/postgres.sh):
    reading every database's counters and creating the pg_stat_statements view need it."""
    from urllib.parse import urlsplit

    port = urlsplit(_pg_dsn("postgres")).port
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


class PgbenchResult:
    def __init__(self, tps: float, latencies: list[float], command: str) -> None:
        self.tps = tps
        self.latencies = latencies
        self.command = command

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000.0


async def pgbench(
    schema: str, script: str, *, clients: int, seconds: int, label: str
) -> PgbenchResult:
    """pgbench (its own process) running ``script`` against a scratch database."""
    import asyncpg

    admin = await asyncpg.connect(_pg_dsn("postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_pg_dsn(DB_NAME))
    try:
        await conn.execute(schema)
    finally:
        await conn.close()
    work = Path(tempfile.mkdtemp(prefix="pgbench-"))
    try:
        (work / "script.sql").write_text(script)
        cmd = [pgbench_path(), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds)]
        cmd += ["-f", "script.sql", "-l", "--log-prefix", "log", _pg_dsn(DB_NAME)]
        proc = await asyncio.to_thread(
            subprocess.run, cmd, capture_output=True, text=True, check=False, cwd=work
        )
        if proc.returncode != 0:
            raise tools.BenchError(f"pgbench failed: {proc.stderr[-2000:]}")
        latencies: list[float] = []
        for log in work.glob("log*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1e6)
        shown = " ".join(cmd[1:-1]).replace("script.sql", f"<{label}>")
        return PgbenchResult(len(latencies) / seconds, latencies, f"pgbench {shown}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def hot_row_oversold() -> tuple[int, int]:
    """(units reserved beyond on_hand, reservation rows that disagree with the counter)."""
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(DB_NAME))
    try:
        r = await conn.fetchrow("SELECT on_hand, reserved FROM h_stock WHERE sku = 'FLASH'")
        rows = await conn.fetchval("SELECT count(*) FROM h_reservations")
    finally:
        await conn.close()
    return max(0, int(r["reserved"]) - int(r["on_hand"])), abs(int(rows) - int(r["reserved"]))


# --- baseline processes ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def baseline_process(kind: str) -> Iterator[tuple[int, int]]:
    """``python -m bench.baselines KIND PORT`` in its own process; (port, pid) once it listens."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.baselines", kind, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise tools.BenchError(f"the bare {kind} server exited")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise tools.BenchError(f"the bare {kind} server did not start")
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def raw_produce(count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.baselines", "kafka", TOPIC, str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise tools.BenchError(f"raw produce failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


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


def assess_order_call(tag: str, devices: int = 1500) -> dict[str, Any]:
    """ghz's AssessOrder request data: a new order and customer per call, with addresses and
    devices spread as the REST figure's orders are (``risk_bench._orders``). One IP and one
    device for every call would be a fraud pattern, not a serving path: every assessment
    would wait for the same velocity lock, and the counts would send them to review."""
    return {
        "order_id": f"ghz-{tag}-{{{{.RequestNumber}}}}",
        "customer_id": f"ghz-{tag}-{{{{.RequestNumber}}}}",
        "amount_minor": 1999,
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 1999}],
        "ip": "10.{{randomInt 0 256}}.{{randomInt 0 256}}.{{randomInt 1 255}}",
        "device_id": f"dev-{tag}-{{{{randomInt 0 {devices}}}}}",
        "billing_country": "DE",
        "shipping_country": "DE",
    }


def _bearer(subject: str, role: str) -> str:
    from ecomops_testing import token

    return f"Bearer {token(subject, role, ttl=3600)}"


def _order_body(fx: Any, cust: str, sku: str) -> dict[str, Any]:
    return {
        "currency": "EUR",
        "lines": [{"sku": sku, "quantity": 1}],
        "shipping_address": fx.ADDRESS,
        # One address and device per buyer: risk's velocity rules (rightly) stop one address
        # placing hundreds of orders.
        "client": {"ip": fx._ip_of(cust), "device_id": f"dev-{cust}"},
    }


def order_targets(fx: Any, url: str, tag: str, skus: list[str], n: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    out = []
    for i in range(n):
        cust = f"lb-{tag}-c{i}"
        out.append(
            tools.target(
                "POST",
                f"{url}/v1/orders",
                {"Authorization": _bearer(cust, "customer"), "Idempotency-Key": uuid.uuid4().hex},
                _order_body(fx, cust, rng.choice(skus)),
            )
        )
    return out


def accepted_orders(res: tools.HttpResult) -> list[str]:
    ids = []
    for code, body in zip(res.codes, res.bodies, strict=True):
        if code == 201:
            ids.append(str(json.loads(body)["order_id"]))
    return ids


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


async def relay_drain(count: int) -> dict[str, float]:
    """``count`` events written to the order database's outbox in one transaction (what many
    checkouts leave behind), then the time until the running order service's relay has
    published and marked every one."""
    import asyncpg

    conn = await asyncpg.connect(_fixtures().pg_dsn("order"))
    try:
        payload = b"\x0a\x24" + b"o" * 36 + b"\x12\x40" + b"x" * 64
        rows = [
            (
                uuid.uuid4(),
                TOPIC,
                f"o{i % 500}",
                "ecomops.bench.v1.Relayed",
                payload,
                json.dumps({"ce_id": "x" * 36, "ce_type": "ecomops.bench.v1.Relayed"}),
            )
            for i in range(count)
        ]
        async with conn.transaction():
            await conn.executemany(
                """INSERT INTO outbox (event_id, topic, key, event_type, payload, headers,
                   created_at) VALUES ($1, $2, $3, $4, $5, $6::json, now())""",
                rows,
            )
            # Wake the relay as a writer that is not the order process does (another replica
            # with NOTIFY, a tool): what is measured is the relay draining, not its safety-net
            # poll (the service's own commits wake it in-process).
            await conn.execute("SELECT pg_notify('ecomops_outbox', '')")
            committed_db = await conn.fetchval("SELECT clock_timestamp()")
        ids = [r[0] for r in rows]
        deadline = time.monotonic() + 120
        while True:
            left = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[]) "
                "AND published_at IS NULL",
                ids,
            )
            if left == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        last = await conn.fetchval(
            "SELECT max(published_at) FROM outbox WHERE event_id = ANY($1::uuid[])", ids
        )
    finally:
        await conn.close()
    elapsed = (last - committed_db).total_seconds() if last else float("nan")
    return {"count": count, "unpublished": int(left), "elapsed": elapsed, "rate": count / elapsed}


def _http_rows(
    figure: str, res: tools.HttpResult, codes: tuple[int, ...], base: tools.HttpResult, load: str
) -> list[Row]:
    note = f"{load}; {res.statuses()}; {res.generator_share()}; `{res.command}`"
    return [
        row(
            f"{figure}: throughput", res.rate(*codes), "req/s", "bare FastAPI", base.rate(200), note
        ),
        row(f"{figure}: p50", res.p(0.5), "ms", "bare FastAPI p50", base.p(0.5), ""),
        row(f"{figure}: p99", res.p(0.99), "ms", "bare FastAPI p99", base.p(0.99), ""),
    ]


def _budget_section(
    work: dict[str, tuple[int, int]],
    idle: dict[str, tuple[int, int]],
    cpu: dict[str, float],
    cpu_idle: dict[str, float],
    idle_s: float,
    work_s: float,
    orders: int,
    pg_budget: dict[str, tuple[int, int]],
    pg_orders: int,
    load: str,
    generator_cpu: float,
) -> tuple[str, dict[str, float]]:
    """The per-checkout table; net = measured minus the idle window's rate over the same time."""
    scale = work_s / idle_s
    lines = [
        "## Per-checkout budget",
        "",
        f"{orders} checkouts (`POST /v1/orders`, one line) at {CHECKOUT_WORKERS} workers in "
        f"{work_s:.1f} s; {load}. Statements from `pg_stat_statements` (BEGIN/COMMIT included:"
        " asyncpg makes one round trip per statement once prepared), transactions from "
        "`pg_stat_database` (commits + rollbacks), CPU from `/proc/<pid>/stat` (utime + stime of "
        "each process and its live children: PostgreSQL's are the backends still connected at "
        "the end). *net* subtracts the background (relay polls, jobs) measured over an idle "
        f"window of {idle_s:.0f} s just before, scaled to the run's length: an estimate (a busy "
        "relay polls differently from an idle one); *gross* is exact.",
        "",
        "| database / process | statements (= round trips) per checkout (net) | gross | "
        "transactions per "
        "checkout (net) | gross | CPU ms per checkout (net) | gross |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = {"statements": 0.0, "transactions": 0.0, "cpu_ms": 0.0}
    for svc in SERVICES:
        db = f"ecomops_{svc}"
        calls, xacts = work.get(db, (0, 0))
        icalls, ixacts = idle.get(db, (0, 0))
        net_calls = (calls - icalls * scale) / orders
        net_xacts = (xacts - ixacts * scale) / orders
        net_cpu = (cpu[svc] - cpu_idle[svc] * scale) * 1000 / orders
        totals["statements"] += net_calls
        totals["transactions"] += net_xacts
        totals["cpu_ms"] += net_cpu
        lines.append(
            f"| {svc} | {net_calls:.1f} | {calls / orders:.1f} | {net_xacts:.2f} | "
            f"{xacts / orders:.2f} | {net_cpu:.1f} | {cpu[svc] * 1000 / orders:.1f} |"
        )
    lines.append(
        f"| **all services** | **{totals['statements']:.1f}** | | **{totals['transactions']:.2f}**"
        f" | | **{totals['cpu_ms']:.1f}** | |"
    )
    for name in cpu:
        if name in SERVICES:
            continue
        net_cpu = (cpu[name] - cpu_idle[name] * scale) * 1000 / orders
        lines.append(
            f"| {name} (process) | | | | | {net_cpu:.1f} | {cpu[name] * 1000 / orders:.1f} |"
        )
    lines.append(f"| vegeta (the load generator) | | | | | | {generator_cpu * 1000 / orders:.1f} |")
    pc, px = pg_budget.get(DB_NAME, (0, 0))
    if pg_orders:
        lines.append(
            f"| pgbench, the same writes (baseline) | {pc / pg_orders:.1f} | | "
            f"{px / pg_orders:.2f} | | | |"
        )
    lines.append("")
    return "\n".join(lines), totals


def _top_queries_section(top: list[tuple[str, int, str]], orders: int) -> str:
    if not top:
        return ""
    lines = [
        "### The statements a checkout run executes most (gross, background included)",
        "",
        "| database | calls per checkout | statement (`pg_stat_statements`, normalised) |",
        "|---|---|---|",
    ]
    for db, calls, query in top:
        text = query if len(query) <= 160 else query[:157] + "..."
        text = text.replace("|", "\\|")
        lines.append(f"| {db.removeprefix('ecomops_')} | {calls / orders:.2f} | `{text}` |")
    lines.append("")
    return "\n".join(lines)


async def run() -> list[Row]:
    sections.clear()
    rows: list[Row] = []
    attacks: list[tools.HttpResult] = []  # every measured attack on the services
    fx = _fixtures()
    harness = _harness()
    meter = tools.PgMeter(_superuser_dsn())
    await meter.setup()

    # --- baselines, each in its own process -----------------------------------------------------
    with baseline_process("http") as (port, _pid):
        base_url = f"http://127.0.0.1:{port}"
        tools.vegeta(
            [tools.target("GET", f"{base_url}/v1/ping")], workers=SERVE_WORKERS, duration=1
        )
        bare_get = tools.vegeta(
            [tools.target("GET", f"{base_url}/v1/ping")],
            workers=SERVE_WORKERS,
            duration=SERVE_SECONDS,
        )
        risk_body = {
            "order_id": "x",
            "customer_id": "c",
            "amount_minor": 1999,
            "currency": "EUR",
            "lines": [{"sku": "S", "quantity": 1, "unit_price_minor": 1999}],
        }
        bare_post = tools.vegeta(
            [tools.target("POST", f"{base_url}/v1/echo", {}, risk_body)],
            workers=SERVE_WORKERS,
            duration=SERVE_SECONDS,
        )
    rows.append(
        row(
            "baseline: bare FastAPI GET /v1/ping",
            bare_get.rate(200),
            "req/s",
            "(baseline)",
            bare_get.rate(200),
            f"uvicorn, own process, {SERVE_WORKERS} workers; p50 {bare_get.p(0.5):.1f} "
            f"ms, p99 {bare_get.p(0.99):.1f} ms; {bare_get.statuses()}; "
            f"{bare_get.generator_share()}; `{bare_get.command}`",
        )
    )
    rows.append(
        row(
            "baseline: bare FastAPI POST /v1/echo",
            bare_post.rate(200),
            "req/s",
            "(baseline)",
            bare_post.rate(200),
            f"p50 {bare_post.p(0.5):.1f} ms, p99 {bare_post.p(0.99):.1f} ms; "
            f"{bare_post.statuses()}; {bare_post.generator_share()}",
        )
    )
    bench_proto = ROOT / "bench" / "bare.proto"
    with baseline_process("grpc") as (gport, _pid):
        bare_grpc = tools.ghz(
            target_addr=f"127.0.0.1:{gport}",
            call="ecomops.bench.v1.BareService.Echo",
            proto=bench_proto,
            import_paths=[ROOT / "bench"],
            data={"id": "{{.RequestNumber}}", "payload": "x" * 64},
            concurrency=SERVE_WORKERS,
            total=int(4000 * SCALE) or 100,
        )
    rows.append(
        row(
            "baseline: bare grpc.aio unary Echo",
            bare_grpc.rps,
            "calls/s",
            "(baseline)",
            bare_grpc.rps,
            f"own process, {SERVE_WORKERS} concurrent; p50 "
            f"{bare_grpc.p50:.1f} ms, p99 {bare_grpc.p99:.1f} ms; "
            f"{bare_grpc.ok}/{bare_grpc.count} OK; `{bare_grpc.command}`",
        )
    )

    before = await meter.snapshot()
    pg = await pgbench(
        PGBENCH_SCHEMA,
        PGBENCH_SCRIPT,
        clients=CHECKOUT_WORKERS,
        seconds=PGBENCH_SECONDS,
        label="PGBENCH_SCRIPT, bench/load_bench.py",
    )
    await asyncio.sleep(1.5)  # backends report their counters at most once a second
    pg_budget = tools.PgMeter.delta(before, await meter.snapshot())
    pg_orders = len(pg.latencies)
    rows.append(
        row(
            "baseline: pgbench, one checkout's writes",
            pg.tps,
            "orders/s",
            "(baseline)",
            pg.tps,
            f"{CHECKOUT_WORKERS} clients; p50 {pg.p(0.5):.1f} ms, p99 "
            f"{pg.p(0.99):.1f} ms; `{pg.command}`",
        )
    )
    hot = await pgbench(
        HOT_SCHEMA,
        HOT_SCRIPT,
        clients=FLASH_WORKERS,
        seconds=PGBENCH_SECONDS,
        label="HOT_SCRIPT, bench/load_bench.py",
    )
    hot_over, hot_mismatch = await hot_row_oversold()
    rows.append(
        row(
            "baseline: pgbench, hot-row conditional reserve + insert",
            hot.tps,
            "reservations/s",
            "(baseline)",
            hot.tps,
            f"{FLASH_WORKERS} clients, one row; p50 {hot.p(0.5):.1f} ms, p99 "
            f"{hot.p(0.99):.1f} ms; `{hot.command}`",
        )
    )

    # --- the services, one process each ---------------------------------------------------------
    stack = harness.Stack(
        extra_env={"ORDER_PAYMENT_TIMEOUT": "900", "ORDER_RESERVATION_MARGIN": "300"}
    )
    await asyncio.to_thread(stack.start)
    try:
        import httpx

        pids = {svc: stack.procs[svc].popen.pid for svc in SERVICES}
        pids.update(await infrastructure_pids())
        tag = uuid.uuid4().hex[:6]
        skus = [f"LB-{tag}-{k:03d}" for k in range(CHECKOUT_SKUS)]
        flash = f"LB-{tag}-FLASH"
        async with httpx.AsyncClient(timeout=60) as client:
            shop = fx.Shop(client, stack)
            sem = asyncio.Semaphore(8)
            rng = random.Random(SEED)

            async def seed(sku: str, units: int, price: int) -> None:
                async with sem:
                    await shop.seed_sku(
                        sku,
                        units=units,
                        price_minor=price,
                        cost_minor=price // 3,
                        category=CATEGORY,
                    )

            await asyncio.gather(
                *(seed(s, 1_000_000, rng.randrange(990, 9990, 100)) for s in skus),
                seed(flash, FLASH_UNITS, 4900),
            )
            # behaviour for the recommendation endpoints: 50 customers viewing the catalogue
            rec_customers = [f"lb-{tag}-r{i}" for i in range(50)]
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for cust in rec_customers:
                events = [
                    {
                        "type": "view",
                        "sku": s,
                        "customer_id": cust,
                        "session_id": f"s-{cust}",
                        "occurred_at": now,
                    }
                    for s in rng.sample(skus, 4)
                ]
                resp = await client.post(
                    f"{stack.url('recommendation')}/v1/behavior-events",
                    json={"events": events},
                    headers={
                        "Authorization": _bearer(cust, "customer"),
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
                if resp.status_code != 202:
                    raise tools.BenchError(f"behaviour events: {resp.status_code} {resp.text}")

        order_url = stack.url("order")
        # warm every path (connections, prepared statements, caches)
        warm = tools.vegeta(
            order_targets(fx, order_url, tag + "w", skus, 48),
            workers=CHECKOUT_WORKERS,
            keep_bodies=True,
        )
        warm_ids = accepted_orders(warm)

        # let the warm-up's events settle (relays, consumers), then an idle window: the
        # background the budget is net of
        await asyncio.sleep(SETTLE_SECONDS)
        cpu_idle_meter = tools.CpuMeter(pids)
        idle0, t0 = await meter.snapshot(), time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        idle1, t1 = await meter.snapshot(), time.monotonic()
        cpu_idle = cpu_idle_meter.delta()
        idle = tools.PgMeter.delta(idle0, idle1)

        targets = order_targets(fx, order_url, tag, skus, CHECKOUTS)
        load_checkout = f"loaded machine, load average {tools.load_average()}"
        cpu_meter = tools.CpuMeter(pids)
        q0 = await meter.queries()
        chunks0 = await tools.consumer_chunks(stack, SERVICES)
        w0, t2 = await meter.snapshot(), time.monotonic()
        checkout = tools.vegeta(targets, workers=CHECKOUT_WORKERS, keep_bodies=True)
        await asyncio.sleep(1.5)  # counters flush
        chunks1 = await tools.consumer_chunks(stack, SERVICES)
        w1, t3 = await meter.snapshot(), time.monotonic()
        q1 = await meter.queries()
        cpu = cpu_meter.delta()
        attacks.append(checkout)
        checkout_ids = accepted_orders(checkout)
        placed = max(1, len(checkout_ids))
        section, totals = _budget_section(
            tools.PgMeter.delta(w0, w1),
            idle,
            cpu,
            cpu_idle,
            t1 - t0,
            t3 - t2,
            placed,
            pg_budget,
            pg_orders,
            load_checkout,
            checkout.generator_cpu,
        )
        sections.append(section)
        sections.append(_top_queries_section(tools.PgMeter.top_queries(q0, q1, 25), placed))
        rate = checkout.rate(201)
        rows.append(
            row(
                "checkout through REST (all services): orders/s",
                rate,
                "orders/s",
                "pgbench, one checkout's writes",
                pg.tps,
                f"{CHECKOUTS} orders, {CHECKOUT_WORKERS} workers, unique Idempotency-Key"
                f" and customer per order; {load_checkout}; {checkout.statuses()}; "
                f"{checkout.generator_share()}; `{checkout.command}`",
            )
        )
        rows.append(
            row("checkout through REST: p50", checkout.p(0.5), "ms", "pgbench p50", pg.p(0.5), "")
        )
        rows.append(
            row(
                "checkout through REST: p99",
                checkout.p(0.99),
                "ms",
                "pgbench p99",
                pg.p(0.99),
                "target < 300 ms",
            )
        )
        rows.append(
            row(
                "checkout budget: statements (= round trips) per checkout (net, all databases)",
                totals["statements"],
                "statements",
                "pgbench, same writes",
                pg_budget.get(DB_NAME, (0, 0))[0] / max(1, pg_orders),
                "see the per-checkout budget table",
            )
        )
        rows.append(
            row(
                "checkout budget: transactions per checkout (net, all databases)",
                totals["transactions"],
                "transactions",
                "pgbench, same writes",
                pg_budget.get(DB_NAME, (0, 0))[1] / max(1, pg_orders),
                "",
            )
        )
        rows.append(
            row(
                "checkout budget: CPU ms per checkout (net, all service processes)",
                totals["cpu_ms"],
                "ms",
                "",
                float("nan"),
                "",
            )
        )
        chunk_deltas = {
            svc: (chunks1[svc][0] - chunks0[svc][0], chunks1[svc][1] - chunks0[svc][1])
            for svc in SERVICES
            if chunks1[svc][0] > chunks0[svc][0]
        }
        transactions = sum(c for c, _ in chunk_deltas.values())
        rows.append(
            row(
                "checkout: events per consumer transaction (mean, every consumer)",
                sum(e for _, e in chunk_deltas.values()) / max(1.0, transactions),
                "events",
                "",
                float("nan"),
                "; ".join(
                    f"{svc} {e / c:.1f} ({c:.0f} transactions)"
                    for svc, (c, e) in chunk_deltas.items()
                )
                + " (ecomops_consumer_chunk_events during the checkout run; "
                "ECOMOPS_CONSUMER_BATCH_SIZE)",
            )
        )

        # --- flash sale --------------------------------------------------------------------------
        flash_targets = []
        for i in range(FLASH_BUYERS):
            cust = f"lb-{tag}-f{i}"
            flash_targets.append(
                tools.target(
                    "POST",
                    f"{order_url}/v1/orders",
                    {
                        "Authorization": _bearer(cust, "customer"),
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                    _order_body(fx, cust, flash),
                )
            )
        load_flash = f"loaded machine, load average {tools.load_average()}"
        fl = tools.vegeta(flash_targets, workers=FLASH_WORKERS, timeout=120, keep_bodies=True)
        attacks.append(fl)
        flash_ids = accepted_orders(fl)
        answered = fl.count(201, 409)
        rows.append(
            row(
                "flash sale: attempts answered (201 or sold-out 409)",
                answered / fl.elapsed if fl.elapsed else 0.0,
                "attempts/s",
                "pgbench hot-row reserve",
                hot.tps,
                f"{FLASH_BUYERS} buyers, one SKU, {FLASH_UNITS} units, {FLASH_WORKERS} "
                f"workers; {load_flash}; {fl.statuses()}; {fl.generator_share()}; `{fl.command}`",
            )
        )
        rows.append(
            row(
                "flash sale: p99",
                fl.p(0.99),
                "ms",
                "pgbench hot-row p99",
                hot.p(0.99),
                f"p50 {fl.p(0.5):.0f} ms",
            )
        )

        # --- serving endpoints vs the bare endpoint ---------------------------------------------
        cust_auth = {"Authorization": _bearer(f"lb-{tag}-q", "customer")}
        svc_auth = {"Authorization": _bearer("service:order", "service")}
        n_unique = int(SERVE_SECONDS * 1500) + 100
        quote_targets = [
            tools.target(
                "POST",
                f"{stack.url('pricing')}/v1/quotes",
                {**cust_auth, "Idempotency-Key": uuid.uuid4().hex},
                {
                    "currency": "EUR",
                    "lines": [{"sku": s, "quantity": 1 + i % 3} for i, s in enumerate(skus[:5])],
                },
            )
            for _ in range(n_unique)
        ]
        from bench.risk_bench import _orders

        assess_targets = [
            tools.target("POST", f"{stack.url('risk')}/v1/assessments", svc_auth, o)
            for o in _orders(n_unique, seed=SEED)
        ]
        rec = stack.url("recommendation")
        rec_paths = {
            "recommendations, personalised (customers/{id})": [
                f"{rec}/v1/recommendations/customers/{c}?limit=5" for c in rec_customers
            ],
            "recommendations, similar items": [
                f"{rec}/v1/recommendations/skus/{s}/similar?limit=5" for s in skus
            ],
            "recommendations, bought together": [
                f"{rec}/v1/recommendations/skus/{s}/bought-together?limit=5" for s in skus
            ],
            "recommendations, trending": [f"{rec}/v1/recommendations/trending?limit=5"],
        }
        serving: list[tuple[str, list[dict[str, Any]], tuple[int, ...], tools.HttpResult, bool]]
        serving = [
            ("pricing quote (POST /v1/quotes)", quote_targets, (201,), bare_post, True),
            ("risk assess (POST /v1/assessments)", assess_targets, (201,), bare_post, True),
        ]
        for name, urls in rec_paths.items():
            auth = {"Authorization": _bearer(f"lb-{tag}-r0", "ops")}
            serving.append(
                (name, [tools.target("GET", u, auth) for u in urls], (200,), bare_get, False)
            )
        for name, tgts, codes, base, unique in serving:
            tools.vegeta(tgts[-50:], workers=SERVE_WORKERS, duration=1)  # warm
            res = tools.vegeta(
                tgts[:-50] if unique else tgts, workers=SERVE_WORKERS, duration=SERVE_SECONDS
            )
            attacks.append(res)
            rows += _http_rows(
                name,
                res,
                codes,
                base,
                f"{SERVE_WORKERS} workers, {SERVE_SECONDS:g} s; loaded machine, "
                f"load average {tools.load_average()}",
            )

        load_grpc = f"loaded machine, load average {tools.load_average()}"
        risk_proto = ROOT / "proto" / "ecomops" / "risk" / "v1" / "risk_service.proto"
        g = tools.ghz(
            target_addr=stack.grpc_target("risk"),
            call="ecomops.risk.v1.RiskService.AssessOrder",
            proto=risk_proto,
            import_paths=[ROOT / "proto"],
            data=assess_order_call(tag),
            concurrency=SERVE_WORKERS,
            total=int(1500 * SCALE) or 100,
            metadata={"authorization": svc_auth["Authorization"]},
        )
        rows.append(
            row(
                "risk gRPC AssessOrder: throughput",
                g.rps,
                "calls/s",
                "bare grpc.aio Echo",
                bare_grpc.rps,
                f"{SERVE_WORKERS} concurrent; {load_grpc}; p50 {g.p50:.1f} ms (bare "
                f"{bare_grpc.p50:.1f}), p99 {g.p99:.1f} ms (bare {bare_grpc.p99:.1f}); "
                f"{g.ok}/{g.count} OK {g.errors or ''}; `{g.command}`",
            )
        )

        # --- outbox relay vs raw produce ---------------------------------------------------------
        from ecomops_platform.events import create_topics
        from ecomops_platform.settings import CommonSettings

        await create_topics(CommonSettings(), [TOPIC])
        load_relay = f"loaded machine, load average {tools.load_average()}"
        relay = await relay_drain(RELAY_EVENTS)
        raw = await asyncio.to_thread(raw_produce, RELAY_EVENTS)
        rows.append(
            row(
                "order outbox relay: backlog drained",
                relay["rate"],
                "events/s",
                "raw aiokafka produce, relay's producer settings",
                raw["rate"],
                f"{load_relay}; {RELAY_EVENTS} outbox rows committed at once, until the last is"
                f" marked published ({relay['elapsed']:.2f} s; raw {raw['elapsed']:.2f} s in its"
                f" own process, sent in batches of 1000 like the relay)",
            )
        )

        # --- correctness -------------------------------------------------------------------
        sold = await sold_units(flash)
        all_ids = set(warm_ids) | set(checkout_ids) | set(flash_ids)
        events = await fx.order_events_check(all_ids, timeout=90)
        ledger = await fx.stock_invariants([*skus, flash])
    finally:
        await asyncio.to_thread(stack.stop)

    oversold = max(0, sold["committed"] + sold["held"] - FLASH_UNITS)
    rows.append(
        row(
            "correctness: flash sale units oversold",
            oversold,
            "units",
            "must be 0",
            0,
            f"committed {sold['committed']} + held {sold['held']} vs {FLASH_UNITS} "
            f"units; {len(flash_ids)} orders accepted; stock on_hand {sold['on_hand']}, "
            f"reserved {sold['reserved']}",
        )
    )
    rows.append(
        row(
            "correctness: flash sale orders accepted beyond the units",
            max(0, len(flash_ids) - FLASH_UNITS),
            "orders",
            "must be 0",
            0,
            f"{len(flash_ids)} accepted for {FLASH_UNITS} units",
        )
    )
    rows.append(
        row(
            "correctness: pgbench hot row oversold / counter mismatches",
            hot_over + hot_mismatch,
            "units",
            "must be 0",
            0,
            f"oversold {hot_over}, reservation rows vs counter {hot_mismatch}",
        )
    )
    rows.append(
        row(
            "correctness: accepted orders without OrderPlaced (lost)",
            len(events["missing"]),
            "orders",
            "must be 0",
            0,
            f"{len(all_ids)} accepted orders (warm-up {len(warm_ids)}, checkout "
            f"{len(checkout_ids)}, flash {len(flash_ids)}); first: "
            f"{events['missing'][:3]}",
        )
    )
    rows.append(
        row(
            "correctness: orders with 2+ distinct OrderPlaced ce_ids (duplicated)",
            len(events["doubled"]),
            "orders",
            "must be 0",
            0,
            f"same-ce_id redeliveries (allowed, at-least-once): {events['redelivered']};"
            f" first: {events['doubled'][:3]}",
        )
    )
    rows.append(
        row(
            "correctness: stock ledger/reservation violations",
            len(ledger),
            "problems",
            "must be 0",
            0,
            "; ".join(ledger[:3]) or "ledger = on_hand, reserved = held",
        )
    )
    rows.append(
        row(
            "correctness: relayed events left unpublished",
            relay["unpublished"],
            "events",
            "must be 0",
            0,
            f"of {RELAY_EVENTS} after 120 s",
        )
    )
    errs: dict[str, int] = {}
    for res in attacks:
        for k, v in res.errors.items():
            errs[k] = errs.get(k, 0) + v
    rows.append(
        row(
            "transport errors: requests without an HTTP answer",
            sum(errs.values()),
            "requests",
            "expected 0",
            0,
            "; ".join(f"{k} x{v}" for k, v in list(errs.items())[:3])
            or "every vegeta request of the run got an HTTP status",
        )
    )
    return rows


if __name__ == "__main__":
    from bench.run import print_table

    results = asyncio.run(run())
    print_table(results)
    for s in sections:
        print(s)
    broken = [r for r in results if str(r["figure"]).startswith("correctness:") and r["value"]]
    if broken:
        print(f"CORRECTNESS COUNTERS NOT 0: {[r['figure'] for r in broken]}", file=sys.stderr)
        sys.exit(1)
