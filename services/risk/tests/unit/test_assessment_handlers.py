"""Assessments through the bus on the in-memory unit of work: scoring, replay by order id,
review cases, the model (and its failure), roles."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecomops.risk.v1 import events_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Conflict, Forbidden, NotFound
from risk_service.domain.models import BlocklistKind, Line, OrderFacts
from risk_service.domain.rules import DEFAULT_RULE_SET
from risk_service.service_layer.assessments import AssessOrder, GetAssessment
from risk_service.service_layer.blocklist import PutBlocklistEntry
from risk_service.service_layer.model_versions import ActivateModel
from risk_service.service_layer.rules import PutRules

from .fakes import NOW, FakeModelStore, FakeRiskUnitOfWork, bus

ORDER_SERVICE = Caller("service:order", Role.SERVICE)
OPS = Caller("analyst-1", Role.OPS)

#: The default rules, with a country mismatch alone enough for a review.
MISMATCH_REVIEWS: dict[str, Any] = {
    **DEFAULT_RULE_SET,
    "rules": [
        {**r, "weight": "0.35"} if r["type"] == "country_mismatch" else r
        for r in DEFAULT_RULE_SET["rules"]
    ],
}


async def review_rules(b: MessageBus[Any, Any]) -> None:
    await b.handle(PutRules(definition=MISMATCH_REVIEWS), OPS)


def facts(**overrides: Any) -> OrderFacts:
    base: dict[str, Any] = {
        "order_id": "o-1",
        "customer_id": "c-1",
        "amount_minor": 4999,
        "currency": "EUR",
        "lines": (Line("SKU-1", 1, 4999),),
        "ip": "192.0.2.1",
        "device_id": "dev-1",
        "billing_country": "DE",
        "shipping_country": "DE",
    }
    base.update(overrides)
    return OrderFacts(**base)


async def test_a_clean_order_is_approved_once_and_replayed_by_order_id() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    first = await b.handle(AssessOrder(order=facts()), ORDER_SERVICE)
    assert first.created
    view = first.assessment
    assert (view.decision, view.score, view.review_id) == ("approve", "0.0000", None)
    assert view.rules_version == 1 and view.model_version == "" and view.assessed_at == NOW
    stored = uow.assessments.rows[view.assessment_id]
    assert stored.final_decision == "approve" and stored.features["line_count"] == 1.0
    # the velocity keys of the order were counted under per-key locks
    assert uow.velocity.locked == [["customer:c-1", "device:dev-1", "ip:192.0.2.1"]]
    [event] = uow.events_of(events_pb2.RiskAssessed)
    assert isinstance(event, events_pb2.RiskAssessed)
    assert (event.order_id, event.decision, event.score) == ("o-1", "approve", "0.0000")

    again = await b.handle(AssessOrder(order=facts()), ORDER_SERVICE)
    assert not again.created and again.assessment == view
    assert len(uow.events) == 1
    assert await b.handle(GetAssessment(assessment_id=view.assessment_id), OPS) == view


async def test_the_same_order_id_with_another_amount_is_a_conflict() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    await b.handle(AssessOrder(order=facts()), ORDER_SERVICE)
    with pytest.raises(Conflict) as err:
        await b.handle(AssessOrder(order=facts(amount_minor=1)), ORDER_SERVICE)
    assert err.value.code == "assessment-conflict"
    assert len(uow.assessments.rows) == 1


async def test_a_country_mismatch_opens_a_review_case_in_the_same_transaction() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    await review_rules(b)
    result = await b.handle(AssessOrder(order=facts(billing_country="FR")), ORDER_SERVICE)
    view = result.assessment
    assert view.decision == "review" and view.review_id is not None
    assert [r.code for r in view.reasons] == ["country_mismatch"]
    case = uow.reviews.rows[view.review_id]
    assert (case.status, case.score, case.order_id) == ("open", view.score, "o-1")
    assert uow.assessments.rows[view.assessment_id].final_decision is None


async def test_a_blocklisted_email_rejects() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    await b.handle(PutBlocklistEntry(kind=BlocklistKind.EMAIL, value=" Fraud@Example.com "), OPS)
    result = await b.handle(AssessOrder(order=facts(email="fraud@example.com")), ORDER_SERVICE)
    assert result.assessment.decision == "reject"
    assert "blocklist_email" in [r.code for r in result.assessment.reasons]


async def test_velocity_counts_previous_orders_of_the_customer() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    decisions = []
    for i in range(7):
        result = await b.handle(
            AssessOrder(order=facts(order_id=f"o-{i}", ip=None, device_id=None)), ORDER_SERVICE
        )
        decisions.append(result.assessment.decision)
    # the default rule allows 5 orders per customer and hour; the 6th and 7th exceed it
    assert decisions[:5] == ["approve"] * 5
    assert decisions[5:] == ["review", "review"]


async def test_the_active_model_contributes_and_a_failing_model_never_approves() -> None:
    uow = FakeRiskUnitOfWork()
    models = FakeModelStore()
    models.add("m-1", Decimal("0.5"))
    models.add("broken", None)
    b = bus(uow, models)
    await b.handle(ActivateModel(version="m-1"), OPS)
    scored = (await b.handle(AssessOrder(order=facts()), ORDER_SERVICE)).assessment
    assert scored.model_version == "m-1"
    # default model weight 0.5 x probability 0.5
    assert [(r.code, r.weight) for r in scored.reasons] == [("model_score", "0.2500")]

    await b.handle(ActivateModel(version="broken"), OPS)
    failed = (await b.handle(AssessOrder(order=facts(order_id="o-2")), ORDER_SERVICE)).assessment
    assert failed.decision == "review" and failed.model_version == ""
    assert [r.code for r in failed.reasons] == ["model_unavailable"]


async def test_roles_and_unknown_assessments() -> None:
    b = bus(FakeRiskUnitOfWork())
    with pytest.raises(Forbidden):
        await b.handle(AssessOrder(order=facts()), Caller("c-1", Role.CUSTOMER))
    with pytest.raises(NotFound):
        await b.handle(GetAssessment(assessment_id="nope"), OPS)
