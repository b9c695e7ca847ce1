"""Issue 19, findings 4, 5, 6 and 9, as reported, against the running services.

Card numbers refused on every service (the issue's cases: behaviour events, ops free text), after
normalisation (dots, full-width digits, zero-width spaces, the Idempotency-Key header), never
echoed and never stored; gRPC INVALID_ARGUMENT for out-of-range Timestamps and a 2,100-character
review note; long-lived tokens and duplicate credentials refused on both transports.
"""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import pytest
from db_scan import rows_containing
from proof_fixtures import auth, claims, customer, idem, ops, signed

from ecomops.order.v1 import order_service_pb2 as order_pb
from ecomops.order.v1 import order_service_pb2_grpc as order_grpc
from ecomops.risk.v1 import risk_service_pb2 as risk_pb
from ecomops.risk.v1 import risk_service_pb2_grpc as risk_grpc
from ecomops_testing import token

pytestmark = pytest.mark.integration

# Luhn-valid Visa-range numbers, written the ways the issue found slipping through.
PAN = "4303696762870492"
DOTTED = "4303.6967.6287.0492"
FULL_WIDTH = "".join(chr(0xFF10 + int(c)) for c in PAN)
ZERO_WIDTH = "\u200b".join(PAN[i : i + 4] for i in range(0, 16, 4))


def _refused(resp: httpx.Response) -> None:
    assert resp.status_code == 422, resp.text[:300]
    doc = resp.json()
    assert doc["type"].endswith("/card-number-refused"), doc
    assert "instance" not in doc
    digits = "".join(c for c in resp.text if c.isdigit())
    assert PAN not in digits and "6967" not in resp.text


@pytest.mark.parametrize("written", [PAN, DOTTED, FULL_WIDTH, ZERO_WIDTH])
async def test_behaviour_events_with_a_card_number_are_refused_even_anonymous(
    stack, http, written: str
) -> None:
    session = f"sess-{uuid.uuid4().hex[:8]}"
    event = {
        "type": "view",
        "sku": f"SKU-{uuid.uuid4().hex[:6]}",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    for body in (
        {"events": [{**event, "session_id": f"{session} {written}"}]},
        {"events": [{**event, "sku": written, "session_id": session}]},
    ):
        _refused(await http.post(stack.url("recommendation") + "/v1/behavior-events", json=body))
    assert await rows_containing("recommendation", [session, PAN]) == []


async def test_ops_free_text_with_a_card_number_is_refused(stack, http) -> None:
    sku = f"SEC19-{uuid.uuid4().hex[:8]}"
    attempts = [
        ("inventory", "PUT", f"/v1/skus/{sku}", {"title": f"t {DOTTED}", "category": "c"}),
        ("inventory", "PUT", f"/v1/warehouses/{sku}", {"name": ZERO_WIDTH}),
        ("pricing", "POST", "/v1/promotions", {"name": FULL_WIDTH}),
        ("risk", "PUT", f"/v1/blocklist/email/{PAN}", None),
    ]
    for service, method, path, body in attempts:
        resp = await http.request(
            method, stack.url(service) + path, json=body, headers={**ops(), **idem()}
        )
        _refused(resp)
    for service in ("inventory", "pricing", "risk"):
        assert await rows_containing(service, [PAN, sku]) == [], service


async def test_order_idempotency_key_address_and_path_are_screened(stack, http) -> None:
    owner = f"cust-{uuid.uuid4().hex[:8]}"
    cart = await http.post(
        stack.url("order") + "/v1/carts",
        json={"currency": "EUR"},
        headers={**customer(owner), "Idempotency-Key": DOTTED},
    )
    _refused(cart)
    order = await http.post(
        stack.url("order") + "/v1/orders",
        json={
            "currency": "EUR",
            "lines": [{"sku": "SKU-1", "quantity": 1}],
            "shipping_address": {
                "name": "A",
                "line1": DOTTED,
                "city": "Lyon",
                "postal_code": "69001",
                "country": "FR",
            },
        },
        headers={**customer(owner), **idem()},
    )
    _refused(order)
    _refused(await http.get(stack.url("order") + f"/v1/orders/{PAN}", headers=customer(owner)))
    assert await rows_containing("order", [PAN, owner]) == []


async def test_our_own_hex_order_ids_are_not_refused(stack, http) -> None:
    # A UUID hex holding a Luhn-valid 16-digit run: an id, not a card number → plain 404.
    resp = await http.get(
        stack.url("order") + "/v1/orders/015505bc53065827920520589b8bbdb2", headers=ops()
    )
    assert resp.status_code == 404, resp.text


async def test_grpc_out_of_range_timestamp_and_long_note_are_invalid_argument(stack) -> None:
    meta = (("authorization", f"Bearer {token('ops-sec19', 'ops')}"),)
    async with grpc.aio.insecure_channel(stack.grpc_target("order")) as channel:
        stub = order_grpc.OrderServiceStub(channel)
        for seconds in (-62_135_596_801, 253_402_300_800):
            request = order_pb.GetOrderKpisRequest()
            getattr(request, "from").seconds = seconds
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetOrderKpis(request, metadata=meta, timeout=10)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "from is not a valid timestamp" in (err.value.details() or "")
    async with grpc.aio.insecure_channel(stack.grpc_target("risk")) as channel:
        stub = risk_grpc.RiskServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.DecideReview(
                risk_pb.DecideReviewRequest(
                    review_id=str(uuid.uuid4()),
                    decision=risk_pb.REVIEW_DECISION_APPROVE,
                    note="n" * 2100,
                ),
                metadata=meta,
                timeout=10,
            )
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "2000" in (err.value.details() or "")


async def test_long_lived_tokens_and_duplicate_credentials_are_refused(stack, http) -> None:
    now = int(time.time())
    ten_years = "Bearer " + signed(claims("ops-sec19", "ops", iat=now, exp=now + 10 * 365 * 86400))
    no_iat = claims("ops-sec19", "ops")
    del no_iat["iat"]
    url = stack.url("risk") + "/v1/rules"
    for header in (ten_years, "Bearer " + signed(no_iat)):
        assert (await http.get(url, headers={"Authorization": header})).status_code == 401
    good = ops()["Authorization"]
    dup = await http.get(url, headers=[("Authorization", good), ("Authorization", good)])
    assert dup.status_code == 401, dup.text
    assert (await http.get(url, headers=auth("ops-sec19", "ops"))).status_code == 200

    async with grpc.aio.insecure_channel(stack.grpc_target("risk")) as channel:
        stub = risk_grpc.RiskServiceStub(channel)
        for metadata in (
            (("authorization", ten_years),),
            (("authorization", good), ("authorization", good)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetRules(risk_pb.GetRulesRequest(), metadata=metadata, timeout=10)
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
