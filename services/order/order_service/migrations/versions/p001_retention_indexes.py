"""Indexes for the platform's retention job (inbox by processed_at, idempotency keys by age).

Revision ID: p001_retention
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from ecomops_platform.migrations import create_retention_indexes, drop_retention_indexes

revision = "p001_retention"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_retention_indexes(op.get_bind())


def downgrade() -> None:
    drop_retention_indexes(op.get_bind())
