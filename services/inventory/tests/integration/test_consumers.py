"""Order events drive reservations: OrderPaid commits, OrderCancelled releases, ReturnReceived
restocks — each applied once even when delivered twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from ecomops.order.v1 import events_pb2 as order
from ecomops_platform.events import cloudevent_headers, make_producer
from ecomops_platform.settings import CommonSettings
from ecomops_testing import eventually, unique

from .conftest import OPS, SVC

pytestmark = pytest.mark.integration

TOPIC = "ecomops.order.v1"


@pytest.fixture(scope="module")
async def publish(stack_env: None) -> AsyncIterator[Callable[..., Any]]:
    producer = make_producer(CommonSettings(), "inventory-tests")
    await producer.start()

    async def send(message: Message, key: str, event_id: str | None = None) -> str:
        event_id = event_id or str(uuid.uuid4())
        headers = cloudevent_headers(
            event_id=event_id,
            event_type=message.DESCRIPTOR.full_name,
            source="ecomops/order",
            time=datetime.now(UTC),
            traceparent=None,
        )
        await producer.send_and_wait(
            TOPIC,
            message.SerializeToString(),
            key=key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        return event_id

    yield send
    await producer.stop()


async def _stock(client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/stock/{sku}", headers=OPS)).json()
    return body


async def test_order_paid_commits_once_and_records_revenue(
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    publish: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 10})
    order_id = unique("ord")
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": order_id, "lines": [{"sku": sku, "quantity": 2}]},
        headers=SVC,
    )
    assert r.status_code == 201
    paid = order.OrderPaid(
        order_id=order_id,
        customer_id="c1",
        currency="EUR",
        total_minor=5000,
        lines=[order.OrderLine(sku=sku, quantity=2, unit_price_minor=2500, total_minor=5000)],
    )
    paid.paid_at.FromDatetime(datetime.now(UTC))
    event_id = await publish(paid, order_id)
    await publish(paid, order_id, event_id=event_id)  # redelivery

    async def committed() -> None:
        got = (await client.get(f"/v1/reservations/{order_id}", headers=OPS)).json()
        assert got["status"] == "committed"

    await eventually(committed, timeout=30)
    level = await _stock(client, sku)
    assert (level["on_hand"], level["reserved"]) == (8, 0)
    abc = (await client.get("/v1/inventory/abc", headers=OPS)).json()
    mine = [i for i in abc["items"] if i["sku"] == sku]
    assert mine and mine[0]["revenue_minor"] == 5000


async def test_order_cancelled_releases_and_return_restocks(
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    publish: Callable[..., Any],
) -> None:
    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 5})
    order_id = unique("ord")
    await client.post(
        "/v1/reservations",
        json={"reservation_id": order_id, "lines": [{"sku": sku, "quantity": 5}]},
        headers=SVC,
    )
    await publish(order.OrderCancelled(order_id=order_id, reason="customer"), order_id)

    async def released() -> None:
        got = (await client.get(f"/v1/reservations/{order_id}", headers=OPS)).json()
        assert got["status"] == "released"
        assert got["release_reason"] == "cancelled"

    await eventually(released, timeout=30)
    assert (await _stock(client, sku))["available"] == 5

    return_id = unique("rma")
    received = order.ReturnReceived(
        return_id=return_id,
        order_id=order_id,
        warehouse=wh,
        lines=[
            order.ReturnedLine(sku=sku, quantity=2, resellable=True),
            order.ReturnedLine(sku=sku, quantity=1, resellable=False),
        ],
    )
    event_id = await publish(received, order_id)
    await publish(received, order_id, event_id=event_id)

    async def restocked() -> None:
        assert (await _stock(client, sku))["on_hand"] == 7

    await eventually(restocked, timeout=30)
    ledger = (await client.get(f"/v1/stock/{sku}/ledger", headers=OPS)).json()["items"]
    assert next((e["delta"], e["reason"], e["reference"]) for e in ledger) == (
        2,
        "return",
        return_id,
    )
    assert sum(e["delta"] for e in ledger) == 7


async def test_paid_order_cancelled_puts_units_back_once(
    service: Any,
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
) -> None:
    from inventory_service.service_layer.fulfilment import ReleaseOrderStock

    wh = await make_warehouse()
    sku = await make_sku(stock={wh: 6})
    order_id = unique("ord")
    await client.post(
        "/v1/reservations",
        json={"reservation_id": order_id, "lines": [{"sku": sku, "quantity": 4}]},
        headers=SVC,
    )
    assert (
        await client.post(f"/v1/reservations/{order_id}/commit", headers=SVC)
    ).status_code == 200
    for _ in range(2):  # a second, distinct cancellation event must not restock twice
        await service.bus.handle(
            ReleaseOrderStock(order_id=order_id, was_paid=True), service.bus.system
        )
    level = await _stock(client, sku)
    assert (level["on_hand"], level["reserved"]) == (6, 0)
    ledger = (await client.get(f"/v1/stock/{sku}/ledger", headers=OPS)).json()["items"]
    assert [(e["delta"], e["reason"]) for e in ledger] == [
        (4, "cancel"),
        (-4, "commit"),
        (6, "receipt"),
    ]


def _by_warehouse(level: dict[str, Any]) -> dict[str, int]:
    return {w["warehouse"]: w["on_hand"] for w in level["warehouses"]}


async def test_return_without_warehouse_restocks_where_each_unit_was_shipped(
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    publish: Callable[..., Any],
) -> None:
    """A line of 4 split 2 + 2 over two warehouses; a return of 3 then one of 1 (no receiving
    warehouse): the higher-priority origin is filled first, each origin gets back at most what
    it shipped, and a redelivered or repeated ReturnReceived restocks once."""
    first = await make_warehouse(priority=1)
    second = await make_warehouse(priority=5)
    sku = await make_sku(stock={first: 2, second: 3})
    order_id = unique("ord")
    r = await client.post(
        "/v1/reservations",
        json={"reservation_id": order_id, "lines": [{"sku": sku, "quantity": 4}]},
        headers=SVC,
    )
    assert r.status_code == 201, r.text
    shipped = {a["warehouse"]: a["quantity"] for a in r.json()["allocations"]}
    assert shipped == {first: 2, second: 2}
    assert (
        await client.post(f"/v1/reservations/{order_id}/commit", headers=SVC)
    ).status_code == 200
    assert _by_warehouse(await _stock(client, sku)) == {first: 0, second: 1}

    rma1 = unique("rma")
    received = order.ReturnReceived(
        return_id=rma1,
        order_id=order_id,
        lines=[
            order.ReturnedLine(sku=sku, quantity=3, resellable=True),
            order.ReturnedLine(sku=sku, quantity=1, resellable=False),
        ],
    )
    event_id = await publish(received, order_id)
    await publish(received, order_id, event_id=event_id)  # redelivery: same event id
    await publish(received, order_id)  # the same return again under a new event id

    async def first_return() -> None:
        assert _by_warehouse(await _stock(client, sku)) == {first: 2, second: 2}

    await eventually(first_return, timeout=30)

    rma2 = unique("rma")
    await publish(
        order.ReturnReceived(
            return_id=rma2,
            order_id=order_id,
            lines=[order.ReturnedLine(sku=sku, quantity=1, resellable=True)],
        ),
        order_id,
    )

    async def second_return() -> None:
        assert _by_warehouse(await _stock(client, sku)) == {first: 2, second: 3}

    await eventually(second_return, timeout=30)
    ledger = (await client.get(f"/v1/stock/{sku}/ledger", headers=OPS)).json()["items"]
    returns = sorted(
        (e["reference"], e["warehouse"], e["delta"]) for e in ledger if e["reason"] == "return"
    )
    assert returns == sorted([(rma1, first, 2), (rma1, second, 1), (rma2, second, 1)])


async def test_return_of_an_unknown_order_goes_to_the_skus_first_warehouse(
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
    publish: Callable[..., Any],
) -> None:
    """No reservation to learn the origin from, and an unknown receiving warehouse: the units go
    to the SKU's highest-priority warehouse instead of the dead-letter topic."""
    low = await make_warehouse(priority=50)
    high = await make_warehouse(priority=2)
    sku = await make_sku(stock={low: 1, high: 1})
    order_id = unique("ord")
    await publish(
        order.ReturnReceived(
            return_id=unique("rma"),
            order_id=order_id,
            warehouse="no-such-warehouse",
            lines=[order.ReturnedLine(sku=sku, quantity=2, resellable=True)],
        ),
        order_id,
    )

    async def restocked() -> None:
        assert _by_warehouse(await _stock(client, sku)) == {low: 1, high: 3}

    await eventually(restocked, timeout=30)


