"""What the pricing handlers depend on: repositories (one per aggregate) reached through the
unit of work, and the service's dependencies. The SQL implementations are in the adapters package;
the in-memory ones for unit tests in ``tests/unit/fakes.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from ecomops_platform.bus import Context
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.models import Promotion
from ..domain.records import (
    CompetitorPriceRecord,
    PriceChangeRecord,
    PriceRecord,
    QuoteRecord,
    RedemptionRecord,
    SkuInfo,
)
from ..settings import PricingSettings

#: Promotion-change records are JSON documents (the audit trail of a promotion).
ChangeDocument = dict[str, object]


class CatalogRepository(Protocol):
    """The copies of other services' facts: SKUs, stock, customer segments, daily sales."""

    async def skus(self, skus: Sequence[str]) -> dict[str, SkuInfo]: ...

    async def skus_in_categories(self, categories: Sequence[str]) -> list[str]: ...

    async def upsert_sku(
        self, sku: str, title: str, category: str | None, status: str, at: datetime
    ) -> None: ...

    async def upsert_segment(
        self, customer_id: str, segment: str, churn_risk: str, at: datetime
    ) -> None: ...

    async def segment_of(self, customer_id: str) -> str | None: ...

    async def upsert_stock(
        self, sku: str, available: int, on_hand: int, reserved: int, at: datetime
    ) -> None: ...

    async def add_sales(
        self, sku: str, currency: str, day: date, units: int, revenue_minor: int
    ) -> None: ...

    async def stock_for(self, skus: Sequence[str]) -> dict[str, int]: ...

    async def units_sold(self, skus: Sequence[str], since: date) -> dict[tuple[str, str], int]: ...


class PriceRepository(Protocol):
    async def price(self, sku: str, currency: str, *, lock: bool = False) -> PriceRecord | None: ...

    async def prices_for(self, skus: Sequence[str], currency: str) -> dict[str, PriceRecord]: ...

    async def all_prices_for(self, skus: Sequence[str]) -> list[PriceRecord]: ...

    async def all_priced_skus(self) -> list[str]: ...

    async def save_price(self, record: PriceRecord, previous_minor: int) -> None:
        """Upsert the price and append its history row."""
        ...

    async def history_page(
        self, sku: str, currency: str, limit: int, before_id: int | None
    ) -> list[tuple[int, PriceChangeRecord]]: ...

    async def price_points_since(
        self, sku: str, currency: str, since: datetime
    ) -> list[tuple[datetime, int]]: ...

    async def price_page(self, limit: int, after: tuple[str, str] | None) -> list[PriceRecord]: ...


class PromotionRepository(Protocol):
    async def insert(self, p: Promotion) -> None: ...

    async def update(self, p: Promotion) -> None: ...

    async def get(self, promotion_id: str, *, lock: bool = False) -> Promotion | None: ...

    async def coupon_in_use(self, code: str) -> bool: ...

    async def record_change(
        self,
        promotion_id: str,
        action: str,
        changes: ChangeDocument,
        by: str,
        reason: str | None,
        at: datetime,
    ) -> None: ...

    async def page(
        self, active: bool | None, now: datetime, limit: int, after: tuple[datetime, str] | None
    ) -> list[Promotion]: ...

    async def candidates(
        self,
        now: datetime,
        currency: str,
        skus: Sequence[str],
        categories: Sequence[str],
        codes: Sequence[str],
        *,
        all_coupons: bool = False,
    ) -> list[Promotion]: ...

    async def by_code(self, codes: Sequence[str]) -> dict[str, Promotion]: ...

    async def customer_uses(
        self, customer_id: str, promotion_ids: Sequence[str]
    ) -> dict[str, int]: ...

    async def consume_use(self, promotion_id: str, now: datetime) -> bool:
        """Take one use while live and under the limit, in one conditional write."""
        ...

    async def consume_customer_use(
        self, promotion_id: str, customer_id: str, limit: int
    ) -> bool: ...

    async def give_back_use(self, promotion_id: str, customer_id: str | None) -> None: ...


class QuoteRepository(Protocol):
    async def insert(self, q: QuoteRecord) -> None: ...

    async def get(self, quote_id: str, *, lock: bool = False) -> QuoteRecord | None: ...

    async def quote_of_order(self, order_id: str) -> str | None: ...

    async def bind(self, quote_id: str, order_id: str) -> bool:
        """Bind the quote to an order unless it is bound already (conditional write)."""
        ...


class RedemptionRepository(Protocol):
    async def insert(self, rows: Sequence[RedemptionRecord]) -> None: ...

    async def of_order(self, order_id: str) -> list[RedemptionRecord]: ...

    async def release(
        self, order_id: str, reason: str, now: datetime, *, only_unconfirmed: bool = False
    ) -> list[RedemptionRecord]:
        """Released rows only (a conditional transition: each use is given back once)."""
        ...

    async def confirm(self, order_id: str, now: datetime) -> int: ...

    async def unconfirmed_orders(self, cutoff: datetime, limit: int) -> list[str]: ...


class CompetitorPriceRepository(Protocol):
    async def save(self, rec: CompetitorPriceRecord, now: datetime) -> bool: ...

    async def lowest(self, skus: Sequence[str], since: datetime) -> dict[tuple[str, str], int]: ...


class PricingUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def prices(self) -> PriceRepository: ...

    @property
    def promotions(self) -> PromotionRepository: ...

    @property
    def quotes(self) -> QuoteRepository: ...

    @property
    def redemptions(self) -> RedemptionRepository: ...

    @property
    def competitors(self) -> CompetitorPriceRepository: ...


@dataclass(frozen=True, slots=True)
class Deps:
    """What pricing handlers need beside the unit of work."""

    settings: PricingSettings
    clock: Callable[[], datetime] = field(default=utcnow)


Ctx = Context[PricingUnitOfWork, Deps]
