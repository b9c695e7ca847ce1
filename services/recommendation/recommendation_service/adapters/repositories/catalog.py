"""The catalogue as inventory announces it: titles, categories, status and availability."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...service_layer.ports import CatalogEntry
from ..tables import catalog_items
from .model import eligible


class SqlCatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        *,
        sku: str,
        title: str,
        category: str,
        brand: str,
        status: str,
        updated_at: datetime,
    ) -> None:
        values = {
            "title": title or sku,
            "category": category or None,
            "brand": brand or None,
            "status": status or "active",
            "sku_updated_at": updated_at,
        }
        stmt = pg_insert(catalog_items).values(sku=sku, **values)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[catalog_items.c.sku],
                set_=values,
                where=sa.or_(
                    catalog_items.c.sku_updated_at.is_(None),
                    catalog_items.c.sku_updated_at <= updated_at,
                ),
            )
        )

    async def set_stock(self, *, sku: str, available: int, at: datetime) -> None:
        stmt = pg_insert(catalog_items).values(sku=sku, available=available, stock_at=at)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[catalog_items.c.sku],
                set_={"available": available, "stock_at": at},
                where=sa.or_(catalog_items.c.stock_at.is_(None), catalog_items.c.stock_at <= at),
            )
        )

    async def entries(self, skus: Iterable[str]) -> dict[str, CatalogEntry]:
        wanted = list(set(skus))
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(
                catalog_items.c.sku,
                catalog_items.c.title,
                catalog_items.c.category,
                sa.and_(*eligible()).label("recommendable"),
            ).where(catalog_items.c.sku.in_(wanted))
        )
        return {
            r.sku: CatalogEntry(r.sku, r.title or r.sku, r.category, bool(r.recommendable))
            for r in rows
        }
