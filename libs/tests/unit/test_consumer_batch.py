"""The consumer's chunking logic with fakes: which records go in one transaction, what happens
when a chunk fails, and when offsets move. The transactions themselves are tested on the real
stack in libs/tests/integration/test_consumer_batches.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from ecomops.common.v1 import common_pb2
from ecomops_platform.consumer import ConsumerRunner, EventHandler, Subscription, _is_transient
from ecomops_platform.events import Envelope, cloudevent_headers
from ecomops_platform.settings import CommonSettings

TOPIC = "ecomops.probe.v1"
MONEY = "ecomops.common.v1.Money"


def _record(offset: int, *, currency: str = "EUR", event_id: str | None = None) -> Any:
    headers = cloudevent_headers(
        event_id=event_id or f"e{offset}",
        event_type=MONEY,
        source="ecomops/test",
        time=datetime.now(UTC),
        traceparent=None,
    )
    return SimpleNamespace(
        topic=TOPIC,
        partition=0,
        offset=offset,
        key=b"k",
        value=common_pb2.Money(amount_minor=offset, currency=currency).SerializeToString(),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


def _undecodable(offset: int) -> Any:
    record = _record(offset)
    record.value = b"\xff\xff not protobuf"
    return record


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, bytes]]] = []

    async def send(self, topic: str, *, value: bytes, key: bytes, headers: Any) -> Any:
        self.sent.append((topic, dict(headers)))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def report_success(self) -> None:
        pass

    async def report_failure(self, exc: BaseException) -> None:
        pass


class FakeRunner(ConsumerRunner):
    """The runner with its two transactions replaced: ``apply_batch`` fails when any event of
    the chunk is in ``failing``; ``apply`` fails for an event in ``failing`` (non-transient),
    and ``transient`` times for an event in ``transient_left``."""

    def __init__(self, *, batch_size: int, batch: bool = True) -> None:
        settings = CommonSettings(jwt_secret="x" * 48, consumer_batch_size=batch_size)
        self.fake_producer = FakeProducer()
        super().__init__(
            service="probe",
            settings=settings,
            db=None,  # type: ignore[arg-type]
            producer=self.fake_producer,  # type: ignore[arg-type]
            subscription=Subscription([TOPIC], {MONEY: self.handler}, batch=batch),
            max_attempts=3,
            base_backoff=0.001,
        )
        self.failing: set[str] = set()
        self.transient_left: dict[str, int] = {}
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.applied: list[str] = []

    async def handler(self, uow: Any, envelope: Envelope) -> None:
        raise AssertionError("the fakes below never call the handler")

    async def apply_batch(self, items: Sequence[tuple[Envelope, EventHandler]]) -> list[bool]:
        ids = [envelope.event_id for envelope, _ in items]
        self.batches.append(ids)
        if self.failing & set(ids):
            raise ValueError("a handler of the chunk failed")
        outcomes = []
        for event_id in ids:
            new = event_id not in self.applied
            if new:
                self.applied.append(event_id)
            outcomes.append(new)
        return outcomes

    async def apply(self, envelope: Envelope, handler: EventHandler) -> bool:
        event_id = envelope.event_id
        self.singles.append(event_id)
        if self.transient_left.get(event_id, 0) > 0:
            self.transient_left[event_id] -= 1
            raise ConnectionRefusedError("database down")
        if event_id in self.failing:
            raise ValueError(f"poison {event_id}")
        if event_id in self.applied:
            return False
        self.applied.append(event_id)
        return True

    def dead_lettered(self) -> list[tuple[str, str]]:
        return [
            (h["ce_id"].decode(), h["dlq_attempts"].decode()) for _, h in self.fake_producer.sent
        ]


async def test_a_chunk_is_applied_in_one_transaction() -> None:
    runner = FakeRunner(batch_size=5)
    await runner._handle_chunk([_record(i) for i in range(5)])
    assert runner.batches == [["e0", "e1", "e2", "e3", "e4"]]
    assert runner.singles == []
    assert runner.applied == ["e0", "e1", "e2", "e3", "e4"]
    assert runner.processed == 5 and runner.chunks_committed == 1


async def test_a_failing_chunk_is_applied_again_one_event_at_a_time_in_order() -> None:
    runner = FakeRunner(batch_size=5)
    runner.failing = {"e2"}
    await runner._handle_chunk([_record(i) for i in range(5)])
    assert runner.batches == [["e0", "e1", "e2", "e3", "e4"]]
    # e2 is tried max_attempts times, the others once each, in offset order.
    assert runner.singles == ["e0", "e1", "e2", "e2", "e2", "e3", "e4"]
    assert runner.applied == ["e0", "e1", "e3", "e4"]
    assert runner.dead_lettered() == [("e2", "3")]
    assert runner.chunks_fallen_back == 1 and runner.processed == 4


async def test_a_transient_failure_in_the_fallback_waits_without_spending_attempts() -> None:
    runner = FakeRunner(batch_size=5)
    runner.failing = {"e1"}  # makes the chunk fail
    runner.transient_left = {"e3": 5}  # more than max_attempts: must not dead-letter
    await runner._handle_chunk([_record(i) for i in range(5)])
    assert runner.applied == ["e0", "e2", "e3", "e4"]
    assert runner.dead_lettered() == [("e1", "3")]


async def test_undecodable_records_go_to_the_dlq_before_the_chunk() -> None:
    runner = FakeRunner(batch_size=5)
    records = [_record(0), _undecodable(1), _record(2), _record(3, event_id="e0")]
    await runner._handle_chunk(records)
    assert runner.dead_lettered() == [("e1", "0")]
    assert runner.batches == [["e0", "e2", "e0"]]
    assert runner.applied == ["e0", "e2"]
    assert runner.processed == 3  # two applied, one duplicate


async def test_a_chunk_with_one_event_to_apply_uses_the_single_event_path() -> None:
    runner = FakeRunner(batch_size=5)
    await runner._handle_chunk([_undecodable(0), _record(1)])
    assert runner.batches == [] and runner.singles == ["e1"]


async def test_batch_false_or_size_one_means_one_transaction_per_event() -> None:
    assert FakeRunner(batch_size=50, batch=False).batch_size == 1
    runner = FakeRunner(batch_size=1)
    assert runner.batch_size == 1


class FakeKafka:
    """Hands out one fetched batch per partition, then nothing; records offset commits."""

    def __init__(self, batches: dict[Any, list[Any]]) -> None:
        self._batches: dict[Any, list[Any]] | None = batches
        self.partitions = set(batches)
        self.commits: list[dict[Any, int]] = []
        self.drained = asyncio.Event()

    def assignment(self) -> set[Any]:
        return self.partitions

    async def getmany(self, timeout_ms: int) -> dict[Any, list[Any]]:
        batches, self._batches = self._batches, None
        if batches is None:
            self.drained.set()
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return batches

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))

    def highwater(self, tp: Any) -> int:
        return 0

    async def position(self, tp: Any) -> int:
        return 0


async def test_run_applies_a_fetched_batch_in_chunks_then_commits_its_offset_once() -> None:
    from aiokafka import TopicPartition

    runner = FakeRunner(batch_size=2)
    tp = TopicPartition(TOPIC, 0)
    kafka = FakeKafka({tp: [_record(i) for i in range(5)]})
    runner._consumer = kafka
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(kafka.drained.wait(), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert runner.batches == [["e0", "e1"], ["e2", "e3"]]
    assert runner.singles == ["e4"]
    assert kafka.commits == [{tp: 5}]


def _db_error(sqlstate: str) -> BaseException:
    class AsyncpgLike(Exception):
        pass

    orig = AsyncpgLike("driver error")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return sa.exc.DBAPIError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [("40P01", True), ("40001", True), ("55P03", True), ("23505", False), ("22001", False)],
)
def test_deadlocks_and_lock_timeouts_are_transient(sqlstate: str, transient: bool) -> None:
    assert _is_transient(_db_error(sqlstate)) is transient