async def test_configured_return_warehouse_overrides_the_origin(
    service: Any,
    client: httpx.AsyncClient,
    make_sku: Callable[..., Any],
    make_warehouse: Callable[..., Any],
) -> None:
    from ecomops_platform.bus import MessageBus
    from inventory_service.bootstrap import SPEC
    from inventory_service.service_layer.fulfilment import RestockReturn, ReturnedLine
    from inventory_service.service_layer.ports import Deps
    from inventory_service.settings import InventorySettings

    origin = await make_warehouse(priority=1)
    returns_desk = await make_warehouse(priority=90)
    sku = await make_sku(stock={origin: 2})
    order_id = unique("ord")
    await client.post(
        "/v1/reservations",
        json={"reservation_id": order_id, "lines": [{"sku": sku, "quantity": 2}]},
        headers=SVC,
    )
    await client.post(f"/v1/reservations/{order_id}/commit", headers=SVC)
    settings = InventorySettings(
        database_url=service.settings.database_url, default_return_warehouse=returns_desk
    )
    rma = unique("rma")
    bus: MessageBus[Any, Deps] = MessageBus(
        service="inventory", uow=service.uow, deps=Deps(settings=settings), handlers=SPEC.handlers
    )
    received = RestockReturn(
        return_id=rma, order_id=order_id, warehouse="", lines=(ReturnedLine(sku, 2, True),)
    )
    entries = await bus.handle(received, bus.system)
    assert [(e.warehouse, e.delta) for e in entries] == [(returns_desk, 2)]
    assert await bus.handle(received, bus.system) == []
    assert _by_warehouse(await _stock(client, sku)) == {origin: 0, returns_desk: 2}
