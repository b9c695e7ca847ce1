"""Personalised recommendations: buy again, blended with item-to-item discovery.

In the spirit of TIFU-KNN (Hu et al., SIGIR 2020): a customer is a *time-decayed vector* over
the SKUs it bought — each of its orders counts ``order_decay`` times as much as the next one, so
the vector is a recency-weighted purchase frequency in [0, 1] — and the vector is smoothed by
*neighbours*: here the item-to-item co-occurrence the service already keeps (a SKU often bought
with what the customer buys gains ``neighbour_weight`` × similarity × the customer's weight of
that item). Items the customer buys come back ("buy again"); items it never bought come from the
neighbours ("discovery"). ``discover`` mode keeps excluding everything the customer bought.

Pure Python: the service's handler and the offline evaluation call the same functions with the
same inputs (the customer's purchases, its viewed/carted affinity, the neighbour lists), so
``ecomops recommendation evaluate --output`` writes what the API answers.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

SECONDS_PER_DAY = 86400.0


class Mode(enum.StrEnum):
    #: Buy again, blended with discovery (the default).
    PERSONAL = "personal"
    #: Only items the customer never bought (pages that want novelty).
    DISCOVER = "discover"


@dataclass(frozen=True, slots=True)
class PersonalParams:
    """Chosen on validation splits carved from the training orders of two public grocery sets,
    the Instacart sample and The Complete Journey (`ecomops recommendation evaluate --tune`
    on each; the pair above both baselines with the best mean NDCG gain, docs/decisions.md
    "Recommendations")."""

    #: Weight of each older order relative to the next (1.0: plain frequency).
    order_decay: float = 0.95
    #: Share of the plain purchase frequency (orders holding the SKU / orders considered) in
    #: a bought SKU's weight, the rest being the recency-weighted share: a floor that keeps
    #: long-interval staples above recent one-offs (0: recency only; 1: frequency only).
    frequency_weight: float = 0.0
    #: Weight of the item-to-item part against the customer's own vector (personal mode; kept
    #: above 0 so that default answers always discover something; discover mode ignores it).
    neighbour_weight: float = 0.02
    #: Weight of viewed / carted affinity (normalised to [0, 1]) in the neighbour part.
    view_weight: float = 0.5
    #: Most recent orders of the customer taken into account.
    max_orders: int = 100
    #: History items whose neighbours are looked up (the strongest first).
    max_sources: int = 20


@dataclass(frozen=True, slots=True)
class Purchase:
    """One SKU of one paid order of the customer."""

    order_id: str
    sku: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RepeatStats:
    sku: str
    weight: float  # recency-weighted share of the customer's orders that hold it, 0..1
    orders: int  # how many of the customer's orders hold it
    first: datetime
    last: datetime

    @property
    def interval_days(self) -> float | None:
        """Mean days between two orders holding the SKU (None when bought once)."""
        if self.orders < 2:
            return None
        return (self.last - self.first).total_seconds() / SECONDS_PER_DAY / (self.orders - 1)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One ranked SKU and what produced it (the reason is rendered from this)."""

    sku: str
    score: float
    repeat: RepeatStats | None  # the customer bought it: buy again
    source: str | None  # otherwise: the history SKU that contributed most
    source_bought: bool


def repeat_profile(purchases: Iterable[Purchase], params: PersonalParams) -> list[RepeatStats]:
    """The customer's time-decayed vector: for each SKU, Σ decay^age over the orders holding it,
    divided by Σ decay^age over all orders (age 0 = the latest order), blended with the plain
    share of the orders holding it (``frequency_weight``)."""
    orders: dict[str, tuple[datetime, set[str]]] = {}
    for p in purchases:
        at, skus = orders.get(p.order_id, (p.at, set()))
        skus.add(p.sku)
        orders[p.order_id] = (min(at, p.at), skus)
    ranked = sorted(orders.items(), key=lambda kv: (kv[1][0], kv[0]), reverse=True)
    ranked = ranked[: params.max_orders]
    weight: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    total, w = 0.0, 1.0
    for _order_id, (at, skus) in ranked:
        total += w
        for sku in skus:
            weight[sku] += w
            count[sku] += 1
            first[sku] = at  # walking backwards: the last assignment is the earliest
            last.setdefault(sku, at)
        w *= params.order_decay
    if total <= 0:
        return []
    f = params.frequency_weight
    stats = [
        RepeatStats(
            s, (1 - f) * weight[s] / total + f * count[s] / len(ranked), count[s], first[s], last[s]
        )
        for s in weight
    ]
    stats.sort(key=lambda r: (-r.weight, -r.last.timestamp(), r.sku))
    return stats


