"""The risk service's tables (its own MetaData; platform tables live in ecomops_platform.db)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

rule_sets = sa.Table(
    "rule_sets",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSONB, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(200), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("score", sa.Numeric(5, 4), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    # approve/reject once known: the decision itself, or the analyst's for a review.
    sa.Column("final_decision", sa.String(16), nullable=True),
    sa.Column("reasons", JSONB, nullable=False),
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("model_version", sa.String(100), nullable=False),
    sa.Column("features", JSONB, nullable=False),
    sa.Column("request_fingerprint", sa.String(64), nullable=False),
    sa.Column("review_id", sa.String(64), nullable=True),
    sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_assessments_assessed_at", assessments.c.assessed_at)

velocity_events = sa.Table(
    "velocity_events",
    metadata,
    sa.Column("dimension", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(300), primary_key=True),
    sa.Column("order_id", sa.String(200), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index(
    "ix_velocity_key_at", velocity_events.c.dimension, velocity_events.c.value, velocity_events.c.at
)
sa.Index("ix_velocity_at", velocity_events.c.at)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("order_id", sa.String(200), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("payment_fingerprint", sa.String(300), nullable=True),
    sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("refunded", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index("ix_payments_customer", payments.c.customer_id, payments.c.currency)

blocklist = sa.Table(
    "blocklist",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(300), primary_key=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("review_id", sa.String(64), primary_key=True),
    sa.Column("assessment_id", sa.String(64), nullable=False, unique=True),
    sa.Column("order_id", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(16), nullable=True),
    sa.Column("analyst", sa.String(200), nullable=True),
    sa.Column("note", sa.String(2000), nullable=True),
    sa.Column("score", sa.Numeric(5, 4), nullable=False),
    sa.Column("reasons", JSONB, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    # Set when the case was closed because its order was cancelled or expired in review.
    sa.Column("close_reason", sa.String(200), nullable=True),
)
sa.Index("ix_reviews_order", reviews.c.order_id)
sa.Index("ix_reviews_status_created", reviews.c.status, reviews.c.created_at, reviews.c.review_id)
sa.Index("ix_reviews_created", reviews.c.created_at, reviews.c.review_id)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("label_id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(200), nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_labels_order", labels.c.order_id, labels.c.created_at)

model_activations = sa.Table(
    "model_activations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("activated_by", sa.String(200), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
)
