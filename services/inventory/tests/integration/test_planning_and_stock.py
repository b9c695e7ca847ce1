"""Stock adjustments, listings, and planning (forecast → reorder point → LowStock, ABC, KPIs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ecomops_platform.runtime import Service
from ecomops_testing import unique
from inventory_service.adapters import tables as t
from inventory_service.service_layer.planning import RunPlanning

from .conftest import OPS

pytestmark = pytest.mark.integration


async def adjust(client: httpx.AsyncClient, key: str | None = None, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/stock/adjustments",
        json={"reason": "correction", **body},
        headers={**OPS, "Idempotency-Key": key or unique("k")},
    )


async def test_adjustments_are_idempotent_and_never_go_below_reserved(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 10})
    key = unique("k")
    first = await adjust(client, key, sku=sku, warehouse=wh, delta=-3, reference="count-7")
    replay = await adjust(client, key, sku=sku, warehouse=wh, delta=-3, reference="count-7")
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert (await adjust(client, key, sku=sku, warehouse=wh, delta=-4)).status_code == 422
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": unique("r"), "lines": [{"sku": sku, "quantity": 5}]},
        headers=OPS,
    )
    assert r.status_code == 201
    refused = await adjust(client, sku=sku, warehouse=wh, delta=-3)  # 7 on hand, 5 reserved
    assert refused.status_code == 409
    assert refused.json()["reserved"] == 5
    level = (await client.get(f"/v1/stock/{sku}", headers=OPS)).json()
    assert (level["on_hand"], level["reserved"], level["available"]) == (7, 5, 2)
    assert (await adjust(client, sku=sku, warehouse=wh, delta=-2)).status_code == 201
    assert (await adjust(client, sku=sku, warehouse="nope-wh", delta=1)).status_code == 422
    assert (await adjust(client, sku=sku, warehouse=wh, delta=0)).status_code == 422
    no_key = await client.post(
        "/v1/stock/adjustments",
        json={"sku": sku, "warehouse": wh, "delta": 1, "reason": "receipt"},
        headers=OPS,
    )
    assert no_key.status_code == 400


async def test_sku_upsert_and_cursor_pagination(
    client: httpx.AsyncClient, make_sku: Callable[..., Any]
) -> None:
    category = unique("cat")
    active_skus = [await make_sku(category=category) for _ in range(3)]
    skus = sorted([*active_skus, await make_sku(category=category, status="discontinued")])
    r = await client.put(
        f"/v1/skus/{active_skus[0]}",
        json={"title": "Renamed", "category": category, "status": "active", "brand": "B"},
        headers=OPS,
    )
    assert r.status_code == 200 and r.json()["title"] == "Renamed"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"category": category, "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/skus", params=params, headers=OPS)).json()
        seen += [i["sku"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == skus
    active = (
        await client.get("/v1/skus", params={"category": category, "status": "active"}, headers=OPS)
    ).json()
    assert len(active["items"]) == 3
    assert (await client.get("/v1/skus/nope-x", headers=OPS)).status_code == 404
    assert (await client.get("/v1/skus", params={"cursor": "%%%"}, headers=OPS)).status_code == 422
    r = await client.put(f"/v1/skus/{unique('s')}", json={"title": "x"}, headers=OPS)
    assert r.status_code == 422


async def test_planning_sets_reorder_point_and_low_stock_fires(
    service: Service,
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    kafka_probe: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 200}, lead_time_days=5)
    today = datetime.now(UTC).date()
    weekly = [8, 9, 10, 11, 12, 14, 6]
    async with service.db.engine.begin() as conn:
        await conn.execute(
            sa.insert(t.demand_daily),
            [
                {
                    "sku": sku,
                    "warehouse": wh,
                    "day": today - timedelta(days=d),
                    # a weekly pattern plus noise the forecaster cannot anticipate: safety stock
                    # comes from forecast errors, so a pure pattern would need none
                    "units": weekly[d % 7] + (d * 7919) % 5,
                }
                for d in range(1, 57)
            ],
        )
        await conn.execute(
            sa.insert(t.revenue_daily),
            [
                {
                    "sku": sku,
                    "day": today - timedelta(days=1),
                    "currency": "EUR",
                    "revenue_minor": 10**12,
                    "units": 500,
                }
            ],
        )
    fitted = await service.bus.handle(RunPlanning(force=True), service.bus.system)
    assert fitted >= 1
    page = (
        await client.get("/v1/replenishment/suggestions", params={"warehouse": wh}, headers=OPS)
    ).json()
    [s] = page["items"]
    assert s["sku"] == sku and s["lead_time_days"] == 5
    assert 9 <= s["forecast_daily_demand"] <= 14
    assert s["safety_stock"] > 0
    assert s["reorder_point"] >= 5 * 8 + s["safety_stock"]
    assert s["suggested_order_quantity"] == 0 and s["abc_class"] == "A"
    assert s["replenishment_mode"] == "just_in_time"
    assert s["days_of_cover"] == pytest.approx(200 / s["forecast_daily_demand"], rel=0.01)

    probe = await kafka_probe("ecomops.inventory.v1")
    r = await adjust(
        client, sku=sku, warehouse=wh, delta=-(200 - s["reorder_point"] + 1), reason="damage"
    )
    assert r.status_code == 201
    [low] = await probe.wait_for("ecomops.inventory.v1.LowStock", lambda e: e.message.sku == sku)
    assert low.message.reorder_point == s["reorder_point"]
    assert low.message.available == s["reorder_point"] - 1
    again = (
        await client.get("/v1/replenishment/suggestions", params={"warehouse": wh}, headers=OPS)
    ).json()["items"][0]
    assert again["suggested_order_quantity"] > 0
    assert "reorder point" in again["reason"]

    kpis = (
        await client.get(
            "/v1/inventory/kpis",
            params={"from": (today - timedelta(days=56)).isoformat(), "to": today.isoformat()},
            headers=OPS,
        )
    ).json()
    assert kpis["units_sold"] >= sum(weekly) * 8
    assert 0 <= kpis["stock_out_rate"] <= 1
    bad = await client.get("/v1/inventory/kpis", params={"from": "2026-13-01"}, headers=OPS)
    assert bad.status_code == 422
