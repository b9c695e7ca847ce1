"""Ownership and card data: what a customer may see, and what never lands anywhere.

Every resource that has an owner answers 404 to another customer, on REST and gRPC; a card
number sent to the order service is refused and appears in no log line, event or database row
afterwards; the stack's token secret appears in no log either.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import grpc
import harness
import pytest
from proof_fixtures import customer, idem, pg_dsn, read_topic

from ecomops.order.v1 import order_service_pb2 as ord_pb
from ecomops.order.v1 import order_service_pb2_grpc as ord_grpc
from ecomops_testing import token

pytestmark = pytest.mark.integration

# A Luhn-valid test PAN (Visa test range); only ever sent by this test.
PAN = "4242424242424242"
PAN_SPACED = "4242 4242 4242 4242"


async def _placed_order(shop, owner: str) -> str:
    sku = f"SEC-{uuid.uuid4().hex[:8]}"
    await shop.seed_sku(sku, units=5)
    resp = await shop.place_order(owner, [(sku, 1)])
    assert resp.status_code == 201, resp.text
    return str(resp.json()["order_id"])


async def test_another_customers_resources_are_404_on_rest_and_grpc(stack, http, shop) -> None:
    owner, other = f"cust-{uuid.uuid4().hex[:8]}", f"cust-{uuid.uuid4().hex[:8]}"
    order_id = await _placed_order(shop, owner)
    cart = await http.post(
        stack.url("order") + "/v1/carts",
        json={"currency": "EUR"},
        headers={**customer(owner), **idem()},
    )
    assert cart.status_code == 201, cart.text
    cart_id = cart.json()["cart_id"]

    own = await http.get(stack.url("order") + f"/v1/orders/{order_id}", headers=customer(owner))
    assert own.status_code == 200
    for path in (f"/v1/orders/{order_id}", f"/v1/carts/{cart_id}"):
        resp = await http.get(stack.url("order") + path, headers=customer(other))
        assert resp.status_code == 404, (path, resp.status_code, resp.text[:200])
    pay = await http.post(
        stack.url("order") + f"/v1/orders/{order_id}/payments",
        json={"payment_token": "tok_ok_x"},
        headers={**customer(other), **idem()},
    )
    assert pay.status_code == 404
    listed = await http.get(stack.url("order") + "/v1/orders", headers=customer(other))
    assert order_id not in {o["order_id"] for o in listed.json()["items"]}
    for path in (f"/v1/recommendations/customers/{owner}", f"/v1/segments/customers/{owner}"):
        resp = await http.get(stack.url("recommendation") + path, headers=customer(other))
        assert resp.status_code == 404, (path, resp.status_code, resp.text[:200])

    async with grpc.aio.insecure_channel(stack.grpc_target("order")) as channel:
        stub = ord_grpc.OrderServiceStub(channel)
        meta = (("authorization", f"Bearer {token(other, 'customer')}"),)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetOrder(
                ord_pb.GetOrderRequest(order_id=order_id), metadata=meta, timeout=10
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        mine = (("authorization", f"Bearer {token(owner, 'customer')}"),)
        got = await stub.GetOrder(
            ord_pb.GetOrderRequest(order_id=order_id), metadata=mine, timeout=10
        )
        assert got.order.order_id == order_id


async def test_card_numbers_are_refused_and_found_nowhere(stack, http, shop) -> None:
    owner = f"cust-{uuid.uuid4().hex[:8]}"
    order_id = await _placed_order(shop, owner)
    attempts = [
        {"payment_token": PAN},
        {"payment_token": f"tok_ok_{PAN}"},
        {"payment_token": PAN_SPACED},
    ]
    for body in attempts:
        resp = await http.post(
            stack.url("order") + f"/v1/orders/{order_id}/payments",
            json=body,
            headers={**customer(owner), **idem()},
        )
        assert resp.status_code == 422, resp.text
        assert PAN not in resp.text and PAN_SPACED not in resp.text
    cancel = await http.post(
        stack.url("order") + f"/v1/orders/{order_id}/cancel",
        json={"reason": f"card {PAN}"},
        headers={**customer(owner), **idem()},
    )
    assert cancel.status_code == 422
    paid = await shop.pay(owner, order_id)
    assert paid["status"] == "paid"

    # Logs of every service process.
    secret = os.environ["ECOMOPS_JWT_SECRET"]
    logs = list(harness.LOG_DIR.glob("*.log"))
    assert logs, f"no service logs in {harness.LOG_DIR}"
    for log in logs:
        text = log.read_text(errors="replace")
        assert PAN not in text and PAN_SPACED not in text, f"card number in {log}"
        assert secret not in text, f"JWT secret in {log}"

    # Events of the order.
    # The relay publishes shortly after the commit: read until the payment's event is there.
    events: list = []
    for _ in range(30):
        events = await read_topic("ecomops.order.v1", keys={order_id})
        if any(e.event_type == "ecomops.order.v1.OrderPaid" for e in events):
            break
        await asyncio.sleep(1)
    assert any(e.event_type == "ecomops.order.v1.OrderPaid" for e in events), (
        "the order's events should be on Kafka"
    )
    for event in events:
        raw = event.message.SerializeToString()
        assert PAN.encode() not in raw and PAN_SPACED.encode() not in raw

    # Every row of every table of the order database.
    conn = await asyncpg.connect(pg_dsn("order"))
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        for row in tables:
            name = row["table_name"]
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{name}" t WHERE row_to_json(t)::text LIKE $1 '
                "OR row_to_json(t)::text LIKE $2",
                f"%{PAN}%",
                f"%{PAN_SPACED}%",
            )
            assert hits == 0, f"card number stored in order table {name}"
    finally:
        await conn.close()
