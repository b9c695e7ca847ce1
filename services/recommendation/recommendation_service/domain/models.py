"""The recommendation domain, pure Python: behaviour, the co-occurrence model, RFM segments.

The model is item-to-item co-occurrence (SAR / Amazon item-to-item) with exponential time
decay. Weights are stored *scaled*: an observation at time ``t`` adds ``exp(lambda * (t - T0))``
instead of 1, so that the decayed weight at any later time ``now`` is
``stored * exp(-lambda * (now - T0))``. Adding is therefore commutative (events may arrive in any
order, a rebuild gives the same numbers as the incremental updates), and ratios such as Jaccard
do not depend on ``now`` at all.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

#: Reference time of the scaled weights (with a 30-day half-life doubles last ~80 years).
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

#: Kinds of co-occurrence kept by the model.
SESSION = "session"  # viewed / carted by the same visitor within the session window
BASKET = "basket"  # bought in the same paid order


class BehaviorType(enum.StrEnum):
    VIEW = "view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"


class InteractionKind(enum.StrEnum):
    VIEW = "view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"


#: How much an interaction says about a visitor's taste (personalisation and trending).
INTERACTION_WEIGHT: Mapping[InteractionKind, float] = {
    InteractionKind.VIEW: 1.0,
    InteractionKind.ADD_TO_CART: 3.0,
    InteractionKind.REMOVE_FROM_CART: 0.0,
    InteractionKind.PURCHASE: 5.0,
}


def decay_rate(half_life: timedelta) -> float:
    """lambda per second for a half-life."""
    return math.log(2) / half_life.total_seconds()


def scaled(t: datetime, rate: float, amount: float = 1.0) -> float:
    """The stored (scaled) weight of ``amount`` observed at ``t``."""
    return amount * math.exp(rate * (t - EPOCH).total_seconds())


def unscale(stored: float, rate: float, now: datetime) -> float:
    """The decayed weight at ``now`` of a stored (scaled) weight."""
    return stored * math.exp(-rate * (now - EPOCH).total_seconds())


# --- behaviour validation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BehaviorEvent:
    type: BehaviorType
    sku: str
    customer_id: str | None
    session_id: str | None
    occurred_at: datetime

    @property
    def actor(self) -> str:
        """Whose session this is: the customer when known, else the anonymous session."""
        return f"c:{self.customer_id}" if self.customer_id else f"s:{self.session_id}"


@dataclass(frozen=True, slots=True)
class EntryError:
    index: int
    field: str
    reason: str


MAX_ID_LENGTH = 128


def validate_behavior(
    index: int,
    event: BehaviorEvent,
    *,
    caller_customer: str | None,
    anonymous: bool,
    now: datetime,
    max_skew: timedelta,
    max_age: timedelta,
) -> list[EntryError]:
    """Everything wrong with one entry of a batch (empty when it may be recorded).

    ``caller_customer`` is the customer id of a customer token (events may only be for itself);
    anonymous callers must not claim a customer id and must give a session id.
    """
    errors: list[EntryError] = []
    if not event.sku or len(event.sku) > MAX_ID_LENGTH:
        errors.append(EntryError(index, "sku", f"sku must be 1..{MAX_ID_LENGTH} characters"))
    if event.customer_id is not None and (
        not event.customer_id or len(event.customer_id) > MAX_ID_LENGTH
    ):
        errors.append(
            EntryError(index, "customer_id", f"customer_id must be 1..{MAX_ID_LENGTH} characters")
        )
    if event.session_id is not None and (
        not event.session_id or len(event.session_id) > MAX_ID_LENGTH
    ):
        errors.append(
            EntryError(index, "session_id", f"session_id must be 1..{MAX_ID_LENGTH} characters")
        )
    if not event.customer_id and not event.session_id:
        errors.append(
            EntryError(index, "session_id", "an event needs a customer_id or a session_id")
        )
    if anonymous and event.customer_id:
        errors.append(
            EntryError(
                index, "customer_id", "anonymous callers may not claim a customer_id; sign in"
            )
        )
    if caller_customer is not None and event.customer_id and event.customer_id != caller_customer:
        errors.append(
            EntryError(index, "customer_id", "a customer may only record events for itself")
        )
    if event.occurred_at.tzinfo is None:
        errors.append(EntryError(index, "occurred_at", "occurred_at needs a time zone offset"))
    else:
        if event.occurred_at > now + max_skew:
            errors.append(EntryError(index, "occurred_at", "occurred_at is in the future"))
        if event.occurred_at < now - max_age:
            errors.append(
                EntryError(
                    index,
                    "occurred_at",
                    f"occurred_at is older than {int(max_age.total_seconds() // 86400)} days",
                )
            )
    return errors


# --- the co-occurrence model ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelParams:
    """How the model learns; the service's settings and the evaluation command share it."""

    half_life: timedelta = timedelta(days=30)
    trending_half_life: timedelta = timedelta(days=2)
    session_window: timedelta = timedelta(hours=24)
    max_session_items: int = 30
    max_basket_items: int = 50

    @property
    def rate(self) -> float:
        return decay_rate(self.half_life)

    @property
    def trending_rate(self) -> float:
        return decay_rate(self.trending_half_life)


