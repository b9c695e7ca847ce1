"""The composition root of the order service: its :data:`SPEC` (settings, unit of work,
dependencies, handlers, REST, gRPC, the risk-review subscription, the periodic jobs)."""

from __future__ import annotations

import dataclasses
from functools import partial

from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec, Subscription

from .adapters.clients import Channels, GrpcInventory, GrpcPricing, GrpcRisk
from .adapters.payments import SandboxPaymentProvider
from .adapters.unit_of_work import SqlOrderUnitOfWork
from .entrypoints import consumers, grpc, rest
from .service_layer import (
    carts,
    checkout,
    fulfilment,
    imports,
    kpis,
    orders,
    payments,
    returns,
)
from .service_layer.carts import AbandonIdleCarts
from .service_layer.payments import ExpireUnpaidOrders
from .service_layer.ports import Deps, PaymentProvider, Ports, SoldOutMemory
from .settings import OrderSettings


class _NotStarted:
    """Placeholder ports until the service starts and opens its gRPC channels."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("order service: dependency used before start-up")


def build_dependencies(
    service: Service, settings: OrderSettings, *, payments: PaymentProvider | None = None
) -> Deps:
    """Deps whose ports are gRPC clients to ``ORDER_*_TARGET``, opened at start-up."""
    deps = Deps(settings=settings, ports=_NotStarted())  # type: ignore[arg-type]
    channels: list[Channels] = []

    async def open_clients() -> None:
        ch = Channels(
            inventory=settings.inventory_target,
            pricing=settings.pricing_target,
            risk=settings.risk_target,
            token=service.service_token.token,
            settings=service.common,
        )
        channels.append(ch)
        timeout = settings.dependency_timeout
        deps.ports = Ports(
            pricing=GrpcPricing(ch.pricing, timeout),
            risk=GrpcRisk(ch.risk, timeout),
            inventory=GrpcInventory(ch.inventory, timeout),
            payments=payments or SandboxPaymentProvider(),
            sold_out=SoldOutMemory(settings.sold_out_memory_seconds),
        )

    async def close_clients() -> None:
        while channels:
            await channels.pop().close()

    service.on_start(open_clients)
    service.on_stop(close_clients)
    return deps


SPEC: ServiceSpec[OrderSettings, Deps] = ServiceSpec(
    name="order",
    title="ecomops order service",
    description=(
        "Carts, idempotent checkout across pricing, risk and inventory, tokenised payment, "
        "fulfilment, cancellation, returns and refunds, order KPIs."
    ),
    settings=OrderSettings,
    unit_of_work=SqlOrderUnitOfWork,
    dependencies=build_dependencies,
    handlers=handlers_in(carts, checkout, orders, payments, fulfilment, returns, kpis, imports),
    rest=[rest.build_router],
    grpc=[
        GrpcService(
            grpc.SERVICE_NAME, pb_grpc.add_OrderServiceServicer_to_server, grpc.OrderServicer
        )
    ],
    subscriptions=[Subscription(topics=[consumers.RISK_TOPIC], handlers=consumers.handlers)],
    # Not singletons: rows are taken with SKIP LOCKED, so replicas share the work.
    jobs=[
        Job("order-expire-unpaid", lambda s: s.job_interval, ExpireUnpaidOrders, singleton=False),
        Job("order-abandon-carts", lambda s: s.job_interval, AbandonIdleCarts, singleton=False),
    ],
)


def load_settings() -> OrderSettings:
    return SPEC.load_settings()


def create_service(
    settings: OrderSettings | None = None,
    common: CommonSettings | None = None,
    *,
    ports: Ports | None = None,
    payments: PaymentProvider | None = None,
) -> Service:
    """Build the service. Tests pass ``ports`` (fakes of pricing, risk, inventory, payments);
    otherwise gRPC clients to ``ORDER_*_TARGET`` are opened at start-up."""
    settings = settings or load_settings()
    if ports is not None:
        return SPEC.create(settings, common, dependencies=Deps(settings=settings, ports=ports))
    if payments is not None:
        spec = dataclasses.replace(
            SPEC, dependencies=partial(build_dependencies, payments=payments)
        )
        return spec.create(settings, common)
    return SPEC.create(settings, common)
