"""The journeys' fixtures: the shared subprocess stack (tests/proof_fixtures.py), a Kafka watch
that reads every topic from where it ended when the test started, and the journeys' risk rules."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from proof_fixtures import http, ops, pytest_sessionfinish, shop, stack  # noqa: E402

# On a shared Kafka (PROOF_PORT_BASE moved, e.g. the dev stack) the harness gives its consumers
# their own group prefix; a new group reading from the beginning would first chew through the
# shared topics' whole backlog (minutes), so this session's groups start at the topics' end.
if os.environ.get("PROOF_PORT_BASE", "18000") != "18000":
    os.environ.setdefault(
        "ECOMOPS_CONSUMER_GROUP_PREFIX", f"h{os.environ['PROOF_PORT_BASE']}-{uuid.uuid4().hex[:6]}-"
    )
    os.environ.setdefault("ECOMOPS_CONSUMER_OFFSET_RESET", "latest")

__all__ = ["http", "journey_rules", "kafka", "pytest_sessionfinish", "shop", "stack"]

TOPICS = (
    "ecomops.order.v1",
    "ecomops.inventory.v1",
    "ecomops.pricing.v1",
    "ecomops.recommendation.v1",
    "ecomops.risk.v1",
    "ecomops.behavior.v1",
)

# Decisions the journeys can predict: nothing fires but the blocklist, and a blocklisted key
# scores 0.5 — between the review (0.3) and reject (0.8) thresholds — so it goes to review.
# (The shared stack's active rule set may be anything another suite wrote, e.g. a fuzzer's.)
JOURNEY_RULES = {
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0",
    "rules": [{"code": "blocklist", "type": "blocklist", "weight": "0.5"}],
}


class KafkaWatch:
    """Events published after the watch started, on every service topic."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._consumer: Any = None

    async def start(self) -> KafkaWatch:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from ecomops_platform.events import kafka_client_options
        from ecomops_platform.settings import CommonSettings

        self._consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, **kafka_client_options(CommonSettings())
        )
        await self._consumer.start()
        meta = await self._consumer._client.fetch_all_metadata()
        parts = [TopicPartition(t, p) for t in TOPICS for p in meta.partitions_for_topic(t) or ()]
        self._consumer.assign(parts)
        ends = await self._consumer.end_offsets(parts)
        for tp in parts:
            self._consumer.seek(tp, ends[tp])
        return self

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _poll(self) -> None:
        from ecomops_platform.events import decode_event

        batch = await self._consumer.getmany(timeout_ms=300, max_records=5000)
        for messages in batch.values():
            for msg in messages:
                try:
                    self.events.append(
                        decode_event(
                            topic=msg.topic,
                            partition=msg.partition,
                            offset=msg.offset,
                            key=msg.key,
                            value=msg.value,
                            raw_headers=msg.headers,
                        )
                    )
                except Exception:
                    continue

    async def wait_for(
        self,
        event_type: str,
        match: Callable[[Any], bool] = lambda e: True,
        *,
        count: int = 1,
        timeout: float = 30.0,
    ) -> list[Any]:
        """At least ``count`` events of ``event_type`` (short name, e.g. ``OrderPaid``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [e for e in self.events if e.event_type.endswith("." + event_type) and match(e)]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                seen = sorted({e.event_type for e in self.events})
                raise AssertionError(
                    f"{len(found)}/{count} {event_type} within {timeout}s; types seen: {seen}"
                )
            await self._poll()


@pytest.fixture
async def kafka(stack: Any) -> AsyncIterator[KafkaWatch]:
    watch = await KafkaWatch().start()
    try:
        yield watch
    finally:
        await watch.stop()


@pytest.fixture
async def journey_rules(http: Any, stack: Any) -> dict[str, Any]:
    """Activate the journeys' rule set (a new version) unless it is already the active one."""
    url = stack.url("risk") + "/v1/rules"
    current = await http.get(url, headers=ops())
    assert current.status_code == 200, current.text
    body = current.json()
    same = {k: body.get(k) for k in JOURNEY_RULES if k != "rules"} == {
        k: v for k, v in JOURNEY_RULES.items() if k != "rules"
    } and [(r["code"], r["type"], r["weight"], r.get("shadow", False)) for r in body["rules"]] == [
        ("blocklist", "blocklist", "0.5", False)
    ]
    if not same:
        resp = await http.put(url, json=JOURNEY_RULES, headers=ops())
        assert resp.status_code in (200, 201), resp.text
        body = resp.json()
    return body
