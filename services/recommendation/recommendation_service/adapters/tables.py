"""The recommendation service's tables (its own MetaData; platform tables live beside them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TZ = sa.DateTime(timezone=True)

catalog_items = sa.Table(
    "catalog_items",
    metadata,
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("title", sa.Text, nullable=True),  # null: never seen in SkuUpserted (unknown)
    sa.Column("category", sa.Text, nullable=True),
    sa.Column("brand", sa.Text, nullable=True),
    sa.Column("status", sa.String(32), nullable=True),
    sa.Column("sku_updated_at", TZ, nullable=True),
    sa.Column("available", sa.BigInteger, nullable=True),  # null: availability unknown
    sa.Column("stock_at", TZ, nullable=True),
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(140), nullable=False),  # c:<customer> or s:<session>
    sa.Column("customer_id", sa.String(128), nullable=True),
    sa.Column("session_id", sa.String(128), nullable=True),
    sa.Column("sku", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
    sa.Column("order_id", sa.String(128), nullable=True),
    sa.Column("occurred_at", TZ, nullable=False),
)
sa.Index("ix_interactions_actor_time", interactions.c.actor, interactions.c.occurred_at)
sa.Index("ix_interactions_customer_time", interactions.c.customer_id, interactions.c.occurred_at)
sa.Index("ix_interactions_kind_time", interactions.c.kind, interactions.c.occurred_at)

item_counts = sa.Table(
    "item_counts",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("weight", sa.Float(53), nullable=False),
)

item_pairs = sa.Table(
    "item_pairs",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("sku_a", sa.String(128), primary_key=True),
    sa.Column("sku_b", sa.String(128), primary_key=True),
    sa.Column("weight", sa.Float(53), nullable=False),
)
sa.Index("ix_item_pairs_top", item_pairs.c.kind, item_pairs.c.sku_a, item_pairs.c.weight.desc())

model_totals = sa.Table(
    "model_totals",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("weight", sa.Float(53), nullable=False),
)

item_popularity = sa.Table(
    "item_popularity",
    metadata,
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("weight", sa.Float(53), nullable=False),
)
sa.Index("ix_item_popularity_weight", item_popularity.c.weight.desc())

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("placed_at", TZ, nullable=True),
    sa.Column("paid_at", TZ, nullable=True),
    sa.Column("cancelled_at", TZ, nullable=True),
)
sa.Index("ix_orders_customer_paid", orders.c.customer_id, orders.c.paid_at)
sa.Index("ix_orders_placed", orders.c.placed_at)
sa.Index("ix_orders_paid", orders.c.paid_at)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
)

customer_segments = sa.Table(
    "customer_segments",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("recency_days", sa.Integer, nullable=False),
    sa.Column("frequency", sa.Integer, nullable=False),
    sa.Column("monetary_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("r_score", sa.SmallInteger, nullable=False),
    sa.Column("f_score", sa.SmallInteger, nullable=False),
    sa.Column("m_score", sa.SmallInteger, nullable=False),
    sa.Column("segment", sa.String(32), nullable=False),
    sa.Column("churn_risk", sa.String(16), nullable=False),
    sa.Column("computed_at", TZ, nullable=False),
)
sa.Index("ix_customer_segments_computed", customer_segments.c.computed_at)
sa.Index("ix_customer_segments_segment", customer_segments.c.segment)
sa.Index(
    "ix_customer_segments_monetary",
    customer_segments.c.currency,
    customer_segments.c.monetary_minor,
)
