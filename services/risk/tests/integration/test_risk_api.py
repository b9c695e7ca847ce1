from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from ecomops.risk.v1 import events_pb2
from ecomops.risk.v1 import risk_service_pb2 as pb
from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.runtime import Service
from ecomops_testing import bearer, eventually, ops, service_caller, token, unique
from risk_service.adapters.tables import velocity_events

pytestmark = pytest.mark.integration

QUIET_RULES: dict[str, Any] = {
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0.5",
    "rules": [
        {
            "type": "velocity_customer",
            "weight": "0.4",
            "params": {"window_seconds": 3600, "max_count": 5},
        },
        {"type": "country_mismatch", "weight": "0.35"},
        {"type": "blocklist", "weight": "1"},
        {
            "code": "new_account_shadow",
            "type": "new_account_large_basket",
            "weight": "0.9",
            "shadow": True,
            "params": {"max_account_age_days": 7, "min_amount_minor": 10000},
        },
    ],
}


def unique_ip() -> str:
    """A fresh IPv6 address of the documentation range (velocity per IP stays per test)."""
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | uuid.uuid4().int >> 32))


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": unique("ord"),
        "customer_id": unique("cus"),
        "amount_minor": 4999,
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 4999}],
        "ip": unique_ip(),
        "device_id": unique("dev"),
        "billing_country": "DE",
        "shipping_country": "DE",
    }
    body.update(overrides)
    return body


async def put_rules(client: httpx.AsyncClient, rules: dict[str, Any]) -> int:
    r = await client.put("/v1/rules", json=rules, headers=ops())
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


async def test_assessment_is_idempotent_by_order_id(client: httpx.AsyncClient) -> None:
    await put_rules(client, QUIET_RULES)
    body = order()
    first = await client.post("/v1/assessments", json=body, headers=service_caller())
    assert first.status_code == 201, first.text
    data = first.json()
    assert data["decision"] == "approve"
    assert 0 <= float(data["score"]) <= 1
    again = await client.post("/v1/assessments", json=body, headers=service_caller())
    assert again.status_code == 200
    assert again.json()["assessment_id"] == data["assessment_id"]
    changed = await client.post(
        "/v1/assessments", json={**body, "amount_minor": 1}, headers=service_caller()
    )
    assert changed.status_code == 409
    got = await client.get(f"/v1/assessments/{data['assessment_id']}", headers=ops())
    assert got.json()["order_id"] == body["order_id"]
    customer = await client.post("/v1/assessments", json=order(), headers=bearer("c", "customer"))
    assert customer.status_code == 403
    bad = await client.post(
        "/v1/assessments", json={**order(), "extra": 1}, headers=service_caller()
    )
    assert bad.status_code == 422


async def test_ops_read_an_orders_assessment_with_its_reasons(client: httpx.AsyncClient) -> None:
    await put_rules(client, QUIET_RULES)
    body = order(billing_country="US", shipping_country="NG")
    made = await client.post("/v1/assessments", json=body, headers=service_caller())
    assert made.status_code == 201, made.text
    r = await client.get("/v1/assessments", params={"order_id": body["order_id"]}, headers=ops())
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item == made.json()
    assert item["decision"] == "review"
    assert [x["code"] for x in item["reasons"]] == ["country_mismatch"]
    assert "US" in item["reasons"][0]["detail"] and "NG" in item["reasons"][0]["detail"]
    never = await client.get("/v1/assessments", params={"order_id": unique("o")}, headers=ops())
    assert never.status_code == 200 and never.json() == {"items": []}
    missing = await client.get("/v1/assessments", headers=ops())
    assert missing.status_code == 422
    blank = await client.get("/v1/assessments", params={"order_id": " "}, headers=ops())
    assert blank.status_code == 422
    nosy = await client.get(
        "/v1/assessments", params={"order_id": body["order_id"]}, headers=bearer("c", "customer")
    )
    assert nosy.status_code == 403


async def test_concurrent_assessments_are_all_counted(
    client: httpx.AsyncClient, risk: Service
) -> None:
    await put_rules(client, QUIET_RULES)
    customer = unique("cus")
    bodies = [order(customer_id=customer) for _ in range(30)]
    results = await asyncio.gather(
        *(client.post("/v1/assessments", json=b, headers=service_caller()) for b in bodies)
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    async with risk.uow() as uow:
        count = await uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(velocity_events)
            .where(velocity_events.c.dimension == "customer", velocity_events.c.value == customer)
        )
    assert count == 30
    tripped = [
        r for r in results if any(x["code"] == "velocity_customer" for x in r.json()["reasons"])
    ]
    # Exact counts under concurrency: orders 6..30 exceed the limit of 5.
    assert len(tripped) == 25
    assert all(r.json()["decision"] != "approve" for r in tripped)


