"""The storefront journey over REST, on the real services: browse SKUs → behaviour events →
recommendations → cart → checkout → pay → ship partial, then the rest → deliver → return →
receive → refund; each step's events observed on Kafka."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from proof_fixtures import ADDRESS, customer, idem, new_id, ops, wait_until

pytestmark = pytest.mark.integration


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


async def test_storefront_journey(shop: Any, kafka: Any, journey_rules: Any) -> None:
    http = shop.client
    shop.stack.require("recommendation")
    category = new_id("cat")
    a, b = new_id("sku-a"), new_id("sku-b")
    for sku in (a, b):
        await shop.seed_sku(sku, units=5, price_minor=2000, cost_minor=800, category=category)
    cid = new_id("cust")
    me = customer(cid)

    # Browse: the category lists both SKUs, with stock and a price.
    listed = await http.get(
        shop.url("inventory", "/v1/skus"), params={"category": category}, headers=me
    )
    assert listed.status_code == 200, listed.text
    assert sorted(i["sku"] for i in listed.json()["items"]) == sorted([a, b])
    avail = await http.get(
        shop.url("inventory", "/v1/availability"), params={"skus": [a, b]}, headers=me
    )
    assert [i["available"] for i in avail.json()["items"]] == [5, 5]
    price = await http.get(
        shop.url("pricing", f"/v1/prices/{a}"), params={"currency": "EUR"}, headers=me
    )
    assert price.json()["list_price_minor"] == 2000

    # Behaviour: a session views both and adds one to the cart.
    session = uuid.uuid4().hex
    events = [
        {"type": t, "sku": s, "customer_id": cid, "session_id": session, "occurred_at": _now()}
        for t, s in (("view", a), ("view", b), ("add_to_cart", a))
    ]
    resp = await http.post(
        shop.url("recommendation", "/v1/behavior-events"), json={"events": events}, headers=me
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 3
    recorded = await kafka.wait_for("BehaviorRecorded", lambda e: e.message.sku in (a, b), count=3)
    assert sorted(e.message.sku for e in recorded) == sorted([a, a, b])

    # Recommendations: b is "viewed together" with a; the customer gets an answer.
    async def similar() -> None:
        r = await http.get(
            shop.url("recommendation", f"/v1/recommendations/skus/{a}/similar"), headers=me
        )
        assert r.status_code == 200, r.text
        assert b in [i["sku"] for i in r.json()["items"]], r.text

    await wait_until(similar, timeout=30, interval=0.5)
    mine = await http.get(
        shop.url("recommendation", f"/v1/recommendations/customers/{cid}"), headers=me
    )
    assert mine.status_code == 200, mine.text

    # Cart → checkout.
    cart = await http.post(shop.url("order", "/v1/carts"), json={}, headers={**me, **idem()})
    assert cart.status_code == 201, cart.text
    cart_id = cart.json()["cart_id"]
    for sku, qty in ((a, 2), (b, 1)):
        r = await http.put(
            shop.url("order", f"/v1/carts/{cart_id}/items/{sku}"),
            json={"quantity": qty},
            headers=me,
        )
        assert r.status_code == 200, r.text
    view = (await http.get(shop.url("order", f"/v1/carts/{cart_id}"), headers=me)).json()
    assert view["total_minor"] == 6000, view
    assert all(line["available"] for line in view["lines"]), view
    placed = await http.post(
        shop.url("order", f"/v1/carts/{cart_id}/checkout"),
        json={
            "shipping_address": ADDRESS,
            "client": {"ip": "10.9.8.7", "device_id": f"dev-{cid}"},
        },
        headers={**me, **idem()},
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    oid = order["order_id"]
    assert order["status"] == "awaiting_payment" and order["total_minor"] == 6000, order
    await kafka.wait_for("OrderPlaced", lambda e: e.key == oid)
    await kafka.wait_for("RiskAssessed", lambda e: e.key == oid)
    await kafka.wait_for("StockReserved", lambda e: e.message.reservation_id == oid)
    assert (await shop.stock(a))["reserved"] == 2
    again = await http.put(
        shop.url("order", f"/v1/carts/{cart_id}/items/{a}"), json={"quantity": 1}, headers=me
    )
    assert again.status_code == 409, again.text

    # Pay: inventory commits the hold.
    paid = await shop.pay(cid, oid)
    assert paid["status"] == "paid", paid
    await kafka.wait_for("OrderPaid", lambda e: e.key == oid)
    await kafka.wait_for("StockCommitted", lambda e: e.message.reservation_id == oid)

    async def committed() -> None:
        s = await shop.stock(a)
        assert (s["on_hand"], s["reserved"]) == (3, 0), s

    await wait_until(committed, timeout=30)

    # Ship a first, then the rest; deliver.
    first = await http.post(
        shop.url("order", f"/v1/orders/{oid}/shipments"),
        json={"lines": [{"sku": a, "quantity": 2}], "carrier": "DHL", "tracking_number": "JD1"},
        headers={**ops(), **idem()},
    )
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "partially_shipped"
    rest = await http.post(
        shop.url("order", f"/v1/orders/{oid}/shipments"),
        json={"carrier": "DHL", "tracking_number": "JD2"},
        headers={**ops(), **idem()},
    )
    assert rest.status_code == 201, rest.text
    assert rest.json()["status"] == "shipped"
    shipped = await kafka.wait_for("OrderShipped", lambda e: e.key == oid, count=2)
    assert sorted(e.message.complete for e in shipped) == [False, True]
    delivered = await http.post(shop.url("order", f"/v1/orders/{oid}/delivery"), headers=ops())
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "delivered"
    await kafka.wait_for("OrderDelivered", lambda e: e.key == oid)

    # Return one unit of a: approved, received resellable → refund, restock.
    rma = await http.post(
        shop.url("order", f"/v1/orders/{oid}/returns"),
        json={"lines": [{"sku": a, "quantity": 1}], "reason": "too small"},
        headers={**me, **idem()},
    )
    assert rma.status_code == 201, rma.text
    rid = rma.json()["return_id"]
    await kafka.wait_for("ReturnRequested", lambda e: e.key == oid)
    approved = await http.post(shop.url("order", f"/v1/returns/{rid}/approve"), headers=ops())
    assert approved.status_code == 200, approved.text
    received = await http.post(
        shop.url("order", f"/v1/returns/{rid}/receive"),
        json={
            "lines": [{"sku": a, "quantity": 1, "resellable": True}],
            "warehouse": shop.warehouse,
        },
        headers=ops(),
    )
    assert received.status_code == 200, received.text
    assert received.json()["refunded_minor"] == 2000, received.text
    event = (await kafka.wait_for("ReturnReceived", lambda e: e.key == oid))[0]
    assert event.message.refunded_minor == 2000
    refund = (await kafka.wait_for("OrderRefunded", lambda e: e.key == oid))[0]
    assert refund.message.amount_minor == 2000 and refund.message.return_id == rid
    final = await shop.order(oid, headers=me)
    assert final["status"] == "partially_returned" and final["refunded_minor"] == 2000, final
    statuses = [t["status"] for t in final["timeline"]]
    assert statuses == [
        "awaiting_payment",
        "paid",
        "partially_shipped",
        "shipped",
        "delivered",
        "partially_returned",
    ], statuses

    async def restocked() -> None:
        s = await shop.stock(a)
        assert (s["on_hand"], s["available"]) == (4, 4), s

    await wait_until(restocked, timeout=30)
    await kafka.wait_for(
        "StockAdjusted", lambda e: e.message.sku == a and e.message.reason == "return"
    )
