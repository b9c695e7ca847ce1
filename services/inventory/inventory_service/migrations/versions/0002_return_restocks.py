"""return_restocks: where each return's resellable units went back (per SKU and warehouse).

Restocking a return is applied once per return id, and a later partial return of the same order
knows what earlier returns already gave back to each warehouse that shipped it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "return_restocks",
        sa.Column("return_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("warehouse", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("restocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_return_restocks_quantity_pos"),
    )
    op.create_index("ix_return_restocks_order", "return_restocks", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_return_restocks_order", table_name="return_restocks")
    op.drop_table("return_restocks")
