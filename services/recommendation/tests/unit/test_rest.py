"""The REST layer without a database: anonymous rate limit, auth, OpenAPI operation ids."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ecomops_platform.auth import TokenVerifier, mint_token
from ecomops_platform.bus import MessageBus
from ecomops_platform.rest import create_app
from ecomops_platform.settings import CommonSettings
from recommendation_service.bootstrap import SPEC, dependencies_of
from recommendation_service.entrypoints.rest import build_router
from recommendation_service.settings import RecommendationSettings

SECRET = "unit-test-secret-of-at-least-32-chars!"


def app(anonymous_rate: int = 2) -> Any:
    settings = RecommendationSettings(
        database_url="postgresql+asyncpg://nowhere/none", anonymous_rate_per_minute=anonymous_rate
    )

    def no_database() -> Any:
        # A unit of work that cannot be entered: these requests must be refused before it.
        return object()

    async def ready() -> dict[str, object]:
        return {"status": "ready", "ready": True, "checks": {"database": True}}

    return create_app(
        service="recommendation",
        title="t",
        description="t",
        version="0",
        verifier=TokenVerifier(CommonSettings(jwt_secret=SECRET)),
        readiness=ready,
        routers=[
            build_router(
                MessageBus(
                    service="recommendation",
                    uow=no_database,
                    deps=dependencies_of(settings),
                    handlers=SPEC.handlers,
                )
            )
        ],
        max_body_bytes=1_000_000,
        rate_limit_per_minute=1000,
    )


def test_anonymous_ingestion_has_its_own_tighter_rate_limit() -> None:
    client = TestClient(app(anonymous_rate=2))
    codes = [client.post("/v1/behavior-events", json={"events": []}).status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    # a signed-in caller is not subject to the anonymous limit
    token = mint_token(SECRET, "c1", "customer")
    r = client.post(
        "/v1/behavior-events", json={"events": []}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("empty-batch")


def test_a_bad_token_is_401_even_where_anonymous_is_allowed() -> None:
    client = TestClient(app())
    r = client.post(
        "/v1/behavior-events", json={"events": []}, headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401


def test_unknown_fields_are_refused() -> None:
    client = TestClient(app())
    r = client.post("/v1/behavior-events", json={"events": [], "extra": 1})
    assert r.status_code == 422


def test_openapi_operation_ids_are_the_route_names() -> None:
    spec = TestClient(app()).get("/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "record_behavior_events",
        "get_customer_recommendations",
        "get_similar_items",
        "get_bought_together",
        "get_trending",
        "get_customer_segment",
        "list_segment_counts",
        "get_funnel",
    } <= ids
    funnel = spec["paths"]["/v1/funnel"]["get"]
    assert "from" in {p["name"] for p in funnel["parameters"]}
