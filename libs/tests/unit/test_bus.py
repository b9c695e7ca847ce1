"""The message bus on the in-memory unit of work: roles, ownership, idempotency, refusals."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import (
    ANY_ROLE,
    Command,
    Context,
    MessageBus,
    Query,
    Refused,
    StoredRefusal,
    handler,
    handlers_in,
)
from ecomops_platform.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from ecomops_testing.fakes import FakeUnitOfWork


@dataclass(frozen=True, slots=True)
class Note:
    note_id: str
    owner: str
    text: str


class NotesUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.notes: dict[str, Note] = {}
        super().__init__()

    def snapshot(self) -> Any:
        return (super().snapshot(), dict(self.notes))

    def restore(self, state: Any) -> None:
        base, notes = state
        super().restore(base)
        self.notes = notes


Ctx = Context[NotesUnitOfWork, None]


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteNote(Command[Note], roles=(Role.CUSTOMER, Role.OPS), idempotent=True, owned_by="owner"):
    note_id: str
    owner: str | None = None
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadNote(Query[Note], roles=ANY_ROLE):
    note_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Shred(Command[None], roles=(Role.OPS,)):
    note_id: str


@handler
async def write_note(cmd: WriteNote, ctx: Ctx) -> Note:
    async with ctx.uow:
        assert cmd.owner is not None
        note = Note(cmd.note_id, cmd.owner, cmd.text)
        ctx.uow.notes[note.note_id] = note
        if cmd.text == "rude":
            # refused, but the note stays (kept for moderation): the refusal is stored
            raise Refused(Conflict("rude notes are held for moderation", code="held"))
        await ctx.uow.commit()
        return note


@handler
async def read_note(query: ReadNote, ctx: Ctx) -> Note:
    note = ctx.uow.notes.get(query.note_id)
    if note is None:
        raise NotFound(f"note {query.note_id} not found")
    ctx.ensure_visible(note.owner, "note", note.note_id)
    return note


@handler
async def shred(cmd: Shred, ctx: Ctx) -> None:
    async with ctx.uow:
        ctx.uow.notes.pop(cmd.note_id, None)
        await ctx.uow.commit()


ALICE = Caller("alice", Role.CUSTOMER)
BOB = Caller("bob", Role.CUSTOMER)
OPS = Caller("ops-1", Role.OPS)


@pytest.fixture
def uow() -> NotesUnitOfWork:
    return NotesUnitOfWork()


@pytest.fixture
def bus(uow: NotesUnitOfWork) -> MessageBus[NotesUnitOfWork, None]:
    return MessageBus(
        service="notes", uow=lambda: uow, deps=None, handlers=handlers_in(sys.modules[__name__])
    )


async def test_a_command_runs_once_per_key_and_is_replayed(bus: Any, uow: NotesUnitOfWork) -> None:
    first = await bus.execute(WriteNote(note_id="n1", text="hi"), ALICE, idempotency_key="k1")
    again = await bus.execute(WriteNote(note_id="n1", text="hi"), ALICE, idempotency_key="k1")
    assert first.result == Note("n1", "alice", "hi") and not first.replayed
    assert again.result == first.result and again.replayed
    assert uow.commits == 1


async def test_same_key_another_body_is_refused(bus: Any) -> None:
    await bus.handle(WriteNote(note_id="n1", text="hi"), ALICE, idempotency_key="k1")
    with pytest.raises(Unprocessable) as err:
        await bus.handle(WriteNote(note_id="n1", text="bye"), ALICE, idempotency_key="k1")
    assert err.value.code == "idempotency-key-reused"


async def test_an_idempotent_command_needs_a_key(bus: Any) -> None:
    with pytest.raises(BadRequest) as err:
        await bus.handle(WriteNote(note_id="n1", text="hi"), ALICE)
    assert err.value.code == "idempotency-key-missing"


async def test_roles_declared_on_the_message_are_enforced(bus: Any) -> None:
    with pytest.raises(Forbidden):
        await bus.handle(Shred(note_id="n1"), ALICE)
    with pytest.raises(Forbidden):
        await bus.handle(
            WriteNote(note_id="n1", text="hi"), Caller("p", Role.PARTNER), idempotency_key="k"
        )


async def test_customers_act_for_themselves_only(bus: Any, uow: NotesUnitOfWork) -> None:
    with pytest.raises(Forbidden):
        await bus.handle(
            WriteNote(note_id="n1", owner="bob", text="hi"), ALICE, idempotency_key="k1"
        )
    assert uow.notes == {}
    # staff name the owner
    note = await bus.handle(
        WriteNote(note_id="n2", owner="bob", text="hi"), OPS, idempotency_key="k2"
    )
    assert note.owner == "bob"


async def test_what_a_customer_does_not_own_is_not_found(bus: Any) -> None:
    await bus.handle(WriteNote(note_id="n1", text="hi"), ALICE, idempotency_key="k1")
    assert (await bus.handle(ReadNote(note_id="n1"), OPS)).owner == "alice"
    with pytest.raises(NotFound):
        await bus.handle(ReadNote(note_id="n1"), BOB)


async def test_a_refusal_keeps_its_effects_and_is_replayed(bus: Any, uow: NotesUnitOfWork) -> None:
    with pytest.raises(Conflict) as first:
        await bus.handle(WriteNote(note_id="n1", text="rude"), ALICE, idempotency_key="k1")
    assert "n1" in uow.notes  # kept
    with pytest.raises(StoredRefusal) as again:
        await bus.handle(WriteNote(note_id="n1", text="rude"), ALICE, idempotency_key="k1")
    assert again.value.status == 409
    assert again.value.problem() == first.value.problem()
    assert again.value.headers["Idempotent-Replayed"] == "true"


async def test_a_failing_handler_leaves_nothing(bus: Any, uow: NotesUnitOfWork) -> None:
    async def boom(cmd: WriteNote, ctx: Ctx) -> Note:
        async with ctx.uow:
            ctx.uow.notes["n1"] = Note("n1", "alice", "x")
            raise RuntimeError("crash before commit")

    bus._routes[WriteNote] = type(bus._routes[WriteNote])(boom, bus._routes[WriteNote].result)
    with pytest.raises(RuntimeError):
        await bus.handle(WriteNote(note_id="n1", text="x"), ALICE, idempotency_key="k1")
    assert uow.notes == {} and uow.idempotency.rows == {}


def test_a_message_without_roles_cannot_be_registered() -> None:
    @dataclass(frozen=True)
    class Anything(Query[None]):
        pass

    async def handle_anything(query: Anything, ctx: Ctx) -> None:
        return None

    handle_anything.__annotations__ = {"query": Anything, "ctx": Ctx, "return": None}
    with pytest.raises(TypeError, match="declares no roles"):
        MessageBus(service="x", uow=NotesUnitOfWork, deps=None, handlers=[handle_anything])


@dataclass(frozen=True, slots=True, kw_only=True)
class Stamp(Command[str], roles=(Role.CUSTOMER,), idempotent=True):
    note_id: str

    def idempotency_operation(self) -> str:
        return f"stamp:{self.note_id}"


@handler
async def stamp(cmd: Stamp, ctx: Ctx) -> str:
    async with ctx.uow:
        await ctx.uow.commit()
        return f"{cmd.note_id}:{ctx.idempotency_key}"


async def test_keys_may_be_scoped_per_resource_and_reach_the_handler(bus: Any) -> None:
    first = await bus.execute(Stamp(note_id="n1"), ALICE, idempotency_key="k")
    other = await bus.execute(Stamp(note_id="n2"), ALICE, idempotency_key="k")
    again = await bus.execute(Stamp(note_id="n1"), ALICE, idempotency_key="k")
    assert (first.result, other.result) == ("n1:k", "n2:k")
    assert not other.replayed and again.replayed and again.result == "n1:k"


def test_an_operation_name_survives_slotted_dataclasses() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class RenamedNote(Command[None], roles=(Role.OPS,), idempotent=True, operation="write_note"):
        text: str

    @dataclass(frozen=True, slots=True, kw_only=True)
    class OnceMore(RenamedNote):
        pass

    assert RenamedNote.operation == "write_note"
    assert OnceMore.operation == "once_more"
    assert WriteNote.operation == "write_note"
