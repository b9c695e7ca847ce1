"""REST API under /v1: decode, call the bus, encode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from ecomops_platform.auth import Caller, current_caller
from ecomops_platform.bus import MessageBus
from ecomops_platform.ports import check_key
from ecomops_platform.rest import RateLimiter, allowed, replayed
from ecomops_platform.strict import Rfc3339Time

from ..domain.models import BehaviorEvent, BehaviorType
from ..domain.personal import Mode
from ..service_layer.funnel import GetFunnel
from ..service_layer.ingestion import ANONYMOUS, RecordBehaviorEvents, RecordBehaviorEventsOnce
from ..service_layer.ports import Deps, RecommendationUnitOfWork
from ..service_layer.segments import GetCustomerSegment, ListSegmentCounts
from ..service_layer.serving import (
    GetBoughtTogether,
    GetCustomerRecommendations,
    GetSimilarItems,
    GetTrending,
)
from ..service_layer.views import Recommendations
from .schemas import (
    BehaviorBatchIn,
    BehaviorBatchOut,
    CustomerSegmentOut,
    FunnelOut,
    RecommendationsOut,
    SegmentCountOut,
    SegmentCountsOut,
)

Bus = MessageBus[RecommendationUnitOfWork, Deps]

Limit = Annotated[int, Query(ge=1, le=100, description="Most items to return (1..100)")]


async def optional_caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller | None:
    """The caller when a bearer token is sent (verified like everywhere), None when anonymous."""
    if not authorization:
        return None
    caller: Caller = await request.app.state.verifier.verify_header_async(authorization)
    current_caller.set(caller)
    return caller


def to_domain(body: BehaviorBatchIn) -> tuple[BehaviorEvent, ...]:
    return tuple(
        BehaviorEvent(
            type=BehaviorType(e.type),
            sku=e.sku,
            customer_id=e.customer_id,
            session_id=e.session_id,
            occurred_at=e.occurred_at,
        )
        for e in body.events
    )


def items_out(result: Recommendations) -> RecommendationsOut:
    return RecommendationsOut.model_validate(
        {"items": [{"sku": i.sku, "score": i.score, "reason": i.reason} for i in result.items]}
    )


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/v1")
    anonymous_limiter = RateLimiter(bus.deps.ingestion.anonymous_rate_per_minute)

    @router.post(
        "/behavior-events",
        status_code=202,
        response_model=BehaviorBatchOut,
        tags=["behaviour"],
        responses={202: {"description": "Accepted; every event will be published"}},
    )
    async def record_behavior_events(
        body: BehaviorBatchIn,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Optional: a retried batch with the same key is recorded once "
                "(beacons cannot always set headers, so it is not required)",
            ),
        ] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> BehaviorBatchOut:
        """Record storefront behaviour (view, add to cart, remove from cart), all or nothing.

        Signed-in customers send events for themselves; anonymous visitors (no token) send
        events with a session id only and are rate limited per address.
        """
        caller = await optional_caller(request, authorization)
        if caller is None:
            anonymous_limiter.check("ip:" + (request.client.host if request.client else "?"))
        else:
            bus.authorize(RecordBehaviorEvents, caller)
        key = check_key(idempotency_key, required=False)
        command = RecordBehaviorEventsOnce if key is not None else RecordBehaviorEvents
        outcome = await bus.execute(
            command(events=to_domain(body), anonymous=caller is None),
            caller or ANONYMOUS,
            idempotency_key=key,
        )
        return BehaviorBatchOut(accepted=replayed(outcome, response).accepted)

    @router.get(
        "/recommendations/customers/{customer_id}",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_customer_recommendations(
        customer_id: str,
        caller: Annotated[Caller, allowed(GetCustomerRecommendations)],
        limit: Limit = 10,
        mode: Mode = Mode.PERSONAL,
    ) -> RecommendationsOut:
        """Personalised for the customer (the customer itself, ops or service): `personal`
        (default) buys again ("you buy this about every 2 weeks") and discovers items bought with
        what it buys; `discover` only returns items it never bought. Cold start falls back to
        trending in the customer's recent categories, then overall."""
        result = await bus.handle(
            GetCustomerRecommendations(customer_id=customer_id, limit=limit, mode=mode), caller
        )
        return items_out(result)

    @router.get(
        "/recommendations/skus/{sku}/similar",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_similar_items(
        sku: str, caller: Annotated[Caller, allowed(GetSimilarItems)], limit: Limit = 10
    ) -> RecommendationsOut:
        """Items often viewed with this SKU, then popular items of its category."""
        return items_out(await bus.handle(GetSimilarItems(sku=sku, limit=limit), caller))

    @router.get(
        "/recommendations/skus/{sku}/bought-together",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_bought_together(
        sku: str, caller: Annotated[Caller, allowed(GetBoughtTogether)], limit: Limit = 10
    ) -> RecommendationsOut:
        """Items frequently bought in the same paid order as this SKU."""
        return items_out(await bus.handle(GetBoughtTogether(sku=sku, limit=limit), caller))

    @router.get(
        "/recommendations/trending", response_model=RecommendationsOut, tags=["recommendations"]
    )
    async def get_trending(
        caller: Annotated[Caller, allowed(GetTrending)],
        category: Annotated[str | None, Query(max_length=200)] = None,
        limit: Limit = 10,
    ) -> RecommendationsOut:
        """Most viewed, carted and bought items lately (time-decayed), overall or in a category."""
        return items_out(
            await bus.handle(GetTrending(category=category or None, limit=limit), caller)
        )

    @router.get(
        "/segments/customers/{customer_id}", response_model=CustomerSegmentOut, tags=["segments"]
    )
    async def get_customer_segment(
        customer_id: str, caller: Annotated[Caller, allowed(GetCustomerSegment)]
    ) -> CustomerSegmentOut:
        """RFM scores, segment and churn risk of a customer (the customer itself, ops, service)."""
        seg = await bus.handle(GetCustomerSegment(customer_id=customer_id), caller)
        return CustomerSegmentOut.model_validate(
            {
                "customer_id": seg.customer_id,
                "recency_days": seg.recency_days,
                "frequency": seg.frequency,
                "monetary_minor": seg.monetary_minor,
                "currency": seg.currency,
                "r_score": seg.r_score,
                "f_score": seg.f_score,
                "m_score": seg.m_score,
                "segment": seg.segment.value,
                "churn_risk": seg.churn_risk.value,
                "computed_at": seg.computed_at,
            }
        )

    @router.get("/segments", response_model=SegmentCountsOut, tags=["segments"])
    async def list_segment_counts(
        caller: Annotated[Caller, allowed(ListSegmentCounts)],
    ) -> SegmentCountsOut:
        """Customers per segment (all nine, zero included)."""
        result = await bus.handle(ListSegmentCounts(), caller)
        return SegmentCountsOut(
            counts=[
                SegmentCountOut.model_validate(
                    {"segment": c.segment.value, "customers": c.customers}
                )
                for c in result.counts
            ],
            total=result.total,
        )

    @router.get("/funnel", response_model=FunnelOut, tags=["kpis"])
    async def get_funnel(
        caller: Annotated[Caller, allowed(GetFunnel)],
        from_: Annotated[
            Rfc3339Time | None,
            Query(alias="from", description="Start, inclusive (default: to - 30 days)"),
        ] = None,
        to: Annotated[
            Rfc3339Time | None, Query(description="End, exclusive (default: now)")
        ] = None,
        category: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JSONResponse:
        """Conversion funnel: views -> add to carts -> orders -> paid, with the rates between."""
        f = await bus.handle(GetFunnel(start=from_, end=to, category=category or None), caller)
        out = FunnelOut.model_validate(
            {
                "from": f.start,
                "to": f.end,
                "category": f.category,
                "views": f.views,
                "add_to_carts": f.add_to_carts,
                "orders": f.orders,
                "paid": f.paid,
                "view_to_cart_rate": f.view_to_cart_rate,
                "cart_to_order_rate": f.cart_to_order_rate,
                "order_to_paid_rate": f.order_to_paid_rate,
                "view_to_paid_rate": f.view_to_paid_rate,
            }
        )
        return JSONResponse(out.model_dump(mode="json", by_alias=True))

    return router
