"""Composition root of the inventory service: its ``ServiceSpec``."""

from __future__ import annotations

from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec, Subscription
from ecomops_platform.topics import topic_of

from .adapters.unit_of_work import SqlInventoryUnitOfWork
from .entrypoints import consumers, rest
from .entrypoints.grpc import SERVICE_NAME, InventoryServicer
from .service_layer import catalog, fulfilment, inbound, planning, reservations, stock
from .service_layer.planning import RunPlanning, SnapshotLevels
from .service_layer.ports import Deps
from .service_layer.reservations import ExpireReservations
from .settings import InventorySettings

ORDER_TOPIC = topic_of(order_events)


def dependencies(service: Service, settings: InventorySettings) -> Deps:
    return Deps(settings=settings)


SPEC: ServiceSpec[InventorySettings, Deps] = ServiceSpec(
    name="inventory",
    title="ecomops inventory",
    description=(
        "SKU registry, stock across warehouses, TTL reservations with zero oversell, the "
        "stock ledger, and planning (forecasts, replenishment, ABC, KPIs)."
    ),
    settings=InventorySettings,
    unit_of_work=SqlInventoryUnitOfWork,
    dependencies=dependencies,
    handlers=handlers_in(catalog, stock, inbound, reservations, fulfilment, planning),
    rest=[rest.build_router],
    grpc=[
        GrpcService(
            SERVICE_NAME,
            pb_grpc.add_InventoryServiceServicer_to_server,
            InventoryServicer,
        )
    ],
    subscriptions=[
        # The group is "ecomops-inventory" for "main", "ecomops-inventory-<name>" otherwise
        # (INVENTORY_CONSUMER_NAME: an isolated environment sharing a broker).
        # batch=False: one transaction per event. Stock rows are locked in one global (SKU,
        # warehouse) order per transaction, which a chunk of several OrderPaid would break
        # (deadlocks with reservations, hot rows held for a whole chunk in a flash sale).
        Subscription(
            [ORDER_TOPIC], consumers.handlers, name=lambda s: s.consumer_name, batch=False
        ),
    ],
    jobs=[
        # Every replica sweeps (rows other replicas lock are skipped); planning and the
        # snapshot run in one replica at a time.
        Job(
            "expiry",
            lambda s: s.expiry_sweep_interval_seconds,
            ExpireReservations,
            singleton=False,
        ),
        Job("planning", lambda s: s.planning_interval_seconds, RunPlanning),
        Job("snapshot", lambda s: s.snapshot_interval_seconds, SnapshotLevels),
    ],
)


def load_settings() -> InventorySettings:
    return InventorySettings()  # database_url comes from INVENTORY_DATABASE_URL


def create_service(
    settings: InventorySettings | None = None,
    common: CommonSettings | None = None,
    *,
    dependencies: Deps | None = None,
) -> Service:
    return SPEC.create(settings, common, dependencies=dependencies)
