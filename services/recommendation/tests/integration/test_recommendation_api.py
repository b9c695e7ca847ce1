"""From events on Kafka to answers on the API: stock-aware, fresh, owned, segmented."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from ecomops.recommendation.v1 import events_pb2 as rec_events
from ecomops.recommendation.v1 import recommendation_service_pb2 as pb
from ecomops.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.runtime import Service
from ecomops_testing import bearer, eventually, ops, token, unique
from recommendation_service.bootstrap import SPEC
from recommendation_service.service_layer.rebuild import RebuildModel
from recommendation_service.service_layer.segments import (
    RefreshCustomerSegment,
    RefreshStaleSegments,
)

from .conftest import Publisher

pytestmark = pytest.mark.integration


def now_iso(delta: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat()


async def skus_of(client: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    r = await client.get(path, headers=ops(), params=params)
    assert r.status_code == 200, r.text
    return [i["sku"] for i in r.json()["items"]]


async def catalogue(publisher: Publisher, prefix: str, n: int, **kw: Any) -> list[str]:
    cat = kw.pop("category", unique("cat"))
    skus = [unique(f"{prefix}{i}") for i in range(n)]
    for i, s in enumerate(skus):
        await publisher.sku(s, f"Item {prefix}{i}", cat, **kw)
    return skus


async def test_anonymous_batch_is_published_to_the_behavior_topic(
    client: httpx.AsyncClient, kafka_probe: Any
) -> None:
    probe = await kafka_probe("ecomops.behavior.v1")
    session = unique("sess")
    events = [
        {"type": t, "sku": unique("sku"), "session_id": session, "occurred_at": now_iso()}
        for t in ("view", "add_to_cart", "remove_from_cart")
    ]
    r = await client.post("/v1/behavior-events", json={"events": events})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 3}
    got = await probe.wait_for(
        "ecomops.recommendation.v1.BehaviorRecorded",
        lambda e: e.message.session_id == session,
        count=3,
    )
    assert {e.key for e in got} == {session}
    assert sorted(e.message.type for e in got) == [
        rec_events.BEHAVIOR_TYPE_VIEW,
        rec_events.BEHAVIOR_TYPE_ADD_TO_CART,
        rec_events.BEHAVIOR_TYPE_REMOVE_FROM_CART,
    ]


async def test_a_batch_with_bad_entries_is_refused_whole_naming_each_index(
    client: httpx.AsyncClient, kafka_probe: Any
) -> None:
    probe = await kafka_probe("ecomops.behavior.v1")
    session = unique("sess")
    good = {"type": "view", "sku": "s1", "session_id": session, "occurred_at": now_iso()}
    events = [
        good,
        {**good, "customer_id": "someone"},  # anonymous callers may not claim a customer
        good,
        {**good, "occurred_at": now_iso(3600)},  # in the future
        {"type": "view", "sku": "s2", "occurred_at": now_iso()},  # neither customer nor session
    ]
    r = await client.post("/v1/behavior-events", json={"events": events})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["invalid_indexes"] == [1, 3, 4]
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (1, "customer_id"),
        (3, "occurred_at"),
        (4, "session_id"),
    }
    # a customer may only send its own events
    r = await client.post(
        "/v1/behavior-events",
        headers=bearer("cust-a", "customer"),
        json={"events": [{**good, "customer_id": "cust-b"}]},
    )
    assert r.status_code == 422 and r.json()["invalid_indexes"] == [0]
    # an unknown type is refused by the schema, naming the index too
    r = await client.post("/v1/behavior-events", json={"events": [{**good, "type": "buy"}]})
    assert r.status_code == 422 and "events.0.type" in r.json()["detail"]
    # more than RECOMMENDATION_MAX_BATCH (20 in these tests)
    r = await client.post("/v1/behavior-events", json={"events": [good] * 21})
    assert r.status_code == 422 and r.json()["max_batch"] == 20
    # nothing of the refused batches was published (the good batch below is, as a marker)
    marker = unique("sess")
    r = await client.post("/v1/behavior-events", json={"events": [{**good, "session_id": marker}]})
    assert r.status_code == 202
    await probe.wait_for(
        "ecomops.recommendation.v1.BehaviorRecorded", lambda e: e.message.session_id == marker
    )
    assert (
        probe.matching(
            "ecomops.recommendation.v1.BehaviorRecorded", lambda e: e.message.session_id == session
        )
        == []
    )


async def test_idempotency_key_records_a_retried_batch_once(client: httpx.AsyncClient) -> None:
    session = unique("sess")
    body = {
        "events": [{"type": "view", "sku": "x", "session_id": session, "occurred_at": now_iso()}]
    }
    key = {"Idempotency-Key": unique("key")}
    first = await client.post("/v1/behavior-events", json=body, headers=key)
    again = await client.post("/v1/behavior-events", json=body, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = {"events": [{**body["events"][0], "sku": "y"}]}
    assert (await client.post("/v1/behavior-events", json=other, headers=key)).status_code == 422


async def test_bought_together_is_fresh_and_never_out_of_stock_or_discontinued(
    client: httpx.AsyncClient, publisher: Publisher
) -> None:
    a, b, c, d = await catalogue(publisher, "bt", 4)
    await publisher.stock(d, 0)  # out of stock
    unknown = unique("unknown")  # never seen in SkuUpserted nor StockLevelChanged
    await publisher.paid(unique("cust"), [a, b, d, unknown])
    await publisher.paid(unique("cust"), [a, b])

    async def only_b() -> None:
        got = await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together")
        assert got == [b], got

    # The first answer may wait for the consumer group to settle after the service started.
    await eventually(only_b, timeout=40)
    started = time.monotonic()
    await publisher.paid(unique("cust"), [a, c])

    async def both() -> list[str]:
        got = await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together")
        assert set(got) == {b, c}, got
        return got

    got = await eventually(both, timeout=15)
    assert time.monotonic() - started < 15  # fresh: seconds from the event to the answer
    assert got == [b, c]  # b was bought with a twice
    r = await client.get(f"/v1/recommendations/skus/{a}/bought-together", headers=ops())
    assert r.json()["items"][0]["reason"] == "often bought with Item bt0"
    # the event-to-model lag is exported for SREs
    metrics = (await client.get("/metrics")).text
    assert "# TYPE recommendation_model_lag_seconds gauge" in metrics
    assert "# TYPE recommendation_model_update_lag_seconds histogram" in metrics
    # b runs out of stock, c is discontinued: neither is recommended any more
    await publisher.stock(b, 0)
    await publisher.sku(c, "Item bt2", "x", status="discontinued")

    async def none_left() -> None:
        assert await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together") == []

    await eventually(none_left, timeout=40)


async def test_similar_items_from_sessions_and_personalised_recommendations(
    client: httpx.AsyncClient, publisher: Publisher
) -> None:
    cat = unique("cat")
    a, b, c, other = await catalogue(publisher, "sim", 4, category=cat)
    customer = unique("cust")
    headers = bearer(customer, "customer")
    events = [
        {"type": "view", "sku": a, "customer_id": customer, "occurred_at": now_iso(-30)},
        {"type": "view", "sku": b, "customer_id": customer, "occurred_at": now_iso(-20)},
        {"type": "add_to_cart", "sku": c, "customer_id": customer, "occurred_at": now_iso(-10)},
    ]
    r = await client.post("/v1/behavior-events", json={"events": events}, headers=headers)
    assert r.status_code == 202, r.text
    lone = {"type": "view", "sku": other, "session_id": unique("s"), "occurred_at": now_iso()}
    assert (await client.post("/v1/behavior-events", json={"events": [lone]})).status_code == 202

    async def similar() -> None:
        got = await skus_of(client, f"/v1/recommendations/skus/{a}/similar")
        assert set(got[:2]) == {b, c} and got[2:] == [other], got

    await eventually(similar, timeout=40)
    r = await client.get(f"/v1/recommendations/skus/{a}/similar", headers=ops())
    first = r.json()["items"][0]
    assert first["reason"] == "often viewed with Item sim0"
    # the other item of the category fills the list as "popular in <category>"
    assert other in [i["sku"] for i in r.json()["items"]]

    # a second visitor views only a: the first one's session makes b and c relevant to it
    second = unique("cust")
    await publisher.paid(second, [a])
    r = await client.post(
        "/v1/behavior-events",
        headers=bearer(second, "customer"),
        json={
            "events": [{"type": "view", "sku": a, "customer_id": second, "occurred_at": now_iso()}]
        },
    )
    assert r.status_code == 202

    async def discover() -> list[dict[str, Any]]:
        r = await client.get(
            f"/v1/recommendations/customers/{second}",
            headers=bearer(second, "customer"),
            params={"mode": "discover"},
        )
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert {i["sku"] for i in items[:2]} == {b, c}, items
        assert a not in [i["sku"] for i in items]  # already bought (once OrderPaid is applied)
        return list(items)

    items = await eventually(discover, timeout=40)
    assert items[0]["reason"].startswith(("similar to Item sim0", "goes well with Item sim0"))
    # the default mode buys again: a first, then what goes with it
    r = await client.get(
        f"/v1/recommendations/customers/{second}", headers=bearer(second, "customer")
    )
    got = r.json()["items"]
    assert got[0]["sku"] == a and got[0]["reason"] == "you bought this before", got
    assert {i["sku"] for i in got[1:3]} == {b, c}, got
    r = await client.get(
        f"/v1/recommendations/customers/{second}",
        headers=bearer(second, "customer"),
        params={"mode": "novel"},
    )
    assert r.status_code == 422
    # another customer's recommendations are not found, not forbidden
    r = await client.get(f"/v1/recommendations/customers/{second}", headers=headers)
    assert r.status_code == 404


async def test_cold_start_and_trending_by_category(
    client: httpx.AsyncClient, publisher: Publisher
) -> None:
    cat = unique("cat")
    hot, warm, empty = await catalogue(publisher, "tr", 3, category=cat)
    await publisher.stock(empty, 0)
    session = unique("sess")
    events = [
        {"type": "view", "sku": s, "session_id": session, "occurred_at": now_iso()}
        for s in (hot, hot, hot, warm, empty, empty, empty, empty)
    ]
    assert (await client.post("/v1/behavior-events", json={"events": events})).status_code == 202

    async def trending() -> list[dict[str, Any]]:
        r = await client.get(
            "/v1/recommendations/trending", headers=ops(), params={"category": cat}
        )
        items = r.json()["items"]
        assert [i["sku"] for i in items] == [hot, warm], items
        return list(items)

    items = await eventually(trending, timeout=40)
    assert items[0]["reason"] == f"trending in {cat}"
    assert items[0]["score"] > items[1]["score"] > 0
    # a customer with no history gets trending items overall
    newcomer = unique("cust")
    r = await client.get(
        f"/v1/recommendations/customers/{newcomer}",
        headers=bearer(newcomer, "customer"),
        params={"limit": 5},
    )
    assert r.status_code == 200
    assert len(r.json()["items"]) == 5
    assert all(i["reason"].startswith("trending") for i in r.json()["items"])


async def test_segments_follow_paid_orders_and_changes_are_published(
    client: httpx.AsyncClient, publisher: Publisher, kafka_probe: Any, rec_service: Service
) -> None:
    probe = await kafka_probe("ecomops.recommendation.v1")
    customer = unique("cust")
    (sku,) = await catalogue(publisher, "seg", 1)
    await publisher.paid(customer, [sku], total=1234)

    async def segment() -> dict[str, Any]:
        r = await client.get(f"/v1/segments/customers/{customer}", headers=ops())
        assert r.status_code == 200, r.text
        return dict(r.json())

    seg = await eventually(segment, timeout=40)
    assert seg["frequency"] == 1 and seg["monetary_minor"] == 1234 and seg["currency"] == "EUR"
    assert seg["recency_days"] == 0 and seg["segment"] == "new" and seg["churn_risk"] == "low"
    changed = await probe.wait_for(
        "ecomops.recommendation.v1.CustomerSegmentChanged",
        lambda e: e.message.customer_id == customer,
    )
    assert changed[0].key == customer
    assert changed[0].message.segment == "new" and changed[0].message.previous_segment == ""
    # recomputing without a change publishes nothing more
    assert rec_service.bus is not None
    await rec_service.bus.handle(
        RefreshCustomerSegment(customer_id=customer), rec_service.bus.system
    )
    async with rec_service.uow() as uow:
        n = await uow.session.scalar(
            sa.text(
                "SELECT count(*) FROM outbox WHERE key = :k "
                "AND event_type = 'ecomops.recommendation.v1.CustomerSegmentChanged'"
            ),
            {"k": customer},
        )
    assert n == 1
    # a customer sees its own segment, not another's; counts are for ops
    r = await client.get(f"/v1/segments/customers/{customer}", headers=bearer(customer, "customer"))
    assert r.status_code == 200
    r = await client.get(
        f"/v1/segments/customers/{customer}", headers=bearer(unique("c"), "customer")
    )
    assert r.status_code == 404
    r = await client.get("/v1/segments", headers=ops())
    assert r.status_code == 200
    counts = {c["segment"]: c["customers"] for c in r.json()["counts"]}
    assert len(counts) == 9 and counts["new"] >= 1
    r = await client.get("/v1/segments", headers=bearer(customer, "customer"))
    assert r.status_code == 403


async def test_the_periodic_refresh_rescores_stale_segments(
    client: httpx.AsyncClient, publisher: Publisher, rec_service: Service
) -> None:
    customer = unique("cust")
    (sku,) = await catalogue(publisher, "stale", 1)
    await publisher.paid(customer, [sku], total=777)

    async def scored() -> None:
        r = await client.get(f"/v1/segments/customers/{customer}", headers=ops())
        assert r.status_code == 200, r.text

    await eventually(scored, timeout=40)
    async with rec_service.uow() as uow:
        await uow.session.execute(
            sa.text(
                "UPDATE customer_segments SET computed_at = now() - interval '2 days', "
                "recency_days = 99 WHERE customer_id = :c"
            ),
            {"c": customer},
        )
        await uow.commit()
    assert rec_service.bus is not None
    done = await rec_service.bus.handle(RefreshStaleSegments(), rec_service.bus.system)
    assert done.customers >= 1
    r = await client.get(f"/v1/segments/customers/{customer}", headers=ops())
    body = r.json()
    assert body["recency_days"] == 0 and body["monetary_minor"] == 777
    computed = datetime.fromisoformat(body["computed_at"])
    assert datetime.now(UTC) - computed < timedelta(minutes=1)


async def test_the_refresh_walks_past_segments_it_cannot_rescore(
    client: httpx.AsyncClient, publisher: Publisher, rec_service: Service
) -> None:
    (sku,) = await catalogue(publisher, "walk", 1)
    gone, kept = unique("cust"), unique("cust")
    order = await publisher.paid(gone, [sku])
    await publisher.paid(kept, [sku])

    async def both_scored() -> None:
        for customer in (gone, kept):
            r = await client.get(f"/v1/segments/customers/{customer}", headers=ops())
            assert r.status_code == 200, r.text

    await eventually(both_scored, timeout=40)
    await publisher.cancel(gone, order)  # no paid order left: its segment stays as it was

    async def cancelled() -> None:
        async with rec_service.uow() as uow:
            at = await uow.session.scalar(
                sa.text("SELECT cancelled_at FROM orders WHERE order_id = :o"), {"o": order}
            )
        assert at is not None

    await eventually(cancelled, timeout=40)
    async with rec_service.uow() as uow:
        for customer, day in ((gone, 1), (kept, 2)):
            at = datetime(2001, 1, day, tzinfo=UTC)
            await uow.session.execute(
                sa.text("UPDATE customer_segments SET computed_at = :at WHERE customer_id = :c"),
                {"c": customer, "at": at},
            )
        await uow.commit()
    bus = rec_service.bus
    assert bus is not None
    # one segment per batch, only those older than 2002: "gone" first, then "kept"
    only_ancient = MessageBus(
        service="recommendation",
        uow=rec_service.uow,
        deps=dataclasses.replace(
            bus.deps,
            segment_batch=1,
            segment_max_age=datetime.now(UTC) - datetime(2002, 1, 1, tzinfo=UTC),
        ),
        handlers=SPEC.handlers,
    )
    await asyncio.wait_for(only_ancient.handle(RefreshStaleSegments(), bus.system), timeout=30)
    r = await client.get(f"/v1/segments/customers/{kept}", headers=ops())
    assert datetime.now(UTC) - datetime.fromisoformat(r.json()["computed_at"]) < timedelta(
        minutes=1
    )
    r = await client.get(f"/v1/segments/customers/{gone}", headers=ops())
    assert r.json()["computed_at"].startswith("2001-01-01")


async def test_funnel_by_category_and_range(
    client: httpx.AsyncClient, publisher: Publisher
) -> None:
    cat = unique("cat")
    a, b = await catalogue(publisher, "fun", 2, category=cat)
    start = now_iso(-60)
    session = unique("sess")
    events = [
        {"type": "view", "sku": s, "session_id": session, "occurred_at": now_iso()}
        for s in (a, a, b, b)
    ] + [{"type": "add_to_cart", "sku": a, "session_id": session, "occurred_at": now_iso()}]
    assert (await client.post("/v1/behavior-events", json={"events": events})).status_code == 202
    await publisher.paid(unique("cust"), [a])

    async def funnel() -> dict[str, Any]:
        r = await client.get(
            "/v1/funnel", headers=ops(), params={"from": start, "to": now_iso(60), "category": cat}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["views"], body["add_to_carts"], body["orders"], body["paid"]) == (4, 1, 1, 1)
        return dict(body)

    body = await eventually(funnel, timeout=40)
    assert body["view_to_cart_rate"] == "0.2500"
    assert body["cart_to_order_rate"] == "1.0000"
    assert body["view_to_paid_rate"] == "0.2500"
    r = await client.get("/v1/funnel", headers=bearer("c", "customer"))
    assert r.status_code == 403
    r = await client.get(
        "/v1/funnel", headers=ops(), params={"from": now_iso(), "to": now_iso(-60)}
    )
    assert r.status_code == 422


async def test_grpc_offers_the_same_operations(rec_service: Service, publisher: Publisher) -> None:
    a, b = await catalogue(publisher, "grpc", 2)
    await publisher.paid(unique("cust"), [a, b])
    md = (("authorization", f"Bearer {token('ops-1', 'ops')}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rec_service.grpc_port}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)

        async def together() -> None:
            r = await stub.GetBoughtTogether(
                pb.GetBoughtTogetherRequest(sku=a, limit=5), metadata=md, timeout=5
            )
            assert [i.sku for i in r.items] == [b]

        await eventually(together, timeout=40)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RecordBehaviorEvents(
                pb.RecordBehaviorEventsRequest(events=[pb.BehaviorEventInput(sku=a)]),
                metadata=md,
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        trailer = dict(err.value.trailing_metadata() or ())
        problem = json.loads(trailer["ecomops-problem"])
        assert problem["invalid_indexes"] == [0]
        assert {e["field"] for e in problem["errors"]} == {"type", "occurred_at", "session_id"}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetTrending(pb.GetTrendingRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        mine = (("authorization", f"Bearer {token('cust-g', 'customer')}"),)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetCustomerRecommendations(
                pb.GetCustomerRecommendationsRequest(customer_id="someone-else"),
                metadata=mine,
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        own = await stub.GetCustomerRecommendations(
            pb.GetCustomerRecommendationsRequest(customer_id="cust-g", limit=3),
            metadata=mine,
            timeout=5,
        )
        assert len(own.items) == 3  # cold start: trending
        counts = await stub.ListSegmentCounts(pb.ListSegmentCountsRequest(), metadata=md, timeout=5)
        assert len(counts.counts) == 9


async def test_rebuild_reproduces_the_incremental_model(
    client: httpx.AsyncClient, publisher: Publisher, rec_service: Service
) -> None:
    a, b, c = await catalogue(publisher, "rb", 3)
    first, second = unique("cust"), unique("cust")
    await publisher.paid(first, [a, b])
    await publisher.paid(second, [a, b, c])

    async def ready() -> list[str]:
        got = await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together")
        assert got == [b, c]
        # Both orders are in the model: they are keyed apart (two partitions), so the second
        # can be applied first, and [b, c] already shows then.
        async with rec_service.uow() as uow:
            assert await uow.orders.purchased_skus(first) == {a, b}
            assert await uow.orders.purchased_skus(second) == {a, b, c}
        return got

    await eventually(ready, timeout=40)
    before = (
        await client.get(f"/v1/recommendations/skus/{a}/bought-together", headers=ops())
    ).json()
    assert rec_service.bus is not None
    stats = await rec_service.bus.handle(RebuildModel(), rec_service.bus.system)
    assert stats.interactions > 0
    after = (
        await client.get(f"/v1/recommendations/skus/{a}/bought-together", headers=ops())
    ).json()
    assert [i["sku"] for i in after["items"]] == [i["sku"] for i in before["items"]]
    for x, y in zip(after["items"], before["items"], strict=True):
        assert x["score"] == pytest.approx(y["score"], rel=1e-6)


async def test_a_cancelled_paid_order_is_taken_back(
    client: httpx.AsyncClient, publisher: Publisher
) -> None:
    a, b, c = await catalogue(publisher, "cx", 3)
    first, second = unique("cust"), unique("cust")
    order = await publisher.paid(first, [a, b], total=999)
    await publisher.paid(second, [a, c])

    async def both() -> None:
        got = await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together")
        assert set(got) == {b, c}, got

    await eventually(both, timeout=40)
    await publisher.cancel(first, order)

    async def only_c() -> None:
        assert await skus_of(client, f"/v1/recommendations/skus/{a}/bought-together") == [c]

    await eventually(only_c, timeout=40)
    r = await client.get(f"/v1/segments/customers/{second}", headers=ops())
    assert r.status_code == 200 and r.json()["frequency"] == 1
