"""The pricing service running in-process against the real PostgreSQL and Kafka (once per
session), plus helpers to seed the SKU registry copy and prices."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest

from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.events import create_topics
from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_testing import bearer, ops, skip_to_end, token
from pricing_service.bootstrap import SPEC, create_service
from pricing_service.entrypoints import consumers
from pricing_service.service_layer.ports import Deps, PricingUnitOfWork
from pricing_service.service_layer.signals import RecordSku
from pricing_service.settings import PricingSettings

TEST_CONSUMER = "tests"


@pytest.fixture(scope="session")
async def pricing(stack_env: None) -> AsyncIterator[Service]:
    url = os.environ["PRICING_DATABASE_URL"]
    await upgrade_async("pricing", url)
    await create_topics(CommonSettings())
    await skip_to_end(f"ecomops-pricing-{TEST_CONSUMER}", consumers.TOPICS)
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


def bus_of(service: Service) -> MessageBus[PricingUnitOfWork, Deps]:
    """The running service's message bus (events and jobs run as ``bus.system``)."""
    assert service.bus is not None
    bus: MessageBus[PricingUnitOfWork, Deps] = service.bus
    return bus


def bus_at(service: Service, now: datetime) -> MessageBus[PricingUnitOfWork, Deps]:
    """The service's handlers on its database with the clock at ``now`` (expiry, windows)."""
    deps: Any = replace(bus_of(service).deps, clock=lambda: now)
    return MessageBus(service="pricing", uow=service.uow, deps=deps, handlers=SPEC.handlers)


def svc() -> dict[str, str]:
    return bearer("service:order", "service")


def grpc_md(subject: str, role: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(subject, role)}"),)


async def seed_sku(service: Service, sku: str, category: str = "shoes") -> None:
    bus = bus_of(service)
    await bus.handle(
        RecordSku(
            sku=sku, title=f"title {sku}", category=category, status="active", at=datetime.now(UTC)
        ),
        bus.system,
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
