"""SKUs and warehouses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import Sku, SkuStatus, Warehouse
from .. import tables as t


def sku_of(row: Any) -> Sku:
    return Sku(
        sku=row.sku,
        title=row.title,
        category=row.category,
        brand=row.brand,
        attributes=dict(row.attributes or {}),
        status=SkuStatus(row.status),
        lead_time_days=row.lead_time_days,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _warehouse(row: Any) -> Warehouse:
    return Warehouse(code=row.code, name=row.name, region=row.region, priority=row.priority)


class SqlSkuRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        sku: str,
        *,
        title: str,
        category: str,
        brand: str | None,
        attributes: dict[str, str],
        status: SkuStatus,
        lead_time_days: int | None,
        now: datetime,
    ) -> tuple[Sku, bool]:
        values: dict[str, Any] = {
            "sku": sku,
            "title": title,
            "category": category,
            "brand": brand,
            "attributes": attributes,
            "status": status.value,
            "lead_time_days": lead_time_days,
        }
        ins = pg_insert(t.skus).values(**values, created_at=now, updated_at=now)
        stmt = ins.on_conflict_do_update(
            index_elements=[t.skus.c.sku],
            set_={k: ins.excluded[k] for k in (*values.keys(), "updated_at") if k != "sku"},
        ).returning(*t.skus.c, sa.literal_column("(xmax = 0)").label("created"))
        row = (await self.session.execute(stmt)).one()
        return sku_of(row), bool(row.created)

    async def get(self, sku: str) -> Sku | None:
        row = (await self.session.execute(sa.select(t.skus).where(t.skus.c.sku == sku))).first()
        return sku_of(row) if row else None

    async def get_many(self, skus: Sequence[str]) -> dict[str, Sku]:
        rows = (
            await self.session.execute(sa.select(t.skus).where(t.skus.c.sku.in_(list(skus))))
        ).all()
        return {r.sku: sku_of(r) for r in rows}

    async def list(
        self, *, category: str | None, status: SkuStatus | None, after: str | None, limit: int
    ) -> list[Sku]:
        q = sa.select(t.skus).order_by(t.skus.c.sku).limit(limit)
        if category:
            q = q.where(t.skus.c.category == category)
        if status:
            q = q.where(t.skus.c.status == status.value)
        if after is not None:
            q = q.where(t.skus.c.sku > after)
        return [sku_of(r) for r in (await self.session.execute(q)).all()]


class SqlWarehouseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, code: str, *, name: str, region: str | None, priority: int, now: datetime
    ) -> tuple[Warehouse, bool]:
        values: dict[str, Any] = {
            "code": code,
            "name": name,
            "region": region,
            "priority": priority,
        }
        ins = pg_insert(t.warehouses).values(**values, created_at=now, updated_at=now)
        stmt = ins.on_conflict_do_update(
            index_elements=[t.warehouses.c.code],
            set_={k: ins.excluded[k] for k in (*values.keys(), "updated_at") if k != "code"},
        ).returning(*t.warehouses.c, sa.literal_column("(xmax = 0)").label("created"))
        row = (await self.session.execute(stmt)).one()
        return _warehouse(row), bool(row.created)

    async def get(self, code: str) -> Warehouse | None:
        row = (
            await self.session.execute(sa.select(t.warehouses).where(t.warehouses.c.code == code))
        ).first()
        return _warehouse(row) if row else None

    async def list(self) -> list[Warehouse]:
        rows = (
            await self.session.execute(
                sa.select(t.warehouses).order_by(t.warehouses.c.priority, t.warehouses.c.code)
            )
        ).all()
        return [_warehouse(r) for r in rows]

    async def preference(self) -> dict[str, tuple[int, str]]:
        rows = (
            await self.session.execute(sa.select(t.warehouses.c.code, t.warehouses.c.priority))
        ).all()
        return {r.code: (int(r.priority), r.code) for r in rows}

    async def home_of(self, sku: str) -> str | None:
        held = (
            await self.session.execute(
                sa.select(t.warehouses.c.code)
                .join(t.stock, t.stock.c.warehouse == t.warehouses.c.code)
                .where(t.stock.c.sku == sku)
                .order_by(t.warehouses.c.priority, t.warehouses.c.code)
                .limit(1)
            )
        ).first()
        if held is not None:
            return str(held.code)
        first = (
            await self.session.execute(
                sa.select(t.warehouses.c.code)
                .order_by(t.warehouses.c.priority, t.warehouses.c.code)
                .limit(1)
            )
        ).first()
        return str(first.code) if first else None
