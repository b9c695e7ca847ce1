"""Tickets: open (matched against the knowledge base, answered by it above the configured
confidence), read, the agents' queue, the thread, the customer's answer to an automatic reply,
escalation by hand and by the SLA job, resolution, closing, rating."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import Conflict, DependencyUnavailable, NotFound, Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..domain.tickets import (
    REOPEN_WINDOW,
    Category,
    Change,
    SlaClock,
    Status,
    Ticket,
    check_rating,
    priority_for,
)
from . import events
from .kb_cache import detect_language
from .ports import Ctx, OrderSnapshot, SupportUnitOfWork, TicketFilter, TicketRecord
from .views import (
    MessageView,
    OrderContextView,
    RatingView,
    TicketPage,
    TicketView,
    TimelineView,
)

OPS = (Role.OPS,)
CUSTOMER_OR_OPS = (Role.CUSTOMER, Role.OPS)
TICKET_NS = uuid.UUID("5d0f3a52-3f7c-4c55-9d5e-2f5a0c1b7e11")
SUGGESTIONS = 3


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenTicket(
    Command[TicketView],
    roles=CUSTOMER_OR_OPS,
    idempotent=True,
    claim_first=True,
    owned_by="customer_id",
):
    """Open a ticket (an order_id must be the customer's: 404 otherwise)."""

    customer_id: str = ""
    order_id: str | None = None
    category: Category
    subject: str
    message: str
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetTicket(Query[TicketView], roles=CUSTOMER_OR_OPS):
    ticket_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListTickets(Query[TicketPage], roles=CUSTOMER_OR_OPS):
    """The agents' queue (ops), or the customer's own tickets."""

    tier: int | None = None
    status: Status | None = None
    category: Category | None = None
    overdue: bool = False
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddMessage(Command[TicketView], roles=CUSTOMER_OR_OPS):
    ticket_id: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerAutoReply(Command[TicketView], roles=CUSTOMER_OR_OPS):
    """The customer's answer to an automatic answer: solved → resolved, not → tier 1."""

    ticket_id: str
    solved: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateTicket(Command[TicketView], roles=OPS):
    ticket_id: str
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeescalateTicket(Command[TicketView], roles=OPS):
    ticket_id: str
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveTicket(Command[TicketView], roles=OPS):
    ticket_id: str
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateTicket(Command[TicketView], roles=(Role.CUSTOMER,)):
    """Rate a resolved (or closed) ticket, once."""

    ticket_id: str
    csat: int
    nps: int
    comment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateOverdue(Command[int], roles=(Role.SERVICE,)):
    """The SLA job: tickets past their target are recorded as breached and moved up a tier."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseResolved(Command[int], roles=(Role.SERVICE,)):
    """Tickets resolved more than 7 days ago are closed (no reopening after that)."""


# --- helpers ----------------------------------------------------------------------------------


def _require_text(value: str, name: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise Unprocessable(f"{name} must not be empty", code="validation-error")
    if len(text) > limit:
        raise Unprocessable(f"{name} is longer than {limit} characters", code="validation-error")
    return text


def _with_state(record: TicketRecord, state: Ticket, ctx: Ctx) -> TicketRecord:
    return dataclasses.replace(
        record, state=state, sla_due_at=state.due_at(ctx.deps.sla), updated_at=ctx.deps.clock()
    )


async def _change(
    uow: SupportUnitOfWork,
    record: TicketRecord,
    state: Ticket,
    ctx: Ctx,
    kind: str,
    note: str = "",
    by: str | None = None,
) -> TicketRecord:
    new = _with_state(record, state, ctx)
    await uow.tickets.save(new)
    who = ctx.caller.subject if by is None else by
    await uow.tickets.add_change(
        state.ticket_id,
        Change(kind, state.status, state.tier, who, note, ctx.deps.clock()),
    )
    return new


async def _load(uow: SupportUnitOfWork, ctx: Ctx, ticket_id: str) -> TicketRecord:
    record = await uow.tickets.get(ticket_id, for_update=True)
    if record is None:
        raise NotFound(f"ticket {ticket_id} not found")
    ctx.ensure_visible(record.state.customer_id, "ticket", ticket_id)
    return record


async def _full(
    uow: SupportUnitOfWork, record: TicketRecord, order: OrderContextView | None = None
) -> TicketView:
    tid = record.state.ticket_id
    return view_of(
        record,
        messages=tuple(await uow.tickets.messages(tid)),
        timeline=tuple(await uow.tickets.timeline(tid)),
        compensation=await uow.compensations.get(tid),
        rating=await uow.ratings.get(tid),
        order=order,
    )


def view_of(record: TicketRecord, **extra: object) -> TicketView:
    t = record.state
    return TicketView(
        ticket_id=t.ticket_id,
        customer_id=t.customer_id,
        order_id=record.order_id,
        category=record.category,
        subject=record.subject,
        language=record.language,
        status=t.status.value,
        tier=t.tier,
        priority=t.priority.label,
        sla_due_at=record.sla_due_at,
        suggested_articles=record.suggested,
        auto_answer_article_id=record.auto_answer_article_id,
        order_context_missing=record.order_context_missing,
        created_at=t.created_at,
        updated_at=record.updated_at,
        first_response_at=t.first_response_at,
        resolved_at=t.resolved_at,
        closed_at=t.closed_at,
        sla_breaches=t.breaches,
        reopened=t.reopened,
        **extra,  # type: ignore[arg-type]
    )


async def _order(ctx: Ctx, order_id: str) -> tuple[OrderSnapshot | None, bool]:
    """(the order, whether the order service answered); the service's events stand in for it
    when it cannot be reached."""
    try:
        return await ctx.deps.ports.orders.get(order_id), True
    except DependencyUnavailable:
        async with ctx.uow:
            return await ctx.uow.order_activity.get(order_id), False


# --- handlers ---------------------------------------------------------------------------------


@handler
async def open_ticket(cmd: OpenTicket, ctx: Ctx) -> TicketView:
    if not cmd.customer_id:
        raise Unprocessable(
            "customer_id is required when ops open a ticket", code="validation-error"
        )
    subject = _require_text(cmd.subject, "subject", 200)
    body = _require_text(cmd.message, "message", 5000)
    if cmd.language not in (None, "", "en", "zh"):
        raise Unprocessable("language must be en or zh", code="validation-error")
    language = cmd.language or detect_language(f"{subject} {body}")
    now = ctx.deps.clock()
    assert ctx.idempotency_key is not None
    ticket_id = str(uuid.uuid5(TICKET_NS, f"{ctx.caller.subject}\n{ctx.idempotency_key}"))

    order: OrderSnapshot | None = None
    context_missing = False
    if cmd.order_id:
        order, answered = await _order(ctx, cmd.order_id)
        if answered and (order is None or order.customer_id != cmd.customer_id):
            raise NotFound(f"order {cmd.order_id} not found")
        if not answered:
            # The order service is down: the ticket still opens, its context marked missing
            # (an order the events say is someone else's is still refused).
            context_missing = True
            if order is not None and order.customer_id != cmd.customer_id:
                raise NotFound(f"order {cmd.order_id} not found")

    async with ctx.uow:
        _, matches = await ctx.deps.knowledge.matches(
            ctx.uow, f"{subject}\n{body}", language, SUGGESTIONS
        )
        previous = (
            await ctx.uow.tickets.contacts_on_order(cmd.order_id, cmd.customer_id)
            if cmd.order_id
            else 0
        )
    priority = priority_for(
        order_value_minor=order.total_minor if order else None,
        previous_contacts=previous,
        high_value_minor=ctx.deps.high_value_minor,
        urgent_value_minor=ctx.deps.urgent_value_minor,
    )
    state = Ticket(
        ticket_id=ticket_id,
        customer_id=cmd.customer_id,
        status=Status.OPEN,
        tier=1,
        priority=priority,
        clock=SlaClock(started_at=now),
        created_at=now,
    )
    best = matches[0] if matches else None
    auto = best is not None and best.score >= ctx.deps.auto_answer_confidence
    if auto:
        state = state.auto_answer()
    record = TicketRecord(
        state=state,
        order_id=cmd.order_id or None,
        category=cmd.category.value,
        subject=subject,
        language=language,
        suggested=tuple(matches),
        auto_answer_article_id=best.article_id if auto and best else None,
        order_context_missing=context_missing,
        order_value_minor=order.total_minor if order else None,
        currency=order.currency if order else None,
        auto_answered=auto,
        sla_due_at=state.due_at(ctx.deps.sla),
        updated_at=now,
    )
    first = MessageView(str(uuid.uuid4()), "customer", ctx.caller.subject, body, now)
    thread = [first]
    changes = [Change("opened", Status.OPEN, 1, ctx.caller.subject, "", now)]
    if auto and best is not None:
        thread.append(
            MessageView(
                str(uuid.uuid4()),
                "system",
                "knowledge-base",
                f"This article may answer your question: {best.title} ({best.article_id}). "
                "Tell us if it did not solve your problem.",
                now,
            )
        )
        changes.append(Change("auto_answered", Status.AUTO_ANSWERED, 1, "", best.article_id, now))
    view = view_of(
        record, messages=tuple(thread), timeline=tuple(_timeline_view(c) for c in changes)
    )
    async with ctx.uow:
        await ctx.store_result(view)
        await ctx.uow.tickets.add(record)
        for m in thread:
            await ctx.uow.tickets.add_message(ticket_id, m)
        for c in changes:
            await ctx.uow.tickets.add_change(ticket_id, c)
        ctx.uow.add_event(events.ticket_opened(record), key=ticket_id, occurred_at=now)
        await ctx.uow.commit()
    return view


def _timeline_view(change: Change) -> TimelineView:
    return TimelineView(
        change.kind, change.status.value, change.tier, change.by, change.note, change.at
    )


@handler
async def get_ticket(query: GetTicket, ctx: Ctx) -> TicketView:
    async with ctx.uow:
        record = await ctx.uow.tickets.get(query.ticket_id)
        if record is None:
            raise NotFound(f"ticket {query.ticket_id} not found")
        ctx.ensure_visible(record.state.customer_id, "ticket", query.ticket_id)
    order: OrderContextView | None = None
    if not ctx.caller.is_customer and record.order_id:
        # Agents see the order as it is now (outside any transaction, with the deadline).
        try:
            snapshot = await ctx.deps.ports.orders.get(record.order_id)
            order = snapshot.context() if snapshot else OrderContextView(available=False)
        except DependencyUnavailable:
            order = OrderContextView(available=False)
    async with ctx.uow:
        return await _full(ctx.uow, record, order)


@handler
async def list_tickets(query: ListTickets, ctx: Ctx) -> TicketPage:
    size = check_limit(query.limit)
    position = decode_cursor(query.cursor)
    after = None
    if position:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
        if after[0].tzinfo is None:
            raise Unprocessable("cursor is not valid", code="invalid-cursor")
    if query.tier is not None and not 1 <= query.tier <= 3:
        raise Unprocessable("tier must be 1, 2 or 3", code="validation-error")
    flt = TicketFilter(
        customer_id=ctx.caller.subject if ctx.caller.is_customer else None,
        tier=query.tier,
        status=query.status.value if query.status else None,
        category=query.category.value if query.category else None,
        overdue_at=ctx.deps.clock() if query.overdue else None,
    )
    async with ctx.uow:
        rows = await ctx.uow.tickets.find(flt, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    cursor = (
        encode_cursor({"t": rows[-1].state.created_at.isoformat(), "id": rows[-1].state.ticket_id})
        if more
        else None
    )
    return TicketPage(tuple(view_of(r) for r in rows), cursor)


@handler
async def add_message(cmd: AddMessage, ctx: Ctx) -> TicketView:
    body = _require_text(cmd.body, "body", 5000)
    now = ctx.deps.clock()
    async with ctx.uow:
        record = await _load(ctx.uow, ctx, cmd.ticket_id)
        before = record.state
        if ctx.caller.is_customer:
            state = before.customer_message(now)
            role = "customer"
        else:
            state = before.agent_message(now)
            role = "agent"
        await ctx.uow.tickets.add_message(
            cmd.ticket_id, MessageView(str(uuid.uuid4()), role, ctx.caller.subject, body, now)
        )
        if state != before:
            kind = "reopened" if state.reopened > before.reopened else f"{role}_replied"
            if before.status is Status.AUTO_ANSWERED:
                kind = "not_solved"
            record = await _change(ctx.uow, record, state, ctx, kind)
            if kind == "not_solved":
                ctx.uow.add_event(
                    events.ticket_escalated(cmd.ticket_id, 0, 1, "not_solved", "", "", now),
                    key=cmd.ticket_id,
                    occurred_at=now,
                )
        view = await _full(ctx.uow, record)
        await ctx.uow.commit()
    return view


@handler
async def answer_auto_reply(cmd: AnswerAutoReply, ctx: Ctx) -> TicketView:
    now = ctx.deps.clock()
    async with ctx.uow:
        record = await _load(ctx.uow, ctx, cmd.ticket_id)
        if record.state.status is not Status.AUTO_ANSWERED:
            raise Conflict(
                f"ticket {cmd.ticket_id} is {record.state.status.value}, not auto_answered",
                code="ticket-state",
            )
        if cmd.solved:
            state = record.state.resolve(now)
            record = await _change(ctx.uow, record, state, ctx, "resolved", "solved by article")
            ctx.uow.add_event(
                events.ticket_resolved(record, ctx.caller.subject, True),
                key=cmd.ticket_id,
                occurred_at=now,
            )
        else:
            state = record.state.not_solved(now)
            record = await _change(ctx.uow, record, state, ctx, "not_solved")
            ctx.uow.add_event(
                events.ticket_escalated(cmd.ticket_id, 0, 1, "not_solved", "", "", now),
                key=cmd.ticket_id,
                occurred_at=now,
            )
        view = await _full(ctx.uow, record)
        await ctx.uow.commit()
    return view


async def _move(ctx: Ctx, ticket_id: str, note: str, up: bool) -> TicketView:
    text = _require_text(note, "note", 2000)
    now = ctx.deps.clock()
    async with ctx.uow:
        record = await _load(ctx.uow, ctx, ticket_id)
        before = record.state
        state = before.escalate(now) if up else before.deescalate(now)
        record = await _change(
            ctx.uow, record, state, ctx, "escalated" if up else "deescalated", text
        )
        if up:
            ctx.uow.add_event(
                events.ticket_escalated(
                    ticket_id, before.tier, state.tier, "manual", ctx.caller.subject, text, now
                ),
                key=ticket_id,
                occurred_at=now,
            )
        view = await _full(ctx.uow, record)
        await ctx.uow.commit()
    return view


@handler
async def escalate_ticket(cmd: EscalateTicket, ctx: Ctx) -> TicketView:
    return await _move(ctx, cmd.ticket_id, cmd.note, up=True)


@handler
async def deescalate_ticket(cmd: DeescalateTicket, ctx: Ctx) -> TicketView:
    return await _move(ctx, cmd.ticket_id, cmd.note, up=False)


@handler
async def resolve_ticket(cmd: ResolveTicket, ctx: Ctx) -> TicketView:
    if len(cmd.note) > 2000:
        raise Unprocessable("note is longer than 2000 characters", code="validation-error")
    now = ctx.deps.clock()
    async with ctx.uow:
        record = await _load(ctx.uow, ctx, cmd.ticket_id)
        state = record.state.resolve(now)
        record = await _change(ctx.uow, record, state, ctx, "resolved", cmd.note.strip())
        ctx.uow.add_event(
            events.ticket_resolved(record, ctx.caller.subject, False),
            key=cmd.ticket_id,
            occurred_at=now,
        )
        view = await _full(ctx.uow, record)
        await ctx.uow.commit()
    return view


@handler
async def rate_ticket(cmd: RateTicket, ctx: Ctx) -> TicketView:
    check_rating(cmd.csat, cmd.nps)
    if len(cmd.comment) > 2000:
        raise Unprocessable("comment is longer than 2000 characters", code="validation-error")
    now = ctx.deps.clock()
    async with ctx.uow:
        record = await _load(ctx.uow, ctx, cmd.ticket_id)
        if record.state.status not in (Status.RESOLVED, Status.CLOSED):
            raise Conflict(
                f"ticket {cmd.ticket_id} is {record.state.status.value}: rate it once resolved",
                code="ticket-state",
            )
        rating = RatingView(cmd.csat, cmd.nps, cmd.comment, now)
        if not await ctx.uow.ratings.add(cmd.ticket_id, record.state.customer_id, rating):
            raise Conflict(f"ticket {cmd.ticket_id} was rated already", code="already-rated")
        await ctx.uow.tickets.add_change(
            cmd.ticket_id,
            Change(
                "rated",
                record.state.status,
                record.state.tier,
                ctx.caller.subject,
                f"csat {cmd.csat}, nps {cmd.nps}",
                now,
            ),
        )
        ctx.uow.add_event(
            events.satisfaction_recorded(cmd.ticket_id, record.state.customer_id, rating),
            key=cmd.ticket_id,
            occurred_at=now,
        )
        view = await _full(ctx.uow, record)
        await ctx.uow.commit()
    return view


@handler
async def escalate_overdue(cmd: EscalateOverdue, ctx: Ctx) -> int:
    now = ctx.deps.clock()
    done = 0
    async with ctx.uow:
        for ticket_id in await ctx.uow.tickets.due(now, ctx.deps.job_batch_size):
            record = await ctx.uow.tickets.get(ticket_id, for_update=True)
            if record is None or not record.state.overdue(ctx.deps.sla, now):
                continue
            before = record.state
            target = "first response" if before.first_response_at is None else "resolution"
            state = before.breach(now)
            await _change(
                ctx.uow,
                record,
                state,
                ctx,
                "sla_breach",
                f"{target} target of tier {before.tier} missed",
                by="",
            )
            if state.tier != before.tier:
                ctx.uow.add_event(
                    events.ticket_escalated(
                        ticket_id, before.tier, state.tier, "sla_breach", "", target, now
                    ),
                    key=ticket_id,
                    occurred_at=now,
                )
            done += 1
        await ctx.uow.commit()
    return done


@handler
async def close_resolved(cmd: CloseResolved, ctx: Ctx) -> int:
    now = ctx.deps.clock()
    done = 0
    async with ctx.uow:
        for ticket_id in await ctx.uow.tickets.closable(
            now - REOPEN_WINDOW, ctx.deps.job_batch_size
        ):
            record = await ctx.uow.tickets.get(ticket_id, for_update=True)
            if record is None or not record.state.closable(now):
                continue
            await _change(ctx.uow, record, record.state.close(now), ctx, "closed", by="")
            done += 1
        await ctx.uow.commit()
    return done
