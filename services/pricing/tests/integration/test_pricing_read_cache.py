"""The quote's short read cache (adapters/read_cache.py) against the real stack: a change made
through this process is in force for the very next quote; one made by another replica (straight
in the database) within ``read_cache_seconds``; the margin floor holds on cached prices."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from ecomops_platform.runtime import Service
from ecomops_testing import bearer, ops, unique
from pricing_service.service_layer.signals import RecordSku
from pricing_service.settings import PricingSettings

from .conftest import bus_of, seed_price, seed_sku
from .test_pricing_rest import create_promotion

pytestmark = pytest.mark.integration


async def quote(client: httpx.AsyncClient, sku: str, quantity: int = 1) -> httpx.Response:
    return await client.post(
        "/v1/quotes",
        json={"currency": "EUR", "lines": [{"sku": sku, "quantity": quantity}]},
        headers={**bearer(unique("cust"), "customer"), "Idempotency-Key": unique("k")},
    )


async def quoted(client: httpx.AsyncClient, sku: str, quantity: int = 1) -> dict[str, Any]:
    response = await quote(client, sku, quantity)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_changes_through_this_process_are_in_force_for_the_next_quote(
    pricing: Service, client: httpx.AsyncClient
) -> None:
    sku, category = unique("sku"), unique("cat")
    await seed_sku(pricing, sku, category)
    await seed_price(client, sku, 10000, 3000)
    assert (await quoted(client, sku))["total_minor"] == 10000
    await seed_price(client, sku, 12000, 3000)
    assert (await quoted(client, sku))["total_minor"] == 12000

    promotion = await create_promotion(
        client,
        {
            "name": "ten off",
            "kind": "percent",
            "value": "0.10",
            "scope": {"categories": [category]},
            "stackable": True,
        },
    )
    assert (await quoted(client, sku))["discount_total_minor"] == 1200
    gone = await client.delete(f"/v1/promotions/{promotion['promotion_id']}", headers=ops())
    assert gone.status_code == 200, gone.text
    assert (await quoted(client, sku))["discount_total_minor"] == 0

    bus = bus_of(pricing)
    await bus.handle(
        RecordSku(
            sku=sku, title=sku, category=category, status="discontinued", at=datetime.now(UTC)
        ),
        bus.system,
    )
    refused = await quote(client, sku)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/sku-discontinued")


async def test_a_price_changed_by_another_replica_is_in_force_within_the_bound(
    pricing: Service, client: httpx.AsyncClient, settings: PricingSettings
) -> None:
    assert 0 < settings.read_cache_seconds <= 5
    sku = unique("sku")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 10000, 3000)
    assert (await quoted(client, sku))["total_minor"] == 10000  # now in this process's cache
    dsn = os.environ["PRICING_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:  # another replica's price change
        await conn.execute(
            "UPDATE prices SET list_price_minor = 11000 WHERE sku = $1 AND currency = 'EUR'", sku
        )
    finally:
        await conn.close()
    await asyncio.sleep(settings.read_cache_seconds + 0.1)
    assert (await quoted(client, sku))["total_minor"] == 11000


async def test_the_margin_floor_holds_on_cached_prices(
    pricing: Service, client: httpx.AsyncClient
) -> None:
    sku, category = unique("sku"), unique("cat")
    await seed_sku(pricing, sku, category)
    # margin at list price: (10000 - 5480 - 1000) / 10000 = 0.352; floor 0.30
    await seed_price(client, sku, 10000, 5480)
    assert (await quoted(client, sku))["total_minor"] == 10000  # cached from here on
    # two stackable 5 % promotions: each alone keeps the floor (9500), together (about 9000)
    # they would not: the basket stops at the floor price, 9134 (0.6 p >= 5480)
    for name in ("five", "five more"):
        await create_promotion(
            client,
            {
                "name": name,
                "kind": "percent",
                "value": "0.05",
                "scope": {"categories": [category]},
                "stackable": True,
            },
        )
    q = await quoted(client, sku)
    assert q["discount_total_minor"] > 0
    assert q["total_minor"] >= 9134, q
