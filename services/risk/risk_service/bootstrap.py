"""Composition root of the risk service: its ``ServiceSpec``."""

from __future__ import annotations

from pathlib import Path

from ecomops.risk.v1 import risk_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec, Subscription

from .adapters.model_store import ModelHolder
from .adapters.unit_of_work import SqlRiskUnitOfWork
from .entrypoints import consumers, grpc, rest
from .service_layer import (
    assessments,
    blocklist,
    kpis,
    model_versions,
    order_activity,
    reviews,
    rules,
)
from .service_layer.model_versions import RefreshModel
from .service_layer.order_activity import PruneVelocity
from .service_layer.ports import Deps
from .service_layer.rules import EnsureDefaultRules
from .settings import RiskSettings


def dependencies(service: Service, settings: RiskSettings) -> Deps:
    """The model store (``RISK_MODEL_DIR``); at start-up, the default rule set and the model
    activated last (dependencies given to ``create`` skip these start-up steps: the rule set
    is then created on first use and the model by the first refresh)."""
    deps = Deps(
        models=ModelHolder(Path(settings.model_dir)),
        velocity_retention_seconds=settings.velocity_retention_seconds,
    )

    async def start() -> None:
        bus = service.bus
        assert bus is not None
        await bus.handle(EnsureDefaultRules(), bus.system)
        await bus.handle(RefreshModel(), bus.system)

    service.on_start(start)
    return deps


SPEC: ServiceSpec[RiskSettings, Deps] = ServiceSpec(
    name="risk",
    title="ecomops risk",
    description=(
        "Real-time order scoring (rules + trained model), explainable decisions, "
        "manual review queue, label feedback and fraud KPIs."
    ),
    settings=RiskSettings,
    unit_of_work=SqlRiskUnitOfWork,
    dependencies=dependencies,
    handlers=handlers_in(
        assessments, rules, blocklist, reviews, model_versions, kpis, order_activity
    ),
    rest=[rest.build_router],
    grpc=[
        GrpcService(grpc.SERVICE_NAME, pb_grpc.add_RiskServiceServicer_to_server, grpc.RiskServicer)
    ],
    subscriptions=[Subscription(consumers.TOPICS, consumers.handlers)],
    jobs=[
        # Every replica follows the version activated last: not a singleton.
        Job(
            "risk-model-refresh",
            lambda s: s.model_refresh_seconds,
            RefreshModel,
            singleton=False,
        ),
        Job("risk-velocity-prune", lambda s: s.prune_interval_seconds, PruneVelocity),
    ],
)


def load_settings() -> RiskSettings:
    return SPEC.load_settings()


def create_service(
    settings: RiskSettings | None = None,
    common: CommonSettings | None = None,
    *,
    dependencies: Deps | None = None,
) -> Service:
    """The runnable service (tests pass a model store of their own through ``dependencies``)."""
    return SPEC.create(settings, common, dependencies=dependencies)
