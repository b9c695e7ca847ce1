"""Pricing benchmark: quotes per second and p50/p95/p99 latency for a five-line basket with two
active promotions, through REST (``POST /v1/quotes`` with an Idempotency-Key, stored quote),
beside a bare FastAPI endpoint (uvicorn, same process, ``POST /v1/echo`` of the same body) driven
by the same client at the same concurrency in the same run.

Assumes a stack's env is exported (PRICING_DATABASE_URL, ECOMOPS_KAFKA_BOOTSTRAP,
ECOMOPS_JWT_SECRET); runs migrations and starts the pricing service in-process. Fixed seed.

Run: ``python -m bench.pricing_bench`` (``PRICING_BENCH_SCALE`` scales the request counts).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import LoadResult, Row, bare_server, closed_loop, row

CONCURRENCY = 16
SCALE = float(os.environ.get("PRICING_BENCH_SCALE", "1.0"))
TOTAL = max(50, int(600 * SCALE))
WARMUP = 50


def _rows(figure: str, result: LoadResult, base: LoadResult, notes: str) -> list[Row]:
    out = [
        row(
            f"{figure}: throughput",
            result.throughput,
            "quotes/s",
            "bare FastAPI POST echo (same client, same concurrency)",
            base.throughput,
            f"{notes}; {result.ok} ok / {result.failed} failed",
        )
    ]
    for q in (0.5, 0.95, 0.99):
        out.append(
            row(
                f"{figure}: p{int(q * 100)} latency",
                result.p(q),
                "ms",
                "bare FastAPI POST echo",
                base.p(q),
                notes,
            )
        )
    return out


async def run() -> list[Row]:
    from ecomops_platform.auth import mint_token
    from ecomops_platform.migrations import upgrade_async
    from ecomops_platform.settings import CommonSettings
    from pricing_service.bootstrap import create_service
    from pricing_service.service_layer.signals import RecordSku
    from pricing_service.settings import PricingSettings

    rng = random.Random(4)
    url = os.environ["PRICING_DATABASE_URL"]
    await upgrade_async("pricing", url)
    common = CommonSettings(rate_limit_per_minute=10**9)
    settings = PricingSettings(database_url=url, http_port=0, grpc_port=0)
    service = create_service(settings, common)
    secret = os.environ["ECOMOPS_JWT_SECRET"]
    ops = {"Authorization": f"Bearer {mint_token(secret, 'bench-ops', 'ops')}"}
    customer = {"Authorization": f"Bearer {mint_token(secret, 'bench-customer', 'customer')}"}
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex[:8] + uuid.uuid4().hex[:6]
    category = f"bench-{run_id}"
    skus = [f"bench-{run_id}-{i}" for i in range(5)]
    async with service.running():
        assert service.bus is not None
        for sku in skus:
            record = RecordSku(
                sku=sku, title=sku, category=category, status="active", at=datetime.now(UTC)
            )
            await service.bus.handle(record, service.bus.system)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{service.http_port}", timeout=30
        ) as client:
            for sku in skus:
                response = await client.put(
                    f"/v1/prices/{sku}",
                    json={
                        "currency": "EUR",
                        "list_price_minor": rng.randint(2000, 9000),
                        "unit_cost_minor": rng.randint(300, 1000),
                        "commission_rate": "0.05",
                        "marketing_cost_rate": "0.05",
                    },
                    headers=ops,
                )
                response.raise_for_status()
            now = datetime.now(UTC)
            for body in (
                {
                    "name": "bench 10%",
                    "kind": "percent",
                    "value": "0.10",
                    "scope": {"categories": [category]},
                    "stackable": True,
                },
                {
                    "name": "bench 3 for 2",
                    "kind": "buy_x_get_y",
                    "value": {"buy": 2, "get": 1},
                    "scope": {"skus": skus[:2]},
                    "stackable": True,
                },
            ):
                response = await client.post(
                    "/v1/promotions",
                    json={
                        **body,
                        "starts_at": (now - timedelta(minutes=1)).isoformat(),
                        "ends_at": (now + timedelta(hours=1)).isoformat(),
                    },
                    headers={**ops, "Idempotency-Key": uuid.uuid4().hex},
                )
                response.raise_for_status()
            basket = {
                "currency": "EUR",
                "lines": [{"sku": s, "quantity": rng.randint(1, 4)} for s in skus],
            }
            check = await client.post(
                "/v1/quotes",
                json=basket,
                headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
            )
            check.raise_for_status()
            discount = check.json()["discount_total_minor"]
            assert discount > 0, "the two promotions must apply"

            async def quote(i: int) -> bool:
                response = await client.post(
                    "/v1/quotes",
                    json=basket,
                    headers={**customer, "Idempotency-Key": f"{run_id}-{i}"},
                )
                return response.status_code == 201

            await closed_loop(quote, concurrency=CONCURRENCY, total=WARMUP)
            quotes = await closed_loop(
                lambda i: quote(i + WARMUP), concurrency=CONCURRENCY, total=TOTAL
            )

        async with (
            bare_server() as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as bare,
        ):

            async def echo(i: int) -> bool:
                response = await bare.post(
                    "/v1/echo",
                    json=basket,
                    headers={**customer, "Idempotency-Key": f"{run_id}-e{i}"},
                )
                return response.status_code == 200

            await closed_loop(echo, concurrency=CONCURRENCY, total=WARMUP)
            base = await closed_loop(echo, concurrency=CONCURRENCY, total=TOTAL)

    notes = (
        f"5-line basket, 2 stackable promotions applied (discount {discount} minor), "
        f"{TOTAL} requests, {CONCURRENCY} concurrent httpx clients, service + client + "
        "baseline in one process on the shared 2-core host"
    )
    return _rows("pricing REST quote", quotes, base, notes)


def main() -> None:
    rows = asyncio.run(run())
    print(f"{'figure':40} {'value':>10} {'unit':>9} {'baseline':>10} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['figure']!s:40} {float(r['value']):>10.1f} {r['unit']!s:>9} "  # type: ignore[arg-type]
            f"{float(r['baseline_value']):>10.1f} {float(r['ratio']):>7.3f}"  # type: ignore[arg-type]
        )
    print(rows[0]["notes"])


if __name__ == "__main__":
    main()
