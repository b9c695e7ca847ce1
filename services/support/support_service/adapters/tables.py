"""The support service's tables (its own MetaData; platform tables live in ecomops_platform.db)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("order_id", sa.String(200), nullable=True),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("tier", sa.SmallInteger, nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("clock_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("clock_paused_seconds", sa.Float, nullable=False),
    sa.Column("clock_paused_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("clock_stopped", sa.Boolean, nullable=False),
    sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("suggested", JSONB, nullable=False),
    sa.Column("auto_answer_article_id", sa.String(100), nullable=True),
    sa.Column("auto_answered", sa.Boolean, nullable=False),
    sa.Column("order_context_missing", sa.Boolean, nullable=False),
    sa.Column("order_value_minor", sa.BigInteger, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("breaches", sa.Integer, nullable=False),
    sa.Column("reopened", sa.Integer, nullable=False),
)

ticket_messages = sa.Table(
    "ticket_messages",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("author_role", sa.String(16), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

ticket_timeline = sa.Table(
    "ticket_timeline",
    metadata,
    sa.Column("entry_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("tier", sa.SmallInteger, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

compensations = sa.Table(
    "compensations",
    metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("coupon_code", sa.String(64), nullable=True),
    sa.Column("percent", sa.String(16), nullable=True),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("return_id", sa.String(64), nullable=True),
)

ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("csat", sa.SmallInteger, nullable=False),
    sa.Column("nps", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
)

articles = sa.Table(
    "articles",
    metadata,
    sa.Column("article_id", sa.String(100), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("keywords", JSONB, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

orders_seen = sa.Table(
    "orders_seen",
    metadata,
    sa.Column("order_id", sa.String(200), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
)
