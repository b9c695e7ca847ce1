"""REST request and response models (separate from tables and domain objects)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt

from ecomops_platform.strict import INT32_MAX, StrictRequestModel

from ..domain import models as m
from ..domain.inbound import InboundOrder
from ..domain.planning import AbcEntry, Suggestion
from ..service_layer.views import Availability, Kpis


class RequestModel(StrictRequestModel):
    """Request bodies are strict: JSON types as written (no "1" or true for 1)."""


AttributeName = Annotated[str, Field(min_length=1, max_length=m.MAX_ATTRIBUTE_KEY)]
AttributeValue = Annotated[str, Field(max_length=m.MAX_ATTRIBUTE_VALUE)]


class SkuIn(RequestModel):
    title: str = Field(min_length=1, max_length=300)
    category: str = Field(min_length=1, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None,
        max_length=m.MAX_ATTRIBUTES,
        description="Free attributes: at most 50 names of 1..64 characters, values of at most "
        "500 characters",
    )
    status: Literal["active", "discontinued"]
    lead_time_days: StrictInt | None = Field(default=None, ge=0, le=365)


class SkuOut(BaseModel):
    sku: str
    title: str
    category: str
    brand: str | None
    attributes: dict[str, str]
    status: Literal["active", "discontinued"]
    lead_time_days: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: m.Sku) -> SkuOut:
        return cls(
            sku=s.sku,
            title=s.title,
            category=s.category,
            brand=s.brand,
            attributes=s.attributes,
            status=s.status.value,
            lead_time_days=s.lead_time_days,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class SkuPage(BaseModel):
    items: list[SkuOut]
    next_cursor: str | None


class WarehouseIn(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    region: str | None = Field(default=None, max_length=64)
    priority: StrictInt | None = Field(default=None, ge=0, le=m.MAX_PRIORITY)


class WarehouseOut(BaseModel):
    code: str
    name: str
    region: str | None
    priority: int

    @classmethod
    def of(cls, w: m.Warehouse) -> WarehouseOut:
        return cls(code=w.code, name=w.name, region=w.region, priority=w.priority)


class WarehouseList(BaseModel):
    items: list[WarehouseOut]


class AdjustmentIn(RequestModel):
    sku: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(min_length=1, max_length=64)
    delta: StrictInt = Field(ge=-m.MAX_ADJUSTMENT, le=m.MAX_ADJUSTMENT)
    reason: Literal["receipt", "count", "damage", "return", "correction"]
    reference: str | None = Field(default=None, max_length=200)


class LedgerEntryOut(BaseModel):
    entry_id: str
    sku: str
    warehouse: str
    delta: int
    reason: str
    reference: str | None
    on_hand_after: int
    occurred_at: datetime

    @classmethod
    def of(cls, e: m.LedgerEntry) -> LedgerEntryOut:
        return cls(
            entry_id=e.entry_id,
            sku=e.sku,
            warehouse=e.warehouse,
            delta=e.delta,
            reason=e.reason,
            reference=e.reference,
            on_hand_after=e.on_hand_after,
            occurred_at=e.occurred_at,
        )


class LedgerPage(BaseModel):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class WarehouseStockOut(BaseModel):
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockOut(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    warehouses: list[WarehouseStockOut]

    @classmethod
    def of(cls, level: m.StockLevel) -> StockOut:
        return cls(
            sku=level.sku,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
            warehouses=[
                WarehouseStockOut(
                    warehouse=w.warehouse,
                    on_hand=w.on_hand,
                    reserved=w.reserved,
                    available=w.available,
                )
                for w in level.warehouses
            ],
        )


class AvailabilityIn(RequestModel):
    skus: list[str] = Field(min_length=1, max_length=200)


class AvailabilityItem(BaseModel):
    sku: str
    available: int
    status: Literal["active", "discontinued", "unknown"]

    @classmethod
    def of(cls, a: Availability) -> AvailabilityItem:
        return cls(
            sku=a.sku, available=a.available, status=a.status.value if a.status else "unknown"
        )


class AvailabilityOut(BaseModel):
    items: list[AvailabilityItem]


class LineIn(RequestModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(
        le=m.MAX_LINE_QUANTITY, description="Units, 1..1000000 (0 or less: 422 naming the SKU)"
    )


class ReservationIn(RequestModel):
    reservation_id: str = Field(min_length=1, max_length=128)
    lines: list[LineIn] = Field(min_length=1)
    ttl_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Hold time; at most INVENTORY_RESERVATION_MAX_TTL_SECONDS (default 3600)",
    )
    region: str | None = Field(default=None, max_length=64)


class LineOut(BaseModel):
    sku: str
    quantity: int


class AllocationOut(BaseModel):
    sku: str
    warehouse: str
    quantity: int


class ReservationOut(BaseModel):
    reservation_id: str
    status: Literal["held", "committed", "released", "expired"]
    expires_at: datetime
    allocations: list[AllocationOut]
    lines: list[LineOut]
    region: str | None
    created_at: datetime | None
    closed_at: datetime | None
    release_reason: str | None

    @classmethod
    def of(cls, r: m.Reservation) -> ReservationOut:
        return cls(
            reservation_id=r.reservation_id,
            status=r.status.value,
            expires_at=r.expires_at,
            allocations=[
                AllocationOut(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity)
                for a in r.allocations
            ],
            lines=[LineOut(sku=ln.sku, quantity=ln.quantity) for ln in r.lines],
            region=r.region,
            created_at=r.created_at,
            closed_at=r.closed_at,
            release_reason=r.release_reason,
        )


class SuggestionOut(BaseModel):
    sku: str
    warehouse: str
    forecast_daily_demand: float
    safety_stock: int
    reorder_point: int
    suggested_order_quantity: int
    days_of_cover: float | None = Field(description="null: no demand (infinite cover)")
    abc_class: Literal["A", "B", "C"] | None
    replenishment_mode: str
    reason: str
    on_hand: int
    available: int
    lead_time_days: int
    on_order: int = Field(
        description="Units on open inbound orders, not yet received: the reorder decision "
        "compares available + on_order with the reorder point"
    )
    computed_at: datetime | None

    @classmethod
    def of(cls, s: Suggestion, computed_at: datetime | None) -> SuggestionOut:
        return cls(
            sku=s.sku,
            warehouse=s.warehouse,
            forecast_daily_demand=s.forecast_daily_demand,
            safety_stock=s.safety_stock,
            reorder_point=s.reorder_point,
            suggested_order_quantity=s.suggested_order_quantity,
            days_of_cover=None if s.days_of_cover < 0 else s.days_of_cover,
            abc_class=s.abc_class.value if s.abc_class else None,
            replenishment_mode=s.replenishment_mode,
            reason=s.reason,
            on_hand=s.on_hand,
            available=s.available,
            lead_time_days=s.lead_time_days,
            on_order=s.on_order,
            computed_at=computed_at,
        )


class InboundIn(RequestModel):
    sku: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(ge=1, le=m.MAX_ADJUSTMENT)
    expected_on: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="Expected arrival (YYYY-MM-DD)"
    )
    reference: str | None = Field(
        default=None, max_length=200, description="Supplier purchase order number, transfer id"
    )


class InboundReceiptIn(RequestModel):
    quantity: StrictInt = Field(
        ge=1, le=m.MAX_ADJUSTMENT, description="Units received now (at most on_order)"
    )


class InboundOrderOut(BaseModel):
    inbound_id: str
    sku: str
    warehouse: str
    quantity: int
    received_quantity: int
    on_order: int = Field(description="Units still expected (0 unless open)")
    status: Literal["open", "received", "cancelled"]
    expected_on: date | None
    reference: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, o: InboundOrder) -> InboundOrderOut:
        return cls(
            inbound_id=o.inbound_id,
            sku=o.sku,
            warehouse=o.warehouse,
            quantity=o.quantity,
            received_quantity=o.received_quantity,
            on_order=o.on_order,
            status=o.status.value,
            expected_on=o.expected_on,
            reference=o.reference,
            created_at=o.created_at,
            updated_at=o.updated_at,
        )


class InboundReceiptOut(BaseModel):
    inbound_order: InboundOrderOut
    entry: LedgerEntryOut


class InboundOrderPage(BaseModel):
    items: list[InboundOrderOut]
    next_cursor: str | None


class SuggestionPage(BaseModel):
    items: list[SuggestionOut]
    next_cursor: str | None


class AbcItemOut(BaseModel):
    sku: str
    revenue_minor: int
    revenue_share: str
    cumulative_share: str
    abc_class: Literal["A", "B", "C"]
    replenishment_mode: Literal["just_in_time", "standard", "batch"]

    @classmethod
    def of(cls, e: AbcEntry) -> AbcItemOut:
        mode: Literal["just_in_time", "standard", "batch"] = (
            "just_in_time"
            if e.abc_class.value == "A"
            else "batch"
            if e.abc_class.value == "C"
            else "standard"
        )
        return cls(
            sku=e.sku,
            revenue_minor=e.revenue_minor,
            revenue_share=str(e.revenue_share),
            cumulative_share=str(e.cumulative_share),
            abc_class=e.abc_class.value,
            replenishment_mode=mode,
        )


class AbcOut(BaseModel):
    currency: str
    window_days: int
    a_threshold: str
    b_threshold: str
    items: list[AbcItemOut]


class KpisOut(BaseModel):
    from_date: str
    to_date: str
    units_sold: int
    average_on_hand: float
    inventory_turnover: float
    stock_out_rate: float
    days_of_cover: float | None = Field(description="null: no sales in the range")
    excess_stock_units: int
    sku_days: int
    stockout_sku_days: int

    @classmethod
    def of(cls, k: Kpis) -> KpisOut:
        return cls(
            from_date=k.from_date.isoformat(),
            to_date=k.to_date.isoformat(),
            units_sold=k.units_sold,
            average_on_hand=k.average_on_hand,
            inventory_turnover=k.inventory_turnover,
            stock_out_rate=k.stock_out_rate,
            days_of_cover=None if k.days_of_cover < 0 else k.days_of_cover,
            excess_stock_units=k.excess_stock_units,
            sku_days=k.sku_days,
            stockout_sku_days=k.stockout_sku_days,
        )
