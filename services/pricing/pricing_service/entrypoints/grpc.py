"""gRPC servicer ecomops.pricing.v1.PricingService: decode → bus → encode, the same messages as
REST. The interceptor has authenticated the caller and screened the request (NUL characters,
card numbers, undecodable bytes); ``caller_for`` checks the message's roles before decoding."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for

from ..domain.models import PriceTerms, PromotionKind
from ..service_layer import promotions as promo
from ..service_layer import quotes
from ..service_layer.ports import Deps, PricingUnitOfWork
from ..service_layer.price_book import GetPrice, GetPriceHistory, SetPrice
from ..service_layer.signals import ListSuggestions, SetCompetitorPrice
from .encoders import (
    KINDS,
    change_pb,
    competitor_pb,
    next_page,
    page_of,
    price_pb,
    promotion_pb,
    quote_lines,
    quote_pb,
    rate,
    redemption_pb,
    suggestion_pb,
    when,
)

Bus = MessageBus[PricingUnitOfWork, Deps]
Context: TypeAlias = grpc.aio.ServicerContext


def _create_promotion(
    request: pb.CreatePromotionRequest, message: type[promo.CreatePromotion]
) -> promo.CreatePromotion:
    kind = KINDS.get(request.kind)
    if kind is None:
        raise Unprocessable("kind is required", code="invalid-promotion", field="kind")
    return message(
        name=request.name,
        kind=kind,
        skus=tuple(sorted(set(request.scope.skus))),
        categories=tuple(sorted(set(request.scope.categories))),
        all=request.scope.all,
        starts_at=when(request.starts_at, "starts_at"),
        ends_at=when(request.ends_at, "ends_at"),
        percent=rate("percent", request.percent) if kind is PromotionKind.PERCENT else None,
        amount_minor=request.amount_minor or None,
        buy_quantity=request.buy_quantity or None,
        get_quantity=request.get_quantity or None,
        coupon_code=request.coupon_code or None,
        usage_limit=request.usage_limit if request.HasField("usage_limit") else None,
        per_customer_limit=(
            request.per_customer_limit if request.HasField("per_customer_limit") else None
        ),
        min_subtotal_minor=request.min_subtotal_minor,
        currency=request.currency or None,
        segments=tuple(sorted(set(request.segments))),
        stackable=request.stackable,
        allow_below_floor=request.allow_below_floor,
        reason=request.reason or None,
    )


def _promotion_changes(request: pb.UpdatePromotionRequest) -> dict[str, object]:
    changes: dict[str, object] = {}
    for name in ("name", "usage_limit", "per_customer_limit", "min_subtotal_minor", "stackable"):
        if request.HasField(name):
            changes[name] = getattr(request, name)
    if request.HasField("amount_minor"):
        changes["amount_minor"] = request.amount_minor
    if request.HasField("percent"):
        changes["percent"] = rate("percent", request.percent)
    if request.HasField("starts_at"):
        changes["starts_at"] = when(request.starts_at, "starts_at")
    if request.HasField("ends_at"):
        changes["ends_at"] = when(request.ends_at, "ends_at")
    if request.replace_segments:
        changes["segments"] = list(request.segments)
    if request.allow_below_floor:
        changes["allow_below_floor"] = True
    if request.reason:
        changes["reason"] = request.reason
    return changes


class PricingServicer(pb_grpc.PricingServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    # --- price book ----------------------------------------------------------------------------
    async def SetPrice(self, request: pb.SetPriceRequest, context: Context) -> pb.SetPriceResponse:
        caller = caller_for(SetPrice)
        terms = PriceTerms(
            list_price_minor=request.list_price_minor,
            unit_cost_minor=request.unit_cost_minor,
            commission_rate=rate("commission_rate", request.commission_rate),
            marketing_cost_rate=rate("marketing_cost_rate", request.marketing_cost_rate),
        )
        command = SetPrice(
            sku=request.sku,
            currency=request.currency,
            terms=terms,
            allow_below_floor=request.allow_below_floor,
            reason=request.reason or None,
        )
        return pb.SetPriceResponse(price=price_pb(await self.bus.handle(command, caller)))

    async def GetPrice(self, request: pb.GetPriceRequest, context: Context) -> pb.GetPriceResponse:
        caller = caller_for(GetPrice)
        price = await self.bus.handle(GetPrice(sku=request.sku, currency=request.currency), caller)
        return pb.GetPriceResponse(price=price_pb(price))

    async def GetPriceHistory(
        self, request: pb.GetPriceHistoryRequest, context: Context
    ) -> pb.GetPriceHistoryResponse:
        caller = caller_for(GetPriceHistory)
        limit, cursor = page_of(request.page)
        query = GetPriceHistory(
            sku=request.sku, currency=request.currency, limit=limit, cursor=cursor
        )
        history = await self.bus.handle(query, caller)
        return pb.GetPriceHistoryResponse(
            sku=history.sku,
            currency=history.currency,
            changes=[change_pb(c) for c in history.changes],
            lowest_price_30d_minor=history.lowest_price_30d_minor,
            next_page=next_page(history.next_cursor),
        )

    # --- promotions ----------------------------------------------------------------------------
    async def CreatePromotion(
        self, request: pb.CreatePromotionRequest, context: Context
    ) -> pb.CreatePromotionResponse:
        caller = caller_for(promo.CreatePromotion)
        # With a key: idempotent in its own namespace; without: created once per call.
        key = request.idempotency_key or None
        message = promo.CreatePromotionByRpc if key else promo.CreatePromotionUnkeyed
        command = _create_promotion(request, message)
        result = await self.bus.handle(command, caller, idempotency_key=key)
        return pb.CreatePromotionResponse(promotion=promotion_pb(result))

    async def ListPromotions(
        self, request: pb.ListPromotionsRequest, context: Context
    ) -> pb.ListPromotionsResponse:
        caller = caller_for(promo.ListPromotions)
        limit, cursor = page_of(request.page)
        active = request.active if request.HasField("active") else None
        page = await self.bus.handle(
            promo.ListPromotions(active=active, limit=limit, cursor=cursor), caller
        )
        return pb.ListPromotionsResponse(
            promotions=[promotion_pb(p) for p in page.items], next_page=next_page(page.next_cursor)
        )

    async def GetPromotion(
        self, request: pb.GetPromotionRequest, context: Context
    ) -> pb.GetPromotionResponse:
        caller = caller_for(promo.GetPromotion)
        query = promo.GetPromotion(promotion_id=request.promotion_id)
        return pb.GetPromotionResponse(promotion=promotion_pb(await self.bus.handle(query, caller)))

    async def UpdatePromotion(
        self, request: pb.UpdatePromotionRequest, context: Context
    ) -> pb.UpdatePromotionResponse:
        caller = caller_for(promo.UpdatePromotion)
        command = promo.UpdatePromotion(
            promotion_id=request.promotion_id, changes=_promotion_changes(request)
        )
        result = await self.bus.handle(command, caller)
        return pb.UpdatePromotionResponse(promotion=promotion_pb(result))

    async def DeactivatePromotion(
        self, request: pb.DeactivatePromotionRequest, context: Context
    ) -> pb.DeactivatePromotionResponse:
        caller = caller_for(promo.DeactivatePromotion)
        command = promo.DeactivatePromotion(promotion_id=request.promotion_id)
        result = await self.bus.handle(command, caller)
        return pb.DeactivatePromotionResponse(promotion=promotion_pb(result))

    # --- quotes and checkout -------------------------------------------------------------------
    async def CreateQuote(
        self, request: pb.CreateQuoteRequest, context: Context
    ) -> pb.CreateQuoteResponse:
        caller = caller_for(quotes.CreateQuote)
        key = request.idempotency_key or None
        message = quotes.CreateQuoteByRpc if key else quotes.CreateQuoteUnkeyed
        command = message(
            customer_id=request.customer_id or None,
            currency=request.currency,
            lines=quote_lines(request.lines),
            coupon_codes=tuple(request.coupon_codes),
        )
        result = await self.bus.handle(command, caller, idempotency_key=key)
        return pb.CreateQuoteResponse(quote=quote_pb(result))

    async def GetQuote(self, request: pb.GetQuoteRequest, context: Context) -> pb.GetQuoteResponse:
        caller = caller_for(quotes.GetQuote)
        result = await self.bus.handle(quotes.GetQuote(quote_id=request.quote_id), caller)
        return pb.GetQuoteResponse(quote=quote_pb(result))

    async def RedeemQuote(
        self, request: pb.RedeemQuoteRequest, context: Context
    ) -> pb.RedeemQuoteResponse:
        caller = caller_for(quotes.RedeemQuote)
        command = quotes.RedeemQuote(
            quote_id=request.quote_id,
            order_id=request.order_id,
            customer_id=request.customer_id or None,
            expected_lines=quote_lines(request.expected_lines),
            expected_total_minor=request.expected_total_minor or None,
        )
        result = await self.bus.handle(command, caller)
        return pb.RedeemQuoteResponse(
            quote=quote_pb(result.quote),
            redemptions=[redemption_pb(r) for r in result.redemptions],
            replayed=result.replayed,
        )

    async def ReleaseRedemption(
        self, request: pb.ReleaseRedemptionRequest, context: Context
    ) -> pb.ReleaseRedemptionResponse:
        caller = caller_for(quotes.ReleaseRedemption)
        if not request.order_id or len(request.order_id) > 100 or len(request.reason) > 100:
            raise Unprocessable(
                "order_id is required (at most 100 characters); reason at most 100 characters",
                code="invalid-redemption",
            )
        command = quotes.ReleaseRedemption(
            order_id=request.order_id, reason=request.reason or "released"
        )
        result = await self.bus.handle(command, caller)
        return pb.ReleaseRedemptionResponse(
            released_count=result.released_count,
            redemptions=[redemption_pb(r) for r in result.redemptions],
        )

    # --- competitor prices and suggestions -----------------------------------------------------
    async def SetCompetitorPrice(
        self, request: pb.SetCompetitorPriceRequest, context: Context
    ) -> pb.SetCompetitorPriceResponse:
        caller = caller_for(SetCompetitorPrice)
        command = SetCompetitorPrice(
            sku=request.sku,
            competitor=request.competitor,
            currency=request.currency,
            price_minor=request.price_minor,
            observed_at=when(request.observed_at, "observed_at"),
        )
        result = await self.bus.handle(command, caller)
        return pb.SetCompetitorPriceResponse(competitor_price=competitor_pb(result))

    async def ListSuggestions(
        self, request: pb.ListSuggestionsRequest, context: Context
    ) -> pb.ListSuggestionsResponse:
        caller = caller_for(ListSuggestions)
        limit, cursor = page_of(request.page)
        page = await self.bus.handle(ListSuggestions(limit=limit, cursor=cursor), caller)
        return pb.ListSuggestionsResponse(
            suggestions=[suggestion_pb(s) for s in page.items],
            next_page=next_page(page.next_cursor),
        )
