"""In-memory fakes of the support ports (repositories, order, pricing, knowledge) for handler
tests through the bus, without PostgreSQL."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ecomops_platform.bus import MessageBus, handlers_in
from ecomops_platform.errors import DependencyUnavailable
from ecomops_testing.fakes import FakeUnitOfWork
from support_service.domain.knowledge import Article
from support_service.domain.tickets import Change
from support_service.service_layer import articles, compensation, kpis, order_activity, tickets
from support_service.service_layer.kb_cache import KnowledgeCache
from support_service.service_layer.ports import (
    Deps,
    KpiTicketRow,
    OrderSnapshot,
    Ports,
    TicketFilter,
    TicketRecord,
)
from support_service.service_layer.views import (
    ArticleMatchView,
    ArticleView,
    CompensationView,
    MessageView,
    RatingView,
    TimelineView,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class FakeTickets:
    def __init__(self) -> None:
        self.rows: dict[str, TicketRecord] = {}
        self.thread: dict[str, list[MessageView]] = {}
        self.changes: dict[str, list[Change]] = {}

    async def add(self, record: TicketRecord) -> None:
        assert record.state.ticket_id not in self.rows
        self.rows[record.state.ticket_id] = record

    async def get(self, ticket_id: str, *, for_update: bool = False) -> TicketRecord | None:
        return self.rows.get(ticket_id)

    async def save(self, record: TicketRecord) -> None:
        self.rows[record.state.ticket_id] = record

    async def contacts_on_order(self, order_id: str, customer_id: str) -> int:
        return sum(
            1
            for r in self.rows.values()
            if r.order_id == order_id and r.state.customer_id == customer_id
        )

    async def find(
        self, flt: TicketFilter, after: tuple[datetime, str] | None, limit: int
    ) -> list[TicketRecord]:
        out = []
        for r in sorted(self.rows.values(), key=lambda r: (r.state.created_at, r.state.ticket_id)):
            t = r.state
            if flt.customer_id is not None and t.customer_id != flt.customer_id:
                continue
            if flt.tier is not None and t.tier != flt.tier:
                continue
            if flt.status is not None and t.status.value != flt.status:
                continue
            if flt.category is not None and r.category != flt.category:
                continue
            if flt.overdue_at is not None and not (
                t.status.value in ("open", "escalated")
                and r.sla_due_at is not None
                and r.sla_due_at < flt.overdue_at
            ):
                continue
            if after is not None and (t.created_at, t.ticket_id) <= after:
                continue
            out.append(r)
        return out[:limit]

    async def due(self, now: datetime, limit: int) -> list[str]:
        rows = [
            r
            for r in self.rows.values()
            if r.state.status.value in ("open", "escalated")
            and r.sla_due_at is not None
            and r.sla_due_at < now
        ]
        rows.sort(key=lambda r: r.sla_due_at or now)
        return [r.state.ticket_id for r in rows[:limit]]

    async def closable(self, resolved_before: datetime, limit: int) -> list[str]:
        return [
            r.state.ticket_id
            for r in self.rows.values()
            if r.state.status.value == "resolved"
            and r.state.resolved_at is not None
            and r.state.resolved_at < resolved_before
        ][:limit]

    async def add_message(self, ticket_id: str, message: MessageView) -> None:
        self.thread.setdefault(ticket_id, []).append(message)

    async def messages(self, ticket_id: str) -> list[MessageView]:
        return list(self.thread.get(ticket_id, []))

    async def add_change(self, ticket_id: str, change: Change) -> None:
        self.changes.setdefault(ticket_id, []).append(change)

    async def timeline(self, ticket_id: str) -> list[TimelineView]:
        return [
            TimelineView(c.kind, c.status.value, c.tier, c.by, c.note, c.at)
            for c in self.changes.get(ticket_id, [])
        ]


class FakeCompensations:
    def __init__(self) -> None:
        self.rows: dict[str, CompensationView] = {}

    async def get(self, ticket_id: str) -> CompensationView | None:
        return self.rows.get(ticket_id)

    async def reserve(self, view: CompensationView) -> bool:
        if view.ticket_id in self.rows:
            return False
        self.rows[view.ticket_id] = view
        return True

    async def mark_applied(
        self, ticket_id: str, at: datetime, return_id: str | None = None
    ) -> CompensationView | None:
        row = self.rows.get(ticket_id)
        if row is None or row.status != "pending":
            return None
        self.rows[ticket_id] = dataclasses.replace(
            row, status="applied", applied_at=at, return_id=return_id
        )
        return self.rows[ticket_id]


class FakeRatings:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, RatingView]] = {}

    async def add(self, ticket_id: str, customer_id: str, rating: RatingView) -> bool:
        if ticket_id in self.rows:
            return False
        self.rows[ticket_id] = (customer_id, rating)
        return True

    async def get(self, ticket_id: str) -> RatingView | None:
        row = self.rows.get(ticket_id)
        return row[1] if row else None


class FakeArticles:
    def __init__(self) -> None:
        self.rows: dict[str, ArticleView] = {}
        self.seq = 0

    async def put(self, article: Article, now: datetime) -> ArticleView:
        self.seq += 1
        view = ArticleView(
            article.article_id,
            article.title,
            article.body,
            article.category,
            article.language,
            tuple(article.keywords),
            self.seq,
            now,
        )
        self.rows[article.article_id] = view
        return view

    async def put_if_absent(self, article: Article, now: datetime) -> bool:
        if article.article_id in self.rows:
            return False
        await self.put(article, now)
        return True

    async def all(self) -> list[ArticleView]:
        return sorted(self.rows.values(), key=lambda a: a.article_id)

    async def version(self) -> int:
        return max((a.version for a in self.rows.values()), default=0)


class FakeOrderActivity:
    def __init__(self) -> None:
        self.rows: dict[str, OrderSnapshot] = {}

    async def placed(
        self, order_id: str, customer_id: str, total_minor: int, currency: str, at: datetime
    ) -> None:
        self.rows.setdefault(
            order_id,
            OrderSnapshot(
                order_id, customer_id, "placed", total_minor, currency, at, None, from_events=True
            ),
        )

    async def delivered(self, order_id: str, at: datetime) -> None:
        if order_id in self.rows:
            self.rows[order_id] = dataclasses.replace(
                self.rows[order_id], delivered_at=at, status="delivered"
            )

    async def get(self, order_id: str) -> OrderSnapshot | None:
        return self.rows.get(order_id)

    async def count_placed(self, from_time: datetime, to_time: datetime) -> int:
        return sum(1 for o in self.rows.values() if from_time <= o.placed_at < to_time)


class FakeKpis:
    def __init__(self, uow: FakeSupportUnitOfWork) -> None:
        self.uow = uow

    async def tickets(self, from_time: datetime, to_time: datetime) -> list[KpiTicketRow]:
        return [
            KpiTicketRow(
                r.state.created_at,
                r.state.first_response_at,
                r.state.resolved_at,
                r.state.breaches,
                r.state.reopened,
                r.auto_answered,
            )
            for r in self.uow.tickets.rows.values()
            if from_time <= r.state.created_at < to_time
        ]

    async def ratings(self, from_time: datetime, to_time: datetime) -> list[tuple[int, int]]:
        return [
            (r.csat, r.nps)
            for _, r in self.uow.ratings.rows.values()
            if from_time <= r.rated_at < to_time
        ]


class FakeSupportUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.tickets = FakeTickets()
        self.compensations = FakeCompensations()
        self.ratings = FakeRatings()
        self.articles = FakeArticles()
        self.order_activity = FakeOrderActivity()
        self.kpis = FakeKpis(self)

    def _state(self) -> tuple[Any, ...]:
        return (
            self.tickets.rows,
            self.tickets.thread,
            self.tickets.changes,
            self.compensations.rows,
            self.ratings.rows,
            self.articles.rows,
            self.articles.seq,
            self.order_activity.rows,
        )

    def snapshot(self) -> Any:
        return (super().snapshot(), copy.deepcopy(self._state()))

    def restore(self, state: Any) -> None:
        base, mine = state
        super().restore(base)
        (
            self.tickets.rows,
            self.tickets.thread,
            self.tickets.changes,
            self.compensations.rows,
            self.ratings.rows,
            self.articles.rows,
            self.articles.seq,
            self.order_activity.rows,
        ) = copy.deepcopy(mine)


class FakeOrders:
    def __init__(self) -> None:
        self.orders: dict[str, OrderSnapshot] = {}
        self.down = False
        self.calls = 0

    def add(
        self,
        order_id: str,
        customer_id: str,
        total_minor: int = 5_000,
        placed_at: datetime = NOW - timedelta(days=10),
        delivered_at: datetime | None = None,
    ) -> None:
        self.orders[order_id] = OrderSnapshot(
            order_id,
            customer_id,
            "delivered" if delivered_at else "paid",
            total_minor,
            "EUR",
            placed_at,
            delivered_at,
            lines=(("SKU-1", 2),),
        )

    async def get(self, order_id: str) -> OrderSnapshot | None:
        self.calls += 1
        if self.down:
            raise DependencyUnavailable("order is unavailable (UNAVAILABLE); retry later")
        return self.orders.get(order_id)


class FakeCoupons:
    def __init__(self) -> None:
        self.issued: dict[str, dict[str, Any]] = {}
        self.fail = False

    async def issue(
        self,
        *,
        code: str,
        percent: Decimal,
        starts_at: datetime,
        ends_at: datetime,
        idempotency_key: str,
        name: str,
    ) -> str:
        if self.fail:
            raise DependencyUnavailable("pricing is unavailable; retry later")
        self.issued.setdefault(
            idempotency_key, {"code": code, "percent": percent, "ends_at": ends_at}
        )
        return f"promo-{idempotency_key}"


class FakeReturns:
    def __init__(self) -> None:
        self.requested: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {}
        self.fail = False

    async def request_and_approve(
        self,
        *,
        order_id: str,
        lines: tuple[tuple[str, int], ...],
        reason: str,
        idempotency_key: str,
    ) -> str:
        if self.fail:
            raise DependencyUnavailable("order is unavailable; retry later")
        self.requested.setdefault(idempotency_key, (order_id, lines))
        return f"rma-{idempotency_key}"


class FixedKnowledge(KnowledgeCache):
    """Answers every search with the configured matches (the retrieval is tested elsewhere)."""

    def __init__(self, matches: list[ArticleMatchView] | None = None) -> None:
        super().__init__()
        self.fixed = matches or []
        self.queries: list[str] = []

    async def matches(
        self, uow: Any, query: str, language: str | None, k: int
    ) -> tuple[int, list[ArticleMatchView]]:
        self.queries.append(query)
        return await uow.articles.version(), self.fixed[:k]


def bus(
    uow: FakeSupportUnitOfWork,
    *,
    orders: FakeOrders | None = None,
    coupons: FakeCoupons | None = None,
    returns: FakeReturns | None = None,
    knowledge: KnowledgeCache | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> MessageBus[FakeSupportUnitOfWork, Deps]:
    deps = Deps(
        ports=Ports(
            orders=orders or FakeOrders(),
            coupons=coupons or FakeCoupons(),
            returns=returns or FakeReturns(),
        ),
        knowledge=knowledge or FixedKnowledge(),
        clock=clock or Clock(),
        **settings,
    )
    return MessageBus(
        service="support",
        uow=lambda: uow,
        deps=deps,
        handlers=handlers_in(tickets, articles, compensation, kpis, order_activity),
    )
