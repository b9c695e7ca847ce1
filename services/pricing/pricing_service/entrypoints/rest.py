"""REST API of the pricing service (under /v1). Thin: decode, call a handler, encode."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden, Unprocessable
from ecomops_platform.idempotency import run_idempotent
from ecomops_platform.pagination import check_limit
from ecomops_platform.problems import Problem
from ecomops_platform.rest import require, stored_json
from ecomops_platform.runtime import Service
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey

from ..domain.models import PriceTerms, PromotionKind, Scope
from ..service_layer import handlers
from ..service_layer.handlers import PromotionInput, QuoteLineInput
from ..settings import PricingSettings
from .schemas import (
    BuyGet,
    CompetitorPriceIn,
    CompetitorPriceOut,
    CreatePromotionIn,
    CreateQuoteIn,
    PriceHistoryOut,
    PriceOut,
    PromotionOut,
    PromotionPage,
    QuoteOut,
    RedeemOut,
    RedeemQuoteIn,
    ReleaseIn,
    ReleaseOut,
    SetPriceIn,
    SuggestionOut,
    SuggestionPage,
    UpdatePromotionIn,
    has_nul,
)

Ops = Annotated[Caller, require(Role.OPS)]
Anyone = Annotated[Caller, require(Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)]
Checkout = Annotated[Caller, require(Role.SERVICE, Role.OPS)]


def promotion_value(kind: str, value: BuyGet | int | Decimal | None) -> dict[str, Any]:
    """The kind-specific fields of a promotion from the REST `value`."""
    if value is None:
        return {}
    if kind == PromotionKind.PERCENT:
        if isinstance(value, BuyGet):
            raise Unprocessable(
                "a percent promotion takes a decimal value", code="invalid-promotion"
            )
        return {"percent": Decimal(value)}
    if kind == PromotionKind.FIXED_AMOUNT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unprocessable(
                "a fixed_amount promotion takes an integer amount in minor units",
                code="invalid-promotion",
            )
        return {"amount_minor": value}
    if not isinstance(value, BuyGet):
        raise Unprocessable(
            "a buy_x_get_y promotion takes value {buy, get}", code="invalid-promotion"
        )
    return {"buy_quantity": value.buy, "get_quantity": value.get}


def promotion_input(body: CreatePromotionIn) -> PromotionInput:
    return PromotionInput(
        name=body.name,
        kind=PromotionKind(body.kind),
        scope=Scope(
            skus=frozenset(body.scope.skus),
            categories=frozenset(body.scope.categories),
            all=body.scope.all,
        ),
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        coupon_code=body.coupon_code,
        usage_limit=body.usage_limit,
        per_customer_limit=body.per_customer_limit,
        min_subtotal_minor=body.min_subtotal_minor,
        currency=body.currency,
        segments=frozenset(body.segments),
        stackable=body.stackable,
        allow_below_floor=body.allow_below_floor,
        reason=body.reason,
        **promotion_value(body.kind, body.value),
    )


def quote_customer(caller: Caller, customer_id: str | None) -> str | None:
    """Customers quote for themselves only; staff may quote for anyone (or anonymously)."""
    if caller.is_customer:
        if customer_id is not None and customer_id != caller.subject:
            raise Forbidden("customers may only ask quotes for themselves")
        return caller.subject
    return customer_id


async def refuse_nul_parameters(request: Request) -> None:
    """Path and query parameters with NUL characters cannot name anything stored: 422."""
    values = [*request.path_params.values(), *request.query_params.values()]
    if has_nul(values):
        raise Unprocessable("parameters must not contain NUL characters", code="invalid-parameter")


def build_router(service: Service, settings: PricingSettings) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["pricing"], dependencies=[Depends(refuse_nul_parameters)]
    )

    # --- price book ----------------------------------------------------------------------------
    @router.put("/prices/{sku}", response_model=PriceOut)
    async def set_price(sku: str, body: SetPriceIn, caller: Ops) -> PriceOut:
        """Set the list price and costs of a SKU in one currency (guarded by the margin floor)."""
        record = await handlers.set_price(
            service.uow(),
            settings,
            changed_by=caller.subject,
            sku=sku,
            currency=body.currency,
            terms=PriceTerms(
                list_price_minor=body.list_price_minor,
                unit_cost_minor=body.unit_cost_minor,
                commission_rate=body.commission_rate,
                marketing_cost_rate=body.marketing_cost_rate,
            ),
            allow_below_floor=body.allow_below_floor,
            reason=body.reason,
        )
        return PriceOut.of(record)

    @router.get("/prices/{sku}", response_model=PriceOut)
    async def get_price(
        sku: str, currency: Annotated[str, Query(min_length=3, max_length=3)], caller: Anyone
    ) -> PriceOut:
        """The current price of a SKU in one currency; costs and margin for ops only."""
        record = await handlers.get_price(service.uow(), sku, currency)
        return PriceOut.of(record, costs=caller.role is Role.OPS)

    @router.get("/prices/{sku}/history", response_model=PriceHistoryOut)
    async def get_price_history(
        sku: str,
        currency: Annotated[str, Query(min_length=3, max_length=3)],
        caller: Anyone,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PriceHistoryOut:
        """Every change (newest first) with who, when and why, and the lowest price of the last
        30 days (EU price-indication rule)."""
        history = await handlers.get_price_history(
            service.uow(), sku, currency, limit=check_limit(limit), cursor=cursor
        )
        return PriceHistoryOut.of(history, costs=caller.role is Role.OPS)

    # --- promotions ----------------------------------------------------------------------------
    @router.post(
        "/promotions",
        status_code=201,
        response_model=PromotionOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_promotion(
        body: CreatePromotionIn, key: RequiredIdempotencyKey, caller: Ops
    ) -> JSONResponse:
        """Create a promotion (refused when it pushes a SKU in scope under the margin floor)."""
        data = promotion_input(body)
        uow = service.uow()

        async def action() -> tuple[int, Any]:
            promotion = await handlers.create_promotion(
                uow, settings, created_by=caller.subject, data=data
            )
            return 201, PromotionOut.of(promotion).model_dump(mode="json")

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="create_promotion",
            key=key,
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get("/promotions", response_model=PromotionPage)
    async def list_promotions(
        caller: Ops,
        active: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PromotionPage:
        """Promotions, newest first; active=true: live now, active=false: the others."""
        items, next_cursor = await handlers.list_promotions(
            service.uow(), active=active, limit=check_limit(limit), cursor=cursor
        )
        return PromotionPage(items=[PromotionOut.of(p) for p in items], next_cursor=next_cursor)

    @router.get("/promotions/{promotion_id}", response_model=PromotionOut)
    async def get_promotion(promotion_id: str, caller: Ops) -> PromotionOut:
        """One promotion with its usage."""
        return PromotionOut.of(await handlers.get_promotion(service.uow(), promotion_id))

    @router.patch("/promotions/{promotion_id}", response_model=PromotionOut)
    async def update_promotion(
        promotion_id: str, body: UpdatePromotionIn, caller: Ops
    ) -> PromotionOut:
        """Change fields of an active promotion (the margin floor is checked again)."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        value = changes.pop("value", None)
        if value is not None:
            current = await handlers.get_promotion(service.uow(), promotion_id)
            changes.update(promotion_value(current.kind, body.value))
        for name in (
            "name",
            "starts_at",
            "ends_at",
            "min_subtotal_minor",
            "stackable",
            "allow_below_floor",
        ):
            if name in changes and changes[name] is None:
                raise Unprocessable(f"{name} cannot be null", code="invalid-promotion")
        promotion = await handlers.update_promotion(
            service.uow(),
            settings,
            changed_by=caller.subject,
            promotion_id=promotion_id,
            changes=changes,
        )
        return PromotionOut.of(promotion)

    @router.delete("/promotions/{promotion_id}", response_model=PromotionOut)
    async def deactivate_promotion(promotion_id: str, caller: Ops) -> PromotionOut:
        """Deactivate a promotion; it and its redemptions stay for the record."""
        promotion = await handlers.deactivate_promotion(
            service.uow(), changed_by=caller.subject, promotion_id=promotion_id
        )
        return PromotionOut.of(promotion)

    # --- quotes --------------------------------------------------------------------------------
    @router.post(
        "/quotes", status_code=201, response_model=QuoteOut, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def create_quote(
        body: CreateQuoteIn, key: RequiredIdempotencyKey, caller: Anyone
    ) -> JSONResponse:
        """Price a basket with the best combination of promotions; the quote is stored and
        expires."""
        if caller.role is Role.PARTNER:
            raise Forbidden("partners may not ask for quotes")
        customer_id = quote_customer(caller, body.customer_id)
        lines = [QuoteLineInput(sku=line.sku, quantity=line.quantity) for line in body.lines]
        uow = service.uow()

        async def action() -> tuple[int, Any]:
            quote = await handlers.create_quote(
                uow,
                settings,
                customer_id=customer_id,
                currency=body.currency,
                lines=lines,
                coupon_codes=body.coupon_codes,
            )
            return 201, QuoteOut.of(quote).model_dump(mode="json")

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="create_quote",
            key=key,
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get(
        "/quotes/{quote_id}",
        response_model=QuoteOut,
        responses={410: {"model": Problem, "description": "The quote expired"}},
    )
    async def get_quote(quote_id: str, caller: Anyone) -> QuoteOut:
        """A quote exactly as quoted; 410 once expired; customers see only their own."""
        return QuoteOut.of(await handlers.get_quote(service.uow(), caller, quote_id))

    @router.post(
        "/quotes/{quote_id}/redemption",
        response_model=RedeemOut,
        responses={410: {"model": Problem, "description": "The quote expired"}},
    )
    async def redeem_quote(quote_id: str, body: RedeemQuoteIn, caller: Checkout) -> RedeemOut:
        """Checkout: consume the quote's promotion uses for one order (idempotent per order)."""
        result = await handlers.redeem_quote(
            service.uow(),
            quote_id=quote_id,
            order_id=body.order_id,
            customer_id=body.customer_id,
            expected_lines=[QuoteLineInput(x.sku, x.quantity) for x in body.expected_lines],
            expected_total_minor=body.expected_total_minor,
        )
        return RedeemOut.of(result)

    @router.post("/redemptions/{order_id}/release", response_model=ReleaseOut)
    async def release_redemption(
        order_id: str, caller: Checkout, body: ReleaseIn | None = None
    ) -> ReleaseOut:
        """Give back the promotion uses of an order (idempotent, exactly once); the body is
        optional."""
        result = await handlers.release_redemption(
            service.uow(), order_id=order_id, reason=(body or ReleaseIn()).reason
        )
        return ReleaseOut.of(result)

    # --- competitor prices and suggestions -----------------------------------------------------
    @router.put("/competitor-prices/{sku}", response_model=CompetitorPriceOut)
    async def set_competitor_price(
        sku: str,
        body: CompetitorPriceIn,
        caller: Annotated[Caller, require(Role.OPS, Role.PARTNER)],
    ) -> CompetitorPriceOut:
        """Record a competitor's observed price (the latest observation per competitor wins)."""
        record = await handlers.set_competitor_price(
            service.uow(),
            recorded_by=caller.subject,
            sku=sku,
            competitor=body.competitor,
            currency=body.currency,
            price_minor=body.price_minor,
            observed_at=body.observed_at,
        )
        return CompetitorPriceOut.of(record)

    @router.get("/pricing/suggestions", response_model=SuggestionPage)
    async def list_suggestions(
        caller: Ops, limit: int | None = None, cursor: str | None = None
    ) -> SuggestionPage:
        """Suggested prices per SKU and currency with their reasons; never below the floor."""
        items, next_cursor = await handlers.list_suggestions(
            service.uow(), settings, limit=check_limit(limit), cursor=cursor
        )
        return SuggestionPage(items=[SuggestionOut.of(s) for s in items], next_cursor=next_cursor)

    return router
