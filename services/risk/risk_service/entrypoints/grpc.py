"""gRPC servicer ecomops.risk.v1.RiskService: decode, send the message to the bus, encode —
the same messages and handlers as REST."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from ecomops.common.v1 import common_pb2
from ecomops.risk.v1 import risk_service_pb2 as pb
from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for, invalid_request
from ecomops_platform.iso_codes import is_country, is_currency
from ecomops_platform.ports import check_key
from ecomops_platform.timestamps import optional_timestamp, to_datetime, to_timestamp

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
    AssessmentView,
    BlocklistEntryView,
    LabelView,
    ModelView,
    ReasonView,
    ReviewView,
    RuleSetView,
)
from .schemas import MAX_AMOUNT, MAX_LINES, MAX_QUANTITY, DecisionIn

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["RiskService"].full_name

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


def _dt(value: Timestamp, present: bool, name: str) -> datetime | None:
    return to_datetime(value, name) if present else None


def _reasons(items: Sequence[ReasonView]) -> list[pb.Reason]:
    return [
        pb.Reason(code=r.code, detail=r.detail, weight=r.weight, shadow=r.shadow) for r in items
    ]


def assessment_pb(view: AssessmentView) -> pb.Assessment:
    return pb.Assessment(
        assessment_id=view.assessment_id,
        order_id=view.order_id,
        customer_id=view.customer_id,
        score=view.score,
        decision=DECISIONS[view.decision],
        reasons=_reasons(view.reasons),
        rules_version=view.rules_version,
        model_version=view.model_version,
        amount=common_pb2.Money(amount_minor=view.amount_minor, currency=view.currency),
        review_id=view.review_id or "",
        assessed_at=to_timestamp(view.assessed_at),
    )


def rule_set_pb(rules: RuleSetView) -> pb.RuleSet:
    return pb.RuleSet(
        version=rules.version,
        review_threshold=rules.review_threshold,
        reject_threshold=rules.reject_threshold,
        model_weight=rules.model_weight,
        rules=[
            pb.Rule(code=r.code, type=r.type, weight=r.weight, shadow=r.shadow, params=r.params)
            for r in rules.rules
        ],
        created_by=rules.created_by,
        created_at=optional_timestamp(rules.created_at),
    )


def review_pb(review: ReviewView) -> pb.Review:
    return pb.Review(
        review_id=review.review_id,
        assessment_id=review.assessment_id,
        order_id=review.order_id,
        customer_id=review.customer_id,
        status=REVIEW_STATUSES.get(review.status, pb.REVIEW_STATUS_UNSPECIFIED),
        decision=REVIEW_DECISIONS.get(review.decision or "", pb.REVIEW_DECISION_UNSPECIFIED),
        analyst=review.analyst or "",
        note=review.note or "",
        score=review.score,
        reasons=_reasons(review.reasons),
        amount=common_pb2.Money(amount_minor=review.amount_minor, currency=review.currency),
        created_at=to_timestamp(review.created_at),
        resolved_at=optional_timestamp(review.resolved_at),
        close_reason=review.close_reason or "",
    )


def entry_pb(entry: BlocklistEntryView) -> pb.BlocklistEntry:
    return pb.BlocklistEntry(
        kind=KIND_PB[BlocklistKind(entry.kind)],
        value=entry.value,
        reason=entry.reason,
        created_by=entry.created_by,
        created_at=to_timestamp(entry.created_at),
    )


def model_pb(view: ModelView) -> pb.ModelInfo:
    return pb.ModelInfo(
        version=view.version,
        algorithm=view.algorithm,
        features=view.features,
        metrics=view.metrics,
        sha256=view.sha256,
        active=view.active,
        created_at=to_timestamp(view.created_at),
    )


def label_pb(label: LabelView) -> pb.OrderLabel:
    return pb.OrderLabel(
        label_id=label.label_id,
        order_id=label.order_id,
        label=pb.LABEL_FRAUD if label.label == "fraud" else pb.LABEL_LEGITIMATE,
        source=pb.LABEL_SOURCE_CHARGEBACK
        if label.source == "chargeback"
        else pb.LABEL_SOURCE_ANALYST,
        amount_minor=label.amount_minor or 0,
        created_by=label.created_by,
        created_at=to_timestamp(label.created_at),
    )


def _kind(value: pb.BlocklistKind.ValueType) -> BlocklistKind:
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
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def AssessOrder(
        self, request: pb.AssessOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssessOrderResponse:
        caller = caller_for(AssessOrder)
        result = await self.bus.handle(AssessOrder(order=facts_from(request)), caller)
        return pb.AssessOrderResponse(assessment=assessment_pb(result.assessment))

    async def GetAssessment(
        self, request: pb.GetAssessmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAssessmentResponse:
        caller = caller_for(GetAssessment)
        view = await self.bus.handle(GetAssessment(assessment_id=request.assessment_id), caller)
        return pb.GetAssessmentResponse(assessment=assessment_pb(view))

    async def ListAssessments(
        self, request: pb.ListAssessmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAssessmentsResponse:
        caller = caller_for(FindAssessments)
        found = await self.bus.handle(FindAssessments(order_id=request.order_id), caller)
        return pb.ListAssessmentsResponse(items=[assessment_pb(v) for v in found.items])

    async def GetRules(
        self, request: pb.GetRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRulesResponse:
        caller = caller_for(GetRules)
        rules = await self.bus.handle(GetRules(version=request.version or None), caller)
        return pb.GetRulesResponse(rule_set=rule_set_pb(rules))

    async def PutRules(
        self, request: pb.PutRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutRulesResponse:
        caller = caller_for(PutRules)
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
        rules = await self.bus.handle(PutRules(definition=definition), caller)
        return pb.PutRulesResponse(rule_set=rule_set_pb(rules))

    async def ListRuleVersions(
        self, request: pb.ListRuleVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRuleVersionsResponse:
        caller = caller_for(ListRuleVersions)
        limit, cursor = _page(request.page)
        page = await self.bus.handle(ListRuleVersions(limit=limit, cursor=cursor), caller)
        return pb.ListRuleVersionsResponse(
            rule_sets=[rule_set_pb(r) for r in page.items],
            page=common_pb2.PageResponse(next_cursor=page.next_cursor or ""),
        )

    async def PutBlocklistEntry(
        self, request: pb.PutBlocklistEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutBlocklistEntryResponse:
        caller = caller_for(PutBlocklistEntry)
        command = PutBlocklistEntry(
            kind=_kind(request.kind), value=request.value, reason=request.reason
        )
        entry = await self.bus.handle(command, caller)
        return pb.PutBlocklistEntryResponse(entry=entry_pb(entry))

    async def DeleteBlocklistEntry(
        self, request: pb.DeleteBlocklistEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteBlocklistEntryResponse:
        caller = caller_for(DeleteBlocklistEntry)
        await self.bus.handle(
            DeleteBlocklistEntry(kind=_kind(request.kind), value=request.value), caller
        )
        return pb.DeleteBlocklistEntryResponse()

    async def ListBlocklist(
        self, request: pb.ListBlocklistRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBlocklistResponse:
        caller = caller_for(ListBlocklist)
        limit, cursor = _page(request.page)
        query = ListBlocklist(kind=KINDS.get(request.kind), limit=limit, cursor=cursor)
        page = await self.bus.handle(query, caller)
        return pb.ListBlocklistResponse(
            entries=[entry_pb(e) for e in page.items],
            page=common_pb2.PageResponse(next_cursor=page.next_cursor or ""),
        )

    async def ListReviews(
        self, request: pb.ListReviewsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReviewsResponse:
        caller = caller_for(ListReviews)
        status = {
            pb.REVIEW_STATUS_OPEN: ReviewStatus.OPEN,
            pb.REVIEW_STATUS_RESOLVED: ReviewStatus.RESOLVED,
            pb.REVIEW_STATUS_CLOSED: ReviewStatus.CLOSED,
        }.get(request.status)
        limit, cursor = _page(request.page)
        page = await self.bus.handle(ListReviews(status=status, limit=limit, cursor=cursor), caller)
        return pb.ListReviewsResponse(
            reviews=[review_pb(r) for r in page.items],
            page=common_pb2.PageResponse(next_cursor=page.next_cursor or ""),
        )

    async def GetReview(
        self, request: pb.GetReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReviewResponse:
        caller = caller_for(GetReview)
        review = await self.bus.handle(GetReview(review_id=request.review_id), caller)
        return pb.GetReviewResponse(review=review_pb(review))

    async def DecideReview(
        self, request: pb.DecideReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecideReviewResponse:
        caller = caller_for(DecideReview)
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
            raise invalid_request(exc) from None
        command = DecideReview(review_id=request.review_id, decision=decision, note=body.note)
        return pb.DecideReviewResponse(review=review_pb(await self.bus.handle(command, caller)))

    async def CreateLabel(
        self, request: pb.CreateLabelRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateLabelResponse:
        caller = caller_for(CreateLabel)
        key = check_key(request.idempotency_key, required=True)
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
        command = CreateLabel(
            order_id=request.order_id,
            label=label,
            source=source,
            amount_minor=request.amount_minor or None,
        )
        created = await self.bus.handle(command, caller, idempotency_key=key)
        return pb.CreateLabelResponse(label=label_pb(created))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        caller = caller_for(ListModels)
        models = await self.bus.handle(ListModels(), caller)
        return pb.ListModelsResponse(models=[model_pb(m) for m in models.items])

    async def ActivateModel(
        self, request: pb.ActivateModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ActivateModelResponse:
        caller = caller_for(ActivateModel)
        view = await self.bus.handle(ActivateModel(version=request.version), caller)
        return pb.ActivateModelResponse(model=model_pb(view))

    async def GetKpis(
        self, request: pb.GetKpisRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetKpisResponse:
        caller = caller_for(GetKpis)
        query = GetKpis(
            from_time=_dt(request.from_time, request.HasField("from_time"), "from_time"),
            to_time=_dt(request.to_time, request.HasField("to_time"), "to_time"),
        )
        kpis = await self.bus.handle(query, caller)
        return pb.GetKpisResponse(
            from_time=to_timestamp(kpis.from_time),
            to_time=to_timestamp(kpis.to_time),
            assessments=kpis.assessments,
            approval_rate=kpis.approval_rate,
            review_rate=kpis.review_rate,
            reject_rate=kpis.reject_rate,
            reject_precision=kpis.reject_precision or "",
            review_precision=kpis.review_precision or "",
            fraud_loss=[
                pb.CurrencyLoss(
                    currency=loss.currency,
                    gmv_approved_minor=loss.gmv_approved_minor,
                    fraud_loss_minor=loss.fraud_loss_minor,
                    fraud_loss_rate=loss.fraud_loss_rate,
                )
                for loss in kpis.fraud_loss
            ],
            labelled=kpis.labelled,
        )
