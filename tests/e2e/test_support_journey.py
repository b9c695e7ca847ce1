"""The after-sales journey through the REAL order, pricing, inventory, risk and support
services (in-process): a customer orders, the delivery is late, the customer opens a ticket, the
knowledge base's automatic answer is not enough, the ticket goes to tier 1, an agent applies the
goodwill rule (a coupon made by pricing, usable at checkout), resolves it, the customer rates it.

"Late" is configured, not waited for: the support service here promises delivery on the day of
the order (``SUPPORT_PROMISED_DELIVERY_DAYS=0``), so any delivery is late by more than the
rule's zero days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from ecomops_platform.runtime import Service
from ecomops_testing import bearer, ensure_database, eventually, skip_to_end, unique
from support_service.bootstrap import create_service as support_service
from support_service.settings import CompensationRuleIn, SupportSettings

from .conftest import Stack, _seed_rules, create_warehouse, e2e_url, running_stack

pytestmark = pytest.mark.integration

SUFFIX = "_support"
RULE = "late-delivery-e2e"


@pytest.fixture(scope="module")
async def stack(stack_env: None) -> AsyncIterator[Stack]:
    from ecomops_platform.migrations import upgrade_async

    async with running_stack(SUFFIX) as st:
        await create_warehouse(st)
        await _seed_rules(st)
        url = e2e_url("support", SUFFIX)
        await ensure_database(url)
        await upgrade_async("support", url)
        support: Service = support_service(
            SupportSettings(
                database_url=url,
                http_port=0,
                grpc_port=0,
                order_target=f"127.0.0.1:{st.services['order'].grpc_port}",
                pricing_target=f"127.0.0.1:{st.services['pricing'].grpc_port}",
                dependency_timeout=5.0,
                promised_delivery_days=0,
                compensation_rules=[
                    CompensationRuleIn(
                        rule_id=RULE,
                        categories=("delivery",),
                        percent=Decimal("0.10"),
                        min_days_late=0,
                    ),
                    CompensationRuleIn(
                        rule_id="damaged-item-return", kind="return", categories=("product",)
                    ),
                ],
            )
        )
        for sub in support._subscriptions:
            sub.name = f"e2e{SUFFIX}"
            await skip_to_end(f"ecomops-support-{sub.name}", sub.topics)
        async with (
            support.running(),
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{support.http_port}", timeout=30
            ) as client,
        ):
            st.services["support"] = support
            st.clients["support"] = client
            yield st


def key() -> dict[str, str]:
    return {"Idempotency-Key": unique("k")}


async def test_late_delivery_ticket_to_goodwill_coupon_resolved_and_rated(
    stack: Stack, seed, checkout, kafka_probe
) -> None:
    probe = await kafka_probe("ecomops.support.v1")
    o, s = stack.clients["order"], stack.clients["support"]
    ops, agent = bearer("e2e-ops", "ops"), bearer("agent-e2e", "ops")
    carrier = bearer("e2e-carrier", "partner")
    cid = unique("e2e-cust")
    me = bearer(cid, "customer")

    # The customer orders; it is paid, shipped and delivered (late by the promise above).
    sku = await seed(stock=5)
    placed = await checkout(me, [{"sku": sku, "quantity": 1}])
    assert placed.status_code == 201, placed.text
    oid = placed.json()["order_id"]
    paid = await o.post(
        f"/v1/orders/{oid}/payments", json={"payment_token": "tok_ok_e2e"}, headers={**me, **key()}
    )
    assert paid.status_code == 201, paid.text
    shipped = await o.post(
        f"/v1/orders/{oid}/shipments",
        json={"carrier": "UPS", "tracking_number": "1ZSUPPORT"},
        headers={**carrier, **key()},
    )
    assert shipped.status_code == 201, shipped.text
    assert (await o.post(f"/v1/orders/{oid}/delivery", headers=carrier)).status_code == 200

    # Someone else cannot open a ticket on this order.
    stranger = await s.post(
        "/v1/tickets",
        json={"order_id": oid, "category": "delivery", "subject": "x", "message": "late"},
        headers={**bearer(unique("e2e-cust"), "customer"), **key()},
    )
    assert stranger.status_code == 404, stranger.text

    # The ticket: the knowledge base answers it by itself...
    opened = await s.post(
        "/v1/tickets",
        json={
            "order_id": oid,
            "category": "delivery",
            "subject": "My order arrived late",
            "message": "My order is late, it has not arrived when promised. Where is my parcel?",
        },
        headers={**me, **key()},
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    tid = ticket["ticket_id"]
    assert ticket["status"] == "auto_answered", ticket
    assert ticket["auto_answer_article_id"].startswith("late-delivery")
    assert not ticket["order_context_missing"]

    # ...which is not enough: to tier 1, with an SLA clock.
    not_solved = await s.post(f"/v1/tickets/{tid}/auto-reply", json={"solved": False}, headers=me)
    assert not_solved.status_code == 200, not_solved.text
    assert (not_solved.json()["status"], not_solved.json()["tier"]) == ("open", 1)
    assert not_solved.json()["sla_due_at"] is not None

    # The agent's queue shows it; the agent sees the order's real state.
    queue = await s.get("/v1/tickets", params={"tier": 1, "status": "open"}, headers=agent)
    assert queue.status_code == 200
    view = (await s.get(f"/v1/tickets/{tid}", headers=agent)).json()
    assert view["order"]["available"] and view["order"]["status"] == "delivered"
    assert view["order"]["shipments"] == 1

    # Goodwill: one action, a coupon from pricing, never twice.
    comp = await s.post(f"/v1/tickets/{tid}/compensation", json={"rule_id": RULE}, headers=agent)
    assert comp.status_code == 200, comp.text
    c = comp.json()
    assert (c["status"], c["approved_by"], c["percent"]) == ("applied", "agent-e2e", "0.10")
    again = await s.post(f"/v1/tickets/{tid}/compensation", json={"rule_id": RULE}, headers=agent)
    assert again.status_code == 409

    # The coupon works at checkout (10 % off a 2000 line).
    with_coupon = await checkout(me, [{"sku": sku, "quantity": 1}], coupon_codes=[c["coupon_code"]])
    assert with_coupon.status_code == 201, with_coupon.text
    assert with_coupon.json()["discount_total_minor"] == 200

    # The agent answers and resolves; the customer rates once.
    replied = await s.post(
        f"/v1/tickets/{tid}/messages",
        json={"body": "Sorry for the delay: here is a 10% coupon."},
        headers=agent,
    )
    assert replied.json()["status"] == "waiting_customer"
    resolved = await s.post(f"/v1/tickets/{tid}/resolve", json={"note": "coupon"}, headers=agent)
    assert resolved.json()["status"] == "resolved"
    rated = await s.post(f"/v1/tickets/{tid}/rating", json={"csat": 5, "nps": 9}, headers=me)
    assert rated.status_code == 200 and rated.json()["rating"]["csat"] == 5
    twice = await s.post(f"/v1/tickets/{tid}/rating", json={"csat": 1, "nps": 0}, headers=me)
    assert twice.status_code == 409

    kinds = [e["kind"] for e in rated.json()["timeline"]]
    assert kinds == [
        "opened",
        "auto_answered",
        "not_solved",
        "compensated",
        "agent_replied",
        "resolved",
        "rated",
    ]
    for event_type in ("TicketOpened", "TicketEscalated", "TicketResolved", "SatisfactionRecorded"):
        await probe.wait_for(f"ecomops.support.v1.{event_type}", lambda e: e.key == tid)

    # A damaged item on the same order: the return rule opens an approved return at order.
    broken = await s.post(
        "/v1/tickets",
        json={
            "order_id": oid,
            "category": "product",
            "subject": "Arrived broken",
            "message": "The glass was shattered in the box.",
        },
        headers={**me, **key()},
    )
    assert broken.status_code == 201, broken.text
    bid = broken.json()["ticket_id"]
    ret = await s.post(
        f"/v1/tickets/{bid}/compensation", json={"rule_id": "damaged-item-return"}, headers=agent
    )
    assert ret.status_code == 200, ret.text
    assert ret.json()["kind"] == "return" and ret.json()["return_id"]
    rma = await o.get(f"/v1/returns/{ret.json()['return_id']}", headers=ops)
    assert rma.status_code == 200, rma.text
    assert (rma.json()["order_id"], rma.json()["status"]) == (oid, "approved")

    async def counted() -> None:
        k = (await s.get("/v1/support/kpis", headers=ops)).json()
        assert k["orders"] >= 1 and k["tickets_opened"] >= 1 and k["csat_average"] is not None

    # The order events reached support's consumer (the contact rate's denominator).
    await eventually(counted, timeout=60)
