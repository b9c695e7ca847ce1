"""The self-healing producer: a producer that cannot deliver any more is replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecomops_platform.producer import ResilientProducer, breaks_producer


class OutOfOrderSequenceNumber(Exception):  # named like aiokafka's error class
    pass


class KafkaConnectionError(Exception):
    pass


class FakeProducer:
    created: list[FakeProducer] = []

    def __init__(self, fail_start: bool = False) -> None:
        self.started = self.stopped = False
        self.fail_start = fail_start
        self.sent: list[str] = []
        self.client = object()
        FakeProducer.created.append(self)

    async def start(self) -> None:
        if self.fail_start:
            raise KafkaConnectionError("broker away")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, **_: Any) -> asyncio.Future[None]:
        self.sent.append(topic)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@pytest.fixture(autouse=True)
def _reset_created() -> None:
    FakeProducer.created = []


def test_broken_idempotence_state_is_recognised_through_causes() -> None:
    assert breaks_producer(OutOfOrderSequenceNumber())
    wrapped = RuntimeError("batch failed")
    wrapped.__cause__ = OutOfOrderSequenceNumber()
    assert breaks_producer(wrapped)
    assert not breaks_producer(KafkaConnectionError())
    assert not breaks_producer(TimeoutError())


async def test_out_of_order_sequence_replaces_the_producer_at_once() -> None:
    producer = ResilientProducer(FakeProducer, service="t")
    await producer.start()
    first = FakeProducer.created[0]
    assert await producer.report_failure(OutOfOrderSequenceNumber("[Error 45]"))
    assert first.stopped and producer.resets == 1
    second = FakeProducer.created[-1]
    assert second is not first and second.started
    await producer.send("topic", value=b"x", key=None, headers=[])
    assert second.sent == ["topic"] and first.sent == []


async def test_other_failures_replace_the_producer_only_when_they_keep_coming() -> None:
    producer = ResilientProducer(FakeProducer, service="t", reset_after_failures=3)
    await producer.start()
    assert not await producer.report_failure(KafkaConnectionError())
    producer.report_success()  # a delivery in between: the count starts again
    assert not await producer.report_failure(KafkaConnectionError())
    assert not await producer.report_failure(KafkaConnectionError())
    assert producer.resets == 0
    assert await producer.report_failure(KafkaConnectionError())
    assert producer.resets == 1 and producer.consecutive_failures == 0


async def test_a_replacement_that_cannot_start_yet_is_started_by_the_next_send() -> None:
    attempts = iter([False, True, False])  # 2nd producer fails to start; the 3rd works

    def factory() -> FakeProducer:
        return FakeProducer(fail_start=next(attempts, False))

    producer = ResilientProducer(factory, service="t")
    await producer.start()
    assert await producer.report_failure(OutOfOrderSequenceNumber())  # broker still away
    assert not producer.started
    await producer.send("topic", value=b"x", key=None, headers=[])
    assert producer.started and FakeProducer.created[-1].sent == ["topic"]


async def test_a_start_that_hangs_is_abandoned_and_the_next_send_starts_a_new_producer() -> None:
    class HangingStart(FakeProducer):
        async def start(self) -> None:
            await asyncio.Event().wait()  # a producer id the broker never grants

    made = iter([HangingStart, FakeProducer])
    producer = ResilientProducer(lambda: next(made)(), service="t", start_timeout=0.2)
    with pytest.raises(TimeoutError):
        await producer.start()
    hung = FakeProducer.created[0]
    assert hung.stopped and not producer.started
    await producer.send("topic", value=b"x", key=None, headers=[])
    assert producer.started and FakeProducer.created[-1].sent == ["topic"]


async def test_a_failed_metadata_update_waits_the_retry_backoff_before_it_reports() -> None:
    """aiokafka's own client, with no reachable broker: the update fails at once, and the paced
    client reports the failure only after ``retry_backoff_ms`` (its callers retry at that pace
    instead of spinning)."""
    from ecomops_platform.events import make_producer
    from ecomops_platform.settings import CommonSettings

    settings = CommonSettings(kafka_bootstrap="127.0.0.1:9", jwt_secret="s" * 32, env="test")
    producer = make_producer(settings, "paced-test")
    client = producer.client
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for _ in range(3):
            assert await client._metadata_update(client.cluster, set()) is False
    finally:
        await producer.stop()
    assert loop.time() - started >= 3 * client._retry_backoff * 0.9


async def test_a_successful_metadata_update_is_not_delayed() -> None:
    from ecomops_platform.events import pace_failed_metadata_updates

    class Client:
        _retry_backoff = 5.0

        async def _metadata_update(self, cluster: Any, topics: Any) -> bool:
            return True

    client = Client()
    pace_failed_metadata_updates(client)
    assert await asyncio.wait_for(client._metadata_update(None, set()), timeout=1) is True
