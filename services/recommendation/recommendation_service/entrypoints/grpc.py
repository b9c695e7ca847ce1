"""gRPC servicer ecomops.recommendation.v1.RecommendationService: decode, call the bus, encode
(the same messages as REST)."""

from __future__ import annotations

from decimal import Decimal

import grpc

from ecomops.recommendation.v1 import recommendation_service_pb2 as pb
from ecomops.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for
from ecomops_platform.ports import check_key
from ecomops_platform.timestamps import to_datetime, to_timestamp, utcnow

from ..domain.models import BehaviorEvent, ChurnRisk, EntryError, SegmentName
from ..domain.personal import Mode
from ..service_layer.events import PB_TO_BEHAVIOR
from ..service_layer.funnel import GetFunnel
from ..service_layer.ingestion import RecordBehaviorEvents, RecordBehaviorEventsOnce
from ..service_layer.ports import Deps, RecommendationUnitOfWork
from ..service_layer.segments import GetCustomerSegment, ListSegmentCounts
from ..service_layer.serving import (
    GetBoughtTogether,
    GetCustomerRecommendations,
    GetSimilarItems,
    GetTrending,
)
from ..service_layer.views import Recommendations

SERVICE_NAME = "ecomops.recommendation.v1.RecommendationService"

Bus = MessageBus[RecommendationUnitOfWork, Deps]

SEGMENT_TO_PB = {
    SegmentName.CHAMPIONS: pb.SEGMENT_CHAMPIONS,
    SegmentName.LOYAL: pb.SEGMENT_LOYAL,
    SegmentName.POTENTIAL_LOYALIST: pb.SEGMENT_POTENTIAL_LOYALIST,
    SegmentName.NEW: pb.SEGMENT_NEW,
    SegmentName.PROMISING: pb.SEGMENT_PROMISING,
    SegmentName.NEEDS_ATTENTION: pb.SEGMENT_NEEDS_ATTENTION,
    SegmentName.AT_RISK: pb.SEGMENT_AT_RISK,
    SegmentName.HIBERNATING: pb.SEGMENT_HIBERNATING,
    SegmentName.LOST: pb.SEGMENT_LOST,
}
CHURN_TO_PB = {
    ChurnRisk.LOW: pb.CHURN_RISK_LOW,
    ChurnRisk.MEDIUM: pb.CHURN_RISK_MEDIUM,
    ChurnRisk.HIGH: pb.CHURN_RISK_HIGH,
}


def _limit(value: int) -> int:
    if value == 0:
        return 10
    if not 1 <= value <= 100:
        raise Unprocessable("limit must be between 1 and 100", code="invalid-limit")
    return value


MODE_FROM_PB: dict[int, Mode] = {
    pb.RECOMMENDATION_MODE_UNSPECIFIED: Mode.PERSONAL,
    pb.RECOMMENDATION_MODE_PERSONAL: Mode.PERSONAL,
    pb.RECOMMENDATION_MODE_DISCOVER: Mode.DISCOVER,
}


def _mode(value: int) -> Mode:
    mode = MODE_FROM_PB.get(int(value))
    if mode is None:
        raise Unprocessable("mode must be personal or discover", code="invalid-mode")
    return mode


def _items(result: Recommendations) -> list[pb.RecommendedItem]:
    return [pb.RecommendedItem(sku=i.sku, score=i.score, reason=i.reason) for i in result.items]


