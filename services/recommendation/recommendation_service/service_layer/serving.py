"""Serving recommendations: similar items, bought together, trending, personalised. Only SKUs
that may be recommended come back (known, active, in stock; never the SKU asked about)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Query, handler

from ..domain.models import (
    BASKET,
    INTERACTION_WEIGHT,
    SESSION,
    HistoryItem,
    InteractionKind,
    personalise,
    rank_neighbours,
    unscale,
)
from .ports import Ctx, RecommendationUnitOfWork
from .views import Recommendations, RecommendedItem

#: Any token may read item-based recommendations.
READERS = (Role.CUSTOMER, Role.OPS, Role.PARTNER, Role.SERVICE)
#: How far back a customer's interactions count for personalisation.
HISTORY = timedelta(days=180)


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
    """Personalised for a customer (a customer: only itself; another id is not found)."""

    customer_id: str
    limit: int = 10


def fallback_score(items: list[RecommendedItem]) -> float:
    """Fallback items rank below every model-based item already in the answer."""
    last = items[-1].score if items else 1.0
    return round(last * 0.9, 9)


async def neighbours_of(
    uow: RecommendationUnitOfWork, kind: str, sku: str
) -> list[tuple[str, float]]:
    """Recommendable neighbours of one SKU (never the SKU itself), best first."""
    counts, neigh = await uow.model.neighbours([kind], [sku], per_item=200)
    ranked = rank_neighbours(counts.get((kind, sku), 0.0), neigh.get((kind, sku), []))
    return [(s, score) for s, score in ranked if s != sku]


@handler
async def get_similar_items(query: GetSimilarItems, ctx: Ctx) -> Recommendations:
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
    return Recommendations(tuple(items))


@handler
async def get_bought_together(query: GetBoughtTogether, ctx: Ctx) -> Recommendations:
    async with ctx.uow:
        asked = (await ctx.uow.catalog.entries([query.sku])).get(query.sku)
        ranked = await neighbours_of(ctx.uow, BASKET, query.sku)
    title = asked.title if asked else query.sku
    return Recommendations(
        tuple(
            RecommendedItem(s, round(score, 6), f"often bought with {title}")
            for s, score in ranked[: query.limit]
        )
    )


@handler
async def get_trending(query: GetTrending, ctx: Ctx) -> Recommendations:
    now = ctx.deps.clock()
    async with ctx.uow:
        rows = await ctx.uow.model.trending(
            categories=[query.category] if query.category else None, limit=query.limit
        )
    return Recommendations(
        tuple(
            RecommendedItem(
                entry.sku,
                round(unscale(weight, ctx.deps.params.trending_rate, now), 6),
                f"trending in {entry.category}" if entry.category else "trending now",
            )
            for entry, weight in rows
        )
    )


@handler
async def get_customer_recommendations(
    query: GetCustomerRecommendations, ctx: Ctx
) -> Recommendations:
    """SAR: affinity to what the customer viewed, carted and bought, times item similarity;
    cold start: trending in the customer's recent categories, then overall."""
    ctx.ensure_visible(query.customer_id, "customer", query.customer_id)
    params = ctx.deps.params
    customer_id, limit = query.customer_id, query.limit
    now = ctx.deps.clock()
    async with ctx.uow:
        uow = ctx.uow
        rows = await uow.interactions.customer_history(customer_id, now - HISTORY)
        affinity: dict[str, float] = defaultdict(float)
        purchased_recent: set[str] = set()
        for row in rows:
            decay = math.exp(-params.rate * max(0.0, (now - row.occurred_at).total_seconds()))
            affinity[row.sku] += INTERACTION_WEIGHT[row.kind] * max(1, row.quantity) * decay
            if row.kind is InteractionKind.PURCHASE:
                purchased_recent.add(row.sku)
        history = [
            HistoryItem(sku, w, sku in purchased_recent)
            for sku, w in sorted(affinity.items(), key=lambda kv: -kv[1])[:20]
            if w > 0
        ]
        exclude = (
            await uow.orders.purchased_skus(customer_id) if ctx.deps.exclude_purchased else set()
        )
        skus = [h.sku for h in history]
        similar: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        counts, neigh = await uow.model.neighbours([BASKET, SESSION], skus, per_item=100)
        for kind, factor in ((BASKET, 1.0), (SESSION, 0.5)):
            for s in skus:
                ranked_kind = rank_neighbours(counts.get((kind, s), 0.0), neigh.get((kind, s), []))
                for cand, sim in ranked_kind:
                    similar[s][cand] += factor * sim
        ranked = personalise(
            history,
            {s: sorted(c.items(), key=lambda kv: -kv[1]) for s, c in similar.items()},
            exclude=exclude,
        )
        known = await uow.catalog.entries(skus)
        by_sku = {h.sku: h for h in history}
        items: list[RecommendedItem] = []
        for sku, score, source in ranked:
            if sku in {i.sku for i in items}:
                continue
            src_title = known[source].title if source in known else source
            reason = (
                f"goes well with {src_title}, which you bought"
                if by_sku[source].purchased
                else f"similar to {src_title}, which you viewed"
            )
            items.append(RecommendedItem(sku, round(score, 6), reason))
            if len(items) >= limit:
                break
        if len(items) < limit:
            categories: list[str] = []
            for s in skus[:10]:
                entry = known.get(s)
                if entry is not None and entry.category and entry.category not in categories:
                    categories.append(entry.category)
            taken = {i.sku for i in items} | exclude
            if categories:
                for entry, _weight in await uow.model.trending(
                    categories=categories, limit=limit - len(items), exclude=taken
                ):
                    items.append(
                        RecommendedItem(
                            entry.sku, fallback_score(items), f"trending in {entry.category}"
                        )
                    )
                    taken.add(entry.sku)
            if len(items) < limit:
                for entry, _weight in await uow.model.trending(
                    categories=None, limit=limit - len(items), exclude=taken
                ):
                    items.append(
                        RecommendedItem(
                            entry.sku,
                            fallback_score(items),
                            f"trending in {entry.category}" if entry.category else "trending now",
                        )
                    )
    return Recommendations(tuple(items))
