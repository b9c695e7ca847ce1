"""Initial schema: platform tables, carts, orders, timeline, shipments, returns.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

from ecomops_platform.migrations import create_platform_tables, drop_platform_tables
from order_service.adapters.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    create_platform_tables(bind)
    # The tables of this revision, frozen as they are defined in adapters/tables.py at 0001;
    # later revisions alter them with op.* calls.
    metadata.create_all(bind=bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind=bind, checkfirst=True)
    drop_platform_tables(bind)
