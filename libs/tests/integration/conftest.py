"""A small service built on the platform, for testing the platform against the real stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import grpc
import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import create_async_engine

from ecomops.common.v1 import common_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.db import UnitOfWork, platform_metadata
from ecomops_platform.errors import Conflict, NotFound
from ecomops_platform.events import Envelope
from ecomops_platform.grpc_server import authorize
from ecomops_platform.idempotency import run_idempotent
from ecomops_platform.rest import IdempotencyKey, RequestModel, require, stored_json
from ecomops_platform.runtime import Service
from ecomops_platform.settings import ServiceSettings

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


async def create_note(
    uow: UnitOfWork, note_id: str, body: NoteIn, fail: bool = False
) -> dict[str, Any]:
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
    return {"id": note_id, "text": body.text, "amount": body.amount}


def build_probe_service(handled: list[Envelope] | None = None) -> Service:
    settings = ProbeSettings(database_url=probe_database_url())
    service = Service(
        name="probe",
        settings=settings,
        title="probe",
        description="platform test service",
        grpc_service_names=["ecomops.test.Probe"],
    )
    router = APIRouter(prefix="/v1")

    @router.post("/notes", status_code=201)
    async def create_note_endpoint(
        body: NoteIn,
        key: IdempotencyKey,
        caller: Annotated[Caller, require(Role.OPS, Role.SERVICE)],
        slow: float = 0.0,
    ) -> Any:
        import asyncio

        uow = service.uow()

        async def action() -> tuple[int, Any]:
            if slow:
                await asyncio.sleep(slow)
            return 201, await create_note(uow, uuid.uuid4().hex, body)

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="create_note",
            key=key,
            payload=body.model_dump(),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get("/notes/{note_id}")
    async def get_note(
        note_id: str, caller: Annotated[Caller, require(Role.OPS)]
    ) -> dict[str, Any]:
        async with service.uow() as uow:
            row = (await uow.session.execute(sa.select(notes).where(notes.c.id == note_id))).first()
        if row is None:
            raise NotFound(f"note {note_id} not found")
        return {"id": row.id, "text": row.text, "amount": row.amount}

    service.include_router(router)

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        authorize(Role.OPS)
        return request

    async def echo_money(
        request: common_pb2.Money, context: grpc.aio.ServicerContext
    ) -> common_pb2.Money:
        authorize(Role.OPS)
        return request

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "ecomops.test.Probe",
                    {
                        "Echo": grpc.unary_unary_rpc_method_handler(echo),
                        "EchoMoney": grpc.unary_unary_rpc_method_handler(
                            echo_money,
                            request_deserializer=common_pb2.Money.FromString,
                            response_serializer=common_pb2.Money.SerializeToString,
                        ),
                    },
                ),
            )
        )

    service.add_grpc(register)

    async def on_money(uow: UnitOfWork, envelope: Envelope) -> None:
        message = envelope.message
        assert isinstance(message, common_pb2.Money)
        if message.currency == "XXX":
            raise ValueError("poison: currency XXX is never accepted")
        if message.currency == "CFG" and "CFG" not in service.state.get("configured", ()):
            raise LookupError("currency CFG is not configured")
        await uow.session.execute(
            sa.insert(applied).values(
                event_id=envelope.event_id, key=envelope.key or "", amount=message.amount_minor
            )
        )
        if handled is not None:
            handled.append(envelope)

    service.subscribe([PROBE_TOPIC], {"ecomops.common.v1.Money": on_money})
    return service


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
