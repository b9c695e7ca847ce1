"""The pytest plugin of every suite (loaded by the root conftest): the test stack's settings
and a Kafka probe factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from . import KafkaProbe, load_test_env


@pytest.fixture(scope="session")
def stack_env() -> None:
    load_test_env()


@pytest.fixture
async def kafka_probe(stack_env: None) -> AsyncIterator[Callable[..., Any]]:
    probes: list[KafkaProbe] = []

    async def make(*topics: str) -> KafkaProbe:
        probe = KafkaProbe(list(topics))
        await probe.start()
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        await probe.stop()
