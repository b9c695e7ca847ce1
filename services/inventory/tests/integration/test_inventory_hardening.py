"""Issue 19 regressions on inventory (REST and gRPC, real stack): integers bounded by their
columns or a documented limit, bounded SKU attributes, strict request types; bad input is a
422 / INVALID_ARGUMENT and writes nothing."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
async def ops_stub(service: Service) -> AsyncIterator[pb_grpc.InventoryServiceStub]:
    channel = make_channel(f"127.0.0.1:{service.grpc_port}", lambda: token("ops-1", "ops"))
    yield pb_grpc.InventoryServiceStub(channel)  # type: ignore[no-untyped-call]
    await channel.close()


async def test_sku_attributes_are_bounded(client: httpx.AsyncClient) -> None:
    sku = unique("attr")
    base = {"title": "t", "category": "c", "status": "active"}
    for attributes in (
        {f"k{i}": "v" for i in range(51)},
        {"colour": "x" * 501},
        {"k" * 65: "v"},
        {"": "v"},
        {"n": 1},
    ):
        r = await client.put(
            f"/v1/skus/{sku}", json={**base, "attributes": attributes}, headers=OPS
        )
        assert r.status_code == 422, r.text[:300]
    assert (await client.get(f"/v1/skus/{sku}", headers=OPS)).status_code == 404
    fifty = {f"k{i}": "v" * 500 for i in range(50)}
    ok = await client.put(f"/v1/skus/{sku}", json={**base, "attributes": fifty}, headers=OPS)
    assert ok.status_code == 201, ok.text[:300]


async def test_integers_past_their_bounds_and_loose_types_are_422(
    client: httpx.AsyncClient, make_sku: Callable[..., Any], make_warehouse: Callable[..., Any]
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    for body in (
        {"name": "w", "priority": 2**31},
        {"name": "w", "priority": 2**200},
        {"name": "w", "priority": "5"},
        {"name": "w", "priority": True},
    ):
        r = await client.put(f"/v1/warehouses/{unique('wh')}", json=body, headers=OPS)
        assert r.status_code == 422, (body, r.text)
    for delta in (2**63, -(2**63) - 1, 1_000_000_001, "3", True, 1.0):
        r = await client.post(
            "/v1/stock/adjustments",
            json={"sku": sku, "warehouse": wh, "delta": delta, "reason": "receipt"},
            headers={**OPS, "Idempotency-Key": unique("k")},
        )
        assert r.status_code == 422, (delta, r.text)
    for line in ({"sku": sku, "quantity": 2**63}, {"sku": sku, "quantity": True}):
        r = await client.post(
            "/v1/reservations",
            json={"reservation_id": unique("r"), "lines": [line]},
            headers=SVC,
        )
        assert r.status_code == 422, (line, r.text)
    r = await client.post(
        "/v1/reservations",
        json={
            "reservation_id": unique("r"),
            "lines": [{"sku": sku, "quantity": 1}],
            "ttl_seconds": 2**40,
        },
        headers=SVC,
    )
    assert r.status_code == 422, r.text
    stock = await client.get(f"/v1/stock/{sku}", headers=OPS)
    assert stock.json()["on_hand"] == 5 and stock.json()["reserved"] == 0
    for params in ({"to": "0001-01-01"}, {"from": "0001-01-01", "to": "0001-01-02"}):
        r = await client.get("/v1/inventory/kpis", params=params, headers=OPS)
        assert r.status_code in (200, 422), (params, r.text)
    r = await client.get("/v1/inventory/kpis", params={"to": "0001-01-01"}, headers=OPS)
    assert r.status_code == 422, r.text
    r = await client.get("/v1/skus", params={"limit": 2**70}, headers=OPS)
    assert r.status_code == 422, r.text


async def test_grpc_bounds_are_invalid_argument(
    ops_stub: pb_grpc.InventoryServiceStub,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    calls = [
        ops_stub.UpsertWarehouse(
            pb.UpsertWarehouseRequest(code=unique("wh"), name="w", priority=2**31 - 1), timeout=5
        ),
        ops_stub.AdjustStock(
            pb.AdjustStockRequest(
                idempotency_key=unique("k"),
                sku=sku,
                warehouse=wh,
                delta=2**62,
                reason=pb.ADJUSTMENT_REASON_RECEIPT,
            ),
            timeout=5,
        ),
        ops_stub.UpsertSku(
            pb.UpsertSkuRequest(
                sku=unique("attr"),
                title="t",
                category="c",
                status=pb.SKU_STATUS_ACTIVE,
                attributes={f"k{i}": "v" for i in range(5000)},
            ),
            timeout=5,
        ),
        ops_stub.ReserveStock(
            pb.ReserveStockRequest(
                reservation_id=unique("r"),
                lines=[common_pb2.SkuQuantity(sku=sku, quantity=2**62)],
            ),
            timeout=5,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    stock = await ops_stub.GetStock(pb.GetStockRequest(sku=sku), timeout=5)
    assert stock.stock.on_hand == 5 and stock.stock.reserved == 0
