"""Composition root of the support service: its ``ServiceSpec``."""

from __future__ import annotations

from ecomops.support.v1 import support_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import handlers_in
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.spec import GrpcService, Job, ServiceSpec, Subscription

from .adapters.clients import Channels, GrpcCoupons, GrpcOrders, GrpcReturns
from .adapters.unit_of_work import SqlSupportUnitOfWork
from .domain.compensation import CompensationRule
from .domain.tickets import SlaPolicy
from .entrypoints import consumers, grpc, rest
from .knowledge_base import load_starter_articles
from .service_layer import articles, compensation, kpis, order_activity, tickets
from .service_layer.articles import SeedArticles
from .service_layer.ports import Deps, Ports
from .service_layer.tickets import CloseResolved, EscalateOverdue
from .settings import SupportSettings


def deps_from(settings: SupportSettings) -> Deps:
    """The handlers' dependencies from the settings (ports are opened at start-up)."""
    return Deps(
        sla=SlaPolicy(
            first_response_minutes=dict(settings.sla_first_response_minutes),
            resolution_minutes=dict(settings.sla_resolution_minutes),
            priority_factor=dict(settings.sla_priority_factor),
        ),
        auto_answer_confidence=settings.auto_answer_confidence,
        high_value_minor=settings.high_value_minor,
        urgent_value_minor=settings.urgent_value_minor,
        promised_delivery_days=settings.promised_delivery_days,
        compensation_rules=tuple(
            CompensationRule(
                rule_id=r.rule_id,
                kind=r.kind,
                categories=tuple(r.categories),
                percent=r.percent,
                min_days_late=r.min_days_late,
                valid_days=r.valid_days,
            )
            for r in settings.compensation_rules
        ),
        job_batch_size=settings.job_batch_size,
    )


def dependencies(service: Service, settings: SupportSettings) -> Deps:
    """gRPC clients to ``SUPPORT_ORDER_TARGET`` / ``SUPPORT_PRICING_TARGET`` opened at start-up;
    the starter knowledge base loaded into an empty articles table (``SUPPORT_SEED_STARTER_KB``);
    the knowledge index built."""
    deps = deps_from(settings)
    channels: list[Channels] = []

    async def start() -> None:
        ch = Channels(
            order=settings.order_target,
            pricing=settings.pricing_target,
            token=service.service_token.token,
            settings=service.common,
        )
        channels.append(ch)
        timeout = settings.dependency_timeout
        deps.ports = Ports(
            orders=GrpcOrders(ch.order, timeout),
            coupons=GrpcCoupons(ch.pricing, timeout),
            returns=GrpcReturns(ch.order, timeout),
        )
        if settings.seed_starter_kb:
            bus = service.bus
            assert bus is not None
            starter = tuple(load_starter_articles())
            await bus.handle(SeedArticles(articles=starter, only_when_empty=True), bus.system)
        # The knowledge index is built before the service reports ready (seconds: jieba's
        # dictionary, bm25s), never on a customer's request; later article changes rebuild it.
        uow = service.uow()
        assert isinstance(uow, SqlSupportUnitOfWork)
        async with uow:
            await deps.knowledge.current(uow)

    async def stop() -> None:
        while channels:
            await channels.pop().close()

    service.on_start(start)
    service.on_stop(stop)
    return deps


SPEC: ServiceSpec[SupportSettings, Deps] = ServiceSpec(
    name="support",
    title="ecomops support",
    description=(
        "The service desk: tickets tied to orders, three tiers with SLAs and automatic "
        "escalation, a knowledge base that answers by itself, goodwill compensation, "
        "satisfaction (CSAT, NPS) and service KPIs."
    ),
    settings=SupportSettings,
    unit_of_work=SqlSupportUnitOfWork,
    dependencies=dependencies,
    handlers=handlers_in(tickets, articles, compensation, kpis, order_activity),
    rest=[rest.build_router],
    grpc=[
        GrpcService(
            grpc.SERVICE_NAME, pb_grpc.add_SupportServiceServicer_to_server, grpc.SupportServicer
        )
    ],
    subscriptions=[Subscription(consumers.TOPICS, consumers.handlers)],
    jobs=[
        Job("support-sla-escalation", lambda s: s.sla_job_interval, EscalateOverdue),
        Job("support-close-resolved", lambda s: s.close_job_interval, CloseResolved),
    ],
)


def load_settings() -> SupportSettings:
    return SPEC.load_settings()


def create_service(
    settings: SupportSettings | None = None,
    common: CommonSettings | None = None,
    *,
    dependencies: Deps | None = None,
) -> Service:
    return SPEC.create(settings, common, dependencies=dependencies)
