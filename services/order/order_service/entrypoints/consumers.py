"""Kafka consumers of the order service: decode, call one handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ecomops.risk.v1 import events_pb2 as risk_events
from ecomops_platform.db import UnitOfWork
from ecomops_platform.events import Envelope

from ..service_layer import handlers
from ..service_layer.handlers import Deps

RISK_TOPIC = "ecomops.risk.v1"


def build_handlers(deps: Deps) -> dict[str, Callable[[UnitOfWork, Envelope], Awaitable[None]]]:
    async def on_review_resolved(uow: UnitOfWork, envelope: Envelope) -> None:
        await handlers.on_review_resolved(uow, deps, envelope)

    return {risk_events.RiskReviewResolved.DESCRIPTOR.full_name: on_review_resolved}
