"""Composition root of the risk service."""

from __future__ import annotations

import logging
import weakref
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from ecomops_platform.db import utcnow
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings

from .adapters import repository
from .adapters.model_store import ModelHolder
from .domain.models import DEFAULT_RULE_SET
from .entrypoints import consumers, grpc, rest
from .service_layer import handlers
from .service_layer.handlers import RiskContext
from .settings import RiskSettings

log = logging.getLogger("risk.bootstrap")

PRUNE_LOCK = 0x52495350  # one pruning replica at a time


_CONTEXTS: weakref.WeakKeyDictionary[Service, RiskContext] = weakref.WeakKeyDictionary()


def context_of(service: Service) -> RiskContext:
    """The risk context (model holder) of a service built by create_service (tests, tools)."""
    return _CONTEXTS[service]


def load_settings() -> RiskSettings:
    return RiskSettings()


def create_service(
    settings: RiskSettings | None = None, common: CommonSettings | None = None
) -> Service:
    settings = settings or load_settings()
    service = Service(
        name="risk",
        settings=settings,
        common=common,
        title="ecomops risk",
        description=(
            "Real-time order scoring (rules + trained model), explainable decisions, "
            "manual review queue, label feedback and fraud KPIs."
        ),
        grpc_service_names=[grpc.SERVICE_NAME],
    )
    ctx = RiskContext(models=ModelHolder(Path(settings.model_dir)))
    _CONTEXTS[service] = ctx
    service.include_router(rest.build_router(service, ctx))
    service.add_grpc(grpc.registrar(service, ctx))
    service.subscribe(["ecomops.order.v1"], dict(consumers.HANDLERS))

    async def start() -> None:
        async with service.uow() as uow:
            await repository.ensure_rule_set(uow.session, DEFAULT_RULE_SET, utcnow())
            await uow.commit()
        await handlers.refresh_model(service.uow(), ctx)

    async def refresh() -> None:
        await handlers.refresh_model(service.uow(), ctx)

    async def prune() -> None:
        async with service.uow() as uow:
            got = await uow.session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(PRUNE_LOCK)))
            if not got:
                return
            removed = await repository.prune_velocity(
                uow.session,
                utcnow() - timedelta(seconds=settings.velocity_retention_seconds),
            )
            await uow.commit()
        if removed:
            log.info("pruned %d velocity events", removed)

    service.on_start(start)
    service.every(settings.model_refresh_seconds, "risk-model-refresh", refresh)
    service.every(settings.prune_interval_seconds, "risk-velocity-prune", prune)
    return service
