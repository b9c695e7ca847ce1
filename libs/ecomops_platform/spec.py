"""What a service is, declared once: its :class:`ServiceSpec`.

Each service's ``bootstrap.py`` exports ``SPEC`` and names it in the ``ecomops.services``
entry-point group of ``pyproject.toml``; the platform finds services there (``registry``), so a
new service is one package and one entry-point line, not an edit of the platform.

The spec lists the parts; :meth:`ServiceSpec.create` builds the runnable
:class:`~ecomops_platform.runtime.Service` from them:

- ``settings``: the pydantic-settings class (``<SERVICE>_*``); its ``http_port`` and
  ``grpc_port`` defaults are the service's ports;
- ``unit_of_work``: the adapters' unit of work (repositories attached), built per use;
- ``dependencies``: builds what handlers need beside the unit of work (settings, clients,
  clocks) — the one place where a service may also hook start-up and shutdown;
- ``handlers``: the service layer's handlers (``handlers_in(module, …)``);
- ``rest``: functions building FastAPI routers from the bus;
- ``grpc``: the gRPC services (full name, generated ``add_…_to_server``, servicer from the bus);
- ``subscriptions``: Kafka topics with event handlers built from the bus;
- ``jobs``: periodic commands, singletons across replicas unless said otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .bus import Handler, Message, MessageBus
from .consumer import EventHandler
from .db import Database, UnitOfWork
from .events import Envelope
from .settings import CommonSettings, ServiceSettings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .runtime import Service

S = TypeVar("S", bound=ServiceSettings)
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class GrpcService:
    """One gRPC service: its full name (health and reflection), the generated
    ``add_<Name>Servicer_to_server`` and the servicer built from the bus."""

    name: str
    add_to_server: Callable[[Any, Any], None]
    servicer: Callable[[MessageBus[Any, Any]], object]


@dataclass(frozen=True, slots=True)
class Subscription:
    """Topics one consumer group reads, and the event handlers (by CloudEvents type)."""

    topics: Sequence[str]
    handlers: Callable[[MessageBus[Any, Any]], Mapping[str, EventHandler]]
    #: The consumer group's suffix ("main": ``ecomops-<service>``), or a function of the
    #: settings giving it (a service whose settings name an isolated group).
    name: str | Callable[[Any], str] = "main"
    #: False: every event in its own transaction, never in chunks of
    #: ``ECOMOPS_CONSUMER_BATCH_SIZE`` (handlers that rely on one event per transaction, e.g.
    #: for the order in which they lock rows shared with the request path).
    batch: bool = True


@dataclass(frozen=True, slots=True)
class Job:
    """A command sent every ``interval(settings)`` seconds by the service itself. A singleton
    job runs in one replica at a time (a session advisory lock per service and job)."""

    name: str
    interval: Callable[[Any], float]
    command: Callable[[], Message[Any]]
    singleton: bool = True


@dataclass(frozen=True, slots=True)
class ServiceSpec(Generic[S, D]):
    name: str
    title: str
    description: str
    settings: type[S]
    unit_of_work: Callable[[Database, str], UnitOfWork]
    dependencies: Callable[[Service, S], D]
    handlers: Sequence[Handler]
    rest: Sequence[Callable[[MessageBus[Any, D]], APIRouter]] = ()
    grpc: Sequence[GrpcService] = ()
    subscriptions: Sequence[Subscription] = ()
    jobs: Sequence[Job] = ()

    @property
    def http_port(self) -> int:
        return int(self.settings.model_fields["http_port"].default)

    @property
    def grpc_port(self) -> int:
        return int(self.settings.model_fields["grpc_port"].default)

    def load_settings(self) -> S:
        return self.settings()

    def create(
        self,
        settings: S | None = None,
        common: CommonSettings | None = None,
        *,
        dependencies: D | None = None,
    ) -> Service:
        """The runnable service. Tests pass ``dependencies`` (fakes of other services, a
        fixed clock); otherwise :attr:`dependencies` builds them."""
        from .runtime import Service

        settings = settings or self.load_settings()
        service = Service(
            name=self.name,
            settings=settings,
            common=common,
            title=self.title,
            description=self.description,
            grpc_service_names=[g.name for g in self.grpc],
            unit_of_work=self.unit_of_work,
        )
        deps = dependencies if dependencies is not None else self.dependencies(service, settings)
        bus: MessageBus[Any, D] = MessageBus(
            service=self.name,
            uow=service.uow,
            deps=deps,
            handlers=self.handlers,
            # (a service whose claim_first handlers call others sizes the lease to its deadlines)
            claim_lease=float(getattr(settings, "claim_lease_seconds", 30.0)),
        )
        service.bus = bus
        for build_router in self.rest:
            service.include_router(build_router(bus))
        for grpc_service in self.grpc:
            service.add_grpc(_registrar(grpc_service, bus))
        for sub in self.subscriptions:
            name = sub.name(settings) if callable(sub.name) else sub.name
            service.subscribe(sub.topics, dict(sub.handlers(bus)), name=name, batch=sub.batch)
        for job in self.jobs:
            service.every(
                job.interval(settings),
                job.name,
                _job_runner(bus, job),
                singleton=job.singleton,
            )
        return service


def _registrar(grpc_service: GrpcService, bus: MessageBus[Any, Any]) -> Callable[[Any], None]:
    def register(server: Any) -> None:
        grpc_service.add_to_server(grpc_service.servicer(bus), server)

    return register


def _job_runner(bus: MessageBus[Any, Any], job: Job) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return await bus.handle(job.command(), bus.system)

    return run


def on_event(
    bus: MessageBus[Any, Any], to_message: Callable[[Envelope], Message[Any] | None]
) -> EventHandler:
    """The one shape of an event handler: the event becomes a message (``None``: nothing to
    do), handled by the bus as the service itself, inside the consumer's unit of work — the
    transaction that also records the event in the inbox."""

    async def handle(uow: UnitOfWork, event: Envelope) -> None:
        message = to_message(event)
        if message is not None:
            await bus.handle(message, bus.system, uow=uow)

    return handle
