"""gRPC servicer ecomops.support.v1.SupportService: decode, send the message to the bus,
encode — the same messages and handlers as REST."""

from __future__ import annotations

import grpc

from ecomops.common.v1 import common_pb2
from ecomops.support.v1 import support_service_pb2 as pb
from ecomops.support.v1 import support_service_pb2_grpc as pb_grpc
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for
from ecomops_platform.ports import check_key
from ecomops_platform.timestamps import optional_timestamp, to_datetime, to_timestamp

from ..domain.tickets import Category, Status
from ..service_layer.articles import PutArticle, SearchArticles
from ..service_layer.compensation import ApplyCompensation
from ..service_layer.kpis import GetSupportKpis
from ..service_layer.ports import Bus
from ..service_layer.tickets import (
    AddMessage,
    AnswerAutoReply,
    DeescalateTicket,
    EscalateTicket,
    GetTicket,
    ListTickets,
    OpenTicket,
    RateTicket,
    ResolveTicket,
)
from ..service_layer.views import ArticleMatchView, ArticleView, CompensationView, TicketView

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["SupportService"].full_name


def _match_pb(m: ArticleMatchView) -> pb.ArticleMatch:
    return pb.ArticleMatch(article_id=m.article_id, title=m.title, score=m.score)


def compensation_pb(c: CompensationView) -> pb.Compensation:
    return pb.Compensation(
        rule_id=c.rule_id,
        kind=c.kind,
        status=c.status,
        coupon_code=c.coupon_code or "",
        percent=c.percent or "",
        approved_by=c.approved_by,
        applied_at=to_timestamp(c.applied_at),
        return_id=c.return_id or "",
    )


def ticket_pb(t: TicketView) -> pb.Ticket:
    msg = pb.Ticket(
        ticket_id=t.ticket_id,
        customer_id=t.customer_id,
        order_id=t.order_id or "",
        category=t.category,
        subject=t.subject,
        language=t.language,
        status=t.status,
        tier=t.tier,
        priority=t.priority,
        sla_due_at=optional_timestamp(t.sla_due_at),
        suggested_articles=[_match_pb(m) for m in t.suggested_articles],
        auto_answer_article_id=t.auto_answer_article_id or "",
        order_context_missing=t.order_context_missing,
        messages=[
            pb.TicketMessage(
                message_id=m.message_id,
                author_role=m.author_role,
                author=m.author,
                body=m.body,
                created_at=to_timestamp(m.created_at),
            )
            for m in t.messages
        ],
        timeline=[
            pb.TimelineEntry(
                kind=e.kind,
                status=e.status,
                tier=e.tier,
                by=e.by,
                note=e.note,
                at=to_timestamp(e.at),
            )
            for e in t.timeline
        ],
        created_at=to_timestamp(t.created_at),
        first_response_at=optional_timestamp(t.first_response_at),
        resolved_at=optional_timestamp(t.resolved_at),
        sla_breaches=t.sla_breaches,
        reopened=t.reopened,
    )
    if t.order is not None:
        o = t.order
        msg.order.CopyFrom(
            pb.OrderContext(
                available=o.available,
                status=o.status or "",
                total=common_pb2.Money(amount_minor=o.total_minor or 0, currency=o.currency or ""),
                placed_at=optional_timestamp(o.placed_at),
                delivered_at=optional_timestamp(o.delivered_at),
                shipments=o.shipments,
                timeline=list(o.timeline),
            )
        )
    if t.compensation is not None:
        msg.compensation.CopyFrom(compensation_pb(t.compensation))
    if t.rating is not None:
        msg.csat = t.rating.csat
        msg.nps = t.rating.nps
    return msg


def article_pb(a: ArticleView) -> pb.Article:
    return pb.Article(
        article_id=a.article_id,
        title=a.title,
        body=a.body,
        category=a.category,
        language=a.language,
        keywords=list(a.keywords),
        version=a.version,
        updated_at=to_timestamp(a.updated_at),
    )


def _category(value: str, *, required: bool) -> Category | None:
    if not value and not required:
        return None
    try:
        return Category(value)
    except ValueError:
        raise Unprocessable(
            "category must be one of " + ", ".join(c.value for c in Category),
            code="validation-error",
        ) from None


def _status(value: str) -> Status | None:
    if not value:
        return None
    try:
        return Status(value)
    except ValueError:
        raise Unprocessable(
            "status must be one of " + ", ".join(s.value for s in Status), code="validation-error"
        ) from None


def _id(value: str, name: str, most: int = 64) -> str:
    if not value or len(value) > most:
        raise Unprocessable(f"{name} must be 1..{most} characters", code="validation-error")
    return value


