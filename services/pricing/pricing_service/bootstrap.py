"""The composition root of the pricing service: its :data:`SPEC`, found by the platform through
the ``ecomops.services`` entry point."""

from __future__ import annotations

from ecomops.pricing.v1 import pricing_service_pb2
from ecomops.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec, Subscription

from .adapters.read_cache import configure
from .adapters.unit_of_work import SqlPricingUnitOfWork
from .entrypoints import consumers, grpc, rest
from .service_layer import price_book, promotions, quotes, signals
from .service_layer.ports import Deps
from .settings import PricingSettings

GRPC_SERVICE = pricing_service_pb2.DESCRIPTOR.services_by_name["PricingService"].full_name


def dependencies(service: Service, settings: PricingSettings) -> Deps:
    async def configure_read_cache() -> None:
        configure(service.db, settings.read_cache_seconds)

    service.on_start(configure_read_cache)
    return Deps(settings=settings)


def _consumer_name(settings: PricingSettings) -> str:
    return settings.consumer_name


def _sweep_interval(settings: PricingSettings) -> float:
    return float(settings.redemption_sweep_interval_seconds)


SPEC: ServiceSpec[PricingSettings, Deps] = ServiceSpec(
    name="pricing",
    title="ecomops pricing",
    description=(
        "Price book with margin guard and history, promotions and coupons, trusted quotes, "
        "competitor prices and dynamic-pricing suggestions."
    ),
    settings=PricingSettings,
    unit_of_work=SqlPricingUnitOfWork,
    dependencies=dependencies,
    handlers=handlers_in(price_book, promotions, quotes, signals),
    rest=[rest.build_router],
    grpc=[
        GrpcService(
            GRPC_SERVICE, pb_grpc.add_PricingServiceServicer_to_server, grpc.PricingServicer
        )
    ],
    subscriptions=[Subscription(consumers.TOPICS, consumers.handlers, name=_consumer_name)],
    jobs=[
        Job(
            "redemption-sweep",
            _sweep_interval,
            promotions.SweepUnconfirmedRedemptions,
        )
    ],
)


def load_settings() -> PricingSettings:
    return SPEC.load_settings()


def create_service(
    settings: PricingSettings | None = None,
    common: CommonSettings | None = None,
    *,
    dependencies: Deps | None = None,
) -> Service:
    return SPEC.create(settings, common, dependencies=dependencies)
