"""A consumer process for the SIGKILL test (test_consumer_batches.py): applies the batch topic
in chunks; the handler of a "SLP" event prints IN-CHUNK and sleeps, so that the test can kill
the process with a chunk's transaction open (earlier events of the chunk already written).

Usage: python batch_worker.py DATABASE_URL GROUP_PREFIX SUBSCRIPTION_NAME
"""

from __future__ import annotations

import asyncio
import sys

import sqlalchemy as sa

from ecomops.common.v1 import common_pb2  # noqa: F401 - registers the event type
from ecomops_platform.consumer import ConsumerRunner, Subscription
from ecomops_platform.db import Database, UnitOfWork
from ecomops_platform.events import Envelope, make_producer
from ecomops_platform.producer import ResilientProducer
from ecomops_platform.settings import CommonSettings

BATCH_TOPIC = "ecomops.probe.batch.v1"
applied = sa.table("applied_events", sa.column("event_id"), sa.column("key"), sa.column("amount"))


async def handle(uow: UnitOfWork, envelope: Envelope) -> None:
    money = envelope.message
    await uow.session.execute(
        sa.insert(applied).values(
            event_id=envelope.event_id,
            key=envelope.key,
            amount=money.amount_minor,  # type: ignore[attr-defined]
        )
    )
    if money.currency == "SLP":  # type: ignore[attr-defined]
        print("IN-CHUNK", flush=True)
        await asyncio.sleep(600)


async def main(url: str, prefix: str, name: str) -> None:
    settings = CommonSettings(consumer_group_prefix=prefix, consumer_batch_size=10)
    db = Database(url)
    producer = ResilientProducer(lambda: make_producer(settings, "batch-worker"), service="probe")
    await producer.start()
    runner = ConsumerRunner(
        service="probe",
        settings=settings,
        db=db,
        producer=producer,
        subscription=Subscription([BATCH_TOPIC], {"ecomops.common.v1.Money": handle}, name=name),
    )
    await runner.start()
    print("STARTED", flush=True)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
