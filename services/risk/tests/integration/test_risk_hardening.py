"""Issue 19 regressions on risk (REST and gRPC, real stack): integers bounded by their columns
(GET /v1/rules?version=2147483648 was a 500), strict request types, real ISO codes and IP
addresses; refused input stores nothing."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from ecomops.risk.v1 import risk_service_pb2 as pb
from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.runtime import Service
from ecomops_testing import ops, service_caller, token, unique
from risk_service.adapters.tables import assessments

from .test_risk_api import order

pytestmark = pytest.mark.integration


async def stored(risk: Service, order_id: str) -> int:
    async with risk.uow() as uow:
        count = await uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(assessments)
            .where(assessments.c.order_id == order_id)
        )
    return int(count or 0)


async def test_rule_versions_past_integer_are_422(client: httpx.AsyncClient) -> None:
    for version in ("2147483648", str(2**63), str(2**200), "0", "1.5", "true"):
        r = await client.get("/v1/rules", params={"version": version}, headers=ops())
        assert r.status_code == 422, (version, r.text)
    r = await client.get("/v1/rules", params={"version": "2147483647"}, headers=ops())
    assert r.status_code == 404, r.text


async def test_assessment_input_is_strict_and_bounded(
    client: httpx.AsyncClient, risk: Service
) -> None:
    line = {"sku": "S", "quantity": 1, "unit_price_minor": 100}
    for overrides in (
        {"amount_minor": 2**63},
        {"amount_minor": "100"},
        {"amount_minor": True},
        {"lines": [{**line, "quantity": 2**31}]},
        {"lines": [{**line, "quantity": True}]},
        {"lines": [{**line, "unit_price_minor": 10**16}]},
        {"currency": "XXX"},
        {"billing_country": "ZZ"},
        {"shipping_country": "de"},
        {"ip": "not-an-ip"},
        {"account_created_at": 1_700_000_000},
        {"account_created_at": "0.5"},
    ):
        body = order(**overrides)
        r = await client.post("/v1/assessments", json=body, headers=service_caller())
        assert r.status_code == 422, (overrides, r.text)
        assert await stored(risk, body["order_id"]) == 0
    ok = order(ip="203.0.113.9", account_created_at="2025-01-01T00:00:00Z")
    r = await client.post("/v1/assessments", json=ok, headers=service_caller())
    assert r.status_code == 201, r.text


async def test_rule_definitions_are_strict(client: httpx.AsyncClient) -> None:
    rules: dict[str, Any] = {
        "review_threshold": "0.3",
        "reject_threshold": "0.8",
        "rules": [{"type": "blocklist", "weight": "1"}],
    }
    for bad in (
        {**rules, "review_threshold": 0.3},
        {**rules, "reject_threshold": True},
        {**rules, "rules": [{"type": "blocklist", "weight": "1", "shadow": "false"}]},
        {**rules, "rules": [{"type": "x" * 65, "weight": "1"}]},
        {**rules, "rules": [{"type": "blocklist", "weight": "1", "code": "c" * 65}]},
    ):
        r = await client.put("/v1/rules", json=bad, headers=ops())
        assert r.status_code == 422, (bad, r.text)


async def test_grpc_assessment_bounds_and_codes(risk: Service) -> None:
    md = (("authorization", f"Bearer {token('service:order', 'service')}"),)
    line = pb.AssessmentLine(sku="S", quantity=1, unit_price_minor=100)

    def request(**overrides: Any) -> pb.AssessOrderRequest:
        fields: dict[str, Any] = {
            "order_id": unique("ord"),
            "customer_id": unique("cus"),
            "amount_minor": 100,
            "currency": "EUR",
            "lines": [line],
            "billing_country": "DE",
            "shipping_country": "DE",
        }
        fields.update(overrides)
        return pb.AssessOrderRequest(**fields)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{risk.grpc_port}") as channel:
        stub = pb_grpc.RiskServiceStub(channel)  # type: ignore[no-untyped-call]
        for overrides in (
            {"amount_minor": 10**16},
            {"currency": "XXX"},
            {"billing_country": "ZZ"},
            {"ip": "not-an-ip"},
            {"lines": [pb.AssessmentLine(sku="S", quantity=2**40, unit_price_minor=1)]},
            {"device_id": "d" * 301},
        ):
            req = request(**overrides)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.AssessOrder(req, metadata=md, timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, overrides
            assert await stored(risk, req.order_id) == 0
        fine = await stub.AssessOrder(request(ip="198.51.100.4"), metadata=md, timeout=10)
        assert fine.assessment.decision != pb.DECISION_UNSPECIFIED


async def test_labels_take_the_documented_amount_range(
    client: httpx.AsyncClient, risk: Service
) -> None:
    body = {"order_id": unique("ord"), "label": "fraud", "source": "chargeback"}
    for amount in (10**15 + 1, 2**63, "100", True):
        r = await client.post(
            "/v1/labels",
            json={**body, "amount_minor": amount},
            headers={**ops(), "Idempotency-Key": unique("k")},
        )
        assert r.status_code == 422, (amount, r.text)
    md = (("authorization", f"Bearer {token('analyst-1', 'ops')}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{risk.grpc_port}") as channel:
        stub = pb_grpc.RiskServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateLabel(
                pb.CreateLabelRequest(
                    order_id=unique("ord"),
                    label=pb.LABEL_FRAUD,
                    source=pb.LABEL_SOURCE_CHARGEBACK,
                    amount_minor=2**62,
                    idempotency_key=unique("k"),
                ),
                metadata=md,
                timeout=10,
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
