"""gRPC servicer ecomops.recommendation.v1.RecommendationService: the same handlers as REST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from ecomops.recommendation.v1 import recommendation_service_pb2 as pb
from ecomops.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ecomops_platform.auth import Role
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.grpc_server import authorize, to_datetime
from ecomops_platform.idempotency import check_key, run_idempotent

from ..adapters.events import PB_TO_BEHAVIOR, timestamp
from ..domain.models import BehaviorEvent, EntryError
from ..service_layer import handlers
from ..settings import RecommendationSettings

SERVICE_NAME = "ecomops.recommendation.v1.RecommendationService"
STAFF = (Role.OPS, Role.SERVICE)
READ_ROLES = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)

SEGMENT_TO_PB = {
    "champions": pb.SEGMENT_CHAMPIONS,
    "loyal": pb.SEGMENT_LOYAL,
    "potential_loyalist": pb.SEGMENT_POTENTIAL_LOYALIST,
    "new": pb.SEGMENT_NEW,
    "promising": pb.SEGMENT_PROMISING,
    "needs_attention": pb.SEGMENT_NEEDS_ATTENTION,
    "at_risk": pb.SEGMENT_AT_RISK,
    "hibernating": pb.SEGMENT_HIBERNATING,
    "lost": pb.SEGMENT_LOST,
}
CHURN_TO_PB = {"low": pb.CHURN_RISK_LOW, "medium": pb.CHURN_RISK_MEDIUM, "high": pb.CHURN_RISK_HIGH}


def _limit(value: int) -> int:
    if value == 0:
        return 10
    if not 1 <= value <= 100:
        raise Unprocessable("limit must be between 1 and 100", code="invalid-limit")
    return value


def _items(items: list[handlers.Item]) -> list[pb.RecommendedItem]:
    return [pb.RecommendedItem(sku=i.sku, score=i.score, reason=i.reason) for i in items]


def _rate(value: Any) -> str:
    return "" if value is None else str(value)


def _bounded(name: str, value: str, most: int) -> None:
    """The REST parameters' length limits (a lookup by an over-long value is a 422, not an
    empty answer)."""
    if len(value) > most:
        raise Unprocessable(f"{name}: at most {most} characters", code="validation-error")


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], settings: RecommendationSettings
    ) -> None:
        self.uow = uow_factory
        self.settings = settings
        self.params = settings.model_params()
        self.policy = handlers.IngestionPolicy(
            max_batch=settings.max_batch,
            max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
            max_age=timedelta(days=settings.max_event_age_days),
        )

    async def RecordBehaviorEvents(
        self, request: pb.RecordBehaviorEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordBehaviorEventsResponse:
        caller = authorize(Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
        errors: list[EntryError] = []
        events: list[BehaviorEvent] = []
        for index, e in enumerate(request.events):
            if e.type not in PB_TO_BEHAVIOR:
                errors.append(
                    EntryError(index, "type", "type must be view, add_to_cart or remove_from_cart")
                )
            occurred_at = datetime.now(UTC)
            if not e.HasField("occurred_at"):
                errors.append(EntryError(index, "occurred_at", "occurred_at is required"))
            else:
                try:
                    occurred_at = to_datetime(e.occurred_at, "occurred_at")
                except Unprocessable as exc:
                    errors.append(EntryError(index, "occurred_at", exc.detail))
            events.append(
                BehaviorEvent(
                    type=PB_TO_BEHAVIOR.get(e.type, next(iter(PB_TO_BEHAVIOR.values()))),
                    sku=e.sku,
                    customer_id=e.customer_id or None,
                    session_id=e.session_id or None,
                    occurred_at=occurred_at,
                )
            )
        key = check_key(request.idempotency_key or None, required=False)
        uow = self.uow()
        if key is None:
            n = await handlers.record_behavior(
                uow, events, caller=caller, policy=self.policy, decode_errors=errors
            )
            return pb.RecordBehaviorEventsResponse(accepted=n)

        async def action() -> tuple[int, Any]:
            accepted = await handlers.record_behavior(
                uow, events, caller=caller, policy=self.policy, decode_errors=errors
            )
            return 202, {"accepted": accepted}

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="record_behavior_events",
            key=key,
            payload=MessageToDict(request),
            action=action,
        )
        return pb.RecordBehaviorEventsResponse(accepted=int(stored.body["accepted"]))

    async def GetCustomerRecommendations(
        self, request: pb.GetCustomerRecommendationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerRecommendationsResponse:
        caller = authorize(Role.CUSTOMER, *STAFF)
        _bounded("customer_id", request.customer_id, 128)
        if not caller.may_see(request.customer_id):
            raise NotFound(f"customer {request.customer_id} not found")
        items = await handlers.customer_recommendations(
            self.uow(),
            request.customer_id,
            _limit(request.limit),
            self.params,
            exclude_purchased=self.settings.exclude_purchased,
        )
        return pb.GetCustomerRecommendationsResponse(items=_items(items))

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSimilarItemsResponse:
        authorize(*READ_ROLES)
        _bounded("sku", request.sku, 128)
        items = await handlers.similar_items(
            self.uow(), request.sku, _limit(request.limit), self.params
        )
        return pb.GetSimilarItemsResponse(items=_items(items))

    async def GetBoughtTogether(
        self, request: pb.GetBoughtTogetherRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBoughtTogetherResponse:
        authorize(*READ_ROLES)
        _bounded("sku", request.sku, 128)
        items = await handlers.bought_together(
            self.uow(), request.sku, _limit(request.limit), self.params
        )
        return pb.GetBoughtTogetherResponse(items=_items(items))

    async def GetTrending(
        self, request: pb.GetTrendingRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrendingResponse:
        authorize(*READ_ROLES)
        _bounded("category", request.category, 200)
        items = await handlers.trending(
            self.uow(), request.category or None, _limit(request.limit), self.params
        )
        return pb.GetTrendingResponse(items=_items(items))

    async def GetCustomerSegment(
        self, request: pb.GetCustomerSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerSegmentResponse:
        caller = authorize(Role.CUSTOMER, *STAFF)
        if not caller.may_see(request.customer_id):
            raise NotFound(f"customer {request.customer_id} not found")
        row = await handlers.get_segment(self.uow(), request.customer_id)
        return pb.GetCustomerSegmentResponse(
            customer_id=str(row["customer_id"]),
            recency_days=int(str(row["recency_days"])),
            frequency=int(str(row["frequency"])),
            monetary_minor=int(str(row["monetary_minor"])),
            currency=str(row["currency"]),
            r_score=int(str(row["r_score"])),
            f_score=int(str(row["f_score"])),
            m_score=int(str(row["m_score"])),
            segment=SEGMENT_TO_PB[str(row["segment"])],
            churn_risk=CHURN_TO_PB[str(row["churn_risk"])],
            computed_at=timestamp(row["computed_at"]),  # type: ignore[arg-type]
        )

    async def ListSegmentCounts(
        self, request: pb.ListSegmentCountsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentCountsResponse:
        authorize(*STAFF)
        counts = await handlers.segment_counts(self.uow())
        return pb.ListSegmentCountsResponse(
            counts=[
                pb.SegmentCount(segment=SEGMENT_TO_PB[s], customers=n) for s, n in counts.items()
            ],
            total=sum(counts.values()),
        )

    async def GetFunnel(
        self, request: pb.GetFunnelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFunnelResponse:
        authorize(*STAFF)
        _bounded("category", request.category, 200)
        start = to_datetime(getattr(request, "from"), "from") if request.HasField("from") else None
        end = to_datetime(request.to, "to") if request.HasField("to") else None
        f = await handlers.funnel(self.uow(), start, end, request.category or None)
        response = pb.GetFunnelResponse(
            to=timestamp(f.end),
            category=f.category or "",
            views=f.views,
            add_to_carts=f.add_to_carts,
            orders=f.orders,
            paid=f.paid,
            view_to_cart_rate=_rate(f.view_to_cart_rate),
            cart_to_order_rate=_rate(f.cart_to_order_rate),
            order_to_paid_rate=_rate(f.order_to_paid_rate),
            view_to_paid_rate=_rate(f.view_to_paid_rate),
        )
        getattr(response, "from").CopyFrom(timestamp(f.start))
        return response


def registrar(
    uow_factory: Callable[[], UnitOfWork], settings: RecommendationSettings
) -> Callable[[grpc.aio.Server], None]:
    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_RecommendationServiceServicer_to_server(  # type: ignore[no-untyped-call]
            RecommendationServicer(uow_factory, settings), server
        )

    return register
