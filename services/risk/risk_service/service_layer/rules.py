"""Rule sets: read the active one or any version, replace it (a new version), list versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..domain.rules import DEFAULT_RULE_SET, RuleSet, parse_rule_set
from .ports import Ctx
from .views import RuleSetPage, RuleSetView

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRules(Query[RuleSetView], roles=OPS):
    """The active rule set, or one version of it."""

    version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PutRules(Command[RuleSetView], roles=OPS):
    """Replace the rule set: a new version; 422 listing every error when invalid."""

    definition: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRuleVersions(Query[RuleSetPage], roles=OPS):
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureDefaultRules(Command[None], roles=(Role.SERVICE,)):
    """At start-up: version 1 is the default rule set unless one exists."""


async def active_rules(ctx: Ctx) -> RuleSet:
    """The newest rule set (inside an open unit of work); the default when there is none."""
    rules = await ctx.uow.rule_sets.get()
    if rules is None:
        await ctx.uow.rule_sets.ensure_default(DEFAULT_RULE_SET, ctx.deps.clock())
        rules = await ctx.uow.rule_sets.get()
    assert rules is not None
    return rules


@handler
async def get_rules(query: GetRules, ctx: Ctx) -> RuleSetView:
    async with ctx.uow:
        if query.version is None:
            rules = await active_rules(ctx)
            await ctx.uow.commit()
            return RuleSetView.of(rules)
        found = await ctx.uow.rule_sets.get(query.version)
    if found is None:
        raise NotFound(f"rule set version {query.version} not found")
    return RuleSetView.of(found)


@handler
async def put_rules(cmd: PutRules, ctx: Ctx) -> RuleSetView:
    by = ctx.caller.subject
    validated = parse_rule_set(cmd.definition, version=0, created_by=by)
    async with ctx.uow:
        now = ctx.deps.clock()
        version = await ctx.uow.rule_sets.add(validated.to_json(), by, now)
        await ctx.uow.commit()
    stored = parse_rule_set(validated.to_json(), version=version, created_by=by, created_at=now)
    return RuleSetView.of(stored)


@handler
async def list_rule_versions(query: ListRuleVersions, ctx: Ctx) -> RuleSetPage:
    size = check_limit(query.limit)
    position = decode_cursor(query.cursor)
    before = int(position["v"]) if position and "v" in position else None
    async with ctx.uow:
        items = await ctx.uow.rule_sets.list(before_version=before, limit=size + 1)
    more = len(items) > size
    items = items[:size]
    next_cursor = encode_cursor({"v": items[-1].version}) if more and items else None
    return RuleSetPage(tuple(RuleSetView.of(r) for r in items), next_cursor)


@handler
async def ensure_default_rules(cmd: EnsureDefaultRules, ctx: Ctx) -> None:
    async with ctx.uow:
        await ctx.uow.rule_sets.ensure_default(DEFAULT_RULE_SET, ctx.deps.clock())
        await ctx.uow.commit()
