"""The composition root of the pricing service."""

from __future__ import annotations

from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings

from .entrypoints import consumers, grpc, rest
from .service_layer import handlers
from .settings import PricingSettings

GRPC_SERVICE = "ecomops.pricing.v1.PricingService"


def load_settings() -> PricingSettings:
    return PricingSettings()


def create_service(
    settings: PricingSettings | None = None, common: CommonSettings | None = None
) -> Service:
    settings = settings or load_settings()
    service = Service(
        name="pricing",
        settings=settings,
        common=common,
        title="ecomops pricing",
        description=(
            "Price book with margin guard and history, promotions and coupons, trusted quotes, "
            "competitor prices and dynamic-pricing suggestions."
        ),
        grpc_service_names=[GRPC_SERVICE],
    )
    service.include_router(rest.build_router(service, settings))
    service.add_grpc(grpc.register(service, settings))
    service.subscribe(consumers.TOPICS, consumers.HANDLERS, name=settings.consumer_name)

    async def sweep() -> None:
        await handlers.sweep_unconfirmed(service.uow, settings)

    service.every(settings.redemption_sweep_interval_seconds, "pricing-redemption-sweep", sweep)
    return service
