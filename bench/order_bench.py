"""Checkout benchmark: orders per second and p50/p95/p99 latency of ``POST /v1/orders``
through the REAL order, pricing, risk and inventory services (in-process, one event loop), beside
a ``pgbench`` run of the equivalent SQL work per order, in the same run.

* figure: closed loop, ``CONCURRENCY`` clients, ``ORDERS`` checkouts (each: a pricing quote,
  a risk assessment, an inventory reservation, then the order + outbox + idempotency row), one
  line each over ``SKUS`` SKUs picked with a fixed seed, a fresh customer per order;
* baseline: ``pgbench`` with the same client count running, per order, the same writes in four
  transactions (quote + lines; assessment after a velocity count; conditional stock UPDATE +
  reservation + outbox; idempotency claim + order + timeline + outbox + response) on scratch
  tables in one database — what the checkout costs PostgreSQL without HTTP, gRPC, Python;
* ratio = figure / baseline (throughput: the share of raw SQL throughput the services reach;
  latency: how many times slower one checkout is than its raw SQL).

Assumes the stack's environment is exported (ORDER_DATABASE_URL, ECOMOPS_*). Databases
``ecomops_<service>_bench`` are created on the same server. ``python -m bench.order_bench``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from bench.common import Row, closed_loop, percentile, row
from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_testing import bearer, ensure_database, skip_to_end, token, unique

SEED = 20261124
CONCURRENCY = 8
ORDERS = 300
WARMUP = 20
SKUS = 20
WAREHOUSE = "bench-wh"
ADDRESS = {
    "name": "Bench Customer",
    "line1": "1 Load Street",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}


def _url(service: str) -> str:
    base = os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0]
    return f"{base}/ecomops_{service}_bench"


async def _isolate(name: str, service: Service) -> None:
    """Own consumer groups (``ecomops-<svc>-bench``) from the end of the topics."""
    for sub in service._subscriptions:
        sub.name = "bench"
        await skip_to_end(f"ecomops-{name}-bench", sub.topics)


async def _seed(clients: dict[str, httpx.AsyncClient], skus: list[str]) -> None:
    ops = bearer("bench-ops", "ops")
    inv, pr = clients["inventory"], clients["pricing"]
    await inv.put(f"/v1/warehouses/{WAREHOUSE}", json={"name": "Bench"}, headers=ops)
    for sku in skus:
        r = await inv.put(
            f"/v1/skus/{sku}",
            json={"title": sku, "category": "bench", "status": "active"},
            headers=ops,
        )
        r.raise_for_status()
        r = await inv.post(
            "/v1/stock/adjustments",
            json={"sku": sku, "warehouse": WAREHOUSE, "delta": 1_000_000, "reason": "receipt"},
            headers={**ops, "Idempotency-Key": unique("adj")},
        )
        r.raise_for_status()
    for sku in skus:  # pricing learns SKUs from inventory's events
        for _ in range(300):
            r = await pr.put(
                f"/v1/prices/{sku}",
                json={"currency": "EUR", "list_price_minor": 2500, "unit_cost_minor": 900},
                headers=ops,
            )
            if r.status_code in (200, 201):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"pricing never learned {sku}: {r.text}")


async def _services_checkout() -> tuple[Any, dict[str, int]]:
    from inventory_service.bootstrap import create_service as inventory_service
    from inventory_service.settings import InventorySettings
    from order_service.bootstrap import create_service as order_service
    from order_service.settings import OrderSettings
    from pricing_service.bootstrap import create_service as pricing_service
    from pricing_service.settings import PricingSettings
    from risk_service.bootstrap import create_service as risk_service
    from risk_service.settings import RiskSettings

    for name in ("inventory", "pricing", "risk", "order"):
        await ensure_database(_url(name))
        await upgrade_async(name, _url(name))
    ports = {"http_port": 0, "grpc_port": 0}
    built: dict[str, Service] = {
        "inventory": inventory_service(InventorySettings(database_url=_url("inventory"), **ports)),
        "pricing": pricing_service(PricingSettings(database_url=_url("pricing"), **ports)),
        "risk": risk_service(RiskSettings(database_url=_url("risk"), **ports)),
    }
    statuses: dict[str, int] = {}
    async with contextlib.AsyncExitStack() as exits:
        for name, svc in built.items():
            await _isolate(name, svc)
            await exits.enter_async_context(svc.running())
        order = order_service(
            OrderSettings(
                database_url=_url("order"),
                inventory_target=f"127.0.0.1:{built['inventory'].grpc_port}",
                pricing_target=f"127.0.0.1:{built['pricing'].grpc_port}",
                risk_target=f"127.0.0.1:{built['risk'].grpc_port}",
                dependency_timeout=10.0,
                **ports,
            )
        )
        await _isolate("order", order)
        await exits.enter_async_context(order.running())
        built["order"] = order
        clients = {
            name: await exits.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{svc.http_port}",
                    timeout=30,
                    limits=httpx.Limits(max_connections=CONCURRENCY * 2),
                )
            )
            for name, svc in built.items()
        }
        rnd = random.Random(SEED)
        run_id = unique("b")
        skus = [f"{run_id}-sku-{i}" for i in range(SKUS)]
        await _seed(clients, skus)
        # One token per customer, minted before the clock starts.
        tokens = [token(f"{run_id}-cust-{i}", "customer") for i in range(ORDERS + WARMUP)]
        picks = [rnd.choice(skus) for _ in range(ORDERS + WARMUP)]

        async def checkout(i: int) -> bool:
            resp = await clients["order"].post(
                "/v1/orders",
                json={
                    "currency": "EUR",
                    "lines": [{"sku": picks[i], "quantity": 1}],
                    "shipping_address": ADDRESS,
                    "client": {"ip": f"198.51.100.{i % 250}", "device_id": f"{run_id}-d{i}"},
                },
                headers={
                    "Authorization": f"Bearer {tokens[i]}",
                    "Idempotency-Key": f"{run_id}-{i}",
                },
            )
            key = str(resp.status_code)
            if resp.status_code == 201:
                key = resp.json()["status"]
            statuses[key] = statuses.get(key, 0) + 1
            return resp.status_code == 201

        await closed_loop(lambda i: checkout(ORDERS + i), concurrency=CONCURRENCY, total=WARMUP)
        statuses.clear()
        result = await closed_loop(checkout, concurrency=CONCURRENCY, total=ORDERS)
    return result, statuses


PGBENCH_SETUP = """
CREATE TABLE IF NOT EXISTS b_quotes (id uuid PRIMARY KEY, customer text, currency text,
  total bigint, lines jsonb, created_at timestamptz, expires_at timestamptz);
