"""The support service through REST and gRPC on the real PostgreSQL and Kafka: tickets with
ownership and idempotency, authorization on every operation, the knowledge base (real index,
versioned articles), the SLA job and the outbox, the order-event consumer, KPIs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest

from ecomops.order.v1 import events_pb2 as order_events
from ecomops.support.v1 import events_pb2
from ecomops.support.v1 import support_service_pb2 as pb
from ecomops.support.v1 import support_service_pb2_grpc as pb_grpc
from ecomops_platform.events import Envelope
from ecomops_platform.runtime import Service
from ecomops_testing import customer, idempotency_key, ops, token, unique
from support_service.entrypoints import consumers
from support_service.service_layer.tickets import EscalateOverdue

from ..unit.fakes import FakeOrders

pytestmark = pytest.mark.integration

LATE = {
    "category": "delivery",
    "subject": "My order has not arrived",
    "message": "My parcel is late and has not arrived yet, where is it?",
}


async def _open(
    client: httpx.AsyncClient, who: str, **body: Any
) -> tuple[httpx.Response, dict[str, str]]:
    key = idempotency_key()
    r = await client.post("/v1/tickets", json={**LATE, **body}, headers={**customer(who), **key})
    return r, key


async def test_rest_ticket_ownership_idempotency_and_events(
    client: httpx.AsyncClient, orders: FakeOrders, kafka_probe: Any
) -> None:
    probe = await kafka_probe("ecomops.support.v1")
    alice, bob = unique("cus"), unique("cus")
    order_id = unique("ord")
    orders.add(order_id, alice, total_minor=30_000)
    r, key = await _open(client, alice, order_id=order_id)
    assert r.status_code == 201, r.text
    t = r.json()
    assert r.headers["location"] == f"/v1/tickets/{t['ticket_id']}"
    assert (t["customer_id"], t["priority"], t["tier"]) == (alice, "high", 1)
    assert t["suggested_articles"] and t["suggested_articles"][0]["article_id"].startswith(
        "late-delivery"
    )
    # The same key again: the stored answer, nothing new.
    again = await client.post(
        "/v1/tickets", json={**LATE, "order_id": order_id}, headers={**customer(alice), **key}
    )
    assert again.status_code == 201 and again.json()["ticket_id"] == t["ticket_id"]
    assert again.headers.get("idempotent-replayed") == "true"
    # Someone else's order, or an unknown one: 404, no ticket.
    for other in (order_id, unique("ord")):
        refused, _ = await _open(client, bob, order_id=other)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    # Customers see their own tickets only; ops see all.
    tid = t["ticket_id"]
    assert (await client.get(f"/v1/tickets/{tid}", headers=customer(bob))).status_code == 404
    assert (await client.get(f"/v1/tickets/{tid}", headers=customer(alice))).status_code == 200
    agent_view = (await client.get(f"/v1/tickets/{tid}", headers=ops())).json()
    assert agent_view["order"]["available"] and agent_view["order"]["total_minor"] == 30_000
    mine = (await client.get("/v1/tickets", headers=customer(bob))).json()
    assert all(x["customer_id"] == bob for x in mine["items"])
    opened = await probe.wait_for(
        "ecomops.support.v1.TicketOpened", lambda e: e.key == tid, timeout=20
    )
    assert len(opened) == 1 and opened[0].source == "ecomops/support"


async def test_rest_authorization_and_bad_input(client: httpx.AsyncClient) -> None:
    alice = unique("cus")
    r, _ = await _open(client, alice)
    tid = r.json()["ticket_id"]
    anonymous = await client.post("/v1/tickets", json=LATE, headers=idempotency_key())
    assert anonymous.status_code == 401
    no_key = await client.post("/v1/tickets", json=LATE, headers=customer(alice))
    assert no_key.status_code == 400
    bad = await client.post(
        "/v1/tickets",
        json={**LATE, "category": "weather", "language": "fr"},
        headers={**customer(alice), **idempotency_key()},
    )
    assert bad.status_code == 422
    customer_only_ops = [
        ("post", f"/v1/tickets/{tid}/escalate", {"note": "x"}),
        ("post", f"/v1/tickets/{tid}/deescalate", {"note": "x"}),
        ("post", f"/v1/tickets/{tid}/resolve", {}),
        ("post", f"/v1/tickets/{tid}/compensation", {"rule_id": "late-delivery-10"}),
        (
            "put",
            "/v1/articles/x",
            {"title": "t", "body": "b", "category": "other", "language": "en"},
        ),
        ("get", "/v1/support/kpis", None),
    ]
    for method, path, body in customer_only_ops:
        resp = await client.request(method, path, json=body, headers=customer(alice))
        assert resp.status_code == 403, (path, resp.text)
    rate = await client.post(f"/v1/tickets/{tid}/rating", json={"csat": 5, "nps": 9}, headers=ops())
    assert rate.status_code == 403
    early = await client.post(
        f"/v1/tickets/{tid}/rating", json={"csat": 5, "nps": 9}, headers=customer(alice)
    )
    assert early.status_code == 409
    out_of_range = await client.post(
        f"/v1/tickets/{tid}/rating", json={"csat": 6, "nps": 9}, headers=customer(alice)
    )
    assert out_of_range.status_code == 422
    assert (await client.get("/v1/tickets?cursor=%%%", headers=ops())).status_code == 422


async def test_articles_are_versioned_and_searched_by_every_replica(
    client: httpx.AsyncClient, support: Service
) -> None:
    aid = unique("kb")
    word = f"zorbulator{uuid.uuid4().hex[:6]}"
    put = await client.put(
        f"/v1/articles/{aid}",
        json={
            "title": f"Resetting the {word}",
            "body": f"To reset the {word}, hold its button for ten seconds.",
            "category": "product",
            "language": "en",
            "keywords": [word],
        },
        headers=ops(),
    )
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    found = await client.get(
        "/v1/articles", params={"q": f"how do I reset the {word}"}, headers=customer("c-1")
    )
    assert found.status_code == 200
    assert found.json()["version"] >= version
    assert found.json()["items"][0]["article_id"] == aid
    zh = await client.get("/v1/articles", params={"q": "退款多久到账"}, headers=customer("c-1"))
    assert zh.status_code == 200 and zh.json()["items"][0]["article_id"].endswith("-zh")
    # Another replica's change (a write straight to the table) is picked up by the version.
    cache = support.bus.deps.knowledge  # type: ignore[union-attr]
    rebuilds = cache.rebuilds
    await client.put(
        f"/v1/articles/{aid}",
        json={"title": "Other", "body": "Other text", "category": "product", "language": "en"},
        headers=ops(),
    )
    await client.get("/v1/articles", params={"q": word}, headers=customer("c-1"))
    assert cache.rebuilds == rebuilds + 1


async def test_sla_job_escalates_on_the_real_database(
    client: httpx.AsyncClient, support: Service, kafka_probe: Any
) -> None:
    probe = await kafka_probe("ecomops.support.v1")
    r, _ = await _open(
        client,
        unique("cus"),
        subject="Strange noise",
        category="product",
        message="The blender makes a grinding noise when it starts.",
    )
    t = r.json()
    assert t["status"] == "open", t
    bus = support.bus
    assert bus is not None
    real_clock = bus.deps.clock
    try:
        bus.deps.clock = lambda: real_clock() + timedelta(days=30)
        # Other tests' tickets may be due as well: run until this one has moved.
        for _ in range(20):
            await bus.handle(EscalateOverdue(), bus.system)
            view = (await client.get(f"/v1/tickets/{t['ticket_id']}", headers=ops())).json()
            if view["tier"] > 1:
                break
    finally:
        bus.deps.clock = real_clock
    assert (view["status"], view["tier"], view["sla_breaches"]) == ("escalated", 2, 1)
    assert view["timeline"][-1]["kind"] == "sla_breach"
    [event] = await probe.wait_for(
        "ecomops.support.v1.TicketEscalated", lambda e: e.key == t["ticket_id"], timeout=20
    )
    assert isinstance(event.message, events_pb2.TicketEscalated)
    assert event.message.reason == "sla_breach"


async def test_order_events_count_once_for_the_contact_rate(
    client: httpx.AsyncClient, support: Service
) -> None:
    order_id = unique("ord")
    placed = order_events.OrderPlaced(
        order_id=order_id, customer_id=unique("cus"), currency="EUR", total_minor=999
    )
    # A one-second window of its own (the database is shared with other runs).
    at = datetime(2040, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10**9)
    placed.placed_at.FromDatetime(at)
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type=placed.DESCRIPTOR.full_name,
        source="ecomops/order",
        time=datetime.now(UTC),
        key=order_id,
        headers={},
        message=placed,
        topic="ecomops.order.v1",
        partition=0,
        offset=0,
    )
    handle = consumers.handlers(support.bus)[placed.DESCRIPTOR.full_name]  # type: ignore[arg-type]
    for _ in range(2):
        async with support.uow() as uow:
            await handle(uow, envelope)
            await uow.commit()
    k = await client.get(
        "/v1/support/kpis",
        params={
            "from": at.isoformat().replace("+00:00", "Z"),
            "to": (at + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        },
        headers=ops(),
    )
    assert k.status_code == 200, k.text
    assert k.json()["orders"] == 1 and k.json()["tickets_opened"] == 0


async def test_grpc_operations_and_authorization(support: Service, orders: FakeOrders) -> None:
    alice, bob = unique("cus"), unique("cus")

    def meta(sub: str, role: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token(sub, role)}"),)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{support.grpc_port}") as channel:
        stub = pb_grpc.SupportServiceStub(channel)
        req = pb.OpenTicketRequest(
            category="delivery",
            subject="Late parcel",
            message="The parcel has not arrived",
            idempotency_key=uuid.uuid4().hex,
        )
        t = (await stub.OpenTicket(req, metadata=meta(alice, "customer"), timeout=10)).ticket
        again = await stub.OpenTicket(req, metadata=meta(alice, "customer"), timeout=10)
        assert again.ticket.ticket_id == t.ticket_id and t.customer_id == alice
        got = await stub.GetTicket(
            pb.GetTicketRequest(ticket_id=t.ticket_id),
            metadata=meta(alice, "customer"),
            timeout=10,
        )
        assert got.ticket.messages[0].body == "The parcel has not arrived"

        async def code_of(call: Any) -> grpc.StatusCode:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            return err.value.code()

        get = pb.GetTicketRequest(ticket_id=t.ticket_id)
        assert (
            await code_of(stub.GetTicket(get, metadata=meta(bob, "customer"), timeout=10))
            == grpc.StatusCode.NOT_FOUND
        )
        assert await code_of(stub.GetTicket(get, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
        esc = pb.EscalateTicketRequest(ticket_id=t.ticket_id, note="x")
        assert (
            await code_of(stub.EscalateTicket(esc, metadata=meta(alice, "customer"), timeout=10))
            == grpc.StatusCode.PERMISSION_DENIED
        )
        assert (
            await code_of(
                stub.OpenTicket(
                    pb.OpenTicketRequest(
                        category="weather",
                        subject="s",
                        message="m",
                        idempotency_key=uuid.uuid4().hex,
                    ),
                    metadata=meta(alice, "customer"),
                    timeout=10,
                )
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            await code_of(
                stub.OpenTicket(
                    pb.OpenTicketRequest(category="delivery", subject="s", message="m"),
                    metadata=meta(alice, "customer"),
                    timeout=10,
                )
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            await code_of(
                stub.GetSupportKpis(
                    pb.GetSupportKpisRequest(), metadata=meta(alice, "customer"), timeout=10
                )
            )
            == grpc.StatusCode.PERMISSION_DENIED
        )
        up = await stub.EscalateTicket(esc, metadata=meta("agent-1", "ops"), timeout=10)
        assert (up.ticket.tier, up.ticket.status) == (2, "escalated")
        queue = await stub.ListTickets(
            pb.ListTicketsRequest(tier=2), metadata=meta("agent-1", "ops"), timeout=10
        )
        assert any(x.ticket_id == t.ticket_id for x in queue.tickets) or queue.next_page.next_cursor
        found = await stub.SearchArticles(
            pb.SearchArticlesRequest(q="how long does delivery take"),
            metadata=meta(alice, "customer"),
            timeout=10,
        )
        assert found.matches and 0 <= found.matches[0].score <= 1
