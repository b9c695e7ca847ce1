"""reviews.close_reason: cases closed because their order was cancelled or expired in review;
an index on reviews.order_id to find an order's cases.

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
    op.add_column("reviews", sa.Column("close_reason", sa.String(200), nullable=True))
    op.create_index("ix_reviews_order", "reviews", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_order", table_name="reviews")
    op.drop_column("reviews", "close_reason")
