"""REST API of the pricing service (under /v1): decode → bus → encode (the views are the JSON)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ecomops_platform.auth import Caller
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.pagination import check_limit
from ecomops_platform.problems import Problem
from ecomops_platform.rest import allowed, replayed
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey

from ..domain.models import PriceTerms, PromotionKind
from ..service_layer import promotions as promo
from ..service_layer.ports import Deps, PricingUnitOfWork
from ..service_layer.price_book import GetPrice, GetPriceHistory, SetPrice
from ..service_layer.quotes import CreateQuote, GetQuote, QuoteLine, RedeemQuote, ReleaseRedemption
from ..service_layer.signals import ListSuggestions, SetCompetitorPrice
from ..service_layer.views import (
    CompetitorPriceOut,
    PriceHistoryOut,
    PriceOut,
    PromotionOut,
    PromotionPage,
    QuoteOut,
    RedeemOut,
    ReleaseOut,
    SuggestionPage,
)
from .schemas import (
    BuyGet,
    CompetitorPriceIn,
    CreatePromotionIn,
    CreateQuoteIn,
    RedeemQuoteIn,
    ReleaseIn,
    SetPriceIn,
    UpdatePromotionIn,
    has_nul,
)

Bus = MessageBus[PricingUnitOfWork, Deps]
CurrencyParam = Annotated[str, Query(min_length=3, max_length=3)]
EXPIRED: dict[int | str, dict[str, Any]] = {
    410: {"model": Problem, "description": "The quote expired"}
}


def value_of(value: BuyGet | int | Decimal | None) -> promo.PromotionValue | None:
    """A REST promotion ``value`` as the service layer reads it."""
    return promo.BuyGet(value.buy, value.get) if isinstance(value, BuyGet) else value


def promotion_command(body: CreatePromotionIn) -> promo.CreatePromotion:
    terms = promo.kind_terms(body.kind, value_of(body.value))
    return promo.CreatePromotion(
        name=body.name,
        kind=PromotionKind(body.kind),
        skus=tuple(sorted(set(body.scope.skus))),
        categories=tuple(sorted(set(body.scope.categories))),
        all=body.scope.all,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        coupon_code=body.coupon_code,
        usage_limit=body.usage_limit,
        per_customer_limit=body.per_customer_limit,
        min_subtotal_minor=body.min_subtotal_minor,
        currency=body.currency,
        segments=tuple(sorted(set(body.segments))),
        stackable=body.stackable,
        allow_below_floor=body.allow_below_floor,
        reason=body.reason,
        percent=terms.percent,
        amount_minor=terms.amount_minor,
        buy_quantity=terms.buy_quantity,
        get_quantity=terms.get_quantity,
    )


async def refuse_nul_parameters(request: Request) -> None:
    """Path and query parameters with NUL characters cannot name anything stored: 422."""
    values = [*request.path_params.values(), *request.query_params.values()]
    if has_nul(values):
        raise Unprocessable("parameters must not contain NUL characters", code="invalid-parameter")


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["pricing"], dependencies=[Depends(refuse_nul_parameters)]
    )

    # --- price book ----------------------------------------------------------------------------
    @router.put("/prices/{sku}", response_model=PriceOut)
    async def set_price(
        sku: str, body: SetPriceIn, caller: Annotated[Caller, allowed(SetPrice)]
    ) -> PriceOut:
        """Set the list price and costs of a SKU in one currency (guarded by the margin floor)."""
        terms = PriceTerms(
            list_price_minor=body.list_price_minor,
            unit_cost_minor=body.unit_cost_minor,
            commission_rate=body.commission_rate,
            marketing_cost_rate=body.marketing_cost_rate,
        )
        return await bus.handle(
            SetPrice(
                sku=sku,
                currency=body.currency,
                terms=terms,
                allow_below_floor=body.allow_below_floor,
                reason=body.reason,
            ),
            caller,
        )

    @router.get("/prices/{sku}", response_model=PriceOut)
    async def get_price(
        sku: str, currency: CurrencyParam, caller: Annotated[Caller, allowed(GetPrice)]
    ) -> PriceOut:
        """The current price of a SKU in one currency; costs and margin for ops only."""
        return await bus.handle(GetPrice(sku=sku, currency=currency), caller)

    @router.get("/prices/{sku}/history", response_model=PriceHistoryOut)
    async def get_price_history(
        sku: str,
        currency: CurrencyParam,
        caller: Annotated[Caller, allowed(GetPriceHistory)],
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PriceHistoryOut:
        """Every change (newest first) with who, when and why, and the lowest price of the last
        30 days (EU price-indication rule)."""
        query = GetPriceHistory(sku=sku, currency=currency, limit=check_limit(limit), cursor=cursor)
        return await bus.handle(query, caller)

    # --- promotions ----------------------------------------------------------------------------
    @router.post(
        "/promotions",
        status_code=201,
        response_model=PromotionOut,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_promotion(
        body: CreatePromotionIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(promo.CreatePromotion)],
    ) -> PromotionOut:
        """Create a promotion (refused when it pushes a SKU in scope under the margin floor)."""
        outcome = await bus.execute(promotion_command(body), caller, idempotency_key=key)
        return replayed(outcome, response)

    @router.get("/promotions", response_model=PromotionPage)
    async def list_promotions(
        caller: Annotated[Caller, allowed(promo.ListPromotions)],
        active: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PromotionPage:
        """Promotions, newest first; active=true: live now, active=false: the others."""
        query = promo.ListPromotions(active=active, limit=check_limit(limit), cursor=cursor)
        return await bus.handle(query, caller)

    @router.get("/promotions/{promotion_id}", response_model=PromotionOut)
    async def get_promotion(
        promotion_id: str, caller: Annotated[Caller, allowed(promo.GetPromotion)]
    ) -> PromotionOut:
        """One promotion with its usage."""
        return await bus.handle(promo.GetPromotion(promotion_id=promotion_id), caller)

    @router.patch("/promotions/{promotion_id}", response_model=PromotionOut)
    async def update_promotion(
        promotion_id: str,
        body: UpdatePromotionIn,
        caller: Annotated[Caller, allowed(promo.UpdatePromotion)],
    ) -> PromotionOut:
        """Change fields of an active promotion (the margin floor is checked again)."""
        changes: dict[str, object] = body.model_dump(exclude_unset=True)
        changes.pop("value", None)
        command = promo.UpdatePromotion(
            promotion_id=promotion_id, changes=changes, value=value_of(body.value)
        )
        return await bus.handle(command, caller)

    @router.delete("/promotions/{promotion_id}", response_model=PromotionOut)
    async def deactivate_promotion(
        promotion_id: str, caller: Annotated[Caller, allowed(promo.DeactivatePromotion)]
    ) -> PromotionOut:
        """Deactivate a promotion; it and its redemptions stay for the record."""
        return await bus.handle(promo.DeactivatePromotion(promotion_id=promotion_id), caller)

    # --- quotes --------------------------------------------------------------------------------
    @router.post(
        "/quotes", status_code=201, response_model=QuoteOut, openapi_extra=IDEMPOTENCY_KEY_REQUIRED
    )
    async def create_quote(
        body: CreateQuoteIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CreateQuote)],
    ) -> QuoteOut:
        """Price a basket with the best combination of promotions; the quote is stored and
        expires."""
        command = CreateQuote(
            customer_id=body.customer_id,
            currency=body.currency,
            lines=tuple(QuoteLine(line.sku, line.quantity) for line in body.lines),
            coupon_codes=tuple(body.coupon_codes),
        )
        return replayed(await bus.execute(command, caller, idempotency_key=key), response)

    @router.get("/quotes/{quote_id}", response_model=QuoteOut, responses=EXPIRED)
    async def get_quote(quote_id: str, caller: Annotated[Caller, allowed(GetQuote)]) -> QuoteOut:
        """A quote exactly as quoted; 410 once expired; customers see only their own."""
        return await bus.handle(GetQuote(quote_id=quote_id), caller)

    @router.post("/quotes/{quote_id}/redemption", response_model=RedeemOut, responses=EXPIRED)
    async def redeem_quote(
        quote_id: str, body: RedeemQuoteIn, caller: Annotated[Caller, allowed(RedeemQuote)]
    ) -> RedeemOut:
        """Checkout: consume the quote's promotion uses for one order (idempotent per order)."""
        command = RedeemQuote(
            quote_id=quote_id,
            order_id=body.order_id,
            customer_id=body.customer_id,
            expected_lines=tuple(QuoteLine(x.sku, x.quantity) for x in body.expected_lines),
            expected_total_minor=body.expected_total_minor,
        )
        return await bus.handle(command, caller)

    @router.post("/redemptions/{order_id}/release", response_model=ReleaseOut)
    async def release_redemption(
        order_id: str,
        caller: Annotated[Caller, allowed(ReleaseRedemption)],
        body: ReleaseIn | None = None,
    ) -> ReleaseOut:
        """Give back the promotion uses of an order (idempotent, exactly once); the body is
        optional."""
        reason = (body or ReleaseIn()).reason
        return await bus.handle(ReleaseRedemption(order_id=order_id, reason=reason), caller)

    # --- competitor prices and suggestions -----------------------------------------------------
    @router.put("/competitor-prices/{sku}", response_model=CompetitorPriceOut)
    async def set_competitor_price(
        sku: str,
        body: CompetitorPriceIn,
        caller: Annotated[Caller, allowed(SetCompetitorPrice)],
    ) -> CompetitorPriceOut:
        """Record a competitor's observed price (the latest observation per competitor wins)."""
        command = SetCompetitorPrice(
            sku=sku,
            competitor=body.competitor,
            currency=body.currency,
            price_minor=body.price_minor,
            observed_at=body.observed_at,
        )
        return await bus.handle(command, caller)

    @router.get("/pricing/suggestions", response_model=SuggestionPage)
    async def list_suggestions(
        caller: Annotated[Caller, allowed(ListSuggestions)],
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SuggestionPage:
        """Suggested prices per SKU and currency with their reasons; never below the floor."""
        query = ListSuggestions(limit=check_limit(limit), cursor=cursor)
        return await bus.handle(query, caller)

    return router
