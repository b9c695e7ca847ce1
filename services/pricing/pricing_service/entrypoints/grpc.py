"""gRPC servicer ecomops.pricing.v1.PricingService: the same handlers as REST."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops.common.v1 import common_pb2
from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden, Unprocessable
from ecomops_platform.grpc_server import authorize, to_datetime
from ecomops_platform.idempotency import check_key, run_idempotent
from ecomops_platform.pagination import check_limit
from ecomops_platform.runtime import Service

from ..adapters.events import ts
from ..adapters.tables import CONFIRMED, REDEEMED, RELEASED
from ..domain.models import PriceTerms, Promotion, PromotionKind, Scope, fmt_rate
from ..domain.records import (
    CompetitorPriceRecord,
    PriceChangeRecord,
    PriceRecord,
    QuoteRecord,
    RedemptionRecord,
    Suggestion,
)
from ..service_layer import handlers
from ..service_layer.handlers import PromotionInput, QuoteLineInput
from ..settings import PricingSettings

KINDS = {
    pb.PROMOTION_KIND_PERCENT: PromotionKind.PERCENT,
    pb.PROMOTION_KIND_FIXED_AMOUNT: PromotionKind.FIXED_AMOUNT,
    pb.PROMOTION_KIND_BUY_X_GET_Y: PromotionKind.BUY_X_GET_Y,
}
KIND_PB = {v: k for k, v in KINDS.items()}
STATES = {
    REDEEMED: pb.REDEMPTION_STATE_REDEEMED,
    CONFIRMED: pb.REDEMPTION_STATE_CONFIRMED,
    RELEASED: pb.REDEMPTION_STATE_RELEASED,
}


# --- decoding ---------------------------------------------------------------------------------


def refuse_nul(message: Message) -> None:
    """NUL characters cannot be stored in PostgreSQL text: INVALID_ARGUMENT, never INTERNAL."""
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        for item in items:
            if isinstance(item, str) and "\x00" in item:
                raise Unprocessable(
                    f"{field.name} must not contain NUL characters", code="invalid-parameter"
                )
            if isinstance(item, Message):
                refuse_nul(item)


def rate(name: str, value: str) -> Decimal:
    if not value:
        return Decimal(0)
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise Unprocessable(f"{name} must be a decimal string", code="invalid-rate") from None
    if not parsed.is_finite() or parsed < 0 or parsed > 1:
        raise Unprocessable(f"{name} must be a decimal in [0, 1]", code="invalid-rate")
    return parsed


def when(stamp: Timestamp, name: str) -> datetime:
    if stamp.seconds == 0 and stamp.nanos == 0:
        raise Unprocessable(f"{name} is required", code="invalid-time", field=name)
    return to_datetime(stamp, name)


def page_of(page: common_pb2.PageRequest) -> tuple[int, str | None]:
    return check_limit(page.limit or None), page.cursor or None


def next_page(cursor: str | None) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_cursor=cursor or "")


def quote_lines(lines: Any) -> list[QuoteLineInput]:
    return [QuoteLineInput(sku=line.sku, quantity=line.quantity) for line in lines]


# --- encoding ---------------------------------------------------------------------------------


def price_pb(r: PriceRecord, *, costs: bool = True) -> pb.Price:
    """A price; without ``costs`` (callers other than ops) only the selling price is set."""
    if not costs:
        return pb.Price(
            sku=r.sku,
            currency=r.currency,
            list_price_minor=r.terms.list_price_minor,
            updated_at=ts(r.updated_at),
        )
    return pb.Price(
        sku=r.sku,
        currency=r.currency,
        list_price_minor=r.terms.list_price_minor,
        unit_cost_minor=r.terms.unit_cost_minor,
        commission_rate=fmt_rate(r.terms.commission_rate),
        marketing_cost_rate=fmt_rate(r.terms.marketing_cost_rate),
        gross_margin=fmt_rate(r.gross_margin),
        margin_floor=fmt_rate(r.margin_floor),
        below_floor=r.below_floor,
        updated_by=r.updated_by,
        reason=r.reason or "",
        updated_at=ts(r.updated_at),
    )


def change_pb(c: PriceChangeRecord, *, costs: bool = True) -> pb.PriceChange:
    """A change; without ``costs`` (callers other than ops) only the selling prices are set."""
    if not costs:
        return pb.PriceChange(
            list_price_minor=c.list_price_minor,
            previous_price_minor=c.previous_price_minor,
            changed_at=ts(c.changed_at),
        )
    return pb.PriceChange(
        list_price_minor=c.list_price_minor,
        previous_price_minor=c.previous_price_minor,
        unit_cost_minor=c.unit_cost_minor,
        commission_rate=fmt_rate(c.commission_rate),
        marketing_cost_rate=fmt_rate(c.marketing_cost_rate),
        gross_margin=fmt_rate(c.gross_margin),
        below_floor=c.below_floor,
        changed_by=c.changed_by,
        reason=c.reason or "",
        changed_at=ts(c.changed_at),
    )


def promotion_pb(p: Promotion) -> pb.Promotion:
    msg = pb.Promotion(
        promotion_id=p.id,
        name=p.name,
        kind=KIND_PB[p.kind],
        percent=str(p.percent) if p.percent is not None else "",
        amount_minor=p.amount_minor or 0,
        buy_quantity=p.buy_quantity or 0,
        get_quantity=p.get_quantity or 0,
        scope=pb.PromotionScope(
            skus=sorted(p.scope.skus), categories=sorted(p.scope.categories), all=p.scope.all
        ),
        starts_at=ts(p.starts_at),
        ends_at=ts(p.ends_at),
        coupon_code=p.coupon_code or "",
        used_count=p.used,
        min_subtotal_minor=p.min_subtotal_minor,
        currency=p.currency or "",
        segments=sorted(p.segments),
        stackable=p.stackable,
        active=p.active,
        allow_below_floor=p.allow_below_floor,
        reason=p.reason or "",
        created_by=p.created_by,
        created_at=ts(p.created_at),
        updated_at=ts(p.updated_at),
    )
    if p.usage_limit is not None:
        msg.usage_limit = p.usage_limit
    if p.per_customer_limit is not None:
        msg.per_customer_limit = p.per_customer_limit
    return msg


def quote_pb(q: QuoteRecord) -> pb.Quote:
    return pb.Quote(
        quote_id=q.quote_id,
        customer_id=q.customer_id or "",
        currency=q.currency,
        lines=[
            pb.QuoteLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                discount_minor=line.discount_minor,
                total_minor=line.total_minor,
                promotions=[
                    pb.AppliedPromotion(
                        promotion_id=s.promotion_id,
                        name=s.name,
                        discount_minor=s.discount_minor,
                        coupon_code=s.coupon_code or "",
                    )
                    for s in line.promotions
                ],
            )
            for line in q.lines
        ],
        subtotal_minor=q.subtotal_minor,
        discount_total_minor=q.discount_total_minor,
        total_minor=q.total_minor,
        coupon_codes=q.coupon_codes,
        created_at=ts(q.created_at),
        expires_at=ts(q.expires_at),
    )


def redemption_pb(r: RedemptionRecord) -> pb.Redemption:
    return pb.Redemption(
        promotion_id=r.promotion_id,
        coupon_code=r.coupon_code or "",
        order_id=r.order_id,
        quote_id=r.quote_id,
        customer_id=r.customer_id or "",
        state=STATES.get(r.state, pb.REDEMPTION_STATE_UNSPECIFIED),
        redeemed_at=ts(r.redeemed_at),
    )


def competitor_pb(r: CompetitorPriceRecord) -> pb.CompetitorPrice:
    return pb.CompetitorPrice(
        sku=r.sku,
        competitor=r.competitor,
        currency=r.currency,
        price_minor=r.price_minor,
        observed_at=ts(r.observed_at),
        recorded_by=r.recorded_by,
    )


def suggestion_pb(s: Suggestion) -> pb.Suggestion:
    return pb.Suggestion(
        sku=s.sku,
        currency=s.currency,
        current_price_minor=s.current_price_minor,
        suggested_price_minor=s.suggested_price_minor,
        floor_price_minor=s.floor_price_minor,
        current_margin=fmt_rate(s.current_margin),
        suggested_margin=fmt_rate(s.suggested_margin),
        velocity_per_day=str(s.velocity_per_day),
        stock_available=s.stock_available if s.stock_available is not None else -1,
        days_of_cover=str(s.days_of_cover) if s.days_of_cover is not None else "",
        competitor_min_price_minor=s.competitor_min_price_minor or 0,
        reasons=s.reasons,
    )


class PricingServicer(pb_grpc.PricingServiceServicer):
    def __init__(self, service: Service, settings: PricingSettings) -> None:
        self.service = service
        self.settings = settings

    # --- price book ----------------------------------------------------------------------------
    async def SetPrice(
        self, request: pb.SetPriceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPriceResponse:
        who = authorize(Role.OPS)
        refuse_nul(request)
        record = await handlers.set_price(
            self.service.uow(),
            self.settings,
            changed_by=who.subject,
            sku=request.sku,
            currency=request.currency,
            terms=PriceTerms(
                list_price_minor=request.list_price_minor,
                unit_cost_minor=request.unit_cost_minor,
                commission_rate=rate("commission_rate", request.commission_rate),
                marketing_cost_rate=rate("marketing_cost_rate", request.marketing_cost_rate),
            ),
            allow_below_floor=request.allow_below_floor,
            reason=request.reason or None,
        )
        return pb.SetPriceResponse(price=price_pb(record))

    async def GetPrice(
        self, request: pb.GetPriceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPriceResponse:
        who = authorize()
        refuse_nul(request)
        record = await handlers.get_price(self.service.uow(), request.sku, request.currency)
        return pb.GetPriceResponse(price=price_pb(record, costs=who.role is Role.OPS))

    async def GetPriceHistory(
        self, request: pb.GetPriceHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPriceHistoryResponse:
        who = authorize()
        refuse_nul(request)
        limit, cursor = page_of(request.page)
        costs = who.role is Role.OPS
        history = await handlers.get_price_history(
            self.service.uow(), request.sku, request.currency, limit=limit, cursor=cursor
        )
        return pb.GetPriceHistoryResponse(
            sku=history.sku,
            currency=history.currency,
            changes=[change_pb(c, costs=costs) for c in history.changes],
            lowest_price_30d_minor=history.lowest_price_30d_minor,
            next_page=next_page(history.next_cursor),
        )

    # --- promotions ----------------------------------------------------------------------------
    async def CreatePromotion(
        self, request: pb.CreatePromotionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePromotionResponse:
        who = authorize(Role.OPS)
        refuse_nul(request)
        kind = KINDS.get(request.kind)
        if kind is None:
            raise Unprocessable("kind is required", code="invalid-promotion", field="kind")
        data = PromotionInput(
            name=request.name,
            kind=kind,
            scope=Scope(
                skus=frozenset(request.scope.skus),
                categories=frozenset(request.scope.categories),
                all=request.scope.all,
            ),
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
            segments=frozenset(request.segments),
            stackable=request.stackable,
            allow_below_floor=request.allow_below_floor,
            reason=request.reason or None,
        )
        key = check_key(request.idempotency_key, required=False)
        if key is None:
            promotion = await handlers.create_promotion(
                self.service.uow(), self.settings, created_by=who.subject, data=data
            )
            return pb.CreatePromotionResponse(promotion=promotion_pb(promotion))
        uow = self.service.uow()

        async def action() -> tuple[int, Any]:
            created = await handlers.create_promotion(
                uow, self.settings, created_by=who.subject, data=data
            )
            return 201, {"promotion_id": created.id}

        payload = request.__deepcopy__()
        payload.ClearField("idempotency_key")
        stored = await run_idempotent(
            uow,
            caller=who.subject,
            operation="grpc.create_promotion",
            key=key,
            payload=payload.SerializeToString(deterministic=True).hex(),
            action=action,
        )
        promotion = await handlers.get_promotion(
            self.service.uow(), str(stored.body["promotion_id"])
        )
        return pb.CreatePromotionResponse(promotion=promotion_pb(promotion))

    async def ListPromotions(
        self, request: pb.ListPromotionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPromotionsResponse:
        authorize(Role.OPS)
        refuse_nul(request)
        limit, cursor = page_of(request.page)
        items, next_cursor = await handlers.list_promotions(
            self.service.uow(),
            active=request.active if request.HasField("active") else None,
            limit=limit,
            cursor=cursor,
        )
        return pb.ListPromotionsResponse(
            promotions=[promotion_pb(p) for p in items], next_page=next_page(next_cursor)
        )

    async def GetPromotion(
        self, request: pb.GetPromotionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPromotionResponse:
        authorize(Role.OPS)
        refuse_nul(request)
        promotion = await handlers.get_promotion(self.service.uow(), request.promotion_id)
        return pb.GetPromotionResponse(promotion=promotion_pb(promotion))

    async def UpdatePromotion(
        self, request: pb.UpdatePromotionRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdatePromotionResponse:
        who = authorize(Role.OPS)
        refuse_nul(request)
        changes: dict[str, Any] = {}
        if request.HasField("name"):
            changes["name"] = request.name
        if request.HasField("usage_limit"):
            changes["usage_limit"] = request.usage_limit
        if request.HasField("per_customer_limit"):
            changes["per_customer_limit"] = request.per_customer_limit
        if request.HasField("min_subtotal_minor"):
            changes["min_subtotal_minor"] = request.min_subtotal_minor
        if request.HasField("stackable"):
            changes["stackable"] = request.stackable
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
        promotion = await handlers.update_promotion(
            self.service.uow(),
            self.settings,
            changed_by=who.subject,
            promotion_id=request.promotion_id,
            changes=changes,
        )
        return pb.UpdatePromotionResponse(promotion=promotion_pb(promotion))

    async def DeactivatePromotion(
        self, request: pb.DeactivatePromotionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeactivatePromotionResponse:
        who = authorize(Role.OPS)
        refuse_nul(request)
        promotion = await handlers.deactivate_promotion(
            self.service.uow(), changed_by=who.subject, promotion_id=request.promotion_id
        )
        return pb.DeactivatePromotionResponse(promotion=promotion_pb(promotion))

    # --- quotes and checkout -------------------------------------------------------------------
    async def CreateQuote(
        self, request: pb.CreateQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateQuoteResponse:
        who = authorize(Role.CUSTOMER, Role.OPS, Role.SERVICE)
        refuse_nul(request)
        customer_id = _quote_customer(who, request.customer_id or None)
        lines = quote_lines(request.lines)
        codes = list(request.coupon_codes)
        key = check_key(request.idempotency_key, required=False)
        if key is None:
            quote = await handlers.create_quote(
                self.service.uow(),
                self.settings,
                customer_id=customer_id,
                currency=request.currency,
                lines=lines,
                coupon_codes=codes,
            )
            return pb.CreateQuoteResponse(quote=quote_pb(quote))
        uow = self.service.uow()

        async def action() -> tuple[int, Any]:
            created = await handlers.create_quote(
                uow,
                self.settings,
                customer_id=customer_id,
                currency=request.currency,
                lines=lines,
                coupon_codes=codes,
            )
            return 201, {"quote_id": created.quote_id}

        payload = request.__deepcopy__()
        payload.ClearField("idempotency_key")
        stored = await run_idempotent(
            uow,
            caller=who.subject,
            operation="grpc.create_quote",
            key=key,
            payload=payload.SerializeToString(deterministic=True).hex(),
            action=action,
        )
        quote = await handlers.quote_by_id(self.service.uow(), str(stored.body["quote_id"]))
        return pb.CreateQuoteResponse(quote=quote_pb(quote))

    async def GetQuote(
        self, request: pb.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetQuoteResponse:
        who = authorize(Role.CUSTOMER, Role.OPS, Role.SERVICE)
        refuse_nul(request)
        quote = await handlers.get_quote(self.service.uow(), who, request.quote_id)
        return pb.GetQuoteResponse(quote=quote_pb(quote))

    async def RedeemQuote(
        self, request: pb.RedeemQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedeemQuoteResponse:
        authorize(Role.SERVICE, Role.OPS)
        refuse_nul(request)
        result = await handlers.redeem_quote(
            self.service.uow(),
            quote_id=request.quote_id,
            order_id=request.order_id,
            customer_id=request.customer_id or None,
            expected_lines=quote_lines(request.expected_lines),
            expected_total_minor=request.expected_total_minor or None,
        )
        return pb.RedeemQuoteResponse(
            quote=quote_pb(result.quote),
            redemptions=[redemption_pb(r) for r in result.redemptions],
            replayed=result.replayed,
        )

    async def ReleaseRedemption(
        self, request: pb.ReleaseRedemptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseRedemptionResponse:
        authorize(Role.SERVICE, Role.OPS)
        refuse_nul(request)
        if not request.order_id or len(request.order_id) > 100 or len(request.reason) > 100:
            raise Unprocessable(
                "order_id is required (at most 100 characters); reason at most 100 characters",
                code="invalid-redemption",
            )
        result = await handlers.release_redemption(
            self.service.uow(), order_id=request.order_id, reason=request.reason or "released"
        )
        return pb.ReleaseRedemptionResponse(
            released_count=result.released_count,
            redemptions=[redemption_pb(r) for r in result.redemptions],
        )

    # --- competitor prices and suggestions -----------------------------------------------------
    async def SetCompetitorPrice(
        self, request: pb.SetCompetitorPriceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetCompetitorPriceResponse:
        who = authorize(Role.OPS, Role.PARTNER)
        refuse_nul(request)
        record = await handlers.set_competitor_price(
            self.service.uow(),
            recorded_by=who.subject,
            sku=request.sku,
            competitor=request.competitor,
            currency=request.currency,
            price_minor=request.price_minor,
            observed_at=when(request.observed_at, "observed_at"),
        )
        return pb.SetCompetitorPriceResponse(competitor_price=competitor_pb(record))

    async def ListSuggestions(
        self, request: pb.ListSuggestionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSuggestionsResponse:
        authorize(Role.OPS)
        refuse_nul(request)
        limit, cursor = page_of(request.page)
        items, next_cursor = await handlers.list_suggestions(
            self.service.uow(), self.settings, limit=limit, cursor=cursor
        )
        return pb.ListSuggestionsResponse(
            suggestions=[suggestion_pb(s) for s in items], next_page=next_page(next_cursor)
        )


def _quote_customer(caller: Caller, customer_id: str | None) -> str | None:
    if caller.is_customer:
        if customer_id is not None and customer_id != caller.subject:
            raise Forbidden("customers may only ask quotes for themselves")
        return caller.subject
    return customer_id


def register(service: Service, settings: PricingSettings) -> Any:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_PricingServiceServicer_to_server(  # type: ignore[no-untyped-call]
            PricingServicer(service, settings), server
        )

    return add
