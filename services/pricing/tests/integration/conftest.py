"""The pricing service running in-process against the real PostgreSQL and Kafka (once per
session), plus helpers to seed the SKU registry copy and prices."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import httpx
import pytest

from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.events import create_topics, kafka_client_options, make_producer
from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_testing import bearer, token
from pricing_service.bootstrap import create_service
from pricing_service.entrypoints import consumers
from pricing_service.service_layer import handlers
from pricing_service.settings import PricingSettings

TEST_CONSUMER = "tests"


async def fast_forward_group(group_id: str, topics: list[str]) -> None:
    """Commit the group's offsets at the topics' current ends: the service under test consumes
    what the tests publish, not the backlog other teams left on the shared dev Kafka."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    options = kafka_client_options(CommonSettings())
    producer = make_producer(CommonSettings(), "pricing-tests-setup")
    await producer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(await producer.partitions_for(topic))
        ]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(group_id=group_id, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


@pytest.fixture(scope="session")
async def pricing(stack_env: None) -> AsyncIterator[Service]:
    url = os.environ["PRICING_DATABASE_URL"]
    await upgrade_async("pricing", url)
    await create_topics(CommonSettings())
    await fast_forward_group(f"ecomops-pricing-{TEST_CONSUMER}", consumers.TOPICS)
    # Its own consumer group: other pricing processes on the shared dev Kafka (a running
    # `ecomops serve pricing`) must not take partitions away from the service under test.
    settings = PricingSettings(
        database_url=url, http_port=0, grpc_port=0, consumer_name=TEST_CONSUMER
    )
    service = create_service(settings)
    async with service.running():
        yield service


@pytest.fixture(scope="session")
def settings(pricing: Service) -> PricingSettings:
    assert isinstance(pricing.settings, PricingSettings)
    return pricing.settings


@pytest.fixture(scope="session")
async def client(pricing: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{pricing.http_port}", timeout=30
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def stub(pricing: Service) -> AsyncIterator[pb_grpc.PricingServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{pricing.grpc_port}") as channel:
        yield pb_grpc.PricingServiceStub(channel)  # type: ignore[no-untyped-call]


def ops(subject: str = "pricing-manager") -> dict[str, str]:
    return bearer(subject, "ops")


def svc() -> dict[str, str]:
    return bearer("service:order", "service")


def grpc_md(subject: str, role: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(subject, role)}"),)


async def seed_sku(service: Service, sku: str, category: str = "shoes") -> None:
    await handlers.record_sku(
        service.uow(),
        sku=sku,
        title=f"title {sku}",
        category=category,
        status="active",
        at=datetime.now(UTC),
    )


async def seed_price(
    client: httpx.AsyncClient,
    sku: str,
    price: int,
    cost: int,
    *,
    currency: str = "EUR",
    commission: str = "0.05",
    marketing: str = "0.05",
) -> None:
    response = await client.put(
        f"/v1/prices/{sku}",
        json={
            "currency": currency,
            "list_price_minor": price,
            "unit_cost_minor": cost,
            "commission_rate": commission,
            "marketing_cost_rate": marketing,
            "reason": "seed",
        },
        headers=ops(),
    )
    assert response.status_code == 200, response.text
