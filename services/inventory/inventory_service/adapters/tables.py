"""The inventory service's tables (its own MetaData; platform tables live in the platform)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

skus = sa.Table(
    "skus",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("brand", sa.String(100), nullable=True),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lead_time_days", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'discontinued')", name="ck_skus_status"),
    sa.Index("ix_skus_category", "category", "sku"),
)

warehouses = sa.Table(
    "warehouses",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(64), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per (SKU, warehouse). available = on_hand - reserved; the CHECK constraints are the
# last line of defence behind the conditional updates.
stock = sa.Table(
    "stock",
    metadata,
    sa.Column("sku", sa.String(64), sa.ForeignKey("skus.sku"), primary_key=True),
    sa.Column("warehouse", sa.String(64), sa.ForeignKey("warehouses.code"), primary_key=True),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("reorder_point", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("suggested_order_quantity", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_nonneg"),
    sa.CheckConstraint("on_hand >= reserved", name="ck_stock_on_hand_covers_reserved"),
)

ledger = sa.Table(
    "stock_ledger",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entry_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("warehouse", sa.String(64), nullable=False),
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("on_hand_after", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_stock_ledger_sku_id", "sku", "id"),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("reservation_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("region", sa.String(64), nullable=True),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("release_reason", sa.String(20), nullable=True),
    sa.Column("restocked_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(
        "status IN ('held', 'committed', 'released', 'expired')", name="ck_reservations_status"
    ),
    sa.Index(
        "ix_reservations_held_expiry",
        "expires_at",
        postgresql_where=sa.text("status = 'held'"),
    ),
)

reservation_allocations = sa.Table(
    "reservation_allocations",
    metadata,
    sa.Column(
        "reservation_id",
        sa.String(128),
        sa.ForeignKey("reservations.reservation_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("warehouse", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_allocations_quantity_pos"),
)

# Where each return's resellable units went back (per SKU and warehouse): a return is restocked
# once, and a later partial return of the same order knows what earlier ones gave back.
# source: "origin" (the warehouse that shipped it), "configured" (a receiving or configured
# return warehouse), "fallback" (the SKU's highest-priority warehouse).
return_restocks = sa.Table(
    "return_restocks",
    metadata,
    sa.Column("return_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("warehouse", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("restocked_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_return_restocks_quantity_pos"),
    sa.Index("ix_return_restocks_order", "order_id"),
)

# Stock on its way to a warehouse (purchase orders, transfers): quantity - received_quantity of
# an open order is on order, which the replenishment suggestions count in the inventory position.
inbound_orders = sa.Table(
    "inbound_orders",
    metadata,
    sa.Column("inbound_id", sa.String(64), primary_key=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("skus.sku"), nullable=False),
    sa.Column("warehouse", sa.String(64), sa.ForeignKey("warehouses.code"), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("received_quantity", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("expected_on", sa.Date, nullable=True),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_inbound_orders_quantity_pos"),
    sa.CheckConstraint(
        "received_quantity >= 0 AND received_quantity <= quantity",
        name="ck_inbound_orders_received_range",
    ),
    sa.CheckConstraint(
        "status IN ('open', 'received', 'cancelled')", name="ck_inbound_orders_status"
    ),
    sa.Index(
        "ix_inbound_orders_open", "sku", "warehouse", postgresql_where=sa.text("status = 'open'")
    ),
    sa.Index("ix_inbound_orders_created", sa.text("created_at DESC"), sa.text("inbound_id DESC")),
)

# Demand history: units committed per SKU, warehouse and day (from committed order lines).
demand_daily = sa.Table(
    "demand_daily",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("warehouse", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("units", sa.BigInteger, nullable=False),
)

# Revenue per SKU, day and currency, from OrderPaid line totals (for ABC).
revenue_daily = sa.Table(
    "revenue_daily",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("revenue_minor", sa.BigInteger, nullable=False),
    sa.Column("units", sa.BigInteger, nullable=False),
)

# One row per SKU and day: end-of-day-ish levels (snapshot job) and whether availability hit
# zero that day (stock-out rate).
stock_daily = sa.Table(
    "stock_daily",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("available", sa.BigInteger, nullable=False),
    sa.Column("stocked_out", sa.Boolean, nullable=False),
)

# Cached forecasts per SKU and warehouse, recomputed by the planning job.
forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("warehouse", sa.String(64), primary_key=True),
    sa.Column("daily_demand", sa.Float, nullable=False),
    sa.Column("lead_time_demand", sa.Float, nullable=False),
    sa.Column("sigma_daily", sa.Float, nullable=False),
    sa.Column("lead_time_days", sa.Integer, nullable=False),
    sa.Column("method", sa.String(60), nullable=False),
    sa.Column("history_days", sa.Integer, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)