@dataclass(frozen=True, slots=True)
class Increments:
    """What one observation adds to the model (scaled weights)."""

    counts: dict[tuple[str, str], float] = field(default_factory=dict)  # (kind, sku)
    pairs: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (kind, a, b)
    totals: dict[str, float] = field(default_factory=dict)  # kind -> transactions
    popularity: dict[str, float] = field(default_factory=dict)  # sku -> trending weight


def basket_increments(skus: Iterable[str], at: datetime, params: ModelParams) -> Increments:
    """A paid basket: every distinct pair co-occurs once (both directions)."""
    items = sorted(set(skus))[: params.max_basket_items]
    w = scaled(at, params.rate)
    inc = Increments()
    if not items:
        return inc
    inc.totals[BASKET] = w
    for a in items:
        inc.counts[(BASKET, a)] = w
        for b in items:
            if a != b:
                inc.pairs[(BASKET, a, b)] = w
    return inc


def session_increments(
    sku: str, recent: Sequence[str], at: datetime, params: ModelParams
) -> Increments:
    """A visitor interacts with ``sku`` for the first time in its session window; ``recent``
    are the other distinct SKUs of that window (most recent first). A repeated view of the same
    SKU in the window adds nothing to the co-occurrence (callers check that)."""
    others = [s for s in dict.fromkeys(recent) if s != sku][: params.max_session_items]
    w = scaled(at, params.rate)
    inc = Increments()
    inc.counts[(SESSION, sku)] = w
    inc.totals[SESSION] = w
    for other in others:
        inc.pairs[(SESSION, sku, other)] = w
        inc.pairs[(SESSION, other, sku)] = w
    return inc


def popularity_increment(
    sku: str, kind: InteractionKind, quantity: int, at: datetime, params: ModelParams
) -> float:
    return scaled(at, params.trending_rate, INTERACTION_WEIGHT[kind] * max(1, quantity))


def jaccard(co: float, count_a: float, count_b: float) -> float:
    """|A and B| / |A or B| on (decayed, scaled alike) weights; 0 when undefined."""
    union = count_a + count_b - co
    if union <= 0 or co <= 0:
        return 0.0
    return min(1.0, co / union)


@dataclass(frozen=True, slots=True)
class Neighbour:
    sku: str
    co: float
    count: float


def rank_neighbours(
    count_a: float, neighbours: Iterable[Neighbour], *, min_co: float = 0.0
) -> list[tuple[str, float]]:
    """Neighbours of one item by Jaccard similarity, best first (ties by SKU for stability)."""
    scored = [
        (n.sku, jaccard(n.co, count_a, n.count)) for n in neighbours if n.co > min_co and n.count
    ]
    scored = [s for s in scored if s[1] > 0]
    scored.sort(key=lambda s: (-s[1], s[0]))
    return scored


