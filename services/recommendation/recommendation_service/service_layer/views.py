"""Read models the handlers return (the entrypoints encode them as JSON or protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..domain.models import ChurnRisk, SegmentName


@dataclass(frozen=True, slots=True)
class Accepted:
    """A behaviour batch was accepted whole: ``accepted`` events will be published."""

    accepted: int


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    sku: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Recommendations:
    items: tuple[RecommendedItem, ...]


@dataclass(frozen=True, slots=True)
class CustomerSegment:
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
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class SegmentCount:
    segment: SegmentName
    customers: int


@dataclass(frozen=True, slots=True)
class SegmentCounts:
    """All nine segments, zero included, in the order of :class:`SegmentName`."""

    counts: tuple[SegmentCount, ...]
    total: int


@dataclass(frozen=True, slots=True)
class Funnel:
    start: datetime
    end: datetime
    category: str | None
    views: int
    add_to_carts: int
    orders: int
    paid: int
    view_to_cart_rate: Decimal | None
    cart_to_order_rate: Decimal | None
    order_to_paid_rate: Decimal | None
    view_to_paid_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class SegmentRefresh:
    """Customers re-scored by one run of the periodic refresh."""

    customers: int


@dataclass(frozen=True, slots=True)
class RebuildStats:
    interactions: int
    pairs: int
    items: int
