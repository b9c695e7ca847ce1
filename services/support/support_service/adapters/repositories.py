"""The support repositories: SQLAlchemy Core on the unit of work's session. All SQL of the
service is here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.knowledge import Article
from ..domain.tickets import Change, Priority, SlaClock, Status, Ticket
from ..service_layer.ports import KpiTicketRow, OrderSnapshot, TicketFilter, TicketRecord
from ..service_layer.views import (
    ArticleMatchView,
    ArticleView,
    CompensationView,
    MessageView,
    RatingView,
    TimelineView,
)
from .tables import (
    articles,
    compensations,
    orders_seen,
    ratings,
    ticket_messages,
    ticket_timeline,
    tickets,
)


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


# --- tickets ----------------------------------------------------------------------------------


def _state_values(record: TicketRecord) -> dict[str, Any]:
    t = record.state
    return {
        "status": t.status.value,
        "tier": t.tier,
        "priority": t.priority.label,
        "clock_started_at": t.clock.started_at,
        "clock_paused_seconds": t.clock.paused,
        "clock_paused_since": t.clock.paused_since,
        "clock_stopped": t.clock.stopped,
        "sla_due_at": record.sla_due_at,
        "updated_at": record.updated_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "closed_at": t.closed_at,
        "breaches": t.breaches,
        "reopened": t.reopened,
    }


def _record(row: Any) -> TicketRecord:
    state = Ticket(
        ticket_id=row.ticket_id,
        customer_id=row.customer_id,
        status=Status(row.status),
        tier=row.tier,
        priority=Priority.of(row.priority),
        clock=SlaClock(
            started_at=row.clock_started_at,
            paused=row.clock_paused_seconds,
            paused_since=row.clock_paused_since,
            stopped=row.clock_stopped,
        ),
        created_at=row.created_at,
        first_response_at=row.first_response_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        breaches=row.breaches,
        reopened=row.reopened,
    )
    return TicketRecord(
        state=state,
        order_id=row.order_id,
        category=row.category,
        subject=row.subject,
        language=row.language,
        suggested=tuple(
            ArticleMatchView(str(m["article_id"]), str(m["title"]), float(m["score"]))
            for m in row.suggested
        ),
        auto_answer_article_id=row.auto_answer_article_id,
        order_context_missing=row.order_context_missing,
        order_value_minor=row.order_value_minor,
        currency=row.currency,
        auto_answered=row.auto_answered,
        sla_due_at=row.sla_due_at,
        updated_at=row.updated_at,
    )


class SqlTicketRepository(_Repository):
    async def add(self, record: TicketRecord) -> None:
        t = record.state
        await self.session.execute(
            tickets.insert().values(
                ticket_id=t.ticket_id,
                customer_id=t.customer_id,
                order_id=record.order_id,
                category=record.category,
                subject=record.subject,
                language=record.language,
                suggested=[
                    {"article_id": m.article_id, "title": m.title, "score": m.score}
                    for m in record.suggested
                ],
                auto_answer_article_id=record.auto_answer_article_id,
                auto_answered=record.auto_answered,
                order_context_missing=record.order_context_missing,
                order_value_minor=record.order_value_minor,
                currency=record.currency,
                created_at=t.created_at,
                **_state_values(record),
            )
        )

    async def get(self, ticket_id: str, *, for_update: bool = False) -> TicketRecord | None:
        stmt = sa.select(tickets).where(tickets.c.ticket_id == ticket_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return _record(row) if row else None

    async def save(self, record: TicketRecord) -> None:
        await self.session.execute(
            tickets.update()
            .where(tickets.c.ticket_id == record.state.ticket_id)
            .values(**_state_values(record))
        )

    async def contacts_on_order(self, order_id: str, customer_id: str) -> int:
        stmt = sa.select(sa.func.count()).where(
            tickets.c.order_id == order_id, tickets.c.customer_id == customer_id
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def find(
        self, flt: TicketFilter, after: tuple[datetime, str] | None, limit: int
    ) -> list[TicketRecord]:
        stmt = sa.select(tickets)
        if flt.customer_id is not None:
            stmt = stmt.where(tickets.c.customer_id == flt.customer_id)
        if flt.tier is not None:
            stmt = stmt.where(tickets.c.tier == flt.tier)
        if flt.status is not None:
            stmt = stmt.where(tickets.c.status == flt.status)
        if flt.category is not None:
            stmt = stmt.where(tickets.c.category == flt.category)
        if flt.overdue_at is not None:
            stmt = stmt.where(
                tickets.c.status.in_(("open", "escalated")),
                tickets.c.sla_due_at < flt.overdue_at,
            )
        if after is not None:
            stmt = stmt.where(sa.tuple_(tickets.c.created_at, tickets.c.ticket_id) > after)
        stmt = stmt.order_by(tickets.c.created_at, tickets.c.ticket_id).limit(limit)
        return [_record(r) for r in (await self.session.execute(stmt)).all()]

    async def due(self, now: datetime, limit: int) -> list[str]:
        stmt = (
            sa.select(tickets.c.ticket_id)
            .where(
                tickets.c.status.in_(("open", "escalated")),
                tickets.c.sla_due_at.is_not(None),
                tickets.c.sla_due_at < now,
            )
            .order_by(tickets.c.sla_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def closable(self, resolved_before: datetime, limit: int) -> list[str]:
        stmt = (
            sa.select(tickets.c.ticket_id)
            .where(tickets.c.status == "resolved", tickets.c.resolved_at < resolved_before)
            .order_by(tickets.c.resolved_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def add_message(self, ticket_id: str, message: MessageView) -> None:
        await self.session.execute(
            ticket_messages.insert().values(
                message_id=message.message_id,
                ticket_id=ticket_id,
                author_role=message.author_role,
                author=message.author,
                body=message.body,
                created_at=message.created_at,
            )
        )

    async def messages(self, ticket_id: str) -> list[MessageView]:
        m = ticket_messages
        stmt = (
            sa.select(m.c.message_id, m.c.author_role, m.c.author, m.c.body, m.c.created_at)
            .where(m.c.ticket_id == ticket_id)
            .order_by(m.c.seq)
        )
        return [MessageView(*row) for row in (await self.session.execute(stmt)).all()]

    async def add_change(self, ticket_id: str, change: Change) -> None:
        await self.session.execute(
            ticket_timeline.insert().values(
                ticket_id=ticket_id,
                kind=change.kind,
                status=change.status.value,
                tier=change.tier,
                by=change.by,
                note=change.note,
                at=change.at,
            )
        )

    async def timeline(self, ticket_id: str) -> list[TimelineView]:
        t = ticket_timeline
        stmt = (
            sa.select(t.c.kind, t.c.status, t.c.tier, t.c.by, t.c.note, t.c.at)
            .where(t.c.ticket_id == ticket_id)
            .order_by(t.c.entry_id)
        )
        return [TimelineView(*row) for row in (await self.session.execute(stmt)).all()]


# --- compensation, ratings ----------------------------------------------------------------------


def _compensation(row: Any) -> CompensationView:
    return CompensationView(
        ticket_id=row.ticket_id,
        rule_id=row.rule_id,
        kind=row.kind,
        status=row.status,
        coupon_code=row.coupon_code,
        percent=row.percent,
        approved_by=row.approved_by,
        applied_at=row.applied_at,
        return_id=row.return_id,
    )


class SqlCompensationRepository(_Repository):
    async def get(self, ticket_id: str) -> CompensationView | None:
        row = (
            await self.session.execute(
                sa.select(compensations).where(compensations.c.ticket_id == ticket_id)
            )
        ).first()
        return _compensation(row) if row else None

    async def reserve(self, view: CompensationView) -> bool:
        stmt = (
            pg_insert(compensations)
            .values(
                ticket_id=view.ticket_id,
                rule_id=view.rule_id,
                kind=view.kind,
                status=view.status,
                coupon_code=view.coupon_code,
                percent=view.percent,
                approved_by=view.approved_by,
                applied_at=view.applied_at,
            )
            .on_conflict_do_nothing()
            .returning(compensations.c.ticket_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def mark_applied(
        self, ticket_id: str, at: datetime, return_id: str | None = None
    ) -> CompensationView | None:
        stmt = (
            compensations.update()
            .where(compensations.c.ticket_id == ticket_id, compensations.c.status == "pending")
            .values(status="applied", applied_at=at, return_id=return_id)
            .returning(*compensations.c)
        )
        row = (await self.session.execute(stmt)).first()
        return _compensation(row) if row else None


class SqlRatingRepository(_Repository):
    async def add(self, ticket_id: str, customer_id: str, rating: RatingView) -> bool:
        stmt = (
            pg_insert(ratings)
            .values(
                ticket_id=ticket_id,
                customer_id=customer_id,
                csat=rating.csat,
                nps=rating.nps,
                comment=rating.comment,
                rated_at=rating.rated_at,
            )
            .on_conflict_do_nothing()
            .returning(ratings.c.ticket_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get(self, ticket_id: str) -> RatingView | None:
        r = ratings
        row = (
            await self.session.execute(
                sa.select(r.c.csat, r.c.nps, r.c.comment, r.c.rated_at).where(
                    r.c.ticket_id == ticket_id
                )
            )
        ).first()
        return RatingView(*row) if row else None


# --- articles ---------------------------------------------------------------------------------


def _article(row: Any) -> ArticleView:
    return ArticleView(
        article_id=row.article_id,
        title=row.title,
        body=row.body,
        category=row.category,
        language=row.language,
        keywords=tuple(row.keywords),
        version=row.version,
        updated_at=row.updated_at,
    )


class SqlArticleRepository(_Repository):
    def _values(self, a: Article, now: datetime) -> dict[str, Any]:
        return {
            "article_id": a.article_id,
            "title": a.title,
            "body": a.body,
            "category": a.category,
            "language": a.language,
            "keywords": list(a.keywords),
            "version": sa.text("nextval('article_versions')"),
            "updated_at": now,
        }

    async def put(self, article: Article, now: datetime) -> ArticleView:
        values = self._values(article, now)
        insert = pg_insert(articles).values(**values)
        stmt = insert.on_conflict_do_update(
            index_elements=[articles.c.article_id],
            set_={k: insert.excluded[k] for k in values if k != "article_id"},
        ).returning(*articles.c)
        return _article((await self.session.execute(stmt)).one())

    async def put_if_absent(self, article: Article, now: datetime) -> bool:
        stmt = (
            pg_insert(articles)
            .values(**self._values(article, now))
            .on_conflict_do_nothing()
            .returning(articles.c.article_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def all(self) -> list[ArticleView]:
        rows = (await self.session.execute(sa.select(articles).order_by("article_id"))).all()
        return [_article(r) for r in rows]

    async def version(self) -> int:
        stmt = sa.select(sa.func.coalesce(sa.func.max(articles.c.version), 0))
        return int((await self.session.execute(stmt)).scalar_one())


# --- order activity, KPIs ---------------------------------------------------------------------


class SqlOrderActivityRepository(_Repository):
    async def placed(
        self, order_id: str, customer_id: str, total_minor: int, currency: str, at: datetime
    ) -> None:
        await self.session.execute(
            pg_insert(orders_seen)
            .values(
                order_id=order_id,
                customer_id=customer_id,
                total_minor=total_minor,
                currency=currency,
                placed_at=at,
            )
            .on_conflict_do_nothing()
        )

    async def delivered(self, order_id: str, at: datetime) -> None:
        await self.session.execute(
            orders_seen.update().where(orders_seen.c.order_id == order_id).values(delivered_at=at)
        )

    async def get(self, order_id: str) -> OrderSnapshot | None:
        o = orders_seen
        row = (await self.session.execute(sa.select(o).where(o.c.order_id == order_id))).first()
        if row is None:
            return None
        return OrderSnapshot(
            order_id=row.order_id,
            customer_id=row.customer_id,
            status="delivered" if row.delivered_at else "placed",
            total_minor=row.total_minor,
            currency=row.currency,
            placed_at=row.placed_at,
            delivered_at=row.delivered_at,
            from_events=True,
        )

    async def count_placed(self, from_time: datetime, to_time: datetime) -> int:
        o = orders_seen
        stmt = sa.select(sa.func.count()).where(o.c.placed_at >= from_time, o.c.placed_at < to_time)
        return int((await self.session.execute(stmt)).scalar_one())


class SqlKpiQueries(_Repository):
    async def tickets(self, from_time: datetime, to_time: datetime) -> list[KpiTicketRow]:
        t = tickets
        stmt = sa.select(
            t.c.created_at,
            t.c.first_response_at,
            t.c.resolved_at,
            t.c.breaches,
            t.c.reopened,
            t.c.auto_answered,
        ).where(t.c.created_at >= from_time, t.c.created_at < to_time)
        return [KpiTicketRow(*row) for row in (await self.session.execute(stmt)).all()]

    async def ratings(self, from_time: datetime, to_time: datetime) -> list[tuple[int, int]]:
        r = ratings
        stmt = sa.select(r.c.csat, r.c.nps).where(r.c.rated_at >= from_time, r.c.rated_at < to_time)
        return [(int(c), int(n)) for c, n in (await self.session.execute(stmt)).all()]
