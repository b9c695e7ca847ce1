"""gRPC servicer ``ecomops.inventory.v1.InventoryService``: decode, send the same messages as
REST through the bus, encode."""

from __future__ import annotations

from datetime import datetime

from grpc.aio import ServicerContext as Context

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import events_pb2
from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import caller_for
from ecomops_platform.iso_codes import is_currency
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor
from ecomops_platform.ports import check_key
from ecomops_platform.timestamps import optional_timestamp, to_timestamp

from ..domain import models as m
from ..domain.inbound import InboundOrder, InboundStatus
from ..domain.planning import AbcClass, Suggestion, replenishment_mode
from ..service_layer.catalog import GetSku, ListSkus, ListWarehouses, UpsertSku, UpsertWarehouse
from ..service_layer.inbound import (
    CancelInboundOrder,
    GetInboundOrder,
    ListInboundOrders,
    PlaceInboundOrder,
    ReceiveInboundOrder,
    cursor_position,
    page_cursor,
)
from ..service_layer.planning import (
    GetAbcClassification,
    GetInventoryKpis,
    ListReplenishmentSuggestions,
)
from ..service_layer.ports import Deps, InventoryUnitOfWork
from ..service_layer.reservations import (
    CommitReservation,
    GetReservation,
    ReleaseReservation,
    ReserveStock,
)
from ..service_layer.stock import AdjustStock, GetAvailability, GetStock, ListLedger

SERVICE_NAME = "ecomops.inventory.v1.InventoryService"

Bus = MessageBus[InventoryUnitOfWork, Deps]

_SKU_STATUS = {
    m.SkuStatus.ACTIVE: pb.SKU_STATUS_ACTIVE,
    m.SkuStatus.DISCONTINUED: pb.SKU_STATUS_DISCONTINUED,
}
_SKU_STATUS_IN = {v: k for k, v in _SKU_STATUS.items()}
_RES_STATUS = {
    m.ReservationStatus.HELD: pb.RESERVATION_STATUS_HELD,
    m.ReservationStatus.COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
    m.ReservationStatus.RELEASED: pb.RESERVATION_STATUS_RELEASED,
    m.ReservationStatus.EXPIRED: pb.RESERVATION_STATUS_EXPIRED,
}
_REASON_IN = {
    pb.ADJUSTMENT_REASON_RECEIPT: m.AdjustmentReason.RECEIPT,
    pb.ADJUSTMENT_REASON_COUNT: m.AdjustmentReason.COUNT,
    pb.ADJUSTMENT_REASON_DAMAGE: m.AdjustmentReason.DAMAGE,
    pb.ADJUSTMENT_REASON_RETURN: m.AdjustmentReason.RETURN,
    pb.ADJUSTMENT_REASON_CORRECTION: m.AdjustmentReason.CORRECTION,
}
_ABC = {AbcClass.A: pb.ABC_CLASS_A, AbcClass.B: pb.ABC_CLASS_B, AbcClass.C: pb.ABC_CLASS_C}
_INBOUND_STATUS = {
    InboundStatus.OPEN: pb.INBOUND_STATUS_OPEN,
    InboundStatus.RECEIVED: pb.INBOUND_STATUS_RECEIVED,
    InboundStatus.CANCELLED: pb.INBOUND_STATUS_CANCELLED,
}
_INBOUND_STATUS_IN = {v: k for k, v in _INBOUND_STATUS.items()}


def sku_pb(x: m.Sku) -> pb.Sku:
    return pb.Sku(
        sku=x.sku,
        title=x.title,
        category=x.category,
        brand=x.brand or "",
        attributes=x.attributes,
        status=_SKU_STATUS[x.status],
        lead_time_days=x.lead_time_days or 0,
        created_at=to_timestamp(x.created_at),
        updated_at=to_timestamp(x.updated_at),
    )


