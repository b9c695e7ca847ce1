"""The composition root of the order service: settings, ports, REST, gRPC, consumers, jobs."""

from __future__ import annotations

from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings

from .adapters.clients import Channels, GrpcInventory, GrpcPricing, GrpcRisk
from .adapters.payments import SandboxPaymentProvider
from .entrypoints import consumers, grpc, rest
from .service_layer import handlers
from .service_layer.handlers import Deps
from .service_layer.ports import PaymentProvider, Ports
from .settings import OrderSettings


def load_settings() -> OrderSettings:
    return OrderSettings()


class _NotStarted:
    """Placeholder ports until the service starts and opens its gRPC channels."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("order service: dependency used before start-up")


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
    service = Service(
        name="order",
        settings=settings,
        common=common,
        title="ecomops order service",
        description=(
            "Carts, idempotent checkout across pricing, risk and inventory, tokenised payment, "
            "fulfilment, cancellation, returns and refunds, order KPIs."
        ),
        grpc_service_names=[grpc.SERVICE_NAME],
    )
    deps = Deps(settings=settings, ports=ports or _NotStarted())  # type: ignore[arg-type]
    service.state["deps"] = deps
    channels: list[Channels] = []

    async def open_clients() -> None:
        if ports is not None:
            return
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
        )

    async def close_clients() -> None:
        while channels:
            await channels.pop().close()

    service.on_start(open_clients)
    service.on_stop(close_clients)
    service.include_router(rest.build_router(service.uow, deps))
    service.add_grpc(grpc.registrar(service.uow, deps))
    service.subscribe([consumers.RISK_TOPIC], consumers.build_handlers(deps))

    async def expire_unpaid() -> None:
        await handlers.expire_unpaid_orders(service.uow(), deps)

    async def abandon_carts() -> None:
        await handlers.abandon_idle_carts(service.uow(), deps)

    service.every(settings.job_interval, "order-expire-unpaid", expire_unpaid)
    service.every(settings.job_interval, "order-abandon-carts", abandon_carts)
    return service
