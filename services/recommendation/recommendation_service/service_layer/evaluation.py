"""Offline evaluation: hold out each customer's last order, train the service's model on the
rest, answer each held-out customer with the handler's own code (``personalised.py``), and
compare with two baselines. ``--tune`` picks the personal parameters on a validation split
carved from the training orders."""

from __future__ import annotations

import csv
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..domain.models import EPOCH, InMemoryModel, InteractionKind, ModelParams
from ..domain.personal import Mode, PersonalParams
from .personalised import (
    HISTORY,
    HISTORY_LIMIT,
    KINDS,
    PER_ITEM,
    fill,
    merge_similar,
    personal_items,
    plan,
)
from .ports import Interaction
from .views import RecommendedItem

REQUIRED = ("customer_id", "order_id", "sku", "ordered_at")


class EvaluationError(ValueError):
    """The input cannot be evaluated (missing file, columns, or nothing to hold out)."""


@dataclass(frozen=True, slots=True)
class Order:
    customer_id: str
    order_id: str
    at: datetime
    skus: tuple[str, ...]


def parse_time(value: str, line: int) -> datetime:
    """A timestamp (ISO 8601; naive means UTC) or an order sequence number (one day apart)."""
    text = value.strip()
    try:
        return EPOCH + timedelta(days=float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EvaluationError(
            f"line {line}: ordered_at {value!r} is neither a timestamp nor a number"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_orders(path: str | Path) -> list[Order]:
    try:
        handle = Path(path).open(newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from None
    lines: dict[tuple[str, str], list[str]] = defaultdict(list)
    times: dict[tuple[str, str], datetime] = {}
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise EvaluationError(f"{path}: missing column(s) {', '.join(missing)}")
        for number, row in enumerate(reader, start=2):
            customer, order, sku = row["customer_id"], row["order_id"], row["sku"]
            if not customer or not order or not sku:
                raise EvaluationError(f"line {number}: empty customer_id, order_id or sku")
            key = (customer, order)
            lines[key].append(sku)
            at = parse_time(row["ordered_at"], number)
            times[key] = min(at, times.get(key, at))
    return [
        Order(c, o, times[(c, o)], tuple(dict.fromkeys(skus))) for (c, o), skus in lines.items()
    ]


def split_last_order(orders: Iterable[Order]) -> tuple[list[Order], dict[str, Order]]:
    """Each customer's last order is held out (customers with two or more orders only)."""
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_customer[order.customer_id].append(order)
    train: list[Order] = []
    held: dict[str, Order] = {}
    for customer, items in by_customer.items():
        items.sort(key=lambda o: (o.at, o.order_id))
        if len(items) >= 2:
            held[customer] = items[-1]
            train.extend(items[:-1])
        else:
            train.extend(items)
    return train, held


def hit_rate(recommended: Sequence[str], relevant: set[str]) -> float:
    return 1.0 if any(s in relevant for s in recommended) else 0.0


def recall(recommended: Sequence[str], relevant: set[str]) -> float:
    return sum(1 for s in recommended if s in relevant) / len(relevant) if relevant else 0.0


def ndcg(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, s in enumerate(recommended[:k]) if s in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


@dataclass
class Scores:
    """Per-customer HitRate, NDCG and Recall of one recommender, in the order added (the
    paired comparison lines two recommenders up customer by customer)."""

    name: str
    hits: list[float] = field(default_factory=list)
    ndcgs: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.hits)

    def add(self, recommended: Sequence[str], relevant: set[str], k: int) -> None:
        self.hits.append(hit_rate(recommended[:k], relevant))
        self.ndcgs.append(ndcg(recommended, relevant, k))
        self.recalls.append(recall(recommended[:k], relevant))

    def mean(self) -> tuple[float, float, float]:
        n = max(1, self.n)
        return sum(self.hits) / n, sum(self.ndcgs) / n, sum(self.recalls) / n


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the probability of a split at least this uneven between
    ``wins`` and ``losses`` if either side were equally likely (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    low = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / (1 << n)
    return min(1.0, 2 * tail)


def bootstrap_interval(
    diffs: Sequence[float], *, rounds: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the mean of ``diffs`` over customers resampled with
    replacement (a paired bootstrap: each customer keeps both recommenders' scores)."""
    if not diffs:
        return 0.0, 0.0
    rng = random.Random(seed)  # noqa: S311 - resampling for an interval, not a secret
    n = len(diffs)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[min(rounds - 1, int(0.975 * rounds))]


@dataclass(frozen=True, slots=True)
class Paired:
    """One recommender against another on the same customers."""

    name: str
    other: str
    customers: int
    #: Customers with a hit from ``name`` only, and from ``other`` only.
    hit_only: int
    other_hit_only: int
    hit_diff: float
    hit_interval: tuple[float, float]
    hit_p: float
    #: Customers whose NDCG is higher with ``name``, and with ``other``.
    ndcg_better: int
    ndcg_worse: int
    ndcg_diff: float
    ndcg_interval: tuple[float, float]
    ndcg_p: float

    @classmethod
    def of(cls, a: Scores, b: Scores) -> Paired:
        if a.n != b.n:
            raise ValueError("paired scores need the same customers")
        hit = [x - y for x, y in zip(a.hits, b.hits, strict=True)]
        gain = [x - y for x, y in zip(a.ndcgs, b.ndcgs, strict=True)]
        n = max(1, a.n)
        only_a, only_b = sum(1 for d in hit if d > 0), sum(1 for d in hit if d < 0)
        better, worse = sum(1 for d in gain if d > 1e-12), sum(1 for d in gain if d < -1e-12)
        return cls(
            a.name,
            b.name,
            a.n,
            only_a,
            only_b,
            sum(hit) / n,
            bootstrap_interval(hit),
            sign_test(only_a, only_b),
            better,
            worse,
            sum(gain) / n,
            bootstrap_interval(gain),
            sign_test(better, worse),
        )

    def lines(self) -> list[str]:
        hl, hh = self.hit_interval
        nl, nh = self.ndcg_interval
        return [
            f"paired, {self.name} vs {self.other} ({self.customers} customers):",
            f"  HitRate@k {self.hit_diff:+.4f} (95% bootstrap interval {hl:+.4f} .. {hh:+.4f}); "
            f"a hit for {self.hit_only} customers only with the service, for "
            f"{self.other_hit_only} only with the baseline (sign test p = {self.hit_p:.3g})",
            f"  NDCG@k {self.ndcg_diff:+.4f} (95% bootstrap interval {nl:+.4f} .. {nh:+.4f}); "
            f"better for {self.ndcg_better} customers, worse for {self.ndcg_worse} "
            f"(sign test p = {self.ndcg_p:.3g})",
        ]


@dataclass
class Report:
    k: int
    customers: int
    train_orders: int
    scores: list[Scores] = field(default_factory=list)
    #: The service as served against the repeat-purchase baseline, customer by customer.
    paired: Paired | None = None

    def table(self) -> str:
        lines = [
            f"held-out customers: {self.customers} (last order each); "
            f"training orders: {self.train_orders}; k = {self.k}",
            f"{'recommender':<44} {'HitRate@k':>10} {'NDCG@k':>10} {'Recall@k':>10} {'n':>6}",
        ]
        for s in self.scores:
            h, n, r = s.mean()
            lines.append(f"{s.name:<44} {h:>10.4f} {n:>10.4f} {r:>10.4f} {s.n:>6}")
        if self.paired is not None:
            lines.extend(self.paired.lines())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, tuple[float, float, float]]:
        return {s.name: s.mean() for s in self.scores}


def train(orders: Iterable[Order], params: ModelParams) -> InMemoryModel:
    model = InMemoryModel(params)
    for order in sorted(orders, key=lambda o: (o.at, o.order_id)):
        model.add_basket(order.skus, order.at)
    return model


def interactions_of(customer: str, orders: Sequence[Order], now: datetime) -> list[Interaction]:
    """What the service's ``customer_history`` would read for the customer at ``now``: its
    purchases since ``now - HISTORY``, newest first, at most ``HISTORY_LIMIT``."""
    rows = [
        Interaction(
            event_id=f"{o.order_id}:{sku}",
            actor=f"c:{customer}",
            customer_id=customer,
            session_id=None,
            sku=sku,
            kind=InteractionKind.PURCHASE,
            quantity=1,
            order_id=o.order_id,
            occurred_at=o.at,
        )
        for o in orders
        if now - HISTORY <= o.at <= now
        for sku in o.skus
    ]
    rows.sort(key=lambda r: r.occurred_at, reverse=True)
    return rows[:HISTORY_LIMIT]


def served(
    model: InMemoryModel,
    customer: str,
    past: Sequence[Order],
    now: datetime,
    *,
    mode: Mode,
    limit: int,
    params: PersonalParams,
    popular: Sequence[str],
    similar_cache: dict[str, list[tuple[str, float]]] | None = None,
) -> list[RecommendedItem]:
    """What ``GET /v1/recommendations/customers/{customer}?mode=…&limit=…`` answers at ``now``
    when the service learnt ``model`` and every SKU is recommendable: the same functions as
    the handler (``personalised.py``), the trending fallback being global popularity (the
    evaluation data has no categories). ``similar_cache`` keeps the merged neighbour lists
    per SKU across calls on the same model (each SKU's list does not depend on the others)."""
    rows = interactions_of(customer, past, now)
    profile, history = plan(rows, now, model.params, params)
    skus = [sku for sku, _w, _b in history]
    cache = {} if similar_cache is None else similar_cache
    missing = [s for s in skus if s not in cache]
    if missing:
        counts, neigh = model.neighbour_rows([k for k, _ in KINDS], missing, per_item=PER_ITEM)
        cache.update(merge_similar(missing, counts, neigh))
    exclude = {s for o in past for s in o.skus} if mode is Mode.DISCOVER else set()
    items = personal_items(
        profile,
        history,
        {s: cache[s] for s in skus},
        None,
        mode=mode,
        exclude=exclude,
        limit=limit,
        params=params,
    )
    fill(items, ((s, "trending now") for s in popular), limit=limit, exclude=exclude)
    return items


def _score_service(
    model: InMemoryModel,
    held: dict[str, Order],
    by_customer: dict[str, list[Order]],
    k: int,
    params: PersonalParams,
    popular: Sequence[str],
) -> Scores:
    scores = Scores("service")
    cache: dict[str, list[tuple[str, float]]] = {}
    for customer in sorted(held):
        past = by_customer.get(customer, [])
        items = served(
            model,
            customer,
            past,
            held[customer].at,
            mode=Mode.PERSONAL,
            limit=k,
            params=params,
            popular=popular,
            similar_cache=cache,
        )
        scores.add([i.sku for i in items], set(held[customer].skus), k)
    return scores


def repeat_baseline(past: Sequence[Order], popular: Sequence[str], k: int) -> list[str]:
    """The customer's most often bought SKUs (ties: the most recent), padded with popular."""
    counts = Counter(s for o in past for s in o.skus)
    last_seen = {s: o.at for o in sorted(past, key=lambda o: o.at) for s in o.skus}
    mine = sorted(counts, key=lambda s: (-counts[s], -last_seen[s].timestamp(), s))[:k]
    return mine + [s for s in popular if s not in mine][: k - len(mine)]


#: What ``--tune`` searches (on the validation split only): first every ``order_decay`` ×
#: ``frequency_weight`` pair at the default ``neighbour_weight`` (with a decay of 1.0 the
#: vector is the plain frequency already, so only weight 0 is tried there), then the
#: ``neighbour_weight`` values at the best pair.
GRID_DECAY = (0.8, 0.85, 0.9, 0.95, 1.0)
GRID_FREQUENCY = (0.0, 0.25, 0.5, 0.75)
GRID_NEIGHBOUR = (0.01, 0.02, 0.05, 0.1)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Validation scores per (order_decay, frequency_weight, neighbour_weight) and the chosen
    parameters: the best NDCG@k among those whose HitRate@k is not below the repeat-purchase
    baseline's (the best NDCG@k overall when none is)."""

    customers: int
    train_orders: int
    results: dict[tuple[float, float, float], tuple[float, float, float]]
    best: PersonalParams
    baseline: tuple[float, float, float]

    def table(self, k: int) -> str:
        lines = [
            f"validation: {self.customers} customers (their last training order held out); "
            f"{self.train_orders} orders; k = {k}",
            f"{'order_decay':>11} {'frequency_weight':>16} {'neighbour_weight':>16} "
            f"{'HitRate@k':>10} {'NDCG@k':>10}",
        ]
        for (decay, fw, nw), (h, n, _r) in sorted(self.results.items()):
            lines.append(f"{decay:>11.2f} {fw:>16.2f} {nw:>16.2f} {h:>10.4f} {n:>10.4f}")
        h, n, _r = self.baseline
        lines.append(f"{'repeat-purchase baseline':>45} {h:>10.4f} {n:>10.4f}")
        lines.append(
            f"chosen (best NDCG@k at a HitRate@k not below the baseline's): "
            f"order_decay={self.best.order_decay}, "
            f"frequency_weight={self.best.frequency_weight}, "
            f"neighbour_weight={self.best.neighbour_weight}"
        )
        return "\n".join(lines)


def choose(
    results: Mapping[tuple[float, float, float], tuple[float, float, float]],
    baseline: tuple[float, float, float],
) -> tuple[float, float, float]:
    """The best NDCG among the parameters whose HitRate is at least the baseline's (all of
    them when none is); ties: the higher HitRate, then the smaller key."""
    at_least = {p: r for p, r in results.items() if r[0] >= baseline[0]} or dict(results)
    return min(at_least, key=lambda p: (-at_least[p][1], -at_least[p][0], p))


def tune(train_orders: list[Order], *, k: int, params: ModelParams) -> Tuning:
    """Grid search on a validation split carved from the training orders (each customer's last
    training order held out); the test orders are never seen."""
    fit, held = split_last_order(train_orders)
    if not held:
        raise EvaluationError("no customer has three or more orders: nothing to tune on")
    model = train(fit, params)
    popular = model.top_popular(k + 50)
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in fit:
        by_customer[order.customer_id].append(order)
    baseline = Scores("baseline")
    for customer in sorted(held):
        past = by_customer.get(customer, [])
        baseline.add(repeat_baseline(past, popular, k), set(held[customer].skus), k)
    base = baseline.mean()
    default = PersonalParams()
    results: dict[tuple[float, float, float], tuple[float, float, float]] = {}

    def score(decay: float, fw: float, nw: float) -> None:
        if (decay, fw, nw) not in results:
            p = replace(default, order_decay=decay, frequency_weight=fw, neighbour_weight=nw)
            results[(decay, fw, nw)] = _score_service(
                model, held, by_customer, k, p, popular
            ).mean()

    for decay in GRID_DECAY:
        for fw in GRID_FREQUENCY if decay < 1.0 else (0.0,):
            score(decay, fw, default.neighbour_weight)
    decay, fw, _nw = choose(results, base)
    for nw in GRID_NEIGHBOUR:
        score(decay, fw, nw)
    decay, fw, nw = choose(results, base)
    best = replace(default, order_decay=decay, frequency_weight=fw, neighbour_weight=nw)
    return Tuning(len(held), len(fit), results, best, base)


def evaluate(
    orders: list[Order],
    *,
    k: int = 10,
    params: ModelParams | None = None,
    personal: PersonalParams | None = None,
    mode: Mode = Mode.PERSONAL,
) -> tuple[Report, dict[str, list[RecommendedItem]]]:
    """Scores on the held-out last orders; the second value is what the service answers each
    held-out customer in ``mode`` (for ``--output``)."""
    params = params or ModelParams()
    personal = personal or PersonalParams()
    train_orders, held = split_last_order(orders)
    if not held:
        raise EvaluationError("no customer has two or more orders: nothing to hold out")
    model = train(train_orders, params)
    popular = model.top_popular(k + 50)
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in train_orders:
        by_customer[order.customer_id].append(order)
    service = Scores("service, personal (buy again + discovery)")
    discover = Scores("service, mode=discover (new items only)")
    pop = Scores("baseline: global popularity")
    repeat = Scores("baseline: repeat purchases (+popular)")
    # Discovery: only the held-out items the customer never bought before count.
    service_new = Scores("discovery: service, mode=discover")
    pop_new = Scores("discovery: popularity minus bought")
    top: dict[str, list[RecommendedItem]] = {}
    cache: dict[str, list[tuple[str, float]]] = {}
    for customer in sorted(held):
        relevant = set(held[customer].skus)
        past = by_customer.get(customer, [])
        now = held[customer].at
        answers = {
            m: served(
                model,
                customer,
                past,
                now,
                mode=m,
                limit=k,
                params=personal,
                popular=popular,
                similar_cache=cache,
            )
            for m in Mode
        }
        top[customer] = answers[mode]
        mine_personal = [i.sku for i in answers[Mode.PERSONAL]]
        mine_discover = [i.sku for i in answers[Mode.DISCOVER]]
        service.add(mine_personal, relevant, k)
        discover.add(mine_discover, relevant, k)
        pop.add(popular[:k], relevant, k)
        repeat.add(repeat_baseline(past, popular, k), relevant, k)
        bought = {s for o in past for s in o.skus}
        fresh = relevant - bought
        if fresh:
            service_new.add(mine_discover, fresh, k)
            pop_new.add([s for s in popular if s not in bought][:k], fresh, k)
    report = Report(
        k,
        len(held),
        len(train_orders),
        [service, discover, pop, repeat, service_new, pop_new],
        Paired.of(service, repeat),
    )
    return report, top


def evaluate_csv(
    path: str,
    *,
    k: int = 10,
    output: str | None = None,
    mode: Mode = Mode.PERSONAL,
    tuned: bool = False,
) -> tuple[Report, Tuning | None]:
    orders = read_orders(path)
    tuning = None
    if tuned:
        train_orders, _held = split_last_order(orders)
        tuning = tune(train_orders, k=k, params=ModelParams())
    report, top = evaluate(orders, k=k, personal=tuning.best if tuning else None, mode=mode)
    if output:
        with Path(output).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "rank", "sku", "score", "reason"])
            for customer, items in top.items():
                for rank, item in enumerate(items, start=1):
                    writer.writerow([customer, rank, item.sku, item.score, item.reason])
    return report, tuning
