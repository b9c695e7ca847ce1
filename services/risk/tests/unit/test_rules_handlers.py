"""Rule sets, the blocklist, model versions and KPIs through the bus on fakes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import NotFound, Unprocessable
from risk_service.domain.models import BlocklistKind, LabelSource, LabelValue, ReviewDecision
from risk_service.domain.rules import DEFAULT_RULE_SET
from risk_service.service_layer.assessments import AssessOrder
from risk_service.service_layer.blocklist import (
    DeleteBlocklistEntry,
    ListBlocklist,
    PutBlocklistEntry,
)
from risk_service.service_layer.kpis import GetKpis
from risk_service.service_layer.model_versions import ActivateModel, ListModels, RefreshModel
from risk_service.service_layer.reviews import CreateLabel, DecideReview
from risk_service.service_layer.rules import (
    EnsureDefaultRules,
    GetRules,
    ListRuleVersions,
    PutRules,
)

from .fakes import NOW, Clock, FakeModelStore, FakeRiskUnitOfWork, bus
from .test_assessment_handlers import OPS, ORDER_SERVICE, facts, review_rules

SYSTEM = Caller("ecomops-risk", Role.SERVICE)


async def test_rule_sets_are_versioned_and_validated() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    await b.handle(EnsureDefaultRules(), SYSTEM)
    active = await b.handle(GetRules(), OPS)
    assert active.version == 1 and active.created_by == "system"
    assert active.review_threshold == "0.3" and len(active.rules) == 8
    definition: dict[str, Any] = {**DEFAULT_RULE_SET, "review_threshold": "0.25"}
    put = await b.handle(PutRules(definition=definition), OPS)
    assert (put.version, put.review_threshold, put.created_by) == (2, "0.25", "analyst-1")
    assert await b.handle(GetRules(), OPS) == put
    assert (await b.handle(GetRules(version=1), OPS)).review_threshold == "0.3"
    with pytest.raises(Unprocessable) as err:
        await b.handle(PutRules(definition={**definition, "reject_threshold": "0.1"}), OPS)
    assert err.value.code == "invalid-rule-set"
    with pytest.raises(NotFound):
        await b.handle(GetRules(version=9), OPS)
    page = await b.handle(ListRuleVersions(limit=1), OPS)
    assert [r.version for r in page.items] == [2] and page.next_cursor
    rest = await b.handle(ListRuleVersions(cursor=page.next_cursor), OPS)
    assert [r.version for r in rest.items] == [1] and rest.next_cursor is None


async def test_the_blocklist_normalises_lists_and_removes() -> None:
    uow = FakeRiskUnitOfWork()
    b = bus(uow)
    entry = await b.handle(
        PutBlocklistEntry(kind=BlocklistKind.EMAIL, value=" A@Example.COM ", reason="chargebacks"),
        OPS,
    )
    assert (entry.kind, entry.value, entry.created_by) == ("email", "a@example.com", "analyst-1")
    updated = await b.handle(
        PutBlocklistEntry(kind=BlocklistKind.EMAIL, value="a@example.com", reason="fraud ring"),
        OPS,
    )
    assert updated.reason == "fraud ring" and len(uow.blocklist.rows) == 1
    await b.handle(PutBlocklistEntry(kind=BlocklistKind.IP, value="192.0.2.7"), OPS)
    page = await b.handle(ListBlocklist(kind=BlocklistKind.IP), OPS)
    assert [e.value for e in page.items] == ["192.0.2.7"]
    await b.handle(DeleteBlocklistEntry(kind=BlocklistKind.IP, value="192.0.2.7"), OPS)
    with pytest.raises(NotFound):
        await b.handle(DeleteBlocklistEntry(kind=BlocklistKind.IP, value="192.0.2.7"), OPS)
    with pytest.raises(Unprocessable):
        await b.handle(PutBlocklistEntry(kind=BlocklistKind.DEVICE, value="   "), OPS)


async def test_activation_is_verified_and_every_replica_follows_it() -> None:
    uow = FakeRiskUnitOfWork()
    models = FakeModelStore()
    models.add("m-1")
    models.add("tampered")
    models.refused.add("tampered")
    b = bus(uow, models)
    with pytest.raises(NotFound):
        await b.handle(ActivateModel(version="m-9"), OPS)
    with pytest.raises(Unprocessable):
        await b.handle(ActivateModel(version="tampered"), OPS)
    assert uow.model_activations.rows == []
    view = await b.handle(ActivateModel(version="m-1"), OPS)
    assert view.active and view.version == "m-1" and view.metrics == {"roc_auc": "0.900000"}
    listed = await b.handle(ListModels(), OPS)
    assert {(m.version, m.active) for m in listed.items} == {("m-1", True), ("tampered", False)}
    assert listed.fallback_reason is None

    # another replica (its own model store, the same database) picks the version up
    replica = FakeModelStore()
    replica.add("m-1")
    other = bus(uow, replica)
    await other.handle(RefreshModel(), SYSTEM)
    await other.handle(RefreshModel(), SYSTEM)
    assert replica.active_version == "m-1" and replica.loads == ["m-1"]


async def test_kpis_rates_precision_and_fraud_loss() -> None:
    uow = FakeRiskUnitOfWork()
    clock = Clock()
    b = bus(uow, clock=clock)
    await review_rules(b)
    approved = await b.handle(AssessOrder(order=facts(order_id="o-a")), ORDER_SERVICE)
    reviewed = await b.handle(
        AssessOrder(order=facts(order_id="o-r", billing_country="FR", amount_minor=1000)),
        ORDER_SERVICE,
    )
    review_id = reviewed.assessment.review_id
    assert review_id is not None
    await b.handle(DecideReview(review_id=review_id, decision=ReviewDecision.APPROVE), OPS)
    await b.execute(
        CreateLabel(
            order_id="o-r", label=LabelValue.FRAUD, source=LabelSource.CHARGEBACK, amount_minor=400
        ),
        OPS,
        idempotency_key="k-1",
    )
    clock.advance(1)  # the period ends now: [now - 30 days, now)
    kpis = await b.handle(GetKpis(), OPS)
    end = NOW + timedelta(seconds=1)
    assert (kpis.from_time, kpis.to_time) == (end - timedelta(days=30), end)
    assert kpis.assessments == 2 and kpis.labelled == 1
    assert (kpis.approval_rate, kpis.review_rate, kpis.reject_rate) == (
        "0.500000",
        "0.500000",
        "0.000000",
    )
    assert (kpis.review_precision, kpis.reject_precision) == ("1.000000", None)
    [loss] = kpis.fraud_loss
    gmv = approved.assessment.amount_minor + 1000
    assert (loss.currency, loss.gmv_approved_minor, loss.fraud_loss_minor) == ("EUR", gmv, 400)
    assert Decimal(loss.fraud_loss_rate) == (Decimal(400) / gmv).quantize(Decimal("0.000001"))
    with pytest.raises(Unprocessable):
        await b.handle(GetKpis(from_time=NOW, to_time=NOW), OPS)
