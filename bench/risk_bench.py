"""Risk benchmark: assessments per second and p50/p95/p99 latency through REST and gRPC,
beside a bare FastAPI endpoint (POST echo of the same body) measured in the same run.

Assumes a stack's env is exported (RISK_DATABASE_URL, ECOMOPS_KAFKA_BOOTSTRAP, ECOMOPS_JWT_SECRET);
runs migrations, starts the risk service in-process (rules only, default rule set) and drives it
with a closed loop of concurrent clients. Fixed seed: the same customers/devices/IPs every run.

Run: ``python -m bench.risk_bench`` (``RISK_BENCH_SCALE`` scales the request counts).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import uuid
from typing import Any

import httpx

from bench.common import Row, bare_server, closed_loop, row

CONCURRENCY = 16


def _orders(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:8] + uuid.uuid4().hex[:6]
    customers = [f"bench-{run}-c{i}" for i in range(max(1, n // 5))]
    out = []
    for i in range(n):
        amount = rng.randint(500, 90_000)
        out.append(
            {
                "order_id": f"bench-{run}-o{i}",
                "customer_id": rng.choice(customers),
                "amount_minor": amount,
                "currency": "EUR",
                "lines": [
                    {"sku": f"SKU-{rng.randint(1, 500)}", "quantity": 1, "unit_price_minor": amount}
                ],
                "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
                "device_id": f"dev-{rng.randint(0, n)}",
                "billing_country": rng.choice(["DE", "DE", "DE", "FR"]),
                "shipping_country": "DE",
            }
        )
    return out


async def run() -> list[Row]:
    from ecomops.risk.v1 import risk_service_pb2 as pb
    from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
    from ecomops_platform.auth import mint_token
    from ecomops_platform.migrations import upgrade_async
    from ecomops_platform.settings import CommonSettings
    from risk_service.bootstrap import create_service
    from risk_service.settings import RiskSettings

    scale = float(os.environ.get("RISK_BENCH_SCALE", "1"))
    total = int(600 * scale)
    url = os.environ["RISK_DATABASE_URL"]
    await upgrade_async("risk", url)
    secret = os.environ["ECOMOPS_JWT_SECRET"]
    headers = {"Authorization": f"Bearer {mint_token(secret, 'service:order', 'service')}"}
    import grpc

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as models:
        settings = RiskSettings(database_url=url, http_port=0, grpc_port=0, model_dir=models)
        # The per-caller REST rate limit (600/min by default) would turn the load into 429s.
        common = CommonSettings(rate_limit_per_minute=10_000_000)
        service = create_service(settings, common)
        async with service.running(), bare_server() as bare_port:
            limits = httpx.Limits(max_connections=CONCURRENCY)
            async with httpx.AsyncClient(timeout=10, limits=limits) as http:
                orders = _orders(total, seed=42)
                base = f"http://127.0.0.1:{service.http_port}"

                async def warm(i: int) -> bool:
                    r = await http.post(f"{base}/v1/assessments", json=o_warm[i], headers=headers)
                    return r.status_code == 201

                o_warm = _orders(100, seed=7)
                await closed_loop(warm, concurrency=CONCURRENCY, total=100)

                async def assess(i: int) -> bool:
                    r = await http.post(f"{base}/v1/assessments", json=orders[i], headers=headers)
                    return r.status_code == 201

                async def echo(i: int) -> bool:
                    r = await http.post(
                        f"http://127.0.0.1:{bare_port}/v1/echo", json=orders[i], headers=headers
                    )
                    return r.status_code == 200

                bare = await closed_loop(echo, concurrency=CONCURRENCY, total=total)
                rest = await closed_loop(assess, concurrency=CONCURRENCY, total=total)
                replay = await closed_loop(assess, concurrency=CONCURRENCY, total=total)

            channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}")
            stub = pb_grpc.RiskServiceStub(channel)
            meta = (("authorization", headers["Authorization"]),)
            g_orders = _orders(total, seed=43)

            async def assess_grpc(i: int) -> bool:
                o = g_orders[i]
                req = pb.AssessOrderRequest(
                    order_id=o["order_id"],
                    customer_id=o["customer_id"],
                    amount_minor=o["amount_minor"],
                    currency="EUR",
                    lines=[pb.AssessmentLine(**line) for line in o["lines"]],
                    ip=o["ip"],
                    device_id=o["device_id"],
                    billing_country=o["billing_country"],
                    shipping_country=o["shipping_country"],
                )
                resp = await stub.AssessOrder(req, metadata=meta, timeout=5)
                return bool(resp.assessment.assessment_id)

            try:
                g = await closed_loop(assess_grpc, concurrency=CONCURRENCY, total=total)
            finally:
                await channel.close()

    note = f"{CONCURRENCY} concurrent clients, {total} new orders, rules only, 2-core shared host"
    baseline = "bare FastAPI POST /v1/echo (same body, same client)"
    rows.append(
        row(
            "risk REST assessments/s",
            rest.throughput,
            "req/s",
            baseline,
            bare.throughput,
            note + f"; {rest.failed} failed",
        )
    )
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        rows.append(
            row(f"risk REST assess latency {name}", rest.p(q), "ms", baseline, bare.p(q), note)
        )
    rows.append(
        row(
            "risk gRPC assessments/s",
            g.throughput,
            "req/s",
            baseline,
            bare.throughput,
            note + f"; {g.failed} failed",
        )
    )
    rows.append(row("risk gRPC assess latency p99", g.p(0.99), "ms", baseline, bare.p(0.99), note))
    rows.append(
        row(
            "risk REST replay (same order_id) p50",
            replay.p(0.5),
            "ms",
            "risk REST new assessment p50",
            rest.p(0.5),
            "idempotent replay returns the stored assessment (200)",
        )
    )
    return rows


if __name__ == "__main__":
    result = asyncio.run(run())
    print(f"{'figure':42} {'value':>10} {'unit':6} {'baseline':>10} {'ratio':>7}  notes")
    for r in result:
        print(
            f"{r['figure']!s:42} {float(r['value']):10.2f} {r['unit']!s:6} "  # type: ignore[arg-type]
            f"{float(r['baseline_value']):10.2f} {float(r['ratio']):7.2f}  {r['notes']}"  # type: ignore[arg-type]
        )
