"""Alembic migrations per service, each against its own database.

A service keeps its revisions in ``<service>_service/migrations/versions`` and an ``env.py`` that
calls :func:`run_env`. The first revision of every service calls :func:`create_platform_tables`.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from .db import platform_metadata


def create_platform_tables(bind: Any) -> None:
    """Create outbox, inbox and idempotency tables (call from a service's first revision)."""
    platform_metadata.create_all(bind=bind, checkfirst=True)


def create_retention_indexes(bind: Any) -> None:
    """The indexes the retention job deletes by (databases created before they existed)."""
    bind.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_outbox_published_at ON outbox (published_at)"
            " WHERE published_at IS NOT NULL"
        )
    )
    bind.execute(
        sa.text("CREATE INDEX IF NOT EXISTS ix_inbox_processed_at ON inbox (processed_at)")
    )
    bind.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_idempotency_keys_created_at"
            " ON idempotency_keys (created_at)"
        )
    )


def drop_retention_indexes(bind: Any) -> None:
    bind.execute(sa.text("DROP INDEX IF EXISTS ix_outbox_published_at"))
    bind.execute(sa.text("DROP INDEX IF EXISTS ix_inbox_processed_at"))
    bind.execute(sa.text("DROP INDEX IF EXISTS ix_idempotency_keys_created_at"))


def drop_platform_tables(bind: Any) -> None:
    platform_metadata.drop_all(bind=bind, checkfirst=True)


def _config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"{service}_service:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Bring the service's database to ``revision`` (blocking; run it off the event loop)."""
    command.upgrade(_config(service, url), revision)


async def upgrade_async(service: str, url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, service, url, revision)


def run_env() -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("migrations need sqlalchemy.url (the service's database URL)")
    service = context.config.attributes.get("service", "ecomops")
    lock_id = zlib.crc32(f"ecomops-migrate-{service}".encode())

    def do_run(connection: sa.Connection) -> None:
        # Replicas or test workers migrating at once wait for each other.
        connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        try:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            connection.commit()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=sa.pool.NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(main())
