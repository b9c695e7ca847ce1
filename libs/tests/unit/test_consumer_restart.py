"""The runtime replaces a consumer whose start never finishes (a broker that came and went)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings, ServiceSettings


class HangingOnceRunner:
    """A consumer runner whose first start waits for ever; later starts work."""

    group_id = "ecomops-probe"
    consumer_name = "probe:main"

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0
        self.running = asyncio.Event()

    async def start(self) -> None:
        self.starts += 1
        if self.starts == 1:
            await asyncio.Event().wait()  # never set: the broker never answers

    async def run(self) -> None:
        self.running.set()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stops += 1


async def test_a_consumer_start_that_never_ends_is_abandoned_and_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = CommonSettings(consumer_stall_seconds=0.05, jwt_secret="x" * 48)
    service = Service(
        name="probe",
        settings=ServiceSettings(database_url="postgresql+asyncpg://u:p@127.0.0.1:1/x"),
        common=common,
        title="probe",
        description="probe",
    )
    # The deadline is max(30 s, 2 × stall): shrink the clock's view of it for the test.
    real_wait_for = asyncio.wait_for

    async def quick_wait_for(aw: Any, timeout: float | None) -> Any:
        return await real_wait_for(aw, None if timeout is None else min(timeout, 0.1))

    monkeypatch.setattr(asyncio, "wait_for", quick_wait_for)
    runner = HangingOnceRunner()
    task = asyncio.create_task(service._run_consumer(runner))  # type: ignore[arg-type]
    try:
        await real_wait_for(runner.running.wait(), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert runner.starts == 2 and runner.stops >= 1


class PositionlessConsumer:
    """aiokafka's consumer after its fetcher stopped resetting positions: a partition is
    assigned, its end is known, and ``position()`` never returns."""

    def __init__(self) -> None:
        from aiokafka import TopicPartition

        self.tp = TopicPartition("ecomops.probe.v1", 0)

    def assignment(self) -> set[Any]:
        return {self.tp}

    def highwater(self, tp: Any) -> int:
        return 10

    async def position(self, tp: Any) -> int:
        await asyncio.Event().wait()
        return 0


async def test_a_consumer_that_cannot_tell_its_position_is_found_stalled() -> None:
    from ecomops_platform.consumer import ConsumerRunner, ConsumerStalled, Subscription

    common = CommonSettings(consumer_stall_seconds=0.2, jwt_secret="x" * 48)
    runner = ConsumerRunner(
        service="probe",
        settings=common,
        db=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        subscription=Subscription(["ecomops.probe.v1"]),
    )
    runner._consumer = PositionlessConsumer()
    runner.lag_interval = runner.position_timeout = 0.05
    with pytest.raises(ConsumerStalled, match="1 partitions without a known position"):
        await asyncio.wait_for(runner._report_lag(), timeout=5)
