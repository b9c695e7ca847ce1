"""The SKU registry and the warehouses: create or update, read, list."""

from __future__ import annotations

from dataclasses import dataclass

from ecomops_platform.auth import Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable

from ..domain.models import Sku, SkuStatus, Warehouse, check_attributes, check_id, check_priority
from . import events as ev
from .ports import Ctx
from .views import SkuPage, SkuSaved, WarehouseSaved

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertSku(Command[SkuSaved], roles=OPS):
    """Create or update a SKU; publishes SkuUpserted."""

    sku: str
    title: str
    category: str
    status: SkuStatus
    brand: str | None = None
    attributes: dict[str, str] | None = None
    lead_time_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSku(Query[Sku], roles=ANY_ROLE):
    sku: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSkus(Query[SkuPage], roles=ANY_ROLE):
    """SKUs by id after ``after``, filtered by category and status."""

    category: str | None = None
    status: SkuStatus | None = None
    after: str | None = None
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertWarehouse(Command[WarehouseSaved], roles=OPS):
    """Create or update a warehouse (lower priority is preferred; default 100, kept on update)."""

    code: str
    name: str
    region: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWarehouses(Query[list[Warehouse]], roles=ANY_ROLE):
    pass


@handler
async def upsert_sku(cmd: UpsertSku, ctx: Ctx) -> SkuSaved:
    check_id(cmd.sku, "sku")
    if cmd.lead_time_days is not None and not 0 <= cmd.lead_time_days <= 365:
        raise Unprocessable("lead_time_days must be between 0 and 365", code="invalid-lead-time")
    attributes = check_attributes(cmd.attributes)
    now = ctx.deps.clock()
    async with ctx.uow as uow:
        sku, created = await uow.skus.upsert(
            cmd.sku,
            title=cmd.title,
            category=cmd.category,
            brand=cmd.brand,
            attributes=attributes,
            status=cmd.status,
            lead_time_days=cmd.lead_time_days,
            now=now,
        )
        uow.add_event(ev.sku_upserted(sku), key=sku.sku)
        await uow.commit()
    return SkuSaved(sku, created)


@handler
async def get_sku(query: GetSku, ctx: Ctx) -> Sku:
    async with ctx.uow as uow:
        found = await uow.skus.get(query.sku)
    if found is None:
        raise NotFound(f"sku {query.sku} not found")
    return found


@handler
async def list_skus(query: ListSkus, ctx: Ctx) -> SkuPage:
    async with ctx.uow as uow:
        items = await uow.skus.list(
            category=query.category, status=query.status, after=query.after, limit=query.limit + 1
        )
    return SkuPage(items[: query.limit], more=len(items) > query.limit)


@handler
async def upsert_warehouse(cmd: UpsertWarehouse, ctx: Ctx) -> WarehouseSaved:
    check_id(cmd.code, "warehouse code")
    check_priority(cmd.priority)
    async with ctx.uow as uow:
        priority = cmd.priority
        if priority is None:
            existing = await uow.warehouses.get(cmd.code)
            priority = existing.priority if existing else 100
        wh, created = await uow.warehouses.upsert(
            cmd.code, name=cmd.name, region=cmd.region, priority=priority, now=ctx.deps.clock()
        )
        await uow.commit()
    return WarehouseSaved(wh, created)


@handler
async def list_warehouses(query: ListWarehouses, ctx: Ctx) -> list[Warehouse]:
    async with ctx.uow as uow:
        return await uow.warehouses.list()
