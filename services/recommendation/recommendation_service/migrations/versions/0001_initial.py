"""Initial schema: catalogue, interactions, the co-occurrence model, orders, segments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ecomops_platform.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
DOUBLE = sa.Float(53)


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "catalog_items",
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("category", sa.Text, nullable=True),
        sa.Column("brand", sa.Text, nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("sku_updated_at", TZ, nullable=True),
        sa.Column("available", sa.BigInteger, nullable=True),
        sa.Column("stock_at", TZ, nullable=True),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(140), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("occurred_at", TZ, nullable=False),
    )
    op.create_index("ix_interactions_actor_time", "interactions", ["actor", "occurred_at"])
    op.create_index("ix_interactions_customer_time", "interactions", ["customer_id", "occurred_at"])
    op.create_index("ix_interactions_kind_time", "interactions", ["kind", "occurred_at"])
    op.create_table(
        "item_counts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("weight", DOUBLE, nullable=False),
    )
    op.create_table(
        "item_pairs",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("sku_a", sa.String(128), primary_key=True),
        sa.Column("sku_b", sa.String(128), primary_key=True),
        sa.Column("weight", DOUBLE, nullable=False),
    )
    op.execute("CREATE INDEX ix_item_pairs_top ON item_pairs (kind, sku_a, weight DESC)")
    op.create_table(
        "model_totals",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("weight", DOUBLE, nullable=False),
    )
    op.create_table(
        "item_popularity",
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("weight", DOUBLE, nullable=False),
    )
    op.execute("CREATE INDEX ix_item_popularity_weight ON item_popularity (weight DESC)")
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("placed_at", TZ, nullable=True),
        sa.Column("paid_at", TZ, nullable=True),
    )
    op.create_index("ix_orders_customer_paid", "orders", ["customer_id", "paid_at"])
    op.create_index("ix_orders_placed", "orders", ["placed_at"])
    op.create_index("ix_orders_paid", "orders", ["paid_at"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("quantity", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "customer_segments",
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
    op.create_index("ix_customer_segments_computed", "customer_segments", ["computed_at"])
    op.create_index("ix_customer_segments_segment", "customer_segments", ["segment"])
    op.create_index(
        "ix_customer_segments_monetary", "customer_segments", ["currency", "monetary_minor"]
    )


def downgrade() -> None:
    for table in (
        "customer_segments",
        "order_lines",
        "orders",
        "item_popularity",
        "model_totals",
        "item_pairs",
        "item_counts",
        "interactions",
        "catalog_items",
    ):
        op.drop_table(table)
    drop_platform_tables(op.get_bind())
