"""The composition root: settings, REST, gRPC, consumers and periodic jobs of the service."""

from __future__ import annotations

from datetime import timedelta

from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings

from .entrypoints import consumers, grpc, rest
from .service_layer import handlers
from .settings import RecommendationSettings

DESCRIPTION = (
    "Behaviour ingestion, stock-aware recommendations (similar, bought together, personalised, "
    "trending), RFM customer segments and the conversion funnel."
)


def load_settings() -> RecommendationSettings:
    return RecommendationSettings()  # database_url comes from the environment


def create_service(
    settings: RecommendationSettings | None = None, common: CommonSettings | None = None
) -> Service:
    settings = settings or load_settings()
    service = Service(
        name="recommendation",
        settings=settings,
        common=common,
        title="ecomops recommendation",
        description=DESCRIPTION,
        grpc_service_names=[grpc.SERVICE_NAME],
    )
    service.include_router(rest.build_router(service.uow, settings))
    service.add_grpc(grpc.registrar(service.uow, settings))
    consumers.register(service, settings.model_params())

    async def refresh_segments() -> None:
        # Recency ages with time: re-score customers whose segment is older than the interval,
        # batch after batch (rows claimed with SKIP LOCKED, so replicas share the work).
        while True:
            done = await handlers.refresh_stale_segments(
                service.uow(),
                older_than=timedelta(seconds=settings.segment_refresh_seconds),
                batch=settings.segment_refresh_batch,
            )
            if done < settings.segment_refresh_batch:
                return

    service.every(min(settings.segment_refresh_seconds, 600.0), "segment-refresh", refresh_segments)
    return service
