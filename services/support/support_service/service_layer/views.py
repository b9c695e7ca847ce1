"""Read models the support handlers return (REST encodes them as JSON, gRPC through
``entrypoints.grpc``). Times are aware datetimes, money integer minor units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ArticleMatchView:
    article_id: str
    title: str
    score: float


@dataclass(frozen=True, slots=True)
class MessageView:
    message_id: str
    #: customer, agent or system
    author_role: str
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineView:
    kind: str
    status: str
    tier: int
    by: str
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderContextView:
    """The order as the order service reported it when asked (agents only)."""

    available: bool
    status: str | None = None
    total_minor: int | None = None
    currency: str | None = None
    placed_at: datetime | None = None
    delivered_at: datetime | None = None
    shipments: int = 0
    #: "status@time" per status change
    timeline: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompensationView:
    ticket_id: str
    rule_id: str
    kind: str
    #: pending (the other service's call not confirmed yet) or applied
    status: str
    coupon_code: str | None
    percent: str | None
    approved_by: str
    applied_at: datetime
    #: The return (RMA) at the order service, for a ``return`` compensation.
    return_id: str | None = None


@dataclass(frozen=True, slots=True)
class RatingView:
    csat: int
    nps: int
    comment: str
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket_id: str
    customer_id: str
    order_id: str | None
    category: str
    subject: str
    language: str
    status: str
    tier: int
    priority: str
    sla_due_at: datetime | None
    suggested_articles: tuple[ArticleMatchView, ...]
    auto_answer_article_id: str | None
    order_context_missing: bool
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    sla_breaches: int
    reopened: int
    messages: tuple[MessageView, ...] = ()
    timeline: tuple[TimelineView, ...] = ()
    order: OrderContextView | None = None
    compensation: CompensationView | None = None
    rating: RatingView | None = None


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: tuple[TicketView, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ArticleView:
    article_id: str
    title: str
    body: str
    category: str
    language: str
    keywords: tuple[str, ...]
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ArticleSearchView:
    items: tuple[ArticleMatchView, ...]
    #: Knowledge-base version the search ran on.
    version: int


@dataclass(frozen=True, slots=True)
class SupportKpis:
    from_time: datetime
    to_time: datetime
    tickets_opened: int
    first_response_p50_seconds: float | None
    first_response_p90_seconds: float | None
    resolution_p50_seconds: float | None
    resolution_p90_seconds: float | None
    sla_breach_rate: float | None
    auto_answer_rate: float | None
    reopen_rate: float | None
    csat_average: float | None
    nps: float | None
    ratings: int
    orders: int
    contact_rate_per_100_orders: float | None
