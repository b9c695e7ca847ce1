"""wider gross_margin columns (a cost far above the price gives a margin far below -1)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("prices", "price_history"):
        op.alter_column(
            table,
            "gross_margin",
            type_=sa.Numeric(30, 8),
            existing_type=sa.Numeric(20, 8),
            existing_nullable=False,
        )


def downgrade() -> None:
    for table in ("prices", "price_history"):
        op.alter_column(
            table,
            "gross_margin",
            type_=sa.Numeric(20, 8),
            existing_type=sa.Numeric(30, 8),
            existing_nullable=False,
        )
