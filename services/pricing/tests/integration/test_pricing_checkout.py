"""Checkout over gRPC: quotes, redemptions under concurrency, release exactly once (RPC, the
OrderCancelled event and the unconfirmed-redemption sweep), and the event consumers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.db import inbox_table
from ecomops_platform.events import cloudevent_headers, make_producer
from ecomops_platform.grpc_client import problem_of
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_testing import eventually, ops, unique
from pricing_service.adapters import tables
from pricing_service.service_layer.promotions import (
    ConfirmRedemptions,
    SweepUnconfirmedRedemptions,
)
from pricing_service.service_layer.quotes import (
    CreateQuoteUnkeyed,
    QuoteExpired,
    QuoteLine,
    RedeemQuote,
)
from pricing_service.settings import PricingSettings

from .conftest import bus_at, bus_of, grpc_md, seed_price, seed_sku

pytestmark = pytest.mark.integration


def svc_md() -> tuple[tuple[str, str], ...]:
    """Order's metadata (tokens are minted when a test runs, not when the module is imported:
    `make unit` collects this file without a stack)."""
    return grpc_md("service:order", "service")


def ops_md() -> tuple[tuple[str, str], ...]:
    return grpc_md("pricing-manager", "ops")


def stamp(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


async def coupon_promotion(
    stub: pb_grpc.PricingServiceStub,
    sku: str,
    *,
    usage_limit: int | None = None,
    per_customer_limit: int | None = None,
) -> tuple[str, str]:
    code = unique("CP").upper().replace("-", "")
    now = datetime.now(UTC)
    request = pb.CreatePromotionRequest(
        name="coupon 10%",
        kind=pb.PROMOTION_KIND_PERCENT,
        percent="0.10",
        scope=pb.PromotionScope(skus=[sku]),
        starts_at=stamp(now - timedelta(minutes=1)),
        ends_at=stamp(now + timedelta(days=1)),
        coupon_code=code,
        stackable=True,
        idempotency_key=unique("k"),
    )
    if usage_limit is not None:
        request.usage_limit = usage_limit
    if per_customer_limit is not None:
        request.per_customer_limit = per_customer_limit
    response = await stub.CreatePromotion(request, metadata=ops_md(), timeout=10)
    return response.promotion.promotion_id, code


async def quote(
    stub: pb_grpc.PricingServiceStub, sku: str, code: str, customer: str, qty: int = 1
) -> pb.Quote:
    response = await stub.CreateQuote(
        pb.CreateQuoteRequest(
            customer_id=customer,
            currency="EUR",
            lines=[common_pb2.SkuQuantity(sku=sku, quantity=qty)],
            coupon_codes=[code],
        ),
        metadata=svc_md(),
        timeout=10,
    )
    return response.quote


async def used_count(service: Service, promotion_id: str) -> int:
    async with service.uow() as uow:
        value = await uow.session.scalar(
            sa.select(tables.promotions.c.used).where(tables.promotions.c.id == promotion_id)
        )
    return int(value)


@pytest.fixture
async def priced_sku(pricing: Service, client: httpx.AsyncClient) -> str:
    sku = unique("sku")
    await seed_sku(pricing, sku)
    await seed_price(client, sku, 5000, 1000)
    return sku


async def test_redeem_is_idempotent_and_release_gives_back_once(
    pricing: Service, stub: pb_grpc.PricingServiceStub, priced_sku: str, kafka_probe: Any
) -> None:
    promotion_id, code = await coupon_promotion(stub, priced_sku, usage_limit=1)
    probe = await kafka_probe("ecomops.pricing.v1")
    q = await quote(stub, priced_sku, code, "cust-a", qty=2)
    assert q.discount_total_minor == 1000 and q.total_minor == 9000
    got = await stub.GetQuote(pb.GetQuoteRequest(quote_id=q.quote_id), metadata=svc_md(), timeout=5)
    assert got.quote == q

    order_id = unique("order")
    redeem = pb.RedeemQuoteRequest(
        quote_id=q.quote_id,
        order_id=order_id,
        customer_id="cust-a",
        expected_lines=[common_pb2.SkuQuantity(sku=priced_sku, quantity=2)],
        expected_total_minor=9000,
    )
    first = await stub.RedeemQuote(redeem, metadata=svc_md(), timeout=10)
    again = await stub.RedeemQuote(redeem, metadata=svc_md(), timeout=10)
    assert [r.promotion_id for r in first.redemptions] == [promotion_id]
    assert first.replayed is False and again.replayed is True
    assert await used_count(pricing, promotion_id) == 1

    # The limit is reached: another quote with this code is refused at quote time...
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await quote(stub, priced_sku, code, "cust-b")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    problem = problem_of(refused.value)
    assert problem is not None and problem["coupons"][0]["reason"] == "exhausted"

    released = await stub.ReleaseRedemption(
        pb.ReleaseRedemptionRequest(order_id=order_id, reason="checkout_failed"),
        metadata=svc_md(),
        timeout=10,
    )
    twice = await stub.ReleaseRedemption(
        pb.ReleaseRedemptionRequest(order_id=order_id), metadata=svc_md(), timeout=10
    )
    assert released.released_count == 1 and twice.released_count == 0
    assert twice.redemptions[0].state == pb.REDEMPTION_STATE_RELEASED
    assert await used_count(pricing, promotion_id) == 0
    states = await probe.wait_for(
        "ecomops.pricing.v1.CouponRedemptionChanged",
        lambda e: e.message.order_id == order_id,
        count=2,
    )
    assert [e.message.state for e in states] == ["redeemed", "returned"]


async def test_redeem_fails_with_problem_naming_each_exhausted_code(
    pricing: Service, stub: pb_grpc.PricingServiceStub, priced_sku: str
) -> None:
    promotion_id, code = await coupon_promotion(stub, priced_sku, usage_limit=1)
    q1 = await quote(stub, priced_sku, code, "cust-1")
    q2 = await quote(stub, priced_sku, code, "cust-2")  # both quoted while one use is left
    await stub.RedeemQuote(
        pb.RedeemQuoteRequest(quote_id=q1.quote_id, order_id=unique("o"), customer_id="cust-1"),
        metadata=svc_md(),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.RedeemQuote(
            pb.RedeemQuoteRequest(quote_id=q2.quote_id, order_id=unique("o"), customer_id="cust-2"),
            metadata=svc_md(),
            timeout=10,
        )
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    problem = problem_of(failed.value)
    assert problem is not None
    assert problem["coupons"] == [
        {
            "code": code,
            "promotion_id": promotion_id,
            "reason": "exhausted",
            "detail": "the coupon's usage limit is reached",
        }
    ]
    assert await used_count(pricing, promotion_id) == 1
    # the failed redemption left nothing behind: the quote is still free
    async with pricing.uow() as uow:
        bound = await uow.session.scalar(
            sa.select(tables.quotes.c.order_id).where(tables.quotes.c.id == q2.quote_id)
        )
    assert bound is None


async def test_tampered_expired_and_foreign_redemptions_are_refused(
    pricing: Service, stub: pb_grpc.PricingServiceStub, priced_sku: str
) -> None:
    _, code = await coupon_promotion(stub, priced_sku)
    q = await quote(stub, priced_sku, code, "cust-x", qty=1)
    for request in (
        pb.RedeemQuoteRequest(
            quote_id=q.quote_id,
            order_id=unique("o"),
            expected_lines=[common_pb2.SkuQuantity(sku=priced_sku, quantity=5)],
        ),
        pb.RedeemQuoteRequest(quote_id=q.quote_id, order_id=unique("o"), expected_total_minor=1),
        pb.RedeemQuoteRequest(quote_id=q.quote_id, order_id=unique("o"), customer_id="cust-y"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RedeemQuote(request, metadata=svc_md(), timeout=10)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    later = bus_at(pricing, datetime.now(UTC) + timedelta(hours=2))
    with pytest.raises(QuoteExpired):
        await later.handle(
            RedeemQuote(quote_id=q.quote_id, order_id=unique("o"), customer_id="cust-x"),
            later.system,
        )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.RedeemQuote(
            pb.RedeemQuoteRequest(quote_id=q.quote_id, order_id=unique("o")),
            metadata=grpc_md("cust-x", "customer"),
            timeout=10,
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_usage_limit_holds_under_500_concurrent_checkouts(
    pricing: Service, stub: pb_grpc.PricingServiceStub, priced_sku: str
) -> None:
    promotion_id, code = await coupon_promotion(stub, priced_sku, usage_limit=100)
    bus = bus_of(pricing)
    priced = await bus.handle(
        CreateQuoteUnkeyed(
            customer_id="cust-0",
            currency="EUR",
            lines=(QuoteLine(priced_sku, 1),),
            coupon_codes=(code,),
        ),
        bus.system,
    )
    async with bus.uow() as uow:
        template = await uow.quotes.get(priced.quote_id)
    assert template is not None and template.promotion_ids == [promotion_id]
    # 500 quotes as the engine priced them (copies of one, each for its own customer).
    quote_ids = [f"q_{uuid.uuid4().hex}" for _ in range(500)]
    async with bus.uow() as uow:
        for i, quote_id in enumerate(quote_ids):
            await uow.quotes.insert(replace(template, quote_id=quote_id, customer_id=f"cust-{i}"))
        await uow.commit()

    async def checkout(i: int, quote_id: str) -> grpc.StatusCode:
        try:
            await stub.RedeemQuote(
                pb.RedeemQuoteRequest(
                    quote_id=quote_id, order_id=f"order-{uuid.uuid4().hex}", customer_id=f"cust-{i}"
                ),
                metadata=svc_md(),
                timeout=60,
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    results = await asyncio.gather(*(checkout(i, q) for i, q in enumerate(quote_ids)))
    assert results.count(grpc.StatusCode.OK) == 100
    assert results.count(grpc.StatusCode.FAILED_PRECONDITION) == 400
    assert await used_count(pricing, promotion_id) == 100
    async with pricing.uow() as uow:
        rows = await uow.session.scalar(
            sa.select(sa.func.count()).where(tables.redemptions.c.promotion_id == promotion_id)
        )
    assert rows == 100


async def test_per_customer_limit(stub: pb_grpc.PricingServiceStub, priced_sku: str) -> None:
    _, code = await coupon_promotion(stub, priced_sku, per_customer_limit=1)
    q1 = await quote(stub, priced_sku, code, "cust-once")
    q2 = await quote(stub, priced_sku, code, "cust-once")
    await stub.RedeemQuote(
        pb.RedeemQuoteRequest(quote_id=q1.quote_id, order_id=unique("o")),
        metadata=svc_md(),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RedeemQuote(
            pb.RedeemQuoteRequest(quote_id=q2.quote_id, order_id=unique("o")),
            metadata=svc_md(),
            timeout=10,
        )
    problem = problem_of(refused.value)
    assert problem is not None and problem["coupons"][0]["reason"] == "exhausted_for_customer"
    with pytest.raises(grpc.aio.AioRpcError):
        await quote(stub, priced_sku, code, "cust-once")
    other = await quote(stub, priced_sku, code, "cust-other")
    assert other.discount_total_minor == 500


async def test_unconfirmed_redemptions_are_given_back_by_the_sweep(
    pricing: Service, stub: pb_grpc.PricingServiceStub, priced_sku: str
) -> None:
    promotion_id, code = await coupon_promotion(stub, priced_sku)
    settings = pricing.settings
    assert isinstance(settings, PricingSettings)
    placed, lost = unique("o"), unique("o")
    for order_id in (placed, lost):
        q = await quote(stub, priced_sku, code, "cust-s")
        await stub.RedeemQuote(
            pb.RedeemQuoteRequest(quote_id=q.quote_id, order_id=order_id),
            metadata=svc_md(),
            timeout=10,
        )
    assert await used_count(pricing, promotion_id) == 2
    bus = bus_of(pricing)
    await bus.handle(ConfirmRedemptions(order_id=placed, coupon_codes=(code,)), bus.system)
    window = settings.redemption_confirm_window_seconds
    later = bus_at(pricing, datetime.now(UTC) + timedelta(seconds=window + 5))
    await later.handle(SweepUnconfirmedRedemptions(), later.system)
    await later.handle(SweepUnconfirmedRedemptions(), later.system)
    assert await used_count(pricing, promotion_id) == 1
    async with pricing.uow() as uow:
        states = dict(
            (
                await uow.session.execute(
                    sa.select(tables.redemptions.c.order_id, tables.redemptions.c.state).where(
                        tables.redemptions.c.promotion_id == promotion_id
                    )
                )
            ).all()
        )
    assert states == {placed: "confirmed", lost: "released"}


async def publish(topic: str, key: str, message: Message, event_id: str) -> None:
    producer = make_producer(CommonSettings(), "pricing-tests")
    await producer.start()
    try:
        headers = cloudevent_headers(
            event_id=event_id,
            event_type=message.DESCRIPTOR.full_name,
            source="ecomops/tests",
            time=datetime.now(UTC),
            traceparent=None,
        )
        await producer.send_and_wait(
            topic,
            message.SerializeToString(),
            key=key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


async def test_events_register_skus_and_cancellations_give_uses_back_once(
    pricing: Service,
    client: httpx.AsyncClient,
    stub: pb_grpc.PricingServiceStub,
) -> None:
    sku = unique("sku")
    await publish(
        "ecomops.inventory.v1",
        sku,
        inventory_events.SkuUpserted(sku=sku, title="boot", category="shoes", status="active"),
        str(uuid.uuid4()),
    )

    async def priced() -> None:
        response = await client.put(
            f"/v1/prices/{sku}",
            json={"currency": "EUR", "list_price_minor": 3000, "unit_cost_minor": 900},
            headers=ops(),
        )
        assert response.status_code == 200, response.text

    await eventually(priced, timeout=45, interval=0.5)
    promotion_id, code = await coupon_promotion(stub, sku)
    q = await quote(stub, sku, code, "cust-c")
    order_id = unique("o")
    await stub.RedeemQuote(
        pb.RedeemQuoteRequest(quote_id=q.quote_id, order_id=order_id), metadata=svc_md(), timeout=10
    )
    await publish(
        "ecomops.order.v1",
        order_id,
        order_events.OrderPlaced(order_id=order_id, quote_id=q.quote_id, coupon_codes=[code]),
        str(uuid.uuid4()),
    )
    cancelled = order_events.OrderCancelled(
        order_id=order_id, quote_id=q.quote_id, reason="customer"
    )
    first_id = str(uuid.uuid4())
    await publish("ecomops.order.v1", order_id, cancelled, first_id)
    await publish("ecomops.order.v1", order_id, cancelled, first_id)  # redelivery
    second_id = str(uuid.uuid4())
    await publish("ecomops.order.v1", order_id, cancelled, second_id)  # a second event

    async def all_applied() -> None:
        async with pricing.uow() as uow:
            state = await uow.session.scalar(
                sa.select(tables.redemptions.c.state).where(
                    tables.redemptions.c.order_id == order_id
                )
            )
            seen = await uow.session.scalar(
                sa.select(sa.func.count())
                .select_from(inbox_table)
                .where(inbox_table.c.event_id.in_([first_id, second_id]))
            )
        assert state == "released" and seen == 2

    await eventually(all_applied, timeout=30)
    assert await used_count(pricing, promotion_id) == 0
