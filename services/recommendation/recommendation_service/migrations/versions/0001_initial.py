"""Initial schema: catalogue, interactions, the co-occurrence model, orders, segments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from ecomops_platform.migrations import create_platform_tables, drop_platform_tables
from recommendation_service.adapters.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    create_platform_tables(bind)
    # A snapshot of the tables as of this revision; later revisions alter them explicitly.
    metadata.create_all(bind=bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind=bind, checkfirst=True)
    drop_platform_tables(bind)
