"""What the inventory service layer depends on: repositories reached through the unit of work
(``uow.skus``, ``uow.stock``, ``uow.reservations`` …), the unit of work itself, and ``Deps``.

The SQL implementations are in ``adapters/`` (``SqlInventoryUnitOfWork``); unit tests use the
in-memory fakes of ``tests/unit/fakes.py``. Every stock change is one conditional write in the
adapter: a method that "holds", "ships" or "adjusts" answers None when the condition did not
hold, never reads then writes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from ecomops_platform.bus import Context
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.inbound import InboundOrder, InboundStatus
from ..domain.models import (
    Allocation,
    Candidate,
    LedgerEntry,
    Reservation,
    ReservationStatus,
    RowLevel,
    Sku,
    SkuStatus,
    StockLevel,
    Warehouse,
)
from ..domain.planning import SeriesPlan
from ..settings import InventorySettings

# --- read rows of the planning queries -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A stocked (SKU, warehouse) of an active SKU, with the SKU's own lead time."""

    sku: str
    warehouse: str
    lead_time_days: int | None


@dataclass(frozen=True, slots=True)
class DemandDay:
    sku: str
    warehouse: str
    day: date
    units: int


@dataclass(frozen=True, slots=True)
class SuggestionRow:
    """A stock row of an active SKU with its cached forecast (None fields: not forecast yet)."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    sku_lead_time_days: int | None
    daily_demand: float | None
    lead_time_demand: float | None
    sigma_daily: float | None
    lead_time_days: int | None
    method: str | None
    history_days: int | None
    computed_at: datetime | None
    on_order: int = 0


@dataclass(frozen=True, slots=True)
class ForecastPosition:
    """A stock row that has a forecast (the excess-stock KPI)."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    daily_demand: float
    lead_time_demand: float
    sigma_daily: float
    lead_time_days: int


@dataclass(frozen=True, slots=True)
class StockDay:
    """One day of the daily stock snapshots: on-hand summed over SKUs, SKU rows, stock-outs."""

    day: date
    on_hand: float
    sku_days: int
    stockout_sku_days: int


# --- repositories ------------------------------------------------------------------------------


class SkuRepository(Protocol):
    async def upsert(
        self,
        sku: str,
        *,
        title: str,
        category: str,
        brand: str | None,
        attributes: dict[str, str],
        status: SkuStatus,
        lead_time_days: int | None,
        now: datetime,
    ) -> tuple[Sku, bool]:
        """Insert or update; True when created."""
        ...

    async def get(self, sku: str) -> Sku | None: ...

    async def get_many(self, skus: Sequence[str]) -> dict[str, Sku]: ...

    async def list(
        self, *, category: str | None, status: SkuStatus | None, after: str | None, limit: int
    ) -> list[Sku]: ...


class WarehouseRepository(Protocol):
    async def upsert(
        self, code: str, *, name: str, region: str | None, priority: int, now: datetime
    ) -> tuple[Warehouse, bool]: ...

    async def get(self, code: str) -> Warehouse | None: ...

    async def list(self) -> list[Warehouse]:
        """By priority, then code."""
        ...

    async def preference(self) -> dict[str, tuple[int, str]]:
        """(priority, code) of every warehouse: the sort key of "highest priority first"."""
        ...

    async def home_of(self, sku: str) -> str | None:
        """The SKU's highest-priority warehouse among those stocking it, else among all."""
        ...


class StockRepository(Protocol):
    """Stock rows (conditional writes) and the append-only ledger."""

    async def candidates(self, skus: Sequence[str]) -> dict[str, list[Candidate]]: ...

    async def skus_with_candidates(
        self, skus: Sequence[str]
    ) -> tuple[dict[str, Sku], dict[str, list[Candidate]]]:
        """The SKUs and where they are stocked, in one round trip (the reservation hot path)."""
        ...

    async def hold_and_allocate(
        self, reservation_id: str, alloc: Allocation, now: datetime
    ) -> tuple[RowLevel, StockLevel] | None:
        """Reserve the units if (and only if) that many are available, record the allocation,
        and read the SKU's totals; None when the units were not available."""
        ...

    async def unhold(self, alloc: Allocation, now: datetime) -> None: ...

    async def ship(self, alloc: Allocation, now: datetime) -> int:
        """Held units leave: on-hand and reserved both drop. Returns on-hand after."""
        ...

    async def adjust(self, sku: str, warehouse: str, delta: int, now: datetime) -> RowLevel | None:
        """Change on-hand unless it would drop below the reserved units (None: refused)."""
        ...

    async def row(self, sku: str, warehouse: str) -> tuple[int, int]:
        """(on_hand, reserved) of one row; (0, 0) when there is none."""
        ...

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]: ...

    async def add_ledger_entry(
        self,
        *,
        sku: str,
        warehouse: str,
        delta: int,
        reason: str,
        reference: str | None,
        on_hand_after: int,
        now: datetime,
    ) -> LedgerEntry: ...

    async def ledger(
        self, sku: str, before_id: int | None, limit: int
    ) -> list[tuple[int, LedgerEntry]]:
        """Newest first, with each entry's position (the cursor)."""
        ...


