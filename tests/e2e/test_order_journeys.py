"""Order journeys through the REAL inventory, pricing and risk services (in-process), with the
events asserted on Kafka: happy path, review (both ways), reject, out of stock, decline, payment
timeout, cancel, partial shipment, return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecomops_testing import bearer, eventually, unique

pytestmark = pytest.mark.integration

ORDER_TOPIC = "ecomops.order.v1"
WAREHOUSE = "e2e-wh"


def key() -> dict[str, str]:
    return {"Idempotency-Key": unique("k")}


async def _approved_return(
    o: Any, oid: str, sku: str, quantity: int, reason: str, customer: Any, ops: Any
) -> str:
    """The customer asks to return ``quantity`` of ``sku``; ops approve it. The return id."""
    rma = await o.post(
        f"/v1/orders/{oid}/returns",
        json={"lines": [{"sku": sku, "quantity": quantity}], "reason": reason},
        headers={**customer, **key()},
    )
    assert rma.status_code == 201, rma.text
    rid: str = rma.json()["return_id"]
    assert (await o.post(f"/v1/returns/{rid}/approve", headers=ops)).status_code == 200
    return rid


async def stock(stack, ops, sku: str) -> dict[str, Any]:
    r = await stack.clients["inventory"].get(f"/v1/stock/{sku}", headers=ops)
    assert r.status_code == 200, r.text
    return r.json()


async def reservation(stack, ops, order_id: str) -> dict[str, Any] | None:
    r = await stack.clients["inventory"].get(f"/v1/reservations/{order_id}", headers=ops)
    return None if r.status_code == 404 else r.json()


async def pay(stack, headers, order_id: str, token: str = "tok_ok_e2e"):
    return await stack.clients["order"].post(
        f"/v1/orders/{order_id}/payments",
        json={"payment_token": token},
        headers={**headers, **key()},
    )


async def order_of(stack, headers, order_id: str) -> dict[str, Any]:
    r = await stack.clients["order"].get(f"/v1/orders/{order_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_happy_path_with_coupon(
    stack, seed, coupon, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    sku = await seed(stock=5)
    code = await coupon(sku)
    _cid, headers = customer()
    resp = await checkout(headers, [{"sku": sku, "quantity": 2}], coupon_codes=[code])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    oid = order["order_id"]
    assert order["status"] == "awaiting_payment"
    assert (order["subtotal_minor"], order["discount_total_minor"], order["total_minor"]) == (
        4000,
        400,
        3600,
    )
    held = await reservation(stack, ops, oid)
    assert held is not None and held["status"] == "held"
    assert (await stock(stack, ops, sku))["available"] == 3
    placed = await probe.wait_for("ecomops.order.v1.OrderPlaced", lambda e: e.key == oid)
    assert placed[0].message.total_minor == 3600 and list(placed[0].message.coupon_codes) == [code]

    paid = await pay(stack, headers, oid)
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "paid"
    await probe.wait_for("ecomops.order.v1.OrderPaid", lambda e: e.key == oid)

    async def committed() -> None:
        r = await reservation(stack, ops, oid)
        assert r is not None and r["status"] == "committed"

    await eventually(committed, timeout=60)
    level = await stock(stack, ops, sku)
    assert level["on_hand"] == 3 and level["reserved"] == 0

    carrier = bearer("e2e-carrier", "partner")
    shipped = await stack.clients["order"].post(
        f"/v1/orders/{oid}/shipments",
        json={"carrier": "UPS", "tracking_number": "1ZE2E"},
        headers={**carrier, **key()},
    )
    assert shipped.status_code == 201 and shipped.json()["status"] == "shipped"
    delivered = await stack.clients["order"].post(f"/v1/orders/{oid}/delivery", headers=carrier)
    assert delivered.json()["status"] == "delivered"
    await probe.wait_for("ecomops.order.v1.OrderShipped", lambda e: e.key == oid)
    await probe.wait_for("ecomops.order.v1.OrderDelivered", lambda e: e.key == oid)


async def test_retry_with_same_key_makes_one_order_and_one_hold(
    stack, seed, checkout, customer, ops
) -> None:
    sku = await seed(stock=5)
    _, headers = customer()
    first = await checkout(headers, [{"sku": sku, "quantity": 1}], key="e2e-same")
    second = await checkout(headers, [{"sku": sku, "quantity": 1}], key="e2e-same")
    assert first.status_code == second.status_code == 201
    assert first.json()["order_id"] == second.json()["order_id"]
    assert (await stock(stack, ops, sku))["reserved"] == 1


async def _review_order(stack, seed, checkout, customer) -> tuple[str, dict[str, str], str]:
    """An order whose device was seen before: risk sends it to review."""
    sku = await seed(stock=5)
    _, headers = customer()
    device = unique("dev")
    client = {"device_id": device, "ip": "203.0.113.7"}
    for _ in range(3):  # the device's count passes the rule's max_count of 1
        resp = await checkout(headers, [{"sku": sku, "quantity": 1}], client=client)
        assert resp.status_code == 201, resp.text
        if resp.json()["status"] == "in_review":
            break
    assert resp.json()["status"] == "in_review"
    return resp.json()["order_id"], headers, sku


async def _decide(stack, ops, order_id: str, decision: str) -> None:
    review_id = None
    cursor = None
    while review_id is None:
        params: dict[str, Any] = {"status": "open", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.clients["risk"].get("/v1/reviews", params=params, headers=ops)).json()
        review_id = next((r["review_id"] for r in page["items"] if r["order_id"] == order_id), None)
        cursor = page.get("next_cursor")
        if review_id is None and not cursor:
            raise AssertionError(f"no open review for {order_id}")
    r = await stack.clients["risk"].post(
        f"/v1/reviews/{review_id}/decision", json={"decision": decision}, headers=ops
    )
    assert r.status_code == 200, r.text


async def test_review_approved_becomes_payable(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    oid, headers, _ = await _review_order(stack, seed, checkout, customer)
    held = await reservation(stack, ops, oid)
    assert held is not None and held["status"] == "held"
    await _decide(stack, ops, oid, "approve")

    async def payable() -> None:
        view = await order_of(stack, headers, oid)
        assert view["status"] == "awaiting_payment" and view["payment_due_at"]

    await eventually(payable, timeout=60)
    assert (await pay(stack, headers, oid)).status_code == 201


async def test_review_rejected_is_cancelled_and_released(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    oid, headers, _sku = await _review_order(stack, seed, checkout, customer)
    await _decide(stack, ops, oid, "reject")
    event = (
        await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == oid, timeout=60)
    )[0]
    assert event.message.reason == "risk_rejected"
    assert (await order_of(stack, headers, oid))["status"] == "cancelled"

    async def released() -> None:
        r = await reservation(stack, ops, oid)
        assert r is not None and r["status"] == "released"

    await eventually(released, timeout=60)


async def test_blocklisted_customer_is_rejected(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    sku = await seed(stock=5)
    cid, headers = customer()
    r = await stack.clients["risk"].put(
        f"/v1/blocklist/customer/{cid}", json={"reason": "e2e"}, headers=ops
    )
    assert r.status_code in (200, 201), r.text
    resp = await checkout(headers, [{"sku": sku, "quantity": 1}])
    assert resp.status_code == 422
    problem = resp.json()
    assert problem["type"].endswith("order-rejected") and "blocklist" not in resp.text
    oid = problem["order_id"]
    await probe.wait_for("ecomops.order.v1.OrderRejected", lambda e: e.key == oid)
    assert await reservation(stack, ops, oid) is None
    assert (await stock(stack, ops, sku))["available"] == 5
    staff = await order_of(stack, ops, oid)
    assert staff["status"] == "rejected" and staff["risk"]["decision"] == "reject"


async def test_out_of_stock_names_the_short_lines(stack, seed, checkout, customer, ops) -> None:
    short = await seed(stock=1)
    fine = await seed(stock=5)
    _, headers = customer()
    resp = await checkout(headers, [{"sku": short, "quantity": 3}, {"sku": fine, "quantity": 1}])
    assert resp.status_code == 409, resp.text
    assert resp.json()["shortages"] == [{"sku": short, "requested": 3, "available": 1}]
    assert (await stock(stack, ops, fine))["available"] == 5
    assert (await stock(stack, ops, short))["available"] == 1


async def test_declined_payment_keeps_order_payable(stack, seed, checkout, customer) -> None:
    sku = await seed(stock=2)
    _, headers = customer()
    oid = (await checkout(headers, [{"sku": sku, "quantity": 1}])).json()["order_id"]
    declined = await pay(stack, headers, oid, "tok_declined_e2e")
    assert declined.status_code == 402
    assert (await order_of(stack, headers, oid))["status"] == "awaiting_payment"
    assert (await pay(stack, headers, oid)).status_code == 201


async def test_payment_timeout_cancels_and_releases(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    sku = await seed(stock=3)
    _, headers = customer()
    settings = stack.order.settings
    saved = settings.payment_timeout
    settings.payment_timeout = 1.0  # short payment window for this order only
    try:
        oid = (await checkout(headers, [{"sku": sku, "quantity": 2}])).json()["order_id"]
    finally:
        settings.payment_timeout = saved
    event = (
        await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == oid, timeout=60)
    )[0]
    assert event.message.reason == "payment_timeout"

    async def released() -> None:
        assert (await stock(stack, ops, sku))["available"] == 3

    await eventually(released, timeout=60)
    late = await pay(stack, headers, oid)
    assert late.status_code == 409 and late.json()["current_status"] == "cancelled"


async def test_customer_cancel_releases_stock_and_coupon(
    stack, seed, coupon, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    sku = await seed(stock=4)
    code = await coupon(sku, usage_limit=1)
    _, headers = customer()
    oid = (await checkout(headers, [{"sku": sku, "quantity": 1}], coupon_codes=[code])).json()[
        "order_id"
    ]
    _, other = customer()
    used_up = await checkout(other, [{"sku": sku, "quantity": 1}], coupon_codes=[code])
    assert used_up.status_code in (409, 422), used_up.text  # the only use is taken
    resp = await stack.clients["order"].post(
        f"/v1/orders/{oid}/cancel", json={"reason": "changed my mind"}, headers=headers
    )
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    event = (await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == oid))[0]
    assert event.message.reason == "customer"

    async def released() -> None:
        assert (await stock(stack, ops, sku))["available"] == 4

    await eventually(released, timeout=60)

    async def coupon_back() -> None:
        again = await checkout(other, [{"sku": sku, "quantity": 1}], coupon_codes=[code])
        assert again.status_code == 201, again.text

    await eventually(coupon_back, timeout=60, interval=0.5)


async def test_partial_shipment_then_return_restocks(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    a = await seed(stock=5)
    b = await seed(stock=5)
    _, headers = customer()
    oid = (await checkout(headers, [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}])).json()[
        "order_id"
    ]
    assert (await pay(stack, headers, oid)).status_code == 201
    o = stack.clients["order"]
    first = await o.post(
        f"/v1/orders/{oid}/shipments",
        json={"lines": [{"sku": a, "quantity": 2}], "carrier": "DHL", "tracking_number": "D1"},
        headers={**ops, **key()},
    )
    assert first.json()["status"] == "partially_shipped"
    second = await o.post(
        f"/v1/orders/{oid}/shipments",
        json={"carrier": "DHL", "tracking_number": "D2"},
        headers={**ops, **key()},
    )
    assert second.json()["status"] == "shipped"
    shipped = await probe.wait_for("ecomops.order.v1.OrderShipped", lambda e: e.key == oid, count=2)
    assert sorted(e.message.complete for e in shipped) == [False, True]
    assert (await o.post(f"/v1/orders/{oid}/delivery", headers=ops)).status_code == 200

    async def committed() -> None:
        assert (await stock(stack, ops, a))["on_hand"] == 3

    await eventually(committed, timeout=60)
    rid = await _approved_return(o, oid, a, 2, "wrong colour", headers, ops)
    received = await o.post(
        f"/v1/returns/{rid}/receive",
        json={
            "lines": [
                {"sku": a, "quantity": 1, "resellable": True},
                {"sku": a, "quantity": 1, "resellable": False},
            ],
            "warehouse": WAREHOUSE,
        },
        headers=ops,
    )
    assert received.status_code == 200, received.text
    assert received.json()["refunded_minor"] == 4000
    view = await order_of(stack, headers, oid)
    assert view["status"] == "partially_returned" and view["refunded_minor"] == 4000
    event = (await probe.wait_for("ecomops.order.v1.ReturnReceived", lambda e: e.key == oid))[0]
    assert event.message.refunded_minor == 4000
    await probe.wait_for("ecomops.order.v1.OrderRefunded", lambda e: e.key == oid)

    async def restocked() -> None:
        assert (await stock(stack, ops, a))["on_hand"] == 4  # only the resellable unit

    await eventually(restocked, timeout=60)


async def test_stacked_promotions_never_sell_under_the_floor(
    stack, seed, checkout, customer, ops
) -> None:
    """Issue 19: 100.00 with cost 30.00, floor 30%, two stackable 40% promotions that each pass
    the floor alone. Checkout used to place and take payment at 20.00 (under the cost); the
    combination now stops at the floor price 42.86, through quote, checkout and payment."""
    sku = await seed(stock=5, price=10000)
    pricing = stack.clients["pricing"]
    r = await pricing.put(
        f"/v1/prices/{sku}",
        json={"currency": "EUR", "list_price_minor": 10000, "unit_cost_minor": 3000},
        headers=ops,
    )
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    for name in ("spring-40", "members-40"):
        r = await pricing.post(
            "/v1/promotions",
            json={
                "name": name,
                "kind": "percent",
                "value": "0.40",
                "scope": {"skus": [sku]},
                "stackable": True,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            headers={**ops, **key()},
        )
        assert r.status_code == 201, r.text  # each alone: margin 0.50, above the floor
    _cid, headers = customer()
    resp = await checkout(headers, [{"sku": sku, "quantity": 1}])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert (order["subtotal_minor"], order["total_minor"]) == (10000, 4286), order
    paid = await pay(stack, headers, order["order_id"])
    assert paid.status_code == 201, paid.text
    assert paid.json()["total_minor"] == 4286


async def test_return_restocks_the_warehouses_a_split_order_shipped_from(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    """4 units taken 2 + 2 from two warehouses; 3 come back resellable (1 damaged), received
    exactly as documented (no warehouse named): the higher-priority origin gets its 2 back,
    the other 1; nothing is dead-lettered."""
    probe = await kafka_probe(ORDER_TOPIC)
    inv, o = stack.clients["inventory"], stack.clients["order"]
    near, far = unique("e2e-wh-near"), unique("e2e-wh-far")
    for code, priority in ((near, 1), (far, 5)):
        r = await inv.put(
            f"/v1/warehouses/{code}", json={"name": code, "priority": priority}, headers=ops
        )
        assert r.status_code == 201, r.text
    sku = await seed(stock=0)
    for code, qty in ((near, 2), (far, 3)):
        r = await inv.post(
            "/v1/stock/adjustments",
            json={"sku": sku, "warehouse": code, "delta": qty, "reason": "receipt"},
            headers={**ops, **key()},
        )
        assert r.status_code == 201, r.text
    _, headers = customer()
    placed = await checkout(headers, [{"sku": sku, "quantity": 4}])
    assert placed.status_code == 201, placed.text
    oid = placed.json()["order_id"]
    held = await reservation(stack, ops, oid)
    assert held is not None
    assert {a["warehouse"]: a["quantity"] for a in held["allocations"]} == {near: 2, far: 2}
    assert (await pay(stack, headers, oid)).status_code == 201

    def per_warehouse(level: dict[str, Any]) -> dict[str, int]:
        return {w["warehouse"]: w["on_hand"] for w in level["warehouses"]}

    async def committed() -> None:
        assert per_warehouse(await stock(stack, ops, sku)) == {near: 0, far: 1}

    await eventually(committed, timeout=60)
    shipped = await o.post(
        f"/v1/orders/{oid}/shipments",
        json={"carrier": "DHL", "tracking_number": unique("T")},
        headers={**ops, **key()},
    )
    assert shipped.status_code == 201, shipped.text
    assert (await o.post(f"/v1/orders/{oid}/delivery", headers=ops)).status_code == 200
    rid = await _approved_return(o, oid, sku, 4, "too many", headers, ops)
    received = await o.post(
        f"/v1/returns/{rid}/receive",
        json={
            "lines": [
                {"sku": sku, "quantity": 3, "resellable": True},
                {"sku": sku, "quantity": 1, "resellable": False},
            ]
        },
        headers=ops,
    )
    assert received.status_code == 200, received.text
    event = (await probe.wait_for("ecomops.order.v1.ReturnReceived", lambda e: e.key == oid))[0]
    assert event.message.warehouse == ""

    async def restocked() -> None:
        assert per_warehouse(await stock(stack, ops, sku)) == {near: 2, far: 2}

    await eventually(restocked, timeout=60)
    ledger = (await inv.get(f"/v1/stock/{sku}/ledger", headers=ops)).json()["items"]
    returns = sorted((e["warehouse"], e["delta"]) for e in ledger if e["reason"] == "return")
    assert returns == sorted([(near, 2), (far, 1)])


async def test_order_cancelled_in_review_closes_its_case(
    stack, seed, checkout, customer, ops, kafka_probe
) -> None:
    """The customer cancels while the order waits for an analyst: risk closes the case with
    the order's reason and it leaves the open queue."""
    oid, headers, _ = await _review_order(stack, seed, checkout, customer)
    resp = await stack.clients["order"].post(
        f"/v1/orders/{oid}/cancel", json={"reason": "changed my mind"}, headers=headers
    )
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled", resp.text

    async def closed() -> None:
        cursor, found = None, None
        while found is None:
            params: dict[str, Any] = {"status": "closed", "limit": 200}
            if cursor:
                params["cursor"] = cursor
            r = await stack.clients["risk"].get("/v1/reviews", params=params, headers=ops)
            page = r.json()
            found = next((x for x in page["items"] if x["order_id"] == oid), None)
            cursor = page.get("next_cursor")
            if found is None and not cursor:
                raise AssertionError(f"no closed review for {oid}")
        assert found["close_reason"] == "customer" and found["decision"] is None

    await eventually(closed, timeout=60)
    with pytest.raises(AssertionError, match="no open review"):
        await _decide(stack, ops, oid, "approve")
