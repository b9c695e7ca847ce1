"""Inbound orders on the real stack: REST and gRPC, the position the suggestions use, and two
receipts racing for the last expected units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from ecomops_platform.grpc_client import make_channel
from ecomops_platform.runtime import Service
from ecomops_testing import token, unique

from .conftest import OPS, SVC

pytestmark = pytest.mark.integration


async def place(client: httpx.AsyncClient, key: str | None = None, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/inbound-orders", json=body, headers={**OPS, "Idempotency-Key": key or unique("in")}
    )


async def receive(client: httpx.AsyncClient, inbound_id: str, quantity: int) -> httpx.Response:
    return await client.post(
        f"/v1/inbound-orders/{inbound_id}/receipts",
        json={"quantity": quantity},
        headers={**OPS, "Idempotency-Key": unique("rc")},
    )


async def on_hand(client: httpx.AsyncClient, sku: str) -> int:
    r = await client.get(f"/v1/stock/{sku}", headers=OPS)
    assert r.status_code == 200, r.text
    return int(r.json()["on_hand"])


async def suggestion(client: httpx.AsyncClient, sku: str, wh: str) -> dict[str, Any]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"warehouse": wh, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/replenishment/suggestions", params=params, headers=OPS)
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            if item["sku"] == sku:
                return dict(item)
        cursor = r.json()["next_cursor"]
        assert cursor, f"{sku} has no suggestion"


async def test_an_inbound_order_is_on_order_until_received_then_on_hand_once(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    key = unique("in")
    body = {"sku": sku, "warehouse": wh, "quantity": 12, "expected_on": "2026-12-20"}
    first = await place(client, key, **body, reference="PO-77")
    replay = await place(client, key, **body, reference="PO-77")
    assert first.status_code == replay.status_code == 201, first.text
    assert replay.headers["Idempotent-Replayed"] == "true" and first.json() == replay.json()
    order = first.json()
    inbound_id = order["inbound_id"]
    assert first.headers["Location"] == f"/v1/inbound-orders/{inbound_id}"
    assert (order["status"], order["on_order"], order["expected_on"]) == ("open", 12, "2026-12-20")
    assert (await suggestion(client, sku, wh))["on_order"] == 12

    r = await receive(client, inbound_id, 7)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v1/inbound-orders/{inbound_id}"
    assert r.json()["entry"]["reference"] == f"inbound:{inbound_id}"
    assert r.json()["inbound_order"]["on_order"] == 5
    assert await on_hand(client, sku) == 12
    assert (await suggestion(client, sku, wh))["on_order"] == 5

    over = await receive(client, inbound_id, 6)
    assert over.status_code == 409 and over.json()["type"].endswith("over-receipt")
    assert over.headers["content-type"].startswith("application/problem+json")
    assert await on_hand(client, sku) == 12

    cancelled = await client.post(f"/v1/inbound-orders/{inbound_id}/cancel", headers=OPS)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await suggestion(client, sku, wh))["on_order"] == 0
    listed = await client.get(
        "/v1/inbound-orders", params={"sku": sku, "status": "cancelled"}, headers=OPS
    )
    assert [o["inbound_id"] for o in listed.json()["items"]] == [inbound_id]


async def test_two_receipts_of_the_last_units_put_them_on_hand_once(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 1})
    placed = await place(client, sku=sku, warehouse=wh, quantity=10)
    inbound_id = placed.json()["inbound_id"]
    answers = await asyncio.gather(*(receive(client, inbound_id, 10) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    assert await on_hand(client, sku) == 11
    got = await client.get(f"/v1/inbound-orders/{inbound_id}", headers=OPS)
    assert (got.json()["status"], got.json()["received_quantity"]) == ("received", 10)


async def test_bad_inbound_input_is_a_problem_and_customers_are_refused(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 1})
    for bad in (
        {"sku": sku, "warehouse": wh, "quantity": 0},
        {"sku": sku, "warehouse": wh, "quantity": "3"},
        {"sku": sku, "warehouse": wh, "quantity": 3, "expected_on": "2026-13-01"},
        {"sku": unique("nope"), "warehouse": wh, "quantity": 3},
    ):
        r = await place(client, **bad)
        assert r.status_code == 422, (bad, r.text)
    missing_key = await client.post(
        "/v1/inbound-orders", json={"sku": sku, "warehouse": wh, "quantity": 1}, headers=OPS
    )
    assert missing_key.status_code in (400, 428)
    as_service = await client.post(
        "/v1/inbound-orders",
        json={"sku": sku, "warehouse": wh, "quantity": 1},
        headers={**SVC, "Idempotency-Key": unique("k")},
    )
    assert as_service.status_code == 403
    assert (await client.get("/v1/inbound-orders/in-missing", headers=OPS)).status_code == 404
    bad_cursor = await client.get("/v1/inbound-orders", params={"cursor": "xyz"}, headers=OPS)
    assert bad_cursor.status_code == 422


@pytest.fixture(scope="module")
async def ops_stub(service: Service) -> AsyncIterator[pb_grpc.InventoryServiceStub]:
    channel = make_channel(f"127.0.0.1:{service.grpc_port}", lambda: token("ops-1", "ops"))
    yield pb_grpc.InventoryServiceStub(channel)
    await channel.close()


async def test_inbound_orders_over_grpc(
    ops_stub: pb_grpc.InventoryServiceStub,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 2})
    placed = await ops_stub.PlaceInboundOrder(
        pb.PlaceInboundOrderRequest(
            idempotency_key=unique("k"), sku=sku, warehouse=wh, quantity=6, reference="PO-9"
        ),
        timeout=5,
    )
    order = placed.inbound_order
    assert (order.status, order.on_order) == (pb.INBOUND_STATUS_OPEN, 6)
    got = await ops_stub.ReceiveInboundOrder(
        pb.ReceiveInboundOrderRequest(
            idempotency_key=unique("k"), inbound_id=order.inbound_id, quantity=6
        ),
        timeout=5,
    )
    assert got.inbound_order.status == pb.INBOUND_STATUS_RECEIVED and got.entry.delta == 6
    listed = await ops_stub.ListInboundOrders(
        pb.ListInboundOrdersRequest(
            sku=sku, status=pb.INBOUND_STATUS_RECEIVED, page=common_pb2.PageRequest(limit=5)
        ),
        timeout=5,
    )
    assert [o.inbound_id for o in listed.inbound_orders] == [order.inbound_id]
    with pytest.raises(grpc.aio.AioRpcError) as over:
        await ops_stub.ReceiveInboundOrder(
            pb.ReceiveInboundOrderRequest(
                idempotency_key=unique("k"), inbound_id=order.inbound_id, quantity=1
            ),
            timeout=5,
        )
    assert over.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await ops_stub.PlaceInboundOrder(
            pb.PlaceInboundOrderRequest(idempotency_key=unique("k"), sku=sku, warehouse=wh),
            timeout=5,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