class ReservationRepository(Protocol):
    async def add(self, reservation: Reservation) -> bool:
        """Insert a held reservation; False when the id exists."""
        ...

    async def get(self, reservation_id: str) -> Reservation | None: ...

    async def close(
        self,
        reservation_id: str,
        status: ReservationStatus,
        now: datetime,
        *,
        release_reason: str | None = None,
        require_unexpired: bool = False,
    ) -> Reservation | None:
        """Move a held reservation to ``status``; None when it was not held (or expired)."""
        ...

    async def mark_restocked(self, reservation_id: str, now: datetime) -> bool: ...

    async def lock_expired(self, now: datetime, limit: int) -> list[str]:
        """Held reservations past their expiry, locked; rows other replicas hold are skipped."""
        ...

    async def lock_status(self, reservation_id: str) -> str | None:
        """The status, its row locked: returns of one order are applied one at a time."""
        ...

    async def allocations_of(self, reservation_id: str) -> list[Allocation]: ...


class ReturnRepository(Protocol):
    async def restocked(self, return_id: str) -> bool: ...

    async def returned_by_order(self, order_id: str) -> dict[tuple[str, str], int]: ...

    async def add_restock(
        self,
        *,
        return_id: str,
        order_id: str,
        sku: str,
        warehouse: str,
        quantity: int,
        source: str,
        now: datetime,
    ) -> None: ...


class InboundRepository(Protocol):
    """Inbound orders (stock on its way to a warehouse)."""

    async def add(self, order: InboundOrder) -> None: ...

    async def get(self, inbound_id: str, *, for_update: bool = False) -> InboundOrder | None: ...

    async def save(self, order: InboundOrder) -> None:
        """Write the received quantity, status and time of an existing order."""
        ...

    async def list(
        self,
        *,
        sku: str | None,
        warehouse: str | None,
        status: InboundStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[InboundOrder]:
        """Newest first (created_at, inbound_id descending), after the ``before`` cursor."""
        ...


class PlanningRepository(Protocol):
    """Planning data: demand, revenue and daily stock snapshots; forecasts; KPI reads."""

    async def add_demand(self, allocations: Sequence[Allocation], day: date) -> None: ...

    async def add_revenue(
        self, lines: Sequence[tuple[str, int, int]], currency: str, day: date
    ) -> None: ...

    async def record_level(self, level: StockLevel, day: date, *, only_stockout: bool) -> None: ...

    async def snapshot_levels(self, day: date) -> int: ...

    async def last_forecast_at(self) -> datetime | None: ...

    async def active_series(self) -> list[SeriesKey]: ...

    async def demand_since(self, since: date) -> list[DemandDay]: ...

    async def positions(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """(on_hand, available, on_order) of every stock row."""
        ...

    async def save_forecast(self, plan: SeriesPlan, now: datetime) -> None: ...

    async def set_thresholds(
        self, sku: str, warehouse: str, reorder_point: int, suggested_order_quantity: int
    ) -> None: ...

    async def suggestion_rows(
        self, *, warehouse: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SuggestionRow]: ...

    async def revenue_by_sku(self, currency: str, since: date) -> dict[str, int]: ...

    async def active_skus(self) -> list[str]: ...

    async def units_sold(self, from_date: date, to_date: date) -> int: ...

    async def stock_days(self, from_date: date, to_date: date) -> list[StockDay]: ...

    async def current_totals(self) -> tuple[int, int]:
        """(on_hand, available) over all stock rows."""
        ...

    async def forecast_positions(self) -> list[ForecastPosition]: ...


# --- the unit of work ----------------------------------------------------------------------------


class DatabaseFailure(enum.Enum):
    """What a database error means to a handler that retries (the reservation path)."""

    DEADLOCK = "deadlock"  # deadlock or serialization failure: rolled back, run it again
    CONNECTION = "connection"  # the connection failed: the outcome is unknown
    SATURATED = "saturated"  # no pooled connection became free in time


class InventoryUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def skus(self) -> SkuRepository: ...

    @property
    def warehouses(self) -> WarehouseRepository: ...

    @property
    def stock(self) -> StockRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def returns(self) -> ReturnRepository: ...

    @property
    def planning(self) -> PlanningRepository: ...

    @property
    def inbound(self) -> InboundRepository: ...

    def failure(self, exc: BaseException) -> DatabaseFailure | None:
        """What ``exc`` means when it is a database failure; None for anything else."""
        ...


@dataclass(frozen=True, slots=True)
class Deps:
    """What handlers need beside the unit of work."""

    settings: InventorySettings
    clock: Callable[[], datetime] = field(default=utcnow)


Ctx = Context[InventoryUnitOfWork, Deps]
