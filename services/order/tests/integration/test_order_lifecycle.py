"""After checkout: payment, shipments, delivery, cancel, returns, listing, KPIs, jobs, the
RiskReviewResolved consumer and the gRPC entrypoint — real PostgreSQL and Kafka, fake ports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.order.v1 import events_pb2 as order_events
from ecomops.order.v1 import order_service_pb2 as pb
from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc
from ecomops.risk.v1 import events_pb2 as risk_events
from ecomops_platform.db import UnitOfWork
from ecomops_platform.grpc_client import problem_of
from ecomops_platform.topics import topic_of
from ecomops_testing import bearer, eventually, token, unique
from order_service.adapters.tables import carts, orders

ORDER_TOPIC = topic_of(order_events)

pytestmark = pytest.mark.integration


def key() -> dict[str, str]:
    return {"Idempotency-Key": unique("k")}


async def placed(place, headers, lines=None, **extra) -> dict[str, Any]:
    resp = await place(headers, lines, **extra)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def paid(api, place, headers, lines=None) -> dict[str, Any]:
    order = await placed(place, headers, lines)
    resp = await api.post(
        f"/v1/orders/{order['order_id']}/payments",
        json={"payment_token": "tok_ok_visa"},
        headers={**headers, **key()},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_decline_keeps_the_order_payable_then_payment_succeeds(
    api, place, customer, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer()
    order = await placed(place, headers)
    oid = order["order_id"]
    declined = await api.post(
        f"/v1/orders/{oid}/payments",
        json={"payment_token": "tok_declined_1"},
        headers={**headers, **key()},
    )
    assert declined.status_code == 402
    assert (await api.get(f"/v1/orders/{oid}", headers=headers)).json()["status"] == (
        "awaiting_payment"
    )
    ok = await api.post(
        f"/v1/orders/{oid}/payments",
        json={"payment_token": "tok_ok_1"},
        headers={**headers, **key()},
    )
    assert ok.status_code == 201
    body = ok.json()
    assert body["status"] == "paid" and body["payment"]["last4"] == "4242"
    event = (await probe.wait_for("ecomops.order.v1.OrderPaid", lambda e: e.key == oid))[0]
    assert event.message.total_minor == order["total_minor"]
    assert event.message.payment_fingerprint.startswith("fp_")
    async with order_service.db.sessions() as s:
        row = (await s.execute(sa.select(orders).where(orders.c.id == oid))).one()
    assert row.payment_token == "tok_ok_1" and row.payment_last4 == "4242"
    again = await api.post(
        f"/v1/orders/{oid}/payments",
        json={"payment_token": "tok_ok_1"},
        headers={**headers, **key()},
    )
    assert again.status_code == 409 and again.json()["current_status"] == "paid"


async def test_card_number_as_payment_token_is_refused(api, place, customer) -> None:
    _, headers = customer()
    order = await placed(place, headers)
    resp = await api.post(
        f"/v1/orders/{order['order_id']}/payments",
        json={"payment_token": "5555555555554444"},
        headers={**headers, **key()},
    )
    assert resp.status_code == 422 and "5555" not in resp.text


async def test_other_customers_order_is_404(api, place, customer) -> None:
    _, alice = customer()
    _, bob = customer()
    order = await placed(place, alice)
    oid = order["order_id"]
    assert (await api.get(f"/v1/orders/{oid}", headers=bob)).status_code == 404
    pay = await api.post(
        f"/v1/orders/{oid}/payments", json={"payment_token": "tok_ok"}, headers={**bob, **key()}
    )
    assert pay.status_code == 404
    assert (await api.post(f"/v1/orders/{oid}/cancel", json={}, headers=bob)).status_code == 404


async def test_partial_shipments_delivery_return_and_refund(
    api, place, customer, ops, kafka_probe, fake_world
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer()
    a, b = unique("sku"), unique("sku")
    order = await paid(api, place, headers, [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}])
    oid = order["order_id"]
    carrier = bearer("carrier-dhl", "partner")
    first = await api.post(
        f"/v1/orders/{oid}/shipments",
        json={"lines": [{"sku": a, "quantity": 1}], "carrier": "DHL", "tracking_number": "JD01"},
        headers={**carrier, **key()},
    )
    assert first.status_code == 201 and first.json()["status"] == "partially_shipped"
    early = await api.post(f"/v1/orders/{oid}/delivery", headers=carrier)
    assert early.status_code == 409 and early.json()["current_status"] == "partially_shipped"
    rest = await api.post(
        f"/v1/orders/{oid}/shipments",
        json={"carrier": "DHL", "tracking_number": "JD02"},
        headers={**carrier, **key()},
    )
    assert rest.json()["status"] == "shipped" and len(rest.json()["shipments"]) == 2
    shipped = await probe.wait_for("ecomops.order.v1.OrderShipped", lambda e: e.key == oid, count=2)
    assert [e.message.complete for e in shipped] == [False, True]
    delivered = await api.post(f"/v1/orders/{oid}/delivery", headers=ops)
    assert delivered.json()["status"] == "delivered"
    # Customers cannot cancel after shipment.
    late = await api.post(f"/v1/orders/{oid}/cancel", json={"reason": "x"}, headers=headers)
    assert late.status_code == 409
    # Return one unit of A: request, approve, receive (resellable) → refund.
    rma = await api.post(
        f"/v1/orders/{oid}/returns",
        json={"lines": [{"sku": a, "quantity": 1}], "reason": "too big"},
        headers={**headers, **key()},
    )
    assert rma.status_code == 201, rma.text
    rid = rma.json()["return_id"]
    too_many = await api.post(
        f"/v1/orders/{oid}/returns",
        json={"lines": [{"sku": a, "quantity": 2}], "reason": "again"},
        headers={**headers, **key()},
    )
    assert too_many.status_code == 422  # one unit is already in an open return
    not_yet = await api.post(
        f"/v1/returns/{rid}/receive",
        json={"lines": [{"sku": a, "quantity": 1, "resellable": True}]},
        headers=ops,
    )
    assert not_yet.status_code == 409
    assert (await api.post(f"/v1/returns/{rid}/approve", headers=headers)).status_code == 403
    assert (await api.post(f"/v1/returns/{rid}/approve", headers=ops)).json()["status"] == (
        "approved"
    )
    received = await api.post(
        f"/v1/returns/{rid}/receive",
        json={"lines": [{"sku": a, "quantity": 1, "resellable": True}]},
        headers=ops,
    )
    assert received.status_code == 200, received.text
    assert received.json()["refunded_minor"] == 1000
    final = (await api.get(f"/v1/orders/{oid}", headers=headers)).json()
    assert final["status"] == "partially_returned" and final["refunded_minor"] == 1000
    statuses = [t["status"] for t in final["timeline"]]
    assert statuses == [
        "awaiting_payment",
        "paid",
        "partially_shipped",
        "shipped",
        "delivered",
        "partially_returned",
    ]
    got = (await probe.wait_for("ecomops.order.v1.ReturnReceived", lambda e: e.key == oid))[0]
    assert got.message.lines[0].resellable and got.message.refunded_minor == 1000
    await probe.wait_for("ecomops.order.v1.OrderRefunded", lambda e: e.key == oid)
    await probe.wait_for("ecomops.order.v1.ReturnRequested", lambda e: e.key == oid)


async def test_cancel_paid_order_refunds_and_publishes(
    api, place, customer, kafka_probe, fake_world
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer()
    order = await paid(api, place, headers)
    oid = order["order_id"]
    resp = await api.post(
        f"/v1/orders/{oid}/cancel", json={"reason": "changed mind"}, headers=headers
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled" and resp.json()["refunded_minor"] == 2000
    ev = (await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == oid))[0]
    assert ev.message.reason == "customer" and ev.message.was_paid
    assert ev.message.refunded_minor == 2000
    await probe.wait_for("ecomops.order.v1.OrderRefunded", lambda e: e.key == oid)


async def test_unpaid_order_is_cancelled_when_payment_is_due(
    api, place, customer, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer()
    oid = (await placed(place, headers))["order_id"]
    async with order_service.db.sessions() as s, s.begin():
        await s.execute(
            sa.update(orders)
            .where(orders.c.id == oid)
            .values(payment_due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    ev = (await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == oid))[0]
    assert ev.message.reason == "payment_timeout" and not ev.message.was_paid
    view = (await api.get(f"/v1/orders/{oid}", headers=headers)).json()
    assert view["status"] == "cancelled" and view["timeline"][-1]["actor"] == "system"


async def test_review_resolved_events_continue_or_cancel(
    api, place, customer, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer("review")
    ok = (await placed(place, headers))["order_id"]
    ko = (await placed(place, headers))["order_id"]
    uow = UnitOfWork(order_service.db, "risk")  # publish as risk would, through an outbox
    async with uow:
        for oid, decision in ((ok, "approve"), (ko, "reject")):
            uow.add_event(
                risk_events.RiskReviewResolved(
                    review_id=unique("rv"), order_id=oid, decision=decision, analyst="ann"
                ),
                key=oid,
            )
        await uow.commit()

    async def resolved() -> None:
        a = (await api.get(f"/v1/orders/{ok}", headers=headers)).json()
        b = (await api.get(f"/v1/orders/{ko}", headers=headers)).json()
        assert a["status"] == "awaiting_payment" and a["payment_due_at"]
        assert b["status"] == "cancelled"

    await eventually(resolved, timeout=30)
    ev = (await probe.wait_for("ecomops.order.v1.OrderCancelled", lambda e: e.key == ko))[0]
    assert ev.message.reason == "risk_rejected"


async def test_list_orders_pages_and_filters(api, place, customer, ops) -> None:
    cid, headers = customer()
    ids = [(await placed(place, headers))["order_id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/orders", params=params, headers=headers)).json()
        seen += [o["order_id"] for o in page["items"]]
        assert all(o["customer_id"] == cid for o in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    paid_only = (await api.get("/v1/orders", params={"status": "paid"}, headers=headers)).json()
    assert paid_only["items"] == []
    bad = await api.get("/v1/orders", params={"cursor": "!!"}, headers=headers)
    assert bad.status_code == 422


async def test_cart_checkout_and_abandonment(
    api, customer, address, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _, headers = customer()
    created = await api.post("/v1/carts", json={"currency": "EUR"}, headers={**headers, **key()})
    assert created.status_code == 201
    cart_id = created.json()["cart_id"]
    sku = unique("sku")
    put = await api.put(f"/v1/carts/{cart_id}/items/{sku}", json={"quantity": 3}, headers=headers)
    assert put.status_code == 200, put.text
    cart = put.json()
    assert cart["lines"][0]["total_minor"] == 3000 and cart["lines"][0]["available"] is True
    # Idle past the window → CartAbandoned once.
    async with order_service.db.sessions() as s, s.begin():
        await s.execute(
            sa.update(carts)
            .where(carts.c.id == cart_id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    await probe.wait_for("ecomops.order.v1.CartAbandoned", lambda e: e.key == cart_id)
    _, other = customer()
    assert (await api.get(f"/v1/carts/{cart_id}", headers=other)).status_code == 404
    out = await api.post(
        f"/v1/carts/{cart_id}/checkout",
        json={"shipping_address": address},
        headers={**headers, **key()},
    )
    assert out.status_code == 201, out.text
    assert out.json()["cart_id"] == cart_id and out.json()["total_minor"] == 3000
    closed = await api.put(
        f"/v1/carts/{cart_id}/items/{sku}", json={"quantity": 1}, headers=headers
    )
    assert closed.status_code == 409
    assert len(probe.matching("ecomops.order.v1.CartAbandoned", lambda e: e.key == cart_id)) == 1


async def test_kpis(api, place, customer, ops) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    _, headers = customer()
    await paid(api, place, headers)
    await paid(api, place, headers)
    resp = await api.get(
        "/v1/orders/kpis",
        params={
            "from": start.isoformat(),
            "to": (datetime.now(UTC) + timedelta(seconds=60)).isoformat(),
        },
        headers=ops,
    )
    assert resp.status_code == 200, resp.text
    k = resp.json()
    assert k["paid_orders"] >= 2 and k["orders"] >= 2
    assert any(g["currency"] == "EUR" and g["amount_minor"] >= 4000 for g in k["gmv"])
    assert 0 < float(k["repurchase_rate"]) <= 1
    assert (await api.get("/v1/orders/kpis", headers=headers)).status_code == 403


async def test_grpc_place_and_get_order(order_service, customer, address) -> None:
    cid, _ = customer()
    meta = (("authorization", f"Bearer {token(cid, 'customer')}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{order_service.grpc_port}") as channel:
        stub = pb_grpc.OrderServiceStub(channel)
        request = pb.PlaceOrderRequest(
            currency="EUR",
            lines=[pb.RequestedLine(sku=unique("sku"), quantity=1)],
            shipping_address=pb.Address(**address),
            idempotency_key=unique("k"),
        )
        resp = await stub.PlaceOrder(request, metadata=meta, timeout=10)
        assert resp.order.status == "awaiting_payment" and resp.order.total_minor == 1000
        again = await stub.PlaceOrder(request, metadata=meta, timeout=10)
        assert again.order.order_id == resp.order.order_id
        got = await stub.GetOrder(
            pb.GetOrderRequest(order_id=resp.order.order_id), metadata=meta, timeout=10
        )
        assert got.order.timeline[0].status == "awaiting_payment"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.PayOrder(
                pb.PayOrderRequest(
                    order_id=resp.order.order_id,
                    payment_token="4111111111111111",
                    idempotency_key="x",
                ),
                metadata=meta,
                timeout=10,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (problem_of(info.value) or {})["type"].endswith("card-number-refused")
        kpi_req = pb.GetOrderKpisRequest()
        getattr(kpi_req, "from").CopyFrom(Timestamp(seconds=1))
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.GetOrderKpis(kpi_req, metadata=meta, timeout=10)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_grpc_checkout_sends_every_fraud_signal_to_risk(
    order_service, customer, address, fake_world
) -> None:
    cid, _ = customer()
    created = int(time.time()) - 3 * 86400
    meta = (
        (
            "authorization",
            f"Bearer {token(cid, 'customer', extra_claims={'account_created_at': created})}",
        ),
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{order_service.grpc_port}") as channel:
        stub = pb_grpc.OrderServiceStub(channel)
        request = pb.PlaceOrderRequest(
            currency="EUR",
            lines=[pb.RequestedLine(sku=unique("sku"), quantity=1)],
            shipping_address=pb.Address(**address),
            billing_address=pb.Address(**{**address, "country": "US"}),
            email="grpc@example.com",
            payment_token="tok_ok_grpc",
            client=pb.Client(ip="192.0.2.7", device_id="dev-grpc"),
            idempotency_key=unique("k"),
        )
        resp = await stub.PlaceOrder(request, metadata=meta, timeout=10)
        sent = next(c for c in fake_world.risk.calls if c.order_id == resp.order.order_id)
        assert (sent.email, sent.billing_country, sent.shipping_country) == (
            "grpc@example.com",
            "US",
            address["country"],
        )
        assert sent.payment_fingerprint.startswith("fp_") and "tok" not in sent.payment_fingerprint
        assert sent.account_created_at is not None
        assert int(sent.account_created_at.timestamp()) == created
        bad = pb.PlaceOrderRequest()
        bad.CopyFrom(request)
        bad.billing_address.country = "ZZ"
        bad.idempotency_key = unique("k")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.PlaceOrder(bad, metadata=meta, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_without_a_claim_the_first_order_in_postgres_dates_the_account(
    api, place, customer, fake_world
) -> None:
    _, headers = customer()
    first = await place(headers)
    assert first.status_code == 201, first.text
    sent = next(c for c in fake_world.risk.calls if c.order_id == first.json()["order_id"])
    assert sent.account_created_at is None  # never seen before
    second = await place(headers, email="x@example.com")
    assert second.status_code == 201, second.text
    sent = next(c for c in fake_world.risk.calls if c.order_id == second.json()["order_id"])
    placed_at = datetime.fromisoformat(first.json()["placed_at"])
    assert sent.account_created_at == placed_at and sent.email == "x@example.com"


async def test_partners_see_only_the_orders_they_placed(api, place, customer) -> None:
    market = bearer(unique("market"), "partner")
    other = bearer(unique("market"), "partner")
    cid = unique("cust")
    mine = (await placed(place, market, customer_id=cid))["order_id"]
    _, headers = customer()
    someone_elses = (await placed(place, headers))["order_id"]
    assert (await api.get(f"/v1/orders/{mine}", headers=market)).json()["customer_id"] == cid
    assert (await api.get(f"/v1/orders/{mine}", headers=other)).status_code == 404
    assert (await api.get(f"/v1/orders/{someone_elses}", headers=market)).status_code == 404
    listed = (await api.get("/v1/orders", headers=market)).json()["items"]
    assert [o["order_id"] for o in listed] == [mine]


async def test_grpc_full_journey(order_service, customer, address) -> None:
    """Cart → checkout → pay → ship → deliver → return → receive → KPIs, all over gRPC."""
    cid, _ = customer()
    me = (("authorization", f"Bearer {token(cid, 'customer')}"),)
    staff = (("authorization", f"Bearer {token('ops-grpc', 'ops')}"),)
    sku = unique("sku")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{order_service.grpc_port}") as channel:
        stub = pb_grpc.OrderServiceStub(channel)
        cart = (
            await stub.CreateCart(
                pb.CreateCartRequest(currency="EUR", idempotency_key=unique("k")), metadata=me
            )
        ).cart
        assert cart.status == "open" and cart.created_at.seconds > 0
        updated = await stub.SetCartItem(
            pb.SetCartItemRequest(cart_id=cart.cart_id, sku=sku, quantity=2), metadata=me
        )
        assert updated.cart.lines[0].available and updated.cart.total_minor == 2000
        order = (
            await stub.CheckoutCart(
                pb.CheckoutCartRequest(
                    cart_id=cart.cart_id,
                    shipping_address=pb.Address(**address),
                    idempotency_key=unique("k"),
                ),
                metadata=me,
            )
        ).order
        assert order.cart_id == cart.cart_id and order.payment_due_at.seconds > 0
        paid = await stub.PayOrder(
            pb.PayOrderRequest(
                order_id=order.order_id, payment_token="tok_ok_g", idempotency_key=unique("k")
            ),
            metadata=me,
        )
        assert paid.order.status == "paid" and paid.order.payment.last4 == "4242"
        shipped = await stub.CreateShipment(
            pb.CreateShipmentRequest(
                order_id=order.order_id,
                carrier="GLS",
                tracking_number="G1",
                idempotency_key=unique("k"),
            ),
            metadata=staff,
        )
        assert shipped.order.status == "shipped" and shipped.order.shipments[0].carrier == "GLS"
        delivered = await stub.ConfirmDelivery(
            pb.ConfirmDeliveryRequest(order_id=order.order_id), metadata=staff
        )
        assert delivered.order.delivered_at.seconds > 0
        rma = getattr(
            await stub.RequestReturn(
                pb.RequestReturnRequest(
                    order_id=order.order_id,
                    lines=[pb.ReturnLine(sku=sku, quantity=2)],
                    reason="no",
                    idempotency_key=unique("k"),
                ),
                metadata=me,
            ),
            "return",
        )
        assert rma.status == "requested"
        await stub.ApproveReturn(pb.ApproveReturnRequest(return_id=rma.return_id), metadata=staff)
        received = getattr(
            await stub.ReceiveReturn(
                pb.ReceiveReturnRequest(
                    return_id=rma.return_id,
                    lines=[pb.ReceivedLine(sku=sku, quantity=2, resellable=True)],
                ),
                metadata=staff,
            ),
            "return",
        )
        assert received.status == "received" and received.refunded_minor == 2000
        final = await stub.GetOrder(pb.GetOrderRequest(order_id=order.order_id), metadata=me)
        assert final.order.status == "returned"
        assert not final.order.HasField("risk")  # customers never see risk reasons
        listed = await stub.ListOrders(pb.ListOrdersRequest(limit=5), metadata=me)
        assert [o.order_id for o in listed.items] == [order.order_id]
        kpis = await stub.GetOrderKpis(pb.GetOrderKpisRequest(), metadata=staff)
        assert kpis.paid_orders >= 1 and kpis.return_rate
