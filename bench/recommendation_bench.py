"""Recommendation benchmark: serving latency p50/p95/p99 and throughput of the recommendation
endpoints beside a bare FastAPI endpoint (same run), and event-to-answer freshness (an OrderPaid
or a BehaviorRecorded produced to Kafka until its effect shows in an answer) beside a raw
aiokafka produce-to-consume round trip.

Assumes a stack's env is exported (RECOMMENDATION_DATABASE_URL, ECOMOPS_KAFKA_BOOTSTRAP,
ECOMOPS_JWT_SECRET); runs migrations, starts the service in-process, seeds a catalogue of 200
SKUs, 400 paid orders and 1000 views through the messages the consumers send (fixed seed),
then drives the API with 16 concurrent clients.

Run: ``python -m bench.recommendation_bench`` (``RECOMMENDATION_BENCH_SCALE`` scales counts).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import Row, bare_server, closed_loop, row

CONCURRENCY = 16
SEED = 7


async def _seed(service: Any, run: str, rng: random.Random, orders: int, views: int) -> list[str]:
    from recommendation_service.domain.models import BehaviorEvent, BehaviorType
    from recommendation_service.service_layer.learning import (
        LearnFromBehavior,
        LearnFromPaidOrder,
        OrderLine,
        UpdateCatalogItem,
        UpdateStockLevel,
    )

    bus = service.bus
    skus = [f"bench-{run}-sku{i}" for i in range(200)]
    now = datetime.now(UTC)
    async with service.uow() as uow:
        for i, sku in enumerate(skus):
            await bus.handle(
                UpdateCatalogItem(
                    sku=sku,
                    title=f"Bench item {i}",
                    category=f"bench-{run}-cat{i % 10}",
                    brand="",
                    status="active",
                    updated_at=now,
                ),
                bus.system,
                uow=uow,
            )
            await bus.handle(
                UpdateStockLevel(sku=sku, available=100, occurred_at=now), bus.system, uow=uow
            )
        await uow.commit()
    # Zipf-like popularity, baskets of 1-5 lines within a category-biased neighbourhood.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(skus))]
    customers = [f"bench-{run}-c{i}" for i in range(150)]
    batch: list[Any] = []
    for o in range(orders):
        first = rng.choices(range(len(skus)), weights)[0]
        lines = {skus[first]} | {
            skus[(first + rng.randint(1, 15)) % len(skus)] for _ in range(rng.randint(0, 4))
        }
        order_id = f"bench-{run}-o{o}"
        batch.append(
            LearnFromPaidOrder(
                event_id=order_id,
                order_id=order_id,
                customer_id=rng.choice(customers),
                currency="EUR",
                total_minor=rng.randint(500, 20_000),
                paid_at=now - timedelta(minutes=orders - o),
                lines=tuple(OrderLine(s, 1) for s in sorted(lines)),
                sent_at=now,
            )
        )
        if len(batch) == 25 or o == orders - 1:
            # The consumer applies one event per transaction; seeding batches 25 for speed.
            async with service.uow() as uow:
                for command in batch:
                    await bus.handle(command, bus.system, uow=uow)
                await uow.commit()
            batch = []
    views_batch: list[Any] = []
    for v in range(views):
        sku = skus[rng.choices(range(len(skus)), weights)[0]]
        event = BehaviorEvent(
            type=BehaviorType.VIEW,
            sku=sku,
            customer_id=rng.choice(customers),
            session_id=None,
            occurred_at=now - timedelta(seconds=views - v),
        )
        views_batch.append(event)
        if len(views_batch) == 100 or v == views - 1:
            async with service.uow() as uow:
                for n, e in enumerate(views_batch):
                    await bus.handle(
                        LearnFromBehavior(event_id=f"bench-{run}-v{v}-{n}", event=e, sent_at=now),
                        bus.system,
                        uow=uow,
                    )
                await uow.commit()
            views_batch = []
    return skus


async def _kafka_round_trip(samples: int) -> list[float]:
    """Raw aiokafka: produce one record, time until a consumer already at the end reads it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ecomops_platform.events import kafka_client_options, make_producer
    from ecomops_platform.settings import CommonSettings

    settings = CommonSettings()
    topic = "ecomops.behavior.v1.dlq"  # an existing topic nobody consumes in the benchmark
    producer = make_producer(settings, "bench-rt")
    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, **kafka_client_options(settings)
    )
    await producer.start()
    await consumer.start()
    out: list[float] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        for i in range(samples):
            marker = f"bench-rt-{uuid.uuid4().hex}".encode()
            started = time.perf_counter()
            await producer.send_and_wait(topic, value=marker, partition=0, key=str(i).encode())
            found = False
            while not found:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found = any(m.value == marker for msgs in batch.values() for m in msgs)
            out.append(time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


async def run() -> list[Row]:
    from ecomops.inventory.v1 import events_pb2 as inv
    from ecomops.order.v1 import events_pb2 as order_events
    from ecomops_platform.auth import mint_token
    from ecomops_platform.events import cloudevent_headers, make_producer
    from ecomops_platform.migrations import upgrade_async
    from ecomops_platform.settings import CommonSettings
    from recommendation_service.bootstrap import create_service
    from recommendation_service.settings import RecommendationSettings

    scale = float(os.environ.get("RECOMMENDATION_BENCH_SCALE", "1"))
    total = int(300 * scale)
    rng = random.Random(SEED)
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex[:6] + uuid.uuid4().hex[:6]
    url = os.environ["RECOMMENDATION_DATABASE_URL"]
    await upgrade_async("recommendation", url)
    secret = os.environ["ECOMOPS_JWT_SECRET"]
    settings = RecommendationSettings(database_url=url, http_port=0, grpc_port=0)
    common = CommonSettings(rate_limit_per_minute=10_000_000)
    service = create_service(settings, common)
    rows: list[Row] = []
    async with service.running(), bare_server() as bare_port:
        seed_started = time.perf_counter()
        skus = await _seed(service, run_id, rng, int(400 * scale), int(1000 * scale))
        seed_s = time.perf_counter() - seed_started
        ops = {"Authorization": f"Bearer {mint_token(secret, 'bench-ops', 'ops')}"}
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            base = f"http://127.0.0.1:{service.http_port}"
            bare = f"http://127.0.0.1:{bare_port}/v1/ping"
            for _ in range(50):  # warm-up: connections, pools, caches
                await http.get(bare)
                await http.get(f"{base}/v1/recommendations/trending", headers=ops)

            async def bare_call(i: int) -> bool:
                return (await http.get(bare)).status_code == 200

            baseline = await closed_loop(bare_call, concurrency=CONCURRENCY, total=total)
            picks = [skus[rng.randrange(40)] for _ in range(total)]
            customers = [f"bench-{run_id}-c{rng.randrange(150)}" for _ in range(total)]
            endpoints = {
                "bought-together": lambda i: (
                    f"{base}/v1/recommendations/skus/{picks[i]}/bought-together"
                ),
                "similar": lambda i: f"{base}/v1/recommendations/skus/{picks[i]}/similar",
                "customer": lambda i: f"{base}/v1/recommendations/customers/{customers[i]}",
                "trending": lambda i: f"{base}/v1/recommendations/trending",
            }
            for name, path in endpoints.items():

                async def call(i: int, path: Any = path) -> bool:
                    r = await http.get(path(i), headers=ops)
                    return r.status_code == 200 and bool(r.json()["items"])

                result = await closed_loop(call, concurrency=CONCURRENCY, total=total)
                note = (
                    f"{result.ok}/{total} non-empty; {CONCURRENCY} clients; 200 SKUs, "
                    f"{int(400 * scale)} orders, {int(1000 * scale)} views seeded in {seed_s:.1f}s"
                )
                for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                    rows.append(
                        row(
                            f"GET {name} latency {label}",
                            result.p(q),
                            "ms",
                            f"bare FastAPI GET {label}",
                            baseline.p(q),
                            note,
                        )
                    )
                rows.append(
                    row(
                        f"GET {name} throughput",
                        result.throughput,
                        "req/s",
                        "bare FastAPI GET throughput",
                        baseline.throughput,
                        note,
                    )
                )

            # Freshness: from producing the event to its effect in an answer.
            producer = make_producer(CommonSettings(), "bench-fresh")
            await producer.start()
            try:

                async def send(topic: str, key: str, message: Any, source: str) -> None:
                    headers = cloudevent_headers(
                        event_id=str(uuid.uuid4()),
                        event_type=message.DESCRIPTOR.full_name,
                        source=f"ecomops/{source}",
                        time=datetime.now(UTC),
                        traceparent=None,
                    )
                    await producer.send_and_wait(
                        topic,
                        value=message.SerializeToString(),
                        key=key.encode(),
                        headers=[(k, v.encode()) for k, v in headers.items()],
                    )

                async def wait_for(path: str, sku: str, started: float) -> float:
                    deadline = started + 30
                    while time.perf_counter() < deadline:
                        r = await http.get(path, headers=ops)
                        if sku in [i["sku"] for i in r.json()["items"]]:
                            return time.perf_counter() - started
                        await asyncio.sleep(0.02)
                    return float("nan")

                paid_s: list[float] = []
                view_s: list[float] = []
                for n in range(5):
                    a, b = f"bench-{run_id}-fa{n}", f"bench-{run_id}-fb{n}"
                    for sku in (a, b):
                        await send(
                            "ecomops.inventory.v1",
                            sku,
                            inv.SkuUpserted(sku=sku, title=sku, category="bench", status="active"),
                            "inventory",
                        )
                        await send(
                            "ecomops.inventory.v1",
                            sku,
                            inv.StockLevelChanged(sku=sku, available=5, on_hand=5),
                            "inventory",
                        )
                    await asyncio.sleep(0.5)  # the catalogue first: we time the order alone
                    paid = order_events.OrderPaid(
                        order_id=f"bench-{run_id}-fo{n}",
                        customer_id=f"bench-{run_id}-fc{n}",
                        currency="EUR",
                        total_minor=1000,
                        lines=[order_events.OrderLine(sku=s, quantity=1) for s in (a, b)],
                    )
                    paid.paid_at.GetCurrentTime()
                    started = time.perf_counter()
                    await send("ecomops.order.v1", paid.order_id, paid, "order")
                    paid_s.append(
                        await wait_for(
                            f"{base}/v1/recommendations/skus/{a}/bought-together", b, started
                        )
                    )
                    session = f"bench-{run_id}-fs{n}"
                    now = datetime.now(UTC).isoformat()
                    started = time.perf_counter()
                    r = await http.post(
                        f"{base}/v1/behavior-events",
                        json={
                            "events": [
                                {
                                    "type": "view",
                                    "sku": s,
                                    "session_id": session,
                                    "occurred_at": now,
                                }
                                for s in (b, a)
                            ]
                        },
                    )
                    assert r.status_code == 202, r.text
                    view_s.append(
                        await wait_for(f"{base}/v1/recommendations/skus/{a}/similar", b, started)
                    )
            finally:
                await producer.stop()
        round_trip = await _kafka_round_trip(5)
        rt = statistics.median(round_trip) * 1000

        def fresh(samples: list[float]) -> tuple[float, str]:
            seen = [x for x in samples if x == x]  # NaN: not visible within 30 s
            if not seen:
                return float("nan"), "never visible within 30 s"
            missed = len(samples) - len(seen)
            note = f"max {max(seen) * 1000:.0f} ms"
            if missed:
                note += f"; {missed} of {len(samples)} not visible within 30 s (excluded)"
            return statistics.median(seen) * 1000, note

        paid_ms, paid_note = fresh(paid_s)
        view_ms, view_note = fresh(view_s)
        rows.append(
            row(
                "freshness OrderPaid -> bought-together (median of 5)",
                paid_ms,
                "ms",
                "raw aiokafka produce->consume round trip (median of 5)",
                rt,
                f"{paid_note}; answers polled every 20 ms",
            )
        )
        rows.append(
            row(
                "freshness POST behavior-events -> similar (median of 5)",
                view_ms,
                "ms",
                "raw aiokafka produce->consume round trip (median of 5)",
                rt,
                f"{view_note}; includes the outbox relay (poll 0.1 s)",
            )
        )
    return rows


if __name__ == "__main__":
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # rebalance chatter
    results = asyncio.run(run())
    print(f"{'figure':<58} {'value':>10} {'unit':<6} {'baseline':>10} {'ratio':>7}  notes")
    for r in results:
        print(
            f"{r['figure']!s:<58} {float(r['value']):>10.2f} {r['unit']!s:<6} "  # type: ignore[arg-type]
            f"{float(r['baseline_value']):>10.2f} {float(r['ratio']):>7.2f}  {r['notes']}"  # type: ignore[arg-type]
        )