class InMemoryModel:
    """The same model held in memory: used by the rebuild and by the offline evaluation."""

    def __init__(self, params: ModelParams) -> None:
        self.params = params
        self.counts: dict[tuple[str, str], float] = defaultdict(float)
        self.pairs: dict[str, dict[str, dict[str, float]]] = {
            SESSION: defaultdict(lambda: defaultdict(float)),
            BASKET: defaultdict(lambda: defaultdict(float)),
        }
        self.totals: dict[str, float] = defaultdict(float)
        self.popularity: dict[str, float] = defaultdict(float)
        self._sessions: dict[str, list[tuple[datetime, str]]] = {}
        #: Strongest neighbours per (kind, sku), read-only use after training (cleared on apply).
        self._top: dict[tuple[str, str, int], list[Neighbour]] = {}

    def apply(self, inc: Increments) -> None:
        self._top.clear()
        for ck, cw in inc.counts.items():
            self.counts[ck] += cw
        for (kind, a, b), pw in inc.pairs.items():
            self.pairs[kind][a][b] += pw
        for tk, tw in inc.totals.items():
            self.totals[tk] += tw
        for sku, popw in inc.popularity.items():
            self.popularity[sku] += popw

    def add_basket(self, skus: Iterable[str], at: datetime, quantity: int = 1) -> None:
        items = list(skus)
        self.apply(basket_increments(items, at, self.params))
        for sku in set(items):
            self.popularity[sku] += popularity_increment(
                sku, InteractionKind.PURCHASE, quantity, at, self.params
            )

    def add_behavior(self, actor: str, sku: str, kind: InteractionKind, at: datetime) -> None:
        self.popularity[sku] += popularity_increment(sku, kind, 1, at, self.params)
        if kind is InteractionKind.REMOVE_FROM_CART:
            return
        window = [
            (t, s)
            for t, s in self._sessions.get(actor, [])
            if at - self.params.session_window <= t <= at
        ]
        if any(s == sku for _, s in window):
            self._sessions[actor] = window
            return
        recent = [s for _, s in sorted(window, reverse=True)]
        self.apply(session_increments(sku, recent, at, self.params))
        window.append((at, sku))
        self._sessions[actor] = window[-self.params.max_session_items :]

    def neighbours(self, kind: str, sku: str) -> list[tuple[str, float]]:
        row = self.pairs[kind].get(sku, {})
        return rank_neighbours(
            self.counts.get((kind, sku), 0.0),
            (Neighbour(b, co, self.counts.get((kind, b), 0.0)) for b, co in row.items()),
        )

    def top_popular(self, n: int, exclude: set[str] | None = None) -> list[str]:
        exclude = exclude or set()
        ranked = sorted(self.popularity.items(), key=lambda kv: (-kv[1], kv[0]))
        return [s for s, _ in ranked if s not in exclude][:n]

    def neighbour_rows(
        self, kinds: Sequence[str], skus: Sequence[str], per_item: int = 100
    ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[Neighbour]]]:
        """What the SQL repository's ``neighbours`` returns: the counts of the SKUs, and their
        ``per_item`` strongest co-occurrences by weight (everything is recommendable here)."""
        counts: dict[tuple[str, str], float] = {}
        out: dict[tuple[str, str], list[Neighbour]] = {}
        for kind in kinds:
            for sku in skus:
                key = (kind, sku)
                if key in self.counts:
                    counts[key] = self.counts[key]
                cached = self._top.get((kind, sku, per_item))
                if cached is None:
                    row = self.pairs[kind].get(sku, {})
                    strongest = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:per_item]
                    cached = [
                        Neighbour(b, co, self.counts.get((kind, b), 0.0)) for b, co in strongest
                    ]
                    self._top[(kind, sku, per_item)] = cached
                if cached:
                    out[key] = cached
        return counts, out


# --- RFM segments -----------------------------------------------------------------------------


