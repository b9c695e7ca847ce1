"""REST API under /v1: thin: decode, authorise, call one handler, encode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from ecomops_platform.auth import Caller, Role, current_caller
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import NotFound
from ecomops_platform.idempotency import check_key, run_idempotent
from ecomops_platform.rest import RateLimiter, require, stored_json
from ecomops_platform.strict import Rfc3339Time

from ..domain.models import BehaviorEvent, BehaviorType
from ..service_layer import handlers
from ..settings import RecommendationSettings
from .schemas import (
    BehaviorBatchIn,
    BehaviorBatchOut,
    CustomerSegmentOut,
    FunnelOut,
    RecommendationsOut,
    SegmentCountOut,
    SegmentCountsOut,
)

INGEST_ROLES = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
READ_ROLES = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
STAFF = (Role.OPS, Role.SERVICE)

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


def to_domain(body: BehaviorBatchIn) -> list[BehaviorEvent]:
    return [
        BehaviorEvent(
            type=BehaviorType(e.type),
            sku=e.sku,
            customer_id=e.customer_id,
            session_id=e.session_id,
            occurred_at=e.occurred_at,
        )
        for e in body.events
    ]


def items_out(items: list[handlers.Item]) -> RecommendationsOut:
    return RecommendationsOut.model_validate(
        {"items": [{"sku": i.sku, "score": i.score, "reason": i.reason} for i in items]}
    )


def owned(caller: Caller, customer_id: str) -> None:
    """Customers see only themselves; another customer's id is 404, not 403."""
    if not caller.may_see(customer_id):
        raise NotFound(f"customer {customer_id} not found")
    if caller.role is Role.PARTNER:
        raise NotFound(f"customer {customer_id} not found")


def build_router(
    uow_factory: Callable[[], UnitOfWork], settings: RecommendationSettings
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    params = settings.model_params()
    policy = handlers.IngestionPolicy(
        max_batch=settings.max_batch,
        max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        max_age=timedelta(days=settings.max_event_age_days),
    )
    anonymous_limiter = RateLimiter(settings.anonymous_rate_per_minute)

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
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Optional: a retried batch with the same key is recorded once "
                "(beacons cannot always set headers, so it is not required)",
            ),
        ] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Any:
        """Record storefront behaviour (view, add to cart, remove from cart), all or nothing.

        Signed-in customers send events for themselves; anonymous visitors (no token) send
        events with a session id only and are rate limited per address.
        """
        caller = await optional_caller(request, authorization)
        if caller is None:
            anonymous_limiter.check("ip:" + (request.client.host if request.client else "?"))
        else:
            caller.require(*INGEST_ROLES)
        events = to_domain(body)
        key = check_key(idempotency_key, required=False)
        uow = uow_factory()
        if key is None:
            accepted = await handlers.record_behavior(uow, events, caller=caller, policy=policy)
            return JSONResponse({"accepted": accepted}, status_code=202)

        async def action() -> tuple[int, Any]:
            n = await handlers.record_behavior(uow, events, caller=caller, policy=policy)
            return 202, {"accepted": n}

        stored = await run_idempotent(
            uow,
            caller=caller.subject if caller else "anonymous",
            operation="record_behavior_events",
            key=key,
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get(
        "/recommendations/customers/{customer_id}",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_customer_recommendations(
        customer_id: str,
        caller: Annotated[Caller, require(Role.CUSTOMER, *STAFF)],
        limit: Limit = 10,
    ) -> RecommendationsOut:
        """Personalised for the customer (the customer itself, ops or service); cold start falls
        back to trending in the customer's recent categories, then overall."""
        owned(caller, customer_id)
        items = await handlers.customer_recommendations(
            uow_factory(),
            customer_id,
            limit,
            params,
            exclude_purchased=settings.exclude_purchased,
        )
        return items_out(items)

    @router.get(
        "/recommendations/skus/{sku}/similar",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_similar_items(
        sku: str, caller: Annotated[Caller, require(*READ_ROLES)], limit: Limit = 10
    ) -> RecommendationsOut:
        """Items often viewed with this SKU, then popular items of its category."""
        return items_out(await handlers.similar_items(uow_factory(), sku, limit, params))

    @router.get(
        "/recommendations/skus/{sku}/bought-together",
        response_model=RecommendationsOut,
        tags=["recommendations"],
    )
    async def get_bought_together(
        sku: str, caller: Annotated[Caller, require(*READ_ROLES)], limit: Limit = 10
    ) -> RecommendationsOut:
        """Items frequently bought in the same paid order as this SKU."""
        return items_out(await handlers.bought_together(uow_factory(), sku, limit, params))

    @router.get(
        "/recommendations/trending", response_model=RecommendationsOut, tags=["recommendations"]
    )
    async def get_trending(
        caller: Annotated[Caller, require(*READ_ROLES)],
        category: Annotated[str | None, Query(max_length=200)] = None,
        limit: Limit = 10,
    ) -> RecommendationsOut:
        """Most viewed, carted and bought items lately (time-decayed), overall or in a category."""
        return items_out(await handlers.trending(uow_factory(), category or None, limit, params))

    @router.get(
        "/segments/customers/{customer_id}", response_model=CustomerSegmentOut, tags=["segments"]
    )
    async def get_customer_segment(
        customer_id: str, caller: Annotated[Caller, require(Role.CUSTOMER, *STAFF)]
    ) -> CustomerSegmentOut:
        """RFM scores, segment and churn risk of a customer (the customer itself, ops, service)."""
        owned(caller, customer_id)
        row = await handlers.get_segment(uow_factory(), customer_id)
        return CustomerSegmentOut.model_validate(row)

    @router.get("/segments", response_model=SegmentCountsOut, tags=["segments"])
    async def list_segment_counts(
        caller: Annotated[Caller, require(*STAFF)],
    ) -> SegmentCountsOut:
        """Customers per segment (all nine, zero included)."""
        counts = await handlers.segment_counts(uow_factory())
        return SegmentCountsOut(
            counts=[
                SegmentCountOut.model_validate({"segment": s, "customers": n})
                for s, n in counts.items()
            ],
            total=sum(counts.values()),
        )

    @router.get("/funnel", response_model=FunnelOut, tags=["kpis"])
    async def get_funnel(
        caller: Annotated[Caller, require(*STAFF)],
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
        f = await handlers.funnel(uow_factory(), from_, to, category or None)
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
