"""The order service's tables (its own database, ``ecomops_order``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

TZ = sa.DateTime(timezone=True)

carts = sa.Table(
    "carts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Column("abandoned_at", TZ, nullable=True),
    sa.Column("order_id", sa.String(64), nullable=True),
    sa.Index("ix_carts_open_idle", "updated_at", postgresql_where=sa.text("status = 'open'")),
    sa.Index("ix_carts_created", "created_at"),
)

cart_items = sa.Table(
    "cart_items",
    metadata,
    sa.Column("cart_id", sa.String(64), sa.ForeignKey("carts.id"), primary_key=True),
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_cart_items_quantity_positive"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("subtotal_minor", sa.BigInteger, nullable=False),
    sa.Column("discount_total_minor", sa.BigInteger, nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("coupon_codes", JSONB, nullable=False),
    sa.Column("shipping_address", JSONB, nullable=False),
    sa.Column("client", JSONB, nullable=False),
    sa.Column("quote_id", sa.String(100), nullable=False),
    sa.Column("assessment_id", sa.String(100), nullable=False),
    sa.Column("risk_decision", sa.String(20), nullable=False),
    sa.Column("risk_reasons", JSONB, nullable=False),
    sa.Column("cart_id", sa.String(64), nullable=True),
    sa.Column("placed_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Column("payment_due_at", TZ, nullable=True),
    sa.Column("review_deadline", TZ, nullable=True),
    sa.Column("reservation_expires_at", TZ, nullable=True),
    sa.Column("paid_at", TZ, nullable=True),
    sa.Column("payment_token", sa.String(200), nullable=True),
    sa.Column("payment_id", sa.String(100), nullable=True),
    sa.Column("payment_last4", sa.String(4), nullable=True),
    sa.Column("payment_fingerprint", sa.String(100), nullable=True),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cancel_reason", sa.String(200), nullable=True),
    sa.Column("cancelled_at", TZ, nullable=True),
    sa.Column("delivered_at", TZ, nullable=True),
    # Who placed it ("customer:<id>", "partner:<id>", ...): partners see the orders they placed.
    sa.Column("placed_by", sa.String(250), nullable=True),
    sa.CheckConstraint("total_minor >= 0", name="ck_orders_total_non_negative"),
    sa.CheckConstraint(
        "refunded_minor >= 0 AND refunded_minor <= total_minor", name="ck_orders_refund_bounded"
    ),
    sa.Index("ix_orders_customer_placed", "customer_id", "placed_at", "id"),
    sa.Index("ix_orders_placed", "placed_at", "id"),
    sa.Index("ix_orders_placed_by", "placed_by", "placed_at", "id"),
    sa.Index(
        "ix_orders_payment_due",
        "payment_due_at",
        postgresql_where=sa.text("status = 'awaiting_payment'"),
    ),
    sa.Index(
        "ix_orders_review_deadline",
        "review_deadline",
        postgresql_where=sa.text("status = 'in_review'"),
    ),
)

order_timeline = sa.Table(
    "order_timeline",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("at", TZ, nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
    sa.Index("ix_order_timeline_order", "order_id", "id"),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("carrier", sa.String(100), nullable=False),
    sa.Column("tracking_number", sa.String(100), nullable=False),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("shipped_at", TZ, nullable=False),
    sa.Index("ix_shipments_order", "order_id"),
)

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("requested_at", TZ, nullable=False),
    sa.Column("decided_at", TZ, nullable=True),
    sa.Column("decision_note", sa.String(500), nullable=True),
    sa.Column("received_at", TZ, nullable=True),
    sa.Column("received_lines", JSONB, nullable=False),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refund_id", sa.String(100), nullable=True),
    sa.Index("ix_returns_order", "order_id"),
)
