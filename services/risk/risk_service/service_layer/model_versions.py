"""Trained model versions: list them, activate one (every replica follows), and the periodic
refresh with which each replica uses the version activated last. Training itself is offline
(``training.py``, ``ecomops risk train``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import NotFound

from ..domain.scoring import ModelManifest
from .ports import Ctx, ModelStore
from .views import ModelsView, ModelView

OPS = (Role.OPS,)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListModels(Query[ModelsView], roles=OPS):
    """Trained model versions in RISK_MODEL_DIR, newest first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivateModel(Command[ModelView], roles=OPS):
    """Verify (sha256, features) and activate a model version; 422 when refused."""

    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshModel(Command[None], roles=(Role.SERVICE,)):
    """Periodic, in every replica: use the version activated last (any replica may have)."""


def _view(manifest: ModelManifest, active: str | None) -> ModelView:
    return ModelView(
        version=manifest.version,
        algorithm=manifest.algorithm,
        features=tuple(manifest.features),
        metrics=dict(manifest.metrics),
        sha256=manifest.sha256,
        active=manifest.version == active,
        created_at=manifest.created_at,
    )


async def _views(models: ModelStore) -> tuple[ModelView, ...]:
    active = models.active_version
    manifests = await asyncio.to_thread(models.manifests)
    return tuple(_view(m, active) for m in manifests)


@handler
async def list_models(query: ListModels, ctx: Ctx) -> ModelsView:
    models = ctx.deps.models
    return ModelsView(items=await _views(models), fallback_reason=models.last_error)


@handler
async def activate_model(cmd: ActivateModel, ctx: Ctx) -> ModelView:
    models = ctx.deps.models
    manifest = await asyncio.to_thread(models.verify, cmd.version)
    async with ctx.uow:
        await ctx.uow.model_activations.activate(
            cmd.version, manifest.sha256, ctx.caller.subject, ctx.deps.clock()
        )
        await ctx.uow.commit()
    await asyncio.to_thread(models.use, cmd.version)
    for view in await _views(models):
        if view.version == cmd.version:
            return view
    raise NotFound(f"model {cmd.version} not found")  # pragma: no cover - listed just above


@handler
async def refresh_model(cmd: RefreshModel, ctx: Ctx) -> None:
    async with ctx.uow:
        wanted = await ctx.uow.model_activations.active()
    if wanted != ctx.deps.models.wanted:
        await asyncio.to_thread(ctx.deps.models.use, wanted)