def sources(
    profile: Sequence[RepeatStats], viewed: Mapping[str, float], params: PersonalParams
) -> list[tuple[str, float, bool]]:
    """History SKUs whose neighbours are looked up: (sku, weight, bought), strongest first.
    ``viewed`` is the customer's viewed/carted affinity (any positive scale; normalised here)."""
    weights: dict[str, tuple[float, bool]] = {r.sku: (r.weight, True) for r in profile}
    top = max(viewed.values(), default=0.0)
    if top > 0:
        for sku, a in viewed.items():
            w = params.view_weight * a / top
            bought_w = weights.get(sku, (0.0, False))
            if w > bought_w[0]:
                weights[sku] = (w, bought_w[1])
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1][0], kv[0]))[: params.max_sources]
    return [(sku, w, bought) for sku, (w, bought) in ranked if w > 0]


def rank_for_customer(
    profile: Sequence[RepeatStats],
    history: Sequence[tuple[str, float, bool]],
    similar: Mapping[str, Sequence[tuple[str, float]]],
    *,
    mode: Mode,
    eligible: Mapping[str, bool] | None,
    exclude: set[str],
    params: PersonalParams,
) -> list[Suggestion]:
    """Best first. ``history`` comes from :func:`sources`; ``similar`` maps each history SKU
    to its recommendable neighbours with their similarity; ``eligible`` says which of the
    customer's own SKUs may be recommended (None: all); ``exclude`` is never recommended
    (in ``discover`` mode: everything the customer ever bought)."""
    scores: dict[str, float] = defaultdict(float)
    best: dict[str, tuple[float, str, bool]] = {}
    own = {r.sku: r for r in profile}
    if mode is Mode.PERSONAL:
        for r in profile:
            if r.sku in exclude or (eligible is not None and not eligible.get(r.sku, False)):
                continue
            scores[r.sku] += r.weight
    for src, w, bought in history:
        for cand, sim in similar.get(src, ()):
            if cand == src or cand in exclude:
                continue
            if cand in own and (mode is Mode.DISCOVER or cand not in scores):
                continue  # bought but not recommendable now (or discover mode)
            # In discover mode nothing of the customer's own competes: the plain sum ranks.
            factor = params.neighbour_weight if mode is Mode.PERSONAL else 1.0
            contribution = factor * w * sim
            if contribution <= 0:
                continue
            scores[cand] += contribution
            if cand not in best or contribution > best[cand][0]:
                best[cand] = (contribution, src, bought)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    out: list[Suggestion] = []
    for sku, score in ranked:
        if score <= 0:
            continue
        if sku in own and mode is Mode.PERSONAL:
            out.append(Suggestion(sku, score, own[sku], None, True))
        else:
            _c, src, bought = best[sku]
            out.append(Suggestion(sku, score, None, src, bought))
    return out


def every(days: float) -> str:
    """'about every 2 weeks' for a mean interval in days."""
    if days < 1.5:
        return "about every day"
    if days < 10.5:
        return f"about every {round(days)} days"
    if days < 52.5:
        weeks = round(days / 7)
        return f"about every {weeks} weeks"
    months = round(days / 30.4)
    return f"about every {months} months" if months > 1 else "about every month"


def reason(s: Suggestion, titles: Mapping[str, str]) -> str:
    """A person-readable reason for one suggestion."""
    if s.repeat is not None:
        interval = s.repeat.interval_days
        if interval is None:
            return "you bought this before"
        if interval < 0.5:
            return f"you bought this {s.repeat.orders} times"
        return f"you buy this {every(interval)}"
    title = titles.get(s.source or "", s.source or "")
    if s.source_bought:
        return f"goes well with {title}, which you buy"
    return f"similar to {title}, which you viewed"