CREATE TABLE IF NOT EXISTS b_assessments (id uuid PRIMARY KEY, order_id text, customer text,
  device text, amount bigint, decision text, reasons jsonb, created_at timestamptz);
CREATE INDEX IF NOT EXISTS b_assess_device ON b_assessments (device, created_at);
CREATE TABLE IF NOT EXISTS b_stock (sku int PRIMARY KEY, on_hand bigint, reserved bigint);
CREATE TABLE IF NOT EXISTS b_reservations (id text PRIMARY KEY, lines jsonb, status text,
  expires_at timestamptz);
CREATE TABLE IF NOT EXISTS b_outbox (id bigserial PRIMARY KEY, event_id uuid, key text,
  payload bytea, headers jsonb, created_at timestamptz);
CREATE TABLE IF NOT EXISTS b_idem (caller text, key text, fingerprint text, status int,
  body jsonb, PRIMARY KEY (caller, key));
CREATE TABLE IF NOT EXISTS b_orders (id text PRIMARY KEY, customer text, status text,
  lines jsonb, total bigint, placed_at timestamptz);
CREATE TABLE IF NOT EXISTS b_timeline (id bigserial PRIMARY KEY, order_id text, status text,
  at timestamptz);
INSERT INTO b_stock SELECT g, 1000000000, 0 FROM generate_series(1, 20) g
  ON CONFLICT (sku) DO UPDATE SET reserved = 0;
"""

PGBENCH_SCRIPT = """\\set sku random(1, 20)
\\set n random(1, 2000000000)
BEGIN;
INSERT INTO b_quotes VALUES (gen_random_uuid(), 'c' || :n, 'EUR', 2500,
  '[{"sku": 1, "quantity": 1, "unit_price_minor": 2500}]', now(), now() + interval '15 min');
COMMIT;
BEGIN;
SELECT count(*) FROM b_assessments WHERE device = 'd' || :n
  AND created_at > now() - interval '1 hour';
INSERT INTO b_assessments VALUES (gen_random_uuid(), 'o' || :n, 'c' || :n, 'd' || :n, 2500,
  'approve', '[]', now());
