"""In-memory repositories behind the pricing ports, and a bus built on them (no PostgreSQL).

The fakes keep the conditional writes' semantics (a use is taken only while live and under the
limit; a redemption is released once), so the handlers' rules can be tested here."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from ecomops_platform.bus import MessageBus
from ecomops_testing.fakes import FakeUnitOfWork
from pricing_service.bootstrap import SPEC
from pricing_service.domain.models import Promotion
from pricing_service.domain.records import (
    CONFIRMED,
    REDEEMED,
    RELEASED,
    CompetitorPriceRecord,
    PriceChangeRecord,
    PriceRecord,
    QuoteRecord,
    RedemptionRecord,
    SkuInfo,
)
from pricing_service.service_layer.ports import ChangeDocument, Deps
from pricing_service.settings import PricingSettings


@dataclass
class State:
    skus: dict[str, SkuInfo] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    sales: dict[tuple[str, str, date], int] = field(default_factory=dict)
    prices: dict[tuple[str, str], PriceRecord] = field(default_factory=dict)
    history: list[tuple[int, str, str, PriceChangeRecord]] = field(default_factory=list)
    promotions: dict[str, Promotion] = field(default_factory=dict)
    changes: list[tuple[str, str, ChangeDocument]] = field(default_factory=list)
    customer_uses: dict[tuple[str, str], int] = field(default_factory=dict)
    quotes: dict[str, QuoteRecord] = field(default_factory=dict)
    redemptions: list[RedemptionRecord] = field(default_factory=list)
    competitors: dict[tuple[str, str, str], CompetitorPriceRecord] = field(default_factory=dict)


class FakeCatalog:
    def __init__(self, state: State) -> None:
        self.s = state

    async def skus(self, skus: Sequence[str]) -> dict[str, SkuInfo]:
        return {k: self.s.skus[k] for k in skus if k in self.s.skus}

    async def skus_in_categories(self, categories: Sequence[str]) -> list[str]:
        return [k for k, v in self.s.skus.items() if v.category in categories]

    async def upsert_sku(
        self, sku: str, title: str, category: str | None, status: str, at: datetime
    ) -> None:
        self.s.skus[sku] = SkuInfo(sku, category, status)

    async def upsert_segment(
        self, customer_id: str, segment: str, churn_risk: str, at: datetime
    ) -> None:
        self.s.segments[customer_id] = segment

    async def segment_of(self, customer_id: str) -> str | None:
        return self.s.segments.get(customer_id)

    async def upsert_stock(
        self, sku: str, available: int, on_hand: int, reserved: int, at: datetime
    ) -> None:
        self.s.stock[sku] = available

    async def add_sales(
        self, sku: str, currency: str, day: date, units: int, revenue_minor: int
    ) -> None:
        key = (sku, currency, day)
        self.s.sales[key] = self.s.sales.get(key, 0) + units

    async def stock_for(self, skus: Sequence[str]) -> dict[str, int]:
        return {k: self.s.stock[k] for k in skus if k in self.s.stock}

    async def units_sold(self, skus: Sequence[str], since: date) -> dict[tuple[str, str], int]:
        sold: dict[tuple[str, str], int] = {}
        for (sku, currency, day), units in self.s.sales.items():
            if sku in skus and day >= since:
                sold[(sku, currency)] = sold.get((sku, currency), 0) + units
        return sold


class FakePrices:
    def __init__(self, state: State) -> None:
        self.s = state

    async def price(self, sku: str, currency: str, *, lock: bool = False) -> PriceRecord | None:
        return self.s.prices.get((sku, currency))

    async def prices_for(self, skus: Sequence[str], currency: str) -> dict[str, PriceRecord]:
        return {
            p.sku: p for p in self.s.prices.values() if p.sku in skus and p.currency == currency
        }

    async def all_prices_for(self, skus: Sequence[str]) -> list[PriceRecord]:
        return [p for p in self.s.prices.values() if p.sku in skus]

    async def all_priced_skus(self) -> list[str]:
        return sorted({p.sku for p in self.s.prices.values()})

    async def save_price(self, record: PriceRecord, previous_minor: int) -> None:
        self.s.prices[(record.sku, record.currency)] = record
        t = record.terms
        change = PriceChangeRecord(
            list_price_minor=t.list_price_minor,
            previous_price_minor=previous_minor,
            unit_cost_minor=t.unit_cost_minor,
            commission_rate=t.commission_rate,
            marketing_cost_rate=t.marketing_cost_rate,
            gross_margin=record.gross_margin,
            below_floor=record.below_floor,
            changed_by=record.updated_by,
            reason=record.reason,
            changed_at=record.updated_at,
        )
        self.s.history.append((len(self.s.history) + 1, record.sku, record.currency, change))

    async def history_page(
        self, sku: str, currency: str, limit: int, before_id: int | None
    ) -> list[tuple[int, PriceChangeRecord]]:
        rows = [
            (i, c)
            for i, s, cur, c in reversed(self.s.history)
            if s == sku and cur == currency and (before_id is None or i < before_id)
        ]
        return rows[:limit]

    async def price_points_since(
        self, sku: str, currency: str, since: datetime
    ) -> list[tuple[datetime, int]]:
        rows = [c for _, s, cur, c in self.s.history if s == sku and cur == currency]
        inside = [(c.changed_at, c.list_price_minor) for c in rows if c.changed_at > since]
        before = [(c.changed_at, c.list_price_minor) for c in rows if c.changed_at <= since]
        return inside + before[-1:]

    async def price_page(self, limit: int, after: tuple[str, str] | None) -> list[PriceRecord]:
        keys = sorted(k for k in self.s.prices if after is None or k > after)
        return [self.s.prices[k] for k in keys[:limit]]


class FakePromotions:
    def __init__(self, state: State) -> None:
        self.s = state

    async def insert(self, p: Promotion) -> None:
        self.s.promotions[p.id] = replace(p, used=0)

    async def update(self, p: Promotion) -> None:
        self.s.promotions[p.id] = replace(p, used=self.s.promotions[p.id].used)

    async def get(self, promotion_id: str, *, lock: bool = False) -> Promotion | None:
        return self.s.promotions.get(promotion_id)

    async def coupon_in_use(self, code: str) -> bool:
        return any(p.coupon_code == code and p.active for p in self.s.promotions.values())

    async def record_change(
        self,
        promotion_id: str,
        action: str,
        changes: ChangeDocument,
        by: str,
        reason: str | None,
        at: datetime,
    ) -> None:
        self.s.changes.append((promotion_id, action, changes))

    async def page(
        self, active: bool | None, now: datetime, limit: int, after: tuple[datetime, str] | None
    ) -> list[Promotion]:
        rows = sorted(self.s.promotions.values(), key=lambda p: (p.created_at, p.id), reverse=True)
        return rows[:limit]

    def _live(self, p: Promotion, now: datetime) -> bool:
        return (
            p.active
            and (p.starts_at is None or p.starts_at <= now)
            and (p.ends_at is None or p.ends_at > now)
        )

    async def candidates(
        self,
        now: datetime,
        currency: str,
        skus: Sequence[str],
        categories: Sequence[str],
        codes: Sequence[str],
        *,
        all_coupons: bool = False,
    ) -> list[Promotion]:
        return [
            p
            for p in self.s.promotions.values()
            if self._live(p, now)
            and p.currency in (None, currency)
            and (all_coupons or p.coupon_code is None or p.coupon_code in codes)
            and (
                p.scope.all
                or bool(p.scope.skus & set(skus))
                or bool(p.scope.categories & set(categories))
            )
        ]

    async def by_code(self, codes: Sequence[str]) -> dict[str, Promotion]:
        found: dict[str, Promotion] = {}
        for p in self.s.promotions.values():
            if p.coupon_code in codes and (p.active or p.coupon_code not in found):
                found[p.coupon_code] = p
        return found

    async def customer_uses(self, customer_id: str, promotion_ids: Sequence[str]) -> dict[str, int]:
        return {
            pid: n
            for (pid, cid), n in self.s.customer_uses.items()
            if cid == customer_id and pid in promotion_ids
        }

    async def consume_use(self, promotion_id: str, now: datetime) -> bool:
        p = self.s.promotions.get(promotion_id)
        if p is None or not self._live(p, now):
            return False
        if p.usage_limit is not None and p.used >= p.usage_limit:
            return False
        self.s.promotions[promotion_id] = replace(p, used=p.used + 1)
        return True

    async def consume_customer_use(self, promotion_id: str, customer_id: str, limit: int) -> bool:
        used = self.s.customer_uses.get((promotion_id, customer_id), 0)
        if used >= limit:
            return False
        self.s.customer_uses[(promotion_id, customer_id)] = used + 1
        return True

    async def give_back_use(self, promotion_id: str, customer_id: str | None) -> None:
        p = self.s.promotions[promotion_id]
        self.s.promotions[promotion_id] = replace(p, used=max(p.used - 1, 0))
        if customer_id is not None and self.s.customer_uses.get((promotion_id, customer_id)):
            self.s.customer_uses[(promotion_id, customer_id)] -= 1


class FakeQuotes:
    def __init__(self, state: State) -> None:
        self.s = state

    async def insert(self, q: QuoteRecord) -> None:
        self.s.quotes[q.quote_id] = copy.deepcopy(q)

    async def get(self, quote_id: str, *, lock: bool = False) -> QuoteRecord | None:
        found = self.s.quotes.get(quote_id)
        return copy.deepcopy(found) if found is not None else None

    async def quote_of_order(self, order_id: str) -> str | None:
        return next((q.quote_id for q in self.s.quotes.values() if q.order_id == order_id), None)

    async def bind(self, quote_id: str, order_id: str) -> bool:
        q = self.s.quotes[quote_id]
        if q.order_id is not None:
            return False
        q.order_id = order_id
        return True


class FakeRedemptions:
    def __init__(self, state: State) -> None:
        self.s = state

    async def insert(self, rows: Sequence[RedemptionRecord]) -> None:
        self.s.redemptions.extend(rows)

    async def of_order(self, order_id: str) -> list[RedemptionRecord]:
        rows = [r for r in self.s.redemptions if r.order_id == order_id]
        return sorted(rows, key=lambda r: r.promotion_id)

    def _move(self, order_id: str, states: set[str], to: str) -> list[RedemptionRecord]:
        moved: list[RedemptionRecord] = []
        for i, r in enumerate(self.s.redemptions):
            if r.order_id == order_id and r.state in states:
                self.s.redemptions[i] = replace(r, state=to)
                moved.append(self.s.redemptions[i])
        return sorted(moved, key=lambda r: r.promotion_id)

    async def release(
        self, order_id: str, reason: str, now: datetime, *, only_unconfirmed: bool = False
    ) -> list[RedemptionRecord]:
        states = {REDEEMED} if only_unconfirmed else {REDEEMED, CONFIRMED}
        return self._move(order_id, states, RELEASED)

    async def confirm(self, order_id: str, now: datetime) -> int:
        return len(self._move(order_id, {REDEEMED}, CONFIRMED))

    async def unconfirmed_orders(self, cutoff: datetime, limit: int) -> list[str]:
        return sorted(
            {
                r.order_id
                for r in self.s.redemptions
                if r.state == REDEEMED and r.redeemed_at < cutoff
            }
        )[:limit]


class FakeCompetitors:
    def __init__(self, state: State) -> None:
        self.s = state

    async def save(self, rec: CompetitorPriceRecord, now: datetime) -> bool:
        self.s.competitors[(rec.sku, rec.competitor, rec.currency)] = rec
        return True

    async def lowest(self, skus: Sequence[str], since: datetime) -> dict[tuple[str, str], int]:
        low: dict[tuple[str, str], int] = {}
        for r in self.s.competitors.values():
            if r.sku in skus and r.observed_at >= since:
                key = (r.sku, r.currency)
                low[key] = min(low.get(key, r.price_minor), r.price_minor)
        return low


class FakePricingUnitOfWork(FakeUnitOfWork):
    """Everything in one :class:`State`, copied on begin and put back on rollback."""

    def __init__(self) -> None:
        self.state = State()
        super().__init__()

    def snapshot(self) -> Any:
        return (super().snapshot(), copy.deepcopy(self.state))

    def restore(self, state: Any) -> None:
        base, mine = state
        super().restore(base)
        self.state = mine

    @property
    def catalog(self) -> FakeCatalog:
        return FakeCatalog(self.state)

    @property
    def prices(self) -> FakePrices:
        return FakePrices(self.state)

    @property
    def promotions(self) -> FakePromotions:
        return FakePromotions(self.state)

    @property
    def quotes(self) -> FakeQuotes:
        return FakeQuotes(self.state)

    @property
    def redemptions(self) -> FakeRedemptions:
        return FakeRedemptions(self.state)

    @property
    def competitors(self) -> FakeCompetitors:
        return FakeCompetitors(self.state)


class Clock:
    """A settable clock (the handlers read ``deps.clock``)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def build_bus(
    uow: FakePricingUnitOfWork, clock: Clock, **settings: Any
) -> MessageBus[FakePricingUnitOfWork, Deps]:
    deps = Deps(
        settings=PricingSettings(database_url="postgresql+asyncpg://u:p@h:1/x", **settings),
        clock=clock,
    )
    return MessageBus(service="pricing", uow=lambda: uow, deps=deps, handlers=SPEC.handlers)
