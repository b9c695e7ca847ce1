"""The journeys' fixtures: the shared subprocess stack (tests/proof_fixtures.py), a Kafka probe
(ecomops_testing's) on every topic from where it ended when the test started, and the journeys'
risk rules."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from proof_fixtures import http, ops, pytest_sessionfinish, shop, stack  # noqa: E402

from ecomops_testing import KafkaProbe  # noqa: E402

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


@pytest.fixture
async def kafka(stack: Any) -> AsyncIterator[KafkaProbe]:
    """Every service topic, from where it ended when the test started."""
    watch = await KafkaProbe(list(TOPICS)).start()
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
