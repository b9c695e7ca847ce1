"""Issue 19 regressions on the pricing service, REST and gRPC against the real stack: the margin
floor holds for stacked promotions, integers past their column's range are refused (not 500),
cost data is shown to ops only, and request types are strict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.common.v1 import common_pb2
from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.runtime import Service
from ecomops_testing import bearer, ops, unique

from .conftest import grpc_md, seed_price, seed_sku

pytestmark = pytest.mark.integration


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
    }


async def forty_percent(client: httpx.AsyncClient, sku: str, name: str) -> httpx.Response:
    return await client.post(
        "/v1/promotions",
        json={
            **window(),
            "name": name,
            "kind": "percent",
            "value": "0.40",
            "scope": {"skus": [sku]},
            "stackable": True,
        },
        headers={**ops(), "Idempotency-Key": unique("k")},
    )


async def issue_sku(pricing: Service, client: httpx.AsyncClient) -> str:
    """A SKU priced 100.00 with cost 30.00 (no commission, no marketing cost), floor 30%, and
    two stackable 40% promotions that each pass the floor alone."""
    sku = unique("floor")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 10000, 3000, commission="0", marketing="0")
    for name in ("spring-40", "members-40"):
        created = await forty_percent(client, sku, name)
        assert created.status_code == 201, created.text
    return sku


async def test_stacked_promotions_never_sell_under_the_floor_rest(
    pricing: Service, client: httpx.AsyncClient
) -> None:
    sku = await issue_sku(pricing, client)
    quote = await client.post(
        "/v1/quotes",
        json={"currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]},
        headers={**bearer(unique("cust"), "customer"), "Idempotency-Key": unique("k")},
    )
    assert quote.status_code == 201, quote.text
    body = quote.json()
    # 80% off would be 20.00 under a cost of 30.00; the combination stops at the floor price
    # 42.86 (margin (4286 - 3000) / 4286 = 0.3000), never below.
    assert body["total_minor"] == 4286, body
    assert body["discount_total_minor"] == 5714
    line = body["lines"][0]
    assert sum(p["discount_minor"] for p in line["promotions"]) == 5714
    assert (body["total_minor"] - 3000) / body["total_minor"] >= 0.30


async def test_stacked_promotions_never_sell_under_the_floor_grpc(
    pricing: Service, client: httpx.AsyncClient, stub: pb_grpc.PricingServiceStub
) -> None:
    sku = await issue_sku(pricing, client)
    response = await stub.CreateQuote(
        pb.CreateQuoteRequest(
            currency="EUR",
            lines=[common_pb2.SkuQuantity(sku=sku, quantity=2)],
            idempotency_key=unique("k"),
        ),
        metadata=grpc_md("service:order", "service"),
        timeout=10,
    )
    assert response.quote.subtotal_minor == 20000
    assert response.quote.total_minor == 8572  # ceil(6000 / 0.7): the floor for two units
    assert (response.quote.total_minor - 6000) / response.quote.total_minor >= 0.30


async def test_integers_past_the_column_are_422_not_500(
    pricing: Service, client: httpx.AsyncClient
) -> None:
    sku = unique("bounds")
    await seed_sku(pricing, sku)
    base = {
        **window(),
        "name": "bounds",
        "kind": "percent",
        "value": "0.05",
        "scope": {"skus": [sku]},
    }
    for field in ("usage_limit", "per_customer_limit"):
        for value in (2**63, 2**200, 0, -1):
            response = await client.post(
                "/v1/promotions",
                json={**base, field: value},
                headers={**ops(), "Idempotency-Key": unique("k")},
            )
            assert response.status_code == 422, (field, value, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    # the largest BIGINT is stored and read back
    biggest = await client.post(
        "/v1/promotions",
        json={**base, "usage_limit": 2**63 - 1},
        headers={**ops(), "Idempotency-Key": unique("k")},
    )
    assert biggest.status_code == 201, biggest.text
    assert biggest.json()["usage_limit"] == 2**63 - 1
    for bad in (
        {"kind": "buy_x_get_y", "value": {"buy": 2**31, "get": 1}},
        {"min_subtotal_minor": 2**70, "currency": "EUR"},
    ):
        response = await client.post(
            "/v1/promotions",
            json={**base, **bad},
            headers={**ops(), "Idempotency-Key": unique("k")},
        )
        assert response.status_code == 422, (bad, response.text)
    for quantity in (1001, 2**63, 2**200):
        quote = await client.post(
            "/v1/quotes",
            json={"currency": "EUR", "lines": [{"sku": sku, "quantity": quantity}]},
            headers={**ops(), "Idempotency-Key": unique("k")},
        )
        assert quote.status_code == 422, (quantity, quote.text)
    history = await client.get(
        f"/v1/prices/{sku}/history", params={"currency": "EUR", "limit": 2**70}, headers=ops()
    )
    assert history.status_code == 422


async def test_grpc_integers_past_the_column_are_invalid_argument(
    pricing: Service, stub: pb_grpc.PricingServiceStub
) -> None:
    sku = unique("gbounds")
    await seed_sku(pricing, sku)
    now = datetime.now(UTC)
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(now - timedelta(minutes=1))
    end.FromDatetime(now + timedelta(days=1))
    # INTEGER columns (buy/get) with int64 values past 2^31 - 1
    request = pb.CreatePromotionRequest(
        name="bxgy",
        kind=pb.PROMOTION_KIND_BUY_X_GET_Y,
        buy_quantity=2**40,
        get_quantity=1,
        scope=pb.PromotionScope(skus=[sku]),
        starts_at=start,
        ends_at=end,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreatePromotion(request, metadata=grpc_md("ops-1", "ops"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_cost_data_is_for_ops_only(
    pricing: Service, client: httpx.AsyncClient, stub: pb_grpc.PricingServiceStub
) -> None:
    sku = unique("cost")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 10000, 5480)
    cost_fields = (
        "unit_cost_minor",
        "commission_rate",
        "marketing_cost_rate",
        "gross_margin",
        "margin_floor",
        "below_floor",
        "updated_by",
        "reason",
    )
    for who in (bearer("c-1", "customer"), bearer("p-1", "partner"), bearer("s", "service")):
        price = await client.get(f"/v1/prices/{sku}", params={"currency": "EUR"}, headers=who)
        assert price.status_code == 200, price.text
        doc: dict[str, Any] = price.json()
        assert doc["list_price_minor"] == 10000
        assert all(doc[f] is None for f in cost_fields), doc
        history = await client.get(
            f"/v1/prices/{sku}/history", params={"currency": "EUR"}, headers=who
        )
        change = history.json()["changes"][0]
        assert change["list_price_minor"] == 10000
        assert change["unit_cost_minor"] is None and change["gross_margin"] is None
        assert change["changed_by"] is None and change["reason"] is None
        assert "5480" not in history.text and "0.3520" not in history.text
    staff = await client.get(f"/v1/prices/{sku}", params={"currency": "EUR"}, headers=ops())
    assert staff.json()["unit_cost_minor"] == 5480 and staff.json()["gross_margin"] == "0.3520"

    for subject, role in (("c-1", "customer"), ("p-1", "partner")):
        got = await stub.GetPrice(
            pb.GetPriceRequest(sku=sku, currency="EUR"),
            metadata=grpc_md(subject, role),
            timeout=10,
        )
        assert got.price.list_price_minor == 10000
        assert got.price.unit_cost_minor == 0 and got.price.gross_margin == ""
        assert got.price.commission_rate == "" and got.price.updated_by == ""
        hist = await stub.GetPriceHistory(
            pb.GetPriceHistoryRequest(sku=sku, currency="EUR"),
            metadata=grpc_md(subject, role),
            timeout=10,
        )
        assert hist.changes[0].list_price_minor == 10000
        assert hist.changes[0].unit_cost_minor == 0 and hist.changes[0].gross_margin == ""
    ops_view = await stub.GetPrice(
        pb.GetPriceRequest(sku=sku, currency="EUR"), metadata=grpc_md("ops-1", "ops"), timeout=10
    )
    assert ops_view.price.unit_cost_minor == 5480 and ops_view.price.gross_margin == "0.3520"


async def test_request_types_are_strict(pricing: Service, client: httpx.AsyncClient) -> None:
    sku = unique("strict")
    await seed_sku(pricing, sku)
    price = {"currency": "EUR", "list_price_minor": 1000, "unit_cost_minor": 100}
    for bad in (
        {**price, "allow_below_floor": 0},
        {**price, "allow_below_floor": "false"},
        {**price, "list_price_minor": True},
        {**price, "unit_cost_minor": "100"},
        {**price, "commission_rate": 0.05},
        {**price, "commission_rate": True},
        {**price, "currency": "XXX"},
        {**price, "currency": "XTS"},
    ):
        response = await client.put(f"/v1/prices/{sku}", json=bad, headers=ops())
        assert response.status_code == 422, (bad, response.text)
    ok = await client.put(
        f"/v1/prices/{sku}", json={**price, "commission_rate": "0.05"}, headers=ops()
    )
    assert ok.status_code == 200, ok.text
    promo = {
        "name": "strict",
        "kind": "percent",
        "value": "0.05",
        "scope": {"skus": [sku]},
        "starts_at": 0.5,
        "ends_at": 1_900_000_000,
    }
    response = await client.post(
        "/v1/promotions", json=promo, headers={**ops(), "Idempotency-Key": unique("k")}
    )
    assert response.status_code == 422, response.text
    quote = await client.post(
        "/v1/quotes",
        json={"currency": "EUR", "lines": [{"sku": sku, "quantity": True}]},
        headers={**ops(), "Idempotency-Key": unique("k")},
    )
    assert quote.status_code == 422, quote.text


async def test_openapi_declares_the_idempotency_key_required(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for path in ("/v1/promotions", "/v1/quotes"):
        params = doc["paths"][path]["post"].get("parameters", [])
        keys = [p for p in params if p["name"] == "Idempotency-Key"]
        assert len(keys) == 1 and keys[0]["required"] is True, (path, params)
    missing = await client.post(
        "/v1/quotes",
        json={"currency": "EUR", "lines": [{"sku": "x", "quantity": 1}]},
        headers=ops(),
    )
    assert missing.status_code == 400 and missing.json()["type"].endswith("idempotency-key-missing")
    quantity = doc["components"]["schemas"]["QuoteLineIn"]["properties"]["quantity"]
    assert quantity["maximum"] == 1000
