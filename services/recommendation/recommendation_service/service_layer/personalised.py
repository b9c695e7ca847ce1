"""From a customer's stored interactions to its personalised answer — the one implementation
that the handler (``GetCustomerRecommendations``) and the offline evaluation both run.

The handler loads the inputs from the unit of work (interactions, neighbour rows, catalogue
entries, trending) and the evaluation builds the same inputs from a CSV of orders and the
in-memory model; everything in between is here and in ``domain/personal.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ..domain.models import (
    BASKET,
    INTERACTION_WEIGHT,
    SESSION,
    InteractionKind,
    ModelParams,
    Neighbour,
    rank_neighbours,
)
from ..domain.personal import (
    Mode,
    PersonalParams,
    Purchase,
    RepeatStats,
    rank_for_customer,
    reason,
    repeat_profile,
    sources,
)
from .ports import CatalogEntry, Interaction
from .views import RecommendedItem

#: How far back a customer's interactions count for personalisation, and how many (newest
#: first) are read.
HISTORY = timedelta(days=365)
HISTORY_LIMIT = 1000
#: Strongest co-occurrences (by weight) read per history SKU before the Jaccard ranking.
PER_ITEM = 100
#: Neighbour kinds and how much each counts.
KINDS: tuple[tuple[str, float], ...] = ((BASKET, 1.0), (SESSION, 0.5))


def customer_inputs(
    rows: Iterable[Interaction], now: datetime, model: ModelParams
) -> tuple[list[Purchase], dict[str, float]]:
    """The customer's purchases (by order) and its decayed viewed/carted affinity."""
    purchases: list[Purchase] = []
    viewed: dict[str, float] = defaultdict(float)
    for row in rows:
        if row.kind is InteractionKind.PURCHASE:
            purchases.append(Purchase(row.order_id or row.event_id, row.sku, row.occurred_at))
        elif INTERACTION_WEIGHT[row.kind] > 0:
            age = max(0.0, (now - row.occurred_at).total_seconds())
            viewed[row.sku] += INTERACTION_WEIGHT[row.kind] * math.exp(-model.rate * age)
    return purchases, dict(viewed)


def merge_similar(
    skus: Sequence[str],
    counts: Mapping[tuple[str, str], float],
    neighbours: Mapping[tuple[str, str], Sequence[Neighbour]],
) -> dict[str, list[tuple[str, float]]]:
    """Per history SKU: its neighbours by Jaccard, basket and (half-weighted) session merged."""
    out: dict[str, list[tuple[str, float]]] = {}
    for sku in skus:
        merged: dict[str, float] = defaultdict(float)
        for kind, factor in KINDS:
            ranked = rank_neighbours(counts.get((kind, sku), 0.0), neighbours.get((kind, sku), ()))
            for cand, sim in ranked:
                merged[cand] += factor * sim
        out[sku] = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    return out


def plan(
    rows: Iterable[Interaction], now: datetime, model: ModelParams, params: PersonalParams
) -> tuple[list[RepeatStats], list[tuple[str, float, bool]]]:
    """The customer's repeat profile and the history SKUs whose neighbours are needed."""
    purchases, viewed = customer_inputs(rows, now, model)
    profile = repeat_profile(purchases, params)
    return profile, sources(profile, viewed, params)


def personal_items(
    profile: Sequence[RepeatStats],
    history: Sequence[tuple[str, float, bool]],
    similar: Mapping[str, Sequence[tuple[str, float]]],
    catalog: Mapping[str, CatalogEntry] | None,
    *,
    mode: Mode,
    exclude: set[str],
    limit: int,
    params: PersonalParams,
) -> list[RecommendedItem]:
    """The model's part of the answer (before any trending fallback), with reasons.
    ``catalog`` holds the entries of the customer's SKUs (titles, whether recommendable);
    None means everything is recommendable and titles are the SKUs (offline evaluation)."""
    eligible = None if catalog is None else {s: e.recommendable for s, e in catalog.items()}
    ranked = rank_for_customer(
        profile, history, similar, mode=mode, eligible=eligible, exclude=exclude, params=params
    )
    titles = {} if catalog is None else {s: e.title for s, e in catalog.items()}
    return [RecommendedItem(s.sku, round(s.score, 6), reason(s, titles)) for s in ranked[:limit]]


def fallback_score(items: Sequence[RecommendedItem]) -> float:
    """Fallback items rank below every model-based item already in the answer."""
    last = items[-1].score if items else 1.0
    return round(last * 0.9, 9)


def fill(
    items: list[RecommendedItem],
    candidates: Iterable[tuple[str, str]],
    *,
    limit: int,
    exclude: set[str],
) -> None:
    """Append (sku, reason) candidates not yet in the answer or excluded, up to ``limit``."""
    taken = {i.sku for i in items} | exclude
    for sku, why in candidates:
        if len(items) >= limit:
            return
        if sku in taken:
            continue
        items.append(RecommendedItem(sku, fallback_score(items), why))
        taken.add(sku)


def trending_reason(entry: CatalogEntry) -> str:
    return f"trending in {entry.category}" if entry.category else "trending now"