INSERT INTO b_outbox (event_id, key, payload, headers, created_at)
  VALUES (gen_random_uuid(), 'o' || :n, '\\x0a0b', '{}', now());
COMMIT;
BEGIN;
UPDATE b_stock SET reserved = reserved + 1 WHERE sku = :sku AND on_hand - reserved >= 1;
INSERT INTO b_reservations VALUES ('o' || :n, '[{"sku": 1, "quantity": 1}]', 'held',
  now() + interval '20 min') ON CONFLICT DO NOTHING;
INSERT INTO b_outbox (event_id, key, payload, headers, created_at)
  VALUES (gen_random_uuid(), 'o' || :n, '\\x0a0b', '{}', now());
COMMIT;
BEGIN;
INSERT INTO b_idem VALUES ('c' || :n, 'k' || :n, 'f', 0, '{}') ON CONFLICT DO NOTHING;
INSERT INTO b_orders VALUES ('o' || :n, 'c' || :n, 'awaiting_payment',
  '[{"sku": 1, "quantity": 1}]', 2500, now()) ON CONFLICT DO NOTHING;
INSERT INTO b_timeline (order_id, status, at) VALUES ('o' || :n, 'awaiting_payment', now());
INSERT INTO b_outbox (event_id, key, payload, headers, created_at)
  VALUES (gen_random_uuid(), 'o' || :n, '\\x0a0b', '{}', now());
UPDATE b_idem SET status = 201, body = '{"order_id": "x"}' WHERE caller = 'c' || :n
  AND key = 'k' || :n;
COMMIT;
"""


def _pgbench(url: str, clients: int, transactions: int) -> tuple[float, list[float], str]:
    binary = shutil.which("pgbench")
    psql = shutil.which("psql")
    if binary is None or psql is None:
        return float("nan"), [], "pgbench/psql not found"
    u = urlparse(url.replace("postgresql+asyncpg", "postgresql"))
    env = {
        **os.environ,
        "PGHOST": u.hostname or "127.0.0.1",
        "PGPORT": str(u.port or 5432),
        "PGUSER": u.username or "",
        "PGPASSWORD": u.password or "",
        "PGDATABASE": u.path.lstrip("/"),
    }
    subprocess.run([psql, "-q", "-c", PGBENCH_SETUP], env=env, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "checkout.sql"
        script.write_text(PGBENCH_SCRIPT)
        out = subprocess.run(
            [
                binary,
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-t",
                str(transactions),
                "-l",
                "-f",
                str(script),
            ],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        latencies: list[float] = []
        for log in Path(tmp).glob("pgbench_log*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1e6)
    tps = float("nan")
    for line in out.splitlines():
        if line.startswith("tps =") or line.startswith("tps="):
            tps = float(line.split("=")[1].split()[0])
    return tps, latencies, f"pgbench -n -c {clients} -j 2 -t {transactions}"


async def run() -> list[Row]:
    random.seed(SEED)
    result, statuses = await _services_checkout()
    pg_url = _url("order").rsplit("/", 1)[0] + "/ecomops_order_pgbench"
    await ensure_database(pg_url)
    per_client = max(1, ORDERS // CONCURRENCY)
    tps, pg_lat, how = await asyncio.to_thread(_pgbench, pg_url, CONCURRENCY, per_client)
    outcome = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    notes = (
        f"{CONCURRENCY} clients, {ORDERS} checkouts after {WARMUP} warm-up, 4 services + "
        f"PostgreSQL + Kafka on the same host; outcomes {outcome}; {result.failed} failed"
    )
    rows = [
        row(
            "checkout throughput",
            result.throughput,
            "orders/s",
            f"{how}: same writes per order",
            tps,
            notes,
        ),
    ]
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        rows.append(
            row(
                f"checkout latency {label}",
                result.p(q),
                "ms",
                f"pgbench per-order latency {label}",
                percentile(pg_lat, q) * 1000.0,
                notes if label == "p50" else "",
            )
        )
    return rows


if __name__ == "__main__":
    table = asyncio.run(run())
    print(f"{'figure':<26} {'value':>10} {'unit':<9} {'baseline':>10} {'ratio':>8}  baseline")
    for r in table:
        print(
            f"{r['figure']!s:<26} {float(r['value']):>10.1f} {r['unit']!s:<9} "  # type: ignore[arg-type]
            f"{float(r['baseline_value']):>10.1f} {float(r['ratio']):>8.3f}  {r['baseline']}"  # type: ignore[arg-type]
        )
    print(table[0]["notes"])
