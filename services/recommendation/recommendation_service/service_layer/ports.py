"""What the service layer needs from the outside, as protocols: the repositories reached
through the unit of work (``uow.model``, ``uow.catalog``, ``uow.interactions``, ``uow.orders``,
``uow.segments``, ``uow.funnel``), the records they exchange, and the handlers' dependencies.

The SQL implementations are in ``adapters/`` (``SqlRecommendationUnitOfWork``); the in-memory
ones for unit tests in ``tests/unit/fakes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from ecomops_platform.bus import Context
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.models import Increments, InteractionKind, ModelParams, Neighbour
from ..domain.personal import PersonalParams
from .read_cache import ReadCache
from .views import Recommendations

# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A known SKU: its title (the SKU when it has none), category, and whether it may be
    recommended now (known, active, in stock)."""

    sku: str
    title: str
    category: str | None
    recommendable: bool = True


@dataclass(frozen=True, slots=True)
class Interaction:
    """One stored interaction of a visitor (``actor``: ``c:<customer>`` or ``s:<session>``)."""

    event_id: str
    actor: str
    customer_id: str | None
    session_id: str | None
    sku: str
    kind: InteractionKind
    quantity: int
    order_id: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """An order as the order service announced it (placed or paid)."""

    order_id: str
    customer_id: str
    currency: str
    total_minor: int
    at: datetime
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CancelledOrder:
    """What a first cancellation takes back: whose order, when it was paid (None: never)."""

    customer_id: str
    paid_at: datetime | None
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PaidStats:
    """A customer's paid, not cancelled orders in its main currency."""

    currency: str
    frequency: int
    monetary_minor: int
    first_paid_at: datetime
    last_paid_at: datetime


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A customer's stored RFM segment."""

    customer_id: str
    recency_days: int
    frequency: int
    monetary_minor: int
    currency: str
    r_score: int
    f_score: int
    m_score: int
    segment: str
    churn_risk: str
    computed_at: datetime


@dataclass(frozen=True, slots=True, order=True)
class StaleSegment:
    """A segment due for re-scoring; ordered as the refresh walks them (oldest first)."""

    computed_at: datetime
    customer_id: str


@dataclass(frozen=True, slots=True)
class FunnelCounts:
    views: int
    add_to_carts: int
    orders: int
    paid: int


@dataclass(slots=True)
class ModelWeights:
    """A whole model (the rebuild swaps it in at once)."""

    counts: dict[tuple[str, str], float] = field(default_factory=dict)
    pairs: list[tuple[str, str, str, float]] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)


# --- repositories -----------------------------------------------------------------------------


class ModelRepository(Protocol):
    """The co-occurrence model's scaled weights."""

    async def apply(self, inc: Increments) -> None:
        """Add the increments (negative ones subtract)."""
        ...

    async def drop_negligible_purchases(
        self, skus: Sequence[str], eps: float, trend_eps: float
    ) -> None:
        """Forget basket weights and popularity of these SKUs left at about zero."""
        ...

    async def neighbours(
        self, kinds: Sequence[str], skus: Sequence[str], per_item: int = 100
    ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[Neighbour]]]:
        """For each (kind, SKU): its count, and its strongest co-occurring SKUs that may be
        recommended (known, active, in stock)."""
        ...

    async def trending(
        self, *, categories: Sequence[str] | None, limit: int, exclude: Iterable[str] = ()
    ) -> list[tuple[CatalogEntry, float]]:
        """The most popular recommendable SKUs (stored, scaled weights), best first."""
        ...

    async def lock_for_rebuild(self) -> None:
        """One rebuild at a time (held until the end of the transaction)."""
        ...

    async def replace(self, weights: ModelWeights) -> None:
        """Swap the whole model."""
        ...


