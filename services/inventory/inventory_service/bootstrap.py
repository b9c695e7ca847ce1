"""Composition root of the inventory service."""

from __future__ import annotations

from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings

from .entrypoints.consumers import build_handlers
from .entrypoints.grpc import SERVICE_NAME, registrar
from .entrypoints.rest import build_router
from .service_layer import handlers, planning
from .settings import InventorySettings

ORDER_TOPIC = "ecomops.order.v1"


def load_settings() -> InventorySettings:
    return InventorySettings()  # database_url comes from INVENTORY_DATABASE_URL


def create_service(
    settings: InventorySettings | None = None, common: CommonSettings | None = None
) -> Service:
    settings = settings or load_settings()
    service = Service(
        name="inventory",
        settings=settings,
        common=common,
        title="ecomops inventory",
        description=(
            "SKU registry, stock across warehouses, TTL reservations with zero oversell, the "
            "stock ledger, and planning (forecasts, replenishment, ABC, KPIs)."
        ),
        grpc_service_names=[SERVICE_NAME],
    )
    service.include_router(build_router(service.uow, settings))
    service.add_grpc(registrar(service.uow, settings))
    service.subscribe([ORDER_TOPIC], build_handlers(settings), name=settings.consumer_name)

    async def expire() -> None:
        await handlers.expire_all_due(service.uow, settings)

    async def plan() -> None:
        await planning.run_planning(service.uow(), settings)

    async def snapshot() -> None:
        await planning.snapshot_levels(service.uow())

    service.every(settings.expiry_sweep_interval_seconds, "inventory-expiry", expire)
    service.every(settings.planning_interval_seconds, "inventory-planning", plan)
    service.every(settings.snapshot_interval_seconds, "inventory-snapshot", snapshot)
    return service
