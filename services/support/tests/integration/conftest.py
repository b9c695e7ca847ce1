"""The support service running in-process against the real PostgreSQL and Kafka (once per
session). Its order and pricing ports are the unit tests' fakes (the real gRPC calls are
exercised by the e2e journey): tests register the orders they need on ``orders``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_testing import ensure_database
from support_service.bootstrap import SPEC, deps_from
from support_service.knowledge_base import load_starter_articles
from support_service.service_layer.articles import SeedArticles
from support_service.service_layer.ports import Ports
from support_service.settings import SupportSettings

from ..unit.fakes import FakeCoupons, FakeOrders, FakeReturns


def _url() -> str:
    url = os.environ.get("SUPPORT_DATABASE_URL")
    if url:
        return url
    # A stack written before the support service existed: its database beside the others.
    return os.environ["RISK_DATABASE_URL"].rsplit("/", 1)[0] + "/ecomops_support"


@pytest.fixture(scope="session")
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture(scope="session")
def coupons() -> FakeCoupons:
    return FakeCoupons()


@pytest.fixture(scope="session")
async def support(
    stack_env: None, orders: FakeOrders, coupons: FakeCoupons
) -> AsyncIterator[Service]:
    url = _url()
    await ensure_database(url)
    await upgrade_async("support", url)
    settings = SupportSettings(database_url=url, http_port=0, grpc_port=0, sla_job_interval=3600)
    deps = deps_from(settings)
    deps.ports = Ports(orders=orders, coupons=coupons, returns=FakeReturns())
    # Order events reach the handlers directly in the tests (the shared dev Kafka carries
    # other branches' event types, which this consumer would dead-letter).
    spec = dataclasses.replace(SPEC, subscriptions=())
    service = spec.create(settings, dependencies=deps)
    async with service.running():
        bus = service.bus
        assert bus is not None
        await bus.handle(
            SeedArticles(articles=tuple(load_starter_articles()), only_when_empty=True),
            bus.system,
        )
        yield service


@pytest.fixture(scope="session")
async def client(support: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{support.http_port}", timeout=20
    ) as http:
        yield http
