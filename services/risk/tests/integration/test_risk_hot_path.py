"""The assessment's data access on the real PostgreSQL: the newest rule set is in force for the
very next assessment (the parsed rule set is cached per version, never across versions, and a
version written by another process counts too); velocity counts per window and key are exact."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from ecomops_testing import ops, service_caller, unique

pytestmark = pytest.mark.integration


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": unique("ord"),
        "customer_id": unique("cus"),
        "amount_minor": 4999,
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 4999}],
        "ip": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}",
        "device_id": unique("dev"),
        "billing_country": "DE",
        "shipping_country": "DE",
    }
    body.update(overrides)
    return body


async def put_rules(client: httpx.AsyncClient, rules: dict[str, Any]) -> int:
    r = await client.put("/v1/rules", json=rules, headers=ops())
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


MISMATCH_DECIDES: dict[str, Any] = {
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0.5",
    "rules": [{"type": "country_mismatch", "weight": "0.9"}],
}
NOTHING_DECIDES: dict[str, Any] = {
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0.5",
    "rules": [{"type": "blocklist", "weight": "1"}],
}


async def _assess(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await client.post("/v1/assessments", json=order(**fields), headers=service_caller())
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_new_rule_set_decides_the_next_assessment(client: httpx.AsyncClient) -> None:
    mismatch = {"billing_country": "FR", "shipping_country": "DE"}
    await put_rules(client, MISMATCH_DECIDES)
    assert (await _assess(client, **mismatch))["decision"] == "reject"
    await put_rules(client, NOTHING_DECIDES)
    assert (await _assess(client, **mismatch))["decision"] == "approve"
    await put_rules(client, MISMATCH_DECIDES)
    assert (await _assess(client, **mismatch))["decision"] == "reject"


async def test_a_rule_set_written_by_another_process_is_in_force(client: httpx.AsyncClient) -> None:
    mismatch = {"billing_country": "FR", "shipping_country": "DE"}
    version = await put_rules(client, MISMATCH_DECIDES)
    assert (await _assess(client, **mismatch))["decision"] == "reject"
    # Another replica writes the next version straight into the database.
    dsn = os.environ["RISK_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO rule_sets (version, definition, created_by, created_at) "
            "VALUES ((SELECT max(version) + 1 FROM rule_sets), $1::jsonb, 'other', now())",
            json.dumps(NOTHING_DECIDES),
        )
    finally:
        await conn.close()
    fresh = await _assess(client, **mismatch)
    assert fresh["decision"] == "approve"
    assert fresh["rules_version"] > version
    await put_rules(client, MISMATCH_DECIDES)


async def test_velocity_counts_each_key_and_window(client: httpx.AsyncClient) -> None:
    rules = {
        "review_threshold": "0.3",
        "reject_threshold": "0.8",
        "model_weight": "0.5",
        "rules": [
            {
                "type": "velocity_customer",
                "weight": "0.5",
                "params": {"window_seconds": 3600, "max_count": 2},
            },
            {
                "type": "velocity_device",
                "weight": "0.9",
                "params": {"window_seconds": 60, "max_count": 3},
            },
        ],
    }
    await put_rules(client, rules)
    customer, device = unique("cus"), unique("dev")
    reasons = [
        {
            r["code"]
            for r in (await _assess(client, customer_id=customer, device_id=device))["reasons"]
        }
        for _ in range(5)
    ]
    # customer (limit 2 per hour): the 3rd order on; device (limit 3 per minute): the 4th on
    assert reasons == [
        set(),
        set(),
        {"velocity_customer"},
        {"velocity_customer", "velocity_device"},
        {"velocity_customer", "velocity_device"},
    ]
    # another customer on another device is not counted with them
    assert (await _assess(client))["reasons"] == []
