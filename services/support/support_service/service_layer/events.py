"""Domain facts -> protobuf events (topic ecomops.support.v1, keyed by ticket id)."""

from __future__ import annotations

from datetime import datetime

from ecomops.support.v1 import events_pb2
from ecomops_platform.timestamps import to_timestamp

from .ports import TicketRecord
from .views import RatingView


def ticket_opened(record: TicketRecord) -> events_pb2.TicketOpened:
    t = record.state
    return events_pb2.TicketOpened(
        ticket_id=t.ticket_id,
        customer_id=t.customer_id,
        order_id=record.order_id or "",
        category=record.category,
        status=t.status.value,
        tier=t.tier,
        priority=t.priority.label,
        auto_answer_article_id=record.auto_answer_article_id or "",
        opened_at=to_timestamp(t.created_at),
    )


def ticket_escalated(
    ticket_id: str, from_tier: int, to_tier: int, reason: str, by: str, note: str, at: datetime
) -> events_pb2.TicketEscalated:
    return events_pb2.TicketEscalated(
        ticket_id=ticket_id,
        from_tier=from_tier,
        to_tier=to_tier,
        reason=reason,
        by=by,
        note=note,
        escalated_at=to_timestamp(at),
    )


def ticket_resolved(record: TicketRecord, by: str, auto: bool) -> events_pb2.TicketResolved:
    t = record.state
    assert t.resolved_at is not None
    return events_pb2.TicketResolved(
        ticket_id=t.ticket_id,
        customer_id=t.customer_id,
        order_id=record.order_id or "",
        tier=t.tier,
        resolved_by=by,
        auto_answered=auto,
        resolved_at=to_timestamp(t.resolved_at),
    )


def satisfaction_recorded(
    ticket_id: str, customer_id: str, rating: RatingView
) -> events_pb2.SatisfactionRecorded:
    return events_pb2.SatisfactionRecorded(
        ticket_id=ticket_id,
        customer_id=customer_id,
        csat=rating.csat,
        nps=rating.nps,
        rated_at=to_timestamp(rating.rated_at),
    )