def _rate(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _bounded(name: str, value: str, most: int) -> None:
    """The REST parameters' length limits (a lookup by an over-long value is a 422, not an
    empty answer)."""
    if len(value) > most:
        raise Unprocessable(f"{name}: at most {most} characters", code="validation-error")


def _behavior_events(
    request: pb.RecordBehaviorEventsRequest,
) -> tuple[tuple[BehaviorEvent, ...], tuple[EntryError, ...]]:
    """The entries, and what is wrong with them already (the handler reports both together)."""
    errors: list[EntryError] = []
    events: list[BehaviorEvent] = []
    for index, e in enumerate(request.events):
        if e.type not in PB_TO_BEHAVIOR:
            errors.append(
                EntryError(index, "type", "type must be view, add_to_cart or remove_from_cart")
            )
        occurred_at = utcnow()
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
    return tuple(events), tuple(errors)


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def RecordBehaviorEvents(
        self, request: pb.RecordBehaviorEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordBehaviorEventsResponse:
        caller = caller_for(RecordBehaviorEvents)
        events, errors = _behavior_events(request)
        key = check_key(request.idempotency_key or None, required=False)
        command = RecordBehaviorEventsOnce if key is not None else RecordBehaviorEvents
        result = await self.bus.handle(
            command(events=events, decode_errors=errors), caller, idempotency_key=key
        )
        return pb.RecordBehaviorEventsResponse(accepted=result.accepted)

    async def GetCustomerRecommendations(
        self, request: pb.GetCustomerRecommendationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerRecommendationsResponse:
        caller = caller_for(GetCustomerRecommendations)
        _bounded("customer_id", request.customer_id, 128)
        result = await self.bus.handle(
            GetCustomerRecommendations(
                customer_id=request.customer_id,
                limit=_limit(request.limit),
                mode=_mode(request.mode),
            ),
            caller,
        )
        return pb.GetCustomerRecommendationsResponse(items=_items(result))

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSimilarItemsResponse:
        caller = caller_for(GetSimilarItems)
        _bounded("sku", request.sku, 128)
        result = await self.bus.handle(
            GetSimilarItems(sku=request.sku, limit=_limit(request.limit)), caller
        )
        return pb.GetSimilarItemsResponse(items=_items(result))

    async def GetBoughtTogether(
        self, request: pb.GetBoughtTogetherRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBoughtTogetherResponse:
        caller = caller_for(GetBoughtTogether)
        _bounded("sku", request.sku, 128)
        result = await self.bus.handle(
            GetBoughtTogether(sku=request.sku, limit=_limit(request.limit)), caller
        )
        return pb.GetBoughtTogetherResponse(items=_items(result))

    async def GetTrending(
        self, request: pb.GetTrendingRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrendingResponse:
        caller = caller_for(GetTrending)
        _bounded("category", request.category, 200)
        result = await self.bus.handle(
            GetTrending(category=request.category or None, limit=_limit(request.limit)), caller
        )
        return pb.GetTrendingResponse(items=_items(result))

    async def GetCustomerSegment(
        self, request: pb.GetCustomerSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerSegmentResponse:
        caller = caller_for(GetCustomerSegment)
        seg = await self.bus.handle(GetCustomerSegment(customer_id=request.customer_id), caller)
        return pb.GetCustomerSegmentResponse(
            customer_id=seg.customer_id,
            recency_days=seg.recency_days,
            frequency=seg.frequency,
            monetary_minor=seg.monetary_minor,
            currency=seg.currency,
            r_score=seg.r_score,
            f_score=seg.f_score,
            m_score=seg.m_score,
            segment=SEGMENT_TO_PB[seg.segment],
            churn_risk=CHURN_TO_PB[seg.churn_risk],
            computed_at=to_timestamp(seg.computed_at),
        )

    async def ListSegmentCounts(
        self, request: pb.ListSegmentCountsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentCountsResponse:
        caller = caller_for(ListSegmentCounts)
        result = await self.bus.handle(ListSegmentCounts(), caller)
        return pb.ListSegmentCountsResponse(
            counts=[
                pb.SegmentCount(segment=SEGMENT_TO_PB[c.segment], customers=c.customers)
                for c in result.counts
            ],
            total=result.total,
        )

    async def GetFunnel(
        self, request: pb.GetFunnelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFunnelResponse:
        caller = caller_for(GetFunnel)
        _bounded("category", request.category, 200)
        start = to_datetime(getattr(request, "from"), "from") if request.HasField("from") else None
        end = to_datetime(request.to, "to") if request.HasField("to") else None
        f = await self.bus.handle(
            GetFunnel(start=start, end=end, category=request.category or None), caller
        )
        response = pb.GetFunnelResponse(
            to=to_timestamp(f.end),
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
        getattr(response, "from").CopyFrom(to_timestamp(f.start))
        return response
