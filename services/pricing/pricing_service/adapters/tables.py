"""The pricing service's tables (its own MetaData; the platform tables live beside them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..domain.records import REDEEMED

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)
RATE = sa.Numeric(12, 6)
# (price - cost - ...) / price: at least -10^12 with the amount limits, so wide enough.
MARGIN = sa.Numeric(30, 8)

# The SKU registry copy, from inventory's SkuUpserted events.
skus = sa.Table(
    "skus",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("category", sa.String(200), nullable=True),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Customer segments, from recommendation's CustomerSegmentChanged events.
customer_segments = sa.Table(
    "customer_segments",
    metadata,
    sa.Column("customer_id", sa.String(100), primary_key=True),
    sa.Column("segment", sa.String(50), nullable=False),
    sa.Column("churn_risk", sa.String(20), nullable=False),
    sa.Column("changed_at", TS, nullable=False),
)

prices = sa.Table(
    "prices",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("list_price_minor", sa.BigInteger, nullable=False),
    sa.Column("unit_cost_minor", sa.BigInteger, nullable=False),
    sa.Column("commission_rate", RATE, nullable=False),
    sa.Column("marketing_cost_rate", RATE, nullable=False),
    sa.Column("gross_margin", MARGIN, nullable=False),
    sa.Column("margin_floor", RATE, nullable=False),
    sa.Column("below_floor", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    sa.CheckConstraint("list_price_minor > 0", name="ck_prices_positive"),
)

price_history = sa.Table(
    "price_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("list_price_minor", sa.BigInteger, nullable=False),
    sa.Column("previous_price_minor", sa.BigInteger, nullable=False),
    sa.Column("unit_cost_minor", sa.BigInteger, nullable=False),
    sa.Column("commission_rate", RATE, nullable=False),
    sa.Column("marketing_cost_rate", RATE, nullable=False),
    sa.Column("gross_margin", MARGIN, nullable=False),
    sa.Column("below_floor", sa.Boolean, nullable=False),
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("changed_at", TS, nullable=False),
)
sa.Index("ix_price_history_sku", price_history.c.sku, price_history.c.currency, price_history.c.id)

promotions = sa.Table(
    "promotions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("percent", RATE, nullable=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=True),
    sa.Column("buy_quantity", sa.Integer, nullable=True),
    sa.Column("get_quantity", sa.Integer, nullable=True),
    sa.Column("scope_skus", ARRAY(sa.String(100)), nullable=False),
    sa.Column("scope_categories", ARRAY(sa.String(200)), nullable=False),
    sa.Column("scope_all", sa.Boolean, nullable=False),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=False),
    sa.Column("coupon_code", sa.String(64), nullable=True),
    sa.Column("usage_limit", sa.BigInteger, nullable=True),
    sa.Column("per_customer_limit", sa.BigInteger, nullable=True),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("min_subtotal_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("segments", ARRAY(sa.String(50)), nullable=False),
    sa.Column("stackable", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("allow_below_floor", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.CheckConstraint("used >= 0", name="ck_promotions_used"),
    sa.CheckConstraint(
        "usage_limit IS NULL OR used <= usage_limit", name="ck_promotions_within_limit"
    ),
)

# A coupon code names one active promotion at a time (codes are stored upper case).
sa.Index(
    "uq_promotions_active_coupon",
    promotions.c.coupon_code,
    unique=True,
    postgresql_where=sa.and_(promotions.c.active, promotions.c.coupon_code.is_not(None)),
)

# Every change of a promotion (creation, patch, deactivation): who, when, what, why.
promotion_changes = sa.Table(
    "promotion_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("promotion_id", sa.String(40), nullable=False, index=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("changes", JSONB, nullable=False),
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("changed_at", TS, nullable=False),
)

# Uses per (promotion, customer), guarded by a conditional upsert.
customer_usage = sa.Table(
    "customer_usage",
    metadata,
    sa.Column("promotion_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(100), primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
    sa.CheckConstraint("used >= 0", name="ck_customer_usage_used"),
)

quotes = sa.Table(
    "quotes",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(100), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("subtotal_minor", sa.BigInteger, nullable=False),
    sa.Column("discount_total_minor", sa.BigInteger, nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("coupon_codes", ARRAY(sa.String(64)), nullable=False),
    sa.Column("promotion_ids", ARRAY(sa.String(40)), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("order_id", sa.String(100), nullable=True, unique=True),
)
sa.Index("ix_quotes_expires_at", quotes.c.expires_at)


redemptions = sa.Table(
    "redemptions",
    metadata,
    sa.Column("promotion_id", sa.String(40), primary_key=True),
    sa.Column("order_id", sa.String(100), primary_key=True),
    sa.Column("quote_id", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(100), nullable=True),
    sa.Column("coupon_code", sa.String(64), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("redeemed_at", TS, nullable=False),
    sa.Column("confirmed_at", TS, nullable=True),
    sa.Column("released_at", TS, nullable=True),
    sa.Column("release_reason", sa.String(100), nullable=True),
    sa.CheckConstraint(
        "state IN ('redeemed', 'confirmed', 'released')", name="ck_redemptions_state"
    ),
)
sa.Index("ix_redemptions_order", redemptions.c.order_id)
sa.Index(
    "ix_redemptions_unconfirmed",
    redemptions.c.redeemed_at,
    postgresql_where=redemptions.c.state == REDEEMED,
)

competitor_prices = sa.Table(
    "competitor_prices",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("competitor", sa.String(100), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("price_minor", sa.BigInteger, nullable=False),
    sa.Column("observed_at", TS, nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
)

# Stock cover, from inventory's StockLevelChanged events (latest by occurred_at).
stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("available", sa.BigInteger, nullable=False),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
)

# Units sold per SKU, currency and day, from OrderPaid events (sales velocity).
sales_daily = sa.Table(
    "sales_daily",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("revenue_minor", sa.BigInteger, nullable=False),
)
