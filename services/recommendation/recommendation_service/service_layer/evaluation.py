"""Offline evaluation: hold out each customer's last order, train the service's model on the
rest, answer each held-out customer with the handler's own code (``personalised.py``), and
compare with two baselines. ``--tune`` picks the personal parameters on a validation split
carved from the training orders."""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
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
    name: str
    hit: float = 0.0
    ndcg: float = 0.0
    recall: float = 0.0
    n: int = 0

    def add(self, recommended: Sequence[str], relevant: set[str], k: int) -> None:
        self.hit += hit_rate(recommended[:k], relevant)
        self.ndcg += ndcg(recommended, relevant, k)
        self.recall += recall(recommended[:k], relevant)
        self.n += 1

    def mean(self) -> tuple[float, float, float]:
        n = max(1, self.n)
        return self.hit / n, self.ndcg / n, self.recall / n


@dataclass
class Report:
    k: int
    customers: int
    train_orders: int
    scores: list[Scores] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"held-out customers: {self.customers} (last order each); "
            f"training orders: {self.train_orders}; k = {self.k}",
            f"{'recommender':<44} {'HitRate@k':>10} {'NDCG@k':>10} {'Recall@k':>10} {'n':>6}",
        ]
        for s in self.scores:
            h, n, r = s.mean()
            lines.append(f"{s.name:<44} {h:>10.4f} {n:>10.4f} {r:>10.4f} {s.n:>6}")
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


#: The grid searched by ``--tune`` (on the validation split only).
GRID_DECAY = (0.75, 0.8, 0.85, 0.9, 0.95)
GRID_NEIGHBOUR = (0.02, 0.05, 0.1)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Validation scores per (order_decay, neighbour_weight) and the best pair by NDCG."""

    customers: int
    train_orders: int
    results: dict[tuple[float, float], tuple[float, float, float]]
    best: PersonalParams
    baseline: tuple[float, float, float]

    def table(self, k: int) -> str:
        lines = [
            f"validation: {self.customers} customers (their last training order held out); "
            f"{self.train_orders} orders; k = {k}",
            f"{'order_decay':>11} {'neighbour_weight':>16} {'HitRate@k':>10} {'NDCG@k':>10}",
        ]
        for (decay, nw), (h, n, _r) in sorted(self.results.items()):
            lines.append(f"{decay:>11.2f} {nw:>16.2f} {h:>10.4f} {n:>10.4f}")
        h, n, _r = self.baseline
        lines.append(f"{'repeat-purchase baseline':>28} {h:>10.4f} {n:>10.4f}")
        lines.append(
            f"chosen (best NDCG@k): order_decay={self.best.order_decay}, "
            f"neighbour_weight={self.best.neighbour_weight}"
        )
        return "\n".join(lines)


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
    results: dict[tuple[float, float], tuple[float, float, float]] = {}
    for decay in GRID_DECAY:
        for nw in GRID_NEIGHBOUR:
            p = replace(PersonalParams(), order_decay=decay, neighbour_weight=nw)
            results[(decay, nw)] = _score_service(model, held, by_customer, k, p, popular).mean()
    (decay, nw), _ = max(results.items(), key=lambda kv: (kv[1][1], kv[1][0]))
    best = replace(PersonalParams(), order_decay=decay, neighbour_weight=nw)
    baseline = Scores("baseline")
    for customer in sorted(held):
        past = by_customer.get(customer, [])
        baseline.add(repeat_baseline(past, popular, k), set(held[customer].skus), k)
    return Tuning(len(held), len(fit), results, best, baseline.mean())


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
