"""Serving recommendations: similar items, bought together, trending, personalised. Only SKUs
that may be recommended come back (known, active, in stock; never the SKU asked about)."""

from __future__ import annotations

from dataclasses import dataclass

from ecomops_platform.auth import Role
from ecomops_platform.bus import Query, handler

from ..domain.models import BASKET, SESSION, rank_neighbours, unscale
from ..domain.personal import Mode
from .personalised import (
    HISTORY,
    KINDS,
    PER_ITEM,
    fallback_score,
    fill,
    merge_similar,
    personal_items,
    plan,
    trending_reason,
)
from .ports import Ctx, RecommendationUnitOfWork
from .views import Recommendations, RecommendedItem

#: Any token may read item-based recommendations.
READERS = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSimilarItems(Query[Recommendations], roles=READERS):
    """Viewed together in sessions (Jaccard), then popular in the same category."""

    sku: str
    limit: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBoughtTogether(Query[Recommendations], roles=READERS):
    """Bought in the same paid orders (Jaccard on decayed basket counts)."""

    sku: str
    limit: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GetTrending(Query[Recommendations], roles=READERS):
    """Most viewed, carted and bought lately (time-decayed), overall or in a category."""

    category: str | None = None
    limit: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCustomerRecommendations(
    Query[Recommendations], roles=(Role.CUSTOMER, Role.OPS, Role.SERVICE)
):
    """Personalised for a customer (a customer: only itself; another id is not found):
    ``personal`` buys again and discovers, ``discover`` only what it never bought."""

    customer_id: str
    limit: int = 10
    mode: Mode = Mode.PERSONAL


async def neighbours_of(
    uow: RecommendationUnitOfWork, kind: str, sku: str
) -> list[tuple[str, float]]:
    """Recommendable neighbours of one SKU (never the SKU itself), best first."""
    counts, neigh = await uow.model.neighbours([kind], [sku], per_item=200)
    ranked = rank_neighbours(counts.get((kind, sku), 0.0), neigh.get((kind, sku), []))
    return [(s, score) for s, score in ranked if s != sku]


@handler
async def get_similar_items(query: GetSimilarItems, ctx: Ctx) -> Recommendations:
    if (hit := ctx.deps.read_cache.get(query)) is not None:
        return hit
    sku, limit = query.sku, query.limit
    async with ctx.uow:
        asked = (await ctx.uow.catalog.entries([sku])).get(sku)
        ranked = await neighbours_of(ctx.uow, SESSION, sku)
        title = asked.title if asked else sku
        items = [
            RecommendedItem(s, round(score, 6), f"often viewed with {title}") for s, score in ranked
        ][:limit]
        if len(items) < limit and asked is not None and asked.category:
            taken = {i.sku for i in items} | {sku}
            for entry, _weight in await ctx.uow.model.trending(
                categories=[asked.category], limit=limit - len(items), exclude=taken
            ):
                items.append(
                    RecommendedItem(
                        entry.sku,
                        fallback_score(items),
                        f"popular in {asked.category}, like {title}",
                    )
                )
    return ctx.deps.read_cache.put(query, Recommendations(tuple(items)))


@handler
async def get_bought_together(query: GetBoughtTogether, ctx: Ctx) -> Recommendations:
    if (hit := ctx.deps.read_cache.get(query)) is not None:
        return hit
    async with ctx.uow:
        asked = (await ctx.uow.catalog.entries([query.sku])).get(query.sku)
        ranked = await neighbours_of(ctx.uow, BASKET, query.sku)
    title = asked.title if asked else query.sku
    return ctx.deps.read_cache.put(
        query,
        Recommendations(
            tuple(
                RecommendedItem(s, round(score, 6), f"often bought with {title}")
                for s, score in ranked[: query.limit]
            )
        ),
    )


@handler
async def get_trending(query: GetTrending, ctx: Ctx) -> Recommendations:
    if (hit := ctx.deps.read_cache.get(query)) is not None:
        return hit
    now = ctx.deps.clock()
    async with ctx.uow:
        rows = await ctx.uow.model.trending(
            categories=[query.category] if query.category else None, limit=query.limit
        )
    return ctx.deps.read_cache.put(
        query,
        Recommendations(
            tuple(
                RecommendedItem(
                    entry.sku,
                    round(unscale(weight, ctx.deps.params.trending_rate, now), 6),
                    trending_reason(entry),
                )
                for entry, weight in rows
            )
        ),
    )


@handler
async def get_customer_recommendations(
    query: GetCustomerRecommendations, ctx: Ctx
) -> Recommendations:
    """Buy again (the customer's time-decayed purchase frequency) blended with item-to-item
    discovery (``personalised.py``); ``discover`` mode never returns what the customer bought.
    Cold start and short answers: trending in the customer's recent categories, then overall."""
    ctx.ensure_visible(query.customer_id, "customer", query.customer_id)
    if (hit := ctx.deps.read_cache.get(query)) is not None:
        return hit
    deps, customer_id, limit, mode = ctx.deps, query.customer_id, query.limit, query.mode
    now = deps.clock()
    async with ctx.uow:
        uow = ctx.uow
        rows = await uow.interactions.customer_history(customer_id, now - HISTORY)
        profile, history = plan(rows, now, deps.params, deps.personal)
        exclude = await uow.orders.purchased_skus(customer_id) if mode is Mode.DISCOVER else set()
        skus = [sku for sku, _w, _b in history]
        similar: dict[str, list[tuple[str, float]]] = {}
        for s in skus:
            if (cached := deps.neighbour_cache.get(s)) is not None:
                similar[s] = cached
        missing = [s for s in skus if s not in similar]
        if missing:
            counts, neigh = await uow.model.neighbours(
                [k for k, _ in KINDS], missing, per_item=PER_ITEM
            )
            for s, merged in merge_similar(missing, counts, neigh).items():
                similar[s] = deps.neighbour_cache.put(s, merged)
        known = await uow.catalog.entries(set(skus) | {r.sku for r in profile})
        items = personal_items(
            profile,
            history,
            similar,
            known,
            mode=mode,
            exclude=exclude,
            limit=limit,
            params=deps.personal,
        )
        if len(items) < limit:
            categories: list[str] = []
            for s in skus[:10]:
                entry = known.get(s)
                if entry is not None and entry.category and entry.category not in categories:
                    categories.append(entry.category)
            taken = {i.sku for i in items} | exclude
            if categories:
                rows_cat = await uow.model.trending(
                    categories=categories, limit=limit - len(items), exclude=taken
                )
                fill(
                    items,
                    ((e.sku, trending_reason(e)) for e, _w in rows_cat),
                    limit=limit,
                    exclude=exclude,
                )
            if len(items) < limit:
                rows_all = await uow.model.trending(
                    categories=None,
                    limit=limit - len(items),
                    exclude=taken | {i.sku for i in items},
                )
                fill(
                    items,
                    ((e.sku, trending_reason(e)) for e, _w in rows_all),
                    limit=limit,
                    exclude=exclude,
                )
    return deps.read_cache.put(query, Recommendations(tuple(items)))
