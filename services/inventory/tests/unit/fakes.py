"""In-memory repositories and unit of work of the inventory service, for handler unit tests.

They keep the conditional-write contract of the SQL adapters (a hold, ship or adjustment that
would break the stock invariants answers None / raises, and writes nothing) and roll back with
the unit of work (the whole store is restored to its last committed state).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ecomops_testing.fakes import FakeUnitOfWork
from inventory_service.domain.inbound import InboundOrder, InboundStatus
from inventory_service.domain.models import (
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
    WarehouseStock,
)
from inventory_service.domain.planning import SeriesPlan
from inventory_service.service_layer.ports import (
    DatabaseFailure,
    DemandDay,
    ForecastPosition,
    SeriesKey,
    StockDay,
    SuggestionRow,
)


@dataclass
class StockRow:
    on_hand: int = 0
    reserved: int = 0
    reorder_point: int = 0
    suggested_order_quantity: int = 0

    def level(self) -> RowLevel:
        return RowLevel(
            self.on_hand, self.reserved, self.reorder_point, self.suggested_order_quantity
        )


@dataclass
class Store:
    skus: dict[str, Sku] = field(default_factory=dict)
    warehouses: dict[str, Warehouse] = field(default_factory=dict)
    stock: dict[tuple[str, str], StockRow] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    restocked: set[str] = field(default_factory=set)
    return_restocks: list[tuple[str, str, str, str, int, str]] = field(default_factory=list)
    demand: dict[tuple[str, str, date], int] = field(default_factory=dict)
    revenue: dict[tuple[str, date, str], int] = field(default_factory=dict)
    stock_daily: dict[tuple[str, date], tuple[int, int, bool]] = field(default_factory=dict)
    forecasts: dict[tuple[str, str], tuple[SeriesPlan, datetime]] = field(default_factory=dict)
    inbound: dict[str, InboundOrder] = field(default_factory=dict)

    def on_order(self, sku: str, warehouse: str) -> int:
        return sum(
            o.on_order for o in self.inbound.values() if (o.sku, o.warehouse) == (sku, warehouse)
        )


class _Repo:
    def __init__(self, store: Store) -> None:
        self.s = store


class FakeSkus(_Repo):
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
        old = self.s.skus.get(sku)
        saved = Sku(
            sku,
            title,
            category,
            brand,
            dict(attributes),
            status,
            lead_time_days,
            old.created_at if old else now,
            now,
        )
        self.s.skus[sku] = saved
        return saved, old is None

    async def get(self, sku: str) -> Sku | None:
        return self.s.skus.get(sku)

    async def get_many(self, skus: Sequence[str]) -> dict[str, Sku]:
        return {k: self.s.skus[k] for k in skus if k in self.s.skus}

    async def list(
        self, *, category: str | None, status: SkuStatus | None, after: str | None, limit: int
    ) -> list[Sku]:
        found = [
            x
            for k, x in sorted(self.s.skus.items())
            if (not category or x.category == category)
            and (not status or x.status is status)
            and (after is None or k > after)
        ]
        return found[:limit]


class FakeWarehouses(_Repo):
    async def upsert(
        self, code: str, *, name: str, region: str | None, priority: int, now: datetime
    ) -> tuple[Warehouse, bool]:
        created = code not in self.s.warehouses
        self.s.warehouses[code] = Warehouse(code, name, region, priority)
        return self.s.warehouses[code], created

    async def get(self, code: str) -> Warehouse | None:
        return self.s.warehouses.get(code)

    async def list(self) -> list[Warehouse]:
        return sorted(self.s.warehouses.values(), key=lambda w: (w.priority, w.code))

    async def preference(self) -> dict[str, tuple[int, str]]:
        return {w.code: (w.priority, w.code) for w in self.s.warehouses.values()}

    async def home_of(self, sku: str) -> str | None:
        stocked = [self.s.warehouses[wh] for (k, wh) in self.s.stock if k == sku]
        pool = stocked or list(self.s.warehouses.values())
        return min(pool, key=lambda w: (w.priority, w.code)).code if pool else None


class FakeStock(_Repo):
    async def candidates(self, skus: Sequence[str]) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = {k: [] for k in skus}
        for (sku, wh), row in sorted(self.s.stock.items()):
            if sku in out and wh in self.s.warehouses:
                w = self.s.warehouses[wh]
                out[sku].append(Candidate(wh, row.on_hand - row.reserved, w.region, w.priority))
        return out

    async def skus_with_candidates(
        self, skus: Sequence[str]
    ) -> tuple[dict[str, Sku], dict[str, list[Candidate]]]:
        return {k: self.s.skus[k] for k in skus if k in self.s.skus}, await self.candidates(skus)

    async def hold_and_allocate(
        self, reservation_id: str, alloc: Allocation, now: datetime
    ) -> tuple[RowLevel, StockLevel] | None:
        row = self.s.stock.get((alloc.sku, alloc.warehouse))
        if row is None or row.on_hand - row.reserved < alloc.quantity:
            return None
        row.reserved += alloc.quantity
        r = self.s.reservations[reservation_id]
        merged = {(a.sku, a.warehouse): a.quantity for a in r.allocations}
        key = (alloc.sku, alloc.warehouse)
        merged[key] = merged.get(key, 0) + alloc.quantity
        r.allocations = [Allocation(s, w, q) for (s, w), q in sorted(merged.items())]
        return row.level(), (await self.levels([alloc.sku]))[alloc.sku]

    async def unhold(self, alloc: Allocation, now: datetime) -> None:
        row = self.s.stock[(alloc.sku, alloc.warehouse)]
        if row.reserved < alloc.quantity:
            raise RuntimeError("invariant broken")
        row.reserved -= alloc.quantity

    async def ship(self, alloc: Allocation, now: datetime) -> int:
        row = self.s.stock[(alloc.sku, alloc.warehouse)]
        if row.reserved < alloc.quantity:
            raise RuntimeError("invariant broken")
        row.reserved -= alloc.quantity
        row.on_hand -= alloc.quantity
        return row.on_hand

    async def adjust(self, sku: str, warehouse: str, delta: int, now: datetime) -> RowLevel | None:
        row = self.s.stock.get((sku, warehouse))
        if delta > 0:
            row = self.s.stock.setdefault((sku, warehouse), StockRow())
        elif row is None or row.on_hand + delta < row.reserved:
            return None
        row.on_hand += delta
        return row.level()

    async def row(self, sku: str, warehouse: str) -> tuple[int, int]:
        row = self.s.stock.get((sku, warehouse))
        return (row.on_hand, row.reserved) if row else (0, 0)

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        out = {k: StockLevel(k, []) for k in skus}
        for (sku, wh), row in sorted(self.s.stock.items()):
            if sku in out:
                out[sku].warehouses.append(WarehouseStock(wh, row.on_hand, row.reserved))
        return out

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
    ) -> LedgerEntry:
        entry = LedgerEntry(
            f"e{len(self.s.ledger) + 1}",
            sku,
            warehouse,
            delta,
            reason,
            reference,
            on_hand_after,
            now,
        )
        self.s.ledger.append(entry)
        return entry

    async def ledger(
        self, sku: str, before_id: int | None, limit: int
    ) -> list[tuple[int, LedgerEntry]]:
        rows = [(i + 1, e) for i, e in enumerate(self.s.ledger) if e.sku == sku]
        rows = [r for r in reversed(rows) if before_id is None or r[0] < before_id]
        return rows[:limit]


class FakeReservations(_Repo):
    async def add(self, reservation: Reservation) -> bool:
        if reservation.reservation_id in self.s.reservations:
            return False
        stored = copy.deepcopy(reservation)
        stored.allocations = []
        self.s.reservations[reservation.reservation_id] = stored
        return True

    async def get(self, reservation_id: str) -> Reservation | None:
        return copy.deepcopy(self.s.reservations.get(reservation_id))

    async def close(
        self,
        reservation_id: str,
        status: ReservationStatus,
        now: datetime,
        *,
        release_reason: str | None = None,
        require_unexpired: bool = False,
    ) -> Reservation | None:
        r = self.s.reservations.get(reservation_id)
        if r is None or r.status is not ReservationStatus.HELD:
            return None
        if require_unexpired and r.expires_at <= now:
            return None
        r.status, r.closed_at, r.release_reason = status, now, release_reason
        return copy.deepcopy(r)

    async def mark_restocked(self, reservation_id: str, now: datetime) -> bool:
        r = self.s.reservations.get(reservation_id)
        if r is None or r.status is not ReservationStatus.COMMITTED:
            return False
        if reservation_id in self.s.restocked:
            return False
        self.s.restocked.add(reservation_id)
        return True

    async def lock_expired(self, now: datetime, limit: int) -> list[str]:
        due = [
            r
            for r in self.s.reservations.values()
            if r.status is ReservationStatus.HELD and r.expires_at <= now
        ]
        return [r.reservation_id for r in sorted(due, key=lambda r: r.expires_at)][:limit]

    async def lock_status(self, reservation_id: str) -> str | None:
        r = self.s.reservations.get(reservation_id)
        return r.status.value if r else None

    async def allocations_of(self, reservation_id: str) -> list[Allocation]:
        r = self.s.reservations.get(reservation_id)
        return list(r.allocations) if r else []


class FakeReturns(_Repo):
    async def restocked(self, return_id: str) -> bool:
        return any(r[0] == return_id for r in self.s.return_restocks)

    async def returned_by_order(self, order_id: str) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for _, order, sku, wh, qty, _ in self.s.return_restocks:
            if order == order_id:
                out[(sku, wh)] = out.get((sku, wh), 0) + qty
        return out

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
    ) -> None:
        self.s.return_restocks.append((return_id, order_id, sku, warehouse, quantity, source))


class FakePlanning(_Repo):
    async def add_demand(self, allocations: Sequence[Allocation], day: date) -> None:
        for a in allocations:
            key = (a.sku, a.warehouse, day)
            self.s.demand[key] = self.s.demand.get(key, 0) + a.quantity

    async def add_revenue(
        self, lines: Sequence[tuple[str, int, int]], currency: str, day: date
    ) -> None:
        for sku, _, revenue in lines:
            key = (sku, day, currency)
            self.s.revenue[key] = self.s.revenue.get(key, 0) + revenue

    async def record_level(self, level: StockLevel, day: date, *, only_stockout: bool) -> None:
        out = level.available <= 0
        if only_stockout and not out:
            return
        before = self.s.stock_daily.get((level.sku, day), (0, 0, False))[2]
        self.s.stock_daily[(level.sku, day)] = (level.on_hand, level.available, before or out)

    async def snapshot_levels(self, day: date) -> int:
        active = [k for k, x in self.s.skus.items() if x.status is SkuStatus.ACTIVE]
        levels = await FakeStock(self.s).levels(active)
        n = 0
        for level in levels.values():
            if level.warehouses:
                await self.record_level(level, day, only_stockout=False)
                n += 1
        return n

    async def last_forecast_at(self) -> datetime | None:
        return max((at for _, at in self.s.forecasts.values()), default=None)

    async def active_series(self) -> list[SeriesKey]:
        return [
            SeriesKey(sku, wh, self.s.skus[sku].lead_time_days)
            for (sku, wh) in sorted(self.s.stock)
            if sku in self.s.skus and self.s.skus[sku].status is SkuStatus.ACTIVE
        ]

    async def demand_since(self, since: date) -> list[DemandDay]:
        return [DemandDay(s, w, d, u) for (s, w, d), u in self.s.demand.items() if d >= since]

    async def positions(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        return {
            k: (r.on_hand, r.on_hand - r.reserved, self.s.on_order(*k))
            for k, r in self.s.stock.items()
        }

    async def save_forecast(self, plan: SeriesPlan, now: datetime) -> None:
        self.s.forecasts[(plan.sku, plan.warehouse)] = (plan, now)

    async def set_thresholds(
        self, sku: str, warehouse: str, reorder_point: int, suggested_order_quantity: int
    ) -> None:
        row = self.s.stock.get((sku, warehouse))
        if row is not None:
            row.reorder_point, row.suggested_order_quantity = (
                reorder_point,
                suggested_order_quantity,
            )

    async def suggestion_rows(
        self, *, warehouse: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SuggestionRow]:
        out = []
        for (sku, wh), row in sorted(self.s.stock.items()):
            info = self.s.skus.get(sku)
            if info is None or info.status is not SkuStatus.ACTIVE:
                continue
            if (warehouse and wh != warehouse) or (after is not None and (sku, wh) <= after):
                continue
            cached = self.s.forecasts.get((sku, wh))
            p = cached[0] if cached else None
            out.append(
                SuggestionRow(
                    sku,
                    wh,
                    row.on_hand,
                    row.reserved,
                    info.lead_time_days,
                    p.daily_demand if p else None,
                    p.lead_time_demand if p else None,
                    p.sigma_daily if p else None,
                    p.lead_time_days if p else None,
                    p.method if p else None,
                    p.history_days if p else None,
                    cached[1] if cached else None,
                    self.s.on_order(sku, wh),
                )
            )
        return out[:limit]

    async def revenue_by_sku(self, currency: str, since: date) -> dict[str, int]:
        out: dict[str, int] = {}
        for (sku, day, cur), revenue in self.s.revenue.items():
            if cur == currency and day >= since:
                out[sku] = out.get(sku, 0) + revenue
        return out

    async def active_skus(self) -> list[str]:
        return [k for k, x in self.s.skus.items() if x.status is SkuStatus.ACTIVE]

    async def units_sold(self, from_date: date, to_date: date) -> int:
        return sum(u for (_, _, d), u in self.s.demand.items() if from_date <= d <= to_date)

    async def stock_days(self, from_date: date, to_date: date) -> list[StockDay]:
        days: dict[date, list[tuple[int, int, bool]]] = {}
        for (_, day), values in self.s.stock_daily.items():
            if from_date <= day <= to_date:
                days.setdefault(day, []).append(values)
        return [
            StockDay(d, float(sum(v[0] for v in vs)), len(vs), sum(1 for v in vs if v[2]))
            for d, vs in sorted(days.items())
        ]

    async def current_totals(self) -> tuple[int, int]:
        rows = self.s.stock.values()
        return sum(r.on_hand for r in rows), sum(r.on_hand - r.reserved for r in rows)

    async def forecast_positions(self) -> list[ForecastPosition]:
        out = []
        for key, (p, _) in sorted(self.s.forecasts.items()):
            row = self.s.stock.get(key)
            if row is not None:
                out.append(
                    ForecastPosition(
                        p.sku,
                        p.warehouse,
                        row.on_hand,
                        row.reserved,
                        p.daily_demand,
                        p.lead_time_demand,
                        p.sigma_daily,
                        p.lead_time_days,
                    )
                )
        return out


class FakeInbound(_Repo):
    async def add(self, order: InboundOrder) -> None:
        self.s.inbound[order.inbound_id] = order

    async def get(self, inbound_id: str, *, for_update: bool = False) -> InboundOrder | None:
        return self.s.inbound.get(inbound_id)

    async def save(self, order: InboundOrder) -> None:
        self.s.inbound[order.inbound_id] = order

    async def list(
        self,
        *,
        sku: str | None,
        warehouse: str | None,
        status: InboundStatus | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[InboundOrder]:
        found = [
            o
            for o in self.s.inbound.values()
            if (sku is None or o.sku == sku)
            and (warehouse is None or o.warehouse == warehouse)
            and (status is None or o.status is status)
            and (before is None or (o.created_at, o.inbound_id) < before)
        ]
        found.sort(key=lambda o: (o.created_at, o.inbound_id), reverse=True)
        return found[:limit]


class FakeInventoryUnitOfWork(FakeUnitOfWork):
    """One store shared by every unit of work a test's bus creates; rolled back with it."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        super().__init__()
        self.skus = FakeSkus(self.store)
        self.warehouses = FakeWarehouses(self.store)
        self.stock = FakeStock(self.store)
        self.reservations = FakeReservations(self.store)
        self.returns = FakeReturns(self.store)
        self.planning = FakePlanning(self.store)
        self.inbound = FakeInbound(self.store)

    def snapshot(self) -> Any:
        return super().snapshot(), copy.deepcopy(self.store.__dict__)

    def restore(self, state: Any) -> None:
        platform, store = state
        super().restore(platform)
        self.store.__dict__.update(copy.deepcopy(store))

    def failure(self, exc: BaseException) -> DatabaseFailure | None:
        return None
