"""Competitor prices, suggestions from the event copies, segment targeting, the REST mirror of
checkout, gRPC parity and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import httpx
import pytest

from ecomops.common.v1 import common_pb2
from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.runtime import Service
from ecomops_testing import bearer, ops, unique
from pricing_service.service_layer.signals import RecordSales, RecordSegment, RecordStock, SoldLine

from .conftest import bus_of, grpc_md, seed_price, seed_sku, svc

pytestmark = pytest.mark.integration


async def all_suggestions(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/pricing/suggestions", params=params, headers=ops())
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            found[(item["sku"], item["currency"])] = item
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def test_suggestions_use_velocity_stock_competitors_and_floor(
    pricing: Service, client: httpx.AsyncClient
) -> None:
    hot, slow, undercut = unique("sku"), unique("sku"), unique("sku")
    for sku in (hot, slow, undercut):
        await seed_sku(pricing, sku)
        await seed_price(client, sku, 10000, 4000)
    now = datetime.now(UTC)
    bus = bus_of(pricing)
    # hot: 10 sold per day, 20 left -> 2 days of cover; slow: nothing sold, 500 in stock
    for day in range(14):
        await bus.handle(
            RecordSales(
                currency="EUR",
                day=date.today() - timedelta(days=day),
                lines=(SoldLine(hot, 20, 200000),),
            ),
            bus.system,
        )
    await bus.handle(RecordStock(sku=hot, available=20, on_hand=25, reserved=5, at=now), bus.system)
    await bus.handle(
        RecordStock(sku=slow, available=500, on_hand=500, reserved=0, at=now), bus.system
    )
    # an older event must not overwrite a newer stock level
    await bus.handle(
        RecordStock(sku=slow, available=1, on_hand=1, reserved=0, at=now - timedelta(hours=1)),
        bus.system,
    )
    recorded = await client.put(
        f"/v1/competitor-prices/{undercut}",
        json={
            "competitor": "rival",
            "currency": "EUR",
            "price_minor": 5000,
            "observed_at": (now - timedelta(hours=1)).isoformat(),
        },
        headers=bearer("partner-feed", "partner"),
    )
    assert recorded.status_code == 200, recorded.text
    denied = await client.put(
        f"/v1/competitor-prices/{undercut}",
        json={
            "competitor": "rival",
            "currency": "EUR",
            "price_minor": 1,
            "observed_at": now.isoformat(),
        },
        headers=bearer("c", "customer"),
    )
    assert denied.status_code == 403

    found = await all_suggestions(client)
    h, s, u = found[(hot, "EUR")], found[(slow, "EUR")], found[(undercut, "EUR")]
    assert h["suggested_price_minor"] == 10500 and h["days_of_cover"] == "2.0"
    assert h["velocity_per_day"] == "10.0000"
    assert s["suggested_price_minor"] == 9500 and s["stock_available"] == 500
    # the rival sells at 5000 but the floor for cost 4000 at 10% rates is 6667
    assert u["suggested_price_minor"] == u["floor_price_minor"] == 6667
    assert u["competitor_min_price_minor"] == 5000
    assert any("floor" in r for r in u["reasons"])
    for item in (h, s, u):
        assert Decimal(item["suggested_margin"]) >= Decimal("0.30") and item["reasons"]
    # advice only: the price did not move
    price = await client.get(f"/v1/prices/{undercut}", params={"currency": "EUR"}, headers=ops())
    assert price.json()["list_price_minor"] == 10000


async def test_segment_targeted_promotion(pricing: Service, client: httpx.AsyncClient) -> None:
    sku = unique("sku")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 10000, 1000)
    champion, other = unique("cust"), unique("cust")
    now = datetime.now(UTC)
    bus = bus_of(pricing)
    await bus.handle(
        RecordSegment(customer_id=champion, segment="champions", churn_risk="low", at=now),
        bus.system,
    )
    await bus.handle(
        RecordSegment(customer_id=other, segment="lost", churn_risk="high", at=now), bus.system
    )
    created = await client.post(
        "/v1/promotions",
        json={
            "name": "champions 15%",
            "kind": "percent",
            "value": "0.15",
            "scope": {"skus": [sku]},
            "segments": ["champions"],
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
        headers={**ops(), "Idempotency-Key": unique("k")},
    )
    assert created.status_code == 201, created.text

    async def discount(customer: str) -> int:
        response = await client.post(
            "/v1/quotes",
            json={"currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]},
            headers={**bearer(customer, "customer"), "Idempotency-Key": unique("k")},
        )
        assert response.status_code == 201, response.text
        return int(response.json()["discount_total_minor"])

    assert await discount(champion) == 1500
    assert await discount(other) == 0
    forbidden = await client.post(
        "/v1/quotes",
        json={"customer_id": champion, "currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]},
        headers={**bearer(other, "customer"), "Idempotency-Key": unique("k")},
    )
    assert forbidden.status_code == 403


async def test_rest_checkout_mirror(pricing: Service, client: httpx.AsyncClient) -> None:
    sku = unique("sku")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 4000, 1000)
    created = await client.post(
        "/v1/quotes",
        json={"customer_id": "cust-r", "currency": "EUR", "lines": [{"sku": sku, "quantity": 2}]},
        headers={**svc(), "Idempotency-Key": unique("k")},
    )
    quote_id = created.json()["quote_id"]
    order_id = unique("o")
    redeemed = await client.post(
        f"/v1/quotes/{quote_id}/redemption",
        json={"order_id": order_id, "customer_id": "cust-r", "expected_total_minor": 8000},
        headers=svc(),
    )
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["quote"]["total_minor"] == 8000
    assert redeemed.json()["redemptions"] == []
    other = await client.post(
        f"/v1/quotes/{quote_id}/redemption", json={"order_id": unique("o")}, headers=svc()
    )
    assert other.status_code == 409
    assert other.json()["type"].endswith("quote-already-redeemed")
    released = await client.post(
        f"/v1/redemptions/{order_id}/release", json={"reason": "checkout_failed"}, headers=svc()
    )
    assert released.status_code == 200 and released.json()["released_count"] == 0
    no_body = await client.post(f"/v1/redemptions/{order_id}/release", headers=svc())
    assert no_body.status_code == 200 and no_body.json()["released_count"] == 0
    customer = await client.post(
        f"/v1/redemptions/{order_id}/release", json={}, headers=bearer("cust-r", "customer")
    )
    assert customer.status_code == 403


async def test_grpc_price_book_parity(pricing: Service, stub: pb_grpc.PricingServiceStub) -> None:
    sku = unique("sku")
    await seed_sku(pricing, sku)
    md = grpc_md("pricing-manager", "ops")
    set_ = await stub.SetPrice(
        pb.SetPriceRequest(
            sku=sku,
            currency="EUR",
            list_price_minor=10000,
            unit_cost_minor=5480,
            commission_rate="0.05",
            marketing_cost_rate="0.05",
            reason="launch",
        ),
        metadata=md,
        timeout=10,
    )
    assert set_.price.gross_margin == "0.3520"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SetPrice(
            pb.SetPriceRequest(
                sku=sku, currency="EUR", list_price_minor=7000, unit_cost_minor=5480
            ),
            metadata=md,
            timeout=10,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    history = await stub.GetPriceHistory(
        pb.GetPriceHistoryRequest(sku=sku, currency="EUR"), metadata=md, timeout=10
    )
    assert history.lowest_price_30d_minor == 10000 and len(history.changes) == 1
    quote = await stub.CreateQuote(
        pb.CreateQuoteRequest(
            currency="EUR",
            lines=[common_pb2.SkuQuantity(sku=sku, quantity=3)],
            idempotency_key=unique("k"),
        ),
        metadata=grpc_md("cust-g", "customer"),
        timeout=10,
    )
    assert quote.quote.customer_id == "cust-g" and quote.quote.total_minor == 30000
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetQuote(
            pb.GetQuoteRequest(quote_id=quote.quote.quote_id),
            metadata=grpc_md("cust-h", "customer"),
            timeout=10,
        )
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    suggestions = await stub.ListSuggestions(
        pb.ListSuggestionsRequest(page=common_pb2.PageRequest(limit=5)), metadata=md, timeout=10
    )
    assert len(suggestions.suggestions) <= 5


async def test_openapi_operation_ids(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "set_price",
        "get_price",
        "get_price_history",
        "create_promotion",
        "list_promotions",
        "get_promotion",
        "update_promotion",
        "deactivate_promotion",
        "create_quote",
        "get_quote",
        "redeem_quote",
        "release_redemption",
        "set_competitor_price",
        "list_suggestions",
    } <= ids


async def test_business_metrics_are_exported(pricing: Service, client: httpx.AsyncClient) -> None:
    sku = unique("sku")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 1000, 100, currency="CHF")
    created = await client.post(
        "/v1/quotes",
        json={"currency": "CHF", "lines": [{"sku": sku, "quantity": 1}]},
        headers={**ops(), "Idempotency-Key": unique("k")},
    )
    assert created.status_code == 201
    text = (await client.get("/metrics")).text
    assert 'pricing_quotes_total{currency="CHF",discounted="false"}' in text
