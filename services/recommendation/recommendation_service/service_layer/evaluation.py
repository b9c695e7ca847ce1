"""Offline evaluation: hold out each customer's last order, train the service's model on the
rest (the same domain code the service runs), and compare it with two baselines."""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..domain.models import EPOCH, HistoryItem, InMemoryModel, ModelParams

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


def customer_history(
    orders: Sequence[Order], now: datetime, params: ModelParams
) -> list[HistoryItem]:
    """The same affinity as the service: purchase weight 5, decayed with the model half-life."""
    weights: dict[str, float] = defaultdict(float)
    for order in orders:
        decay = math.exp(-params.rate * max(0.0, (now - order.at).total_seconds()))
        for sku in order.skus:
            weights[sku] += 5.0 * decay
    ranked = sorted(weights.items(), key=lambda kv: -kv[1])[:20]
    return [HistoryItem(s, w, True) for s, w in ranked]


def evaluate(
    orders: list[Order], *, k: int = 10, params: ModelParams | None = None
) -> tuple[Report, dict[str, list[str]]]:
    params = params or ModelParams()
    train_orders, held = split_last_order(orders)
    if not held:
        raise EvaluationError("no customer has two or more orders: nothing to hold out")
    model = train(train_orders, params)
    popular = model.top_popular(k + 50)
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in train_orders:
        by_customer[order.customer_id].append(order)
    service = Scores("service (SAR item-to-item, new items)")
    service_repeat = Scores("service, repeats allowed (SAR, seen kept)")
    pop = Scores("baseline: global popularity")
    repeat = Scores("baseline: repeat purchases (+popular)")
    # Discovery: only the held-out items the customer never bought before count.
    service_new = Scores("discovery: service (new items)")
    pop_new = Scores("discovery: popularity minus bought")
    top: dict[str, list[str]] = {}
    for customer in sorted(held):
        relevant = set(held[customer].skus)
        past = by_customer.get(customer, [])
        now = held[customer].at
        history = customer_history(past, now, params)
        bought = {s for o in past for s in o.skus}
        recs = [s for s, _, _ in model.recommend(history, k, exclude=bought)]
        top[customer] = recs
        service.add(recs, relevant, k)
        with_repeats = [
            s for s, _, _ in model.recommend(history, k, exclude=set(), include_history=True)
        ]
        service_repeat.add(with_repeats, relevant, k)
        pop.add(popular[:k], relevant, k)
        counts = Counter(s for o in past for s in o.skus)
        last_seen = {s: o.at for o in sorted(past, key=lambda o: o.at) for s in o.skus}
        mine = sorted(counts, key=lambda s: (-counts[s], -last_seen[s].timestamp(), s))[:k]
        mine += [s for s in popular if s not in mine][: k - len(mine)]
        repeat.add(mine, relevant, k)
        fresh = relevant - bought
        if fresh:
            service_new.add(recs, fresh, k)
            pop_new.add([s for s in popular if s not in bought][:k], fresh, k)
    report = Report(
        k,
        len(held),
        len(train_orders),
        [service, service_repeat, pop, repeat, service_new, pop_new],
    )
    return report, top


def evaluate_csv(path: str, *, k: int = 10, output: str | None = None) -> Report:
    report, top = evaluate(read_orders(path), k=k)
    if output:
        with Path(output).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "rank", "sku"])
            for customer, skus in top.items():
                for rank, sku in enumerate(skus, start=1):
                    writer.writerow([customer, rank, sku])
    return report
