"""The checkout saga through REST against the real database and Kafka, with fake ports:
approve, review, reject, out of stock, and a dependency down at every step (compensated)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.runtime import Service
from ecomops_platform.topics import topic_of
from ecomops_testing import unique
from order_service.adapters.tables import orders
from order_service.service_layer.checkout import order_id_for

ORDER_TOPIC = topic_of(order_events)

pytestmark = pytest.mark.integration


async def order_row(service: Service, order_id: str) -> Any:
    async with service.db.sessions() as s:
        return (await s.execute(sa.select(orders).where(orders.c.id == order_id))).first()


async def count_orders_of(service: Service, customer_id: str) -> int:
    async with service.db.sessions() as s:
        return int(
            await s.scalar(sa.select(sa.func.count()).where(orders.c.customer_id == customer_id))
            or 0
        )


async def test_approved_checkout_holds_stock_and_publishes_order_placed(
    api, place, customer, fake_world, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    cid, headers = customer()
    sku = unique("sku")
    resp = await place(headers, [{"sku": sku, "quantity": 2}], coupon_codes=["SAVE10"])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    order_id = body["order_id"]
    assert body["status"] == "awaiting_payment"
    assert body["subtotal_minor"] == 2000 and body["discount_total_minor"] == 200
    assert body["total_minor"] == 1800 and body["payment_due_at"]
    assert body["risk"] is None  # customers never see the risk reasons
    assert fake_world.inventory.holds[order_id] == {sku: 2}
    assert fake_world.pricing.redeemed[order_id]
    ttl = fake_world.inventory.ttl[order_id]
    assert ttl > order_service.settings.payment_timeout
    placed = await probe.wait_for("ecomops.order.v1.OrderPlaced", lambda e: e.key == order_id)
    msg = placed[0].message
    assert msg.customer_id == cid and msg.total_minor == 1800 and msg.status == "awaiting_payment"
    assert list(msg.coupon_codes) == ["SAVE10"]


async def test_same_key_replays_the_same_order_and_never_holds_twice(
    api, place, customer, fake_world, order_service
) -> None:
    cid, headers = customer()
    lines = [{"sku": unique("sku"), "quantity": 1}]
    first = await place(headers, lines, key="same-key")
    second = await place(headers, lines, key="same-key")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await count_orders_of(order_service, cid) == 1
    assert list(fake_world.inventory.holds).count(first.json()["order_id"]) == 1
    other = await place(headers, [{"sku": unique("sku"), "quantity": 1}], key="same-key")
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")


async def test_missing_idempotency_key_is_400(api, customer, address) -> None:
    _, headers = customer()
    body = {"currency": "EUR", "lines": [{"sku": "a", "quantity": 1}], "shipping_address": address}
    resp = await api.post("/v1/orders", json=body, headers=headers)
    assert resp.status_code == 400
    assert resp.json()["type"].endswith("idempotency-key-missing")


async def test_review_holds_stock_longer_and_waits(api, place, customer, fake_world) -> None:
    _, headers = customer("review")
    resp = await place(headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "in_review" and body["payment_due_at"] is None
    assert body["order_id"] in fake_world.inventory.holds


async def test_reject_is_422_generic_and_kept_for_ops(
    api, place, customer, ops, fake_world, kafka_probe, order_service
) -> None:
    probe = await kafka_probe(ORDER_TOPIC)
    _cid, headers = customer("reject")
    lines = [{"sku": unique("sku"), "quantity": 1}]
    resp = await place(headers, lines, key="rej-1")
    assert resp.status_code == 422
    problem = resp.json()
    assert problem["type"].endswith("order-rejected")
    assert "velocity" not in resp.text  # reasons are for ops only
    order_id = problem["order_id"]
    assert order_id not in fake_world.inventory.holds
    again = await place(headers, lines, key="rej-1")  # same key, same body → the same answer
    assert again.status_code == 422 and again.json() == problem
    staff_view = (await api.get(f"/v1/orders/{order_id}", headers=ops)).json()
    assert staff_view["status"] == "rejected"
    assert staff_view["risk"]["decision"] == "reject"
    assert staff_view["risk"]["reasons"][0]["code"] == "velocity_customer"
    await probe.wait_for("ecomops.order.v1.OrderRejected", lambda e: e.key == order_id)


async def test_out_of_stock_is_409_with_shortages_and_nothing_held(
    api, place, customer, fake_world, order_service
) -> None:
    cid, headers = customer()
    short, fine = unique("sku"), unique("sku")
    fake_world.inventory.stock[short] = 1
    resp = await place(headers, [{"sku": short, "quantity": 3}, {"sku": fine, "quantity": 1}])
    assert resp.status_code == 409
    assert resp.json()["shortages"] == [{"sku": short, "requested": 3, "available": 1}]
    assert not any(short in h or fine in h for h in fake_world.inventory.holds.values())
    assert await count_orders_of(order_service, cid) == 0


@pytest.mark.parametrize(
    "where",
    [
        "pricing.create_quote",
        "risk",
        "inventory.reserve_before",
        "inventory.reserve_after",
        "pricing.redeem_quote",
    ],
)
async def test_dependency_down_is_503_and_compensated(
    api, place, customer, fake_world, order_service, where
) -> None:
    cid, headers = customer()
    service_name, _, step = where.partition(".")
    if service_name == "risk":
        fake_world.risk.fail = True
    elif service_name == "pricing":
        fake_world.pricing.fail.add(step)
    else:
        fake_world.inventory.fail.add(step)
    lines = [{"sku": unique("sku"), "quantity": 1}]
    resp = await place(headers, lines, key="down-1", coupon_codes=["SAVE10"])
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["Retry-After"]) >= 1
    assert await count_orders_of(order_service, cid) == 0
    order_id = order_id_for(Caller(cid, Role.CUSTOMER), "place_order", "down-1")
    assert order_id not in fake_world.inventory.holds  # released (or never made)
    assert order_id not in fake_world.pricing.redeemed  # given back (or never taken)
    fake_world.heal()
    retry = await place(headers, lines, key="down-1", coupon_codes=["SAVE10"])
    # The retry with the same key runs afresh (errors are not stored) and succeeds once.
    assert retry.status_code == 201, retry.text
    assert await count_orders_of(order_service, cid) == 1


async def test_compensation_releases_hold_and_redemption(
    api, place, customer, fake_world, order_service
) -> None:
    _, headers = customer()
    fake_world.pricing.fail.add("redeem_quote")
    before_released = len(fake_world.pricing.released)
    resp = await place(headers, key=unique("k"), coupon_codes=["SAVE10"])
    assert resp.status_code == 503
    released = fake_world.pricing.released[before_released:]
    assert len(released) == 1
    order_id = released[0]
    assert order_id not in fake_world.inventory.holds
    assert order_id not in fake_world.pricing.redeemed


async def test_late_inventory_answer_releases_the_hold(api, place, customer, fake_world) -> None:
    _, headers = customer()
    sku = unique("sku")
    fake_world.inventory.fail.add("reserve_after")
    resp = await place(headers, [{"sku": sku, "quantity": 1}])
    assert resp.status_code == 503
    assert not any(sku in h for h in fake_world.inventory.holds.values())


async def test_card_number_anywhere_is_refused_and_not_stored(
    api, place, customer, order_service
) -> None:
    cid, headers = customer()
    address = {
        "name": "4111 1111 1111 1111",
        "line1": "x",
        "city": "y",
        "postal_code": "1",
        "country": "GB",
    }
    resp = await place(headers, shipping_address=address)
    assert resp.status_code == 422
    assert resp.json()["type"].endswith("card-number-refused")
    assert "4111" not in resp.text
    assert await count_orders_of(order_service, cid) == 0


async def test_unknown_fields_are_refused(api, place, customer) -> None:
    _, headers = customer()
    resp = await place(headers, surprise=True)
    assert resp.status_code == 422


async def test_concurrent_retries_make_one_order_and_one_hold(
    api, place, customer, fake_world, order_service
) -> None:
    """Five clients send the same request with the same key at once: one order, one hold;
    the others are replayed (201) or told the first is in flight (409)."""
    import asyncio

    cid, headers = customer()
    lines = [{"sku": unique("sku"), "quantity": 1}]
    results = await asyncio.gather(*(place(headers, lines, key="burst") for _ in range(5)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {201, 409} and 201 in codes, codes
    ids = {r.json()["order_id"] for r in results if r.status_code == 201}
    assert len(ids) == 1
    assert await count_orders_of(order_service, cid) == 1
    assert sum(1 for o in fake_world.inventory.holds if o in ids) == 1


async def test_nul_characters_are_422_not_500(api, place, customer) -> None:
    _, headers = customer()
    assert (await api.get("/v1/orders/abc%00def", headers=headers)).status_code == 422
    resp = await place(headers, [{"sku": "a\u0000b", "quantity": 1}])
    assert resp.status_code == 422