def warehouse_pb(w: m.Warehouse) -> pb.Warehouse:
    return pb.Warehouse(code=w.code, name=w.name, region=w.region or "", priority=w.priority)


def ledger_pb(e: m.LedgerEntry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=e.entry_id,
        sku=e.sku,
        warehouse=e.warehouse,
        delta=e.delta,
        reason=e.reason,
        reference=e.reference or "",
        on_hand_after=e.on_hand_after,
        occurred_at=to_timestamp(e.occurred_at),
    )


def reservation_pb(r: m.Reservation) -> pb.Reservation:
    return pb.Reservation(
        reservation_id=r.reservation_id,
        status=_RES_STATUS[r.status],
        expires_at=to_timestamp(r.expires_at),
        allocations=[
            events_pb2.Allocation(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity)
            for a in r.allocations
        ],
        lines=[common_pb2.SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in r.lines],
        region=r.region or "",
        created_at=optional_timestamp(r.created_at),
        closed_at=optional_timestamp(r.closed_at),
    )


def suggestion_pb(sg: Suggestion, computed_at: datetime | None) -> pb.ReplenishmentSuggestion:
    return pb.ReplenishmentSuggestion(
        sku=sg.sku,
        warehouse=sg.warehouse,
        forecast_daily_demand=sg.forecast_daily_demand,
        safety_stock=sg.safety_stock,
        reorder_point=sg.reorder_point,
        suggested_order_quantity=sg.suggested_order_quantity,
        days_of_cover=sg.days_of_cover,
        abc_class=_ABC[sg.abc_class] if sg.abc_class else pb.ABC_CLASS_UNSPECIFIED,
        reason=sg.reason,
        on_hand=sg.on_hand,
        available=sg.available,
        lead_time_days=sg.lead_time_days,
        replenishment_mode=sg.replenishment_mode,
        computed_at=optional_timestamp(computed_at),
        on_order=sg.on_order,
    )


def inbound_pb(o: InboundOrder) -> pb.InboundOrder:
    return pb.InboundOrder(
        inbound_id=o.inbound_id,
        sku=o.sku,
        warehouse=o.warehouse,
        quantity=o.quantity,
        received_quantity=o.received_quantity,
        on_order=o.on_order,
        status=_INBOUND_STATUS[o.status],
        expected_on=o.expected_on.isoformat() if o.expected_on else "",
        reference=o.reference or "",
        created_at=to_timestamp(o.created_at),
        updated_at=to_timestamp(o.updated_at),
    )


def _page(page: common_pb2.PageRequest) -> tuple[int, str | None]:
    return check_limit(page.limit or None), page.cursor or None


