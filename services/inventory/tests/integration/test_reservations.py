"""Reservations over REST against real PostgreSQL: all or nothing, idempotency, zero oversell."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ecomops_testing import unique

from .conftest import OPS, SVC

pytestmark = pytest.mark.integration


async def reserve(
    client: httpx.AsyncClient, lines: list[dict[str, Any]], **extra: Any
) -> httpx.Response:
    body = {"reservation_id": extra.pop("reservation_id", unique("res")), "lines": lines, **extra}
    return await client.post("/v1/reservations", json=body, headers=SVC)


async def stock(client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    r = await client.get(f"/v1/stock/{sku}", headers=OPS)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_fifty_concurrent_clients_for_the_last_ten_units_hold_exactly_ten(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 10})
    results = await asyncio.gather(
        *(reserve(client, [{"sku": sku, "quantity": 1}]) for _ in range(50))
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 10, codes
    assert codes.count(409) == 40, codes
    shortage = next(r for r in results if r.status_code == 409).json()
    assert shortage["shortages"][0]["sku"] == sku
    level = await stock(client, sku)
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 10, 0)


async def test_multi_line_reservation_is_all_or_nothing(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    plenty = await make_sku(stock={wh: 100})
    scarce = await make_sku(stock={wh: 2})
    r = await reserve(client, [{"sku": plenty, "quantity": 5}, {"sku": scarce, "quantity": 3}])
    assert r.status_code == 409
    problem = r.json()
    assert problem["shortages"] == [{"sku": scarce, "requested": 3, "available": 2}]
    assert (await stock(client, plenty))["reserved"] == 0
    assert (await stock(client, scarce))["reserved"] == 0


async def test_same_reservation_id_returns_the_same_answer_and_holds_once(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 10})
    rid = unique("order")
    lines = [{"sku": sku, "quantity": 3}]
    answers = await asyncio.gather(
        *(reserve(client, lines, reservation_id=rid, ttl_seconds=1200) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {201}
    bodies = [a.json() for a in answers]
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["status"] == "held"
    assert bodies[0]["allocations"] == [{"sku": sku, "warehouse": wh, "quantity": 3}]
    assert (await stock(client, sku))["reserved"] == 3
    other = await reserve(client, [{"sku": sku, "quantity": 4}], reservation_id=rid)
    assert other.status_code == 409
    assert other.json()["type"].endswith("reservation-id-reused")


async def test_invalid_lines_are_refused_with_422_naming_the_sku(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    gone = await make_sku(stock={wh: 5}, status="discontinued")
    r = await reserve(
        client, [{"sku": "no-such-sku-x1", "quantity": 1}, {"sku": gone, "quantity": 1}]
    )
    assert r.status_code == 422
    assert {"sku": "no-such-sku-x1", "reason": "unknown"} in r.json()["skus"]
    assert {"sku": gone, "reason": "discontinued"} in r.json()["skus"]
    ok = await make_sku(stock={wh: 5})
    for qty in (0, -2):
        r = await reserve(client, [{"sku": ok, "quantity": qty}])
        assert r.status_code == 422, r.text
        assert r.json()["sku"] == ok
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": unique("r"), "lines": [{"sku": ok, "quantity": 1}], "extra": 1},
        headers=SVC,
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": unique("r"), "lines": [{"sku": ok, "quantity": 1}]},
        headers=OPS | {"Authorization": OPS["Authorization"]},
    )
    assert r.status_code == 201


async def test_customers_may_not_reserve(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    from ecomops_testing import bearer, customer

    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": unique("r"), "lines": [{"sku": sku, "quantity": 1}]},
        headers=customer("cust-1"),
    )
    assert r.status_code == 403
    r = await client.get(f"/v1/stock/{sku}", headers=customer("cust-1"))
    assert r.status_code == 200
    rid = (await reserve(client, [{"sku": sku, "quantity": 1}])).json()["reservation_id"]
    r = await client.get(f"/v1/reservations/{rid}", headers=customer("cust-1"))
    assert r.status_code == 404
    for path in (f"/v1/stock/{sku}/ledger", "/v1/inventory/abc", "/v1/inventory/kpis"):
        assert (await client.get(path, headers=customer("cust-1"))).status_code == 403
    assert (
        await client.get("/v1/inventory/abc", headers=bearer("p-1", "partner"))
    ).status_code == 200
    r = await client.get(f"/v1/stock/{sku}")
    assert r.status_code == 401


async def test_split_prefers_region_then_priority_then_fewest_splits(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    region = unique("eu")
    near_small = await make_warehouse(region=region, priority=1)
    near_big = await make_warehouse(region=region, priority=5)
    far_first = await make_warehouse(region=unique("us"), priority=0)
    sku = await make_sku(stock={near_small: 3, near_big: 10, far_first: 100})
    # one in-region warehouse covers 8: no split, even though another has better priority
    r = await reserve(client, [{"sku": sku, "quantity": 8}], region=region)
    assert r.status_code == 201
    assert r.json()["allocations"] == [{"sku": sku, "warehouse": near_big, "quantity": 8}]
    # 5 left in region (3 + 2): split inside the region by priority
    r = await reserve(client, [{"sku": sku, "quantity": 5}], region=region)
    assert sorted((a["warehouse"], a["quantity"]) for a in r.json()["allocations"]) == sorted(
        [(near_small, 3), (near_big, 2)]
    )
    # region empty: the best-priority warehouse elsewhere
    r = await reserve(client, [{"sku": sku, "quantity": 4}], region=region)
    assert r.json()["allocations"] == [{"sku": sku, "warehouse": far_first, "quantity": 4}]


async def test_commit_release_lifecycle_and_ledger(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 10})
    a = (await reserve(client, [{"sku": sku, "quantity": 4}])).json()["reservation_id"]
    b = (await reserve(client, [{"sku": sku, "quantity": 3}])).json()["reservation_id"]
    for _ in range(2):  # idempotent
        r = await client.post(f"/v1/reservations/{a}/commit", headers=SVC)
        assert r.status_code == 200 and r.json()["status"] == "committed"
        r = await client.post(f"/v1/reservations/{b}/release", headers=SVC)
        assert r.status_code == 200 and r.json()["status"] == "released"
    assert (await client.post(f"/v1/reservations/{b}/commit", headers=SVC)).status_code == 409
    assert (await client.post(f"/v1/reservations/{a}/release", headers=SVC)).status_code == 409
    assert (await client.post("/v1/reservations/nope-1/commit", headers=SVC)).status_code == 404
    level = await stock(client, sku)
    assert (level["on_hand"], level["reserved"], level["available"]) == (6, 0, 6)
    ledger = (await client.get(f"/v1/stock/{sku}/ledger", headers=OPS)).json()
    assert [(e["delta"], e["reason"]) for e in ledger["items"]] == [(-4, "commit"), (10, "receipt")]
    assert sum(e["delta"] for e in ledger["items"]) == level["on_hand"]
    got = (await client.get(f"/v1/reservations/{a}", headers=OPS)).json()
    assert got["status"] == "committed"


async def test_expired_holds_are_released_by_the_service(
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    kafka_probe: Callable[..., Any],
) -> None:
    from ecomops_testing import eventually

    probe = await kafka_probe("ecomops.inventory.v1")
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    r = await reserve(client, [{"sku": sku, "quantity": 5}], ttl_seconds=1)
    rid = r.json()["reservation_id"]
    assert (await stock(client, sku))["available"] == 0

    async def expired() -> None:
        got = (await client.get(f"/v1/reservations/{rid}", headers=OPS)).json()
        assert got["status"] == "expired"

    await eventually(expired, timeout=20)
    assert (await stock(client, sku))["available"] == 5
    assert (await client.post(f"/v1/reservations/{rid}/commit", headers=SVC)).status_code == 409
    released = await probe.wait_for(
        "ecomops.inventory.v1.StockReleased", lambda e: e.message.reservation_id == rid
    )
    assert released[0].message.reason == "expired"
    await probe.wait_for(
        "ecomops.inventory.v1.StockLevelChanged",
        lambda e: e.message.sku == sku and e.message.available == 5,
    )
