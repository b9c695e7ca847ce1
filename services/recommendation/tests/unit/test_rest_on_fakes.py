"""The REST layer on the in-memory unit of work: status codes, headers and JSON bodies as the
storefront and the console read them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecomops_platform.auth import TokenVerifier, mint_token
from ecomops_platform.rest import create_app
from ecomops_platform.settings import CommonSettings
from recommendation_service.entrypoints.rest import build_router
from recommendation_service.service_layer.learning import LearnFromPaidOrder, OrderLine

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

SECRET = "unit-test-secret-of-at-least-32-chars!"


def auth(subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, subject, role)}"}


OPS = auth("ops-1", "ops")


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


@pytest.fixture
def client(bus: Bus) -> TestClient:
    async def ready() -> dict[str, object]:
        return {"status": "ready", "ready": True, "checks": {}}

    app = create_app(
        service="recommendation",
        title="t",
        description="t",
        version="0",
        verifier=TokenVerifier(CommonSettings(jwt_secret=SECRET)),
        readiness=ready,
        routers=[build_router(bus)],
        max_body_bytes=1_000_000,
        rate_limit_per_minute=1000,
    )
    return TestClient(app)


def events(*skus: str, **extra: Any) -> dict[str, Any]:
    at = (NOW - timedelta(seconds=10)).isoformat()
    return {
        "events": [
            {"type": "view", "sku": s, "session_id": "s-1", "occurred_at": at, **extra}
            for s in skus
        ]
    }


def test_a_keyed_batch_is_accepted_then_replayed(
    client: TestClient, uow: FakeRecommendationUnitOfWork
) -> None:
    first = client.post(
        "/v1/behavior-events", json=events("a", "b"), headers={"Idempotency-Key": "k"}
    )
    assert (first.status_code, first.json()) == (202, {"accepted": 2})
    assert "Idempotent-Replayed" not in first.headers
    again = client.post(
        "/v1/behavior-events", json=events("a", "b"), headers={"Idempotency-Key": "k"}
    )
    assert (again.status_code, again.json()) == (202, {"accepted": 2})
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/behavior-events", json=events("c"), headers={"Idempotency-Key": "k"})
    assert other.status_code == 422
    assert len(uow.events) == 2
    # without a key: recorded each time
    for _ in range(2):
        r = client.post("/v1/behavior-events", json=events("d"))
        assert (r.status_code, r.json()) == (202, {"accepted": 1})
    assert len(uow.events) == 4


def test_bad_entries_are_problems_naming_the_index(client: TestClient) -> None:
    r = client.post("/v1/behavior-events", json=events("a", customer_id="someone"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("invalid-behavior-events") and body["invalid_indexes"] == [0]
    r = client.post("/v1/behavior-events", json=events("a"), headers={"Idempotency-Key": "\x01"})
    assert r.status_code == 400


def test_segment_and_funnel_bodies(bus: Bus, client: TestClient) -> None:
    asyncio.run(
        bus.handle(
            LearnFromPaidOrder(
                event_id="e",
                order_id="o",
                customer_id="alice",
                currency="EUR",
                total_minor=1234,
                paid_at=NOW - timedelta(days=3),
                lines=(OrderLine("a", 1),),
                sent_at=NOW,
            ),
            bus.system,
        )
    )
    r = client.get("/v1/segments/customers/alice", headers=auth("alice", "customer"))
    assert r.status_code == 200
    assert r.json() == {
        "customer_id": "alice",
        "recency_days": 3,
        "frequency": 1,
        "monetary_minor": 1234,
        "currency": "EUR",
        "r_score": 5,
        "f_score": 1,
        "m_score": 3,
        "segment": "new",
        "churn_risk": "low",
        "computed_at": "2026-06-01T12:00:00Z",
    }
    assert (
        client.get("/v1/segments/customers/alice", headers=auth("bob", "customer")).status_code
        == 404
    )
    counts = client.get("/v1/segments", headers=OPS).json()
    assert counts["total"] == 1 and counts["counts"][3] == {"segment": "new", "customers": 1}
    r = client.get(
        "/v1/funnel",
        headers=OPS,
        params={"from": "2026-05-01T00:00:00+00:00", "to": "2026-06-01T12:00:00Z"},
    )
    assert r.status_code == 200
    assert r.json() == {
        "from": "2026-05-01T00:00:00Z",
        "to": "2026-06-01T12:00:00Z",
        "category": None,
        "views": 0,
        "add_to_carts": 0,
        "orders": 0,
        "paid": 1,
        "view_to_cart_rate": None,
        "cart_to_order_rate": None,
        "order_to_paid_rate": None,
        "view_to_paid_rate": None,
    }