def _bounded(name: str, value: str, most: int) -> None:
    """The same length limits as the REST parameters (a lookup by an over-long value is a 422,
    not an empty answer)."""
    if len(value) > most:
        raise Unprocessable(f"{name}: at most {most} characters", code="validation-error")


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def UpsertSku(
        self, request: pb.UpsertSkuRequest, context: Context
    ) -> pb.UpsertSkuResponse:
        caller = caller_for(UpsertSku)
        if not request.title or not request.category:
            raise Unprocessable("title and category are required", code="validation-error")
        status = _SKU_STATUS_IN.get(request.status)
        if status is None:
            raise Unprocessable("status is required", code="validation-error")
        saved = await self.bus.handle(
            UpsertSku(
                sku=request.sku,
                title=request.title,
                category=request.category,
                status=status,
                brand=request.brand or None,
                attributes=dict(request.attributes),
                lead_time_days=request.lead_time_days or None,
            ),
            caller,
        )
        return pb.UpsertSkuResponse(sku=sku_pb(saved.sku), created=saved.created)

    async def GetSku(self, request: pb.GetSkuRequest, context: Context) -> pb.GetSkuResponse:
        caller = caller_for(GetSku)
        return pb.GetSkuResponse(sku=sku_pb(await self.bus.handle(GetSku(sku=request.sku), caller)))

    async def ListSkus(self, request: pb.ListSkusRequest, context: Context) -> pb.ListSkusResponse:
        caller = caller_for(ListSkus)
        _bounded("category", request.category, 100)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        page = await self.bus.handle(
            ListSkus(
                category=request.category or None,
                status=_SKU_STATUS_IN.get(request.status),
                after=str(pos["sku"]) if pos and "sku" in pos else None,
                limit=limit,
            ),
            caller,
        )
        return pb.ListSkusResponse(
            skus=[sku_pb(x) for x in page.items],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"sku": page.items[-1].sku}) if page.more else ""
            ),
        )

    async def UpsertWarehouse(
        self, request: pb.UpsertWarehouseRequest, context: Context
    ) -> pb.UpsertWarehouseResponse:
        caller = caller_for(UpsertWarehouse)
        if not request.name:
            raise Unprocessable("name is required", code="validation-error")
        saved = await self.bus.handle(
            UpsertWarehouse(
                code=request.code,
                name=request.name,
                region=request.region or None,
                priority=request.priority if request.HasField("priority") else None,
            ),
            caller,
        )
        return pb.UpsertWarehouseResponse(
            warehouse=warehouse_pb(saved.warehouse), created=saved.created
        )

    async def ListWarehouses(
        self, request: pb.ListWarehousesRequest, context: Context
    ) -> pb.ListWarehousesResponse:
        caller = caller_for(ListWarehouses)
        found = await self.bus.handle(ListWarehouses(), caller)
        return pb.ListWarehousesResponse(warehouses=[warehouse_pb(w) for w in found])

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        caller = caller_for(AdjustStock)
        key = check_key(request.idempotency_key, required=True)
        reason = _REASON_IN.get(request.reason)
        if reason is None:
            raise Unprocessable("reason is required", code="validation-error")
        entry = await self.bus.handle(
            AdjustStock(
                sku=request.sku,
                warehouse=request.warehouse,
                delta=request.delta,
                reason=reason,
                reference=request.reference or None,
            ),
            caller,
            idempotency_key=key,
        )
        return pb.AdjustStockResponse(entry=ledger_pb(entry))

    async def GetStock(self, request: pb.GetStockRequest, context: Context) -> pb.GetStockResponse:
        caller = caller_for(GetStock)
        level = await self.bus.handle(GetStock(sku=request.sku), caller)
        return pb.GetStockResponse(
            stock=pb.StockLevel(
                sku=level.sku,
                on_hand=level.on_hand,
                reserved=level.reserved,
                available=level.available,
                warehouses=[
                    pb.WarehouseStock(
                        warehouse=w.warehouse,
                        on_hand=w.on_hand,
                        reserved=w.reserved,
                        available=w.available,
                    )
                    for w in level.warehouses
                ],
            )
        )

    async def GetAvailability(
        self, request: pb.GetAvailabilityRequest, context: Context
    ) -> pb.GetAvailabilityResponse:
        caller = caller_for(GetAvailability)
        if len(request.skus) > 200:
            raise Unprocessable("skus: at most 200", code="validation-error")
        for sku in request.skus:
            _bounded("skus", sku, 64)
        found = await self.bus.handle(GetAvailability(skus=tuple(request.skus)), caller)
        return pb.GetAvailabilityResponse(
            items=[
                pb.SkuAvailability(
                    sku=a.sku,
                    available=a.available,
                    status=_SKU_STATUS[a.status] if a.status else pb.SKU_STATUS_UNSPECIFIED,
                )
                for a in found
            ]
        )

    async def ListLedger(
        self, request: pb.ListLedgerRequest, context: Context
    ) -> pb.ListLedgerResponse:
        caller = caller_for(ListLedger)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        before = pos.get("id") if pos else None
        if before is not None and not isinstance(before, int):
            raise Unprocessable("cursor is not valid for this list", code="invalid-cursor")
        page = await self.bus.handle(
            ListLedger(sku=request.sku, before_id=before, limit=limit), caller
        )
        return pb.ListLedgerResponse(
            entries=[ledger_pb(e) for _, e in page.items],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"id": page.items[-1][0]}) if page.more else ""
            ),
        )

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: Context
    ) -> pb.ReserveStockResponse:
        caller = caller_for(ReserveStock)
        reserved = await self.bus.handle(
            ReserveStock(
                reservation_id=request.reservation_id,
                lines=tuple(m.Line(ln.sku, ln.quantity) for ln in request.lines),
                ttl_seconds=request.ttl_seconds or None,
                region=request.region or None,
            ),
            caller,
        )
        return pb.ReserveStockResponse(reservation=reservation_pb(reserved.reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        caller = caller_for(CommitReservation)
        r = await self.bus.handle(CommitReservation(reservation_id=request.reservation_id), caller)
        return pb.CommitReservationResponse(reservation=reservation_pb(r))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Context
    ) -> pb.ReleaseReservationResponse:
        caller = caller_for(ReleaseReservation)
        r = await self.bus.handle(ReleaseReservation(reservation_id=request.reservation_id), caller)
        return pb.ReleaseReservationResponse(reservation=reservation_pb(r))

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: Context
    ) -> pb.GetReservationResponse:
        caller = caller_for(GetReservation)
        r = await self.bus.handle(GetReservation(reservation_id=request.reservation_id), caller)
        return pb.GetReservationResponse(reservation=reservation_pb(r))

    async def ListReplenishmentSuggestions(
        self, request: pb.ListReplenishmentSuggestionsRequest, context: Context
    ) -> pb.ListReplenishmentSuggestionsResponse:
        caller = caller_for(ListReplenishmentSuggestions)
        _bounded("warehouse", request.warehouse, 64)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        after = (str(pos["sku"]), str(pos["warehouse"])) if pos and "sku" in pos else None
        page = await self.bus.handle(
            ListReplenishmentSuggestions(
                warehouse=request.warehouse or None, after=after, limit=limit
            ),
            caller,
        )
        last = page.items[-1].suggestion if page.items else None
        return pb.ListReplenishmentSuggestionsResponse(
            suggestions=[suggestion_pb(v.suggestion, v.computed_at) for v in page.items],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"sku": last.sku, "warehouse": last.warehouse})
                if page.more and last
                else ""
            ),
        )

    async def GetAbcClassification(
        self, request: pb.GetAbcClassificationRequest, context: Context
    ) -> pb.GetAbcClassificationResponse:
        caller = caller_for(GetAbcClassification)
        if request.currency and not is_currency(request.currency):
            raise Unprocessable("currency: an ISO 4217 code", code="invalid-currency")
        abc = await self.bus.handle(GetAbcClassification(currency=request.currency or None), caller)
        return pb.GetAbcClassificationResponse(
            items=[
                pb.AbcItem(
                    sku=e.sku,
                    revenue_minor=e.revenue_minor,
                    revenue_share=str(e.revenue_share),
                    cumulative_share=str(e.cumulative_share),
                    abc_class=_ABC[e.abc_class],
                    replenishment_mode=replenishment_mode(e.abc_class),
                )
                for e in abc.items
            ],
            a_threshold=str(abc.a_threshold),
            b_threshold=str(abc.b_threshold),
            currency=abc.currency,
            window_days=abc.window_days,
        )

    async def GetInventoryKpis(
        self, request: pb.GetInventoryKpisRequest, context: Context
    ) -> pb.GetInventoryKpisResponse:
        caller = caller_for(GetInventoryKpis)
        k = await self.bus.handle(
            GetInventoryKpis(from_date=request.from_date or None, to_date=request.to_date or None),
            caller,
        )
        return pb.GetInventoryKpisResponse(
            kpis=pb.InventoryKpis(
                from_date=k.from_date.isoformat(),
                to_date=k.to_date.isoformat(),
                units_sold=k.units_sold,
                average_on_hand=k.average_on_hand,
                inventory_turnover=k.inventory_turnover,
                stock_out_rate=k.stock_out_rate,
                days_of_cover=k.days_of_cover,
                excess_stock_units=k.excess_stock_units,
                sku_days=k.sku_days,
                stockout_sku_days=k.stockout_sku_days,
            )
        )

    # --- inbound orders ---------------------------------------------------------------------
    async def PlaceInboundOrder(
        self, request: pb.PlaceInboundOrderRequest, context: Context
    ) -> pb.PlaceInboundOrderResponse:
        caller = caller_for(PlaceInboundOrder)
        key = check_key(request.idempotency_key, required=True)
        _bounded("sku", request.sku, 64)
        _bounded("warehouse", request.warehouse, 64)
        _bounded("reference", request.reference, 200)
        placed = await self.bus.handle(
            PlaceInboundOrder(
                sku=request.sku,
                warehouse=request.warehouse,
                quantity=request.quantity,
                expected_on=request.expected_on or None,
                reference=request.reference or None,
            ),
            caller,
            idempotency_key=key,
        )
        return pb.PlaceInboundOrderResponse(inbound_order=inbound_pb(placed))

    async def ReceiveInboundOrder(
        self, request: pb.ReceiveInboundOrderRequest, context: Context
    ) -> pb.ReceiveInboundOrderResponse:
        caller = caller_for(ReceiveInboundOrder)
        key = check_key(request.idempotency_key, required=True)
        _bounded("inbound_id", request.inbound_id, 64)
        receipt = await self.bus.handle(
            ReceiveInboundOrder(inbound_id=request.inbound_id, quantity=request.quantity),
            caller,
            idempotency_key=key,
        )
        return pb.ReceiveInboundOrderResponse(
            inbound_order=inbound_pb(receipt.inbound), entry=ledger_pb(receipt.entry)
        )

    async def CancelInboundOrder(
        self, request: pb.CancelInboundOrderRequest, context: Context
    ) -> pb.CancelInboundOrderResponse:
        caller = caller_for(CancelInboundOrder)
        _bounded("inbound_id", request.inbound_id, 64)
        done = await self.bus.handle(CancelInboundOrder(inbound_id=request.inbound_id), caller)
        return pb.CancelInboundOrderResponse(inbound_order=inbound_pb(done))

    async def GetInboundOrder(
        self, request: pb.GetInboundOrderRequest, context: Context
    ) -> pb.GetInboundOrderResponse:
        caller = caller_for(GetInboundOrder)
        _bounded("inbound_id", request.inbound_id, 64)
        found = await self.bus.handle(GetInboundOrder(inbound_id=request.inbound_id), caller)
        return pb.GetInboundOrderResponse(inbound_order=inbound_pb(found))

    async def ListInboundOrders(
        self, request: pb.ListInboundOrdersRequest, context: Context
    ) -> pb.ListInboundOrdersResponse:
        caller = caller_for(ListInboundOrders)
        _bounded("sku", request.sku, 64)
        _bounded("warehouse", request.warehouse, 64)
        status = _INBOUND_STATUS_IN.get(request.status)
        if status is None and request.status != pb.INBOUND_STATUS_UNSPECIFIED:
            raise Unprocessable("status: unknown value", code="validation-error")
        limit, cursor = _page(request.page)
        page = await self.bus.handle(
            ListInboundOrders(
                sku=request.sku or None,
                warehouse=request.warehouse or None,
                status=status,
                before=cursor_position(cursor),
                limit=limit,
            ),
            caller,
        )
        return pb.ListInboundOrdersResponse(
            inbound_orders=[inbound_pb(o) for o in page.items],
            page=common_pb2.PageResponse(next_cursor=page_cursor(page) or ""),
        )