class SegmentName(enum.StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALIST = "potential_loyalist"
    NEW = "new"
    PROMISING = "promising"
    NEEDS_ATTENTION = "needs_attention"
    AT_RISK = "at_risk"
    HIBERNATING = "hibernating"
    LOST = "lost"


class ChurnRisk(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: Recency score thresholds in days: <= 30 -> 5, <= 60 -> 4, <= 90 -> 3, <= 180 -> 2, else 1.
RECENCY_DAYS = (30, 60, 90, 180)
#: Frequency score thresholds in paid orders: 1 -> 1, 2 -> 2, 3-4 -> 3, 5-9 -> 4, >= 10 -> 5.
FREQUENCY_ORDERS = (2, 3, 5, 10)


def recency_score(days: int) -> int:
    for score, limit in zip((5, 4, 3, 2), RECENCY_DAYS, strict=True):
        if days <= limit:
            return score
    return 1


def frequency_score(orders: int) -> int:
    score = 1
    for limit in FREQUENCY_ORDERS:
        if orders >= limit:
            score += 1
    return score


def monetary_score(share_below: float) -> int:
    """Quintile of the customer's spend among customers of the same currency (0..1 share of
    customers who spent strictly less)."""
    return min(5, 1 + int(max(0.0, min(1.0, share_below)) * 5))


def segment_of(r: int, f: int, m: int) -> SegmentName:
    """The nine named segments from the R score and the mean of F and M (rounded down)."""
    fm = (f + m) // 2
    if r >= 4 and fm >= 4:
        return SegmentName.CHAMPIONS
    if r >= 4 and f == 1:
        return SegmentName.NEW
    if r >= 4:
        return SegmentName.POTENTIAL_LOYALIST
    if r == 3 and fm >= 4:
        return SegmentName.LOYAL
    if r == 3 and fm == 3:
        return SegmentName.NEEDS_ATTENTION
    if r == 3:
        return SegmentName.PROMISING
    if fm >= 4:
        return SegmentName.AT_RISK
    if r == 2:
        return SegmentName.HIBERNATING
    return SegmentName.LOST


def churn_risk_of(recency_days: int, frequency: int, mean_gap_days: float | None) -> ChurnRisk:
    """High when long past the customer's usual rhythm (or 180+ days), medium when late."""
    if recency_days > 180:
        return ChurnRisk.HIGH
    usual = mean_gap_days if (frequency >= 2 and mean_gap_days) else 60.0
    usual = max(usual, 7.0)
    if recency_days > 3 * usual:
        return ChurnRisk.HIGH
    if recency_days > 1.5 * usual:
        return ChurnRisk.MEDIUM
    return ChurnRisk.LOW


@dataclass(frozen=True, slots=True)
class CustomerRfm:
    customer_id: str
    recency_days: int
    frequency: int
    monetary_minor: int
    currency: str
    r_score: int
    f_score: int
    m_score: int
    segment: SegmentName
    churn_risk: ChurnRisk


def compute_rfm(
    customer_id: str,
    *,
    last_paid_at: datetime,
    first_paid_at: datetime,
    frequency: int,
    monetary_minor: int,
    currency: str,
    share_below: float,
    now: datetime,
) -> CustomerRfm:
    recency = max(0, (now - last_paid_at).days)
    mean_gap = (
        (last_paid_at - first_paid_at).total_seconds() / 86400 / (frequency - 1)
        if frequency >= 2
        else None
    )
    r, f, m = recency_score(recency), frequency_score(frequency), monetary_score(share_below)
    return CustomerRfm(
        customer_id=customer_id,
        recency_days=recency,
        frequency=frequency,
        monetary_minor=monetary_minor,
        currency=currency,
        r_score=r,
        f_score=f,
        m_score=m,
        segment=segment_of(r, f, m),
        churn_risk=churn_risk_of(recency, frequency, mean_gap),
    )


# --- funnel -----------------------------------------------------------------------------------


def rate(numerator: int, denominator: int) -> Decimal | None:
    """A conversion rate to 4 decimals; None when the step before is empty."""
    if denominator <= 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_EVEN
    )
