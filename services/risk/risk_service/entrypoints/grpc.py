"""gRPC servicer ecomops.risk.v1.RiskService: the same handlers as REST."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from ecomops.common.v1 import common_pb2
from ecomops.risk.v1 import risk_service_pb2 as pb
from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.auth import Role
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import authorize, to_datetime
from ecomops_platform.iso_codes import is_country, is_currency
from ecomops_platform.runtime import Service

from ..domain.models import (
    BlocklistKind,
    LabelSource,
    LabelValue,
    Line,
    OrderFacts,
    ReviewDecision,
    ReviewStatus,
    RuleSet,
)
from ..service_layer import handlers
from ..service_layer.handlers import RiskContext
from .schemas import MAX_AMOUNT, MAX_LINES, MAX_QUANTITY, DecisionIn

SERVICE_NAME = "ecomops.risk.v1.RiskService"

DECISIONS = {
    "approve": pb.DECISION_APPROVE,
    "review": pb.DECISION_REVIEW,
    "reject": pb.DECISION_REJECT,
}
REVIEW_STATUSES = {
    "open": pb.REVIEW_STATUS_OPEN,
    "resolved": pb.REVIEW_STATUS_RESOLVED,
    "closed": pb.REVIEW_STATUS_CLOSED,
}
REVIEW_DECISIONS = {
    "approve": pb.REVIEW_DECISION_APPROVE,
    "reject": pb.REVIEW_DECISION_REJECT,
}
KINDS = {
    pb.BLOCKLIST_KIND_EMAIL: BlocklistKind.EMAIL,
    pb.BLOCKLIST_KIND_IP: BlocklistKind.IP,
    pb.BLOCKLIST_KIND_DEVICE: BlocklistKind.DEVICE,
    pb.BLOCKLIST_KIND_PAYMENT_FINGERPRINT: BlocklistKind.PAYMENT_FINGERPRINT,
    pb.BLOCKLIST_KIND_CUSTOMER: BlocklistKind.CUSTOMER,
}
KIND_PB = {v: k for k, v in KINDS.items()}


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def _dt(value: Timestamp, present: bool, name: str) -> datetime | None:
    return to_datetime(value, name) if present else None


def _reasons(items: Any) -> list[pb.Reason]:
    return [
        pb.Reason(code=r["code"], detail=r["detail"], weight=str(r["weight"]), shadow=r["shadow"])
        for r in items
    ]


def assessment_pb(view: Mapping[str, Any]) -> pb.Assessment:
    return pb.Assessment(
        assessment_id=view["assessment_id"],
        order_id=view["order_id"],
        customer_id=view["customer_id"],
        score=str(view["score"]),
        decision=DECISIONS[view["decision"]],
        reasons=_reasons(view["reasons"]),
        rules_version=int(view["rules_version"]),
        model_version=view["model_version"],
        amount=common_pb2.Money(amount_minor=view["amount_minor"], currency=view["currency"]),
        review_id=view["review_id"] or "",
        assessed_at=ts(view["assessed_at"]),
    )


def rule_set_pb(rules: RuleSet) -> pb.RuleSet:
    data = rules.to_json()
    return pb.RuleSet(
        version=rules.version,
        review_threshold=data["review_threshold"],
        reject_threshold=data["reject_threshold"],
        model_weight=data["model_weight"],
        rules=[
            pb.Rule(
                code=r["code"],
                type=r["type"],
                weight=r["weight"],
                shadow=r["shadow"],
                params=r["params"],
            )
            for r in data["rules"]
        ],
        created_by=rules.created_by,
        created_at=ts(rules.created_at),
    )


def review_pb(row: Any) -> pb.Review:
    return pb.Review(
        review_id=row.review_id,
        assessment_id=row.assessment_id,
        order_id=row.order_id,
        customer_id=row.customer_id,
        status=REVIEW_STATUSES.get(row.status, pb.REVIEW_STATUS_UNSPECIFIED),
        decision=REVIEW_DECISIONS.get(row.decision or "", pb.REVIEW_DECISION_UNSPECIFIED),
        analyst=row.analyst or "",
        note=row.note or "",
        score=str(row.score),
        reasons=_reasons(row.reasons),
        amount=common_pb2.Money(amount_minor=row.amount_minor, currency=row.currency),
        created_at=ts(row.created_at),
        resolved_at=ts(row.resolved_at),
        close_reason=row.close_reason or "",
    )


def entry_pb(row: Any) -> pb.BlocklistEntry:
    return pb.BlocklistEntry(
        kind=KIND_PB[BlocklistKind(row.kind)],
        value=row.value,
        reason=row.reason,
        created_by=row.created_by,
        created_at=ts(row.created_at),
    )


def model_pb(view: Mapping[str, Any]) -> pb.ModelInfo:
    return pb.ModelInfo(
        version=view["version"],
        algorithm=view["algorithm"],
        features=view["features"],
        metrics=view["metrics"],
        sha256=view["sha256"],
        active=view["active"],
        created_at=ts(view["created_at"]),
    )


def _kind(value: Any) -> BlocklistKind:
    kind = KINDS.get(value)
    if kind is None:
        raise Unprocessable("kind is required", code="validation-error")
    return kind


def _page(page: common_pb2.PageRequest) -> tuple[int | None, str | None]:
    return (page.limit or None), (page.cursor or None)


def facts_from(req: pb.AssessOrderRequest) -> OrderFacts:
    """The same bounds as the REST schema (``schemas.AssessmentIn``)."""
    errors = []
    if not req.order_id or len(req.order_id) > 200:
        errors.append("order_id: 1..200 characters")
    if not req.customer_id or len(req.customer_id) > 200:
        errors.append("customer_id: 1..200 characters")
    if not 0 <= req.amount_minor <= MAX_AMOUNT:
        errors.append(f"amount_minor: 0..{MAX_AMOUNT}")
    if not is_currency(req.currency):
        errors.append("currency: ISO 4217, upper case")
    if not 1 <= len(req.lines) <= MAX_LINES:
        errors.append(f"lines: 1..{MAX_LINES}")
    for i, line in enumerate(req.lines):
        if (
            not 1 <= len(line.sku) <= 200
            or not 0 < line.quantity <= MAX_QUANTITY
            or not 0 <= line.unit_price_minor <= MAX_AMOUNT
        ):
            errors.append(f"lines.{i}: sku, quantity 1..{MAX_QUANTITY}, unit price 0..{MAX_AMOUNT}")
    for name in ("billing_country", "shipping_country"):
        value = getattr(req, name)
        if value and not is_country(value):
            errors.append(f"{name}: ISO 3166-1 alpha-2, upper case")
    for name, most in (("email", 320), ("device_id", 300), ("payment_fingerprint", 300)):
        if len(getattr(req, name)) > most:
            errors.append(f"{name}: at most {most} characters")
    if req.ip:
        try:
            ipaddress.ip_address(req.ip)
        except ValueError:
            errors.append("ip: an IPv4 or IPv6 address")
    if errors:
        raise Unprocessable("; ".join(errors), errors=errors)
    return OrderFacts(
        order_id=req.order_id,
        customer_id=req.customer_id,
        amount_minor=req.amount_minor,
        currency=req.currency,
        lines=tuple(Line(x.sku, x.quantity, x.unit_price_minor) for x in req.lines),
        email=req.email or None,
        ip=req.ip or None,
        device_id=req.device_id or None,
        payment_fingerprint=req.payment_fingerprint or None,
        billing_country=req.billing_country or None,
        shipping_country=req.shipping_country or None,
        account_created_at=_dt(
            req.account_created_at, req.HasField("account_created_at"), "account_created_at"
        ),
    )


class RiskServicer(pb_grpc.RiskServiceServicer):
    def __init__(self, service: Service, ctx: RiskContext) -> None:
        self.service = service
        self.ctx = ctx

    async def AssessOrder(self, request: Any, context: Any) -> pb.AssessOrderResponse:
        authorize(Role.SERVICE, Role.OPS)
        view, _ = await handlers.assess_order(self.service.uow(), self.ctx, facts_from(request))
        return pb.AssessOrderResponse(assessment=assessment_pb(view))

    async def GetAssessment(self, request: Any, context: Any) -> pb.GetAssessmentResponse:
        authorize(Role.SERVICE, Role.OPS)
        view = await handlers.get_assessment(self.service.uow(), request.assessment_id)
        return pb.GetAssessmentResponse(assessment=assessment_pb(view))

    async def GetRules(self, request: Any, context: Any) -> pb.GetRulesResponse:
        authorize(Role.OPS)
        rules = await handlers.get_rules(self.service.uow(), request.version or None)
        return pb.GetRulesResponse(rule_set=rule_set_pb(rules))

    async def PutRules(self, request: Any, context: Any) -> pb.PutRulesResponse:
        who = authorize(Role.OPS)
        rs = request.rule_set
        definition = {
            "review_threshold": rs.review_threshold,
            "reject_threshold": rs.reject_threshold,
            "model_weight": rs.model_weight or "0",
            "rules": [
                {
                    "code": r.code or None,
                    "type": r.type,
                    "weight": r.weight,
                    "shadow": r.shadow,
                    "params": dict(r.params),
                }
                for r in rs.rules
            ],
        }
        rules = await handlers.put_rules(self.service.uow(), definition, who.subject)
        return pb.PutRulesResponse(rule_set=rule_set_pb(rules))

    async def ListRuleVersions(self, request: Any, context: Any) -> pb.ListRuleVersionsResponse:
        authorize(Role.OPS)
        items, cursor = await handlers.list_rule_versions(self.service.uow(), *_page(request.page))
        return pb.ListRuleVersionsResponse(
            rule_sets=[rule_set_pb(r) for r in items],
            page=common_pb2.PageResponse(next_cursor=cursor or ""),
        )

    async def PutBlocklistEntry(self, request: Any, context: Any) -> pb.PutBlocklistEntryResponse:
        who = authorize(Role.OPS)
        row = await handlers.put_blocklist(
            self.service.uow(), _kind(request.kind), request.value, request.reason, who.subject
        )
        return pb.PutBlocklistEntryResponse(entry=entry_pb(row))

    async def DeleteBlocklistEntry(
        self, request: Any, context: Any
    ) -> pb.DeleteBlocklistEntryResponse:
        authorize(Role.OPS)
        await handlers.delete_blocklist(self.service.uow(), _kind(request.kind), request.value)
        return pb.DeleteBlocklistEntryResponse()

    async def ListBlocklist(self, request: Any, context: Any) -> pb.ListBlocklistResponse:
        authorize(Role.OPS)
        kind = KINDS.get(request.kind)
        rows, cursor = await handlers.list_blocklist(self.service.uow(), kind, *_page(request.page))
        return pb.ListBlocklistResponse(
            entries=[entry_pb(r) for r in rows],
            page=common_pb2.PageResponse(next_cursor=cursor or ""),
        )

    async def ListReviews(self, request: Any, context: Any) -> pb.ListReviewsResponse:
        authorize(Role.OPS)
        status = {
            pb.REVIEW_STATUS_OPEN: ReviewStatus.OPEN,
            pb.REVIEW_STATUS_RESOLVED: ReviewStatus.RESOLVED,
            pb.REVIEW_STATUS_CLOSED: ReviewStatus.CLOSED,
        }.get(request.status)
        rows, cursor = await handlers.list_reviews(self.service.uow(), status, *_page(request.page))
        return pb.ListReviewsResponse(
            reviews=[review_pb(r) for r in rows],
            page=common_pb2.PageResponse(next_cursor=cursor or ""),
        )

    async def GetReview(self, request: Any, context: Any) -> pb.GetReviewResponse:
        authorize(Role.OPS)
        return pb.GetReviewResponse(
            review=review_pb(await handlers.get_review(self.service.uow(), request.review_id))
        )

    async def DecideReview(self, request: Any, context: Any) -> pb.DecideReviewResponse:
        who = authorize(Role.OPS)
        decision = {
            pb.REVIEW_DECISION_APPROVE: ReviewDecision.APPROVE,
            pb.REVIEW_DECISION_REJECT: ReviewDecision.REJECT,
        }.get(request.decision)
        if decision is None:
            raise Unprocessable("decision must be approve or reject")
        # The REST request model is the one schema of this operation (note ≤ 2,000 characters).
        try:
            body = DecisionIn.model_validate({"decision": decision.value, "note": request.note})
        except ValidationError as exc:
            summary = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
            )
            raise Unprocessable(summary) from None
        row = await handlers.decide_review(
            self.service.uow(), request.review_id, decision, body.note, who.subject
        )
        return pb.DecideReviewResponse(review=review_pb(row))

    async def CreateLabel(self, request: Any, context: Any) -> pb.CreateLabelResponse:
        from ecomops_platform.idempotency import check_key, run_idempotent

        who = authorize(Role.OPS, Role.PARTNER)
        key = check_key(request.idempotency_key, required=True)
        assert key is not None
        label = {pb.LABEL_FRAUD: LabelValue.FRAUD, pb.LABEL_LEGITIMATE: LabelValue.LEGITIMATE}.get(
            request.label
        )
        source = {
            pb.LABEL_SOURCE_CHARGEBACK: LabelSource.CHARGEBACK,
            pb.LABEL_SOURCE_ANALYST: LabelSource.ANALYST,
        }.get(request.source)
        if (
            not request.order_id
            or label is None
            or source is None
            or not 0 <= request.amount_minor <= MAX_AMOUNT
        ):
            raise Unprocessable(
                f"order_id, label, source are required; amount_minor 0..{MAX_AMOUNT}"
            )
        uow = self.service.uow()

        async def action() -> tuple[int, Any]:
            values = await handlers.create_label(
                uow, request.order_id, label, source, request.amount_minor or None, who.subject
            )
            values["created_at"] = values["created_at"].isoformat()
            return 201, values

        stored = await run_idempotent(
            uow,
            caller=who.subject,
            operation="create_label",
            key=key,
            payload={
                "order_id": request.order_id,
                "label": label.value,
                "source": source.value,
                "amount_minor": request.amount_minor or None,
            },
            action=action,
        )
        body = stored.body
        return pb.CreateLabelResponse(
            label=pb.OrderLabel(
                label_id=body["label_id"],
                order_id=body["order_id"],
                label=pb.LABEL_FRAUD if body["label"] == "fraud" else pb.LABEL_LEGITIMATE,
                source=pb.LABEL_SOURCE_CHARGEBACK
                if body["source"] == "chargeback"
                else pb.LABEL_SOURCE_ANALYST,
                amount_minor=body["amount_minor"] or 0,
                created_by=body["created_by"],
                created_at=ts(datetime.fromisoformat(body["created_at"])),
            )
        )

    async def ListModels(self, request: Any, context: Any) -> pb.ListModelsResponse:
        authorize(Role.OPS)
        return pb.ListModelsResponse(models=[model_pb(m) for m in handlers.model_views(self.ctx)])

    async def ActivateModel(self, request: Any, context: Any) -> pb.ActivateModelResponse:
        who = authorize(Role.OPS)
        view = await handlers.activate_model(
            self.service.uow(), self.ctx, request.version, who.subject
        )
        return pb.ActivateModelResponse(model=model_pb(view))

    async def GetKpis(self, request: Any, context: Any) -> pb.GetKpisResponse:
        authorize(Role.OPS)
        result = await handlers.kpis(
            self.service.uow(),
            _dt(request.from_time, request.HasField("from_time"), "from_time"),
            _dt(request.to_time, request.HasField("to_time"), "to_time"),
        )
        return pb.GetKpisResponse(
            from_time=ts(result["from"]),
            to_time=ts(result["to"]),
            assessments=result["assessments"],
            approval_rate=result["approval_rate"],
            review_rate=result["review_rate"],
            reject_rate=result["reject_rate"],
            reject_precision=result["reject_precision"] or "",
            review_precision=result["review_precision"] or "",
            fraud_loss=[pb.CurrencyLoss(**loss) for loss in result["fraud_loss"]],
            labelled=result["labelled"],
        )


def registrar(service: Service, ctx: RiskContext) -> Callable[[grpc.aio.Server], None]:
    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_RiskServiceServicer_to_server(  # type: ignore[no-untyped-call]
            RiskServicer(service, ctx), server
        )

    return register
