"""The risk service running in-process against the real PostgreSQL and Kafka (once per session)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from risk_service.bootstrap import create_service
from risk_service.settings import RiskSettings


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("risk-models")


@pytest.fixture(scope="session")
async def risk(stack_env: None, model_dir: Path) -> AsyncIterator[Service]:
    url = os.environ["RISK_DATABASE_URL"]
    await upgrade_async("risk", url)
    settings = RiskSettings(
        database_url=url,
        http_port=0,
        grpc_port=0,
        model_dir=str(model_dir),
        model_refresh_seconds=0.5,
    )
    service = create_service(settings)
    async with service.running():
        yield service


@pytest.fixture(scope="session")
async def client(risk: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{risk.http_port}", timeout=20) as http:
        yield http
