"""The model rebuild (``ecomops recommendation rebuild``): replay every stored interaction
through the in-memory model and swap the whole model in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler

from ..domain.models import (
    InMemoryModel,
    InteractionKind,
    ModelParams,
    basket_increments,
    popularity_increment,
)
from .ports import Ctx, Interaction, ModelWeights
from .views import RebuildStats


@dataclass(frozen=True, slots=True, kw_only=True)
class RebuildModel(Command[RebuildStats], roles=(Role.SERVICE,)):
    """Recompute the whole model from the stored interactions."""


def train_from_interactions(rows: Sequence[Interaction], params: ModelParams) -> InMemoryModel:
    """Replay stored interactions through the in-memory model (CPU-bound: run off the loop)."""
    model = InMemoryModel(params)
    baskets: dict[str, tuple[datetime, dict[str, int]]] = {}
    for row in rows:
        if row.kind is InteractionKind.PURCHASE:
            key = row.order_id or f"{row.actor}@{row.occurred_at.isoformat()}"
            _, lines = baskets.setdefault(key, (row.occurred_at, {}))
            lines[row.sku] = lines.get(row.sku, 0) + 1
        else:
            model.add_behavior(row.actor, row.sku, row.kind, row.occurred_at)
    for at, lines in baskets.values():
        model.apply(basket_increments(lines, at, params))
        for sku, quantity in lines.items():
            model.popularity[sku] += popularity_increment(
                sku, InteractionKind.PURCHASE, quantity, at, params
            )
    return model


def weights_of(model: InMemoryModel) -> ModelWeights:
    return ModelWeights(
        counts=dict(model.counts),
        pairs=[
            (kind, a, b, w)
            for kind, table in model.pairs.items()
            for a, row in table.items()
            for b, w in row.items()
        ],
        totals=dict(model.totals),
        popularity=dict(model.popularity),
    )


@handler
async def rebuild_model(cmd: RebuildModel, ctx: Ctx) -> RebuildStats:
    """One rebuild at a time (the second waits for the first, then rebuilds again)."""
    async with ctx.uow:
        await ctx.uow.model.lock_for_rebuild()
        rows = await ctx.uow.interactions.all()
        model = await asyncio.to_thread(train_from_interactions, rows, ctx.deps.params)
        weights = weights_of(model)
        await ctx.uow.model.replace(weights)
        await ctx.uow.commit()
    return RebuildStats(
        interactions=len(rows), pairs=len(weights.pairs), items=len(model.popularity)
    )
