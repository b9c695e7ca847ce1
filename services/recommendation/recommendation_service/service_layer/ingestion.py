"""Behaviour ingestion: storefront events (view, add to cart, remove from cart), validated as a
whole batch and published through the outbox, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass

from ecomops_platform.auth import Caller, Role
from ecomops_platform.bus import Command, handler
from ecomops_platform.errors import Unprocessable

from ..domain.models import BehaviorEvent, EntryError, validate_behavior
from . import events as pb
from .ports import Ctx
from .views import Accepted

INGEST_ROLES = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)

#: Who sends a REST batch without a token: an anonymous visitor, with a session id only. Its
#: Idempotency-Keys share one namespace ("anonymous").
ANONYMOUS = Caller(subject="anonymous", role=Role.CUSTOMER)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBehaviorEvents(Command[Accepted], roles=INGEST_ROLES):
    """Record a batch of behaviour events, all or nothing, without an Idempotency-Key (browser
    beacons cannot always send one)."""

    events: tuple[BehaviorEvent, ...]
    #: Sent without a token (the entrypoint sends it as :data:`ANONYMOUS`).
    anonymous: bool = False
    #: Problems the entrypoint found while decoding the entries (reported with the others).
    decode_errors: tuple[EntryError, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBehaviorEventsOnce(
    RecordBehaviorEvents, idempotent=True, operation="record_behavior_events"
):
    """The same batch with an Idempotency-Key: a retry is recorded once (replayed)."""


def invalid_entries(errors: list[EntryError]) -> Unprocessable:
    bad = sorted({e.index for e in errors})
    summary = "; ".join(f"events[{e.index}].{e.field}: {e.reason}" for e in errors[:10])
    return Unprocessable(
        f"{len(bad)} invalid event(s), nothing was recorded: {summary}",
        code="invalid-behavior-events",
        invalid_indexes=bad,
        errors=[
            {
                "index": e.index,
                "field": e.field,
                "location": ["body", "events", str(e.index), e.field],
                "message": e.reason,
            }
            for e in errors
        ],
    )


@handler
async def record_behavior_events(cmd: RecordBehaviorEvents, ctx: Ctx) -> Accepted:
    """Validate the whole batch, then publish every event through the outbox."""
    policy = ctx.deps.ingestion
    if not cmd.events:
        raise Unprocessable("a batch needs at least one event", code="empty-batch")
    if len(cmd.events) > policy.max_batch:
        raise Unprocessable(
            f"a batch holds at most {policy.max_batch} events (got {len(cmd.events)})",
            code="batch-too-large",
            max_batch=policy.max_batch,
        )
    now = ctx.deps.clock()
    customer = ctx.caller.subject if ctx.caller.is_customer and not cmd.anonymous else None
    errors = list(cmd.decode_errors)
    for index, event in enumerate(cmd.events):
        errors.extend(
            validate_behavior(
                index,
                event,
                caller_customer=customer,
                anonymous=cmd.anonymous,
                now=now,
                max_skew=policy.max_skew,
                max_age=policy.max_age,
            )
        )
    if errors:
        raise invalid_entries(sorted(errors, key=lambda e: (e.index, e.field)))
    async with ctx.uow:
        for event in cmd.events:
            ctx.uow.add_event(
                pb.behavior_recorded(event, now),
                key=event.customer_id or event.session_id or event.sku,
                topic=pb.BEHAVIOR_TOPIC,
            )
        await ctx.uow.commit()
    return Accepted(len(cmd.events))


@handler
async def record_behavior_events_once(cmd: RecordBehaviorEventsOnce, ctx: Ctx) -> Accepted:
    return await record_behavior_events(cmd, ctx)