class SupportServicer(pb_grpc.SupportServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def OpenTicket(
        self, request: pb.OpenTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenTicketResponse:
        caller = caller_for(OpenTicket)
        key = check_key(request.idempotency_key)
        category = _category(request.category, required=True)
        assert category is not None
        if len(request.order_id) > 200 or len(request.customer_id) > 200:
            raise Unprocessable("order_id, customer_id: at most 200 characters")
        result = await self.bus.handle(
            OpenTicket(
                customer_id=request.customer_id,
                order_id=request.order_id or None,
                category=category,
                subject=request.subject,
                message=request.message,
                language=request.language or None,
            ),
            caller,
            idempotency_key=key,
        )
        return pb.OpenTicketResponse(ticket=ticket_pb(result))

    async def GetTicket(
        self, request: pb.GetTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTicketResponse:
        caller = caller_for(GetTicket)
        view = await self.bus.handle(
            GetTicket(ticket_id=_id(request.ticket_id, "ticket_id")), caller
        )
        return pb.GetTicketResponse(ticket=ticket_pb(view))

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTicketsResponse:
        caller = caller_for(ListTickets)
        page = await self.bus.handle(
            ListTickets(
                tier=request.tier or None,
                status=_status(request.status),
                category=_category(request.category, required=False),
                overdue=request.overdue,
                limit=request.page.limit or None,
                cursor=request.page.cursor or None,
            ),
            caller,
        )
        return pb.ListTicketsResponse(
            tickets=[ticket_pb(t) for t in page.items],
            next_page=common_pb2.PageResponse(next_cursor=page.next_cursor or ""),
        )

    async def AddMessage(
        self, request: pb.AddMessageRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddMessageResponse:
        caller = caller_for(AddMessage)
        view = await self.bus.handle(
            AddMessage(ticket_id=_id(request.ticket_id, "ticket_id"), body=request.body), caller
        )
        return pb.AddMessageResponse(ticket=ticket_pb(view))

    async def AnswerAutoReply(
        self, request: pb.AnswerAutoReplyRequest, context: grpc.aio.ServicerContext
    ) -> pb.AnswerAutoReplyResponse:
        caller = caller_for(AnswerAutoReply)
        view = await self.bus.handle(
            AnswerAutoReply(ticket_id=_id(request.ticket_id, "ticket_id"), solved=request.solved),
            caller,
        )
        return pb.AnswerAutoReplyResponse(ticket=ticket_pb(view))

    async def EscalateTicket(
        self, request: pb.EscalateTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.EscalateTicketResponse:
        caller = caller_for(EscalateTicket)
        view = await self.bus.handle(
            EscalateTicket(ticket_id=_id(request.ticket_id, "ticket_id"), note=request.note),
            caller,
        )
        return pb.EscalateTicketResponse(ticket=ticket_pb(view))

    async def DeescalateTicket(
        self, request: pb.DeescalateTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeescalateTicketResponse:
        caller = caller_for(DeescalateTicket)
        view = await self.bus.handle(
            DeescalateTicket(ticket_id=_id(request.ticket_id, "ticket_id"), note=request.note),
            caller,
        )
        return pb.DeescalateTicketResponse(ticket=ticket_pb(view))

    async def ResolveTicket(
        self, request: pb.ResolveTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveTicketResponse:
        caller = caller_for(ResolveTicket)
        view = await self.bus.handle(
            ResolveTicket(ticket_id=_id(request.ticket_id, "ticket_id"), note=request.note),
            caller,
        )
        return pb.ResolveTicketResponse(ticket=ticket_pb(view))

    async def ApplyCompensation(
        self, request: pb.ApplyCompensationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyCompensationResponse:
        caller = caller_for(ApplyCompensation)
        view = await self.bus.handle(
            ApplyCompensation(
                ticket_id=_id(request.ticket_id, "ticket_id"),
                rule_id=_id(request.rule_id, "rule_id", 100),
            ),
            caller,
        )
        return pb.ApplyCompensationResponse(compensation=compensation_pb(view))

    async def RateTicket(
        self, request: pb.RateTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.RateTicketResponse:
        caller = caller_for(RateTicket)
        view = await self.bus.handle(
            RateTicket(
                ticket_id=_id(request.ticket_id, "ticket_id"),
                csat=request.csat,
                nps=request.nps,
                comment=request.comment,
            ),
            caller,
        )
        return pb.RateTicketResponse(ticket=ticket_pb(view))

    async def PutArticle(
        self, request: pb.PutArticleRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutArticleResponse:
        caller = caller_for(PutArticle)
        a = request.article
        view = await self.bus.handle(
            PutArticle(
                article_id=a.article_id,
                title=a.title,
                body=a.body,
                category=a.category,
                language=a.language,
                keywords=tuple(a.keywords),
            ),
            caller,
        )
        return pb.PutArticleResponse(article=article_pb(view))

    async def SearchArticles(
        self, request: pb.SearchArticlesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchArticlesResponse:
        caller = caller_for(SearchArticles)
        found = await self.bus.handle(
            SearchArticles(q=request.q, language=request.language or None), caller
        )
        return pb.SearchArticlesResponse(matches=[_match_pb(m) for m in found.items])

    async def GetSupportKpis(
        self, request: pb.GetSupportKpisRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSupportKpisResponse:
        caller = caller_for(GetSupportKpis)
        k = await self.bus.handle(
            GetSupportKpis(
                from_time=to_datetime(request.from_time, "from_time")
                if request.HasField("from_time")
                else None,
                to_time=to_datetime(request.to_time, "to_time")
                if request.HasField("to_time")
                else None,
            ),
            caller,
        )
        return pb.GetSupportKpisResponse(
            tickets_opened=k.tickets_opened,
            first_response_p50_seconds=k.first_response_p50_seconds or 0.0,
            first_response_p90_seconds=k.first_response_p90_seconds or 0.0,
            resolution_p50_seconds=k.resolution_p50_seconds or 0.0,
            resolution_p90_seconds=k.resolution_p90_seconds or 0.0,
            sla_breach_rate=k.sla_breach_rate or 0.0,
            auto_answer_rate=k.auto_answer_rate or 0.0,
            reopen_rate=k.reopen_rate or 0.0,
            csat_average=k.csat_average or 0.0,
            nps=k.nps or 0.0,
            contact_rate_per_100_orders=k.contact_rate_per_100_orders or 0.0,
            ratings=k.ratings,
            orders=k.orders,
        )
