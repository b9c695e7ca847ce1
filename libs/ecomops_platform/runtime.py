"""The service runtime: one process serving REST and gRPC, relaying its outbox, consuming its
subscriptions and running its background jobs, started and stopped as one unit.

A service's ``bootstrap.py`` builds a :class:`Service` and registers its parts; ``ecomops serve``
runs it until SIGTERM/SIGINT; tests run it in-process with ``async with service.running()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import uvicorn
from fastapi import APIRouter, FastAPI

from . import metrics
from .auth import ServiceTokenSource, TokenVerifier
from .bus import MessageBus
from .consumer import ConsumerRunner, EventHandler, Subscription
from .db import Database, UnitOfWork, singleton
from .events import make_producer
from .grpc_server import GrpcServer
from .logging import configure_logging
from .outbox import OutboxRelay, oldest_unpublished_age
from .producer import ResilientProducer
from .rest import create_app, parse_origins
from .retention import RetentionPolicy, purge_expired
from .settings import CommonSettings, ServiceSettings
from .topics import service_topic
from .tracing import configure_tracing, flush_tracing

log = logging.getLogger("ecomops.runtime")

BackgroundJob = Callable[["Service"], Awaitable[None]]


@dataclass
class PeriodicJob:
    name: str
    interval: float
    run: Callable[[], Awaitable[Any]]
    #: One replica at a time (a session advisory lock named after the service and the job).
    singleton: bool = False


T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service process's main coroutine on uvloop (libuv: faster I/O and timers than the
    default asyncio loop), or on asyncio where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return asyncio.run(main)
    return uvloop.run(main)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        common: CommonSettings | None = None,
        title: str,
        description: str,
        version: str = "0.1.0",
        grpc_service_names: Sequence[str] = (),
        unit_of_work: Callable[[Database, str], UnitOfWork] = UnitOfWork,
    ) -> None:
        self.name = name
        self.settings = settings
        self.common = common or CommonSettings()
        self.title = title
        self.description = description
        self.version = version
        self.grpc_service_names = list(grpc_service_names)
        self.verifier = TokenVerifier(self.common)
        self.service_token = ServiceTokenSource(self.common, name)
        self.topic = service_topic(name)
        self._unit_of_work = unit_of_work
        #: The message bus, when the service was built from a ServiceSpec.
        self.bus: MessageBus[Any, Any] | None = None
        self._routers: list[APIRouter] = []
        self._grpc_registrars: list[Callable[[grpc.aio.Server], None]] = []
        self._subscriptions: list[Subscription] = []
        self._periodic: list[PeriodicJob] = [
            PeriodicJob("retention", self.common.retention_interval_seconds, self.purge_expired)
        ]
        self._on_start: list[Callable[[], Awaitable[None]]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._db: Database | None = None
        self.producer: Any = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[ConsumerRunner] = []
        self.grpc: GrpcServer | None = None
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._uvicorn: uvicorn.Server | None = None
        self.app: FastAPI | None = None
        self.kafka_ok = False
        # Service-specific objects (repositories, caches, model holders) for tests and tools.
        self.state: dict[str, Any] = {}

    # --- composition ---------------------------------------------------------------------------
    def include_router(self, router: APIRouter) -> None:
        self._routers.append(router)

    def add_grpc(self, register: Callable[[grpc.aio.Server], None]) -> None:
        self._grpc_registrars.append(register)

    def subscribe(
        self,
        topics: Sequence[str],
        handlers: dict[str, EventHandler],
        *,
        name: str = "main",
        batch: bool = True,
    ) -> None:
        """Consume ``topics``; ``batch=False`` applies every event in its own transaction
        (``ECOMOPS_CONSUMER_BATCH_SIZE`` chunks otherwise)."""
        self._subscriptions.append(Subscription(list(topics), dict(handlers), name, batch))

    def every(
        self,
        seconds: float,
        name: str,
        job: Callable[[], Awaitable[Any]],
        *,
        singleton: bool = False,
    ) -> None:
        """Run ``job`` every ``seconds``; a ``singleton`` job runs in one replica at a time
        (the others skip the round)."""
        self._periodic.append(PeriodicJob(name, seconds, job, singleton))

    def on_start(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._on_start.append(hook)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(hook)

    # --- resources -----------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"{self.name}: database used before the service started")
        return self._db

    def uow(self) -> UnitOfWork:
        return self._unit_of_work(self.db, self.name)

    def build_app(self) -> FastAPI:
        if self.app is None:
            self.app = create_app(
                service=self.name,
                title=self.title,
                description=self.description,
                version=self.version,
                verifier=self.verifier,
                readiness=self.readiness,
                routers=self._routers,
                max_body_bytes=self.common.max_body_bytes,
                rate_limit_per_minute=self.common.rate_limit_per_minute,
                cors_allowed_origins=parse_origins(self.common.cors_allowed_origins),
                access_log=self.common.access_log,
            )
        return self.app

    async def readiness(self) -> dict[str, Any]:
        """The readiness report: ready while the database answers.

        Kafka down only degrades the service: writes go on into the outbox, which the relay
        publishes when the broker is back, so taking the pods out of service would turn a
        broker outage into a shop outage. The report names degraded dependencies and how old
        the oldest unpublished event is.
        """
        checks = {"database": False, "kafka": False}
        outbox_age: float | None = None
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2)
            checks["database"] = True
            outbox_age = await asyncio.wait_for(oldest_unpublished_age(self.db), timeout=2)
            metrics.outbox_oldest_unpublished_age_seconds.labels(self.name).set(outbox_age)
        except Exception:
            log.debug("database not ready", exc_info=True)
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=2)
            checks["kafka"] = True
        except Exception:
            log.debug("kafka not ready", exc_info=True)
        for dep, ok in checks.items():
            metrics.dependency_up.labels(self.name, dep).set(1 if ok else 0)
        ready = checks["database"]
        degraded = [dep for dep, ok in checks.items() if not ok and dep != "database"]
        if not ready:
            status = "not_ready"
        elif degraded:
            status = "degraded"
        else:
            status = "ready"
        return {
            "status": status,
            "ready": ready,
            "checks": checks,
            "degraded": degraded,
            "outbox_oldest_unpublished_age_seconds": (
                None if outbox_age is None else round(outbox_age, 3)
            ),
        }

    async def purge_expired(self) -> dict[str, int] | None:
        """One round of the platform tables' retention (a singleton across replicas)."""
        return await purge_expired(self.db, self.name, RetentionPolicy.from_settings(self.common))

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        configure_tracing(self.name)
        self._db = Database(
            self.settings.database_url,
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
            outbox_notify=self.common.outbox_notify,
            service=self.name,
        )
        self.producer = ResilientProducer(
            lambda: make_producer(self.common, f"ecomops-{self.name}"),
            service=self.name,
            reset_after_failures=self.common.kafka_producer_reset_after_failures,
        )
        await self._start_producer()
        self.relay = OutboxRelay(
            self.db,
            self.producer,
            self.name,
            poll_interval=self.common.outbox_poll_interval,
            linger=self.common.outbox_linger_ms / 1000,
        )
        for hook in self._on_start:
            await hook()
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox"))
        for sub in self._subscriptions:
            runner = ConsumerRunner(
                service=self.name,
                settings=self.common,
                db=self.db,
                producer=self.producer,
                subscription=sub,
                max_attempts=self.common.consumer_max_attempts,
                unit_of_work=self.uow,
            )
            self.consumers.append(runner)
            self._tasks.append(
                asyncio.create_task(self._run_consumer(runner), name=runner.group_id)
            )
        for job in self._periodic:
            self._tasks.append(asyncio.create_task(self._run_periodic(job), name=job.name))
        self.grpc = GrpcServer(
            service=self.name,
            verifier=self.verifier,
            registrars=self._grpc_registrars,
            service_names=self.grpc_service_names,
            host=self.settings.grpc_host,
            port=self.settings.grpc_port,
            tls_cert_file=self.settings.grpc_tls_cert_file,
            tls_key_file=self.settings.grpc_tls_key_file,
            tls_client_ca_file=self.settings.grpc_tls_client_ca_file,
            access_log=self.common.access_log,
        )
        await self.grpc.start()
        self.grpc_port = self.grpc.port
        config = uvicorn.Config(
            self.build_app(),
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # The C parser (httptools) rather than the pure-Python h11; the loop is the one the
            # process runs in (``run``: uvloop).
            http="httptools",
            timeout_graceful_shutdown=int(self.settings.shutdown_grace_seconds),
        )
        self._uvicorn = _QuietServer(config)
        self._tasks.append(asyncio.create_task(self._uvicorn.serve(), name=f"{self.name}-http"))
        while not self._uvicorn.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise RuntimeError(f"{self.name}: HTTP server stopped during start-up")
            await asyncio.sleep(0.02)
        self.http_port = self._uvicorn.servers[0].sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._watch_health(), name=f"{self.name}-health"))
        log.info(
            "%s started: REST on %s:%s, gRPC on %s:%s",
            self.name,
            self.settings.http_host,
            self.http_port,
            self.settings.grpc_host,
            self.grpc_port,
        )

    async def _start_producer(self) -> None:
        delay = 0.5
        for _ in range(20):
            try:
                await self.producer.start()
                self.kafka_ok = True
                return
            except Exception as exc:  # noqa: BLE001 - retried; the outbox keeps events meanwhile
                log.warning("Kafka not reachable yet (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
        raise RuntimeError("Kafka did not become reachable; check ECOMOPS_KAFKA_BOOTSTRAP")

    async def _run_consumer(self, runner: ConsumerRunner) -> None:
        """Keep a consumer running: any error or stall gets a brand-new consumer.

        A new ``AIOKafkaConsumer`` rejoins its group and resumes from the committed offsets;
        anything handled but not yet committed comes again and the inbox drops it.
        """
        delay = 0.5
        # Starting a consumer talks to the broker with no deadline of its own: against a broker
        # that comes and goes it can wait for ever, before the stall watchdog (part of run())
        # exists. A start that takes this long is abandoned and retried with a new consumer.
        start_deadline = max(30.0, 2 * self.common.consumer_stall_seconds)
        while True:
            try:
                await asyncio.wait_for(runner.start(), timeout=start_deadline)
                delay = 0.5
                await runner.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - restart the consumer, offsets are safe
                metrics.consumer_restarts_total.labels(self.name, runner.consumer_name).inc()
                log.warning(
                    "consumer %s stopped (%s: %s); restarting in %.1fs",
                    runner.group_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runner.stop(), timeout=10)

    async def _run_periodic(self, job: PeriodicJob) -> None:
        while True:
            try:
                if job.singleton:
                    async with singleton(self.db, f"{self.name}-{job.name}") as mine:
                        if mine:
                            await job.run()
                else:
                    await job.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic job %s failed", job.name)
            await asyncio.sleep(job.interval)

    async def _watch_health(self) -> None:
        while True:
            report = await self.readiness()
            if self.grpc is not None:
                await self.grpc.set_serving(bool(report["ready"]))
            await asyncio.sleep(2)

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        # Stop taking traffic first: HTTP drains in-flight requests, gRPC gets its grace period.
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        http_tasks = [t for t in self._tasks if t.get_name().endswith("-http")]
        if http_tasks:
            await asyncio.wait(http_tasks, timeout=grace + 2)
        if self.grpc is not None:
            with contextlib.suppress(Exception):
                await self.grpc.stop(grace)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=5)
            for task in stuck:
                log.warning("%s: task %s did not stop within 5 s", self.name, task.get_name())
        self._tasks.clear()
        for hook in self._on_stop:
            with contextlib.suppress(Exception):
                await hook()
        for runner in self.consumers:
            with contextlib.suppress(Exception):
                await runner.stop()
        self.consumers.clear()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self._db is not None:
            await self._db.dispose()
        await asyncio.to_thread(flush_tracing)
        log.info("%s stopped", self.name)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        try:
            await self.start()
            yield self
        finally:
            await self.stop()

    async def serve_forever(self) -> None:
        configure_logging(self.name, self.common.log_level)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait([waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error(
                        "%s: task %s failed: %s", self.name, task.get_name(), task.exception()
                    )
        finally:
            await self.stop()
