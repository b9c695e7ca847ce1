"""The composition root: the recommendation service's parts, as one :class:`ServiceSpec`."""

from __future__ import annotations

from datetime import timedelta

from ecomops.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec

from .adapters.unit_of_work import SqlRecommendationUnitOfWork
from .entrypoints import consumers, grpc, rest
from .service_layer import funnel, history, ingestion, learning, rebuild, segments, serving
from .service_layer.ports import Deps, IngestionPolicy
from .service_layer.read_cache import ReadCache
from .settings import RecommendationSettings

DESCRIPTION = (
    "Behaviour ingestion, stock-aware recommendations (similar, bought together, personalised, "
    "trending), RFM customer segments and the conversion funnel."
)


def load_settings() -> RecommendationSettings:
    return RecommendationSettings()  # database_url comes from the environment


def dependencies_of(settings: RecommendationSettings) -> Deps:
    return Deps(
        params=settings.model_params(),
        ingestion=IngestionPolicy(
            max_batch=settings.max_batch,
            max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
            max_age=timedelta(days=settings.max_event_age_days),
            anonymous_rate_per_minute=settings.anonymous_rate_per_minute,
        ),
        read_cache=ReadCache(settings.read_cache_seconds, settings.read_cache_entries),
        neighbour_cache=ReadCache(settings.read_cache_seconds, settings.read_cache_entries),
        segment_max_age=timedelta(seconds=settings.segment_refresh_seconds),
        segment_batch=settings.segment_refresh_batch,
    )


def build_dependencies(service: Service, settings: RecommendationSettings) -> Deps:
    return dependencies_of(settings)


def segment_refresh_interval(settings: RecommendationSettings) -> float:
    return min(settings.segment_refresh_seconds, 600.0)


SPEC: ServiceSpec[RecommendationSettings, Deps] = ServiceSpec(
    name="recommendation",
    title="ecomops recommendation",
    description=DESCRIPTION,
    settings=RecommendationSettings,
    unit_of_work=SqlRecommendationUnitOfWork,
    dependencies=build_dependencies,
    handlers=handlers_in(ingestion, learning, serving, segments, funnel, rebuild, history),
    rest=[rest.build_router],
    grpc=[
        GrpcService(
            grpc.SERVICE_NAME,
            pb_grpc.add_RecommendationServiceServicer_to_server,
            grpc.RecommendationServicer,
        )
    ],
    subscriptions=consumers.SUBSCRIPTIONS,
    jobs=[
        # Recency ages with time. Not a singleton: stale segments are claimed with SKIP LOCKED,
        # so that replicas running the job at once share the work.
        Job(
            "segment-refresh",
            segment_refresh_interval,
            segments.RefreshStaleSegments,
            singleton=False,
        )
    ],
)


def create_service(
    settings: RecommendationSettings | None = None, common: CommonSettings | None = None
) -> Service:
    return SPEC.create(settings, common)
