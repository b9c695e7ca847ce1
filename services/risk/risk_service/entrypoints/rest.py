"""REST API of the risk service (/v1): decode, send the message to the bus, encode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from ecomops_platform.auth import Caller
from ecomops_platform.rest import allowed, replayed
from ecomops_platform.strict import (
    IDEMPOTENCY_KEY_REQUIRED,
    INT32_MAX,
    RequiredIdempotencyKey,
    Rfc3339Time,
)

from ..domain.models import (
    BlocklistKind,
    LabelSource,
    LabelValue,
    Line,
    OrderFacts,
    ReviewDecision,
    ReviewStatus,
)
from ..service_layer.assessments import AssessOrder, FindAssessments, GetAssessment
from ..service_layer.blocklist import DeleteBlocklistEntry, ListBlocklist, PutBlocklistEntry
from ..service_layer.kpis import GetKpis
from ..service_layer.model_versions import ActivateModel, ListModels
from ..service_layer.ports import Bus
from ..service_layer.reviews import CreateLabel, DecideReview, GetReview, ListReviews
from ..service_layer.rules import GetRules, ListRuleVersions, PutRules
from ..service_layer.views import (
    AssessmentList,
    AssessmentView,
    BlocklistEntryView,
    BlocklistPage,
    LabelView,
    ModelsView,
    ModelView,
    ReviewPage,
    ReviewView,
    RuleSetPage,
    RuleSetView,
)
from . import schemas as s


def facts_from(body: s.AssessmentIn) -> OrderFacts:
    return OrderFacts(
        order_id=body.order_id,
        customer_id=body.customer_id,
        amount_minor=body.amount_minor,
        currency=body.currency,
        lines=tuple(Line(x.sku, x.quantity, x.unit_price_minor) for x in body.lines),
        email=body.email or None,
        ip=body.ip or None,
        device_id=body.device_id or None,
        payment_fingerprint=body.payment_fingerprint or None,
        billing_country=body.billing_country,
        shipping_country=body.shipping_country,
        account_created_at=body.account_created_at,
    )


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["risk"])

    @router.post(
        "/assessments",
        status_code=201,
        response_model=s.AssessmentOut,
        responses={200: {"model": s.AssessmentOut, "description": "The stored assessment"}},
    )
    async def create_assessment(
        body: s.AssessmentIn,
        response: Response,
        caller: Annotated[Caller, allowed(AssessOrder)],
    ) -> AssessmentView:
        """Score an order (201); the same order_id again returns the stored assessment (200)."""
        result = await bus.handle(AssessOrder(order=facts_from(body)), caller)
        if not result.created:
            response.status_code = 200
        return result.assessment

    @router.get("/assessments", response_model=s.AssessmentListOut)
    async def list_assessments(
        caller: Annotated[Caller, allowed(FindAssessments)],
        order_id: Annotated[str, Query(min_length=1, max_length=200)],
    ) -> AssessmentList:
        """The assessment of an order with its reasons (`items` is empty when the order was
        never assessed)."""
        return await bus.handle(FindAssessments(order_id=order_id), caller)

    @router.get("/assessments/{assessment_id}", response_model=s.AssessmentOut)
    async def get_assessment(
        assessment_id: str, caller: Annotated[Caller, allowed(GetAssessment)]
    ) -> AssessmentView:
        """Read one assessment."""
        return await bus.handle(GetAssessment(assessment_id=assessment_id), caller)

    @router.get("/rules", response_model=s.RuleSetOut)
    async def get_rules(
        caller: Annotated[Caller, allowed(GetRules)],
        version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    ) -> RuleSetView:
        """The active rule set, or one version of it."""
        return await bus.handle(GetRules(version=version), caller)

    @router.put("/rules", response_model=s.RuleSetOut)
    async def put_rules(
        body: s.RuleSetIn, caller: Annotated[Caller, allowed(PutRules)]
    ) -> RuleSetView:
        """Replace the rule set: a new version; 422 listing every error when invalid."""
        definition = jsonable_encoder(body, exclude_none=True)
        return await bus.handle(PutRules(definition=definition), caller)

    @router.get("/rules/versions", response_model=s.RuleSetPage)
    async def list_rule_versions(
        caller: Annotated[Caller, allowed(ListRuleVersions)],
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RuleSetPage:
        """Rule set versions, newest first."""
        return await bus.handle(ListRuleVersions(limit=limit, cursor=cursor), caller)

    @router.put("/blocklist/{kind}/{value}", response_model=s.BlocklistOut)
    async def put_blocklist_entry(
        kind: BlocklistKind,
        value: str,
        caller: Annotated[Caller, allowed(PutBlocklistEntry)],
        body: s.BlocklistIn | None = None,
    ) -> BlocklistEntryView:
        """Blocklist a value (idempotent; the reason is updated)."""
        reason = body.reason if body else ""
        return await bus.handle(PutBlocklistEntry(kind=kind, value=value, reason=reason), caller)

    @router.delete("/blocklist/{kind}/{value}", status_code=204)
    async def delete_blocklist_entry(
        kind: BlocklistKind, value: str, caller: Annotated[Caller, allowed(DeleteBlocklistEntry)]
    ) -> Response:
        """Remove a blocklist entry (404 when not listed)."""
        await bus.handle(DeleteBlocklistEntry(kind=kind, value=value), caller)
        return Response(status_code=204)

    @router.get("/blocklist", response_model=s.BlocklistPage)
    async def list_blocklist(
        caller: Annotated[Caller, allowed(ListBlocklist)],
        kind: BlocklistKind | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> BlocklistPage:
        """Blocklist entries by kind and value."""
        return await bus.handle(ListBlocklist(kind=kind, limit=limit, cursor=cursor), caller)

    @router.get("/reviews", response_model=s.ReviewPage)
    async def list_reviews(
        caller: Annotated[Caller, allowed(ListReviews)],
        status: ReviewStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ReviewPage:
        """Review cases, oldest first."""
        return await bus.handle(ListReviews(status=status, limit=limit, cursor=cursor), caller)

    @router.get("/reviews/{review_id}", response_model=s.ReviewOut)
    async def get_review(
        review_id: str, caller: Annotated[Caller, allowed(GetReview)]
    ) -> ReviewView:
        """One review case."""
        return await bus.handle(GetReview(review_id=review_id), caller)

    @router.post("/reviews/{review_id}/decision", response_model=s.ReviewOut)
    async def decide_review(
        review_id: str, body: s.DecisionIn, caller: Annotated[Caller, allowed(DecideReview)]
    ) -> ReviewView:
        """Decide an open case (publishes RiskReviewResolved); 409 when already decided."""
        command = DecideReview(
            review_id=review_id, decision=ReviewDecision(body.decision), note=body.note
        )
        return await bus.handle(command, caller)

    @router.post(
        "/labels",
        status_code=201,
        response_model=s.LabelOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_label(
        body: s.LabelIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CreateLabel)],
    ) -> LabelView:
        """Record a label (chargeback or analyst verdict) for training and KPIs."""
        command = CreateLabel(
            order_id=body.order_id,
            label=LabelValue(body.label),
            source=LabelSource(body.source),
            amount_minor=body.amount_minor,
        )
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    @router.get("/models", response_model=s.ModelList)
    async def list_models(caller: Annotated[Caller, allowed(ListModels)]) -> ModelsView:
        """Trained model versions in RISK_MODEL_DIR, newest first."""
        return await bus.handle(ListModels(), caller)

    @router.post("/models/{version}/activate", response_model=s.ModelOut)
    async def activate_model(
        version: str, caller: Annotated[Caller, allowed(ActivateModel)]
    ) -> ModelView:
        """Verify (sha256) and activate a model version; 422 when refused."""
        return await bus.handle(ActivateModel(version=version), caller)

    @router.get("/risk/kpis", response_model=s.KpisOut, response_model_by_alias=True)
    async def get_kpis(
        caller: Annotated[Caller, allowed(GetKpis)],
        from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
        to: Rfc3339Time | None = None,
    ) -> s.KpisOut:
        """Fraud KPIs of the assessments made in [from, to) (default: the last 30 days)."""
        return s.KpisOut.of(await bus.handle(GetKpis(from_time=from_, to_time=to), caller))

    return router
