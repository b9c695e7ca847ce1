"""orders.placed_by: who placed an order (partners see the orders they placed).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("placed_by", sa.String(250), nullable=True))
    op.create_index("ix_orders_placed_by", "orders", ["placed_by", "placed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_placed_by", table_name="orders")
    op.drop_column("orders", "placed_by")