async def test_review_decision_publishes_event_and_second_decision_conflicts(
    client: httpx.AsyncClient, kafka_probe: Any
) -> None:
    await put_rules(client, QUIET_RULES)
    probe = await kafka_probe("ecomops.risk.v1")
    body = order(billing_country="FR", shipping_country="DE")
    r = await client.post("/v1/assessments", json=body, headers=service_caller())
    data = r.json()
    assert data["decision"] == "review", data
    assert [x["code"] for x in data["reasons"]] == ["country_mismatch"]
    review_id = data["review_id"]
    listed = await client.get("/v1/reviews", params={"status": "open", "limit": 200}, headers=ops())
    assert listed.status_code == 200
    decided = await client.post(
        f"/v1/reviews/{review_id}/decision",
        json={"decision": "approve", "note": "known customer"},
        headers=ops(),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "resolved"
    twice = await client.post(
        f"/v1/reviews/{review_id}/decision", json={"decision": "reject"}, headers=ops()
    )
    assert twice.status_code == 409
    events = await probe.wait_for(
        "ecomops.risk.v1.RiskReviewResolved", lambda e: e.key == body["order_id"]
    )
    msg = events[0].message
    assert isinstance(msg, events_pb2.RiskReviewResolved)
    assert msg.decision == "approve" and msg.review_id == review_id
    assessed = await probe.wait_for(
        "ecomops.risk.v1.RiskAssessed", lambda e: e.key == body["order_id"]
    )
    assert assessed[0].message.decision == "review"
    missing = await client.get(f"/v1/reviews/{unique('rev')}", headers=ops())
    assert missing.status_code == 404


async def test_blocklist_rejects_and_shadow_rules_do_not_decide(client: httpx.AsyncClient) -> None:
    await put_rules(client, QUIET_RULES)
    email = f"{unique('bad')}@Example.com"
    put = await client.put(
        f"/v1/blocklist/email/{email}", json={"reason": "chargebacks"}, headers=ops()
    )
    assert put.status_code == 200 and put.json()["value"] == email.lower()
    r = await client.post(
        "/v1/assessments", json=order(email=email.lower()), headers=service_caller()
    )
    assert r.json()["decision"] == "reject"
    assert "blocklist_email" in [x["code"] for x in r.json()["reasons"]]
    new_account = order(
        amount_minor=90000,
        account_created_at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    shadow = (
        await client.post("/v1/assessments", json=new_account, headers=service_caller())
    ).json()
    assert shadow["decision"] == "approve"
    assert shadow["reasons"][0]["code"] == "new_account_shadow"
    assert shadow["reasons"][0]["shadow"] is True
    assert shadow["score"] == "0.0000"
    gone = await client.delete(f"/v1/blocklist/email/{email}", headers=ops())
    assert gone.status_code == 204
    again = await client.delete(f"/v1/blocklist/email/{email}", headers=ops())
    assert again.status_code == 404


async def test_invalid_rule_sets_are_refused_and_versions_kept(client: httpx.AsyncClient) -> None:
    v1 = await put_rules(client, QUIET_RULES)
    bad = {
        "review_threshold": "0.9",
        "reject_threshold": "0.5",
        "rules": [
            {"type": "no_such_rule", "weight": "0.5"},
            {"type": "velocity_ip", "weight": "1.5", "params": {"window_seconds": 10}},
        ],
    }
    r = await client.put("/v1/rules", json=bad, headers=ops())
    assert r.status_code == 422
    locations = {e["location"] for e in r.json()["errors"]}
    assert {
        "reject_threshold",
        "rules.0.type",
        "rules.1.weight",
        "rules.1.params.window_seconds",
    } <= locations
    v2 = await put_rules(client, QUIET_RULES)
    assert v2 == v1 + 1
    old = await client.get("/v1/rules", params={"version": v1}, headers=ops())
    assert old.json()["version"] == v1
    versions = await client.get("/v1/rules/versions", params={"limit": 1}, headers=ops())
    assert versions.json()["items"][0]["version"] >= v2
    assert versions.json()["next_cursor"]


async def test_labels_and_kpis(client: httpx.AsyncClient) -> None:
    await put_rules(client, QUIET_RULES)
    start = datetime.now(UTC) - timedelta(seconds=1)
    currency = "JPY"
    approved = order(currency=currency, amount_minor=10_000)
    r = await client.post("/v1/assessments", json=approved, headers=service_caller())
    assert r.json()["decision"] == "approve"
    label = {
        "order_id": approved["order_id"],
        "label": "fraud",
        "source": "chargeback",
        "amount_minor": 7_000,
    }
    key = {"Idempotency-Key": unique("k")}
    made = await client.post("/v1/labels", json=label, headers={**ops(), **key})
    assert made.status_code == 201, made.text
    replay = await client.post("/v1/labels", json=label, headers={**ops(), **key})
    assert replay.json()["label_id"] == made.json()["label_id"]
    no_key = await client.post("/v1/labels", json=label, headers=ops())
    assert no_key.status_code == 400
    kpis = await client.get(
        "/v1/risk/kpis",
        params={
            "from": start.isoformat(),
            "to": (datetime.now(UTC) + timedelta(seconds=5)).isoformat(),
        },
        headers=ops(),
    )
    assert kpis.status_code == 200, kpis.text
    loss = next(x for x in kpis.json()["fraud_loss"] if x["currency"] == currency)
    assert loss["fraud_loss_minor"] >= 7_000
    assert Decimal_ok(loss["fraud_loss_rate"])


def Decimal_ok(value: str) -> bool:
    from decimal import Decimal

    return Decimal(0) < Decimal(value) <= Decimal(1)


async def test_grpc_assess_order_and_errors(risk: Service) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{risk.grpc_port}")
    stub = pb_grpc.RiskServiceStub(channel)
    meta = (("authorization", f"Bearer {token('service:order', 'service')}"),)
    try:
        req = pb.AssessOrderRequest(
            order_id=unique("ord"),
            customer_id=unique("cus"),
            amount_minor=1234,
            currency="EUR",
            lines=[pb.AssessmentLine(sku="S", quantity=1, unit_price_minor=1234)],
        )
        first = await stub.AssessOrder(req, metadata=meta, timeout=5)
        again = await stub.AssessOrder(req, metadata=meta, timeout=5)
        assert first.assessment.assessment_id == again.assessment.assessment_id
        assert first.assessment.decision in (pb.DECISION_APPROVE, pb.DECISION_REVIEW)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AssessOrder(pb.AssessOrderRequest(order_id="x"), metadata=meta, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetRules(pb.GetRulesRequest(), metadata=meta, timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        found = await stub.ListAssessments(
            pb.ListAssessmentsRequest(order_id=req.order_id), metadata=meta, timeout=5
        )
        assert [a.assessment_id for a in found.items] == [first.assessment.assessment_id]
        none = await stub.ListAssessments(
            pb.ListAssessmentsRequest(order_id=unique("o")), metadata=meta, timeout=5
        )
        assert list(none.items) == []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListAssessments(pb.ListAssessmentsRequest(), metadata=meta, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close()


def _write_model(model_dir: Path, version: str) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from risk_service.adapters.model_store import save_artifact
    from risk_service.domain.features import FEATURES

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] > 0.5).astype(int)
    est = LogisticRegression().fit(x, y)
    save_artifact(
        model_dir,
        est,
        algorithm="LogisticRegression",
        features=FEATURES[:3],
        metrics={"roc_auc": 0.9},
        version=version,
    )


async def test_model_activation_and_poisoned_artifact_fallback(
    client: httpx.AsyncClient, risk: Service, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    await put_rules(client, QUIET_RULES)
    good, bad = unique("m"), unique("m")
    await asyncio.to_thread(_write_model, model_dir, good)
    await asyncio.to_thread(_write_model, model_dir, bad)
    r = await client.post(f"/v1/models/{good}/activate", headers=ops())
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    scored = (await client.post("/v1/assessments", json=order(), headers=service_caller())).json()
    assert scored["model_version"] == good
    assert "model_score" in [x["code"] for x in scored["reasons"]]
    # Poison the active artifact: the next load must refuse it and fall back to rules only.
    (model_dir / bad / "model.joblib").write_bytes(b"not a model")
    refused = await client.post(f"/v1/models/{bad}/activate", headers=ops())
    assert refused.status_code == 422
    assert "sha256" in refused.json()["detail"]
    before = REGISTRY.get_sample_value("risk_model_fallback_total", {"reason": "load_failed"}) or 0
    manifest = json.loads((model_dir / good / "manifest.json").read_text())
    (model_dir / good / "model.joblib").write_bytes(b"poisoned")
    risk_ctx_models = _models(risk)
    risk_ctx_models.current = None
    risk_ctx_models.wanted = None  # force the periodic refresh to reload the active version

    async def fell_back() -> None:
        assert risk_ctx_models.wanted == good
        assert risk_ctx_models.last_error is not None

    with caplog.at_level("ERROR", logger="risk.model"):
        await eventually(fell_back, timeout=10)
    assert any("fallback to rules only" in rec.message for rec in caplog.records)
    after = REGISTRY.get_sample_value("risk_model_fallback_total", {"reason": "load_failed"})
    assert after is not None and after > before
    assert REGISTRY.get_sample_value("risk_model_loaded") == 0
    rules_only = (
        await client.post(
            "/v1/assessments",
            json=order(billing_country="FR", shipping_country="DE"),
            headers=service_caller(),
        )
    ).json()
    assert rules_only["model_version"] == ""
    assert rules_only["decision"] == "review"  # rules still decide: never approve-all
    assert manifest["sha256"]


def _models(risk: Service) -> Any:
    assert risk.bus is not None
    return risk.bus.deps.models
