"""A small service built on the platform, for testing the platform against the real stack."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import grpc
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import create_async_engine

from ecomops.common.v1 import common_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Command, Context, MessageBus, Query, handler, handlers_in
from ecomops_platform.db import UnitOfWork, platform_metadata
from ecomops_platform.errors import Conflict, NotFound
from ecomops_platform.events import Envelope
from ecomops_platform.grpc_server import authorize
from ecomops_platform.rest import RequestModel, allowed, replayed
from ecomops_platform.runtime import Service
from ecomops_platform.settings import ServiceSettings
from ecomops_platform.spec import GrpcService, ServiceSpec, Subscription, on_event
from ecomops_platform.strict import RequiredIdempotencyKey

DB_NAME = "ecomops_platform_test"
PROBE_TOPIC = "ecomops.probe.v1"

notes_metadata = sa.MetaData()
notes = sa.Table(
    "notes",
    notes_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("text", sa.String(200), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)
applied = sa.Table(
    "applied_events",
    notes_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)


def probe_database_url() -> str:
    base = os.environ["ORDER_DATABASE_URL"]
    return base.rsplit("/", 1)[0] + "/" + DB_NAME


class ProbeSettings(ServiceSettings):
    pass


class NoteIn(RequestModel):
    text: str
    amount: int


class NoteView(BaseModel):
    id: str
    text: str
    amount: int


async def create_note(uow: UnitOfWork, note_id: str, body: NoteIn, fail: bool = False) -> NoteView:
    async with uow:
        await uow.session.execute(
            sa.insert(notes).values(id=note_id, text=body.text, amount=body.amount)
        )
        uow.add_event(
            common_pb2.Money(amount_minor=body.amount, currency="EUR"),
            key=note_id,
            topic=PROBE_TOPIC,
        )
        if fail:
            raise Conflict("asked to fail after writing")
        await uow.commit()
    return NoteView(id=note_id, text=body.text, amount=body.amount)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateNote(Command[NoteView], roles=(Role.OPS, Role.SERVICE), idempotent=True):
    text: str
    amount: int
    #: Seconds to wait inside the transaction, key claimed (to race a duplicate against it).
    slow: float = 0.0

    def idempotency_payload(self) -> dict[str, object]:
        return {"text": self.text, "amount": self.amount}  # a slow retry is the same request


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNote(Query[NoteView], roles=(Role.OPS,)):
    note_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyMoney(Command[None], roles=(Role.SERVICE,)):
    event_id: str
    key: str
    amount: int
    currency: str


@dataclass
class ProbeDeps:
    configured: set[str] = field(default_factory=set)
    handled: list[ApplyMoney] = field(default_factory=list)


ProbeCtx = Context[UnitOfWork, ProbeDeps]


@handler
async def create_note_handler(cmd: CreateNote, ctx: ProbeCtx) -> NoteView:
    if cmd.slow:
        async with ctx.uow:
            await asyncio.sleep(cmd.slow)
    return await create_note(ctx.uow, uuid.uuid4().hex, NoteIn(text=cmd.text, amount=cmd.amount))


@handler
async def get_note(query: GetNote, ctx: ProbeCtx) -> NoteView:
    async with ctx.uow as uow:
        row = (
            await uow.session.execute(sa.select(notes).where(notes.c.id == query.note_id))
        ).first()
    if row is None:
        raise NotFound(f"note {query.note_id} not found")
    return NoteView(id=row.id, text=row.text, amount=row.amount)


@handler
async def apply_money(cmd: ApplyMoney, ctx: ProbeCtx) -> None:
    if cmd.currency == "XXX":
        raise ValueError("poison: currency XXX is never accepted")
    if cmd.currency == "CFG" and "CFG" not in ctx.deps.configured:
        raise LookupError("currency CFG is not configured")
    async with ctx.uow as uow:
        await uow.session.execute(
            sa.insert(applied).values(event_id=cmd.event_id, key=cmd.key, amount=cmd.amount)
        )
    ctx.deps.handled.append(cmd)


def build_router(bus: MessageBus[UnitOfWork, ProbeDeps]) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/notes", status_code=201, response_model=NoteView)
    async def create_note_endpoint(
        body: NoteIn,
        key: RequiredIdempotencyKey,
        response: Response,
        caller: Annotated[Caller, allowed(CreateNote)],
        slow: float = 0.0,
    ) -> NoteView:
        cmd = CreateNote(text=body.text, amount=body.amount, slow=slow)
        return replayed(await bus.execute(cmd, caller, idempotency_key=key), response)

    @router.get("/notes/{note_id}", response_model=NoteView)
    async def get_note_endpoint(
        note_id: str, caller: Annotated[Caller, allowed(GetNote)]
    ) -> NoteView:
        return await bus.handle(GetNote(note_id=note_id), caller)

    return router


class ProbeServicer:
    """Raw generic handlers (no generated stub): bytes echo and a Money echo."""

    def __init__(self, bus: MessageBus[UnitOfWork, ProbeDeps]) -> None:
        self.bus = bus

    async def echo(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        authorize(Role.OPS)
        return request

    async def echo_money(
        self, request: common_pb2.Money, context: grpc.aio.ServicerContext
    ) -> common_pb2.Money:
        authorize(Role.OPS)
        return request


def add_probe_to_server(servicer: ProbeServicer, server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "ecomops.test.Probe",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(servicer.echo),
                    "EchoMoney": grpc.unary_unary_rpc_method_handler(
                        servicer.echo_money,
                        request_deserializer=common_pb2.Money.FromString,
                        response_serializer=common_pb2.Money.SerializeToString,
                    ),
                },
            ),
        )
    )


def _money(event: Envelope) -> ApplyMoney:
    message = event.message
    assert isinstance(message, common_pb2.Money)
    return ApplyMoney(
        event_id=event.event_id,
        key=event.key or "",
        amount=message.amount_minor,
        currency=message.currency,
    )


PROBE_SPEC: ServiceSpec[ProbeSettings, ProbeDeps] = ServiceSpec(
    name="probe",
    title="probe",
    description="platform test service",
    settings=ProbeSettings,
    unit_of_work=UnitOfWork,
    dependencies=lambda service, settings: ProbeDeps(),
    handlers=handlers_in(sys.modules[__name__]),
    rest=[build_router],
    grpc=[GrpcService("ecomops.test.Probe", add_probe_to_server, ProbeServicer)],
    subscriptions=[
        Subscription([PROBE_TOPIC], lambda bus: {"ecomops.common.v1.Money": on_event(bus, _money)})
    ],
)


def build_probe_service(deps: ProbeDeps | None = None) -> Service:
    """The probe service from its spec; ``deps`` lets a test see and configure its state."""
    settings = ProbeSettings(database_url=probe_database_url())
    return PROBE_SPEC.create(settings, dependencies=deps or ProbeDeps())


@pytest.fixture(scope="session")
async def probe_db(stack_env: None) -> str:
    base = os.environ["ORDER_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    admin = await asyncpg.connect(base)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    engine = create_async_engine(probe_database_url())
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)
        await conn.run_sync(notes_metadata.create_all)
    await engine.dispose()
    from ecomops_platform.events import create_topics
    from ecomops_platform.settings import CommonSettings

    await create_topics(CommonSettings(), [PROBE_TOPIC, PROBE_TOPIC + ".dlq"])
    return probe_database_url()


@pytest.fixture
async def probe_service(probe_db: str) -> AsyncIterator[Service]:
    service = build_probe_service()
    async with service.running():
        yield service
