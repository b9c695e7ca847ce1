"""Ticket handlers through the bus on fakes: opening (ownership, order down, knowledge base),
the thread, escalation by hand and by the SLA job, compensation once, rating once, KPIs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecomops.support.v1 import events_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    Unprocessable,
)
from support_service.domain.knowledge import Article
from support_service.domain.tickets import Category
from support_service.service_layer.articles import PutArticle, SeedArticles
from support_service.service_layer.compensation import ApplyCompensation
from support_service.service_layer.kpis import GetSupportKpis
from support_service.service_layer.order_activity import RecordOrderPlaced
from support_service.service_layer.tickets import (
    AddMessage,
    AnswerAutoReply,
    CloseResolved,
    DeescalateTicket,
    EscalateOverdue,
    EscalateTicket,
    GetTicket,
    ListTickets,
    OpenTicket,
    RateTicket,
    ResolveTicket,
)
from support_service.service_layer.views import ArticleMatchView

from .fakes import NOW, Clock, FakeCoupons, FakeOrders, FakeSupportUnitOfWork, FixedKnowledge, bus

ALICE = Caller("alice", Role.CUSTOMER)
BOB = Caller("bob", Role.CUSTOMER)
AGENT = Caller("agent-7", Role.OPS)
SYSTEM = Caller("ecomops-support", Role.SERVICE)
WEAK = [ArticleMatchView("kb-delivery-times", "Delivery times", 0.31)]
STRONG = [ArticleMatchView("kb-delivery-times", "Delivery times", 0.92)]


def opening(order_id: str | None = "o-1", **kw: object) -> OpenTicket:
    fields: dict[str, object] = {
        "order_id": order_id,
        "category": Category.DELIVERY,
        "subject": "Where is my parcel?",
        "message": "It was due last week and has not arrived.",
    }
    fields.update(kw)
    return OpenTicket(**fields)  # type: ignore[arg-type]


async def test_open_with_own_order_records_ticket_thread_timeline_and_event() -> None:
    uow, orders = FakeSupportUnitOfWork(), FakeOrders()
    orders.add("o-1", "alice", total_minor=25_000)
    b = bus(uow, orders=orders, knowledge=FixedKnowledge(WEAK))
    out = await b.execute(opening(), ALICE, idempotency_key="k-1")
    t = out.result
    assert (t.status, t.tier, t.priority, t.customer_id) == ("open", 1, "high", "alice")
    assert t.sla_due_at == NOW + timedelta(hours=2)  # tier 1 first response, high priority
    assert [m.article_id for m in t.suggested_articles] == ["kb-delivery-times"]
    assert [m.author_role for m in t.messages] == ["customer"]
    assert [e.kind for e in t.timeline] == ["opened"]
    [event] = uow.events_of(events_pb2.TicketOpened)
    assert isinstance(event, events_pb2.TicketOpened)
    assert (event.ticket_id, event.order_id, event.priority) == (t.ticket_id, "o-1", "high")
    again = await b.execute(opening(), ALICE, idempotency_key="k-1")
    assert again.replayed and again.result.ticket_id == t.ticket_id
    assert len(uow.tickets.rows) == 1 and len(uow.events) == 1


async def test_another_customers_order_is_not_found_and_nothing_is_written() -> None:
    uow, orders = FakeSupportUnitOfWork(), FakeOrders()
    orders.add("o-1", "bob")
    b = bus(uow, orders=orders)
    for order_id in ("o-1", "o-unknown"):
        with pytest.raises(NotFound):
            await b.execute(opening(order_id), ALICE, idempotency_key=f"k-{order_id}")
    assert uow.tickets.rows == {} and uow.events == []
    with pytest.raises(Forbidden):
        await b.execute(opening(customer_id="bob"), ALICE, idempotency_key="k-x")


async def test_order_service_down_still_opens_with_context_missing() -> None:
    uow, orders = FakeSupportUnitOfWork(), FakeOrders()
    orders.down = True
    b = bus(uow, orders=orders)
    t = (await b.execute(opening(), ALICE, idempotency_key="k-1")).result
    assert t.order_context_missing and t.status == "open"
    # Known from order events as someone else's: still refused.
    await b.handle(
        RecordOrderPlaced(
            order_id="o-2", customer_id="bob", total_minor=1, currency="EUR", placed_at=NOW
        ),
        SYSTEM,
    )
    with pytest.raises(NotFound):
        await b.execute(opening("o-2"), ALICE, idempotency_key="k-2")
    # Agents see the context as missing too.
    view = await b.handle(GetTicket(ticket_id=t.ticket_id), AGENT)
    assert view.order is not None and not view.order.available


async def test_auto_answer_then_not_solved_goes_to_tier_1() -> None:
    uow = FakeSupportUnitOfWork()
    clock = Clock()
    b = bus(uow, knowledge=FixedKnowledge(STRONG), clock=clock, auto_answer_confidence=0.6)
    t = (await b.execute(opening(None), ALICE, idempotency_key="k-1")).result
    assert (t.status, t.auto_answer_article_id, t.sla_due_at) == (
        "auto_answered",
        "kb-delivery-times",
        None,
    )
    assert [m.author_role for m in t.messages] == ["customer", "system"]
    clock.advance(hours=1)
    t = await b.handle(AnswerAutoReply(ticket_id=t.ticket_id, solved=False), ALICE)
    assert (t.status, t.tier) == ("open", 1)
    assert t.sla_due_at == clock.now + timedelta(hours=4)
    [esc] = uow.events_of(events_pb2.TicketEscalated)
    assert isinstance(esc, events_pb2.TicketEscalated)
    assert (esc.reason, esc.to_tier) == ("not_solved", 1)
    with pytest.raises(Conflict):
        await b.handle(AnswerAutoReply(ticket_id=t.ticket_id, solved=True), ALICE)


async def test_customers_see_only_their_own_tickets_and_cannot_act_as_agents() -> None:
    uow = FakeSupportUnitOfWork()
    b = bus(uow)
    a = (await b.execute(opening(None), ALICE, idempotency_key="k-a")).result
    await b.execute(opening(None), BOB, idempotency_key="k-b")
    with pytest.raises(NotFound):
        await b.handle(GetTicket(ticket_id=a.ticket_id), BOB)
    with pytest.raises(NotFound):
        await b.handle(AddMessage(ticket_id=a.ticket_id, body="hi"), BOB)
    page = await b.handle(ListTickets(), BOB)
    assert [t.customer_id for t in page.items] == ["bob"]
    assert len((await b.handle(ListTickets(), AGENT)).items) == 2
    for cmd in (
        EscalateTicket(ticket_id=a.ticket_id, note="x"),
        ResolveTicket(ticket_id=a.ticket_id),
        ApplyCompensation(ticket_id=a.ticket_id, rule_id="late-delivery-10"),
        GetSupportKpis(),
        PutArticle(article_id="a", title="t", body="b", category="other", language="en"),
    ):
        with pytest.raises(Forbidden):
            await b.handle(cmd, ALICE)
    with pytest.raises(Forbidden):
        await b.handle(RateTicket(ticket_id=a.ticket_id, csat=5, nps=10), AGENT)


async def test_queue_filters_and_cursor_pages() -> None:
    uow, clock = FakeSupportUnitOfWork(), Clock()
    b = bus(uow, clock=clock)
    ids = []
    for i in range(5):
        clock.advance(minutes=1)
        ids.append(
            (await b.execute(opening(None), ALICE, idempotency_key=f"k-{i}")).result.ticket_id
        )
    await b.handle(EscalateTicket(ticket_id=ids[0], note="needs a technician"), AGENT)
    first = await b.handle(ListTickets(limit=2), AGENT)
    second = await b.handle(ListTickets(limit=2, cursor=first.next_cursor), AGENT)
    third = await b.handle(ListTickets(limit=2, cursor=second.next_cursor), AGENT)
    assert [t.ticket_id for t in (*first.items, *second.items, *third.items)] == ids
    assert third.next_cursor is None
    assert [t.ticket_id for t in (await b.handle(ListTickets(tier=2), AGENT)).items] == [ids[0]]
    assert (await b.handle(ListTickets(overdue=True), AGENT)).items == ()
    clock.advance(hours=5)
    overdue = await b.handle(ListTickets(overdue=True, tier=1), AGENT)
    assert [t.ticket_id for t in overdue.items] == ids[1:]


async def test_sla_job_escalates_overdue_tickets_once_and_records_the_breach() -> None:
    uow, clock = FakeSupportUnitOfWork(), Clock()
    b = bus(uow, clock=clock)
    t = (await b.execute(opening(None), ALICE, idempotency_key="k-1")).result
    clock.advance(hours=3, minutes=59)
    assert await b.handle(EscalateOverdue(), SYSTEM) == 0
    clock.advance(minutes=2)
    assert await b.handle(EscalateOverdue(), SYSTEM) == 1
    assert await b.handle(EscalateOverdue(), SYSTEM) == 0  # a new clock at tier 2
    view = await b.handle(GetTicket(ticket_id=t.ticket_id), AGENT)
    assert (view.status, view.tier, view.sla_breaches) == ("escalated", 2, 1)
    assert view.timeline[-1].kind == "sla_breach"
    [esc] = uow.events_of(events_pb2.TicketEscalated)
    assert isinstance(esc, events_pb2.TicketEscalated)
    assert (esc.reason, esc.from_tier, esc.to_tier) == ("sla_breach", 1, 2)
    # Waiting for the customer: the clock is paused, the job leaves it alone.
    await b.handle(AddMessage(ticket_id=t.ticket_id, body="Can you send a photo?"), AGENT)
    clock.advance(days=10)
    assert await b.handle(EscalateOverdue(), SYSTEM) == 0


async def test_manual_escalation_needs_ops_and_a_note_and_is_on_the_timeline() -> None:
    uow = FakeSupportUnitOfWork()
    b = bus(uow)
    t = (await b.execute(opening(None), ALICE, idempotency_key="k-1")).result
    up = await b.handle(EscalateTicket(ticket_id=t.ticket_id, note="refund dispute"), AGENT)
    assert (up.status, up.tier) == ("escalated", 2)
    down = await b.handle(DeescalateTicket(ticket_id=t.ticket_id, note="simple after all"), AGENT)
    assert (down.status, down.tier) == ("open", 1)
    assert [(e.kind, e.by, e.note) for e in down.timeline[1:]] == [
        ("escalated", "agent-7", "refund dispute"),
        ("deescalated", "agent-7", "simple after all"),
    ]


async def test_compensation_applied_once_with_the_approver_even_after_a_pricing_failure() -> None:
    uow, orders, coupons = FakeSupportUnitOfWork(), FakeOrders(), FakeCoupons()
    orders.add("o-1", "alice", placed_at=NOW - timedelta(days=10), delivered_at=NOW)
    b = bus(uow, orders=orders, coupons=coupons)
    t = (await b.execute(opening(), ALICE, idempotency_key="k-1")).result
    coupons.fail = True
    with pytest.raises(DependencyUnavailable):
        await b.handle(ApplyCompensation(ticket_id=t.ticket_id, rule_id="late-delivery-10"), AGENT)
    assert uow.compensations.rows[t.ticket_id].status == "pending"
    coupons.fail = False
    done = await b.handle(
        ApplyCompensation(ticket_id=t.ticket_id, rule_id="late-delivery-10"), AGENT
    )
    assert (done.status, done.approved_by, done.percent) == ("applied", "agent-7", "0.10")
    assert done.coupon_code and done.coupon_code.startswith("SUPPORT-")
    with pytest.raises(Conflict):
        await b.handle(ApplyCompensation(ticket_id=t.ticket_id, rule_id="late-delivery-10"), AGENT)
    assert len(coupons.issued) == 1
    view = await b.handle(GetTicket(ticket_id=t.ticket_id), ALICE)
    assert view.compensation is not None and view.compensation.status == "applied"
    assert view.order is None  # customers never get the order context


async def test_compensation_rule_must_fit() -> None:
    uow, orders = FakeSupportUnitOfWork(), FakeOrders()
    orders.add("o-1", "alice", placed_at=NOW - timedelta(days=4), delivered_at=NOW)  # 1 day late
    b = bus(uow, orders=orders)
    t = (await b.execute(opening(), ALICE, idempotency_key="k-1")).result
    with pytest.raises(Unprocessable):
        await b.handle(ApplyCompensation(ticket_id=t.ticket_id, rule_id="late-delivery-10"), AGENT)
    with pytest.raises(NotFound):
        await b.handle(ApplyCompensation(ticket_id=t.ticket_id, rule_id="nope"), AGENT)
    assert uow.compensations.rows == {}


async def test_rating_once_after_resolution_and_reopen_within_7_days() -> None:
    uow, clock = FakeSupportUnitOfWork(), Clock()
    b = bus(uow, clock=clock)
    t = (await b.execute(opening(None), ALICE, idempotency_key="k-1")).result
    with pytest.raises(Conflict):
        await b.handle(RateTicket(ticket_id=t.ticket_id, csat=4, nps=9), ALICE)
    await b.handle(AddMessage(ticket_id=t.ticket_id, body="On its way again."), AGENT)
    await b.handle(ResolveTicket(ticket_id=t.ticket_id, note="re-shipped"), AGENT)
    rated = await b.handle(RateTicket(ticket_id=t.ticket_id, csat=4, nps=9), ALICE)
    assert rated.rating is not None and rated.rating.csat == 4
    with pytest.raises(Conflict):
        await b.handle(RateTicket(ticket_id=t.ticket_id, csat=1, nps=0), ALICE)
    clock.advance(days=3)
    reopened = await b.handle(AddMessage(ticket_id=t.ticket_id, body="Still nothing"), ALICE)
    assert (reopened.status, reopened.reopened) == ("open", 1)
    await b.handle(ResolveTicket(ticket_id=t.ticket_id), AGENT)
    clock.advance(days=8)
    assert await b.handle(CloseResolved(), SYSTEM) == 1
    with pytest.raises(Conflict):
        await b.handle(AddMessage(ticket_id=t.ticket_id, body="hello?"), ALICE)
    kinds = [e.kind for e in (await b.handle(GetTicket(ticket_id=t.ticket_id), ALICE)).timeline]
    assert kinds == [
        "opened",
        "agent_replied",
        "resolved",
        "rated",
        "reopened",
        "resolved",
        "closed",
    ]


async def test_kpis() -> None:
    uow, clock = FakeSupportUnitOfWork(), Clock()
    b = bus(uow, clock=clock, knowledge=FixedKnowledge(STRONG))
    for i in range(4):
        await b.handle(
            RecordOrderPlaced(
                order_id=f"o-{i}",
                customer_id="alice",
                total_minor=100,
                currency="EUR",
                placed_at=NOW,
            ),
            SYSTEM,
        )
    auto = (await b.execute(opening(None), ALICE, idempotency_key="k-1")).result
    b2 = bus(uow, clock=clock)
    t = (await b2.execute(opening(None), BOB, idempotency_key="k-2")).result
    clock.advance(hours=1)
    await b2.handle(AddMessage(ticket_id=t.ticket_id, body="Looking into it"), AGENT)
    clock.advance(hours=1)
    await b2.handle(ResolveTicket(ticket_id=t.ticket_id), AGENT)
    await b2.handle(AnswerAutoReply(ticket_id=auto.ticket_id, solved=True), ALICE)
    await b2.handle(RateTicket(ticket_id=t.ticket_id, csat=5, nps=10), BOB)
    await b2.handle(RateTicket(ticket_id=auto.ticket_id, csat=2, nps=3), ALICE)
    k = await b2.handle(
        GetSupportKpis(from_time=NOW - timedelta(days=1), to_time=NOW + timedelta(days=1)), AGENT
    )
    assert k.tickets_opened == 2 and k.orders == 4
    assert k.contact_rate_per_100_orders == 50.0
    assert k.auto_answer_rate == 0.5
    assert k.first_response_p50_seconds == 3600.0
    assert k.resolution_p90_seconds == 7200.0
    assert k.csat_average == 3.5 and k.nps == 0.0
    assert k.sla_breach_rate == 0.0 and k.reopen_rate == 0.0


async def test_articles_put_and_seed_bump_the_version() -> None:
    uow = FakeSupportUnitOfWork()
    b = bus(uow)
    a = await b.handle(
        PutArticle(
            article_id="kb-1",
            title="Returns",
            body="30 days",
            category="return",
            language="en",
            keywords=("return",),
        ),
        AGENT,
    )
    assert a.version == 1
    starter = (Article("kb-2", "Refunds", "5 days", "return", "en"),)
    assert await b.handle(SeedArticles(articles=starter, only_when_empty=True), SYSTEM) == 0
    assert await b.handle(SeedArticles(articles=starter), SYSTEM) == 1
    assert await uow.articles.version() == 2


async def test_a_forged_cursor_is_refused() -> None:
    from ecomops_platform.pagination import encode_cursor

    b = bus(FakeSupportUnitOfWork())
    for position in ({"t": "2026-01-01T00:00:00", "id": "x"}, {"t": "yesterday", "id": "x"}):
        with pytest.raises(Unprocessable):
            await b.handle(ListTickets(cursor=encode_cursor(position)), AGENT)


async def test_return_rule_requests_and_approves_a_return_of_the_delivered_order_once() -> None:
    from .fakes import FakeReturns

    uow, orders, returns = FakeSupportUnitOfWork(), FakeOrders(), FakeReturns()
    orders.add("o-1", "alice", delivered_at=NOW - timedelta(days=1))
    orders.add("o-2", "alice")  # not delivered
    b = bus(uow, orders=orders, returns=returns)
    damaged = {"category": Category.PRODUCT, "subject": "Broken", "message": "Arrived broken"}
    t = (await b.execute(opening("o-1", **damaged), ALICE, idempotency_key="k-1")).result
    returns.fail = True
    with pytest.raises(DependencyUnavailable):
        await b.handle(
            ApplyCompensation(ticket_id=t.ticket_id, rule_id="damaged-item-return"), AGENT
        )
    returns.fail = False
    done = await b.handle(
        ApplyCompensation(ticket_id=t.ticket_id, rule_id="damaged-item-return"), AGENT
    )
    assert (done.kind, done.status, done.coupon_code) == ("return", "applied", None)
    assert done.return_id == f"rma-support-return-{t.ticket_id}"
    assert returns.requested == {f"support-return-{t.ticket_id}": ("o-1", (("SKU-1", 2),))}
    with pytest.raises(Conflict):
        await b.handle(ApplyCompensation(ticket_id=t.ticket_id, rule_id="late-delivery-10"), AGENT)
    undelivered = (await b.execute(opening("o-2", **damaged), ALICE, idempotency_key="k-2")).result
    with pytest.raises(Unprocessable):
        await b.handle(
            ApplyCompensation(ticket_id=undelivered.ticket_id, rule_id="damaged-item-return"),
            AGENT,
        )
    # A ticket without an order: nothing to return.
    other = (await b.execute(opening(None, **damaged), ALICE, idempotency_key="k-3")).result
    rule = "damaged-item-return"
    with pytest.raises(Unprocessable):
        await b.handle(ApplyCompensation(ticket_id=other.ticket_id, rule_id=rule), AGENT)
    # The order service now says the order is someone else's: refused, nothing reserved.
    orders.add("o-3", "alice", delivered_at=NOW)
    moved = (await b.execute(opening("o-3", **damaged), ALICE, idempotency_key="k-4")).result
    orders.add("o-3", "bob", delivered_at=NOW)
    with pytest.raises(Conflict):
        await b.handle(ApplyCompensation(ticket_id=moved.ticket_id, rule_id=rule), AGENT)
    assert moved.ticket_id not in uow.compensations.rows
