"""Review cases follow their order: an order cancelled or expired while in review closes its
open case with the order's reason; the case leaves the open queue (REST and gRPC), cannot be
decided any more, and a redelivered cancellation changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest

from ecomops.common.v1 import common_pb2
from ecomops.order.v1 import events_pb2 as order_events
from ecomops.risk.v1 import risk_service_pb2 as pb
from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.events import Envelope
from ecomops_platform.runtime import Service
from ecomops_platform.topics import topic_of
from ecomops_testing import ops, service_caller, token, unique
from risk_service.entrypoints import consumers

from .test_risk_api import QUIET_RULES, order, put_rules

pytestmark = pytest.mark.integration


async def _review(client: httpx.AsyncClient) -> tuple[str, str]:
    """A new order sent to review (country mismatch); (order id, review id)."""
    await put_rules(client, QUIET_RULES)
    body = order(billing_country="FR", shipping_country="DE")
    r = await client.post("/v1/assessments", json=body, headers=service_caller())
    assert r.status_code == 201, r.text
    assert r.json()["decision"] == "review", r.json()
    return body["order_id"], r.json()["review_id"]


async def _rest_ids(client: httpx.AsyncClient, status: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"status": status, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/reviews", params=params, headers=ops())).json()
        ids.update(item["review_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def _grpc_reviews(risk: Service, status: int) -> dict[str, pb.Review]:
    meta = (("authorization", f"Bearer {token('analyst-1', 'ops')}"),)
    out: dict[str, pb.Review] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{risk.grpc_port}") as channel:
        stub = pb_grpc.RiskServiceStub(channel)
        cursor = ""
        while True:
            resp = await stub.ListReviews(
                pb.ListReviewsRequest(
                    status=status, page=common_pb2.PageRequest(limit=200, cursor=cursor)
                ),
                metadata=meta,
                timeout=10,
            )
            out.update({r.review_id: r for r in resp.reviews})
            cursor = resp.page.next_cursor
            if not cursor:
                return out


async def _cancelled(risk: Service, order_id: str, reason: str, event_id: str) -> None:
    """OrderCancelled through the consumer's handler, in a unit of work (as the consumer does)."""
    msg = order_events.OrderCancelled(order_id=order_id, reason=reason)
    envelope = Envelope(
        event_id=event_id,
        event_type=msg.DESCRIPTOR.full_name,
        source="ecomops/order",
        time=datetime.now(UTC),
        key=order_id,
        headers={},
        message=msg,
        topic=topic_of(order_events),
        partition=0,
        offset=0,
    )
    assert risk.bus is not None
    handle = consumers.handlers(risk.bus)[msg.DESCRIPTOR.full_name]
    async with risk.uow() as uow:
        await handle(uow, envelope)
        await uow.commit()


@pytest.mark.parametrize("reason", ["reservation_expired", "customer"])
async def test_order_cancelled_in_review_closes_the_case(
    client: httpx.AsyncClient, risk: Service, reason: str
) -> None:
    order_id, review_id = await _review(client)
    assert review_id in await _rest_ids(client, "open")
    assert review_id in await _grpc_reviews(risk, pb.REVIEW_STATUS_OPEN)

    event_id = str(uuid.uuid4())
    await _cancelled(risk, order_id, reason, event_id)

    got = (await client.get(f"/v1/reviews/{review_id}", headers=ops())).json()
    assert got["status"] == "closed" and got["close_reason"] == reason
    assert got["decision"] is None and got["resolved_at"] is not None
    assert review_id not in await _rest_ids(client, "open")
    assert review_id in await _rest_ids(client, "closed")
    assert review_id not in await _grpc_reviews(risk, pb.REVIEW_STATUS_OPEN)
    closed = (await _grpc_reviews(risk, pb.REVIEW_STATUS_CLOSED))[review_id]
    assert closed.status == pb.REVIEW_STATUS_CLOSED and closed.close_reason == reason

    late = await client.post(
        f"/v1/reviews/{review_id}/decision", json={"decision": "approve"}, headers=ops()
    )
    assert late.status_code == 409, late.text
    assert late.json()["type"].endswith("/review-closed")

    await _cancelled(risk, order_id, "ops", str(uuid.uuid4()))  # another cancellation event
    again = (await client.get(f"/v1/reviews/{review_id}", headers=ops())).json()
    assert again == got


async def test_a_decided_case_stays_decided_when_its_order_is_cancelled(
    client: httpx.AsyncClient, risk: Service
) -> None:
    order_id, review_id = await _review(client)
    decided = await client.post(
        f"/v1/reviews/{review_id}/decision", json={"decision": "reject"}, headers=ops()
    )
    assert decided.status_code == 200, decided.text
    await _cancelled(risk, order_id, "risk_rejected", str(uuid.uuid4()))
    got = (await client.get(f"/v1/reviews/{review_id}", headers=ops())).json()
    assert (got["status"], got["decision"], got["close_reason"]) == ("resolved", "reject", None)


async def test_cancelling_an_order_without_a_case_is_harmless(risk: Service) -> None:
    await _cancelled(risk, unique("ord"), "customer", str(uuid.uuid4()))
