"""Consumer-side benchmark: recommendation's real ConsumerRunner applying pre-produced events,
one transaction per event (batch size 1, the former path) against chunks of several events in
one transaction (``ECOMOPS_CONSUMER_BATCH_SIZE``), in the same run.

What a checkout costs recommendation's consumer: an ``OrderPlaced`` (keyed by order) and a
``StockLevelChanged`` (keyed by SKU, 20 SKUs) per checkout, applied by the service's own
handlers (``entrypoints.consumers.domain_handlers``), unit of work and bus, on a database of
its own (``ecomops_bench_consume``, recommendation's migrations) on the stack's PostgreSQL.

For each configuration: a fresh consumer group pinned at the end of the bench topic, the
events of N checkouts produced, then the runner started; timed from the start of its first
chunk until every event is handled. Reported: events/s, CPU ms per event of this process
(the consumer: decoding, handlers, driver, Kafka fetches), server transactions per event
(``pg_stat_database`` deltas of the bench database, read after the pool is closed so that
the backends have flushed their counters), and the chunks that fell back to one event at a
time. Configurations alternate (1, B, 1, B …) so that load on the shared machine hits both.

Run with the dev stack env exported:
``python -m bench.consume_bench [--checkouts N] [--sizes 1,50] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.bus import MessageBus
from ecomops_platform.consumer import ConsumerRunner, Subscription
from ecomops_platform.db import Database
from ecomops_platform.events import (
    cloudevent_headers,
    create_topics,
    kafka_client_options,
    make_producer,
)
from ecomops_platform.migrations import upgrade
from ecomops_platform.producer import ResilientProducer
from ecomops_platform.settings import CommonSettings

DB_NAME = "ecomops_bench_consume"
TOPIC = "ecomops.bench.consume.v1"
SKUS = [f"BENCH-SKU-{i:02d}" for i in range(20)]
CUSTOMERS = [f"bench-c{i:03d}" for i in range(50)]


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _url() -> str:
    return os.environ["RECOMMENDATION_DATABASE_URL"].rsplit("/", 1)[0] + "/" + DB_NAME


def _admin_dsn() -> str:
    return os.environ["RECOMMENDATION_DATABASE_URL"].replace("+asyncpg", "")


async def prepare() -> None:
    admin = await asyncpg.connect(_admin_dsn())
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", DB_NAME):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, "recommendation", _url())
    await create_topics(CommonSettings(), [TOPIC])


async def _xacts() -> int:
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await admin.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
                DB_NAME,
            )
        )
    finally:
        await admin.close()


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _checkout_events(rng: random.Random, run: str, i: int) -> list[tuple[str, Any]]:
    """(key, message) of one checkout, as recommendation sees them."""
    now = datetime.now(UTC)
    sku = rng.choice(SKUS)
    quantity = rng.randint(1, 3)
    placed = order_events.OrderPlaced(
        order_id=f"bench-{run}-{i}",
        customer_id=rng.choice(CUSTOMERS),
        currency="EUR",
        lines=[
            order_events.OrderLine(
                sku=sku, quantity=quantity, unit_price_minor=1999, total_minor=1999 * quantity
            )
        ],
        subtotal_minor=1999 * quantity,
        total_minor=1999 * quantity,
        status="awaiting_payment",
        placed_at=_stamp(now),
    )
    level = inventory_events.StockLevelChanged(
        sku=sku, available=rng.randint(0, 500), on_hand=500, reserved=10, occurred_at=_stamp(now)
    )
    return [(placed.order_id, placed), (sku, level)]


async def _produce(run: str, checkouts: int) -> int:
    rng = random.Random(42)
    producer = make_producer(CommonSettings(), "bench-consume")
    await producer.start()
    sent = 0
    try:
        for i in range(checkouts):
            for key, message in _checkout_events(rng, run, i):
                headers = cloudevent_headers(
                    event_id=str(uuid.uuid4()),
                    event_type=message.DESCRIPTOR.full_name,
                    source="ecomops/bench",
                    time=datetime.now(UTC),
                    traceparent=None,
                )
                await producer.send(
                    TOPIC,
                    value=message.SerializeToString(),
                    key=key.encode(),
                    headers=[(k, v.encode()) for k, v in headers.items()],
                )
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _pin_group_at_end(group_id: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=group_id, enable_auto_commit=False, **kafka_client_options(CommonSettings())
    )
    await consumer.start()
    try:
        meta = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(TOPIC, p) for p in meta.partitions_for_topic(TOPIC)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.commit({tp: ends[tp] for tp in parts})
    finally:
        await consumer.stop()


@dataclass
class Result:
    batch_size: int
    events: int
    wall: float
    cpu: float
    xacts: int
    chunks: int
    fallbacks: int

    @property
    def rate(self) -> float:
        return self.events / self.wall

    def line(self) -> str:
        return (
            f"batch size {self.batch_size:>3}: {self.events} events in {self.wall:.2f} s = "
            f"{self.rate:,.0f} events/s, {self.cpu / self.events * 1e3:.2f} CPU ms/event, "
            f"{self.xacts / self.events:.3f} transactions/event, {self.chunks} chunks in one "
            f"transaction, {self.fallbacks} fell back ({_load()})"
        )


async def run_once(batch_size: int, checkouts: int) -> Result:
    from recommendation_service.adapters.unit_of_work import SqlRecommendationUnitOfWork
    from recommendation_service.bootstrap import SPEC, dependencies_of
    from recommendation_service.entrypoints.consumers import domain_handlers
    from recommendation_service.settings import RecommendationSettings

    run = uuid.uuid4().hex[:8]
    prefix = f"bench-{run}-"
    settings = CommonSettings(consumer_group_prefix=prefix, consumer_batch_size=batch_size)
    db = Database(_url(), pool_size=2, max_overflow=0)

    def uow() -> SqlRecommendationUnitOfWork:
        return SqlRecommendationUnitOfWork(db, "recommendation")

    bus: MessageBus[Any, Any] = MessageBus(
        service="recommendation",
        uow=uow,
        deps=dependencies_of(RecommendationSettings(database_url=_url())),
        handlers=SPEC.handlers,
    )
    producer = ResilientProducer(lambda: make_producer(settings, "bench-dlq"), service="bench")
    await producer.start()
    runner = ConsumerRunner(
        service="recommendation",
        settings=settings,
        db=db,
        producer=producer,
        subscription=Subscription([TOPIC], dict(domain_handlers(bus)), name=f"bench-{run}"),
        unit_of_work=uow,
    )
    await _pin_group_at_end(runner.group_id)
    total = await _produce(run, checkouts)
    started: list[tuple[float, float]] = []
    handle_chunk = runner._handle_chunk

    async def timed(messages: Any) -> None:
        if not started:
            started.append((time.perf_counter(), time.process_time()))
        await handle_chunk(messages)

    runner._handle_chunk = timed  # type: ignore[method-assign]
    xacts_before = await _xacts()
    await runner.start()
    task = asyncio.create_task(runner.run())
    try:
        while runner.processed < total:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        wall_end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.stop()
        await producer.stop()
        await db.dispose()
    await asyncio.sleep(0.5)
    xacts = await _xacts() - xacts_before
    wall_start, cpu_start = started[0]
    return Result(
        batch_size=runner.batch_size,
        events=total,
        wall=wall_end - wall_start,
        cpu=cpu_end - cpu_start,
        xacts=xacts,
        chunks=runner.chunks_committed,
        fallbacks=runner.chunks_fallen_back,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--sizes", default="1,25", help="batch sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    await prepare()
    await run_once(1, 50)  # warm-up: imports, statement caches, the topic's leaders
    results: dict[int, list[Result]] = {s: [] for s in sizes}
    for _ in range(args.rounds):
        for size in sizes:
            result = await run_once(size, args.checkouts)
            results[size].append(result)
            print(result.line(), flush=True)
    print()
    print("| batch size | events/s (median) | CPU ms/event | transactions/event | vs size 1 |")
    print("|---:|---:|---:|---:|---:|")
    base = None
    for size in sizes:
        runs = sorted(results[size], key=lambda r: r.rate)
        mid = runs[len(runs) // 2]
        if size == 1 or base is None:
            base = mid.rate if size == 1 else base
        ratio = f"{mid.rate / base:.2f}x" if base else "-"
        print(
            f"| {size} | {mid.rate:,.0f} | {mid.cpu / mid.events * 1e3:.2f} | "
            f"{mid.xacts / mid.events:.3f} | {ratio} |"
        )
    print(f"({args.checkouts} checkouts = {2 * args.checkouts} events per run; {_load()})")


if __name__ == "__main__":
    from ecomops_platform.runtime import run

    run(main())
