"""Read models the inventory handlers return (beside the domain's own value objects: ``Sku``,
``Warehouse``, ``LedgerEntry``, ``StockLevel``, ``Reservation``). The entrypoints encode them
as JSON (entrypoints/schemas.py) or protobuf (entrypoints/grpc.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from ..domain.inbound import InboundOrder
from ..domain.models import LedgerEntry, Reservation, Sku, SkuStatus, Warehouse
from ..domain.planning import AbcEntry, Suggestion


@dataclass(frozen=True, slots=True)
class SkuSaved:
    sku: Sku
    created: bool


@dataclass(frozen=True, slots=True)
class WarehouseSaved:
    warehouse: Warehouse
    created: bool


@dataclass(frozen=True, slots=True)
class SkuPage:
    """One page of SKUs by id; ``more`` when another page follows the last item."""

    items: list[Sku]
    more: bool


@dataclass(frozen=True, slots=True)
class InboundPage:
    """One page of inbound orders, newest first; ``more`` when another page follows."""

    items: list[InboundOrder]
    more: bool


@dataclass(frozen=True, slots=True)
class InboundReceipt:
    """An inbound order after a receipt, and the receipt's ledger entry."""

    inbound: InboundOrder
    entry: LedgerEntry


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of ledger entries, newest first, each with its position (the cursor)."""

    items: list[tuple[int, LedgerEntry]]
    more: bool


@dataclass(frozen=True, slots=True)
class Availability:
    sku: str
    available: int
    status: SkuStatus | None  # None: unknown SKU


@dataclass(frozen=True, slots=True)
class Reserved:
    """A reservation, and whether this request created it (False: the same id was held before)."""

    reservation: Reservation
    created: bool


@dataclass(frozen=True, slots=True)
class SuggestionView:
    suggestion: Suggestion
    computed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SuggestionPage:
    items: list[SuggestionView]
    more: bool


@dataclass(frozen=True, slots=True)
class AbcView:
    currency: str
    window_days: int
    a_threshold: Decimal
    b_threshold: Decimal
    items: list[AbcEntry]


@dataclass(frozen=True, slots=True)
class Kpis:
    from_date: date
    to_date: date
    units_sold: int
    average_on_hand: float
    inventory_turnover: float
    stock_out_rate: float
    days_of_cover: float
    excess_stock_units: int
    sku_days: int
    stockout_sku_days: int
