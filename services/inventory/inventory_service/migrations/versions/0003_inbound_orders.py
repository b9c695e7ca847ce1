"""inbound_orders: stock on its way to a warehouse, counted as on order by replenishment.

Revision ID: 0003
Revises: p001_retention
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "p001_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_orders",
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
    )
    op.create_index(
        "ix_inbound_orders_open",
        "inbound_orders",
        ["sku", "warehouse"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_inbound_orders_created",
        "inbound_orders",
        [sa.text("created_at DESC"), sa.text("inbound_id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_orders_created", table_name="inbound_orders")
    op.drop_index("ix_inbound_orders_open", table_name="inbound_orders")
    op.drop_table("inbound_orders")
