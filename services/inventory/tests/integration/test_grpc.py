"""The gRPC InventoryService: the same handlers, errors as status codes + problem trailer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from ecomops_platform.grpc_client import make_channel, problem_of
from ecomops_platform.runtime import Service
from ecomops_testing import token, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stub(service: Service) -> AsyncIterator[pb_grpc.InventoryServiceStub]:
    channel = make_channel(f"127.0.0.1:{service.grpc_port}", lambda: token("order", "service"))
    yield pb_grpc.InventoryServiceStub(channel)
    await channel.close()


@pytest.fixture(scope="module")
async def ops_stub(service: Service) -> AsyncIterator[pb_grpc.InventoryServiceStub]:
    channel = make_channel(f"127.0.0.1:{service.grpc_port}", lambda: token("ops-1", "ops"))
    yield pb_grpc.InventoryServiceStub(channel)
    await channel.close()


async def test_reserve_commit_release_over_grpc(
    stub: pb_grpc.InventoryServiceStub,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 3})
    rid = unique("ord")
    req = pb.ReserveStockRequest(
        reservation_id=rid, lines=[common_pb2.SkuQuantity(sku=sku, quantity=2)], ttl_seconds=1000
    )
    first = await stub.ReserveStock(req, timeout=5)
    again = await stub.ReserveStock(req, timeout=5)
    assert first.reservation.status == pb.RESERVATION_STATUS_HELD
    assert first == again
    assert [(a.warehouse, a.quantity) for a in first.reservation.allocations] == [(wh, 2)]

    avail = await stub.GetAvailability(pb.GetAvailabilityRequest(skus=[sku, "nope-zz"]), timeout=5)
    assert [(i.sku, i.available, i.status) for i in avail.items] == [
        (sku, 1, pb.SKU_STATUS_ACTIVE),
        ("nope-zz", 0, pb.SKU_STATUS_UNSPECIFIED),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReserveStock(
            pb.ReserveStockRequest(
                reservation_id=unique("ord"), lines=[common_pb2.SkuQuantity(sku=sku, quantity=2)]
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    problem = problem_of(err.value)
    assert problem is not None
    assert problem["shortages"] == [{"sku": sku, "requested": 2, "available": 1}]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReserveStock(
            pb.ReserveStockRequest(
                reservation_id=unique("ord"),
                lines=[common_pb2.SkuQuantity(sku="nope-zz", quantity=1)],
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    committed = await stub.CommitReservation(
        pb.CommitReservationRequest(reservation_id=rid), timeout=5
    )
    assert committed.reservation.status == pb.RESERVATION_STATUS_COMMITTED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id=rid), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stock = await stub.GetStock(pb.GetStockRequest(sku=sku), timeout=5)
    assert (stock.stock.on_hand, stock.stock.reserved, stock.stock.available) == (1, 0, 1)


async def test_ops_calls_and_roles_over_grpc(
    stub: pb_grpc.InventoryServiceStub,
    ops_stub: pb_grpc.InventoryServiceStub,
    make_warehouse: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = unique("gsku")
    up = await ops_stub.UpsertSku(
        pb.UpsertSkuRequest(sku=sku, title="T", category="c", status=pb.SKU_STATUS_ACTIVE),
        timeout=5,
    )
    assert up.created
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpsertSku(
            pb.UpsertSkuRequest(sku=sku, title="T", category="c", status=pb.SKU_STATUS_ACTIVE),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    key = unique("key")
    req = pb.AdjustStockRequest(
        idempotency_key=key, sku=sku, warehouse=wh, delta=7, reason=pb.ADJUSTMENT_REASON_RECEIPT
    )
    a = await ops_stub.AdjustStock(req, timeout=5)
    b = await ops_stub.AdjustStock(req, timeout=5)
    assert a.entry.entry_id == b.entry.entry_id and a.entry.on_hand_after == 7
    ledger = await ops_stub.ListLedger(
        pb.ListLedgerRequest(sku=sku, page=common_pb2.PageRequest(limit=10)), timeout=5
    )
    assert [e.delta for e in ledger.entries] == [7]
    whs = await stub.ListWarehouses(pb.ListWarehousesRequest(), timeout=5)
    assert wh in [w.code for w in whs.warehouses]
    kpis = await stub.GetInventoryKpis(pb.GetInventoryKpisRequest(), timeout=5)
    assert kpis.kpis.sku_days >= 0