class CatalogRepository(Protocol):
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
        """Title, category, brand and status; an older update never overwrites a newer."""
        ...

    async def set_stock(self, *, sku: str, available: int, at: datetime) -> None:
        """Availability; an older level never overwrites a newer."""
        ...

    async def entries(self, skus: Iterable[str]) -> dict[str, CatalogEntry]:
        """Known SKUs among these, recommendable or not."""
        ...


class InteractionRepository(Protocol):
    async def add(self, rows: Sequence[Interaction]) -> None: ...

    async def recent_session_skus(self, actor: str, since: datetime, until: datetime) -> list[str]:
        """Distinct SKUs viewed or carted by the actor in the window, most recent first."""
        ...

    async def customer_history(self, customer_id: str, since: datetime) -> list[Interaction]:
        """The customer's latest interactions since ``since``, most recent first (at most
        1000, ``personalised.HISTORY_LIMIT``)."""
        ...

    async def all(self) -> list[Interaction]:
        """Every interaction in time order (the rebuild)."""
        ...

    async def forget_purchases(self, order_id: str) -> None:
        """Drop the purchase interactions of a cancelled order."""
        ...


class OrderRepository(Protocol):
    async def record_placed(self, order: OrderFacts) -> None: ...

    async def record_paid(self, order: OrderFacts) -> bool:
        """Mark the order paid; False when it already was (its effects were applied then)."""
        ...

    async def cancel(self, order_id: str, at: datetime) -> CancelledOrder | None:
        """Mark the order cancelled once; None when unknown or already cancelled."""
        ...

    async def purchased_skus(self, customer_id: str) -> set[str]: ...

    async def paid_stats(self, customer_id: str) -> PaidStats | None: ...


class SegmentRepository(Protocol):
    async def lock_customer(self, customer_id: str) -> None:
        """Serialise recomputations of one customer's segment (until the transaction ends)."""
        ...

    async def get(self, customer_id: str) -> SegmentRecord | None: ...

    async def save(self, record: SegmentRecord) -> None: ...

    async def share_spending_less(
        self, currency: str, monetary_minor: int, customer_id: str
    ) -> float:
        """Share of the other customers of that currency who spent less (0.5 when alone)."""
        ...

    async def claim_stale(
        self, before: datetime, limit: int, after: StaleSegment | None = None
    ) -> list[StaleSegment]:
        """Segments computed before ``before``, oldest first, from the one after ``after``
        on; claimed for this transaction (replicas skip each other's claims)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Customers per stored segment name."""
        ...


class FunnelQueries(Protocol):
    async def counts(
        self, start: datetime, end: datetime, category: str | None
    ) -> FunnelCounts: ...


class RecommendationUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def model(self) -> ModelRepository: ...

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def interactions(self) -> InteractionRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def segments(self) -> SegmentRepository: ...

    @property
    def funnel(self) -> FunnelQueries: ...


# --- dependencies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestionPolicy:
    """Limits of behaviour ingestion."""

    max_batch: int
    max_skew: timedelta
    max_age: timedelta
    #: Ingestion requests per minute per client address for callers without a token.
    anonymous_rate_per_minute: int = 120


@dataclass(frozen=True, slots=True)
class Deps:
    """What handlers need beside the unit of work."""

    params: ModelParams
    ingestion: IngestionPolicy
    #: How personalised answers weigh buying again against discovery.
    personal: PersonalParams = field(default_factory=PersonalParams)
    #: Answers of the serving queries, per process, for a bounded time (0 s: off).
    read_cache: ReadCache[Recommendations] = field(default_factory=lambda: ReadCache(0.0))
    #: Each SKU's merged neighbour list (personalised answers share them), same bound.
    neighbour_cache: ReadCache[list[tuple[str, float]]] = field(
        default_factory=lambda: ReadCache(0.0)
    )
    #: Segments older than this are re-scored by the periodic refresh, ``segment_batch`` at
    #: a time.
    segment_max_age: timedelta = timedelta(hours=1)
    segment_batch: int = 500
    clock: Callable[[], datetime] = utcnow


Ctx = Context[RecommendationUnitOfWork, Deps]
