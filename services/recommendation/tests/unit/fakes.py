"""The recommendation service's unit of work in memory: the platform's fake (events, keys) with
in-memory repositories that answer like the SQL ones (adapters/repositories), for handler tests
without PostgreSQL. Rolled-back transactions leave nothing (the whole state is restored)."""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecomops_platform.bus import MessageBus, handlers_in
from ecomops_testing.fakes import FakeUnitOfWork
from recommendation_service.domain.models import (
    BASKET,
    Increments,
    InteractionKind,
    ModelParams,
    Neighbour,
)
from recommendation_service.service_layer import (
    funnel,
    history,
    ingestion,
    learning,
    rebuild,
    segments,
    serving,
)
from recommendation_service.service_layer.personalised import HISTORY_LIMIT
from recommendation_service.service_layer.ports import (
    CancelledOrder,
    CatalogEntry,
    Deps,
    FunnelCounts,
    IngestionPolicy,
    Interaction,
    ModelWeights,
    OrderFacts,
    PaidStats,
    SegmentRecord,
    StaleSegment,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class CatalogRow:
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    status: str | None = None
    updated_at: datetime | None = None
    available: int | None = None
    stock_at: datetime | None = None

    @property
    def eligible(self) -> bool:
        return (
            self.title is not None
            and self.status == "active"
            and self.available is not None
            and self.available > 0
        )


@dataclass
class OrderRow:
    customer_id: str
    currency: str
    total_minor: int
    placed_at: datetime | None = None
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None
    lines: dict[str, int] = field(default_factory=dict)


@dataclass
class State:
    catalog: dict[str, CatalogRow] = field(default_factory=dict)
    counts: dict[tuple[str, str], float] = field(default_factory=dict)
    pairs: dict[tuple[str, str, str], float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    orders: dict[str, OrderRow] = field(default_factory=dict)
    segments: dict[str, SegmentRecord] = field(default_factory=dict)


class _Repo:
    def __init__(self, uow: FakeRecommendationUnitOfWork) -> None:
        self.uow = uow

    @property
    def state(self) -> State:
        return self.uow.state


class FakeModelRepository(_Repo):
    async def apply(self, inc: Increments) -> None:
        s = self.state
        for target, values in (
            (s.counts, inc.counts),
            (s.pairs, inc.pairs),
            (s.totals, inc.totals),
            (s.popularity, inc.popularity),
        ):
            for key, weight in values.items():
                target[key] = target.get(key, 0.0) + weight  # type: ignore[index]

    async def drop_negligible_purchases(
        self, skus: Sequence[str], eps: float, trend_eps: float
    ) -> None:
        s, wanted = self.state, set(skus)
        s.pairs = {
            k: w for k, w in s.pairs.items() if not (k[0] == BASKET and k[1] in wanted and w <= eps)
        }
        s.counts = {
            k: w
            for k, w in s.counts.items()
            if not (k[0] == BASKET and k[1] in wanted and w <= eps)
        }
        s.popularity = {
            k: w for k, w in s.popularity.items() if not (k in wanted and w <= trend_eps)
        }

    async def neighbours(
        self, kinds: Sequence[str], skus: Sequence[str], per_item: int = 100
    ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[Neighbour]]]:
        s = self.state
        counts = {
            (k, sku): s.counts[(k, sku)] for k in kinds for sku in skus if (k, sku) in s.counts
        }
        out: dict[tuple[str, str], list[Neighbour]] = defaultdict(list)
        for kind in kinds:
            for sku in skus:
                top = sorted(
                    (
                        (b, w)
                        for (k, a, b), w in s.pairs.items()
                        if k == kind and a == sku and b in s.catalog and s.catalog[b].eligible
                    ),
                    key=lambda bw: -bw[1],
                )[:per_item]
                for b, w in top:
                    if (kind, b) in s.counts:
                        out[(kind, sku)].append(Neighbour(b, w, s.counts[(kind, b)]))
        return counts, out

    async def trending(
        self, *, categories: Sequence[str] | None, limit: int, exclude: Iterable[str] = ()
    ) -> list[tuple[CatalogEntry, float]]:
        s, excluded = self.state, set(exclude)
        rows = [
            (CatalogEntry(sku, row.title or sku, row.category), s.popularity[sku])
            for sku, row in s.catalog.items()
            if row.eligible
            and sku in s.popularity
            and sku not in excluded
            and (categories is None or row.category in categories)
        ]
        rows.sort(key=lambda r: (-r[1], r[0].sku))
        return rows[:limit]

    async def lock_for_rebuild(self) -> None:
        self.uow.locks.append("rebuild")

    async def replace(self, weights: ModelWeights) -> None:
        s = self.state
        s.counts = dict(weights.counts)
        s.pairs = {(k, a, b): w for k, a, b, w in weights.pairs}
        s.totals = dict(weights.totals)
        s.popularity = dict(weights.popularity)


class FakeCatalogRepository(_Repo):
    async def upsert(
        self,
        *,
        sku: str,
        title: str,
        category: str,
        brand: str,
        status: str,
        updated_at: datetime,
    ) -> None:
        row = self.state.catalog.setdefault(sku, CatalogRow())
        if row.updated_at is None or row.updated_at <= updated_at:
            row.title = title or sku
            row.category = category or None
            row.brand = brand or None
            row.status = status or "active"
            row.updated_at = updated_at

    async def set_stock(self, *, sku: str, available: int, at: datetime) -> None:
        row = self.state.catalog.setdefault(sku, CatalogRow())
        if row.stock_at is None or row.stock_at <= at:
            row.available, row.stock_at = available, at

    async def entries(self, skus: Iterable[str]) -> dict[str, CatalogEntry]:
        catalog = self.state.catalog
        return {
            s: CatalogEntry(s, catalog[s].title or s, catalog[s].category, catalog[s].eligible)
            for s in set(skus)
            if s in catalog
        }


class FakeInteractionRepository(_Repo):
    async def add(self, rows: Sequence[Interaction]) -> None:
        self.state.interactions.extend(rows)

    async def recent_session_skus(self, actor: str, since: datetime, until: datetime) -> list[str]:
        last: dict[str, datetime] = {}
        for i in self.state.interactions:
            if (
                i.actor == actor
                and i.kind in (InteractionKind.VIEW, InteractionKind.ADD_TO_CART)
                and since <= i.occurred_at <= until
            ):
                last[i.sku] = max(last.get(i.sku, i.occurred_at), i.occurred_at)
        return [s for s, _ in sorted(last.items(), key=lambda kv: kv[1], reverse=True)][:200]

    async def customer_history(self, customer_id: str, since: datetime) -> list[Interaction]:
        rows = [
            i
            for i in self.state.interactions
            if i.customer_id == customer_id and i.occurred_at >= since
        ]
        return sorted(rows, key=lambda i: i.occurred_at, reverse=True)[:HISTORY_LIMIT]

    async def all(self) -> list[Interaction]:
        return sorted(self.state.interactions, key=lambda i: i.occurred_at)

    async def forget_purchases(self, order_id: str) -> None:
        self.state.interactions = [
            i
            for i in self.state.interactions
            if not (i.order_id == order_id and i.kind is InteractionKind.PURCHASE)
        ]


class FakeOrderRepository(_Repo):
    async def record_placed(self, order: OrderFacts) -> None:
        row = self.state.orders.get(order.order_id)
        if row is None:
            row = OrderRow(order.customer_id, order.currency, order.total_minor)
            self.state.orders[order.order_id] = row
        row.placed_at = order.at
        row.lines.update(order.lines)

    async def record_paid(self, order: OrderFacts) -> bool:
        row = self.state.orders.get(order.order_id)
        if row is None:
            row = OrderRow(order.customer_id, order.currency, order.total_minor)
            self.state.orders[order.order_id] = row
        elif row.paid_at is not None:
            return False
        row.paid_at, row.total_minor, row.currency = order.at, order.total_minor, order.currency
        row.lines.update(order.lines)
        return True

    async def cancel(self, order_id: str, at: datetime) -> CancelledOrder | None:
        row = self.state.orders.get(order_id)
        if row is None or row.cancelled_at is not None:
            return None
        row.cancelled_at = at
        return CancelledOrder(row.customer_id, row.paid_at, dict(row.lines))

    async def purchased_skus(self, customer_id: str) -> set[str]:
        return {
            sku
            for row in self.state.orders.values()
            if row.customer_id == customer_id and row.paid_at is not None
            for sku in row.lines
        }

    async def paid_stats(self, customer_id: str) -> PaidStats | None:
        by_currency: dict[str, list[OrderRow]] = defaultdict(list)
        for row in self.state.orders.values():
            if row.customer_id == customer_id and row.paid_at and row.cancelled_at is None:
                by_currency[row.currency].append(row)
        if not by_currency:
            return None
        currency, rows = max(
            by_currency.items(),
            key=lambda kv: (len(kv[1]), sum(r.total_minor for r in kv[1])),
        )
        paid = [r.paid_at for r in rows if r.paid_at is not None]
        return PaidStats(
            currency, len(rows), sum(r.total_minor for r in rows), min(paid), max(paid)
        )


class FakeSegmentRepository(_Repo):
    async def lock_customer(self, customer_id: str) -> None:
        self.uow.locks.append(f"customer:{customer_id}")

    async def get(self, customer_id: str) -> SegmentRecord | None:
        return self.state.segments.get(customer_id)

    async def save(self, record: SegmentRecord) -> None:
        self.state.segments[record.customer_id] = record

    async def share_spending_less(
        self, currency: str, monetary_minor: int, customer_id: str
    ) -> float:
        others = [
            r
            for r in self.state.segments.values()
            if r.currency == currency and r.customer_id != customer_id
        ]
        if not others:
            return 0.5
        return sum(1 for r in others if r.monetary_minor < monetary_minor) / len(others)

    async def claim_stale(
        self, before: datetime, limit: int, after: StaleSegment | None = None
    ) -> list[StaleSegment]:
        await asyncio.sleep(0)  # a real round trip: a runaway loop can be timed out
        stale = sorted(
            StaleSegment(r.computed_at, r.customer_id)
            for r in self.state.segments.values()
            if r.computed_at < before
        )
        return [s for s in stale if after is None or s > after][:limit]

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.state.segments.values():
            out[r.segment] += 1
        return dict(out)


class FakeFunnelQueries(_Repo):
    async def counts(self, start: datetime, end: datetime, category: str | None) -> FunnelCounts:
        s = self.state

        def in_category(sku: str) -> bool:
            return category is None or (sku in s.catalog and s.catalog[sku].category == category)

        def behaviour(kind: InteractionKind) -> int:
            return sum(
                1
                for i in s.interactions
                if i.kind is kind and start <= i.occurred_at < end and in_category(i.sku)
            )

        def orders(at: Callable[[OrderRow], datetime | None]) -> int:
            return sum(
                1
                for row in s.orders.values()
                if (t := at(row)) is not None
                and start <= t < end
                and (category is None or any(in_category(sku) for sku in row.lines))
            )

        return FunnelCounts(
            views=behaviour(InteractionKind.VIEW),
            add_to_carts=behaviour(InteractionKind.ADD_TO_CART),
            orders=orders(lambda r: r.placed_at),
            paid=orders(lambda r: r.paid_at),
        )


class FakeRecommendationUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.state = State()
        #: Locks taken (``rebuild``, ``customer:<id>``), in order.
        self.locks: list[str] = []
        super().__init__()
        self.model = FakeModelRepository(self)
        self.catalog = FakeCatalogRepository(self)
        self.interactions = FakeInteractionRepository(self)
        self.orders = FakeOrderRepository(self)
        self.segments = FakeSegmentRepository(self)
        self.funnel = FakeFunnelQueries(self)

    def snapshot(self) -> Any:
        return (super().snapshot(), copy.deepcopy(self.state))

    def restore(self, state: Any) -> None:
        base, mine = state
        super().restore(base)
        self.state = copy.deepcopy(mine)


Bus = MessageBus[FakeRecommendationUnitOfWork, Deps]


def deps(**overrides: Any) -> Deps:
    values: dict[str, Any] = {
        "params": ModelParams(),
        "ingestion": IngestionPolicy(
            max_batch=5, max_skew=timedelta(minutes=5), max_age=timedelta(days=30)
        ),
        "segment_max_age": timedelta(hours=1),
        "segment_batch": 500,
        "clock": lambda: NOW,
    }
    values.update(overrides)
    return Deps(**values)


def make_bus(uow: FakeRecommendationUnitOfWork, **overrides: Any) -> Bus:
    return MessageBus(
        service="recommendation",
        uow=lambda: uow,
        deps=deps(**overrides),
        handlers=handlers_in(ingestion, learning, serving, segments, funnel, rebuild, history),
    )
