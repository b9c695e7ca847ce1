"""The partner journey over gRPC, on the real services: a marketplace (partner token) places and
pays an order for its customer, a carrier (another partner) posts the shipments and the delivery;
gRPC health and reflection answer on every service."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from proof_fixtures import auth, grpc_service_name, new_id

from ecomops.order.v1 import order_service_pb2 as pb
from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


def _md(subject: str, role: str) -> list[tuple[str, str]]:
    return [("authorization", auth(subject, role)["Authorization"])]


async def test_marketplace_places_and_pays_carrier_ships(
    shop: Any, kafka: Any, journey_rules: Any
) -> None:
    a, b = new_id("sku-pa"), new_id("sku-pb")
    for sku in (a, b):
        await shop.seed_sku(sku, units=4, price_minor=1500, cost_minor=500)
    market = _md(new_id("market"), "partner")
    carrier = _md(new_id("carrier"), "partner")
    buyer = new_id("mkt-cust")
    async with grpc.aio.insecure_channel(shop.stack.grpc_target("order")) as channel:
        orders = pb_grpc.OrderServiceStub(channel)
        request = pb.PlaceOrderRequest(
            currency="EUR",
            lines=[pb.RequestedLine(sku=a, quantity=2), pb.RequestedLine(sku=b, quantity=1)],
            shipping_address=pb.Address(
                name="Market Buyer",
                line1="2 Quai",
                city="Nantes",
                postal_code="44000",
                country="FR",
            ),
            client=pb.Client(ip="10.7.7.7", device_id=f"dev-{buyer}"),
            idempotency_key=uuid.uuid4().hex,
            customer_id=buyer,
        )
        placed = (await orders.PlaceOrder(request, metadata=market, timeout=30)).order
        assert placed.status == "awaiting_payment", placed
        assert placed.customer_id == buyer and placed.total_minor == 4500
        oid = placed.order_id
        # The same idempotency key again: the same order, not a second one.
        replay = (await orders.PlaceOrder(request, metadata=market, timeout=30)).order
        assert replay.order_id == oid
        placed_event = (await kafka.wait_for("OrderPlaced", lambda e: e.key == oid))[0]
        assert placed_event.message.customer_id == buyer

        paid = await orders.PayOrder(
            pb.PayOrderRequest(
                order_id=oid, payment_token="tok_ok_market", idempotency_key=uuid.uuid4().hex
            ),
            metadata=market,
            timeout=30,
        )
        assert paid.order.status == "paid", paid
        await kafka.wait_for("OrderPaid", lambda e: e.key == oid)

        # Another partner cannot read the marketplace's order, but may ship it (carrier).
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await orders.GetOrder(pb.GetOrderRequest(order_id=oid), metadata=carrier, timeout=10)
        assert denied.value.code() == grpc.StatusCode.NOT_FOUND
        first = await orders.CreateShipment(
            pb.CreateShipmentRequest(
                order_id=oid,
                lines=[pb.RequestedLine(sku=a, quantity=2)],
                carrier="UPS",
                tracking_number="1Z-PROOF-1",
                idempotency_key=uuid.uuid4().hex,
            ),
            metadata=carrier,
            timeout=30,
        )
        assert first.order.status == "partially_shipped", first
        second = await orders.CreateShipment(
            pb.CreateShipmentRequest(
                order_id=oid,
                carrier="UPS",
                tracking_number="1Z-PROOF-2",
                idempotency_key=uuid.uuid4().hex,
            ),
            metadata=carrier,
            timeout=30,
        )
        assert second.order.status == "shipped", second
        shipped = await kafka.wait_for("OrderShipped", lambda e: e.key == oid, count=2)
        assert sorted(e.message.complete for e in shipped) == [False, True]
        done = await orders.ConfirmDelivery(
            pb.ConfirmDeliveryRequest(order_id=oid), metadata=carrier, timeout=30
        )
        assert done.order.status == "delivered"
        await kafka.wait_for("OrderDelivered", lambda e: e.key == oid)

        final = (
            await orders.GetOrder(pb.GetOrderRequest(order_id=oid), metadata=market, timeout=10)
        ).order
        assert [s.tracking_number for s in final.shipments] == ["1Z-PROOF-1", "1Z-PROOF-2"]
        assert [t.status for t in final.timeline] == [
            "awaiting_payment",
            "paid",
            "partially_shipped",
            "shipped",
            "delivered",
        ]
    for sku, left in ((a, 2), (b, 3)):
        stock = await shop.stock(sku)
        assert (stock["on_hand"], stock["reserved"]) == (left, 0), stock


SERVICES = ("order", "inventory", "pricing", "recommendation", "risk", "support")


@pytest.mark.parametrize("service", SERVICES)
async def test_grpc_health_and_reflection(stack: Any, service: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stack.require(service)
    async with grpc.aio.insecure_channel(stack.grpc_target(service)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", grpc_service_name(service)):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name

        async def ask() -> Any:
            yield reflection_pb2.ServerReflectionRequest(list_services="")
            yield reflection_pb2.ServerReflectionRequest(
                file_containing_symbol=grpc_service_name(service)
            )

        answers = [
            r
            async for r in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                ask(), timeout=5
            )
        ]
        names = [s.name for s in answers[0].list_services_response.service]
        assert grpc_service_name(service) in names and "grpc.health.v1.Health" in names
        assert answers[1].file_descriptor_response.file_descriptor_proto, answers[1]
