"""REST API of the risk service (/v1). Thin: decode, call a handler, encode."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from ecomops_platform.auth import Caller, Role
from ecomops_platform.idempotency import run_idempotent
from ecomops_platform.rest import require, stored_json
from ecomops_platform.runtime import Service
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
from ..service_layer import handlers
from ..service_layer.handlers import RiskContext
from . import schemas as s

Ops = Annotated[Caller, require(Role.OPS)]


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


def review_out(row: Any) -> s.ReviewOut:
    data = dict(row._mapping)
    data["score"] = str(data["score"])
    return s.ReviewOut(**data)


def build_router(service: Service, ctx: RiskContext) -> APIRouter:
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
        caller: Annotated[Caller, require(Role.SERVICE, Role.OPS)],
    ) -> Any:
        """Score an order (201); the same order_id again returns the stored assessment (200)."""
        view, created = await handlers.assess_order(service.uow(), ctx, facts_from(body))
        if not created:
            response.status_code = 200
        return view

    @router.get("/assessments/{assessment_id}", response_model=s.AssessmentOut)
    async def get_assessment(
        assessment_id: str, caller: Annotated[Caller, require(Role.SERVICE, Role.OPS)]
    ) -> Any:
        """Read one assessment."""
        return await handlers.get_assessment(service.uow(), assessment_id)

    @router.get("/rules", response_model=s.RuleSetOut)
    async def get_rules(
        caller: Ops, version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None
    ) -> Any:
        """The active rule set, or one version of it."""
        return s.rule_set_out(await handlers.get_rules(service.uow(), version))

    @router.put("/rules", response_model=s.RuleSetOut)
    async def put_rules(body: s.RuleSetIn, caller: Ops) -> Any:
        """Replace the rule set: a new version; 422 listing every error when invalid."""
        definition = jsonable_encoder(body, exclude_none=True)
        return s.rule_set_out(await handlers.put_rules(service.uow(), definition, caller.subject))

    @router.get("/rules/versions", response_model=s.RuleSetPage)
    async def list_rule_versions(
        caller: Ops, limit: int | None = None, cursor: str | None = None
    ) -> Any:
        """Rule set versions, newest first."""
        items, next_cursor = await handlers.list_rule_versions(service.uow(), limit, cursor)
        return s.RuleSetPage(items=[s.rule_set_out(r) for r in items], next_cursor=next_cursor)

    @router.put("/blocklist/{kind}/{value}", response_model=s.BlocklistOut)
    async def put_blocklist_entry(
        kind: BlocklistKind, value: str, caller: Ops, body: s.BlocklistIn | None = None
    ) -> Any:
        """Blocklist a value (idempotent; the reason is updated)."""
        reason = body.reason if body else ""
        row = await handlers.put_blocklist(service.uow(), kind, value, reason, caller.subject)
        return s.BlocklistOut(**row._mapping)

    @router.delete("/blocklist/{kind}/{value}", status_code=204)
    async def delete_blocklist_entry(kind: BlocklistKind, value: str, caller: Ops) -> Response:
        """Remove a blocklist entry (404 when not listed)."""
        await handlers.delete_blocklist(service.uow(), kind, value)
        return Response(status_code=204)

    @router.get("/blocklist", response_model=s.BlocklistPage)
    async def list_blocklist(
        caller: Ops,
        kind: BlocklistKind | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        """Blocklist entries by kind and value."""
        rows, next_cursor = await handlers.list_blocklist(service.uow(), kind, limit, cursor)
        return s.BlocklistPage(
            items=[s.BlocklistOut(**r._mapping) for r in rows], next_cursor=next_cursor
        )

    @router.get("/reviews", response_model=s.ReviewPage)
    async def list_reviews(
        caller: Ops,
        status: ReviewStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        """Review cases, oldest first."""
        rows, next_cursor = await handlers.list_reviews(service.uow(), status, limit, cursor)
        return s.ReviewPage(items=[review_out(r) for r in rows], next_cursor=next_cursor)

    @router.get("/reviews/{review_id}", response_model=s.ReviewOut)
    async def get_review(review_id: str, caller: Ops) -> Any:
        """One review case."""
        return review_out(await handlers.get_review(service.uow(), review_id))

    @router.post("/reviews/{review_id}/decision", response_model=s.ReviewOut)
    async def decide_review(review_id: str, body: s.DecisionIn, caller: Ops) -> Any:
        """Decide an open case (publishes RiskReviewResolved); 409 when already decided."""
        row = await handlers.decide_review(
            service.uow(), review_id, ReviewDecision(body.decision), body.note, caller.subject
        )
        return review_out(row)

    @router.post(
        "/labels",
        status_code=201,
        response_model=s.LabelOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_label(
        body: s.LabelIn,
        key: RequiredIdempotencyKey,
        caller: Annotated[Caller, require(Role.OPS, Role.PARTNER)],
    ) -> Any:
        """Record a label (chargeback or analyst verdict) for training and KPIs."""
        uow = service.uow()

        async def action() -> tuple[int, Any]:
            values = await handlers.create_label(
                uow,
                body.order_id,
                LabelValue(body.label),
                LabelSource(body.source),
                body.amount_minor,
                caller.subject,
            )
            return 201, jsonable_encoder(s.LabelOut(**values))

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="create_label",
            key=key,
            payload=body.model_dump(),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get("/models", response_model=s.ModelList)
    async def list_models(caller: Ops) -> Any:
        """Trained model versions in RISK_MODEL_DIR, newest first."""
        return s.ModelList(
            items=[s.ModelOut(**m) for m in handlers.model_views(ctx)],
            fallback_reason=ctx.models.last_error,
        )

    @router.post("/models/{version}/activate", response_model=s.ModelOut)
    async def activate_model(version: str, caller: Ops) -> Any:
        """Verify (sha256) and activate a model version; 422 when refused."""
        return s.ModelOut(
            **await handlers.activate_model(service.uow(), ctx, version, caller.subject)
        )

    @router.get("/risk/kpis", response_model=s.KpisOut, response_model_by_alias=True)
    async def get_kpis(
        caller: Ops,
        from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
        to: Rfc3339Time | None = None,
    ) -> Any:
        """Fraud KPIs of the assessments made in [from, to) (default: the last 30 days)."""
        result: dict[str, Any] = await handlers.kpis(service.uow(), from_, to)
        return s.KpisOut(**result)

    return router
