"""The blocklist: values (email, IP, device, payment fingerprint, customer) that reject."""

from __future__ import annotations

from dataclasses import dataclass

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..domain.models import BlocklistKind, normalise_blocklist_value
from .ports import Ctx
from .views import BlocklistEntryView, BlocklistPage

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutBlocklistEntry(Command[BlocklistEntryView], roles=OPS):
    """Blocklist a value (idempotent by kind and value; the reason is updated)."""

    kind: BlocklistKind
    value: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteBlocklistEntry(Command[None], roles=OPS):
    """Remove an entry (404 when not listed)."""

    kind: BlocklistKind
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListBlocklist(Query[BlocklistPage], roles=OPS):
    kind: BlocklistKind | None = None
    limit: int | None = None
    cursor: str | None = None


def _normalised(kind: BlocklistKind, value: str) -> str:
    normalised = normalise_blocklist_value(kind, value)
    if not normalised or len(normalised) > 300:
        raise Unprocessable("blocklist value must be 1..300 characters", code="invalid-value")
    return normalised


@handler
async def put_blocklist_entry(cmd: PutBlocklistEntry, ctx: Ctx) -> BlocklistEntryView:
    value = _normalised(cmd.kind, cmd.value)
    async with ctx.uow:
        entry = await ctx.uow.blocklist.put(
            cmd.kind, value, cmd.reason, ctx.caller.subject, ctx.deps.clock()
        )
        await ctx.uow.commit()
    return entry


@handler
async def delete_blocklist_entry(cmd: DeleteBlocklistEntry, ctx: Ctx) -> None:
    value = _normalised(cmd.kind, cmd.value)
    async with ctx.uow:
        removed = await ctx.uow.blocklist.delete(cmd.kind, value)
        await ctx.uow.commit()
    if not removed:
        raise NotFound(f"{cmd.kind.value} {value!r} is not blocklisted")


@handler
async def list_blocklist(query: ListBlocklist, ctx: Ctx) -> BlocklistPage:
    size = check_limit(query.limit)
    position = decode_cursor(query.cursor)
    after = (str(position["k"]), str(position["v"])) if position else None
    async with ctx.uow:
        entries = await ctx.uow.blocklist.list(query.kind, after, size + 1)
    more = len(entries) > size
    entries = entries[:size]
    next_cursor = encode_cursor({"k": entries[-1].kind, "v": entries[-1].value}) if more else None
    return BlocklistPage(tuple(entries), next_cursor)
