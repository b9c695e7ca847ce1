"""REST API of the support service (/v1): decode, send the message to the bus, encode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ecomops_platform.auth import Caller
from ecomops_platform.rest import allowed, replayed
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey, Rfc3339Time

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
from ..service_layer.views import (
    ArticleSearchView,
    ArticleView,
    CompensationView,
    SupportKpis,
    TicketPage,
    TicketView,
)
from . import schemas as s

TicketId = Annotated[str, Path(min_length=1, max_length=64)]


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["support"])

    @router.post(
        "/tickets",
        status_code=201,
        response_model=TicketView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def open_ticket(
        body: s.TicketIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(OpenTicket)],
    ) -> TicketView:
        """Open a ticket: matched against the knowledge base (suggested_articles) and answered
        automatically above the configured confidence (status auto_answered). An order_id must
        be the caller's (404 otherwise)."""
        outcome = await bus.execute(
            OpenTicket(
                customer_id=body.customer_id or "",
                order_id=body.order_id,
                category=Category(body.category),
                subject=body.subject,
                message=body.message,
                language=body.language,
            ),
            caller,
            idempotency_key=key,
        )
        response.headers["Location"] = f"/v1/tickets/{outcome.result.ticket_id}"
        return replayed(outcome, response)

    @router.get("/tickets", response_model=TicketPage)
    async def list_tickets(
        caller: Annotated[Caller, allowed(ListTickets)],
        tier: Annotated[int | None, Query(ge=1, le=3)] = None,
        status: Status | None = None,
        category: Category | None = None,
        overdue: bool = False,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> TicketPage:
        """The agents' queue (ops: every ticket, oldest first, filtered), or the customer's own
        tickets; cursor pagination."""
        return await bus.handle(
            ListTickets(
                tier=tier,
                status=status,
                category=category,
                overdue=overdue,
                limit=limit,
                cursor=cursor,
            ),
            caller,
        )

    @router.get("/tickets/{ticket_id}", response_model=TicketView)
    async def get_ticket(
        ticket_id: TicketId, caller: Annotated[Caller, allowed(GetTicket)]
    ) -> TicketView:
        """A ticket with its thread and timeline; agents also get the order's current state
        (``order.available`` false when the order service cannot be reached)."""
        return await bus.handle(GetTicket(ticket_id=ticket_id), caller)

    @router.post("/tickets/{ticket_id}/messages", response_model=TicketView)
    async def add_message(
        ticket_id: TicketId,
        body: s.MessageIn,
        caller: Annotated[Caller, allowed(AddMessage)],
    ) -> TicketView:
        """Post on the thread (owner or agent). A customer's reply reopens a ticket resolved
        within the last 7 days; an agent's reply is the first response."""
        return await bus.handle(AddMessage(ticket_id=ticket_id, body=body.body), caller)

    @router.post("/tickets/{ticket_id}/auto-reply", response_model=TicketView)
    async def answer_auto_reply(
        ticket_id: TicketId,
        body: s.AutoReplyIn,
        caller: Annotated[Caller, allowed(AnswerAutoReply)],
    ) -> TicketView:
        """The customer's answer to the automatic answer: solved (resolved) or not (tier 1)."""
        return await bus.handle(AnswerAutoReply(ticket_id=ticket_id, solved=body.solved), caller)

    @router.post("/tickets/{ticket_id}/escalate", response_model=TicketView)
    async def escalate(
        ticket_id: TicketId, body: s.NoteIn, caller: Annotated[Caller, allowed(EscalateTicket)]
    ) -> TicketView:
        """One tier up, with a note (ops)."""
        return await bus.handle(EscalateTicket(ticket_id=ticket_id, note=body.note), caller)

    @router.post("/tickets/{ticket_id}/deescalate", response_model=TicketView)
    async def deescalate(
        ticket_id: TicketId, body: s.NoteIn, caller: Annotated[Caller, allowed(DeescalateTicket)]
    ) -> TicketView:
        """One tier down, with a note (ops)."""
        return await bus.handle(DeescalateTicket(ticket_id=ticket_id, note=body.note), caller)

    @router.post("/tickets/{ticket_id}/resolve", response_model=TicketView)
    async def resolve(
        ticket_id: TicketId, body: s.ResolveIn, caller: Annotated[Caller, allowed(ResolveTicket)]
    ) -> TicketView:
        """Resolve (ops)."""
        return await bus.handle(ResolveTicket(ticket_id=ticket_id, note=body.note), caller)

    @router.post("/tickets/{ticket_id}/compensation", response_model=CompensationView)
    async def compensate(
        ticket_id: TicketId,
        body: s.CompensationIn,
        caller: Annotated[Caller, allowed(ApplyCompensation)],
    ) -> CompensationView:
        """Apply a configured goodwill rule (ops; the caller is recorded as approver); once
        per ticket (409 after), a retry after a failure completes the same compensation."""
        return await bus.handle(
            ApplyCompensation(ticket_id=ticket_id, rule_id=body.rule_id), caller
        )

    @router.post("/tickets/{ticket_id}/rating", response_model=TicketView)
    async def rate(
        ticket_id: TicketId, body: s.RatingIn, caller: Annotated[Caller, allowed(RateTicket)]
    ) -> TicketView:
        """Rate a resolved ticket once (owner): csat 1..5, nps 0..10."""
        return await bus.handle(
            RateTicket(ticket_id=ticket_id, csat=body.csat, nps=body.nps, comment=body.comment),
            caller,
        )

    @router.put("/articles/{article_id}", response_model=ArticleView)
    async def put_article(
        article_id: Annotated[str, Path(min_length=1, max_length=100)],
        body: s.ArticleIn,
        caller: Annotated[Caller, allowed(PutArticle)],
    ) -> ArticleView:
        """Create or replace a knowledge-base article (ops)."""
        return await bus.handle(
            PutArticle(
                article_id=article_id,
                title=body.title,
                body=body.body,
                category=body.category,
                language=body.language,
                keywords=tuple(body.keywords),
            ),
            caller,
        )

    @router.get("/articles", response_model=ArticleSearchView)
    async def search_articles(
        caller: Annotated[Caller, allowed(SearchArticles)],
        q: Annotated[str, Query(min_length=1, max_length=2000)],
        language: Annotated[str | None, Query(pattern="^(en|zh)$")] = None,
        k: Annotated[int, Query(ge=1, le=20)] = 5,
    ) -> ArticleSearchView:
        """Search the knowledge base (best first, score a confidence in [0, 1])."""
        return await bus.handle(SearchArticles(q=q, language=language, k=k), caller)

    @router.get("/support/kpis", response_model=SupportKpis)
    async def kpis(
        caller: Annotated[Caller, allowed(GetSupportKpis)],
        from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
        to: Rfc3339Time | None = None,
    ) -> SupportKpis:
        """Service KPIs of the tickets opened in [from, to) (default: the last 30 days)."""
        return await bus.handle(GetSupportKpis(from_time=from_, to_time=to), caller)

    return router
