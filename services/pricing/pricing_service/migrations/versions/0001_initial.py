"""initial: price book, promotions, quotes, redemptions, competitor prices, event copies

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ecomops_platform.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "competitor_prices",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("competitor", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "competitor", "currency"),
    )
    op.create_table(
        "customer_segments",
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("segment", sa.String(length=50), nullable=False),
        sa.Column("churn_risk", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "customer_usage",
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("used >= 0", name="ck_customer_usage_used"),
        sa.PrimaryKeyConstraint("promotion_id", "customer_id"),
    )
    op.create_table(
        "price_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("list_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("previous_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("commission_rate", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("marketing_cost_rate", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("gross_margin", sa.Numeric(precision=20, scale=8), nullable=False),
        sa.Column("below_floor", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_price_history_sku", "price_history", ["sku", "currency", "id"], unique=False
    )
    op.create_table(
        "prices",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("list_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("commission_rate", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("marketing_cost_rate", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("gross_margin", sa.Numeric(precision=20, scale=8), nullable=False),
        sa.Column("margin_floor", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("below_floor", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("list_price_minor > 0", name="ck_prices_positive"),
        sa.PrimaryKeyConstraint("sku", "currency"),
    )
    op.create_table(
        "promotion_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_promotion_changes_promotion_id"),
        "promotion_changes",
        ["promotion_id"],
        unique=False,
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("percent", sa.Numeric(precision=12, scale=6), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("buy_quantity", sa.Integer(), nullable=True),
        sa.Column("get_quantity", sa.Integer(), nullable=True),
        sa.Column("scope_skus", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("scope_categories", postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column("scope_all", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("usage_limit", sa.BigInteger(), nullable=True),
        sa.Column("per_customer_limit", sa.BigInteger(), nullable=True),
        sa.Column("used", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("min_subtotal_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("segments", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("allow_below_floor", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "usage_limit IS NULL OR used <= usage_limit", name="ck_promotions_within_limit"
        ),
        sa.CheckConstraint("used >= 0", name="ck_promotions_used"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_promotions_active_coupon",
        "promotions",
        ["coupon_code"],
        unique=True,
        postgresql_where=sa.text("active AND coupon_code IS NOT NULL"),
    )
    op.create_table(
        "quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_total_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("coupon_codes", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("promotion_ids", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index("ix_quotes_expires_at", "quotes", ["expires_at"], unique=False)
    op.create_table(
        "redemptions",
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "state IN ('redeemed', 'confirmed', 'released')", name="ck_redemptions_state"
        ),
        sa.PrimaryKeyConstraint("promotion_id", "order_id"),
    )
    op.create_index("ix_redemptions_order", "redemptions", ["order_id"], unique=False)
    op.create_index(
        "ix_redemptions_unconfirmed",
        "redemptions",
        ["redeemed_at"],
        unique=False,
        postgresql_where=sa.text("state = 'redeemed'"),
    )
    op.create_table(
        "sales_daily",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "currency", "day"),
    )
    op.create_table(
        "skus",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )


def downgrade() -> None:
    op.drop_table("stock_levels")
    op.drop_table("skus")
    op.drop_table("sales_daily")
    op.drop_table("redemptions")
    op.drop_table("quotes")
    op.drop_table("promotions")
    op.drop_table("promotion_changes")
    op.drop_table("prices")
    op.drop_table("price_history")
    op.drop_table("customer_usage")
    op.drop_table("customer_segments")
    op.drop_table("competitor_prices")
    drop_platform_tables(op.get_bind())
